package socketcluster

import (
	"bufio"
	"bytes"
	"crypto/tls"
	"net/http"
	"net/url"
	"sync"
)

// upgradeRequest keeps a socket's HTTP upgrade request for Socket.Request
// in its wire form, one byte slice of a few hundred bytes, and parses it
// again on the first call. The parsed form (a Request with its URL and
// header map, plus the HTTP server's context chain) costs an idle
// connection more than a kilobyte, and most applications never look at it
// after the handshake middleware, which gets the original.
type upgradeRequest struct {
	raw    []byte // request line and headers; nil once parsed
	remote string
	tls    *tls.ConnectionState

	mu     sync.Mutex
	parsed *http.Request
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
	return &upgradeRequest{raw: b, remote: r.RemoteAddr, tls: r.TLS}
}

// get returns the request, parsed on the first call. It has the original's
// method, URL, protocol, host, headers, remote address and TLS state, no
// body, and context.Background() as its context.
func (u *upgradeRequest) get() *http.Request {
	u.mu.Lock()
	defer u.mu.Unlock()
	if u.parsed != nil {
		return u.parsed
	}
	r, err := http.ReadRequest(bufio.NewReaderSize(bytes.NewReader(u.raw), len(u.raw)+16))
	if err != nil {
		// Not expected: the bytes come from a request the HTTP server
		// parsed. Keep what is certain.
		r = &http.Request{Method: http.MethodGet, URL: &url.URL{}, Header: http.Header{}, Body: http.NoBody}
	}
	r.RemoteAddr, r.TLS = u.remote, u.tls
	u.parsed, u.raw = r, nil
	return r
}
