package socketcluster

import (
	"bufio"
	"crypto/tls"
	"net/http"
	"reflect"
	"runtime"
	"strings"
	"testing"
)

func TestUpgradeRequestRoundTrip(t *testing.T) {
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
	orig.RemoteAddr = "127.0.0.1:5555"
	u := newUpgradeRequest(orig)
	got := u.get(orig.RemoteAddr, noTLS)
	if got != u.get(orig.RemoteAddr, noTLS) {
		t.Fatal("get parsed twice")
	}
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

func noTLS() *tls.ConnectionState { return nil }

// TestUpgradeRequestPeek: the handshake middleware's request (peek) is not
// kept by the socket once nobody holds it; while it is held, Request
// returns that same request and keeps it from then on.
func TestUpgradeRequestPeek(t *testing.T) {
	t.Parallel()
	raw := "GET /socketcluster/?x=1 HTTP/1.1\r\nHost: h:1\r\nUpgrade: websocket\r\nX-A: b\r\n\r\n"
	orig, err := http.ReadRequest(bufio.NewReader(strings.NewReader(raw)))
	if err != nil {
		t.Fatal(err)
	}
	u := newUpgradeRequest(orig)
	p := u.peek("1.2.3.4:5", noTLS)
	if p.URL.Query().Get("x") != "1" || p.Header.Get("X-A") != "b" || p.RemoteAddr != "1.2.3.4:5" {
		t.Fatalf("peeked %v %v %q", p.URL, p.Header, p.RemoteAddr)
	}
	if u.peek("1.2.3.4:5", noTLS) != p {
		t.Fatal("a second peek while the first is alive parsed again")
	}
	if u.parsed != nil || u.raw == nil {
		t.Fatal("peek kept the parsed request")
	}
	runtime.KeepAlive(p)
	p = nil
	for i := 0; i < 10 && u.peeked.Value() != nil; i++ {
		runtime.GC()
	}
	if u.peeked.Value() != nil {
		t.Fatal("the peeked request is still reachable from the socket after ten collections")
	}

	// Held by the middleware when Request is called: the same request.
	p = u.peek("1.2.3.4:5", noTLS)
	g := u.get("1.2.3.4:5", noTLS)
	if g != p || u.parsed != p || u.raw != nil {
		t.Fatal("get did not keep the request the middleware holds")
	}
	if u.peek("1.2.3.4:5", noTLS) != g {
		t.Fatal("peek after get returned another request")
	}
}
