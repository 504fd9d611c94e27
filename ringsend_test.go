package socketcluster_test

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	sc "github.com/socketcluster-go/socketcluster"
	"github.com/socketcluster-go/socketcluster/internal/netpoll"
	"github.com/socketcluster-go/socketcluster/internal/sctest"
	"github.com/socketcluster-go/socketcluster/internal/uring"
)

// ioUringHere reports whether this machine lets a process use io_uring,
// as the server finds out on its first batched send.
func ioUringHere() bool {
	r, err := uring.New(8)
	if err != nil {
		return false
	}
	r.Close()
	return true
}

// subscribers connects n clients that answer pings, handshakes them and
// subscribes each to channel.
func subscribers(t *testing.T, ts *testServer, n int, channel string) []*sctest.Client {
	t.Helper()
	cs := make([]*sctest.Client, n)
	for i := range cs {
		cs[i] = ts.dial(t, &sctest.Options{AutoPong: true})
		cs[i].Handshake(nil)
		cs[i].Subscribe(channel)
	}
	return cs
}

// readPublications reads n publications of channel from c, which must
// carry {"n":0}, {"n":1}, … in order; other frames (answers to calls)
// are skipped.
func readPublications(c *sctest.Client, channel string, n int, timeout time.Duration) error {
	next := 0
	for next < n {
		f, err := c.Next(timeout)
		if err != nil {
			return fmt.Errorf("after %d publications: %w", next, err)
		}
		var p struct {
			Event string `json:"event"`
			Data  struct {
				Channel string `json:"channel"`
				Data    struct {
					N int `json:"n"`
				} `json:"data"`
			} `json:"data"`
		}
		if json.Unmarshal(f.Payload, &p) != nil {
			return fmt.Errorf("after %d publications: a frame that is not JSON: %.80q", next, f.Payload)
		}
		if p.Event != "#publish" {
			continue
		}
		if p.Data.Channel != channel || p.Data.Data.N != next {
			return fmt.Errorf("publication %s/%d, want %s/%d", p.Data.Channel, p.Data.Data.N, channel, next)
		}
		next++
	}
	return nil
}

// TestBatchedSends: publications to a channel whose publications come
// some time apart are sent in batches (one io_uring submission for many
// subscribers); with calls answered on the same sockets at the same time,
// every subscriber gets every publication, whole and in order. With
// DisableIOUring, nothing is batched.
func TestBatchedSends(t *testing.T) {
	t.Parallel()
	for _, disabled := range []bool{false, true} {
		t.Run(fmt.Sprintf("DisableIOUring=%v", disabled), func(t *testing.T) {
			t.Parallel()
			ts := newServer(t, sc.Options{DisableIOUring: disabled})
			const n, publications = 20, 100
			cs := subscribers(t, ts, n, "batched")
			var wg sync.WaitGroup
			errs := make(chan error, 2*n)
			for _, c := range cs {
				wg.Add(2)
				go func() {
					defer wg.Done()
					errs <- readPublications(c, "batched", publications, wait)
				}()
				go func() {
					// Calls whose answers go through the socket's queue
					// while publications are batched.
					defer wg.Done()
					for i := range 20 {
						c.Transmit("echo", i) // no answer expected: a transmit
						time.Sleep(time.Millisecond)
					}
				}()
			}
			for i := range publications {
				if err := ts.Exchange().Publish(context.Background(), "batched", map[string]int{"n": i}); err != nil {
					t.Fatal(err)
				}
				time.Sleep(time.Millisecond) // publications some time apart: batched
			}
			wg.Wait()
			close(errs)
			for err := range errs {
				if err != nil {
					t.Fatal(err)
				}
			}
			batched := ts.Stats().BatchedDeliveries
			possible := ioUringHere() && netpoll.Available() // sockets read event-driven have their descriptor at hand
			switch {
			case disabled && batched != 0:
				t.Fatalf("%d batched deliveries with DisableIOUring", batched)
			case !disabled && possible && batched == 0:
				t.Fatal("no delivery was batched, though io_uring is available")
			case !disabled && !possible:
				t.Log("io_uring or event-driven reads are not available here: the fallback was tested")
			}
			t.Logf("%d of %d deliveries batched", batched, n*publications)
		})
	}
}

// TestBatchedSendsLargeFanout: a publication to more subscribers than one
// batch holds is sent in several batches, full ones by a helper while the
// fan-out goes on: a goroutine, or a netpoll poller the batch is lent to
// (one helper allowed, whatever Ps are free, so that each path is taken
// on any machine); with calls answered on some of the sockets meanwhile,
// every subscriber gets every publication, whole and in order.
func TestBatchedSendsLargeFanout(t *testing.T) {
	t.Parallel()
	t.Run("goroutine", func(t *testing.T) {
		t.Parallel()
		testBatchedSendsLargeFanout(t, func(srv *sc.Server) { sc.SetRingHelpers(srv, 1) })
	})
	t.Run("lent", func(t *testing.T) {
		t.Parallel()
		testBatchedSendsLargeFanout(t, sc.LendRingHelper)
	})
}

func testBatchedSendsLargeFanout(t *testing.T, helpers func(*sc.Server)) {
	ts := newServer(t, sc.Options{})
	helpers(ts.Server)
	const n, publications = 600, 25 // three batches: 256, 256, 88
	cs := subscribers(t, ts, n, "large")
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for i, c := range cs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs <- readPublications(c, "large", publications, wait)
		}()
		if i%50 == 0 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for j := range 10 {
					c.Transmit("echo", j)
					time.Sleep(2 * time.Millisecond)
				}
			}()
		}
	}
	for i := range publications {
		if err := ts.Exchange().Publish(context.Background(), "large", map[string]int{"n": i}); err != nil {
			t.Fatal(err)
		}
		// Publications far enough apart for 600 subscribers to be batched
		// (ringGapPerSub).
		time.Sleep(15 * time.Millisecond)
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	// Every helper ends, and is counted out (it is let go a moment
	// after its batch's sockets, so it may still be finishing).
	eventually(t, "every batch helper to end", func() bool { return sc.RingHelpers(ts.Server) == 0 })
	helped := sc.HelpedBatches(ts.Server)
	t.Logf("%d of %d deliveries batched, %d batches sent by helpers", ts.Stats().BatchedDeliveries, n*publications, helped)
	if ioUringHere() && netpoll.Available() && helped == 0 {
		t.Fatal("no batch was handed to a helper, though io_uring is available and a helper was allowed")
	}
}

// TestBatchedSendsSlowSubscriber: a subscriber that stops reading fills
// its socket's buffers, so batched sends to it come back short or with
// EAGAIN; the rest of a cut frame is written before anything else, the
// other subscribers and the publisher are not held up, and once it reads
// again it gets every publication whole and in order.
func TestBatchedSendsSlowSubscriber(t *testing.T) {
	t.Parallel()
	ts := newServer(t, sc.Options{OutboundQueueLimit: 64 << 20, MaxPayload: 1 << 20})
	const publications = 150
	pad := strings.Repeat("p", 32<<10)
	fast := subscribers(t, ts, 8, "big")
	// A reader queue of two frames: the client stops reading from its
	// connection at once, and the server's writes back up.
	slow := ts.dial(t, &sctest.Options{AutoPong: true, QueueSize: 2})
	slow.Handshake(nil)
	slow.Subscribe("big")

	var wg sync.WaitGroup
	errs := make(chan error, len(fast))
	for _, c := range fast {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs <- readPublications(c, "big", publications, wait)
		}()
	}
	for i := range publications {
		if err := ts.Exchange().Publish(context.Background(), "big", map[string]any{"n": i, "pad": pad}); err != nil {
			t.Fatal(err)
		}
		time.Sleep(500 * time.Microsecond)
	}
	// The fast subscribers got everything while the slow one read nothing.
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	if err := readPublications(slow, "big", publications, wait); err != nil {
		t.Fatalf("slow subscriber: %v", err)
	}
	if n := ts.Stats().SlowConsumers; n != 0 {
		t.Fatalf("%d slow consumers disconnected under a 64 MiB limit", n)
	}
}

// TestBatchedSendsNotWithOutboundMiddleware: with outbound middleware a
// publication is not batched (the middleware, application code, runs per
// delivery and must not hold up sockets a batch has taken), and every
// delivery still goes through it.
func TestBatchedSendsNotWithOutboundMiddleware(t *testing.T) {
	t.Parallel()
	var mu sync.Mutex
	seen := 0
	ts := newServer(t, sc.Options{}, func(srv *sc.Server) {
		if err := srv.SetMiddleware(sc.MiddlewareOutbound, func(_ context.Context, a *sc.Action) error {
			mu.Lock()
			seen++
			mu.Unlock()
			return nil
		}); err != nil {
			t.Fatal(err)
		}
	})
	const n, publications = 5, 10
	cs := subscribers(t, ts, n, "watched")
	for i := range publications {
		if err := ts.Exchange().Publish(context.Background(), "watched", map[string]int{"n": i}); err != nil {
			t.Fatal(err)
		}
		time.Sleep(time.Millisecond)
	}
	for _, c := range cs {
		if err := readPublications(c, "watched", publications, wait); err != nil {
			t.Fatal(err)
		}
	}
	mu.Lock()
	defer mu.Unlock()
	if seen != n*publications {
		t.Fatalf("outbound middleware saw %d deliveries, want %d", seen, n*publications)
	}
	if n := ts.Stats().BatchedDeliveries; n != 0 {
		t.Fatalf("%d deliveries batched with outbound middleware", n)
	}
}
