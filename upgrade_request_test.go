package socketcluster

import (
	"bufio"
	"net"
	"net/http"
	"reflect"
	"runtime"
	"strings"
	"testing"
	"time"
	"weak"

	"github.com/socketcluster-go/socketcluster/internal/wsconn"
)

func TestUpgradeRequestRoundTrip(t *testing.T) {
	t.Parallel()
	raw := "GET /socketcluster/?a=1&b=x%20y HTTP/1.1\r\n" +
		"Host: example.com:8000\r\n" +
		"Upgrade: websocket\r\n" +
		"Connection: Upgrade\r\n" +
		"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n" +
		"Sec-WebSocket-Version: 13\r\n" +
		"Sec-WebSocket-Protocol: a, b\r\n" +
		"X-Forwarded-For: 10.0.0.1, 10.0.0.2\r\n" +
		"X-Multi: one\r\n" +
		"X-Multi: two\r\n" +
		"Cookie: s=1; t=2\r\n" +
		"Origin: http://example.com\r\n\r\n"
	orig, err := http.ReadRequest(bufio.NewReader(strings.NewReader(raw)))
	if err != nil {
		t.Fatal(err)
	}
	orig.RemoteAddr = "1.2.3.4:5"
	got := newUpgradeRequest(orig).parse("1.2.3.4:5", nil)
	if got.Method != orig.Method || got.URL.String() != orig.URL.String() || got.Proto != orig.Proto ||
		got.Host != orig.Host || got.RequestURI != orig.RequestURI || got.RemoteAddr != orig.RemoteAddr {
		t.Fatalf("got %s %s %s host %s uri %s remote %s", got.Method, got.URL, got.Proto, got.Host, got.RequestURI, got.RemoteAddr)
	}
	if !reflect.DeepEqual(got.Header, orig.Header) {
		t.Fatalf("headers %v, want %v", got.Header, orig.Header)
	}
	if c, err := got.Cookie("t"); err != nil || c.Value != "2" {
		t.Fatalf("cookie t: %v %v", c, err)
	}
	if got.URL.Query().Get("b") != "x y" || got.Context() == nil {
		t.Fatal("query or context")
	}
}

// Headers with the values every upgrade request has are not kept, and come
// back from parse; other values, repeated headers and absent ones come back
// as they were.
func TestUpgradeRequestElidedHeaders(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		name, headers string
		elided        int // bytes of header lines not kept
	}{
		{"standard", "Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 13\r\n", 68},
		{"firefox", "Upgrade: websocket\r\nConnection: keep-alive, Upgrade\r\nSec-WebSocket-Version: 13\r\n", 47},
		{"other case", "Upgrade: WebSocket\r\nConnection: upgrade\r\n", 0},
		{"repeated", "Connection: Upgrade\r\nConnection: Upgrade\r\n", 0},
		{"none", "X-A: b\r\n", 0},
	} {
		raw := "GET /x HTTP/1.1\r\nHost: h:1\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n" + c.headers + "\r\n"
		orig, err := http.ReadRequest(bufio.NewReader(strings.NewReader(raw)))
		if err != nil {
			t.Fatal(err)
		}
		u := newUpgradeRequest(orig)
		if want := 1 + len(raw) - c.elided; len(u) != want {
			t.Errorf("%s: %d bytes kept, want %d", c.name, len(u), want)
		}
		got := u.parse("", nil)
		if !reflect.DeepEqual(got.Header, orig.Header) {
			t.Errorf("%s: headers %v, want %v", c.name, got.Header, orig.Header)
		}
		if h := u.host(); h != "h:1" {
			t.Errorf("%s: host %q", c.name, h)
		}
	}
	if r := upgradeRequest("").parse("a:1", nil); r.Method != http.MethodGet || r.RemoteAddr != "a:1" || r.Header == nil {
		t.Fatalf("empty request: %+v", r)
	}
}

// The parsed request is not kept once no one holds it: an idle socket
// keeps only the wire form. A later call parses it again.
func TestUpgradeRequestGivenBack(t *testing.T) {
	t.Parallel()
	s, remote := pipeSocket(t, "GET /socketcluster/?x=1 HTTP/1.1\r\nHost: h:1\r\nUpgrade: websocket\r\n\r\n")
	if h := s.request.host(); h != "h:1" {
		t.Fatalf("host %q", h)
	}
	first := s.Request()
	if first != s.Request() {
		t.Fatal("a request still held was parsed again")
	}
	if first.RemoteAddr != remote {
		t.Fatalf("remote address %q", first.RemoteAddr)
	}
	first = nil
	held := func() bool {
		parsedRequests.mu.Lock()
		defer parsedRequests.mu.Unlock()
		_, ok := parsedRequests.m[weak.Make(s)]
		return ok
	}
	for i := 0; i < 100 && held(); i++ {
		runtime.GC()
		time.Sleep(10 * time.Millisecond) // cleanups run in their own goroutine
	}
	if held() {
		t.Fatal("the parsed request is kept after its last user dropped it")
	}
	again := s.Request()
	if again.URL.Query().Get("x") != "1" || again.Host != "h:1" || again.Header.Get("Upgrade") != "websocket" {
		t.Fatalf("parsed again: %s %s %v", again.URL, again.Host, again.Header)
	}
	_ = first
}

// A parsed request that the application keeps does not keep its socket:
// the cache holds both weakly.
func TestParsedRequestDoesNotKeepSocket(t *testing.T) {
	t.Parallel()
	s, _ := pipeSocket(t, "GET /socketcluster/ HTTP/1.1\r\nHost: h:1\r\n\r\n")
	r := s.Request()
	ws := weak.Make(s)
	s = nil
	for i := 0; i < 100 && ws.Value() != nil; i++ {
		runtime.GC()
		time.Sleep(time.Millisecond)
	}
	if ws.Value() != nil {
		t.Fatal("the socket is kept alive by the request it parsed")
	}
	if r.Host != "h:1" {
		t.Fatalf("host %q", r.Host)
	}
	runtime.KeepAlive(r)
}

// pipeSocket is a Socket with the upgrade request raw over one end of a
// net.Pipe, and that end's remote address.
func pipeSocket(t *testing.T, raw string) (*Socket, string) {
	t.Helper()
	orig, err := http.ReadRequest(bufio.NewReader(strings.NewReader(raw)))
	if err != nil {
		t.Fatal(err)
	}
	a, b := net.Pipe()
	t.Cleanup(func() { _ = a.Close(); _ = b.Close() })
	return &Socket{request: newUpgradeRequest(orig), conn: wsconn.New(a, nil, 0)}, a.RemoteAddr().String()
}
