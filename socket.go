package socketcluster

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/binary"
	"net"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/socketcluster-go/socketcluster/internal/wsconn"
	"github.com/socketcluster-go/socketcluster/protocol"
	"github.com/socketcluster-go/socketcluster/stream"
)

// State is a socket's connection state.
type State string

// Socket states.
const (
	StateConnecting State = "connecting"
	StateOpen       State = "open"
	StateClosed     State = "closed"
)

// Socket is the server side of one client connection (AGServerSocket).
//
// Listeners, Receivers and Procedures give its streams: events
// (Listener("disconnect")…), transmits from the client by name
// (Receiver("chat")) and invokes by name (Procedure("getUser")).
//
// All methods are safe for concurrent use. See CONCURRENCY.md for who owns
// which field.
type Socket struct {
	Listeners
	Receivers
	Procedures

	id      string
	server  *Server
	conn    *wsconn.Conn
	request upgradeRequest // the upgrade request in wire form
	lease   *lease         // connection limits held, nil without limits (limits.go)
	rate    *inboundRate   // inbound rate limit state, nil without one; the reader's

	// Guarded by mu (state and authed: the one-byte fields sit together
	// below, so that the Socket stays in its size class).
	mu           sync.Mutex
	more         *socketMore // what most idle sockets never need; made on first use
	channels     map[string]struct{}
	handshakeDue int64 // monotonic ns (monoNow); 0 once the handshake came
	pingDue      int64 // 0 when pings are off

	// Outbound queue, guarded by outMu (see socket_out.go).
	outMu    sync.Mutex
	outQ     [][]byte
	outFlags *packetFlags // with Options.CoalescePackets only, made on first use
	outBytes int
	closeReq *closeRequest

	v14h atomic.Pointer[v14Handlers] // Socket.On, OnEvent (v14.go); set once

	pongDue atomic.Int64 // monotonic ns; 0 when pings are off; moved by the reader (touch) without mu

	// The socket's place in Server.deadlines, guarded by deadlines.mu.
	due  int64 // next deadline, monotonic ns
	slot int32 // index in the heap, -1 when not scheduled

	// Small fields, together: state is written under mu and read
	// anywhere, authed is guarded by mu, flushing, outClosed and slow by
	// outMu.
	state     atomic.Uint32 // a stateCode; written under mu, read anywhere (State)
	authed    bool          // AuthState: Authenticated when set
	flushing  bool
	outClosed bool
	slow      bool

	inboundReceived  atomic.Int64
	inboundProcessed atomic.Int64
	outboundPrepared atomic.Int64
	outboundSent     atomic.Int64
}

// packetFlags says which queued frames hold one plain JSON packet, which
// the flusher may merge into an array frame (Options.CoalescePackets): q[i]
// is for outQ[i], spare is the slice the flusher gave back. A Socket makes
// it on the first frame queued with coalescing on, so that the Socket does
// not carry it otherwise (TestSocketSize). Guarded by the socket's outMu.
type packetFlags struct {
	q, spare []bool
}

// socketMore holds the fields of a Socket that an idle socket seldom
// needs: its token once authenticated, its calls to the client, its close
// code once closed, Done's channel, batching. A Socket makes it on first
// use (moreLocked), so that the Socket itself stays in a smaller size
// class (TestSocketSize). Guarded by the socket's mu.
type socketMore struct {
	authToken   AuthToken
	signedToken string
	calls       map[uint64]*call
	nextCid     uint64
	closeCode   protocol.CloseCode
	joining     map[string]*pendingSub // channel → #subscribe waiting for the broker (socket_pubsub.go)

	// Done's channel, made by the first call (an idle socket that nobody
	// waits for holds none) and closed after the end event.
	ended    chan struct{}
	hasEnded bool

	batching      bool // periodic batching (startBatching / batchOnHandshake)
	manualBatch   bool // startBatch until flushBatch / cancelBatch
	batchCounted  bool // counted in Server.batchingSockets (batchChangedLocked)
	userBatchLock bool
	batch         [][]byte
	batchTimer    *time.Timer
}

// moreLocked returns the socket's socketMore, making it. s.mu must be held.
func (s *Socket) moreLocked() *socketMore {
	if s.more == nil {
		s.more = new(socketMore)
	}
	return s.more
}

// joiningLocked returns the subscriptions waiting for the broker (nil
// when none ever did). s.mu must be held.
func (s *Socket) joiningLocked() map[string]*pendingSub {
	if s.more == nil {
		return nil
	}
	return s.more.joining
}

// stateCode is a State in a byte.
type stateCode uint8

const (
	stConnecting stateCode = iota
	stOpen
	stClosed
)

// stateCode reads the socket's state: without s.mu, since it is written
// atomically (under s.mu, so that transitions are decided one at a time).
func (s *Socket) stateCode() stateCode { return stateCode(s.state.Load()) }

func (c stateCode) State() State {
	switch c {
	case stOpen:
		return StateOpen
	case stClosed:
		return StateClosed
	}
	return StateConnecting
}

// authStateLocked returns the authentication state. s.mu must be held.
func (s *Socket) authStateLocked() protocol.AuthState {
	if s.authed {
		return protocol.Authenticated
	}
	return protocol.Unauthenticated
}

type call struct {
	event string
	ch    chan callResult
}

type callResult struct {
	data Data
	err  error
}

var socketCounter atomic.Uint32

// newSocketID returns 12 random bytes and the low 3 bytes of a counter,
// URL-safe base64 (20 characters), as the reference.
func newSocketID() string {
	var b [15]byte
	_, _ = rand.Read(b[:12])
	var c [4]byte
	binary.BigEndian.PutUint32(c[:], socketCounter.Add(1)-1)
	copy(b[12:], c[1:])
	return base64.URLEncoding.EncodeToString(b[:])
}

// ID returns the socket id.
func (s *Socket) ID() string { return s.id }

// Server returns the server the socket belongs to.
func (s *Socket) Server() *Server { return s.server }

// Request returns the HTTP upgrade request (URL, query, headers, cookies).
// Its body is not readable and its context is context.Background(). It is
// kept compactly and parsed when asked: calls return the same value while
// the caller (or anyone) still holds it; once no one does, its memory is
// given back and a later call returns a new value with the same content.
// Changes made to it are therefore not kept once it is dropped.
func (s *Socket) Request() *http.Request { return s.parsedRequest() }

// remoteAddr is the connection's remote address, host and port. It is not
// kept: an idle socket need not hold the string.
func (s *Socket) remoteAddr() string { return s.conn.RemoteAddr().String() }

// RemoteAddress returns the client's IP address.
func (s *Socket) RemoteAddress() string {
	remote := s.remoteAddr()
	host, _, err := net.SplitHostPort(remote)
	if err != nil {
		return remote
	}
	return host
}

// RemotePort returns the client's port.
func (s *Socket) RemotePort() int {
	_, port, _ := net.SplitHostPort(s.remoteAddr())
	n, _ := strconv.Atoi(port)
	return n
}

// ForwardedForAddress returns the first address of the request's
// X-Forwarded-For header, or "".
func (s *Socket) ForwardedForAddress() string {
	v := s.Request().Header.Get("X-Forwarded-For")
	for i := 0; i < len(v); i++ {
		if v[i] == ',' {
			return trimSpace(v[:i])
		}
	}
	return trimSpace(v)
}

func trimSpace(s string) string {
	for len(s) > 0 && (s[0] == ' ' || s[0] == '\t') {
		s = s[1:]
	}
	for len(s) > 0 && (s[len(s)-1] == ' ' || s[len(s)-1] == '\t') {
		s = s[:len(s)-1]
	}
	return s
}

// State returns the connection state (getState in v14).
func (s *Socket) State() State {
	return s.stateCode().State()
}

// ProtocolVersion returns the ping protocol version in use.
func (s *Socket) ProtocolVersion() int { return s.server.opts.ProtocolVersion }

// Exchange returns the server's exchange.
func (s *Socket) Exchange() *Exchange { return s.server.exchange }

// Done is closed when the socket has ended (after its end event).
func (s *Socket) Done() <-chan struct{} {
	s.mu.Lock()
	defer s.mu.Unlock()
	m := s.moreLocked()
	if m.ended == nil {
		if m.hasEnded {
			return closedChan
		}
		m.ended = make(chan struct{})
	}
	return m.ended
}

// closedChan is Done's channel for sockets that ended before anyone asked.
var closedChan = func() chan struct{} { c := make(chan struct{}); close(c); return c }()

// ---- Counters and backpressure (docs/protocol.md §11.3) ----

// InboundReceivedMessageCount counts every inbound message, pongs included.
func (s *Socket) InboundReceivedMessageCount() int64 { return s.inboundReceived.Load() }

// InboundProcessedMessageCount counts inbound messages fully processed.
func (s *Socket) InboundProcessedMessageCount() int64 { return s.inboundProcessed.Load() }

// OutboundPreparedMessageCount counts frames queued for sending.
func (s *Socket) OutboundPreparedMessageCount() int64 { return s.outboundPrepared.Load() }

// OutboundSentMessageCount counts frames written.
func (s *Socket) OutboundSentMessageCount() int64 { return s.outboundSent.Load() }

// BytesReceived is not tracked per byte; it returns the inbound message count
// for parity with getBytesReceived.

// InboundBackpressure is the number of inbound messages received but not
// yet processed.
func (s *Socket) InboundBackpressure() int {
	return int(s.inboundReceived.Load() - s.inboundProcessed.Load())
}

// OutboundBackpressure is the number of frames queued but not yet written.
func (s *Socket) OutboundBackpressure() int {
	return int(s.outboundPrepared.Load() - s.outboundSent.Load())
}

// Backpressure is the largest of the inbound, outbound, listener, receiver
// and procedure backpressures.
func (s *Socket) Backpressure() int {
	return max(s.InboundBackpressure(), s.OutboundBackpressure(), s.AllListenersBackpressure(),
		s.AllReceiversBackpressure(), s.AllProceduresBackpressure())
}

// ---- Auth accessors ----

// AuthState returns the socket's authentication state.
func (s *Socket) AuthState() protocol.AuthState {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.authStateLocked()
}

// AuthToken returns the socket's decoded token, or nil.
func (s *Socket) AuthToken() AuthToken {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.more == nil {
		return nil
	}
	return s.more.authToken
}

// SignedAuthToken returns the socket's signed token, or "".
func (s *Socket) SignedAuthToken() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.more == nil {
		return ""
	}
	return s.more.signedToken
}

// ---- Sending ----

// Transmit sends an event to the client's receiver (fire and forget). data
// follows Request.End's rules (Undefined for no data). On a socket that is
// not open it sends nothing and returns a BadConnectionError (also emitted
// as a socket error, as the reference does).
func (s *Socket) Transmit(event string, data any) error {
	raw, err := encodeValue(data)
	if err != nil {
		return err
	}
	if s.State() != StateOpen {
		e := errBadConnection("Socket transmit "+event+" event was aborted due to a bad connection", "disconnect", s.closeCodeOr(1001), "")
		s.emitError(e)
		return e
	}
	s.sendEvent(event, raw)
	return nil
}

func (s *Socket) closeCodeOr(def protocol.CloseCode) protocol.CloseCode {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.more != nil && s.more.closeCode != 0 {
		return s.more.closeCode
	}
	return def
}

// Invoke calls the client's procedure and waits for its answer, at most
// the server's AckTimeout (TimeoutError) and at most ctx. The answer's
// error is an *Error (or *protocol.ValueError) rebuilt from the client's.
func (s *Socket) Invoke(ctx context.Context, event string, data any) (Data, error) {
	return s.InvokeTimeout(ctx, event, data, s.server.opts.AckTimeout)
}

// InvokeTimeout is Invoke with its own ack timeout (the reference's
// {ackTimeout} option).
func (s *Socket) InvokeTimeout(ctx context.Context, event string, data any, ackTimeout time.Duration) (Data, error) {
	raw, err := encodeValue(data)
	if err != nil {
		return nil, err
	}
	s.mu.Lock()
	if s.stateCode() != stOpen {
		var code protocol.CloseCode
		if s.more != nil {
			code = s.more.closeCode
		}
		s.mu.Unlock()
		if code == 0 {
			code = 1001
		}
		return nil, errBadConnection("Socket invoke "+event+" event was aborted due to a bad connection", "disconnect", code, "")
	}
	m := s.moreLocked()
	m.nextCid++
	cid := m.nextCid
	c := &call{event: event, ch: make(chan callResult, 1)}
	if m.calls == nil {
		m.calls = make(map[uint64]*call)
	}
	m.calls[cid] = c
	s.mu.Unlock()

	s.sendInvoke(event, float64(cid), raw)

	timer := time.NewTimer(ackTimeout)
	defer timer.Stop()
	select {
	case r := <-c.ch:
		return r.data, r.err
	case <-timer.C:
		s.dropCall(cid)
		return nil, errTimeout(event)
	case <-ctx.Done():
		s.dropCall(cid)
		return nil, ctx.Err()
	}
}

func (s *Socket) dropCall(cid uint64) {
	s.mu.Lock()
	if s.more != nil {
		delete(s.more.calls, cid)
	}
	s.mu.Unlock()
}

// Send writes data raw, bypassing the codec: a string as a text frame,
// []byte as a binary frame. The client emits it as a raw event.
func (s *Socket) Send(data any) error {
	var payload []byte
	bin := true
	switch x := data.(type) {
	case string:
		payload, bin = []byte(x), false
	case []byte:
		payload = x
	case protocol.Binary:
		payload = x
	default:
		return NewError("InvalidArgumentsError", "Send takes a string or []byte")
	}
	var frame []byte
	if s.conn.Deflate() {
		frame = s.server.compressor.Frame(bin, payload)
	}
	if frame == nil {
		frame = wsconn.Frame(bin, payload)
	}
	if !s.enqueue(frame) {
		return ErrClosed
	}
	return nil
}

// Disconnect closes the connection with a close frame carrying code and
// reason (default 1000, empty reason). Codes must be 1000–1003, 1007–1014
// or 3000–4999; reasons are cut to 123 bytes.
func (s *Socket) Disconnect(code protocol.CloseCode, reason string) error {
	if code == 0 {
		code = protocol.CloseNormal
	}
	if !code.Valid() {
		return NewError("InvalidArgumentsError", "Invalid close code "+strconv.Itoa(int(code))+": use 1000-1003, 1007-1014 or 3000-4999")
	}
	s.closeWith(code, truncateReason(reason), true)
	return nil
}

func truncateReason(r string) string {
	if len(r) <= 123 {
		return r
	}
	r = r[:123]
	// Do not cut a UTF-8 sequence.
	for len(r) > 0 && r[len(r)-1]&0xC0 == 0x80 {
		r = r[:len(r)-1]
	}
	if len(r) > 0 && r[len(r)-1] >= 0xC0 {
		r = r[:len(r)-1]
	}
	return r
}

// Terminate drops the TCP connection without a close frame (the client
// sees 1006).
func (s *Socket) Terminate() {
	_ = s.conn.Close()
}

// ---- Errors ----

// emitError emits err as a socket error event and a server warning.
func (s *Socket) emitError(err error) {
	s.emit(ErrorEvent{Error: err})
	s.server.emitWarning(err)
}

// wants reports whether an event of that name would reach anyone: a
// listener's consumer or a v14 handler (Socket.On).
func (s *Socket) wants(name string) bool {
	return s.Listeners.d.HasConsumers(name) || hasEventHandlers(&s.v14h, name)
}

func (s *Socket) emit(e Event) {
	s.Listeners.emit(e)
	s.server.callEvent(&s.v14h, e)
}

var _ = stream.ErrEnded
