package client

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"maps"
	"strings"

	"github.com/socketcluster-go/socketcluster/internal/wire"
	"github.com/socketcluster-go/socketcluster/protocol"
)

// AuthState returns protocol.Authenticated or Unauthenticated.
func (c *Client) AuthState() protocol.AuthState {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.authState
}

// AuthToken returns the payload of the current token (a copy), decoded
// from the JWT's middle part without verifying it; nil when not
// authenticated.
func (c *Client) AuthToken() protocol.AuthToken {
	c.mu.Lock()
	defer c.mu.Unlock()
	return maps.Clone(c.authToken)
}

// SignedAuthToken returns the current signed token ("" when not
// authenticated).
func (c *Client) SignedAuthToken() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.signedToken
}

// StoredAuthToken returns the token the client presents in its next
// handshake: Options.AuthToken, or the last token the server sent, or the
// last one given to Authenticate; "" after #removeAuthToken or
// Deauthenticate. Persist it to stay logged in across processes.
func (c *Client) StoredAuthToken() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.storedToken
}

// decodeToken reads a JWT's payload without verifying it.
func decodeToken(signed string) protocol.AuthToken {
	parts := strings.Split(signed, ".")
	if len(parts) < 2 {
		return nil
	}
	b, err := base64.RawURLEncoding.DecodeString(strings.TrimRight(parts[1], "="))
	if err != nil {
		if b, err = base64.RawStdEncoding.DecodeString(strings.TrimRight(parts[1], "=")); err != nil {
			return nil
		}
	}
	var tok protocol.AuthToken
	if json.Unmarshal(b, &tok) != nil {
		return nil
	}
	return tok
}

// setAuthenticatedLocked makes signed the current token and returns the
// events to emit.
func (c *Client) setAuthenticatedLocked(signed string) []Event {
	tok := decodeToken(signed)
	c.signedToken, c.authToken = signed, tok
	var evs []Event
	if c.authState != protocol.Authenticated {
		evs = append(evs, AuthStateChangeEvent{
			OldAuthState: c.authState, NewAuthState: protocol.Authenticated,
			SignedAuthToken: signed, AuthToken: maps.Clone(tok),
		})
		c.authState = protocol.Authenticated
	}
	return append(evs, AuthenticateEvent{SignedAuthToken: signed, AuthToken: maps.Clone(tok)})
}

// setUnauthenticatedLocked drops the current token (not the stored one)
// and returns the events to emit.
func (c *Client) setUnauthenticatedLocked() []Event {
	if c.authState == protocol.Unauthenticated {
		return nil
	}
	oldSigned, oldTok := c.signedToken, c.authToken
	c.authState, c.signedToken, c.authToken = protocol.Unauthenticated, "", nil
	return []Event{
		AuthStateChangeEvent{OldAuthState: protocol.Authenticated, NewAuthState: protocol.Unauthenticated},
		DeauthenticateEvent{OldSignedAuthToken: oldSigned, OldAuthToken: oldTok},
	}
}

// handleSetAuthToken handles #setAuthToken (reader goroutine): store the
// token, become authenticated, subscribe WaitForAuth channels, and answer
// {"rid"} when asked for a receipt.
func (c *Client) handleSetAuthToken(cn *conn, data protocol.Data, cid float64, isInvoke bool) {
	var tok string
	ok := false
	wire.Object(data, func(key string, val []byte) {
		if key == "token" {
			tok, ok = wire.Unquote(val)
		}
	})
	if !ok || tok == "" {
		err := protocol.NewError("InvalidMessageError", "No token data provided by #setAuthToken event")
		if isInvoke {
			raw, _ := err.MarshalJSON()
			_ = cn.write(wire.AppendResponse(nil, cid, nil, raw))
		}
		c.emit(ErrorEvent{Error: err})
		return
	}
	c.mu.Lock()
	c.storedToken = tok
	evs := c.setAuthenticatedLocked(tok)
	var frames [][]byte
	if c.state == StateOpen && c.cn == cn {
		frames = c.claimSubscriptionsLocked(cn)
	}
	c.mu.Unlock()
	for _, e := range evs {
		c.emit(e)
	}
	if isInvoke {
		_ = cn.write(wire.AppendResponse(nil, cid, nil, nil))
	}
	for _, f := range frames {
		_ = cn.write(f)
	}
}

// handleRemoveAuthToken handles #removeAuthToken (reader goroutine).
func (c *Client) handleRemoveAuthToken(cn *conn, cid float64, isInvoke bool) {
	c.mu.Lock()
	old := c.storedToken
	c.storedToken = ""
	evs := c.setUnauthenticatedLocked()
	c.mu.Unlock()
	c.emit(RemoveAuthTokenEvent{OldAuthToken: decodeToken(old)})
	for _, e := range evs {
		c.emit(e)
	}
	if isInvoke {
		_ = cn.write(wire.AppendResponse(nil, cid, nil, nil))
	}
}

// Authenticate logs in with a signed token mid-session (#authenticate).
// It returns nil once the server accepted it (the client is then
// authenticated with it and subscribes its WaitForAuth channels), the
// server's authError when it refused it (an *socketcluster.Error such as
// AuthTokenExpiredError), or ErrNotAuthenticated. The token is kept for
// the next handshakes either way, unless the server answered with an
// error (e.g. a malformed token), which also makes the client
// unauthenticated; a timeout or a lost connection leaves the auth state
// as it was.
func (c *Client) Authenticate(ctx context.Context, signedToken string) error {
	status, err := c.invoke(ctx, protocol.EventAuthenticate, wire.AppendString(nil, signedToken))
	if err != nil {
		var e *protocol.Error
		transient := ctx.Err() != nil || errors.Is(err, ErrClosed) ||
			(errors.As(err, &e) && (e.Name == "BadConnectionError" || e.Name == "TimeoutError"))
		if !transient {
			c.mu.Lock()
			evs := c.setUnauthenticatedLocked()
			c.mu.Unlock()
			for _, ev := range evs {
				c.emit(ev)
			}
		}
		return err
	}
	var st struct {
		IsAuthenticated bool            `json:"isAuthenticated"`
		AuthError       json.RawMessage `json:"authError"`
	}
	_ = status.Decode(&st)
	c.mu.Lock()
	c.storedToken = signedToken
	var evs []Event
	var frames [][]byte
	var cn *conn
	if st.IsAuthenticated {
		evs = c.setAuthenticatedLocked(signedToken)
		if c.state == StateOpen {
			cn = c.cn
			frames = c.claimSubscriptionsLocked(cn)
		}
	} else {
		evs = c.setUnauthenticatedLocked()
	}
	c.mu.Unlock()
	for _, ev := range evs {
		c.emit(ev)
	}
	for _, f := range frames {
		_ = cn.write(f)
	}
	if st.IsAuthenticated {
		return nil
	}
	if authErr := protocol.UnmarshalError(st.AuthError); authErr != nil {
		return authErr
	}
	return ErrNotAuthenticated
}

// Deauthenticate logs out: it deletes the stored token, tells the server
// (#removeAuthToken, when connected) and makes the client
// unauthenticated.
func (c *Client) Deauthenticate() error {
	c.mu.Lock()
	if c.terminal {
		c.mu.Unlock()
		return ErrClosed
	}
	old := c.storedToken
	c.storedToken = ""
	evs := c.setUnauthenticatedLocked()
	c.mu.Unlock()
	c.emit(RemoveAuthTokenEvent{OldAuthToken: decodeToken(old)})
	for _, ev := range evs {
		c.emit(ev)
	}
	if _, err := c.send(protocol.EventRemoveAuthToken, nil, nil); err != nil && !errors.Is(err, ErrClosed) {
		return err
	}
	return nil
}
