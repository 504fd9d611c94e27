package socketcluster

import (
	"bufio"
	"crypto/tls"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"unsafe"
	"weak"
)

// upgradeRequest keeps a socket's HTTP upgrade request for Socket.Request
// in its wire form, one string of a few hundred bytes, and parses it
// when asked. The parsed form (a Request with its URL and header map)
// costs more than a kilobyte, and most applications look at it only during
// the handshake, if at all: it is held through a weak pointer, so the same
// *http.Request is returned while anyone holds it, and the memory is given
// back once no one does (a later call parses the bytes again). The remote
// address and TLS state are not kept here: they are the socket's
// connection's, read when the request is parsed.
type upgradeRequest struct {
	raw    string // request line and headers
	parsed weak.Pointer[http.Request]
}

// upgradeLocks serialize the parsing of each upgradeRequest, a stripe per
// address: a lock in every socket's request would cost an idle socket 16
// bytes (a size class), and parsing is rare.
var upgradeLocks [64]sync.Mutex

func (u *upgradeRequest) lock() *sync.Mutex {
	return &upgradeLocks[uintptr(unsafe.Pointer(u))/unsafe.Sizeof(*u)%uintptr(len(upgradeLocks))]
}

// newUpgradeRequest keeps r's request line and headers.
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
	return &upgradeRequest{raw: unsafe.String(unsafe.SliceData(b), len(b))} // b is not kept
}

// get returns the request: the one returned before if it is still in use,
// else parsed again. It has the original's method, URL, protocol, host,
// headers, the given remote address and TLS state, no body, and
// context.Background() as its context.
func (u *upgradeRequest) get(remote string, tlsState func() *tls.ConnectionState) *http.Request {
	mu := u.lock()
	mu.Lock()
	defer mu.Unlock()
	if r := u.parsed.Value(); r != nil {
		return r
	}
	r, err := http.ReadRequest(bufio.NewReaderSize(strings.NewReader(u.raw), len(u.raw)+16))
	if err != nil {
		// Not expected: the bytes come from a request the HTTP server
		// parsed. Keep what is certain.
		r = &http.Request{Method: http.MethodGet, URL: &url.URL{}, Header: http.Header{}, Body: http.NoBody}
	}
	r.RemoteAddr, r.TLS = remote, tlsState()
	u.parsed = weak.Make(r)
	return r
}
