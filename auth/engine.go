package auth

import (
	"context"
	"time"
)

// Engine signs and verifies auth tokens. A server uses [JWT] unless the
// application supplies its own Engine (the reference's `authEngine` option).
//
// Sign turns a payload into a signed token and returns the claims as the
// socket stores them (a copy of the payload plus whatever the engine added,
// such as iat and exp). It must not modify payload. A failed Sign makes the
// server close the socket with code 4002.
//
// Verify checks a token received from a client and returns its claims. token
// is the value the client sent: usually a string, nil when absent, anything
// else when the client sent another JSON type. Verify errors should be
// [*TokenError] values; the server turns any other error into an
// AuthTokenError with the error's text (see [AsTokenError]), as the
// reference does.
//
// Implementations must be safe for concurrent use.
type Engine interface {
	Sign(ctx context.Context, payload map[string]any, o *SignOptions) (token string, claims map[string]any, err error)
	Verify(ctx context.Context, token any, now time.Time) (claims map[string]any, err error)
}

// SignOptions are the per-token options of `socket.setAuthToken`. Zero
// values mean "not set". The signing algorithm cannot be chosen per token
// (it is [Options.Algorithm]).
type SignOptions struct {
	// ExpiresIn sets exp = iat + ExpiresIn when the payload has no exp of
	// its own (a payload exp wins and ExpiresIn is then ignored). Zero means
	// the engine's default expiry. Whole seconds are added as a number of
	// seconds; a duration with a fractional second is added and floored,
	// like jsonwebtoken's timespan strings ("1500ms").
	ExpiresIn time.Duration
	// NotBefore sets nbf = iat + NotBefore, computed like ExpiresIn. It is
	// an error if the payload already has nbf.
	NotBefore time.Duration
	// Issuer, Subject and JWTID set iss, sub and jti; it is an error if the
	// payload already has the claim.
	Issuer, Subject, JWTID string
	// KeyID sets the kid header parameter.
	KeyID string
	// Audience sets aud: a string when it has one element, an array
	// otherwise. It is an error if the payload already has aud.
	Audience []string
	// Header adds or overrides header parameters (alg, typ, kid and others),
	// as jsonwebtoken's header option does. Overriding alg changes the
	// signing algorithm; "none" is refused.
	Header map[string]any
	// NoTimestamp leaves iat out of the token (and removes a payload iat);
	// the timestamp is still used as the base of exp and nbf.
	NoTimestamp bool
}

var _ Engine = (*JWT)(nil)
