package socketcluster_test

// The reliability suite: short probes of what an attacker or a broken
// client sends (issue 9), each asserting that the server answers as the
// reference does, frees what it took, and keeps serving the others. Long
// soaks belong in cmd/scbench, not here.

import (
	"bufio"
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"io"
	"log/slog"
	"net"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gobwas/ws"

	sc "github.com/socketcluster-go/socketcluster"
	"github.com/socketcluster-go/socketcluster/internal/sctest"
	"github.com/socketcluster-go/socketcluster/protocol"
)

// TestInvalidCloseCodes: a close frame whose code must not be on the wire
// (RFC 6455 §7.4) fails the connection with 1002 instead of being echoed;
// a reason that is not UTF-8 fails it with 1007; valid codes are echoed
// with their reason. All as the reference's ws engine.
func TestInvalidCloseCodes(t *testing.T) {
	t.Parallel()
	ts := newServer(t, sc.Options{})
	canary, _ := ts.connect(t, nil)
	cases := []struct {
		body       []byte
		code       protocol.CloseCode
		reason     string
		serverCode protocol.CloseCode
	}{
		{ws.NewCloseFrameBody(1000, "bye"), 1000, "bye", 1000},
		{ws.NewCloseFrameBody(3000, "bye"), 3000, "bye", 3000},
		{ws.NewCloseFrameBody(4999, "bye"), 4999, "bye", 4999},
		{[]byte{0x03, 0xe8, 0xff, 0xfe}, 1007, "", 1007},
		{[]byte{0x03}, 1002, "", 1002},
	}
	for _, code := range []int{999, 1004, 1005, 1006, 1015, 1016, 2000, 2999, 5000, 65535} {
		cases = append(cases, struct {
			body       []byte
			code       protocol.CloseCode
			reason     string
			serverCode protocol.CloseCode
		}{ws.NewCloseFrameBody(ws.StatusCode(code), "bye"), 1002, "", 1002})
	}
	for _, tc := range cases {
		name := "short"
		if len(tc.body) >= 2 {
			name = strconv.Itoa(int(binary.BigEndian.Uint16(tc.body)))
		}
		t.Run(name, func(t *testing.T) {
			closures := sc.Listen[sc.ClosureEvent](ts).Consumer()
			defer closures.Stop()
			c, s := ts.connect(t, nil)
			if err := c.SendFrame(ws.OpClose, true, tc.body); err != nil {
				t.Fatal(err)
			}
			if code, reason, _ := c.ExpectClose(); code != tc.code || reason != tc.reason {
				t.Fatalf("close frame %x answered with %d %q, want %d %q", tc.body, code, reason, tc.code, tc.reason)
			}
			c.WaitEnd()
			for {
				ev := next(t, closures)
				if ev.Socket == s {
					if ev.Code != tc.serverCode {
						t.Fatalf("server closure code %d, want %d", ev.Code, tc.serverCode)
					}
					break
				}
			}
		})
	}
	barrier(t, canary)
}

// TestHugeFrameLength: a 64-bit length with its top bit set is refused
// with 1009 (message too big), as the reference does, not 1002.
func TestHugeFrameLength(t *testing.T) {
	t.Parallel()
	ts := newServer(t, sc.Options{})
	c, _ := ts.connect(t, nil)
	hdr := []byte{0x81, 0xff, 0x80, 0, 0, 0, 0, 0, 0, 5, 1, 2, 3, 4}
	if err := c.WriteRaw(hdr); err != nil {
		t.Fatal(err)
	}
	if code, _, _ := c.ExpectClose(); code != protocol.CloseMessageTooBig {
		t.Fatalf("close %d, want 1009", code)
	}
	c.WaitEnd()
}

// lockedBuffer is a log destination safe for concurrent writers.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// upgradeStart is the start of an upgrade request, without the blank
// line that ends its header.
func upgradeStart(addr string) string {
	return "GET /socketcluster/ HTTP/1.1\r\nHost: " + addr + "\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n" +
		"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n"
}

// statusOf sends raw request bytes and returns the response's status line.
func statusOf(t *testing.T, addr, req string) string {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(wait))
	go func() { _, _ = c.Write([]byte(req)) }()
	line, err := bufio.NewReader(c).ReadString('\n')
	if err != nil {
		t.Fatalf("no response: %v", err)
	}
	return strings.TrimSpace(line)
}

// TestHeaderLimits: the request line and header fields are capped at
// Options.MaxHeaderBytes (16 KiB by default, as the reference): one byte
// more gets 431, whether in one big field or in many small ones.
func TestHeaderLimits(t *testing.T) {
	t.Parallel()
	bothAccepts(t, testHeaderLimits)
}

// bothAccepts runs test with upgrades read by net/http and, with
// OwnDescriptors, by the server itself (Server.UpgradeListener).
func bothAccepts(t *testing.T, test func(t *testing.T, opts sc.Options)) {
	for _, own := range []bool{false, true} {
		t.Run(map[bool]string{false: "net-http", true: "own-accept"}[own], func(t *testing.T) {
			test(t, sc.Options{OwnDescriptors: own})
		})
	}
}

func testHeaderLimits(t *testing.T, opts sc.Options) {
	ts := newServer(t, opts)
	start := upgradeStart(ts.addr)
	field := func(total int) string { // one field making the request total bytes long
		return "X-Big: " + strings.Repeat("a", total-len(start)-len("X-Big: \r\n\r\n")) + "\r\n"
	}
	if got := statusOf(t, ts.addr, start+field(16<<10)+"\r\n"); !strings.HasPrefix(got, "HTTP/1.1 101") {
		t.Fatalf("request of exactly 16 KiB: %q, want 101", got)
	}
	if got := statusOf(t, ts.addr, start+field(16<<10+1)+"\r\n"); !strings.HasPrefix(got, "HTTP/1.1 431") {
		t.Fatalf("request of 16 KiB + 1: %q, want 431", got)
	}
	var many strings.Builder
	for i := range 3000 {
		fmt.Fprintf(&many, "X-%d: v\r\n", i)
	}
	if got := statusOf(t, ts.addr, start+many.String()+"\r\n"); !strings.HasPrefix(got, "HTTP/1.1 431") {
		t.Fatalf("3000 header fields: %q, want 431", got)
	}
	// A plain HTTP request is capped too.
	if got := statusOf(t, ts.addr, "GET / HTTP/1.1\r\nHost: x\r\n"+field(20<<10)+"\r\n"); !strings.HasPrefix(got, "HTTP/1.1 431") {
		t.Fatalf("plain request over the cap: %q, want 431", got)
	}
	// The option moves the cap.
	opts.MaxHeaderBytes = 64 << 10
	big := newServer(t, opts)
	if got := statusOf(t, big.addr, upgradeStart(big.addr)+strings.Repeat("X-A: b\r\n", 4000)+"\r\n"); !strings.HasPrefix(got, "HTTP/1.1 101") {
		t.Fatalf("32 KiB request with MaxHeaderBytes 64 KiB: %q, want 101", got)
	}
	eventually(t, "refusals counted", func() bool { return ts.Stats().HTTPRefusals == 3 })
}

// TestHeaderBomb: connections sending nearly 1 MB of header and never
// finishing it are refused at 16 KiB with 431 instead of each holding
// megabytes, and the server keeps serving. The refusals are counted and
// logged once for the burst. (Not parallel: it measures the heap.)
func TestHeaderBomb(t *testing.T) { bothAccepts(t, testHeaderBomb) }

func testHeaderBomb(t *testing.T, opts sc.Options) {
	logs := &lockedBuffer{}
	opts.Logger = slog.New(slog.NewTextHandler(logs, nil))
	ts := newServer(t, opts)
	canary, _ := ts.connect(t, nil)
	const conns = 100
	bomb := []byte(upgradeStart(ts.addr) + "X-Bomb: " + strings.Repeat("a", 1000000))
	heap := func() uint64 {
		runtime.GC()
		var m runtime.MemStats
		runtime.ReadMemStats(&m)
		return m.HeapInuse
	}
	before := heap()
	cs := make([]net.Conn, conns)
	var wg sync.WaitGroup
	for i := range cs {
		c, err := net.Dial("tcp", ts.addr)
		if err != nil {
			t.Fatal(err)
		}
		cs[i] = c
		defer c.Close()
		_ = c.SetDeadline(time.Now().Add(wait))
		wg.Add(1)
		go func() { defer wg.Done(); _, _ = c.Write(bomb) }()
	}
	// Every bomb was written, or refused part-way.
	wg.Wait()
	if grown := int64(heap()) - int64(before); grown > 30<<20 {
		t.Fatalf("the heap grew by %d MiB for %d connections of unfinished headers", grown>>20, conns)
	}
	for i, c := range cs {
		line, err := bufio.NewReader(c).ReadString('\n')
		if err == nil && !strings.HasPrefix(line, "HTTP/1.1 431") {
			t.Fatalf("connection %d: %q, want 431", i, line)
		}
	}
	barrier(t, canary)
	eventually(t, "every refusal counted", func() bool { return ts.Stats().HTTPRefusals == conns })
	if n := strings.Count(logs.String(), "dropped before a complete request"); n != 1 {
		t.Fatalf("%d log lines for one burst of refusals, want 1:\n%s", n, logs.String())
	}
}

// TestSlowloris: a client that sends its header a few bytes at a time, or
// nothing at all, is dropped after Options.ReadHeaderTimeout while other
// clients are served.
func TestSlowloris(t *testing.T) {
	t.Parallel()
	bothAccepts(t, testSlowloris)
}

func testSlowloris(t *testing.T, opts sc.Options) {
	opts.ReadHeaderTimeout = 500 * time.Millisecond
	ts := newServer(t, opts)
	trickle, err := net.Dial("tcp", ts.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer trickle.Close()
	silent, err := net.Dial("tcp", ts.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer silent.Close()
	dropped := make(chan error, 2)
	go func() { // one header byte every 50 ms, for at most 20 s
		req := upgradeStart(ts.addr) + strings.Repeat("X-Slow: y\r\n", 40)
		for i := 0; i < len(req); i++ {
			if _, err := trickle.Write([]byte{req[i]}); err != nil {
				dropped <- nil
				return
			}
			time.Sleep(50 * time.Millisecond)
		}
		dropped <- fmt.Errorf("the trickling client was never dropped")
	}()
	go func() {
		_ = silent.SetReadDeadline(time.Now().Add(wait))
		_, err := silent.Read(make([]byte, 1))
		if err == io.EOF {
			dropped <- nil
			return
		}
		dropped <- fmt.Errorf("silent client: %v, want EOF", err)
	}()
	// Meanwhile others are served.
	c, _ := ts.connect(t, nil)
	barrier(t, c)
	for range 2 {
		if err := <-dropped; err != nil {
			t.Fatal(err)
		}
	}
	barrier(t, c)
	eventually(t, "both counted", func() bool { return ts.Stats().HTTPRefusals == 2 })
}

// TestNumbersJSONCannotHold: numbers beyond a float64 are read as
// JavaScript reads them (Infinity) and never passed on as such: a cid of
// 1e400 is answered with "rid":null, and 1e999 in data is delivered as
// null, to the invoker and to subscribers alike, as the reference does.
func TestNumbersJSONCannotHold(t *testing.T) {
	t.Parallel()
	ts := newServer(t, sc.Options{})
	c, _ := ts.connect(t, nil)
	sub, _ := ts.connect(t, nil)
	sub.Subscribe("n")
	for _, tc := range []struct{ send, want string }{
		{`{"event":"echo","data":1,"cid":1e400}`, `{"rid":null,"data":1}`},
		{`{"event":"echo","data":1,"cid":-1e400}`, `{"rid":null,"data":1}`},
		{`{"event":"echo","data":1e999,"cid":5}`, `{"rid":5,"data":null}`},
		{`{"event":"echo","data":[1e999,-1e999,{"a":1E+400}],"cid":6}`, `{"rid":6,"data":[null,null,{"a":null}]}`},
		{`{"event":"echo","data":1e-400,"cid":7}`, `{"rid":7,"data":1e-400}`},
	} {
		c.SendText(tc.send)
		c.Expect(tc.want)
	}
	c.SendText(`{"event":"#publish","data":{"channel":"n","data":{"x":1e999}},"cid":8}`)
	c.Expect(`{"rid":8}`)
	sub.Expect(`{"event":"#publish","data":{"channel":"n","data":{"x":null}}}`)
}

// TestCloseDuringUpgrades: connections whose upgrade is under way when
// Close begins (here held in the handshake middleware until then) each
// get a close frame with 1001, and Close waits for them without running
// to its deadline. The server is served by an http.Server of its own, as
// when it is mounted on an application's mux, so Close does not stop the
// upgrades from completing.
func TestCloseDuringUpgrades(t *testing.T) {
	t.Parallel()
	for round := range 3 {
		srv, err := sc.New(sc.Options{Logger: quietLogger})
		if err != nil {
			t.Fatal(err)
		}
		const n = 20
		arrived := make(chan struct{}, n)
		_ = srv.SetMiddleware(sc.MiddlewareHandshake, func(ctx context.Context, a *sc.Action) error {
			if a.Type == sc.ActionHandshakeWS {
				arrived <- struct{}{}
				for srv.Stats().Ready && ctx.Err() == nil { // until Close begins
					time.Sleep(time.Millisecond)
				}
			}
			return nil
		})
		l, err := listen()
		if err != nil {
			t.Fatal(err)
		}
		hs := srv.HTTPServer(nil)
		go func() { _ = hs.Serve(l) }()
		results := make(chan error, n)
		for range n {
			go func() {
				c, err := sctest.Connect(l.Addr().String(), &sctest.Options{AutoPong: true})
				if err != nil {
					results <- err
					return
				}
				defer c.Close()
				for {
					f, err := c.Next(wait)
					if err != nil {
						results <- fmt.Errorf("no close frame: %v", err)
						return
					}
					if f.IsClose() {
						if f.CloseCode != protocol.CloseGoingAway {
							err = fmt.Errorf("close %d, want 1001", f.CloseCode)
						}
						results <- err
						return
					}
				}
			}()
		}
		for range n {
			<-arrived
		}
		ctx, cancel := context.WithTimeout(context.Background(), wait)
		if err := srv.Close(ctx); err != nil {
			t.Fatalf("round %d: Close: %v (it ran to its deadline)", round, err)
		}
		cancel()
		for range n {
			if err := <-results; err != nil {
				t.Fatalf("round %d: %v", round, err)
			}
		}
		_ = hs.Close()
	}
}
