//go:build linux && !scnoepoll

package fastaccept

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/gobwas/ws"
	"github.com/gobwas/ws/wsutil"
	"go.uber.org/goleak"
	"golang.org/x/sys/unix"

	"github.com/socketcluster-go/socketcluster/internal/wsconn"
)

// TestMain fails the run when a goroutine is left behind: the accept
// handler, head readers and handed-on connections all end with Close.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

const path = "/ws/"

// noDeferMode makes start's listeners accept at once (Config.NoDeferAccept);
// TestWithoutDeferAccept runs tests so.
var noDeferMode bool

// TestWithoutDeferAccept runs the tests of what the listener does with
// accepts that are not deferred (where the kernel refuses the option):
// every head is then read after an event of its own, its timer set at
// accept.
func TestWithoutDeferAccept(t *testing.T) {
	noDeferMode = true
	defer func() { noDeferMode = false }()
	for _, tc := range []struct {
		name string
		f    func(*testing.T)
	}{
		{"UpgradeTakenWithoutNetHTTP", TestUpgradeTakenWithoutNetHTTP},
		{"BytesAfterHead", TestBytesAfterHead},
		{"MessageRightAfterFullHead", TestMessageRightAfterFullHead},
		{"OthersHandedToNetHTTP", TestOthersHandedToNetHTTP},
		{"SlowAndAbandonedHeads", TestSlowAndAbandonedHeads},
		{"CloseWithHeadsPending", TestCloseWithHeadsPending},
		{"OtherHijacker", TestOtherHijacker},
		{"HandedOnLeavesPoller", TestHandedOnLeavesPoller},
		{"Silent", func(t *testing.T) {
			s := start(t, Config{ReadHeaderTimeout: 300 * time.Millisecond}, nil)
			if s.l.deferred {
				t.Fatal("accepts deferred with NoDeferAccept")
			}
			c, err := net.Dial("tcp", s.addr)
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			_ = c.SetReadDeadline(time.Now().Add(10 * time.Second))
			if _, err := c.Read(make([]byte, 1)); err != io.EOF {
				t.Fatalf("silent connection: %v, want EOF (closed at the header timeout)", err)
			}
			waitFor(t, "the silent connection reported", func() bool { return s.dropped.Load() == 1 })
		}},
	} {
		t.Run(tc.name, tc.f)
	}
}

// server is an http.Server served through Wrap: upgrades for path are
// echoed by an event-driven wsconn.Conn, other paths answered by the mux.
type server struct {
	addr     string
	l        *listener
	hs       *http.Server
	served   chan error
	netHTTP  atomic.Int32 // connections net/http saw (ConnState new)
	dropped  atomic.Int32
	taken    atomic.Int32 // upgrades the handler got
	lastReq  atomic.Pointer[http.Request]
	mu       sync.Mutex
	conns    []*wsconn.Conn
	upgrader func(w http.ResponseWriter, r *http.Request) // replaces the upgrade when set
}

func start(t *testing.T, cfg Config, upgrader func(http.ResponseWriter, *http.Request), setup ...func(*http.Server)) *server {
	t.Helper()
	s := &server{served: make(chan error, 1), upgrader: upgrader}
	mux := http.NewServeMux()
	mux.HandleFunc(path, s.upgrade)
	mux.HandleFunc("/hello", func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "hello "+r.Proto) })
	s.hs = &http.Server{
		Handler: mux,
		// As HTTPServer sets it: net/http reads 4 KiB past it.
		MaxHeaderBytes:    max(cfg.MaxHeaderBytes-4096, 1),
		ReadHeaderTimeout: 5 * time.Second,
		ConnState: func(c net.Conn, st http.ConnState) {
			if st == http.StateNew {
				s.netHTTP.Add(1)
			}
		},
	}
	for _, f := range setup {
		f(s.hs)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	cfg.Handler, cfg.Server, cfg.Path = s.hs.Handler, s.hs, path
	cfg.Dropped = func() { s.dropped.Add(1) }
	cfg.NoDeferAccept = noDeferMode
	fl, ok := Wrap(l, cfg)
	if !ok {
		t.Fatal("Wrap refused a TCP listener on Linux")
	}
	s.addr = fl.Addr().String()
	s.l = fl.(*listener)
	go func() { s.served <- s.hs.Serve(fl) }()
	t.Cleanup(func() {
		_ = s.hs.Close()
		if err := <-s.served; !errors.Is(err, http.ErrServerClosed) {
			t.Errorf("Serve: %v", err)
		}
		s.mu.Lock()
		for _, c := range s.conns {
			_ = c.Close()
		}
		s.mu.Unlock()
	})
	return s
}

func (s *server) upgrade(w http.ResponseWriter, r *http.Request) {
	s.taken.Add(1)
	s.lastReq.Store(r)
	if s.upgrader != nil {
		s.upgrader(w, r)
		return
	}
	c, err := wsconn.Upgrade(w, r, wsconn.UpgradeOptions{})
	if err != nil {
		return
	}
	s.mu.Lock()
	s.conns = append(s.conns, c)
	s.mu.Unlock()
	// Echo every message, event-driven.
	if !c.Watch(wsconn.HandlerFunc(func() bool {
		for {
			isBinary, msg, err := c.NextMessage(1 << 20)
			if err == wsconn.ErrWouldBlock {
				return true
			}
			if err != nil {
				_ = c.Close()
				return false
			}
			op := ws.OpText
			if isBinary {
				op = ws.OpBinary
			}
			_ = c.WriteFrames([][]byte{ws.MustCompileFrame(ws.NewFrame(op, true, msg))})
		}
	})) {
		// A handed-on connection (net/http's) is read by a goroutine in
		// a server; here it is just closed.
		_ = c.Close()
	}
}

func dial(t *testing.T, s *server, p string) net.Conn {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, _, _, err := ws.Dialer{}.Dial(ctx, "ws://"+s.addr+p)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	return c
}

func echo(t *testing.T, c net.Conn, msg string) {
	t.Helper()
	_ = c.SetDeadline(time.Now().Add(10 * time.Second))
	if err := wsutil.WriteClientText(c, []byte(msg)); err != nil {
		t.Fatal(err)
	}
	got, err := wsutil.ReadServerText(c)
	if err != nil {
		t.Fatal(err)
	}
	if string(got) != msg {
		t.Fatalf("echo %q, want %q", got, msg)
	}
}

// An upgrade for the path is served without net/http, with the request
// as net/http would have made it; the upgraded connection is read
// event-driven from the head reader's registration.
func TestUpgradeTakenWithoutNetHTTP(t *testing.T) {
	s := start(t, Config{}, nil)
	c := dial(t, s, path+"?x=1")
	echo(t, c, "one")
	echo(t, c, "two")
	if n := s.netHTTP.Load(); n != 0 {
		t.Errorf("net/http saw %d connections", n)
	}
	r := s.lastReq.Load()
	if r.RemoteAddr != c.LocalAddr().String() {
		t.Errorf("RemoteAddr %q, want %q", r.RemoteAddr, c.LocalAddr())
	}
	if r.Host != s.addr || r.Header.Get("Host") != "" || r.URL.RawQuery != "x=1" || r.RequestURI != path+"?x=1" {
		t.Errorf("request: Host %q, header Host %q, query %q, URI %q", r.Host, r.Header.Get("Host"), r.URL.RawQuery, r.RequestURI)
	}
	if r.Context().Value(http.ServerContextKey) != s.hs {
		t.Error("no http.ServerContextKey")
	}
	if la, _ := r.Context().Value(http.LocalAddrContextKey).(net.Addr); la == nil || la.String() != s.addr {
		t.Errorf("LocalAddrContextKey %v, want %s", la, s.addr)
	}
}

// Bytes the client sent right behind its head reach the upgraded
// connection first.
func TestBytesAfterHead(t *testing.T) {
	s := start(t, Config{}, nil)
	c, err := net.Dial("tcp", s.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	frame := ws.MustCompileFrame(ws.MaskFrame(ws.NewTextFrame([]byte("early"))))
	head := "GET " + path + " HTTP/1.1\r\nHost: " + s.addr + "\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n" +
		"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
	if _, err := c.Write(append([]byte(head), frame...)); err != nil {
		t.Fatal(err)
	}
	_ = c.SetDeadline(time.Now().Add(10 * time.Second))
	if got, err := upgradedEcho(t, c); err != nil || string(got) != "early" {
		t.Fatalf("echo %q, %v", got, err)
	}
}

// upgradedEcho reads the 101 answer to an upgrade written on c by hand,
// then the echo server's first message.
func upgradedEcho(t *testing.T, c net.Conn) ([]byte, error) {
	t.Helper()
	br := bufio.NewReader(c)
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusSwitchingProtocols {
		t.Fatalf("status %d", resp.StatusCode)
	}
	return wsutil.ReadServerText(struct {
		io.Reader
		io.Writer
	}{br, c})
}

// A message sent in the same write as a head that fills the head
// reader's 4 KiB buffer exactly: the head reader's last read is full and
// leaves nothing over, the message waits in the socket, and no event is
// to come for it (the registration is edge-triggered and taken over as
// it is). The upgraded connection's reader must still read it
// (netpoll.Desc.StartAfter runs it at once after a full read).
func TestMessageRightAfterFullHead(t *testing.T) {
	s := start(t, Config{}, nil)
	c, err := net.Dial("tcp", s.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	msg := bytes.Repeat([]byte("0123456789"), 1_000)
	frame := ws.MustCompileFrame(ws.MaskFrame(ws.NewTextFrame(msg)))
	head := "GET " + path + " HTTP/1.1\r\nHost: " + s.addr + "\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n" +
		"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\nX-Pad: "
	head += strings.Repeat("p", 4096-len(head)-len("\r\n\r\n")) + "\r\n\r\n"
	if len(head) != 4096 {
		t.Fatalf("head of %d bytes", len(head))
	}
	_ = c.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := c.Write(append([]byte(head), frame...)); err != nil {
		t.Fatal(err)
	}
	got, err := upgradedEcho(t, c)
	if err != nil || !bytes.Equal(got, msg) {
		t.Fatalf("echo of %d bytes, %v; want %d bytes", len(got), err, len(msg))
	}
}

// Everything but a plain upgrade for the path goes to net/http with the
// bytes read so far, and is answered as net/http answers it: other
// paths (with keep-alive), HTTP/1.0, a POST, a missing Host, a head over
// the limit (431).
func TestOthersHandedToNetHTTP(t *testing.T) {
	s := start(t, Config{MaxHeaderBytes: 5000}, nil)
	c, err := net.Dial("tcp", s.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(10 * time.Second))
	br := bufio.NewReader(c)
	for i := range 2 { // one connection, two requests: keep-alive works
		if _, err := io.WriteString(c, "GET /hello HTTP/1.1\r\nHost: x\r\n\r\n"); err != nil {
			t.Fatal(err)
		}
		resp, err := http.ReadResponse(br, nil)
		if err != nil {
			t.Fatalf("request %d: %v", i, err)
		}
		body, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != 200 || string(body) != "hello HTTP/1.1" {
			t.Fatalf("request %d: %d %q", i, resp.StatusCode, body)
		}
	}
	upgrade := "Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n"
	for _, tc := range []struct {
		name, req string
		status    int // 0: whatever the handler answers
	}{
		{"other path", "GET /hello HTTP/1.1\r\nHost: x\r\n" + upgrade + "\r\n", 200},
		{"HTTP/1.0", "GET " + path + " HTTP/1.0\r\nHost: x\r\n" + upgrade + "\r\n", 0},
		{"POST", "POST " + path + " HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n" + upgrade + "\r\n", 0},
		{"no Host", "GET " + path + " HTTP/1.1\r\n" + upgrade + "\r\n", 400},
		{"two Hosts", "GET " + path + " HTTP/1.1\r\nHost: x\r\nHost: y\r\n" + upgrade + "\r\n", 400},
		{"malformed", "GET " + path + "\r\n\r\n", 400},
		{"odd Host", "GET " + path + " HTTP/1.1\r\nHost: x<y>\r\n" + upgrade + "\r\n", 400},
		{"too large", "GET " + path + " HTTP/1.1\r\nHost: x\r\nX-Big: " + strings.Repeat("a", 6000) + "\r\n" + upgrade + "\r\n", 431},
	} {
		before := s.netHTTP.Load()
		c, err := net.Dial("tcp", s.addr)
		if err != nil {
			t.Fatal(err)
		}
		_ = c.SetDeadline(time.Now().Add(10 * time.Second))
		if _, err := io.WriteString(c, tc.req); err != nil {
			t.Fatal(err)
		}
		resp, err := http.ReadResponse(bufio.NewReader(c), nil)
		_ = c.Close()
		if err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		if tc.status != 0 && resp.StatusCode != tc.status {
			t.Errorf("%s: status %d, want %d", tc.name, resp.StatusCode, tc.status)
		}
		if s.netHTTP.Load() != before+1 {
			t.Errorf("%s: not served by net/http", tc.name)
		}
	}
}

// A refused upgrade (a response without Hijack) is written whole, with
// Connection: close, and the connection closed.
func TestRefusedUpgradeAnswered(t *testing.T) {
	s := start(t, Config{}, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("X-Why", "test")
		w.WriteHeader(http.StatusForbidden)
		io.WriteString(w, "not you")
	})
	c, err := net.Dial("tcp", s.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(10 * time.Second))
	io.WriteString(c, "GET "+path+" HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n")
	br := bufio.NewReader(c)
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 403 || string(body) != "not you" || resp.Header.Get("X-Why") != "test" ||
		!resp.Close || resp.Header.Get("Date") == "" || resp.ContentLength != 7 {
		t.Errorf("response %d %q %v", resp.StatusCode, body, resp.Header)
	}
	if _, err := br.ReadByte(); err != io.EOF {
		t.Errorf("after the response: %v, want EOF", err)
	}
	if s.netHTTP.Load() != 0 {
		t.Error("served by net/http")
	}
}

// A head not complete within the header timeout is dropped and reported;
// a connection that sent part of a head and closed is reported; one that
// sent nothing and closed is not.
func TestSlowAndAbandonedHeads(t *testing.T) {
	s := start(t, Config{ReadHeaderTimeout: 300 * time.Millisecond}, nil)
	slow, err := net.Dial("tcp", s.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer slow.Close()
	io.WriteString(slow, "GET "+path+" HTTP/1.1\r\nHost: x\r\n")
	_ = slow.SetReadDeadline(time.Now().Add(10 * time.Second))
	if _, err := slow.Read(make([]byte, 1)); err != io.EOF {
		t.Fatalf("slow head: %v, want EOF (closed by the server)", err)
	}
	waitFor(t, "the slow head reported", func() bool { return s.dropped.Load() == 1 })

	probe, _ := net.Dial("tcp", s.addr)
	_ = probe.Close()
	partial, _ := net.Dial("tcp", s.addr)
	io.WriteString(partial, "GET / HT")
	_ = partial.Close()
	waitFor(t, "the abandoned head reported", func() bool { return s.dropped.Load() == 2 })
	time.Sleep(500 * time.Millisecond) // past the timeout: the probe is not reported late
	if n := s.dropped.Load(); n != 2 {
		t.Errorf("%d dropped, want 2 (the probe is not a refusal)", n)
	}
	if s.netHTTP.Load() != 0 || s.taken.Load() != 0 {
		t.Error("a dropped head reached a handler")
	}
}

// Close ends accepting, closes the connections whose head was being read,
// and Serve returns http.ErrServerClosed (TestMain checks that nothing is
// left running).
func TestCloseWithHeadsPending(t *testing.T) {
	s := start(t, Config{}, nil)
	var cs []net.Conn
	for range 5 {
		c, err := net.Dial("tcp", s.addr)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		io.WriteString(c, "GET "+path)
		cs = append(cs, c)
	}
	live := dial(t, s, path)
	echo(t, live, "before")
	if err := s.hs.Close(); err != nil {
		t.Fatal(err)
	}
	for i, c := range cs {
		_ = c.SetReadDeadline(time.Now().Add(10 * time.Second))
		if _, err := c.Read(make([]byte, 1)); err != io.EOF {
			t.Errorf("pending head %d: %v, want EOF", i, err)
		}
	}
	if _, err := net.DialTimeout("tcp", s.addr, time.Second); err == nil {
		t.Error("still accepting after Close")
	}
	// The upgraded connection is not the listener's: it still echoes.
	echo(t, live, "after")
}

func TestWrapRefusesOtherListeners(t *testing.T) {
	l, err := net.Listen("unix", t.TempDir()+"/s")
	if err != nil {
		t.Skip(err)
	}
	defer l.Close()
	if got, ok := Wrap(l, Config{Handler: http.NotFoundHandler()}); ok || got != l {
		t.Error("Wrap took a Unix listener")
	}
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func TestHeadEnd(t *testing.T) {
	for _, tc := range []struct {
		in   string
		from int
		want int
	}{
		{"GET / HTTP/1.1\r\nHost: x\r\n\r\n", 0, 27},
		{"GET / HTTP/1.1\nHost: x\n\n", 0, 24},
		{"GET / HTTP/1.1\r\nHost: x\r\n", 0, 0},
		{"GET / HTTP/1.1\r\nHost: x\r\n\r", 0, 0},
		{"a\r\n\r\nrest", 0, 5},
		{"a\r\n\r\nrest", 2, 5},
	} {
		if got := headEnd([]byte(tc.in), tc.from); got != tc.want {
			t.Errorf("headEnd(%q, %d) = %d, want %d", tc.in, tc.from, got, tc.want)
		}
	}
}

// A panic in the handler is recovered as net/http recovers it: logged
// (not http.ErrAbortHandler), the connection closed, the server unharmed.
func TestHandlerPanic(t *testing.T) {
	var logged strings.Builder
	var mu sync.Mutex
	s := start(t, Config{}, func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Query().Get("abort") != "" {
			panic(http.ErrAbortHandler)
		}
		panic("boom")
	}, func(hs *http.Server) {
		hs.ErrorLog = log.New(writerFunc(func(p []byte) (int, error) {
			mu.Lock()
			defer mu.Unlock()
			return logged.Write(p)
		}), "", 0)
	})
	for _, q := range []string{"", "?abort=1"} {
		c, err := net.Dial("tcp", s.addr)
		if err != nil {
			t.Fatal(err)
		}
		_ = c.SetDeadline(time.Now().Add(10 * time.Second))
		io.WriteString(c, "GET "+path+q+" HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n")
		if n, err := c.Read(make([]byte, 1)); err != io.EOF {
			t.Errorf("%q: read %d, %v; want EOF", q, n, err)
		}
		_ = c.Close()
	}
	mu.Lock()
	out := logged.String()
	mu.Unlock()
	if strings.Count(out, "http: panic serving") != 1 || !strings.Contains(out, "boom") {
		t.Errorf("log: %q, want one line for the panic (none for ErrAbortHandler)", out)
	}
}

type writerFunc func([]byte) (int, error)

func (f writerFunc) Write(p []byte) (int, error) { return f(p) }

// A handler of its own at the path may hijack and use the connection as
// any net.Conn: read, write, deadlines, close. It may read what came
// right after the head through the hijacked reader, or read the
// connection itself after its handler returned: the connection then moves
// to the net package at that first read and keeps working (its
// registration left netpoll when the handler returned; the move must not
// fail on it).
func TestOtherHijacker(t *testing.T) {
	for _, tc := range []struct {
		name         string
		early, later string // sent with the head, sent after the 101
		readConn     bool   // the hijacker reads nc, not the hijacked reader
	}{
		{name: "buffered", early: "early\n"},
		{name: "reads later", later: "later\n", readConn: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := start(t, Config{}, func(w http.ResponseWriter, r *http.Request) {
				nc, rw, err := http.NewResponseController(w).Hijack()
				if err != nil {
					t.Error(err)
					return
				}
				go func() {
					defer nc.Close()
					_ = nc.SetDeadline(time.Now().Add(10 * time.Second))
					io.WriteString(nc, "HTTP/1.1 101 Switching Protocols\r\nUpgrade: echo\r\nConnection: Upgrade\r\n\r\n")
					r := rw.Reader
					if tc.readConn {
						r = bufio.NewReader(nc)
					}
					line, err := r.ReadString('\n')
					if err != nil {
						t.Error(err)
						return
					}
					io.WriteString(nc, "echo: "+line)
				}()
			})
			c, err := net.Dial("tcp", s.addr)
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			_ = c.SetDeadline(time.Now().Add(10 * time.Second))
			io.WriteString(c, "GET "+path+" HTTP/1.1\r\nHost: x\r\nUpgrade: echo\r\nConnection: Upgrade\r\n\r\n"+tc.early)
			br := bufio.NewReader(c)
			resp, err := http.ReadResponse(br, nil)
			if err != nil || resp.StatusCode != 101 {
				t.Fatalf("%v, %v", resp, err)
			}
			io.WriteString(c, tc.later)
			line, err := br.ReadString('\n')
			if want := "echo: " + tc.early + tc.later; err != nil || line != want {
				t.Fatalf("%q, %v; want %q", line, err, want)
			}
		})
	}
}

func TestPlainHost(t *testing.T) {
	for host, want := range map[string]bool{
		"example.com": true, "example.com:8000": true, "127.0.0.1:1": true, "[::1]:80": true, "a_b-c.d": true,
		"x<y>": false, "exämple.com": false, "a b": false, "a/b": false, "user@host": false,
	} {
		if plainHost(host) != want {
			t.Errorf("plainHost(%q) = %v", host, !want)
		}
	}
}

// Closing while connections arrive and send heads ends cleanly, every
// time (TestMain checks that nothing is left running).
func TestCloseWhileAccepting(t *testing.T) {
	for range 20 {
		hs := &http.Server{Handler: http.NotFoundHandler()}
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		fl, _ := Wrap(l, Config{Handler: hs.Handler, Server: hs, Path: path, ReadHeaderTimeout: time.Second})
		served := make(chan error, 1)
		go func() { served <- hs.Serve(fl) }()
		var wg sync.WaitGroup
		stop := make(chan struct{})
		for range 4 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for {
					select {
					case <-stop:
						return
					default:
					}
					c, err := net.DialTimeout("tcp", fl.Addr().String(), time.Second)
					if err != nil {
						continue
					}
					io.WriteString(c, "GET "+path+" HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n")
					_ = c.Close()
				}
			}()
		}
		time.Sleep(20 * time.Millisecond)
		_ = hs.Close()
		if err := <-served; !errors.Is(err, http.ErrServerClosed) {
			t.Fatalf("Serve: %v", err)
		}
		close(stop)
		wg.Wait()
	}
}

// Every accepted socket has TCP_NODELAY, as the net package sets it: the
// first one and the later ones (which inherit it from the listening
// socket), upgrades taken here and connections handed to net/http alike.
func TestAcceptedSocketsNoDelay(t *testing.T) {
	noDelay := func(rc syscall.RawConn) int {
		v := -1
		_ = rc.Control(func(fd uintptr) { v, _ = unix.GetsockoptInt(int(fd), unix.IPPROTO_TCP, unix.TCP_NODELAY) })
		return v
	}
	got := make(chan int, 1)
	s := start(t, Config{}, func(w http.ResponseWriter, r *http.Request) {
		nc, _, err := http.NewResponseController(w).Hijack()
		if err != nil {
			t.Error(err)
			got <- -1
			return
		}
		defer nc.Close()
		a, ok := nc.(*wsconn.Accepted)
		if !ok {
			t.Errorf("hijacked a %T", nc)
			got <- -1
			return
		}
		got <- noDelay(a.RawConn())
	}, func(hs *http.Server) {
		hs.ConnState = func(c net.Conn, st http.ConnState) {
			if st != http.StateNew {
				return
			}
			if sc, ok := c.(syscall.Conn); ok {
				if rc, err := sc.SyscallConn(); err == nil {
					got <- noDelay(rc)
					return
				}
			}
			t.Errorf("net/http got a %T", c)
			got <- -1
		}
	})
	for i, req := range []string{
		"GET " + path + " HTTP/1.1\r\nHost: x\r\nUpgrade: echo\r\nConnection: Upgrade\r\n\r\n",
		"GET " + path + " HTTP/1.1\r\nHost: x\r\nUpgrade: echo\r\nConnection: Upgrade\r\n\r\n",
		"GET /hello HTTP/1.1\r\nHost: x\r\n\r\n",
		"GET " + path + " HTTP/1.1\r\nHost: x\r\nUpgrade: echo\r\nConnection: Upgrade\r\n\r\n",
	} {
		c, err := net.Dial("tcp", s.addr)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := io.WriteString(c, req); err != nil {
			t.Fatal(err)
		}
		select {
		case v := <-got:
			if v != 1 {
				t.Errorf("connection %d: TCP_NODELAY is %d, want 1", i, v)
			}
		case <-time.After(10 * time.Second):
			t.Fatalf("connection %d never reached a handler", i)
		}
		_ = c.Close()
	}
}

// The listening socket defers accepts (TCP_DEFER_ACCEPT): a connection
// that has sent nothing is not accepted at once; after deferAccept it is
// accepted all the same, its head then read when it comes (announced by
// an event, not found at accept), or, when none comes, dropped at the
// header timeout.
func TestDeferredAccept(t *testing.T) {
	s := start(t, Config{ReadHeaderTimeout: 4 * time.Second}, nil)
	if !s.l.deferred {
		t.Fatal("the listening socket does not defer accepts")
	}
	pending := func() int {
		s.l.mu.Lock()
		defer s.l.mu.Unlock()
		return len(s.l.pending)
	}
	var silent [2]net.Conn
	for i := range silent {
		c, err := net.Dial("tcp", s.addr)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		silent[i] = c
	}
	time.Sleep(200 * time.Millisecond)
	if n := pending(); n != 0 {
		t.Fatalf("%d silent connections accepted at once, want 0 (deferred for %d s)", n, deferAccept)
	}
	waitFor(t, "the silent connections to be accepted after the deferral", func() bool { return pending() == 2 })

	// The first sends its upgrade now.
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	late, _, _, err := ws.Dialer{NetDial: func(context.Context, string, string) (net.Conn, error) {
		return silent[0], nil
	}}.Dial(ctx, "ws://"+s.addr+path)
	if err != nil {
		t.Fatal(err)
	}
	echo(t, late, "late")

	// The second never does.
	_ = silent[1].SetReadDeadline(time.Now().Add(20 * time.Second))
	if _, err := silent[1].Read(make([]byte, 1)); err != io.EOF {
		t.Fatalf("silent connection: %v, want EOF (closed at the header timeout)", err)
	}
	waitFor(t, "the silent connection reported", func() bool { return s.dropped.Load() == 1 })
	if s.netHTTP.Load() != 0 || s.taken.Load() != 1 {
		t.Errorf("net/http saw %d, the handler %d; want 0 and 1", s.netHTTP.Load(), s.taken.Load())
	}
}

// A connection handed on to net/http after its head needed an event (so
// it was registered with netpoll) leaves netpoll's epoll set: only the
// runtime's poller watches the socket then, through the net package's
// duplicate of the descriptor. An edge-triggered registration would
// otherwise outlive the descriptor it was made with (epoll entries are
// found by the socket's inode in /proc/self/fdinfo).
func TestHandedOnLeavesPoller(t *testing.T) {
	s := start(t, Config{}, nil)
	c, err := net.Dial("tcp", s.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(10 * time.Second))
	io.WriteString(c, "GET /hello HTTP/1.1\r\n")
	var ino string
	// The server's end has an inode once it is accepted (after the data,
	// as the listener defers accepts).
	waitFor(t, "the accept", func() bool { ino = serverInode(t, c); return ino != "0" })
	waitFor(t, "the unfinished head to be watched", func() bool { return epollEntries(t, ino) == 1 })
	io.WriteString(c, "Host: x\r\n\r\n")
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if s.netHTTP.Load() != 1 {
		t.Fatal("not served by net/http")
	}
	if n := epollEntries(t, ino); n != 1 {
		t.Fatalf("the socket is in %d epoll sets, want 1 (the runtime's)", n)
	}
}

// serverInode returns the inode of the server's end of c, a loopback
// connection to this process, from /proc/net/tcp: "0" until the server
// has accepted it.
func serverInode(t *testing.T, c net.Conn) string {
	t.Helper()
	local := fmt.Sprintf(":%04X ", c.RemoteAddr().(*net.TCPAddr).Port)
	remote := fmt.Sprintf(":%04X ", c.LocalAddr().(*net.TCPAddr).Port)
	b, err := os.ReadFile("/proc/net/tcp")
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(b), "\n") {
		f := strings.Fields(line)
		if len(f) > 9 && strings.HasSuffix(f[1]+" ", local) && strings.HasSuffix(f[2]+" ", remote) {
			return f[9]
		}
	}
	return "0" // a request socket, not listed before the handshake completes
}

// epollEntries counts the entries for the socket with inode ino (decimal)
// in this process's epoll sets.
func epollEntries(t *testing.T, ino string) int {
	t.Helper()
	n, err := strconv.ParseUint(ino, 10, 64)
	if err != nil {
		t.Fatal(err)
	}
	want := fmt.Sprintf(" ino:%x ", n)
	fds, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Fatal(err)
	}
	count := 0
	for _, fd := range fds {
		if l, err := os.Readlink("/proc/self/fd/" + fd.Name()); err != nil || l != "anon_inode:[eventpoll]" {
			continue
		}
		b, err := os.ReadFile("/proc/self/fdinfo/" + fd.Name())
		if err != nil {
			continue // closed meanwhile
		}
		for _, line := range strings.Split(string(b), "\n") {
			if strings.HasPrefix(line, "tfd:") && strings.Contains(line+" ", want) {
				count++
			}
		}
	}
	return count
}
