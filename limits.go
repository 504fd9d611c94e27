package socketcluster

import (
	"net"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/socketcluster-go/socketcluster/protocol"
)

// Connection limits (Options.MaxConnections, MaxConnectionsPerAddress,
// MaxHandshakesPerSecond) are checked in ServeHTTP before the upgrade; the
// per-socket inbound rate limit (InboundMessageRate, InboundByteRate) by
// the socket's reader for each message. Every refusal is counted in Stats
// and logged as a warning at most once per burst (burstLog).

// Upgrade refusals by limit, as Stats.RefusedUpgrades keys and the
// prommetrics label "limit".
const (
	LimitConnections        = "connections"
	LimitConnectionsPerAddr = "connections_per_address"
	LimitHandshakeRate      = "handshake_rate"
)

// limits holds the server-wide state of the connection limits. Its fields
// are guarded by mu; the refusal counters are atomics in counters.
type limits struct {
	mu      sync.Mutex
	total   int            // sockets (and upgrades under way) holding a lease
	perAddr map[string]int // the same, by client address
	hs      tokenBucket    // handshakes

	log       burstLog // upgrade refusals
	rateLog   burstLog // sockets closed by the inbound rate limit
	originLog burstLog // upgrades refused for their origin (server.go)
}

// lease is what one connection holds of the connection limits, given back
// by releaseLease when its reader ends (or at once when the upgrade fails).
type lease struct {
	addr string // "" when not counted per address
}

// tokenBucket is a token bucket on the monotonic clock; its user
// serialises access (limits.mu for handshakes, the socket's reader for
// inbound rates).
type tokenBucket struct {
	tokens float64
	last   int64 // monoNow at the last refill; 0 before the first take
}

// take refills the bucket at rate per second up to burst, then takes n
// tokens if the bucket is not empty (it may go into debt). It reports
// whether the tokens were taken.
func (b *tokenBucket) take(now int64, rate float64, burst int, n float64) bool {
	if b.last == 0 {
		b.tokens = float64(burst)
	} else {
		b.tokens = min(b.tokens+rate*float64(now-b.last)/float64(time.Second), float64(burst))
	}
	b.last = now
	if b.tokens <= 0 {
		return false
	}
	b.tokens -= n
	return true
}

// acquireLease applies the connection limits to an upgrade request. It
// returns the lease to keep (nil when no connection limit is set), or the
// HTTP status and body of the refusal.
func (srv *Server) acquireLease(r *http.Request) (l *lease, status int, body string) {
	o := &srv.opts
	if o.MaxConnections == 0 && o.MaxConnectionsPerAddress == 0 && o.MaxHandshakesPerSecond == 0 {
		return nil, 0, ""
	}
	addr := ""
	if o.MaxConnectionsPerAddress > 0 {
		addr = srv.clientAddress(r)
	}
	lim := &srv.limits
	lim.mu.Lock()
	var refused string
	switch {
	case o.MaxConnections > 0 && lim.total >= o.MaxConnections:
		refused, status, body = LimitConnections, http.StatusServiceUnavailable, "Too many connections"
	case o.MaxConnectionsPerAddress > 0 && lim.perAddr[addr] >= o.MaxConnectionsPerAddress:
		refused, status, body = LimitConnectionsPerAddr, http.StatusTooManyRequests, "Too many connections from this address"
	case o.MaxHandshakesPerSecond > 0 && !lim.hs.take(monoNow(), float64(o.MaxHandshakesPerSecond), o.MaxHandshakesPerSecond, 1):
		refused, status, body = LimitHandshakeRate, http.StatusServiceUnavailable, "Too many handshakes; retry later"
	default:
		lim.total++
		if addr != "" {
			if lim.perAddr == nil {
				lim.perAddr = make(map[string]int)
			}
			lim.perAddr[addr]++
		}
		lim.mu.Unlock()
		return &lease{addr: addr}, 0, ""
	}
	lim.mu.Unlock()
	srv.counters.refused(refused).Add(1)
	lim.log.log(srv.opts.Logger, "socketcluster: refusing WebSocket upgrades over a connection limit",
		"limit", refused, "status", status, "clientAddress", addr)
	return nil, status, body
}

// releaseLease gives a lease back. l may be nil.
func (srv *Server) releaseLease(l *lease) {
	if l == nil {
		return
	}
	lim := &srv.limits
	lim.mu.Lock()
	lim.total--
	if l.addr != "" {
		if n := lim.perAddr[l.addr] - 1; n > 0 {
			lim.perAddr[l.addr] = n
		} else {
			delete(lim.perAddr, l.addr)
		}
	}
	lim.mu.Unlock()
}

// clientAddress is the client's IP for MaxConnectionsPerAddress: the last
// entry of Options.ClientAddressHeader when set and present, else the TCP
// peer's.
func (srv *Server) clientAddress(r *http.Request) string {
	if h := srv.opts.ClientAddressHeader; h != "" {
		vals := r.Header.Values(h)
		if len(vals) > 0 {
			v := vals[len(vals)-1]
			if i := strings.LastIndexByte(v, ','); i >= 0 {
				v = v[i+1:]
			}
			if v = strings.TrimSpace(v); v != "" {
				return stripPort(v)
			}
		}
	}
	return stripPort(r.RemoteAddr)
}

// stripPort returns the IP of "ip", "ip:port" or "[v6]:port" in its
// canonical form; anything else (a proxy's odd value) at most
// maxAddrKey bytes of it, so that a header cannot make large map keys.
func stripPort(s string) string {
	if h, _, err := net.SplitHostPort(s); err == nil {
		s = h
	}
	s = strings.Trim(s, "[]")
	if ip := net.ParseIP(s); ip != nil {
		return ip.String()
	}
	if len(s) > maxAddrKey {
		s = s[:maxAddrKey]
	}
	return s
}

// maxAddrKey bounds a client address that is not an IP.
const maxAddrKey = 64

// inboundRate is a socket's state of the inbound rate limit, made at
// accept when a rate is set, and used only by the socket's reader.
type inboundRate struct {
	msgs, bytes tokenBucket
}

// allowInbound applies the inbound rate limit to a message of n bytes. It
// reports false after closing the socket with [protocol.CloseInboundRateLimit].
func (s *Socket) allowInbound(n int) bool {
	o := &s.server.opts
	now := monoNow()
	ok := (o.InboundMessageRate == 0 || s.rate.msgs.take(now, o.InboundMessageRate, o.InboundMessageBurst, 1)) &&
		(o.InboundByteRate == 0 || s.rate.bytes.take(now, o.InboundByteRate, o.InboundByteBurst, float64(n)))
	if ok {
		return true
	}
	s.server.counters.rateLimited.Add(1)
	s.server.limits.rateLog.log(s.server.opts.Logger, "socketcluster: closing sockets over the inbound rate limit (Options.InboundMessageRate, InboundByteRate)",
		"socket", s.id, "remoteAddress", s.remoteAddr())
	s.closeWith(protocol.CloseInboundRateLimit, protocol.InboundRateLimitReason, true)
	return false
}
