package socketcluster

import (
	"bufio"
	"bytes"
	"crypto/tls"
	"net/http"
	"net/url"
	"sync"
	"weak"
)

// upgradeRequest keeps a socket's HTTP upgrade request for Socket.Request
// in its wire form, one byte slice of a few hundred bytes, and parses it
// again on the first call. The parsed form (a Request with its URL and
// header map, plus the HTTP server's context chain) costs an idle
// connection more than a kilobyte, and most applications never look at it
// after the handshake middleware.
//
// The HANDSHAKE_SC middleware gets a request from peek, which is not kept:
// the socket holds it only through a weak pointer, so that a Socket.Request
// call while the middleware still holds it returns the same request, and
// an idle socket whose middleware looked at its request keeps the wire
// form only. The remote address and TLS state are not kept here: they are
// the socket's connection's, read when the request is parsed.
type upgradeRequest struct {
	mu     sync.Mutex
	raw    []byte // request line and headers; nil once parsed
	parsed *http.Request
	peeked weak.Pointer[http.Request] // the last peek's request, while it lives
}

func newUpgradeRequest(r *http.Request) *upgradeRequest {
	n := len(r.Method) + len(r.RequestURI) + len(r.Proto) + len(r.Host) + 16
	for k, vs := range r.Header {
		for _, v := range vs {
			n += len(k) + len(v) + 4
		}
	}
	b := make([]byte, 0, n)
	b = append(append(append(append(append(b, r.Method...), ' '), r.RequestURI...), ' '), r.Proto...)
	b = append(append(append(b, "\r\nHost: "...), r.Host...), "\r\n"...)
	for k, vs := range r.Header {
		for _, v := range vs {
			b = append(append(append(append(b, k...), ": "...), v...), "\r\n"...)
		}
	}
	b = append(b, "\r\n"...)
	return &upgradeRequest{raw: b}
}

// get returns the request, parsed on the first call and kept. It has the
// original's method, URL, protocol, host and headers, the given remote
// address and TLS state, no body, and context.Background() as its context.
func (u *upgradeRequest) get(remote string, tlsState func() *tls.ConnectionState) *http.Request {
	u.mu.Lock()
	defer u.mu.Unlock()
	if u.parsed != nil {
		return u.parsed
	}
	r := u.peeked.Value()
	if r == nil {
		r = u.parse(remote, tlsState)
	}
	u.parsed, u.raw, u.peeked = r, nil, weak.Pointer[http.Request]{}
	return r
}

// peek returns the kept request if there is one, else the request that
// the last peek returned if it is still alive, else a new parse that the
// socket does not keep.
func (u *upgradeRequest) peek(remote string, tlsState func() *tls.ConnectionState) *http.Request {
	u.mu.Lock()
	defer u.mu.Unlock()
	if u.parsed != nil {
		return u.parsed
	}
	if r := u.peeked.Value(); r != nil {
		return r
	}
	r := u.parse(remote, tlsState)
	u.peeked = weak.Make(r)
	return r
}

func (u *upgradeRequest) parse(remote string, tlsState func() *tls.ConnectionState) *http.Request {
	r, err := http.ReadRequest(bufio.NewReaderSize(bytes.NewReader(u.raw), len(u.raw)+16))
	if err != nil {
		// Not expected: the bytes come from a request the HTTP server
		// parsed. Keep what is certain.
		r = &http.Request{Method: http.MethodGet, URL: &url.URL{}, Header: http.Header{}, Body: http.NoBody}
	}
	r.RemoteAddr, r.TLS = remote, tlsState()
	return r
}
