package socketcluster_test

import (
	"encoding/json"
	"fmt"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gobwas/ws"
	"github.com/gobwas/ws/wsutil"

	sc "github.com/socketcluster-go/socketcluster"
	"github.com/socketcluster-go/socketcluster/internal/netpoll"
	"github.com/socketcluster-go/socketcluster/internal/sctest"
)

// readModes are the ways a server reads its sockets: event-driven (the
// default), event-driven with owned descriptors, and a goroutine each.
var readModes = []struct {
	name         string
	disable, own bool
}{{"event-driven", false, false}, {"owned-descriptors", false, true}, {"goroutine", true, false}}

// Stress test of the inbound path, run with every reader (readModes):
// hundreds of raw connections invoke echo with calls in flight (some
// messages bigger than a read buffer, some fragmented, pongs in between)
// and publish to each other's channels, all at once for a few seconds. Every answer must match its call, and every
// subscriber must get every publication of each publisher, in order.
func TestStressEchoAndPubSub(t *testing.T) {
	// Not parallel: it loads both cores for seconds, which would stretch the timing bounds of the tests running beside it.
	for _, mode := range readModes {
		t.Run(mode.name, func(t *testing.T) {
			stressEchoAndPubSub(t, sc.Options{DisableEventReads: mode.disable, OwnDescriptors: mode.own, PingInterval: 100 * time.Millisecond})
		})
	}
}

type stressClient struct {
	c        *sctest.Client
	inflight chan struct{}
	mu       sync.Mutex
	want     map[float64]string // cid → expected echo data
	lastSeq  map[string]int     // publisher → last sequence received
	pubs     atomic.Int64       // publishes sent; the k-th carries n = k
	answered atomic.Int64
	failed   atomic.Value
}

func stressEchoAndPubSub(t *testing.T, opts sc.Options) {
	clients, channels, window := 200, 4, 8
	duration := 2 * time.Second
	if testing.Short() {
		clients, duration = 50, 500*time.Millisecond
	}
	ts := newServer(t, opts)
	big := strings.Repeat("b", 20_000) // more than one pooled read buffer
	cs := make([]*stressClient, clients)
	for i := range cs {
		c := ts.dial(t, &sctest.Options{AutoPong: true, QueueSize: 1 << 16})
		c.Handshake(nil)
		c.Subscribe(fmt.Sprint("stress/", i%channels))
		cs[i] = &stressClient{c: c, inflight: make(chan struct{}, window), want: map[float64]string{}, lastSeq: map[string]int{}}
	}
	stop := make(chan struct{})
	var senders, readers sync.WaitGroup
	for i, s := range cs {
		readers.Add(1)
		go func() {
			defer readers.Done()
			s.read()
		}()
		senders.Add(1)
		go func() {
			defer senders.Done()
			for n := 0; ; n++ {
				select {
				case <-stop:
					return
				case s.inflight <- struct{}{}:
				}
				cid := s.c.NextCid()
				var event string
				var data any
				switch {
				case n%5 == 4:
					ch := (i + 1) % channels
					event, data = "#publish", map[string]any{"channel": fmt.Sprint("stress/", ch), "data": map[string]any{"p": i, "n": s.pubs.Add(1) - 1}}
				case n%10 == 3:
					event, data = "echo", fmt.Sprintf("%d-%d-%s", i, n, big)
				default:
					event, data = "echo", fmt.Sprintf("%d-%d", i, n)
				}
				if event == "echo" {
					s.mu.Lock()
					s.want[cid] = data.(string)
					s.mu.Unlock()
				}
				packet := sctest.EventPacket(event, data, cid)
				if n%7 == 6 {
					// Three fragments, the last one empty.
					half := len(packet) / 2
					_ = s.c.SendFrame(ws.OpText, false, []byte(packet[:half]))
					_ = s.c.SendFrame(ws.OpContinuation, false, []byte(packet[half:]))
					_ = s.c.SendFrame(ws.OpContinuation, true, nil)
				} else {
					s.c.SendText(packet)
				}
			}
		}()
	}
	time.Sleep(duration)
	close(stop)
	senders.Wait()
	// Every call answered (the in-flight window drains), every publication
	// delivered.
	for i, s := range cs {
		for range window {
			select {
			case s.inflight <- struct{}{}:
			case <-time.After(wait):
				t.Fatalf("client %d: calls still unanswered (%v)", i, s.failed.Load())
			}
		}
	}
	for i, s := range cs {
		eventually(t, fmt.Sprint("client ", i, " deliveries"), func() bool {
			s.mu.Lock()
			defer s.mu.Unlock()
			for j, p := range cs {
				if (j+1)%channels != i%channels || p.pubs.Load() == 0 {
					continue
				}
				if last, ok := s.lastSeq[fmt.Sprint(j)]; !ok || int64(last) != p.pubs.Load()-1 {
					return false
				}
			}
			return true
		})
		if f := s.failed.Load(); f != nil {
			t.Fatalf("client %d: %v", i, f)
		}
	}
	for _, s := range cs {
		s.c.Close()
	}
	readers.Wait()
	var calls, pubs int64
	for _, s := range cs {
		calls += s.answered.Load()
		pubs += s.pubs.Load()
	}
	if calls == 0 || pubs == 0 {
		t.Fatalf("no load: %d calls answered, %d publishes", calls, pubs)
	}
	t.Logf("%d clients: %d calls answered, %d publishes", clients, calls, pubs)
}

func (s *stressClient) read() {
	for {
		f, err := s.c.Next(time.Hour)
		if err != nil {
			return
		}
		if f.Op == ws.OpClose {
			s.failed.Store(fmt.Sprintf("closed by the server: %d %s", f.CloseCode, f.CloseReason))
		}
		if f.Op != ws.OpText || len(f.Payload) == 0 {
			continue
		}
		var p struct {
			Event string          `json:"event"`
			Rid   *float64        `json:"rid"`
			Data  json.RawMessage `json:"data"`
			Error json.RawMessage `json:"error"`
		}
		if err := json.Unmarshal(f.Payload, &p); err != nil {
			s.failed.Store(fmt.Sprintf("bad frame %q", f.Payload))
			continue
		}
		switch {
		case p.Rid != nil:
			if p.Error != nil {
				s.failed.Store(fmt.Sprintf("error response %s", f.Payload))
			}
			s.mu.Lock()
			want, isEcho := s.want[*p.Rid]
			delete(s.want, *p.Rid)
			s.mu.Unlock()
			if isEcho {
				var got string
				if json.Unmarshal(p.Data, &got) != nil || got != want {
					s.failed.Store(fmt.Sprintf("echo %v answered %.40s, want %.40s", *p.Rid, p.Data, want))
				}
			}
			s.answered.Add(1)
			<-s.inflight
		case p.Event == "#publish":
			var pub struct {
				Data struct {
					P int `json:"p"`
					N int `json:"n"`
				} `json:"data"`
			}
			if err := json.Unmarshal(p.Data, &pub); err != nil {
				s.failed.Store(fmt.Sprintf("bad publication %s", p.Data))
				continue
			}
			key := fmt.Sprint(pub.Data.P)
			s.mu.Lock()
			last, seen := s.lastSeq[key]
			if !seen {
				last = -1
			}
			if pub.Data.N != last+1 {
				s.failed.Store(fmt.Sprintf("publisher %s: #%d after #%d", key, pub.Data.N, last))
			}
			s.lastSeq[key] = pub.Data.N
			s.mu.Unlock()
		}
	}
}

// TestIdleSocketsHoldNoGoroutine connects idle clients that have no
// goroutine of their own and counts the server's goroutines: none per
// socket with event-driven reads, one each with DisableEventReads.
func TestIdleSocketsHoldNoGoroutine(t *testing.T) {
	// Not parallel: it counts the process's goroutines.
	const n = 100
	for _, mode := range readModes {
		t.Run(mode.name, func(t *testing.T) {
			ts := newServer(t, sc.Options{DisableEventReads: mode.disable, OwnDescriptors: mode.own})
			before := settledGoroutines()
			openIdle(t, ws.Dialer{}, "ws://"+ts.addr+"/socketcluster/", n)
			eventually(t, "handshakes", func() bool { return ts.ClientsCount() == n })
			added := settledGoroutines() - before
			if mode.disable && added < n {
				t.Fatalf("%d goroutines added by %d sockets read by goroutines", added, n)
			}
			if !mode.disable && netpoll.Available() && added > 10 {
				t.Fatalf("%d goroutines added by %d idle sockets", added, n)
			}
			t.Logf("%d idle sockets: %d more goroutines", n, added)
		})
	}
}

// openIdle opens n connections to url with d, handshakes each and leaves
// them idle (they are closed when the test ends); the clients have no
// goroutine of their own.
func openIdle(t *testing.T, d ws.Dialer, url string, n int) {
	t.Helper()
	for range n {
		conn, br, _, err := d.Dial(ctxT(t), url)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = conn.Close() })
		if br != nil {
			ws.PutReader(br)
		}
		if err := wsutil.WriteClientText(conn, []byte(`{"event":"#handshake","data":{},"cid":1}`)); err != nil {
			t.Fatal(err)
		}
		_ = conn.SetReadDeadline(time.Now().Add(wait))
		if _, err := wsutil.ReadServerText(conn); err != nil {
			t.Fatal(err)
		}
	}
}

// settledGoroutines returns the goroutine count once short-lived
// goroutines (flushers, idle workers, earlier tests' sockets ending) are
// gone: the lowest of samples taken until it stops falling.
func settledGoroutines() int {
	low := runtime.NumGoroutine()
	for still := 0; still < 8; { // 320 ms: idle workers go within 200 ms
		time.Sleep(40 * time.Millisecond)
		if n := runtime.NumGoroutine(); n < low {
			low, still = n, 0
		} else {
			still++
		}
	}
	return low
}
