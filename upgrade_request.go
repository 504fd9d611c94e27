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
// when asked. The parsed form (a Request with its URL and header map)
// costs more than a kilobyte, and most applications look at it only during
// the handshake, if at all: it is held through a weak pointer, so the same
// *http.Request is returned while anyone holds it, and the memory is given
// back once no one does (a later call parses the bytes again). The remote
// address and TLS state are not kept here: they are the socket's
// connection's, read when the request is parsed.
type upgradeRequest struct {
	raw    []byte // request line and headers
	mu     sync.Mutex
	parsed weak.Pointer[http.Request]
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

// get returns the request: the one returned before if it is still in use,
// else parsed again. It has the original's method, URL, protocol, host,
// headers, the given remote address and TLS state, no body, and
// context.Background() as its context.
func (u *upgradeRequest) get(remote string, tlsState func() *tls.ConnectionState) *http.Request {
	u.mu.Lock()
	defer u.mu.Unlock()
	if r := u.parsed.Value(); r != nil {
		return r
	}
	r, err := http.ReadRequest(bufio.NewReaderSize(bytes.NewReader(u.raw), len(u.raw)+16))
	if err != nil {
		// Not expected: the bytes come from a request the HTTP server
		// parsed. Keep what is certain.
		r = &http.Request{Method: http.MethodGet, URL: &url.URL{}, Header: http.Header{}, Body: http.NoBody}
	}
	r.RemoteAddr, r.TLS = remote, tlsState()
	u.parsed = weak.Make(r)
	return r
}
