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
//
// The first byte is not the request's: it says which of the elided headers
// the request had (a bit each, added to '0'); the request line follows.
type upgradeRequest string

// elided are headers every WebSocket upgrade request carries, with the
// value nearly all clients send: a request's line for one of them is not
// kept when it has exactly that value (one value), and parse puts it back.
// At 70 bytes per connection, this is a tenth of an idle connection's live
// heap.
var elided = [...]struct{ key, value string }{
	{"Upgrade", "websocket"},
	{"Connection", "Upgrade"},
	{"Sec-Websocket-Version", "13"},
}

// elidedBit returns the bit of header k with values vs in the first byte,
// or 0 when the header is kept.
func elidedBit(k string, vs []string) byte {
	if len(vs) != 1 {
		return 0
	}
	for i, e := range elided {
		if k == e.key && vs[0] == e.value {
			return 1 << i
		}
	}
	return 0
}

// newUpgradeRequest keeps r's request line and headers.
func newUpgradeRequest(r *http.Request) upgradeRequest {
	n := 1 + len(r.Method) + len(r.RequestURI) + len(r.Proto) + len(r.Host) + 16
	for k, vs := range r.Header {
		if elidedBit(k, vs) != 0 {
			continue
		}
		for _, v := range vs {
			n += len(k) + len(v) + 4
		}
	}
	b := make([]byte, 1, n)
	b = append(append(append(append(append(b, r.Method...), ' '), r.RequestURI...), ' '), r.Proto...)
	b = append(append(append(b, "\r\nHost: "...), r.Host...), "\r\n"...)
	var mask byte
	for k, vs := range r.Header {
		if bit := elidedBit(k, vs); bit != 0 {
			mask |= bit
			continue
		}
		for _, v := range vs {
			b = append(append(append(append(b, k...), ": "...), v...), "\r\n"...)
		}
	}
	b[0] = '0' + mask
	b = append(b, "\r\n"...)
	return upgradeRequest(unsafe.String(unsafe.SliceData(b), len(b))) // b is not kept
}

// parse returns a new request with the original's method, URL, protocol,
// host and headers, the given remote address and TLS state, no body, and
// context.Background() as its context.
func (u upgradeRequest) parse(remote string, tlsState *tls.ConnectionState) *http.Request {
	text := ""
	if len(u) > 1 {
		text = string(u[1:])
	}
	r, err := http.ReadRequest(bufio.NewReaderSize(strings.NewReader(text), len(text)+16))
	if err != nil {
		// Not expected: the bytes come from a request the HTTP server
		// parsed. Keep what is certain.
		r = &http.Request{Method: http.MethodGet, URL: &url.URL{}, Header: http.Header{}, Body: http.NoBody}
	} else {
		for i, e := range elided {
			if (u[0]-'0')&(1<<i) != 0 {
				r.Header[e.key] = []string{e.value}
			}
		}
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
