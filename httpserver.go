package socketcluster

import (
	"context"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"time"
)

// HTTPServer returns an *http.Server configured for a public endpoint from
// the Server's Options, serving h (nil: the Server itself; pass your mux
// when it mounts the Server beside other handlers):
//
//   - a request line and header fields over MaxHeaderBytes (default
//     16 KiB, the reference's) get 431 Request Header Fields Too Large and
//     the connection is closed, whichever path the request was for (the
//     WebSocket upgrade reads its request through this server too);
//   - a request whose header is not complete within ReadHeaderTimeout
//     (default 10s) is dropped (slowloris), and an idle keep-alive
//     connection after IdleTimeout (60s);
//   - connections dropped that way count in Stats.HTTPRefusals and are
//     logged as a warning at most once per burst.
//
// Serve it yourself (Serve; for TLS, Serve over NewTLSListener, so that
// idle TLS sockets hold no goroutine) and shut it down yourself:
// Server.Close does not, so that the server can still answer (say, a
// readiness probe) while the sockets drain. Server.Serve and
// ListenAndServe use such a server and do shut it down in Close.
func (srv *Server) HTTPServer(h http.Handler) *http.Server {
	if h == nil {
		h = srv
	}
	g := &httpGuard{srv: srv}
	return &http.Server{
		Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if t, ok := r.Context().Value(connTrackKey{}).(*connTrack); ok {
				t.served.Store(true)
			}
			h.ServeHTTP(w, r)
		}),
		// net/http reads up to 4 KiB past MaxHeaderBytes before it answers
		// 431: take that off so that the cap is the one configured.
		MaxHeaderBytes:    max(srv.opts.MaxHeaderBytes-4096, 1),
		ReadHeaderTimeout: srv.opts.ReadHeaderTimeout,
		IdleTimeout:       httpIdleTimeout,
		ConnContext:       g.connContext,
		ConnState:         g.connState,
	}
}

// httpIdleTimeout closes keep-alive connections idle for this long.
const httpIdleTimeout = 60 * time.Second

// httpGuard counts the connections an HTTPServer drops before they made a
// complete request: header too large (431), not read in time, malformed.
type httpGuard struct {
	srv   *Server
	conns sync.Map // net.Conn → *connTrack, from ConnContext to the end of HTTP
}

// connTrack is what the guard knows of one connection.
type connTrack struct {
	start  time.Time
	active atomic.Bool // bytes of a request were read
	served atomic.Bool // a request reached the handler
}

type connTrackKey struct{}

func (g *httpGuard) connContext(ctx context.Context, c net.Conn) context.Context {
	t := &connTrack{start: time.Now()}
	g.conns.Store(c, t)
	return context.WithValue(ctx, connTrackKey{}, t)
}

func (g *httpGuard) connState(c net.Conn, st http.ConnState) {
	switch st {
	case http.StateActive:
		if v, ok := g.conns.Load(c); ok {
			v.(*connTrack).active.Store(true)
		}
	case http.StateHijacked:
		g.conns.Delete(c)
	case http.StateClosed:
		v, ok := g.conns.LoadAndDelete(c)
		if !ok {
			return
		}
		t := v.(*connTrack)
		// A connection that sent nothing and left at once is a port
		// probe, not a refusal; one that sent nothing until the header
		// timeout is (slowloris).
		if t.served.Load() || !(t.active.Load() || time.Since(t.start) >= g.srv.opts.ReadHeaderTimeout) {
			return
		}
		g.srv.httpRefused()
	}
}

// httpRefused counts (Stats.HTTPRefusals) and logs, at most once per
// burst, a connection dropped before it made a complete request.
func (srv *Server) httpRefused() {
	srv.counters.httpRefusals.Add(1)
	srv.refusalLog.log(srv.opts.Logger, "socketcluster: HTTP connections dropped before a complete request (header over Options.MaxHeaderBytes, not complete within Options.ReadHeaderTimeout, or malformed)")
}

// burstLog logs a kind of event at most once per burstInterval: the first
// of a burst at once, then one line per interval with the number of
// events since the last line. The counters in Stats have every event.
type burstLog struct {
	mu         sync.Mutex
	last       time.Time
	suppressed int64
}

const burstInterval = 10 * time.Second

func (b *burstLog) log(l *slog.Logger, msg string, attrs ...any) {
	b.mu.Lock()
	now := time.Now()
	if !b.last.IsZero() && now.Sub(b.last) < burstInterval {
		b.suppressed++
		b.mu.Unlock()
		return
	}
	n := b.suppressed
	b.last, b.suppressed = now, 0
	b.mu.Unlock()
	l.Warn(msg, append(attrs, "sinceLastLine", n)...)
}
