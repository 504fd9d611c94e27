package socketcluster

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"sync/atomic"
	"time"
)

// MiddlewareLine names one of the four middleware lines (docs/protocol.md §8).
type MiddlewareLine string

// Middleware lines.
const (
	MiddlewareHandshake  MiddlewareLine = "handshake"  // HandshakeWS, HandshakeSC
	MiddlewareInboundRaw MiddlewareLine = "inboundRaw" // Message
	MiddlewareInbound    MiddlewareLine = "inbound"    // Transmit, Invoke, Subscribe, PublishIn, Authenticate
	MiddlewareOutbound   MiddlewareLine = "outbound"   // PublishOut
)

// ActionType is the type of a middleware action.
type ActionType string

// Action types.
const (
	ActionHandshakeWS  ActionType = "handshakeWS"
	ActionHandshakeSC  ActionType = "handshakeSC"
	ActionMessage      ActionType = "message"
	ActionTransmit     ActionType = "transmit"
	ActionInvoke       ActionType = "invoke"
	ActionSubscribe    ActionType = "subscribe"
	ActionPublishIn    ActionType = "publishIn"
	ActionPublishOut   ActionType = "publishOut"
	ActionAuthenticate ActionType = "authenticate"
)

// Action is what a middleware decides on. Fields are set according to
// Type (docs/protocol.md §8.2). A middleware allows an action by returning nil,
// after optionally replacing Data (SetData) — the reference's
// allow({data}); it blocks by returning an error: the client gets that
// error (an *Error keeps its name and fields), or, for ErrBlocked and
// errors wrapped with Silent, a SilentMiddlewareBlockedError.
type Action struct {
	Type ActionType
	// Request is the HTTP upgrade request (handshake actions).
	Request *http.Request
	// Socket is the socket concerned (all but HandshakeWS).
	Socket *Socket
	// Receiver (Transmit), Procedure (Invoke) and Channel (Subscribe,
	// PublishIn, PublishOut) name the target.
	Receiver, Procedure, Channel string
	// Data is the payload: the event data, the subscription's data field,
	// the published data, the raw message (Message), or for HandshakeSC
	// the token verification result {signedAuthToken, authTokenError,
	// authToken, authState}.
	Data Data
	// SignedAuthToken and AuthToken are set for Authenticate.
	SignedAuthToken string
	AuthToken       AuthToken
	// AuthTokenExpiredError is set on Transmit, Invoke, Subscribe and
	// PublishIn when the socket's token expired just before this action.
	AuthTokenExpiredError error
	// AuthTokenError is the verification error of the handshake's token
	// (HandshakeSC), if any.
	AuthTokenError error
	// WaitForAuth is set on Subscribe when the client asked for it.
	WaitForAuth bool

	dataChanged bool
	ackData     []byte // v14 publishIn AckData, JSON (middleware_v14.go)
}

// SetData replaces the action's data (allow({data: v})). v follows the
// rules of Request.End.
func (a *Action) SetData(v any) error {
	raw, err := encodeValue(v)
	if err != nil {
		return err
	}
	if raw == nil {
		return nil // undefined means keep
	}
	a.Data = Data(raw)
	a.dataChanged = true
	return nil
}

// Middleware decides on one action. Handshake, inbound-raw and inbound
// middleware runs with a context cancelled after Options.MiddlewareTimeout;
// one that has not returned by then blocks the action with a
// MiddlewareTimeoutError and the socket goes on (a function set with
// SetImmediateMiddleware instead runs in the socket's reader, with no
// deadline). Outbound middleware
// (PublishOut) runs once per receiving socket in the publisher's goroutine,
// with no deadline: it must decide at once and never block. Actions of one
// socket are decided one at a time, in order.
//
// The Action and the context are the function's only for the call: it must
// not keep them, or hand them to a goroutine, past its return (outbound
// actions are recycled for the next delivery; copy what you need).
type Middleware func(ctx context.Context, a *Action) error

// ErrBlocked blocks an action silently: the client gets a
// SilentMiddlewareBlockedError.
var ErrBlocked = errors.New("socketcluster: blocked by middleware")

type silentError struct{ err error }

func (e silentError) Error() string { return e.err.Error() }
func (e silentError) Unwrap() error { return e.err }

// Silent marks a blocking error as silent: the client gets a
// SilentMiddlewareBlockedError, server-side events get err.
func Silent(err error) error { return silentError{err} }

type middlewareSet struct {
	handshake, inboundRaw, inbound, outbound atomic.Pointer[lineFunc]
}

// lineFunc is the function set on a line.
type lineFunc struct {
	fn        Middleware
	immediate bool // set with SetImmediateMiddleware
}

func (m *middlewareSet) line(l MiddlewareLine) *atomic.Pointer[lineFunc] {
	switch l {
	case MiddlewareHandshake:
		return &m.handshake
	case MiddlewareInboundRaw:
		return &m.inboundRaw
	case MiddlewareInbound:
		return &m.inbound
	case MiddlewareOutbound:
		return &m.outbound
	}
	return nil
}

// SetMiddleware sets the function of a middleware line. Setting a line
// twice is an InvalidActionError; an unknown line an InvalidArgumentsError.
// Middleware applies to every action decided after the call, on every
// socket.
func (srv *Server) SetMiddleware(line MiddlewareLine, fn Middleware) error {
	return srv.setMiddleware(line, fn, false)
}

// SetImmediateMiddleware is SetMiddleware for a function that decides at
// once and never waits (no network or disk, no lock held for long, no
// channel it could block on): it then runs in the socket's reader, without
// the goroutine that SetMiddleware's functions get, which is most of what a
// decision costs (BenchmarkDecideInbound). In exchange the deadline is the
// function's own business: its context has none, Options.MiddlewareTimeout
// does not apply, and a function that blocks holds its socket's reader for
// as long as it blocks. Use SetMiddleware for anything that may wait.
//
// Stacked functions (UseMiddleware) and v14 middleware on the same line
// still run in a goroutine of their own, with the deadline.
func (srv *Server) SetImmediateMiddleware(line MiddlewareLine, fn Middleware) error {
	return srv.setMiddleware(line, fn, true)
}

func (srv *Server) setMiddleware(line MiddlewareLine, fn Middleware, immediate bool) error {
	p := srv.middleware.line(line)
	if p == nil {
		return NewError("InvalidArgumentsError", "Middleware "+string(line)+" type is not supported")
	}
	if fn == nil {
		return NewError("InvalidArgumentsError", "Middleware function is nil")
	}
	if !p.CompareAndSwap(nil, &lineFunc{fn: fn, immediate: immediate}) {
		return errInvalidAction("Middleware " + string(line) + " type has already been set")
	}
	return nil
}

// RemoveMiddleware removes the function of a middleware line.
func (srv *Server) RemoveMiddleware(line MiddlewareLine) {
	if p := srv.middleware.line(line); p != nil {
		p.Store(nil)
	}
}

// HasMiddleware reports whether a line has a function.
func (srv *Server) HasMiddleware(line MiddlewareLine) bool {
	p := srv.middleware.line(line)
	return p != nil && (p.Load() != nil || len(srv.stack.get(line)) > 0 || srv.v14.hasLine(line))
}

func middlewareTimeoutError(t ActionType, d time.Duration) *Error {
	return NewError("MiddlewareTimeoutError", fmt.Sprintf("The %s AGAction was not decided by middleware within %v", t, d))
}

// decide runs the middleware of line on a. async runs it in a goroutine of
// its own, with Options.MiddlewareTimeout as deadline, so that a function
// that ignores its context cannot hold the socket past the deadline
// (middleware_call.go); the synchronous form (outbound) runs it in the
// caller with no deadline. A panic blocks the action with an error.
func (srv *Server) decide(line MiddlewareLine, a *Action, async bool) error {
	p := srv.middleware.line(line).Load()
	stacked := srv.stack.get(line)
	v14 := srv.v14.hasLine(line)
	if p == nil && len(stacked) == 0 && !v14 {
		return nil
	}
	if !async {
		return srv.runMiddleware(context.Background(), line, p, stacked, v14, a)
	}
	if p != nil && p.immediate && len(stacked) == 0 && !v14 {
		// v14 false: a v14 chain added meanwhile waits for the next action
		// rather than run here without a deadline.
		return srv.runMiddleware(context.Background(), line, p, nil, false, a)
	}
	return srv.decideAsync(line, p, stacked, a)
}

// runMiddleware calls the line's function, then its stacked functions, then
// (with v14) the v14 chain, until one blocks.
func (srv *Server) runMiddleware(ctx context.Context, line MiddlewareLine, p *lineFunc, stacked []stackEntry, v14 bool, a *Action) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = NewError("MiddlewareError", fmt.Sprintf("%s middleware panicked: %v", line, r))
			srv.opts.Logger.Error("socketcluster: middleware panicked", "line", string(line), "action", string(a.Type), "panic", fmt.Sprint(r))
		}
	}()
	if p != nil {
		if err := p.fn(ctx, a); err != nil {
			return err
		}
	}
	for _, e := range stacked {
		if err := e.fn(ctx, a); err != nil {
			return err
		}
	}
	if !v14 {
		return nil
	}
	return srv.runV14(ctx, a)
}

// runInbound decides an inbound action.
func (srv *Server) runInbound(s *Socket, a *Action) error {
	return srv.decide(MiddlewareInbound, a, true)
}

// blockError turns a blocking error into the wire error the client gets,
// and emits the failure as the reference does (docs/protocol.md §8.4).
func (srv *Server) blockError(err error, a *Action, line MiddlewareLine) []byte {
	clientErr := err
	var se silentError
	var e *Error
	if errors.Is(err, ErrBlocked) || errors.As(err, &se) || (errors.As(err, &e) && isSilentField(e)) {
		clientErr = NewError("SilentMiddlewareBlockedError",
			"The "+string(a.Type)+" AGAction was blocked by "+string(line)+" middleware").With("type", string(line))
		if errors.Is(err, ErrBlocked) {
			err = clientErr
		}
	}
	if !srv.opts.SuppressMiddlewareFailures {
		if a.Type == ActionHandshakeWS || a.Type == ActionHandshakeSC || a.Socket == nil {
			srv.emitWarning(err)
		} else {
			a.Socket.emitError(err)
		}
	}
	raw, encErr := appendError(nil, clientErr)
	if encErr != nil {
		raw, _ = appendError(nil, errors.New(clientErr.Error()))
	}
	return raw
}

func isSilentField(e *Error) bool {
	v, ok := e.Field("silent")
	return ok && v == true
}

// CheckSubscribe decides, with the inbound middleware, whether s may
// subscribe to channel, without subscribing it: a feature that reveals a
// channel's state (presence, history) asks it so that it is guarded
// exactly as the channel's data is. It returns nil when the action would
// be allowed, else the blocking error as the client would get it (a failure
// is emitted as for a blocked #subscribe).
func (srv *Server) CheckSubscribe(s *Socket, channel string) error {
	a := &Action{Type: ActionSubscribe, Socket: s, Channel: channel, AuthTokenExpiredError: s.checkTokenExpiry()}
	if err := srv.runInbound(s, a); err != nil {
		return &rawError{err: err, raw: srv.blockError(err, a, MiddlewareInbound)}
	}
	return nil
}
