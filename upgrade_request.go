package socketcluster

import (
	"bufio"
	"crypto/tls"
	"net/http"
	"net/url"
	"runtime"
	"strings"
	"sync"
	"unsafe"
	"weak"
)

// upgradeRequest is a socket's HTTP upgrade request, kept for
// Socket.Request in its wire form (request line and headers): one string of
// a few hundred bytes, held by the Socket itself. The parsed form (a
// Request with its URL and header map) costs more than a kilobyte, and most
// applications look at it only during the handshake, if at all: it is made
// when asked and held through a weak pointer (parsedRequests), so the same
// *http.Request is returned while anyone holds it, and the memory is given
// back once no one does (a later call parses the bytes again). The remote
// address and TLS state are not kept here: they are the socket's
// connection's, read when the request is parsed.
type upgradeRequest string

// newUpgradeRequest keeps r's request line and headers.
func newUpgradeRequest(r *http.Request) upgradeRequest {
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
	return upgradeRequest(unsafe.String(unsafe.SliceData(b), len(b))) // b is not kept
}

// parse returns a new request with the original's method, URL, protocol,
// host and headers, the given remote address and TLS state, no body, and
// context.Background() as its context.
func (u upgradeRequest) parse(remote string, tlsState *tls.ConnectionState) *http.Request {
	r, err := http.ReadRequest(bufio.NewReaderSize(strings.NewReader(string(u)), len(u)+16))
	if err != nil {
		// Not expected: the bytes come from a request the HTTP server
		// parsed. Keep what is certain.
		r = &http.Request{Method: http.MethodGet, URL: &url.URL{}, Header: http.Header{}, Body: http.NoBody}
	}
	r.RemoteAddr, r.TLS = remote, tlsState
	return r
}

// host returns the request's Host header, read from its wire form
// without parsing the request.
func (u upgradeRequest) host() string {
	// newUpgradeRequest writes the Host line right after the request line.
	const key = "\r\nHost: "
	i := strings.Index(string(u), key)
	if i < 0 {
		return ""
	}
	rest := string(u[i+len(key):])
	if j := strings.Index(rest, "\r\n"); j >= 0 {
		rest = rest[:j]
	}
	return rest
}

// parsedRequests holds, for each socket whose parsed request someone still
// holds, a weak pointer to it. Both sides are weak: the map keeps neither
// the socket nor the request alive, and an entry goes when its request is
// collected (a cleanup attached to the request), so a socket costs nothing
// here unless a request of its is alive; an idle socket that nobody asked
// keeps no field for it.
var parsedRequests = struct {
	mu sync.Mutex
	m  map[weak.Pointer[Socket]]weak.Pointer[http.Request]
}{m: make(map[weak.Pointer[Socket]]weak.Pointer[http.Request])}

// parsedRequest returns s's parsed request: the one returned before while
// it is still in use, else a new one.
func (s *Socket) parsedRequest() *http.Request {
	pr := &parsedRequests
	key := weak.Make(s)
	pr.mu.Lock()
	r := pr.m[key].Value()
	pr.mu.Unlock()
	if r != nil {
		return r
	}
	// Parsed outside the lock: sockets do not wait for each other.
	r = s.request.parse(s.remoteAddr(), s.conn.TLSState())
	pr.mu.Lock()
	defer pr.mu.Unlock()
	if other := pr.m[key].Value(); other != nil {
		return other // parsed meanwhile by another caller
	}
	pr.m[key] = weak.Make(r)
	runtime.AddCleanup(r, forgetParsedRequest, key)
	return r
}

// forgetParsedRequest drops a socket's entry once the request it points to
// was collected (not when a newer request of the socket's replaced it).
func forgetParsedRequest(key weak.Pointer[Socket]) {
	pr := &parsedRequests
	pr.mu.Lock()
	if wp, ok := pr.m[key]; ok && wp.Value() == nil {
		delete(pr.m, key)
	}
	pr.mu.Unlock()
}
