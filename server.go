package socketcluster

import (
	"context"
	"crypto/tls"
	"encoding/base64"
	"errors"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/socketcluster-go/socketcluster/auth"
	"github.com/socketcluster-go/socketcluster/internal/fastaccept"
	"github.com/socketcluster-go/socketcluster/internal/wsconn"
	"github.com/socketcluster-go/socketcluster/protocol"
)

// Server is a SocketCluster server (AGServer). It is an http.Handler:
// mount it on any mux at Options.Path, or call ListenAndServe.
//
// Listeners gives its event streams: Listener("connection") and so on, or
// typed with Listen[ConnectionEvent](srv).
type Server struct {
	Listeners

	opts       Options
	codec      Codec
	compressor *wsconn.Compressor // nil unless Options.PerMessageDeflate
	rings      ringPool           // io_uring rings for batched sends (socket_ringsend.go)
	// batchingSockets counts the open sockets that batch their packets
	// (Socket.batchChangedLocked): while none does, deliveries skip the
	// batch check and its lock.
	batchingSockets atomic.Int32
	auth            auth.Engine
	middleware      middlewareSet
	stack           middlewareStack // UseMiddleware
	handlers        handlers
	v14             v14Set
	v14h            atomic.Pointer[v14Handlers] // Server.On (v14.go); set once
	hub             *hub
	exchange        *Exchange
	counters        counters
	refusalLog      burstLog  // HTTPServer's refusals
	slowLog         burstLog  // slow consumers
	deadlines       deadlines // sockets' handshake, ping and pong deadlines
	limits          limits    // connection limits (limits.go)

	// Guarded by mu.
	mu        sync.RWMutex
	clients   map[string]*Socket
	pending   map[string]*Socket
	httpSrvs  []*http.Server
	live      int           // sockets whose reader has not ended
	drained   chan struct{} // closed once closing and live is 0
	isDrained bool          // drained is closed

	clientsCount atomic.Int64
	pendingCount atomic.Int64
	closing      atomic.Bool // set under mu: accept sees it or Close sees the socket
	ready        atomic.Bool
	brokerDown   atomic.Bool // the broker's last Status report was an error
}

// New returns a server configured by opts (the zero Options gives the
// reference's defaults). It fails when an option cannot work or the broker
// cannot start.
func New(opts Options) (*Server, error) {
	if err := opts.Validate(); err != nil {
		return nil, err
	}
	o := opts.withDefaults()
	srv := &Server{
		opts:    o,
		codec:   o.Codec,
		clients: make(map[string]*Socket),
		pending: make(map[string]*Socket),
		drained: make(chan struct{}),
	}
	key := o.AuthKey
	if len(o.AuthPrivateKey) > 0 {
		key = nil // a key pair replaces the HMAC key
	}
	eng, err := auth.New(auth.Options{
		Key:              key,
		PrivateKeyPEM:    o.AuthPrivateKey,
		PublicKeyPEM:     o.AuthPublicKey,
		Algorithm:        o.AuthAlgorithm,
		VerifyAlgorithms: o.AuthVerifyAlgorithms,
		DefaultExpiry:    o.AuthDefaultExpiry,
	})
	if err != nil {
		return nil, err
	}
	srv.auth = eng
	if z := o.PerMessageDeflate; z != nil {
		if srv.compressor, err = wsconn.NewCompressor(z.Level, z.Threshold); err != nil {
			return nil, err
		}
	}
	if o.AuthEngine != nil {
		srv.auth = o.AuthEngine
	}
	srv.rings.cost.Store(ringCostInitial)
	srv.rings.helpersSet.Store(-1)
	if err := srv.startPubSub(); err != nil {
		return nil, err
	}
	srv.ready.Store(true)
	srv.emit(ReadyEvent{})
	return srv, nil
}

// Options returns the options in force, defaults filled in.
func (srv *Server) Options() Options { return srv.opts }

// Exchange returns the server's pub/sub client.
func (srv *Server) Exchange() *Exchange { return srv.exchange }

// IsReady reports whether the server (its broker) is ready.
func (srv *Server) IsReady() bool { return srv.ready.Load() }

// BrokerConnected reports whether the broker is connected to its bus: true
// once it started, false from an outage report until it reconnected (see
// broker.Handler.Status). The in-process broker is always connected; the
// server goes on serving its local sockets while this is false.
func (srv *Server) BrokerConnected() bool { return srv.ready.Load() && !srv.brokerDown.Load() }

// AckTimeout returns the timeout of server→client invokes.
func (srv *Server) AckTimeout() time.Duration { return srv.opts.AckTimeout }

// Path returns the WebSocket endpoint path.
func (srv *Server) Path() string { return srv.opts.Path }

// ClientsCount is the number of sockets that completed their handshake.
func (srv *Server) ClientsCount() int { return int(srv.clientsCount.Load()) }

// PendingClientsCount is the number of sockets still connecting.
func (srv *Server) PendingClientsCount() int { return int(srv.pendingCount.Load()) }

// Clients returns the connected sockets by id (a copy).
func (srv *Server) Clients() map[string]*Socket {
	srv.mu.RLock()
	defer srv.mu.RUnlock()
	out := make(map[string]*Socket, len(srv.clients))
	for k, v := range srv.clients {
		out[k] = v
	}
	return out
}

// PendingClients returns the connecting sockets by id (a copy).
func (srv *Server) PendingClients() map[string]*Socket {
	srv.mu.RLock()
	defer srv.mu.RUnlock()
	out := make(map[string]*Socket, len(srv.pending))
	for k, v := range srv.pending {
		out[k] = v
	}
	return out
}

// SlowConsumerCount counts sockets disconnected for a full outbound queue.
func (srv *Server) SlowConsumerCount() int64 { return srv.counters.slowConsumers.Load() }

// GenerateID returns a new socket id.
func (srv *Server) GenerateID() string { return newSocketID() }

// EmitError emits a server error event.
func (srv *Server) EmitError(err error) { srv.emit(ErrorEvent{Error: err}) }

// EmitWarning emits a server warning event.
func (srv *Server) EmitWarning(err error) { srv.emitWarning(err) }

func (srv *Server) emitWarning(err error) { srv.emit(WarningEvent{Warning: err}) }

// wants reports whether a server event of that name would reach anyone.
func (srv *Server) wants(name string) bool {
	return srv.Listeners.d.HasConsumers(name) || hasEventHandlers(&srv.v14h, name)
}

func (srv *Server) emit(e Event) {
	srv.Listeners.emit(e)
	srv.callEvent(&srv.v14h, e)
}

// ---- HTTP ----

func isUpgrade(r *http.Request) bool {
	if r.Header.Get("Upgrade") == "" {
		return false
	}
	for _, v := range r.Header.Values("Connection") {
		for v != "" {
			t, rest, _ := strings.Cut(v, ",")
			if strings.EqualFold(strings.TrimSpace(t), "upgrade") {
				return true
			}
			v = rest
		}
	}
	return false
}

func httpFail(w http.ResponseWriter, code int, body string) {
	h := w.Header()
	h.Set("Connection", "close")
	h.Set("Content-Type", "text/html")
	h.Set("Content-Length", strconv.Itoa(len(body)))
	w.WriteHeader(code)
	_, _ = w.Write([]byte(body))
}

// ServeHTTP accepts WebSocket upgrades at Options.Path with the checks of
// docs/protocol.md §1.2, and passes plain HTTP requests to Options.HTTPHandler
// (default: 501 Not Implemented).
func (srv *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if !isUpgrade(r) {
		if srv.opts.HTTPHandler != nil {
			srv.opts.HTTPHandler.ServeHTTP(w, r)
			return
		}
		httpFail(w, http.StatusNotImplemented, "Not Implemented")
		return
	}
	if r.Method != http.MethodGet {
		httpFail(w, http.StatusMethodNotAllowed, "Invalid HTTP method")
		return
	}
	if !strings.EqualFold(r.Header.Get("Upgrade"), "websocket") {
		httpFail(w, http.StatusBadRequest, "Invalid Upgrade header")
		return
	}
	if k, err := base64.StdEncoding.DecodeString(r.Header.Get("Sec-WebSocket-Key")); err != nil || len(k) != 16 {
		httpFail(w, http.StatusBadRequest, "Missing or invalid Sec-WebSocket-Key header")
		return
	}
	if r.Header.Get("Sec-WebSocket-Version") != "13" {
		w.Header().Set("Sec-WebSocket-Version", "13, 8")
		httpFail(w, http.StatusBadRequest, "Missing or invalid Sec-WebSocket-Version header")
		return
	}
	if r.URL.Path != srv.opts.Path {
		httpFail(w, http.StatusBadRequest, "Bad Request")
		return
	}
	var extensions string
	if srv.compressor != nil {
		var err error
		if extensions, err = wsconn.NegotiateDeflate(r.Header.Values("Sec-WebSocket-Extensions")); err != nil {
			// As the reference's ws engine (docs/protocol.md §1.2 step 7).
			httpFail(w, http.StatusBadRequest, "Invalid or unacceptable Sec-WebSocket-Extensions header")
			return
		}
	}
	ls, status, body := srv.acquireLease(r)
	if status != 0 {
		if status == http.StatusServiceUnavailable {
			w.Header().Set("Retry-After", "1")
		}
		httpFail(w, status, body)
		return
	}
	if !srv.admit() {
		srv.releaseLease(ls)
		httpFail(w, http.StatusServiceUnavailable, "Server is shutting down")
		return
	}
	accepted := false
	defer func() {
		if !accepted {
			srv.releaseLease(ls)
			srv.release()
		}
	}()
	a := &Action{Type: ActionHandshakeWS, Request: r}
	if err := srv.decide(MiddlewareHandshake, a, true); err != nil {
		srv.blockError(err, a, MiddlewareHandshake)
		httpFail(w, http.StatusUnauthorized, blockMessage(err))
		return
	}
	if origin, ok := srv.checkOrigin(r); !ok {
		e := NewError("ServerProtocolError", "Failed to authorize socket handshake - Invalid origin: "+origin)
		srv.emitWarning(e)
		srv.counters.refusedOrigins.Add(1)
		srv.limits.originLog.log(srv.opts.Logger, "socketcluster: refusing WebSocket upgrades from origins not in Options.Origins (403)", "origin", origin)
		httpFail(w, http.StatusForbidden, e.Message)
		return
	}
	conn, err := wsconn.Upgrade(w, r, wsconn.UpgradeOptions{Protocol: srv.opts.HandleProtocols, WriteTimeout: srv.opts.WriteTimeout, Extensions: extensions})
	if err != nil {
		srv.emitWarning(err)
		return
	}
	if srv.opts.OwnDescriptors && !srv.opts.DisableEventReads {
		conn.OwnDescriptor() // before anyone else can use the connection
	}
	srv.accept(conn, r, ls)
	accepted = true
}

func blockMessage(err error) string {
	var e *Error
	if errors.As(err, &e) {
		return e.Message
	}
	return err.Error()
}

// checkOrigin applies the origins option (docs/protocol.md §1.3).
func (srv *Server) checkOrigin(r *http.Request) (string, bool) {
	allowed := srv.opts.Origins
	if strings.Contains(allowed, "*:*") {
		return "", true
	}
	origin := r.Header.Get("Origin")
	if origin == "" {
		origin = r.Header.Get("Sec-WebSocket-Origin")
	}
	if origin == "" || origin == "null" {
		return "*", false
	}
	u, err := url.Parse(origin)
	if err != nil {
		return origin, false
	}
	port := u.Port()
	if port == "" {
		if u.Scheme == "https" {
			port = "443"
		} else {
			port = "80"
		}
	}
	host := u.Hostname()
	ok := strings.Contains(allowed, host+":"+port) || strings.Contains(allowed, host+":*") || strings.Contains(allowed, "*:"+port)
	return origin, ok
}

// accept registers a new socket and starts its reader. The socket keeps
// the request in its compact form (upgradeRequest).
func (srv *Server) accept(conn *wsconn.Conn, r *http.Request, ls *lease) {
	s := &Socket{
		id:      newSocketID(),
		server:  srv,
		conn:    conn,
		request: newUpgradeRequest(r),
		slot:    -1,
		lease:   ls,
	}
	if srv.opts.InboundMessageRate > 0 || srv.opts.InboundByteRate > 0 {
		s.rate = new(inboundRate)
	}
	srv.mu.Lock()
	srv.pending[s.id] = s
	// Upgraded while Close runs, perhaps after it took its list of
	// sockets: this socket says goodbye itself. Close waits for it either
	// way: it was counted in live by admit.
	late := srv.closing.Load()
	srv.mu.Unlock()
	srv.pendingCount.Add(1)
	srv.counters.connections.Add(1)
	s.startTimers()
	srv.emit(HandshakeEvent{Socket: s})
	s.startReading()
	if late {
		_ = s.Disconnect(protocol.CloseGoingAway, "Server is shutting down")
	}
}

// admit counts an upgrade request in live, unless the server is closing.
// The request is counted out by release: when its socket's reader ends,
// or at once when it does not become a socket.
func (srv *Server) admit() bool {
	srv.mu.Lock()
	defer srv.mu.Unlock()
	if srv.closing.Load() {
		return false
	}
	srv.live++
	return true
}

// release counts a socket (or an upgrade request that did not become one)
// out; the last one during Close wakes it.
func (srv *Server) release() {
	srv.mu.Lock()
	srv.live--
	srv.checkDrainedLocked()
	srv.mu.Unlock()
}

// checkDrainedLocked closes drained once the server is closing and no
// socket is left. srv.mu must be held.
func (srv *Server) checkDrainedLocked() {
	if srv.closing.Load() && srv.live == 0 && !srv.isDrained {
		srv.isDrained = true
		close(srv.drained)
	}
}

// promote moves a socket from pending to clients. It reports false when
// the socket was not pending (a repeated handshake).
func (srv *Server) promote(s *Socket) bool {
	srv.mu.Lock()
	defer srv.mu.Unlock()
	if _, ok := srv.pending[s.id]; !ok {
		return false
	}
	delete(srv.pending, s.id)
	srv.pendingCount.Add(-1)
	srv.clients[s.id] = s
	srv.clientsCount.Add(1)
	srv.counters.handshakes.Add(1)
	return true
}

func (srv *Server) removeSocket(s *Socket) {
	srv.mu.Lock()
	defer srv.mu.Unlock()
	if _, ok := srv.pending[s.id]; ok {
		delete(srv.pending, s.id)
		srv.pendingCount.Add(-1)
	}
	if _, ok := srv.clients[s.id]; ok {
		delete(srv.clients, s.id)
		srv.clientsCount.Add(-1)
	}
}

// ListenAndServe listens on addr (ListenTCP) and serves until Close, with
// the limits of HTTPServer.
func (srv *Server) ListenAndServe(addr string) error {
	l, err := srv.ListenTCP(addr)
	if err != nil {
		return err
	}
	return srv.Serve(l)
}

// ListenTCP opens a TCP listener on addr for Serve or ServeTLS. Unlike
// net.Listen's, the connections it accepts have no TCP keep-alive probes
// while the server pings its sockets (Options.PingTimeoutDisabled
// unset): a vanished peer is found by the pong deadline (or, before the
// handshake, Options.HandshakeTimeout) long before the probes would find
// it, and the probes' four setsockopt calls per connection are a
// measurable share of its set-up (docs/performance.md). Other HTTP
// requests on such a listener rely on HTTPServer's timeouts: the header
// within Options.ReadHeaderTimeout, idle keep-alive connections closed
// after 60 s; a handler that reads a request body should set its own
// read deadline (http.ResponseController), or be served from a listener
// of net.Listen, which keeps the probes.
//
// With Options.OwnDescriptors, Serve (and UpgradeListener) accept such a
// listener's connections themselves: see UpgradeListener.
func (srv *Server) ListenTCP(addr string) (net.Listener, error) {
	lc := net.ListenConfig{}
	if !srv.opts.PingTimeoutDisabled {
		lc.KeepAlive = -1
	}
	l, err := lc.Listen(context.Background(), "tcp", addr)
	if err != nil {
		return nil, err
	}
	return &tcpListener{TCPListener: l.(*net.TCPListener), noProbes: lc.KeepAlive < 0}, nil
}

// tcpListener is a listener from ListenTCP: noProbes says its
// connections are to have no TCP keep-alive probes.
type tcpListener struct {
	*net.TCPListener
	noProbes bool
}

// UpgradeListener returns the listener to serve hs on (hs.Serve) in
// place of l, a listener from ListenTCP. With Options.OwnDescriptors and
// event-driven reads (Linux), that listener accepts l's connections
// itself, without net/http's goroutine per connection or the runtime's
// poller: the listening socket defers accepts (TCP_DEFER_ACCEPT) until a
// connection's request has come, or for about a second when it sends nothing
// (a connection that stays silent is accepted then, and its header
// timeout starts); it reads each request head at once, or event-driven
// when more has to come, serves a plain
// WebSocket upgrade for Options.Path at once with hs.Handler (routed as
// hs would route it, so hs.Handler may be a mux that mounts the Server),
// and hands every other connection (another path, anything unusual, a
// head over Options.MaxHeaderBytes) to hs with what was read of it, to
// be answered as hs would have. A head not complete within
// Options.ReadHeaderTimeout is dropped and counted in Stats.HTTPRefusals,
// as HTTPServer's are. hs's ConnState, ConnContext and BaseContext hooks
// do not see the upgrades taken. This saves about 40 % of the CPU a
// connection set-up costs (docs/performance.md). Otherwise (other listeners,
// TLS, Options.DisableEventReads, Options.PingTimeoutDisabled, which
// keeps the probes) it returns l. Serve and ListenAndServe use it.
func (srv *Server) UpgradeListener(l net.Listener, hs *http.Server) net.Listener {
	tl, ok := l.(*tcpListener)
	if !ok || !tl.noProbes || !srv.opts.OwnDescriptors || srv.opts.DisableEventReads || hs == nil || hs.Handler == nil {
		return l
	}
	fl, _ := fastaccept.Wrap(tl.TCPListener, fastaccept.Config{
		Handler:           hs.Handler,
		Server:            hs,
		Path:              srv.opts.Path,
		MaxHeaderBytes:    srv.opts.MaxHeaderBytes,
		ReadHeaderTimeout: srv.opts.ReadHeaderTimeout,
		Dropped:           srv.httpRefused,
	})
	return fl
}

// Serve serves on l with an HTTPServer until Close; it then returns
// http.ErrServerClosed. A listener from ListenTCP is served through
// UpgradeListener.
func (srv *Server) Serve(l net.Listener) error {
	hs := srv.HTTPServer(nil)
	srv.mu.Lock()
	if srv.closing.Load() {
		srv.mu.Unlock()
		_ = l.Close()
		return http.ErrServerClosed
	}
	srv.httpSrvs = append(srv.httpSrvs, hs)
	srv.mu.Unlock()
	return hs.Serve(srv.UpgradeListener(l, hs))
}

// ServeTLS is Serve over TLS with config: it serves NewTLSListener(l,
// config), offering HTTP/2 and HTTP/1.1 (ALPN) when config.NextProtos is
// empty, as http.Server.ServeTLS does. WebSocket upgrades use HTTP/1.1.
func (srv *Server) ServeTLS(l net.Listener, config *tls.Config) error {
	if config == nil || (len(config.Certificates) == 0 && config.GetCertificate == nil && config.GetConfigForClient == nil) {
		_ = l.Close()
		return errors.New("socketcluster: ServeTLS needs a tls.Config with a certificate (Certificates, GetCertificate or GetConfigForClient)")
	}
	if len(config.NextProtos) == 0 {
		config = config.Clone()
		config.NextProtos = []string{"h2", "http/1.1"}
	}
	return srv.Serve(NewTLSListener(l, config))
}

// NewTLSListener is tls.NewListener for a Server: the TLS sockets it
// accepts are read by the event-driven reader (see Options.DisableEventReads)
// like plain ones, with no goroutine and no read buffer while idle, where
// a tls.NewListener socket keeps a reading goroutine and its 4 KiB buffer.
// Use it when you serve TLS with your own http.Server (HTTPServer):
//
//	hs := srv.HTTPServer(mux)
//	hs.TLSConfig = config // with "h2" in NextProtos for HTTP/2
//	err := hs.Serve(socketcluster.NewTLSListener(l, config))
//
// config is used as tls.NewListener uses it.
func NewTLSListener(inner net.Listener, config *tls.Config) net.Listener {
	return wsconn.NewTLSListener(inner, config)
}

func (srv *Server) allSockets() []*Socket {
	srv.mu.RLock()
	defer srv.mu.RUnlock()
	out := make([]*Socket, 0, len(srv.clients)+len(srv.pending))
	for _, s := range srv.clients {
		out = append(out, s)
	}
	for _, s := range srv.pending {
		out = append(out, s)
	}
	return out
}

// Close shuts the server down gracefully: it stops accepting upgrades,
// sends every socket a close frame with code 1001, waits until the
// clients answered (or ctx is done, then cuts the rest), and stops the
// broker. It never drops a connection without a close frame unless ctx
// runs out.
//
// A connection upgraded while Close runs (its request was being handled
// when Close began) is sent its 1001 as soon as it is registered, and
// Close waits for it too.
func (srv *Server) Close(ctx context.Context) error {
	srv.mu.Lock()
	srv.closing.Store(true)
	hss := srv.httpSrvs
	srv.httpSrvs = nil
	srv.mu.Unlock()
	for _, hs := range hss {
		_ = hs.Shutdown(ctx)
	}
	for _, s := range srv.allSockets() {
		_ = s.Disconnect(protocol.CloseGoingAway, "Server is shutting down")
	}
	srv.mu.Lock()
	srv.checkDrainedLocked()
	srv.mu.Unlock()
	var err error
	select {
	case <-srv.drained:
	case <-ctx.Done():
		err = ctx.Err()
		for _, s := range srv.allSockets() {
			s.Terminate()
		}
		<-srv.drained
	}
	srv.stopPubSub()
	return err
}

// Terminate is the reference's close(): it stops accepting upgrades and
// drops every connected socket without a close frame (clients see 1006).
// Prefer Close.
func (srv *Server) Terminate() {
	srv.mu.Lock()
	srv.closing.Store(true)
	srv.checkDrainedLocked()
	hss := srv.httpSrvs
	srv.httpSrvs = nil
	srv.mu.Unlock()
	for _, hs := range hss {
		_ = hs.Close()
	}
	for _, s := range srv.Clients() {
		s.Terminate()
	}
}
