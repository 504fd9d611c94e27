package socketcluster

import (
	"context"
	"net/http"
	"sync"
	"sync/atomic"
)

// SocketCluster 14 middleware: AddMiddleware(type, fn(req, next)), several
// functions per type run in series, as a thin layer over the same machinery
// as SetMiddleware (docs/protocol.md §8.6). They run after the line's
// SetMiddleware function, if any, allowed the action. Everything in this
// file exists for porting SocketCluster 14 apps; new code uses
// SetMiddleware with a MiddlewareLine and looks at Action.Type.

// V14MiddlewareType is a version 14 middleware type.
//
// Deprecated: use SetMiddleware; each type maps to a MiddlewareLine and
// ActionType as its constant says.
type V14MiddlewareType string

// Version 14 middleware types, each with the line and action types of
// SetMiddleware that replace it.
//
// Deprecated: use SetMiddleware with the line named on each constant.
const (
	V14MiddlewareHandshakeWS  V14MiddlewareType = "handshakeWS"  // MiddlewareHandshake, ActionHandshakeWS
	V14MiddlewareHandshakeSC  V14MiddlewareType = "handshakeSC"  // MiddlewareHandshake, ActionHandshakeSC
	V14MiddlewareAuthenticate V14MiddlewareType = "authenticate" // MiddlewareInbound, ActionAuthenticate
	V14MiddlewareSubscribe    V14MiddlewareType = "subscribe"    // MiddlewareInbound, ActionSubscribe
	V14MiddlewarePublishIn    V14MiddlewareType = "publishIn"    // MiddlewareInbound, ActionPublishIn ("publish" is accepted too)
	V14MiddlewarePublishOut   V14MiddlewareType = "publishOut"   // MiddlewareOutbound, ActionPublishOut
	V14MiddlewareEmit         V14MiddlewareType = "emit"         // MiddlewareInbound, ActionTransmit and ActionInvoke
)

// V14Request is the req object of a version 14 middleware. Which fields are
// set depends on the type, as in the reference: Request (handshakeWS and
// handshakeSC), Socket (all but handshakeWS), Event (emit), Channel
// (subscribe, publishIn, publishOut), Data (emit, subscribe, publishIn,
// publishOut; assign to replace it), AuthToken and SignedAuthToken
// (authenticate), AuthTokenExpiredError, WaitForAuth (subscribe). A
// publishIn function may set AckData: a client that published with a
// callback (cid) gets it as the data of the acknowledgement, as in v14 (the
// v15+ reference has no ack data and always answers {"rid":N}).
//
// Deprecated: use SetMiddleware, whose functions get an *Action.
type V14Request struct {
	Request               *http.Request
	Socket                *Socket
	Event                 string
	Channel               string
	Data                  Data
	AuthToken             AuthToken
	SignedAuthToken       string
	AuthTokenExpiredError error
	WaitForAuth           bool
	// AckData (publishIn only) is sent back in the publish's
	// acknowledgement; it follows Request.End's rules. Nil sends none.
	AckData any
}

// V14Middleware is fn(req, next): call next(nil) to allow, next(err) to
// block with err (an *Error with a "statusCode" field chooses the close code
// of a blocked handshakeSC; ErrBlocked or Silent(err) block silently). next
// may be called from another goroutine; it must be called once.
//
// Deprecated: use SetMiddleware with a Middleware function.
type V14Middleware func(req *V14Request, next func(err error))

type v14Entry struct {
	id int
	fn V14Middleware
}

type v14Set struct {
	mu     sync.RWMutex
	nextID int
	chains map[V14MiddlewareType][]v14Entry
	// used counts the functions in chains (written under mu), so that a
	// server without v14 middleware, the common case, decides without
	// taking mu.
	used atomic.Int32
}

func v14TypeOf(t ActionType) V14MiddlewareType {
	switch t {
	case ActionHandshakeWS:
		return V14MiddlewareHandshakeWS
	case ActionHandshakeSC:
		return V14MiddlewareHandshakeSC
	case ActionAuthenticate:
		return V14MiddlewareAuthenticate
	case ActionSubscribe:
		return V14MiddlewareSubscribe
	case ActionPublishIn:
		return V14MiddlewarePublishIn
	case ActionPublishOut:
		return V14MiddlewarePublishOut
	case ActionTransmit, ActionInvoke:
		return V14MiddlewareEmit
	}
	return ""
}

// AddMiddleware adds a version 14 middleware function; the returned func
// removes it (Go functions cannot be compared, so removal is by handle).
// The type "publish" is accepted as an alias of publishIn.
//
// Deprecated: use SetMiddleware; AddMiddleware is kept for porting
// SocketCluster 14 apps.
func (srv *Server) AddMiddleware(typ V14MiddlewareType, fn V14Middleware) (remove func(), err error) {
	if typ == "publish" {
		typ = V14MiddlewarePublishIn
	}
	switch typ {
	case V14MiddlewareHandshakeWS, V14MiddlewareHandshakeSC, V14MiddlewareAuthenticate, V14MiddlewareSubscribe,
		V14MiddlewarePublishIn, V14MiddlewarePublishOut, V14MiddlewareEmit:
	default:
		return nil, NewError("InvalidArgumentsError", "Middleware "+string(typ)+" type is not supported")
	}
	if fn == nil {
		return nil, NewError("InvalidArgumentsError", "Middleware function is nil")
	}
	s := &srv.v14
	s.mu.Lock()
	if s.chains == nil {
		s.chains = make(map[V14MiddlewareType][]v14Entry)
	}
	s.nextID++
	id := s.nextID
	s.chains[typ] = append(s.chains[typ], v14Entry{id, fn})
	s.used.Add(1)
	s.mu.Unlock()
	return func() {
		s.mu.Lock()
		defer s.mu.Unlock()
		chain := s.chains[typ]
		for i, e := range chain {
			if e.id == id {
				s.chains[typ] = append(chain[:i:i], chain[i+1:]...)
				s.used.Add(-1)
				return
			}
		}
	}, nil
}

// RemoveAllMiddleware14 removes every version 14 middleware of a type
// ("publish" is the alias of publishIn, as for AddMiddleware).
//
// Deprecated: use RemoveMiddleware with the line that replaces the type.
func (srv *Server) RemoveAllMiddleware14(typ V14MiddlewareType) {
	if typ == "publish" {
		typ = V14MiddlewarePublishIn
	}
	srv.v14.mu.Lock()
	srv.v14.used.Add(-int32(len(srv.v14.chains[typ])))
	delete(srv.v14.chains, typ)
	srv.v14.mu.Unlock()
}

func (s *v14Set) chain(t V14MiddlewareType) []v14Entry {
	if s.used.Load() == 0 {
		return nil
	}
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.chains[t]
}

func (s *v14Set) hasLine(line MiddlewareLine) bool {
	if s.used.Load() == 0 {
		return false
	}
	s.mu.RLock()
	defer s.mu.RUnlock()
	switch line {
	case MiddlewareHandshake:
		return len(s.chains[V14MiddlewareHandshakeWS])+len(s.chains[V14MiddlewareHandshakeSC]) > 0
	case MiddlewareInbound:
		return len(s.chains[V14MiddlewareAuthenticate])+len(s.chains[V14MiddlewareSubscribe])+
			len(s.chains[V14MiddlewarePublishIn])+len(s.chains[V14MiddlewareEmit]) > 0
	case MiddlewareOutbound:
		return len(s.chains[V14MiddlewarePublishOut]) > 0
	}
	return false
}

// runV14 runs the chain for a's type; it returns the blocking error.
func (srv *Server) runV14(ctx context.Context, a *Action) error {
	chain := srv.v14.chain(v14TypeOf(a.Type))
	if len(chain) == 0 {
		return nil
	}
	req := &V14Request{
		Request: a.Request, Socket: a.Socket, Channel: a.Channel, Data: a.Data,
		AuthToken: a.AuthToken, SignedAuthToken: a.SignedAuthToken,
		AuthTokenExpiredError: a.AuthTokenExpiredError, WaitForAuth: a.WaitForAuth,
	}
	if a.Type == ActionTransmit {
		req.Event = a.Receiver
	} else if a.Type == ActionInvoke {
		req.Event = a.Procedure
	}
	for _, e := range chain {
		done := make(chan error, 1)
		var once sync.Once
		e.fn(req, func(err error) { once.Do(func() { done <- err }) })
		select {
		case err := <-done:
			if err != nil {
				return err
			}
		case <-ctx.Done():
			return middlewareTimeoutError(a.Type, srv.opts.MiddlewareTimeout)
		}
	}
	if string(req.Data) != string(a.Data) {
		a.Data = req.Data
		a.dataChanged = true
	}
	if req.AckData != nil && a.Type == ActionPublishIn {
		raw, err := encodeValue(req.AckData)
		if err != nil {
			return NewError("InvalidArgumentsError", "publishIn middleware set AckData that cannot be encoded: "+err.Error())
		}
		a.ackData = raw
	}
	return nil
}
