package proxy

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"github.com/socketcluster-go/socketcluster/protocol"
	"log/slog"
	"net/http"
	"path"
	"strings"
	"sync"
	"time"

	sc "github.com/socketcluster-go/socketcluster"
	"github.com/socketcluster-go/socketcluster/auth"
)

// Options configures a Proxy. An event whose URL is empty is not proxied.
type Options struct {
	// ConnectURL decides every handshake: the backend accepts (result)
	// or refuses the socket. Its result may carry
	//   "user":     the user's identity (the token's "sub" claim),
	//   "authToken": claims of a token the gateway signs and sends,
	//   "expireIn": the token's lifetime in seconds (RefreshURL then
	//               renews it before it ends),
	//   "info":     connection info, shown in presence,
	//   "channels": channels the socket is subscribed to at once (and may
	//               subscribe to without SubscribeURL).
	ConnectURL string
	// SubscribeURL decides subscriptions to the channels that match
	// SubscribeChannels (default: all but #presence: companions, which
	// follow their channel).
	SubscribeURL      string
	SubscribeChannels []string
	// PublishURL decides client publishes to the channels that match
	// PublishChannels (default all); a result {"data": …} replaces the
	// published data.
	PublishURL      string
	PublishChannels []string
	// RPCURL answers invokes of the procedures named in RPCProcedures:
	// the result's "data" is the answer, an error the error.
	RPCURL        string
	RPCProcedures []string
	// RefreshURL renews tokens of sockets whose connect result had
	// expireIn: its result is as connect's (user, authToken, expireIn); a
	// refusal closes the socket.
	RefreshURL string

	// Timeout bounds each backend request (default 4s).
	Timeout time.Duration
	// MaxConcurrent bounds the requests in flight (default 64); a request
	// waits at most QueueTimeout (default 1s) for a free slot, then fails
	// with a BackendBusyError. Keep QueueTimeout+Timeout under the server's
	// MiddlewareTimeout (10s by default).
	MaxConcurrent int
	QueueTimeout  time.Duration
	// Headers names the upgrade request headers passed to the backend
	// (Cookie, Authorization, X-Forwarded-For…). None by default.
	Headers []string
	// MaxResponseBytes bounds a backend answer (default 1 MiB).
	MaxResponseBytes int64
	// HTTPClient makes the requests (default: one with no redirects
	// followed; a redirect is a failure).
	HTTPClient *http.Client
	// Logger receives failures (default: the server's), at most one line
	// a second.
	Logger *slog.Logger
}

// ConnectResult is what the connect and refresh endpoints may return.
type ConnectResult struct {
	User      string          `json:"user"`
	AuthToken map[string]any  `json:"authToken"`
	ExpireIn  float64         `json:"expireIn"`
	Info      json.RawMessage `json:"info"`
	Channels  []string        `json:"channels"`
}

// identity is what the backend said about a socket at connect.
type identity struct {
	user     string
	info     json.RawMessage
	channels map[string]bool
	pending  *ConnectResult // applied once the socket is connected
	timer    *time.Timer    // refresh
	gone     bool
}

// Proxy hands the events of one server to the backend. Create it with
// New before clients connect; Close it before the server.
type Proxy struct {
	srv *sc.Server
	o   Options
	c   *caller
	log *slog.Logger

	mu    sync.Mutex
	ident map[string]*identity // socket id → identity, from connect to closure

	remove []func()
	stop   context.CancelFunc
	wg     sync.WaitGroup
}

// New installs the proxy on srv: middleware for connect, subscribe and
// publish, a handler per RPC procedure.
func New(srv *sc.Server, o Options) (*Proxy, error) {
	for _, p := range append(append([]string(nil), o.SubscribeChannels...), o.PublishChannels...) {
		if _, err := path.Match(p, ""); err != nil {
			return nil, fmt.Errorf("proxy: channel pattern %q: %w", p, err)
		}
	}
	if o.RPCURL != "" && len(o.RPCProcedures) == 0 {
		return nil, errors.New("proxy: RPCURL needs RPCProcedures (the procedure names to proxy)")
	}
	if o.Timeout <= 0 {
		o.Timeout = 4 * time.Second
	}
	if o.QueueTimeout <= 0 {
		o.QueueTimeout = time.Second
	}
	if o.MaxConcurrent <= 0 {
		o.MaxConcurrent = 64
	}
	if o.MaxResponseBytes <= 0 {
		o.MaxResponseBytes = 1 << 20
	}
	if o.HTTPClient == nil {
		o.HTTPClient = &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	}
	if o.Logger == nil {
		o.Logger = srv.Options().Logger
	}
	p := &Proxy{
		srv: srv, o: o, log: o.Logger,
		c:     &caller{hc: o.HTTPClient, timeout: o.Timeout, queueTimeout: o.QueueTimeout, maxBody: o.MaxResponseBytes, slots: make(chan struct{}, o.MaxConcurrent), log: o.Logger},
		ident: make(map[string]*identity),
	}
	if o.ConnectURL != "" || o.SubscribeURL != "" || o.PublishURL != "" {
		hs, err := srv.UseMiddleware(sc.MiddlewareHandshake, p.handshake)
		if err != nil {
			return nil, err
		}
		in, err := srv.UseMiddleware(sc.MiddlewareInbound, p.inbound)
		if err != nil {
			hs()
			return nil, err
		}
		p.remove = append(p.remove, hs, in)
	}
	for _, name := range o.RPCProcedures {
		srv.HandleProcedure(name, p.rpc)
	}
	ctx, cancel := context.WithCancel(context.Background())
	p.stop = cancel
	conns := sc.Listen[sc.ConnectionEvent](srv).Consumer()
	closures := sc.Listen[sc.ClosureEvent](srv).Consumer()
	p.wg.Add(2)
	go func() {
		defer p.wg.Done()
		defer conns.Stop()
		for {
			ev, err := conns.Next(ctx)
			if err != nil {
				return
			}
			p.connected(ev.Socket)
		}
	}()
	go func() {
		defer p.wg.Done()
		defer closures.Stop()
		for {
			ev, err := closures.Next(ctx)
			if err != nil {
				return
			}
			p.forget(ev.Socket.ID())
		}
	}()
	return p, nil
}

// Stats returns the counts of proxied requests by outcome.
func (p *Proxy) Stats() Stats { return p.c.stats() }

// User returns the user identity the backend gave a connected socket, or
// "" (then the auth token's claims are the identity).
func (p *Proxy) User(socketID string) string {
	p.mu.Lock()
	defer p.mu.Unlock()
	if id := p.ident[socketID]; id != nil {
		return id.user
	}
	return ""
}

// Info returns the connection info the backend gave a socket, or nil.
func (p *Proxy) Info(socketID string) json.RawMessage {
	p.mu.Lock()
	defer p.mu.Unlock()
	if id := p.ident[socketID]; id != nil {
		return id.info
	}
	return nil
}

// Close removes the proxy's middleware and handlers and stops its timers.
func (p *Proxy) Close() {
	if p.stop != nil {
		p.stop()
	}
	p.wg.Wait()
	for _, rm := range p.remove {
		rm()
	}
	p.remove = nil
	for _, name := range p.o.RPCProcedures {
		p.srv.HandleProcedure(name, nil)
	}
	p.mu.Lock()
	for _, id := range p.ident {
		id.gone = true
		if id.timer != nil {
			id.timer.Stop()
		}
	}
	p.ident = map[string]*identity{}
	p.mu.Unlock()
}

func (p *Proxy) forget(socketID string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if id := p.ident[socketID]; id != nil {
		id.gone = true
		if id.timer != nil {
			id.timer.Stop()
		}
		delete(p.ident, socketID)
	}
}

func matches(patterns []string, channel string) bool {
	if len(patterns) == 0 {
		return true
	}
	for _, pat := range patterns {
		if ok, _ := path.Match(pat, channel); ok {
			return true
		}
	}
	return false
}

// request builds the common part of a backend request.
func (p *Proxy) request(event string, s *sc.Socket, hr *http.Request) *Request {
	r := &Request{Event: event, SocketID: s.ID(), RemoteAddress: s.RemoteAddress(), User: p.User(s.ID())}
	if tok := s.AuthToken(); len(tok) > 0 {
		r.AuthToken = tok
		if r.User == "" {
			if sub, ok := tok["sub"].(string); ok {
				r.User = sub
			}
		}
	}
	if hr != nil {
		r.Query = hr.URL.RawQuery
	}
	if len(p.o.Headers) > 0 {
		if hr == nil {
			hr = s.Request()
		}
		r.Headers = map[string]string{}
		for _, h := range p.o.Headers {
			if v := hr.Header.Get(h); v != "" {
				r.Headers[http.CanonicalHeaderKey(h)] = v
			}
		}
	}
	return r
}

// clientError turns a call's error into what the client gets, with the
// disconnection a refusal asked for (nil if none), to run once the error
// is on its way.
func (p *Proxy) clientError(s *sc.Socket, err error) (disconnect func(), clientErr error) {
	var ref *refusal
	var be *backendError
	switch {
	case errors.As(err, &ref):
		if ref.disconnect != nil && s != nil {
			d := *ref.disconnect
			return func() { _ = s.Disconnect(d.Code, d.Reason) }, ref.err
		}
		return nil, ref.err
	case errors.As(err, &be):
		return nil, be.err
	}
	p.log.Error("proxy: request not sent", "error", err.Error())
	return nil, sc.NewError(ErrNameUnavailable, "The backend is unavailable")
}

// refuse returns the error a refused subscribe or publish gets. The
// socket sends it after the middleware returned; a disconnection the
// backend asked for may overtake it (the client then sees the close code
// and reason).
func (p *Proxy) refuse(s *sc.Socket, err error) error {
	disconnect, e := p.clientError(s, err)
	if disconnect != nil {
		go disconnect()
	}
	return e
}

// handshake is the proxy's handshake middleware: connect decides
// handshakeSC actions.
func (p *Proxy) handshake(ctx context.Context, a *sc.Action) error {
	if a.Type != sc.ActionHandshakeSC || p.o.ConnectURL == "" {
		return nil
	}
	return p.connect(ctx, a.Socket, a.Request)
}

// inbound is the proxy's inbound middleware: subscribe and publish.
func (p *Proxy) inbound(ctx context.Context, a *sc.Action) error {
	switch {
	case a.Type == sc.ActionSubscribe && p.o.SubscribeURL != "":
		return p.subscribe(ctx, a)
	case a.Type == sc.ActionPublishIn && p.o.PublishURL != "":
		return p.publish(ctx, a)
	}
	return nil
}

// connect asks the backend whether s may connect.
func (p *Proxy) connect(ctx context.Context, s *sc.Socket, hr *http.Request) error {
	r := p.request("connect", s, hr)
	res, err := p.c.call(ctx, p.o.ConnectURL, r)
	if err != nil {
		var ref *refusal
		var be *backendError
		code := protocol.CloseHandshakeRejected
		var e *sc.Error
		switch {
		case errors.As(err, &ref):
			e = ref.err
			if ref.disconnect != nil {
				code = ref.disconnect.Code
			}
		case errors.As(err, &be):
			e = be.err
		default:
			e = sc.NewError(ErrNameUnavailable, "The backend is unavailable")
		}
		return e.With("statusCode", code)
	}
	var cr ConnectResult
	if err := json.Unmarshal(res, &cr); err != nil {
		p.c.unavailable.Add(1)
		p.c.ok.Add(-1)
		p.c.warn("backend connect result is malformed", r, p.o.ConnectURL, err)
		return sc.NewError(ErrNameUnavailable, "The backend is unavailable").With("statusCode", protocol.CloseHandshakeRejected)
	}
	id := &identity{user: cr.User, info: cr.Info, channels: map[string]bool{}, pending: &cr}
	for _, ch := range cr.Channels {
		id.channels[ch] = true
	}
	p.mu.Lock()
	p.ident[s.ID()] = id
	p.mu.Unlock()
	if s.State() == sc.StateClosed {
		p.forget(s.ID()) // its closure may have been handled already
	}
	return nil
}

// connected applies the connect result: token, channels, refresh.
func (p *Proxy) connected(s *sc.Socket) {
	p.mu.Lock()
	id := p.ident[s.ID()]
	var cr *ConnectResult
	if id != nil {
		cr, id.pending = id.pending, nil
	}
	p.mu.Unlock()
	if cr == nil {
		return
	}
	p.applyToken(s, cr)
	for _, ch := range cr.Channels {
		if err := s.Subscribe(ch); err != nil {
			p.log.Warn("proxy: cannot subscribe the socket to a channel of its connect result", "socket", s.ID(), "channel", ch, "error", err.Error())
		}
	}
}

// applyToken signs and sends the token of a connect or refresh result,
// and schedules the next refresh.
func (p *Proxy) applyToken(s *sc.Socket, cr *ConnectResult) {
	if cr.User == "" && cr.AuthToken == nil {
		return
	}
	claims := map[string]any{}
	for k, v := range cr.AuthToken {
		claims[k] = v
	}
	if cr.User != "" {
		claims["sub"] = cr.User
	}
	var o *sc.SetAuthTokenOptions
	expireIn := time.Duration(cr.ExpireIn * float64(time.Second))
	if expireIn > 0 {
		delete(claims, "exp")
		o = &sc.SetAuthTokenOptions{SignOptions: auth.SignOptions{ExpiresIn: expireIn}}
	}
	ctx, cancel := context.WithTimeout(context.Background(), p.o.Timeout)
	defer cancel()
	if err := s.SetAuthToken(ctx, claims, o); err != nil {
		p.log.Warn("proxy: cannot set the socket's token", "socket", s.ID(), "error", err.Error())
		return
	}
	if expireIn > 0 && p.o.RefreshURL != "" {
		p.scheduleRefresh(s, expireIn*4/5)
	}
}

func (p *Proxy) scheduleRefresh(s *sc.Socket, after time.Duration) {
	p.mu.Lock()
	defer p.mu.Unlock()
	id := p.ident[s.ID()]
	if id == nil || id.gone {
		return
	}
	if id.timer != nil {
		id.timer.Stop()
	}
	id.timer = time.AfterFunc(after, func() { p.refresh(s) })
}

// refresh asks the backend to renew the socket's token.
func (p *Proxy) refresh(s *sc.Socket) {
	if s.State() != sc.StateOpen {
		return
	}
	res, err := p.c.call(context.Background(), p.o.RefreshURL, p.request("refresh", s, nil))
	if err != nil {
		var ref *refusal
		if errors.As(err, &ref) {
			code, reason := protocol.CloseCode(4403), "Token refresh refused"
			if ref.disconnect != nil {
				code, reason = ref.disconnect.Code, ref.disconnect.Reason
			}
			s.Deauthenticate()
			_ = s.Disconnect(code, reason)
			return
		}
		p.scheduleRefresh(s, 5*time.Second) // the backend is down: try again
		return
	}
	var cr ConnectResult
	if err := json.Unmarshal(res, &cr); err != nil || cr.ExpireIn <= 0 {
		p.c.warn("backend refresh result is malformed or has no expireIn", &Request{Event: "refresh", SocketID: s.ID()}, p.o.RefreshURL, fmt.Errorf("%s", res))
		p.scheduleRefresh(s, 5*time.Second)
		return
	}
	p.mu.Lock()
	if id := p.ident[s.ID()]; id != nil {
		if cr.User != "" {
			id.user = cr.User
		}
		if cr.Info != nil {
			id.info = cr.Info
		}
		if cr.User == "" {
			cr.User = id.user
		}
	}
	p.mu.Unlock()
	p.applyToken(s, &cr)
}

// preauthorized reports whether the connect result listed channel.
func (p *Proxy) preauthorized(s *sc.Socket, channel string) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	id := p.ident[s.ID()]
	return id != nil && id.channels[channel]
}

// subscribe asks the backend about a subscription. A presence companion
// "#presence:C" is decided as C.
func (p *Proxy) subscribe(ctx context.Context, a *sc.Action) error {
	channel := strings.TrimPrefix(a.Channel, "#presence:")
	if !matches(p.o.SubscribeChannels, channel) || p.preauthorized(a.Socket, channel) {
		return nil
	}
	r := p.request("subscribe", a.Socket, nil)
	r.Channel = channel
	if len(a.Data) > 0 {
		r.Data = json.RawMessage(a.Data)
	}
	if _, err := p.c.call(ctx, p.o.SubscribeURL, r); err != nil {
		return p.refuse(a.Socket, err)
	}
	return nil
}

// publish asks the backend about a client publish; the result's data, if
// any, replaces the published data.
func (p *Proxy) publish(ctx context.Context, a *sc.Action) error {
	if !matches(p.o.PublishChannels, a.Channel) {
		return nil
	}
	r := p.request("publish", a.Socket, nil)
	r.Channel = a.Channel
	if len(a.Data) > 0 {
		r.Data = json.RawMessage(a.Data)
	}
	res, err := p.c.call(ctx, p.o.PublishURL, r)
	if err != nil {
		return p.refuse(a.Socket, err)
	}
	var out struct {
		Data json.RawMessage `json:"data"`
	}
	if json.Unmarshal(res, &out) == nil && out.Data != nil {
		return a.SetData(sc.Data(out.Data))
	}
	return nil
}

// rpc answers a proxied procedure.
func (p *Proxy) rpc(req *sc.Request) {
	r := p.request("rpc", req.Socket, nil)
	r.Procedure = req.Procedure
	if len(req.Data) > 0 {
		r.Data = json.RawMessage(req.Data)
	}
	go func() {
		res, err := p.c.call(context.Background(), p.o.RPCURL, r)
		if err != nil {
			disconnect, e := p.clientError(req.Socket, err)
			_ = req.Error(e) // queued before the close frame
			if disconnect != nil {
				disconnect()
			}
			return
		}
		var out struct {
			Data json.RawMessage `json:"data"`
		}
		if json.Unmarshal(res, &out) != nil {
			_ = req.Error(sc.NewError(ErrNameUnavailable, "The backend is unavailable"))
			return
		}
		if out.Data == nil {
			_ = req.End(sc.Undefined)
			return
		}
		_ = req.End(sc.Data(out.Data))
	}()
}
