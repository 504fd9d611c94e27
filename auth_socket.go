package socketcluster

import (
	"context"
	"encoding/json"
	"errors"
	"math"
	"time"

	"github.com/socketcluster-go/socketcluster/auth"
	"github.com/socketcluster-go/socketcluster/internal/wire"
	"github.com/socketcluster-go/socketcluster/protocol"
)

// Authentication (docs/protocol.md §6): the token in #handshake, #authenticate,
// #removeAuthToken, SetAuthToken, Deauthenticate and mid-session expiry.

// SetAuthTokenOptions are the options of SetAuthToken.
type SetAuthTokenOptions struct {
	auth.SignOptions
	// RejectOnFailedDelivery sends #setAuthToken as an invoke and waits for
	// the client's receipt; SetAuthToken then fails with an AuthError when
	// it does not come.
	RejectOnFailedDelivery bool
}

// jsTruthy reports whether a raw JSON value is truthy in JavaScript.
func jsTruthy(raw []byte) bool {
	switch string(raw) {
	case "", "null", "false", "0", `""`, "-0":
		return false
	}
	if f, ok := wire.Number(raw); ok {
		return f != 0 && !math.IsNaN(f)
	}
	return true
}

// tokenOf decodes a raw token value for the engine: a string stays a
// string, anything else is passed as its JSON value.
func tokenOf(raw []byte) (any, string) {
	if s, ok := wire.Unquote(raw); ok {
		return s, s
	}
	var v any
	_ = json.Unmarshal(raw, &v)
	return v, ""
}

func (s *Socket) verify(token any) (AuthToken, error) {
	claims, err := s.server.auth.Verify(context.Background(), token, time.Now())
	if err != nil {
		return nil, auth.AsTokenError(err)
	}
	return claims, nil
}

func isBadToken(err error) bool {
	var te *auth.TokenError
	if errors.As(err, &te) {
		return te.IsBadToken
	}
	var e *Error
	if errors.As(err, &e) {
		v, _ := e.Field("isBadToken")
		return v == true
	}
	return false
}

// setToken stores a verified or signed token; it returns the previous state.
func (s *Socket) setToken(claims AuthToken, signed string) protocol.AuthState {
	s.mu.Lock()
	defer s.mu.Unlock()
	old := s.authStateLocked()
	m := s.moreLocked()
	m.authToken, m.signedToken, s.authed = claims, signed, true
	return old
}

func (s *Socket) clearToken() (protocol.AuthState, AuthToken) {
	s.mu.Lock()
	defer s.mu.Unlock()
	old := s.authStateLocked()
	var tok AuthToken
	if s.more != nil {
		tok = s.more.authToken
		s.more.authToken, s.more.signedToken = nil, ""
	}
	s.authed = false
	return old, tok
}

// emitAuthenticated emits the events of a successful authentication.
func (s *Socket) emitAuthenticated(old protocol.AuthState, tok AuthToken) {
	if old != protocol.Authenticated {
		s.emit(AuthStateChangeEvent{OldAuthState: old, NewAuthState: protocol.Authenticated, AuthToken: tok})
		s.server.emit(AuthenticationStateChangeEvent{Socket: s, OldAuthState: old, NewAuthState: protocol.Authenticated, AuthToken: tok})
	}
	s.emit(AuthenticateEvent{AuthToken: tok})
	s.server.emit(AuthenticationEvent{Socket: s, AuthToken: tok})
}

// deauth clears the token and emits the deauthentication events; send
// queues #removeAuthToken to the client.
func (s *Socket) deauth(send bool) {
	old, tok := s.clearToken()
	if old == protocol.Authenticated {
		s.emit(AuthStateChangeEvent{OldAuthState: old, NewAuthState: protocol.Unauthenticated})
		s.server.emit(AuthenticationStateChangeEvent{Socket: s, OldAuthState: old, NewAuthState: protocol.Unauthenticated})
	}
	s.emit(DeauthenticateEvent{OldAuthToken: tok})
	s.server.emit(DeauthenticationEvent{Socket: s, OldAuthToken: tok})
	if send {
		s.sendEvent(protocol.EventRemoveAuthToken, nil)
	}
}

func (s *Socket) badToken(err error, signed string) {
	s.emit(BadAuthTokenEvent{AuthError: err, SignedAuthToken: signed})
	s.server.emit(BadSocketAuthTokenEvent{Socket: s, AuthError: err, SignedAuthToken: signed})
}

// runAuthenticate runs the AUTHENTICATE action for a verified token; on a
// block it clears the token and returns the blocking error.
func (s *Socket) runAuthenticate(claims AuthToken, signed string) error {
	a := &Action{Type: ActionAuthenticate, Socket: s, SignedAuthToken: signed, AuthToken: claims}
	if err := s.server.runInbound(s, a); err != nil {
		s.clearToken()
		raw := s.server.blockError(err, a, MiddlewareInbound)
		return &rawError{err: err, raw: raw}
	}
	return nil
}

// rawError carries an error together with its wire form.
type rawError struct {
	err error
	raw []byte
}

func (e *rawError) Error() string                { return e.err.Error() }
func (e *rawError) Unwrap() error                { return e.err }
func (e *rawError) MarshalJSON() ([]byte, error) { return e.raw, nil }

func (s *Socket) handleHandshake(p *wire.Packet) {
	if !p.HasCid {
		s.emitError(errInvalidAction("Handshake request was malformatted"))
		s.closeWith(protocol.CloseHandshakeRejected, "", true)
		return
	}
	s.mu.Lock()
	s.handshakeDoneLocked()
	state := s.stateCode().State()
	s.mu.Unlock()
	if state == StateClosed {
		return
	}
	if state == StateOpen {
		// A repeated handshake: answer with the current status, count nothing.
		s.sendHandshakeResponse(p.Cid, nil)
		return
	}

	var rawToken []byte
	wire.Object(p.Data, func(k string, v []byte) {
		if k == "authToken" {
			rawToken = v
		}
	})
	hasToken := jsTruthy(rawToken)
	var (
		claims  AuthToken
		signed  string
		authErr error
	)
	if hasToken {
		var tok any
		tok, signed = tokenOf(rawToken)
		claims, authErr = s.verify(tok)
	}

	// HANDSHAKE_SC middleware.
	if s.server.HasMiddleware(MiddlewareHandshake) {
		if !hasToken {
			// Only the middleware sees this error: made for it alone.
			authErr = auth.NewInvalidError("jwt must be provided")
		}
		a := &Action{Type: ActionHandshakeSC, Request: s.Request(), Socket: s, AuthTokenError: authErr}
		a.Data = handshakeActionData(signed, authErr, claims)
		if err := s.server.decide(MiddlewareHandshake, a, true); err != nil {
			raw, code := s.handshakeRejection(err, a)
			s.sendResponse(p.Cid, nil, raw)
			s.closeWith(code, "", true)
			return
		}
		if s.State() == StateClosed {
			return
		}
	}

	var clientAuthErr error // authError in the response
	if hasToken {
		if authErr == nil {
			s.setToken(claims, signed) // the state-change events follow the connect event (§6.7)
			if err := s.runAuthenticate(claims, signed); err != nil {
				clientAuthErr = err
				if isBadToken(err) {
					s.badToken(err, signed)
				}
			}
		} else {
			clientAuthErr = authErr
			s.emitError(authErr)
			if isBadToken(authErr) {
				s.badToken(authErr, signed)
			}
		}
	}
	if clientAuthErr != nil && isBadToken(clientAuthErr) {
		// Events now; #removeAuthToken goes out after the response.
		s.deauth(false)
	}

	if !s.server.promote(s) {
		return
	}
	s.mu.Lock()
	if s.stateCode() == stClosed {
		// Closed from another goroutine (a deadline, Disconnect, Close)
		// after the check above: it stays closed, and its close removes
		// it from the clients again.
		s.mu.Unlock()
		return
	}
	s.state.Store(uint32(stOpen))
	s.mu.Unlock()
	isAuth := s.sendHandshakeResponse(p.Cid, clientAuthErr)
	if clientAuthErr != nil && isBadToken(clientAuthErr) {
		s.sendEvent(protocol.EventRemoveAuthToken, nil)
	}
	o := &s.server.opts
	if s.wants(ConnectEvent{}.EventName()) {
		s.emit(ConnectEvent{ID: s.id, PingTimeout: o.PingTimeout, IsAuthenticated: isAuth, AuthError: clientAuthErr})
	}
	if s.server.wants(ConnectionEvent{}.EventName()) {
		s.server.emit(ConnectionEvent{Socket: s, ID: s.id, PingTimeout: o.PingTimeout, IsAuthenticated: isAuth, AuthError: clientAuthErr})
	}
	if isAuth {
		s.emitAuthenticated(protocol.Unauthenticated, s.AuthToken())
	}
	if o.BatchOnHandshake {
		s.mu.Lock()
		s.startBatchingLocked()
		s.mu.Unlock()
		time.AfterFunc(o.BatchOnHandshakeDuration, func() {
			s.mu.Lock()
			user := s.more != nil && s.more.userBatchLock
			s.mu.Unlock()
			if !user {
				s.StopBatching()
			}
		})
	}
	s.deliverAnswered(protocol.EventHandshake, p)
}

// sendHandshakeResponse answers #handshake; it returns isAuthenticated.
func (s *Socket) sendHandshakeResponse(cid float64, authErr error) bool {
	isAuth := s.AuthState() == protocol.Authenticated
	buf := newPacketBuf(128)
	buf = append(buf, `{"rid":`...)
	buf = wire.AppendNumber(buf, cid)
	buf = append(buf, `,"data":{"id":`...)
	buf = wire.AppendString(buf, s.id)
	buf = append(buf, `,"pingTimeout":`...)
	buf = wire.AppendNumber(buf, float64(s.server.opts.PingTimeout.Milliseconds()))
	if authErr != nil {
		raw, err := appendError(nil, authErr)
		if err == nil {
			buf = append(buf, `,"authError":`...)
			buf = append(buf, raw...)
		}
	}
	buf = append(buf, `,"isAuthenticated":`...)
	if isAuth {
		buf = append(buf, "true"...)
	} else {
		buf = append(buf, "false"...)
	}
	buf = append(buf, "}}"...)
	// The handshake response is never batched. On a socket read
	// event-driven (a TCP socket, or TLS over one) it is written here and
	// now when nothing else is being written: the socket's first frame
	// finds its send buffer empty, so the write does not wait, and no
	// goroutine is started for it (flushInline; docs/performance.md,
	// "Set-up: the registration taken over as it is"). Over other
	// connections (net.Pipe, say) a write can wait for the peer's read.
	frame, err := s.packetFrame(buf)
	if err != nil {
		s.emitError(err)
		return isAuth
	}
	s.queueFrame(frame, false, s.conn.Watched())
	return isAuth
}

func handshakeActionData(signed string, authErr error, claims AuthToken) Data {
	m := map[string]any{"signedAuthToken": nil, "authTokenError": nil, "authToken": nil, "authState": string(protocol.Unauthenticated)}
	if signed != "" {
		m["signedAuthToken"] = signed
	}
	if authErr != nil {
		m["authTokenError"] = json.RawMessage(mustError(authErr))
	}
	if claims != nil && authErr == nil {
		m["authToken"] = claims
		m["authState"] = string(protocol.Authenticated)
	}
	b, _ := json.Marshal(m)
	return Data(b)
}

func mustError(err error) []byte {
	b, e := appendError(nil, err)
	if e != nil {
		return []byte("null")
	}
	return b
}

// handshakeRejection builds the error answer of a blocked HANDSHAKE_SC
// action and the close code (its statusCode, default 4008).
func (s *Socket) handshakeRejection(err error, a *Action) ([]byte, protocol.CloseCode) {
	code := protocol.CloseHandshakeRejected
	var e *Error
	if errors.As(err, &e) {
		if v, ok := e.Field("statusCode"); ok {
			if f, ok := toFloat(v); ok && protocol.CloseCode(f).Valid() && float64(int(f)) == f {
				code = protocol.CloseCode(f)
			}
		}
	}
	s.server.blockError(err, a, MiddlewareHandshake)
	// Build the client's error with statusCode added.
	var clientErr *Error
	var se silentError
	switch {
	case errors.Is(err, ErrBlocked) || errors.As(err, &se) || (e != nil && isSilentField(e)):
		clientErr = NewError("SilentMiddlewareBlockedError", "The handshakeSC AGAction was blocked by handshake middleware").With("type", "handshake")
	case e != nil:
		cp := *e
		cp.Fields = append([]protocol.Field(nil), e.Fields...)
		clientErr = &cp
	default:
		var str protocol.StringError
		if errors.As(err, &str) {
			// A string error stays a string: no statusCode can be attached.
			raw, _ := appendError(nil, err)
			return raw, code
		}
		// A plain error is a plain JavaScript Error: message only, then the
		// statusCode the reference assigns to it.
		clientErr = &Error{Message: err.Error()}
	}
	if _, ok := clientErr.Field("statusCode"); !ok {
		clientErr.With("statusCode", int(code))
	}
	raw, _ := appendError(nil, clientErr)
	return raw, code
}

// deliverAnswered hands an already answered reserved request to
// procedure(name), as the reference does.
func (s *Socket) deliverAnswered(name string, p *wire.Packet) {
	if p.HasCid && s.Procedures.d.HasConsumers(name) {
		r := &Request{Procedure: name, Data: Data(p.Data), Socket: s, ID: p.Cid}
		r.sent.Store(true)
		s.Procedures.d.Write(name, r)
	}
}

func (s *Socket) deliverReceived(name string, p *wire.Packet) {
	if !p.HasCid {
		s.Receivers.d.Write(name, Data(p.Data))
	}
}

func (s *Socket) handleAuthenticate(p *wire.Packet) {
	if !p.HasCid {
		s.emitError(errInvalidAction("Authenticate request was malformatted"))
		s.closeWith(protocol.CloseHandshakeRejected, "", true)
		return
	}
	var tok any
	var signed string
	if p.Data != nil && string(p.Data) != "null" {
		tok, signed = tokenOf(p.Data)
	}
	claims, err := s.verify(tok)
	if err != nil {
		s.emitError(err)
		if isBadToken(err) {
			s.badToken(err, signed)
			s.sendResponse(p.Cid, nil, mustError(err))
			s.deauth(true)
		} else {
			s.sendAuthStatus(p.Cid, err)
		}
		s.deliverAnswered(protocol.EventAuthenticate, p)
		return
	}
	old := s.setToken(claims, signed)
	if aerr := s.runAuthenticate(claims, signed); aerr != nil {
		if isBadToken(aerr) {
			s.badToken(aerr, signed)
			s.sendResponse(p.Cid, nil, mustError(aerr))
			s.deauth(true)
		} else {
			if old == protocol.Authenticated {
				s.emit(AuthStateChangeEvent{OldAuthState: protocol.Authenticated, NewAuthState: protocol.Unauthenticated})
				s.server.emit(AuthenticationStateChangeEvent{Socket: s, OldAuthState: protocol.Authenticated, NewAuthState: protocol.Unauthenticated})
			}
			s.sendAuthStatus(p.Cid, aerr)
		}
		s.deliverAnswered(protocol.EventAuthenticate, p)
		return
	}
	s.sendAuthStatus(p.Cid, nil)
	s.emitAuthenticated(old, claims)
	s.deliverAnswered(protocol.EventAuthenticate, p)
}

// sendAuthStatus answers #authenticate with {isAuthenticated, authError}.
func (s *Socket) sendAuthStatus(cid float64, authErr error) {
	data := []byte(`{"isAuthenticated":`)
	if s.AuthState() == protocol.Authenticated {
		data = append(data, "true"...)
	} else {
		data = append(data, "false"...)
	}
	data = append(data, `,"authError":`...)
	if authErr != nil {
		data = append(data, mustError(authErr)...)
	} else {
		data = append(data, "null"...)
	}
	data = append(data, '}')
	s.sendResponse(cid, data, nil)
}

func (s *Socket) handleRemoveAuthToken(p *wire.Packet) {
	s.deauth(false)
	s.deliverReceived(protocol.EventRemoveAuthToken, p)
}

// checkTokenExpiry drops an expired token (docs/protocol.md §6.6) and returns
// the AuthTokenExpiredError for the middleware action, or nil.
func (s *Socket) checkTokenExpiry() error {
	tok := s.AuthToken()
	if tok == nil {
		return nil
	}
	exp, ok := toFloat(tok["exp"])
	if !ok {
		return nil
	}
	if float64(time.Now().UnixMilli()) <= exp*1000 {
		return nil
	}
	s.deauth(true)
	return NewError("AuthTokenExpiredError", "The socket auth token has expired").With("expiry", exp)
}

// SetAuthToken signs payload into a token, makes the socket authenticated
// and sends the token to the client (#setAuthToken). Signing failures close
// the socket with 4002. See SetAuthTokenOptions for delivery confirmation.
func (s *Socket) SetAuthToken(ctx context.Context, payload AuthToken, opts *SetAuthTokenOptions) error {
	if s.State() != StateOpen {
		return errInvalidAction("Cannot call setAuthToken before completing the handshake")
	}
	var so *auth.SignOptions
	if opts != nil {
		so = &opts.SignOptions
	}
	signed, claims, err := s.server.auth.Sign(ctx, payload, so)
	if err != nil {
		s.emitError(err)
		s.closeWith(protocol.CloseSignTokenFailed, truncateReason(err.Error()), true)
		return err
	}
	old := s.setToken(claims, signed)
	s.emit(AuthTokenSignedEvent{SignedAuthToken: signed})
	s.emitAuthenticated(old, claims)
	data := append(append([]byte(`{"token":`), wire.AppendString(nil, signed)...), '}')
	if opts != nil && opts.RejectOnFailedDelivery {
		if _, err := s.Invoke(ctx, protocol.EventSetAuthToken, Data(data)); err != nil {
			e := NewError("AuthError", "Failed to deliver auth token to client - "+err.Error())
			s.emitError(e)
			return e
		}
		return nil
	}
	s.sendEvent(protocol.EventSetAuthToken, data)
	return nil
}

// Deauthenticate removes the socket's token and tells the client to drop
// it (#removeAuthToken).
func (s *Socket) Deauthenticate() {
	s.deauth(s.State() == StateOpen)
}

// DeauthenticateConfirmed is Deauthenticate with delivery confirmation
// (rejectOnFailedDelivery): it waits for the client's receipt.
func (s *Socket) DeauthenticateConfirmed(ctx context.Context) error {
	s.deauth(false)
	if _, err := s.Invoke(ctx, protocol.EventRemoveAuthToken, Undefined); err != nil {
		e := NewError("AuthError", "Failed to confirm delete of auth token from client - "+err.Error())
		s.emitError(e)
		return e
	}
	return nil
}
