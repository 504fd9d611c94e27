package client

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"sync"
	"time"

	"github.com/gobwas/ws"

	"github.com/socketcluster-go/socketcluster/internal/wire"
	"github.com/socketcluster-go/socketcluster/protocol"
	"github.com/socketcluster-go/socketcluster/stream"
)

// State is the client's connection state.
type State string

// Client states.
const (
	// StateConnecting: a connection attempt or a reconnect is under way
	// (or waiting for its back-off delay).
	StateConnecting State = "connecting"
	// StateOpen: the handshake is done; packets go out at once.
	StateOpen State = "open"
	// StateClosed: no connection and no reconnect pending (after Close, or
	// after a close that does not reconnect: 1000, 4500–4999, or
	// AutoReconnect off). Connect dials again unless Close was called.
	StateClosed State = "closed"
)

// ErrClosed is returned by calls on a client that is closed (StateClosed).
var ErrClosed = errors.New("client: closed")

// ErrNotAuthenticated is returned by Authenticate when the server answered
// isAuthenticated false without giving a reason.
var ErrNotAuthenticated = errors.New("client: not authenticated")

// ReconnectOptions shape the back-off between reconnect attempts, as the
// official client's autoReconnectOptions: attempt k (from 0) waits
// round((InitialDelay + Randomness×rand[0,1)) × Multiplier^k), at most
// MaxDelay. A zero field takes the official default; a negative
// InitialDelay or Randomness means zero.
type ReconnectOptions struct {
	InitialDelay time.Duration // default 10s
	Randomness   time.Duration // default 10s
	Multiplier   float64       // default 1.5
	MaxDelay     time.Duration // default 60s
}

// Options configure a Client. The zero value is usable; zero fields take
// the official client's defaults, except AutoReconnect (false here).
type Options struct {
	// AuthToken is a signed token to present in the handshake (the
	// official client's stored token). The client replaces it with tokens
	// the server sends (#setAuthToken) and drops it on #removeAuthToken;
	// SignedAuthToken returns the current one, to persist it.
	AuthToken string
	// AckTimeout bounds each Invoke (TimeoutError), the handshake (close
	// 4003) and how long a transmit may wait for a connection. Default 10s.
	AckTimeout time.Duration
	// ConnectTimeout bounds the WebSocket upgrade (close 4007) and is the
	// ping deadline until the handshake announces pingTimeout. Default 20s.
	ConnectTimeout time.Duration
	// AutoReconnect reconnects after a connection drops, by close code as
	// the official client: at once for 4000, 4001 and 1005; never for 1000
	// and 4500–4999; after a back-off (Reconnect) otherwise. Channels are
	// subscribed again and packets sent while reconnecting are queued.
	AutoReconnect bool
	// Reconnect is the back-off of AutoReconnect.
	Reconnect ReconnectOptions
	// Header adds HTTP headers to the upgrade request (Origin, Cookie…).
	Header http.Header
	// Query is added to the URL's query string.
	Query url.Values
	// ProtocolVersion is 2 (default: pings are empty frames, answered
	// with empty frames) or 1 ("#1" answered with "#2").
	ProtocolVersion int
	// TLSConfig is used for wss:// URLs.
	TLSConfig *tls.Config
	// OnPublish, if set, is called with every publish received on a
	// channel the client has (subscribed or pending), in the order
	// received, from the connection's reader goroutine: it must return
	// quickly and must not call the client back synchronously. It sees
	// what the channel streams see, without a stream per channel (data
	// is nil for a publish without data).
	OnPublish func(channel string, data protocol.Data)
}

func (o Options) withDefaults() Options {
	if o.AckTimeout <= 0 {
		o.AckTimeout = 10 * time.Second
	}
	if o.ConnectTimeout <= 0 {
		o.ConnectTimeout = 20 * time.Second
	}
	if o.ProtocolVersion == 0 {
		o.ProtocolVersion = 2
	}
	r := &o.Reconnect
	switch {
	case r.InitialDelay == 0:
		r.InitialDelay = 10 * time.Second
	case r.InitialDelay < 0:
		r.InitialDelay = 0
	}
	switch {
	case r.Randomness == 0:
		r.Randomness = 10 * time.Second
	case r.Randomness < 0:
		r.Randomness = 0
	}
	if r.Multiplier <= 0 {
		r.Multiplier = 1.5
	}
	if r.MaxDelay <= 0 {
		r.MaxDelay = 60 * time.Second
	}
	return o
}

// Client is a SocketCluster client connection that survives reconnects.
// All methods are safe for concurrent use.
type Client struct {
	url  string
	opts Options

	listeners   *stream.Demux[any] // Event by name
	receivers   *stream.Demux[any] // protocol.Data by event name
	procedures  *stream.Demux[any] // *Request by procedure name
	channelData *stream.Demux[any] // protocol.Data by channel name

	ctx    context.Context // cancelled by Close: ends reconnects
	cancel context.CancelFunc
	wg     sync.WaitGroup // readers and the reconnect loop

	// Guarded by mu. Lock order: conn.wmu, then mu; never a write while
	// holding mu.
	mu          sync.Mutex
	state       State
	terminal    bool // Close was called
	cn          *conn
	id          string
	pingTimeout time.Duration
	nextCid     uint64
	calls       map[uint64]*call
	outbox      []outItem
	channels    map[string]*Channel
	chanSeq     uint64
	attempts    int
	storedToken string
	signedToken string
	authToken   protocol.AuthToken
	authState   protocol.AuthState
}

// call is an invoke waiting for its response.
type call struct {
	event string
	cn    *conn                      // connection it was sent on; nil while queued
	done  func(protocol.Data, error) // called once, without locks held
}

// outItem is a packet queued while not connected.
type outItem struct {
	frame    []byte
	cid      uint64 // 0 for a transmit
	deadline time.Time
}

type result struct {
	data protocol.Data
	err  error
}

// New returns a client that is not connected yet (StateClosed), so that
// listeners can be attached before the first connection; Connect dials.
// rawURL is ws:// or wss:// (http and https are accepted too); an empty
// path means "/socketcluster/". opts may be nil.
func New(rawURL string, opts *Options) (*Client, error) {
	var o Options
	if opts != nil {
		o = *opts
	}
	o = o.withDefaults()
	if o.ProtocolVersion != 1 && o.ProtocolVersion != 2 {
		return nil, fmt.Errorf("client: ProtocolVersion %d: use 1 or 2", o.ProtocolVersion)
	}
	u, err := buildURL(rawURL, o.Query)
	if err != nil {
		return nil, err
	}
	c := &Client{
		url:         u,
		opts:        o,
		listeners:   stream.NewDemux[any](),
		receivers:   stream.NewDemux[any](),
		procedures:  stream.NewDemux[any](),
		channelData: stream.NewDemux[any](),
		state:       StateClosed,
		calls:       make(map[uint64]*call),
		channels:    make(map[string]*Channel),
		storedToken: o.AuthToken,
		authState:   protocol.Unauthenticated,
	}
	c.ctx, c.cancel = context.WithCancel(context.Background())
	return c, nil
}

// Dial connects to a SocketCluster server and returns once the handshake
// is done (New, then Connect). ctx bounds this first connection only;
// Dial fails with the server's error (an *socketcluster.Error such as
// HandshakeRejectedError), the WebSocket error, or a TimeoutError, and
// then leaves nothing running.
func Dial(ctx context.Context, rawURL string, opts *Options) (*Client, error) {
	c, err := New(rawURL, opts)
	if err != nil {
		return nil, err
	}
	if err := c.Connect(ctx); err != nil {
		_ = c.Close(protocol.CloseNormal, "")
		return nil, err
	}
	return c, nil
}

func buildURL(rawURL string, query url.Values) (string, error) {
	u, err := url.Parse(rawURL)
	if err != nil {
		return "", fmt.Errorf("client: bad URL %q: %w", rawURL, err)
	}
	switch u.Scheme {
	case "ws", "wss":
	case "http":
		u.Scheme = "ws"
	case "https":
		u.Scheme = "wss"
	default:
		return "", fmt.Errorf("client: bad URL %q: the scheme must be ws or wss", rawURL)
	}
	if u.Path == "" {
		u.Path = "/socketcluster/"
	}
	if len(query) > 0 {
		q := u.Query()
		for k, vs := range query {
			for _, v := range vs {
				q.Add(k, v)
			}
		}
		u.RawQuery = q.Encode()
	}
	return u.String(), nil
}

// ---- Accessors ----

// State returns the connection state.
func (c *Client) State() State {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.state
}

// ID returns the socket id the server gave the current (or last)
// connection.
func (c *Client) ID() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.id
}

// PingTimeout returns the server's pingTimeout from the last handshake.
func (c *Client) PingTimeout() time.Duration {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.pingTimeout
}

// ---- Connecting ----

// connect makes one connection: WebSocket upgrade, then #handshake. On
// success the state is open, pending channels are subscribed and queued
// packets sent. On failure the connection is fully torn down (its reader
// has ended) and code is the close code that decides about reconnecting.
func (c *Client) connect(ctx context.Context) (code int, reason string, err error) {
	c.emit(ConnectingEvent{})
	d := ws.Dialer{
		Timeout:   c.opts.ConnectTimeout,
		TLSConfig: c.opts.TLSConfig,
	}
	if len(c.opts.Header) > 0 {
		d.Header = ws.HandshakeHeaderHTTP(c.opts.Header)
	}
	nc, br, _, err := d.Dial(ctx, c.url)
	if err != nil {
		code = 1006
		var ne net.Error
		if errors.As(err, &ne) && ne.Timeout() && ctx.Err() == nil {
			code = 4007
		}
		c.emit(ErrorEvent{Error: err})
		c.emitClosed(false, code, "")
		return code, "", err
	}

	cn := newConn(c, nc, br)
	res := make(chan result, 1)
	c.mu.Lock()
	if c.terminal {
		c.mu.Unlock()
		_ = nc.Close()
		return 1000, "", ErrClosed
	}
	c.cn = cn
	c.nextCid++
	hcid := c.nextCid
	c.calls[hcid] = &call{event: protocol.EventHandshake, cn: cn, done: func(d protocol.Data, err error) { res <- result{d, err} }}
	token := c.storedToken
	c.wg.Add(1)
	c.mu.Unlock()

	cn.resetPing(c.opts.ConnectTimeout)
	go cn.readLoop()

	data := []byte(`{"authToken":null}`)
	if token != "" {
		data = append(wire.AppendString([]byte(`{"authToken":`), token), '}')
	}
	_ = cn.write(appendInvoke(nil, protocol.EventHandshake, data, hcid))

	timer := time.NewTimer(c.opts.AckTimeout)
	defer timer.Stop()
	var r result
	select {
	case r = <-res:
	case <-timer.C:
		c.abandon(hcid)
		r.err = protocol.TimeoutError(protocol.EventHandshake)
	case <-ctx.Done():
		c.abandon(hcid)
		r.err = ctx.Err()
	}
	if r.err != nil {
		return c.failHandshake(ctx, cn, r.err)
	}

	var st struct {
		ID              string          `json:"id"`
		PingTimeout     float64         `json:"pingTimeout"`
		IsAuthenticated bool            `json:"isAuthenticated"`
		AuthError       json.RawMessage `json:"authError"`
	}
	_ = r.data.Decode(&st)
	pt := time.Duration(st.PingTimeout * float64(time.Millisecond))

	cn.wmu.Lock()
	c.mu.Lock()
	if c.cn != cn || cn.closeSent {
		c.mu.Unlock()
		cn.wmu.Unlock()
		<-cn.done
		return cn.closeCode, cn.closeReason, errBadConnection(protocol.EventHandshake, "connectAbort", cn.closeCode, cn.closeReason)
	}
	c.state = StateOpen
	c.id = st.ID
	c.pingTimeout = pt
	c.attempts = 0
	var evs []Event
	switch {
	case st.IsAuthenticated && token != "":
		evs = c.setAuthenticatedLocked(token)
	case c.signedToken != "" && c.signedToken != token:
		// A #setAuthToken sent right after the handshake response was
		// handled by the reader before this goroutine got here: the
		// server authenticated the socket since, keep its token.
	default:
		evs = c.setUnauthenticatedLocked()
	}
	frames := c.claimSubscriptionsLocked(cn)
	frames = append(frames, c.takeOutboxLocked(cn)...)
	c.mu.Unlock()

	cn.resetPing(pt)
	for _, e := range evs {
		c.emit(e)
	}
	c.emit(ConnectEvent{ID: st.ID, PingTimeout: pt, IsAuthenticated: st.IsAuthenticated, AuthError: protocol.UnmarshalError(st.AuthError)})
	for _, f := range frames {
		if cn.writeLocked(ws.OpText, f) != nil {
			break
		}
	}
	cn.wmu.Unlock()
	return 0, "", nil
}

// failHandshake closes a connection whose handshake failed, waits for its
// reader and returns the close code (the error's statusCode, else 4003).
func (c *Client) failHandshake(ctx context.Context, cn *conn, err error) (int, string, error) {
	code := 4003
	var e *protocol.Error
	switch {
	case errors.As(err, &e) && e.Name == "BadConnectionError":
		// The connection already closed.
	case ctx.Err() != nil:
		code = 1000
	default:
		if errors.As(err, &e) {
			if v, ok := e.Field("statusCode"); ok {
				if f, ok := v.(float64); ok && protocol.CloseCode(f).Valid() {
					code = int(f)
				}
			}
		}
		c.emit(ErrorEvent{Error: err})
	}
	cn.close(code, "")
	<-cn.done
	return cn.closeCode, cn.closeReason, err
}

// reconnectPolicy says whether a close code leads to a reconnect, and
// whether the first attempt is immediate (docs/protocol.md §12.3).
func reconnectPolicy(code int) (again, immediate bool) {
	c := protocol.CloseCode(code)
	switch {
	case c.StopsReconnect() || code >= 5000:
		return false, false
	case c.ReconnectsAtOnce():
		return true, true
	}
	return true, false
}

// backoffLocked returns the delay before the next attempt and counts it.
func (c *Client) backoffLocked(immediate bool) time.Duration {
	exp := c.attempts
	c.attempts++
	if immediate && exp == 0 {
		return 0
	}
	o := c.opts.Reconnect
	initial := math.Round(float64(o.InitialDelay) + float64(o.Randomness)*rand.Float64())
	d := initial * math.Pow(o.Multiplier, float64(exp))
	if d > float64(o.MaxDelay) {
		return o.MaxDelay
	}
	return time.Duration(math.Round(d))
}

// reconnectLoop waits delay, then connects until it succeeds, the close
// code forbids another attempt, or the client is closed.
func (c *Client) reconnectLoop(delay time.Duration) {
	defer c.wg.Done()
	for {
		if delay > 0 {
			t := time.NewTimer(delay)
			select {
			case <-t.C:
			case <-c.ctx.Done():
				t.Stop()
				return
			}
		}
		if c.ctx.Err() != nil {
			return
		}
		code, _, err := c.connect(c.ctx)
		if err == nil {
			return
		}
		c.mu.Lock()
		if c.terminal {
			c.mu.Unlock()
			return
		}
		again, immediate := reconnectPolicy(code)
		if !again || !c.opts.AutoReconnect {
			c.state = StateClosed
			failed := c.failOutboxLocked()
			c.mu.Unlock()
			failCalls(failed, ErrClosed)
			return
		}
		delay = c.backoffLocked(immediate)
		c.mu.Unlock()
	}
}

// Connect connects a client made with New, or one that is closed
// (StateClosed) after a close that did not reconnect, and returns once the
// handshake is done. It makes one attempt, bounded by ctx: AutoReconnect
// applies only once a connection was open. It does nothing on a client
// that is open or connecting, and fails with ErrClosed after Close.
func (c *Client) Connect(ctx context.Context) error {
	c.mu.Lock()
	if c.terminal {
		c.mu.Unlock()
		return ErrClosed
	}
	if c.state != StateClosed {
		c.mu.Unlock()
		return nil
	}
	c.state = StateConnecting
	c.mu.Unlock()
	_, _, err := c.connect(ctx)
	if err != nil {
		c.mu.Lock()
		var failed []*call
		if c.state == StateConnecting {
			c.state = StateClosed
			failed = c.failOutboxLocked()
		}
		c.mu.Unlock()
		failCalls(failed, ErrClosed)
	}
	return err
}

// connClosed is called by a connection's reader when it ended.
func (c *Client) connClosed(cn *conn, code int, reason string) {
	if reason == "" {
		reason = protocol.CloseCode(code).Text()
	}
	c.mu.Lock()
	if c.cn != cn {
		c.mu.Unlock()
		return
	}
	c.cn = nil
	wasOpen := c.state == StateOpen
	typ := "connectAbort"
	if wasOpen {
		typ = "disconnect"
	}
	var rejected []*call
	for cid, cl := range c.calls {
		if cl.cn == cn {
			delete(c.calls, cid)
			rejected = append(rejected, cl)
		}
	}
	var left []string // subscribed channels that go back to pending
	for name, ch := range c.channels {
		ch.cid = 0
		if ch.state == ChannelSubscribed {
			ch.setStateLocked(ChannelPending, nil)
			left = append(left, name)
		}
	}
	reconnect := false
	var delay time.Duration
	var failed []*call
	if wasOpen {
		again, immediate := reconnectPolicy(code)
		if again && c.opts.AutoReconnect && !c.terminal {
			c.state = StateConnecting
			delay = c.backoffLocked(immediate)
			reconnect = true
			c.wg.Add(1)
		} else {
			c.state = StateClosed
			failed = c.failOutboxLocked()
		}
	}
	c.mu.Unlock()

	for _, cl := range rejected {
		cl.done(nil, errBadConnection(cl.event, typ, code, reason))
	}
	failCalls(failed, ErrClosed)
	c.emitClosed(wasOpen, code, reason)
	for _, name := range left {
		c.emit(UnsubscribeEvent{Channel: name})
	}
	if reconnect {
		go c.reconnectLoop(delay)
	}
}

// emitClosed emits the events of a close.
func (c *Client) emitClosed(wasOpen bool, rawCode int, reason string) {
	code := protocol.CloseCode(rawCode)
	if reason == "" {
		reason = code.Text()
	}
	if wasOpen {
		c.emit(DisconnectEvent{Code: code, Reason: reason})
	} else {
		c.emit(ConnectAbortEvent{Code: code, Reason: reason})
	}
	c.emit(CloseEvent{Code: code, Reason: reason})
	if code != 1000 && code != 1001 {
		c.emit(ErrorEvent{Error: protocol.SocketProtocolError(code, reason)})
	}
}

// failOutboxLocked empties the outbox and returns the calls of its
// invokes (transmits are dropped).
func (c *Client) failOutboxLocked() []*call {
	var failed []*call
	for _, it := range c.outbox {
		if it.cid == 0 {
			continue
		}
		if cl, ok := c.calls[it.cid]; ok {
			delete(c.calls, it.cid)
			failed = append(failed, cl)
		}
	}
	c.outbox = nil
	return failed
}

func failCalls(calls []*call, err error) {
	for _, cl := range calls {
		cl.done(nil, err)
	}
}

// takeOutboxLocked returns the queued frames still worth sending and marks
// their calls as sent on cn.
func (c *Client) takeOutboxLocked(cn *conn) [][]byte {
	now := time.Now()
	var frames [][]byte
	for _, it := range c.outbox {
		if it.cid == 0 {
			if now.Before(it.deadline) {
				frames = append(frames, it.frame)
			}
			continue
		}
		if cl, ok := c.calls[it.cid]; ok {
			cl.cn = cn
			frames = append(frames, it.frame)
		}
	}
	c.outbox = nil
	return frames
}

// Close closes the client for good: it sends a close frame with code
// (0 means 1000) and reason, stops reconnecting, fails pending calls, ends
// every stream (listeners after the final close events) and returns once
// every goroutine of the client has ended. Codes must be 1000–1003,
// 1007–1014 or 3000–4999. Closing again does nothing.
func (c *Client) Close(code protocol.CloseCode, reason string) error {
	if code == 0 {
		code = protocol.CloseNormal
	}
	if !code.Valid() {
		return protocol.NewError("InvalidArgumentsError", "Invalid close code "+strconv.Itoa(int(code))+": use 1000-1003, 1007-1014 or 3000-4999")
	}
	if len(reason) > 123 {
		reason = reason[:123]
	}
	c.mu.Lock()
	if c.terminal {
		c.mu.Unlock()
		return nil
	}
	c.terminal = true
	cn := c.cn
	c.mu.Unlock()

	c.cancel()
	if cn != nil {
		cn.close(int(code), reason)
	}
	c.wg.Wait()

	c.mu.Lock()
	c.state = StateClosed
	var failed []*call
	for cid, cl := range c.calls {
		delete(c.calls, cid)
		failed = append(failed, cl)
	}
	c.outbox = nil
	chans := c.channels
	c.channels = make(map[string]*Channel)
	for _, ch := range chans {
		ch.setStateLocked(ChannelUnsubscribed, ErrClosed)
	}
	c.mu.Unlock()
	failCalls(failed, ErrClosed)
	c.closeStreams()
	return nil
}

func (c *Client) closeStreams() {
	c.channelData.CloseAll()
	c.receivers.CloseAll()
	c.procedures.CloseAll()
	c.listeners.CloseAll()
}
