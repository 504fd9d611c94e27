package auth

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"time"
)

// Error names of token verification failures, as the reference sends them
// in the `name` field.
const (
	// NameExpired: the token's exp is not after now ("jwt expired").
	NameExpired = "AuthTokenExpiredError"
	// NameInvalid: malformed token, bad signature, refused algorithm, claim
	// of the wrong type, no token at all...
	NameInvalid = "AuthTokenInvalidError"
	// NameNotBefore: the token's nbf is still in the future ("jwt not
	// active"). The only failure that is not a bad token.
	NameNotBefore = "AuthTokenNotBeforeError"
	// NameToken: any other failure (for example a token that is not a
	// string).
	NameToken = "AuthTokenError"
)

// Sentinels for errors.Is: a [*TokenError] matches the sentinel of its Name.
var (
	ErrExpired   = &TokenError{Name: NameExpired}
	ErrInvalid   = &TokenError{Name: NameInvalid}
	ErrNotBefore = &TokenError{Name: NameNotBefore}
	ErrToken     = &TokenError{Name: NameToken}
)

// TokenError is a failed token verification, shaped as the reference's
// `sc-errors` auth errors after the server's mapping of jsonwebtoken errors.
type TokenError struct {
	Name    string // one of NameExpired, NameInvalid, NameNotBefore, NameToken
	Message string // e.g. "jwt expired", "invalid signature"
	// IsBadToken tells the server to emit the bad-token events and send
	// #removeAuthToken so the client drops the token. It is false only for
	// AuthTokenNotBeforeError (the token is good, just not active yet).
	IsBadToken bool
	// Expiry is the token's exp as a date (AuthTokenExpiredError). nil when
	// exp is outside the range of a JavaScript Date; it is then sent as null.
	Expiry *time.Time
	// Date is the token's nbf as a date (AuthTokenNotBeforeError); nil as
	// for Expiry.
	Date *time.Time
}

// Error returns "Name: Message", like JavaScript's Error.prototype.toString.
func (e *TokenError) Error() string {
	if e.Name == "" {
		return e.Message
	}
	if e.Message == "" {
		return e.Name
	}
	return e.Name + ": " + e.Message
}

// Is reports whether target is a *TokenError with the same Name and, if the
// target has a Message, the same Message. So errors.Is(err, ErrExpired)
// holds for every expired-token error.
func (e *TokenError) Is(target error) bool {
	t, ok := target.(*TokenError)
	if !ok || t == nil {
		return false
	}
	return t.Name == e.Name && (t.Message == "" || t.Message == e.Message)
}

// Fields returns the error as the reference serialises it on the wire:
// message, name, expiry (AuthTokenExpiredError) or date
// (AuthTokenNotBeforeError) as ISO-8601 text like
// "2026-11-22T02:45:16.000Z" (nil for an out-of-range date), and isBadToken.
// Use [TokenError.MarshalJSON] to get the reference's key order.
func (e *TokenError) Fields() map[string]any {
	m := map[string]any{
		"message":    e.Message,
		"name":       e.Name,
		"isBadToken": e.IsBadToken,
	}
	if e.Expiry != nil || e.Name == NameExpired {
		m["expiry"] = isoOrNil(e.Expiry)
	}
	if e.Date != nil || e.Name == NameNotBefore {
		m["date"] = isoOrNil(e.Date)
	}
	return m
}

// MarshalJSON writes the wire form of the error with the reference's key
// order: {"message","name",["expiry"|"date"],"isBadToken"}.
func (e *TokenError) MarshalJSON() ([]byte, error) {
	var b bytes.Buffer
	b.WriteString(`{"message":`)
	writeJSON(&b, e.Message)
	b.WriteString(`,"name":`)
	writeJSON(&b, e.Name)
	if e.Expiry != nil || e.Name == NameExpired {
		b.WriteString(`,"expiry":`)
		writeJSON(&b, isoOrNil(e.Expiry))
	}
	if e.Date != nil || e.Name == NameNotBefore {
		b.WriteString(`,"date":`)
		writeJSON(&b, isoOrNil(e.Date))
	}
	b.WriteString(`,"isBadToken":`)
	writeJSON(&b, e.IsBadToken)
	b.WriteByte('}')
	return b.Bytes(), nil
}

// writeJSON appends v (a string, bool or nil) as JSON without HTML escaping.
func writeJSON(b *bytes.Buffer, v any) {
	enc := json.NewEncoder(b)
	enc.SetEscapeHTML(false)
	_ = enc.Encode(v) // cannot fail for these types
	b.Truncate(b.Len() - 1)
}

// NewExpiredError returns an AuthTokenExpiredError (a bad token) with the
// given expiry date.
func NewExpiredError(message string, expiry time.Time) *TokenError {
	return &TokenError{Name: NameExpired, Message: message, IsBadToken: true, Expiry: &expiry}
}

// NewInvalidError returns an AuthTokenInvalidError (a bad token).
func NewInvalidError(message string) *TokenError {
	return &TokenError{Name: NameInvalid, Message: message, IsBadToken: true}
}

// NewNotBeforeError returns an AuthTokenNotBeforeError (not a bad token)
// with the date from which the token is valid.
func NewNotBeforeError(message string, date time.Time) *TokenError {
	return &TokenError{Name: NameNotBefore, Message: message, Date: &date}
}

// NewTokenError returns an AuthTokenError (a bad token).
func NewTokenError(message string) *TokenError {
	return &TokenError{Name: NameToken, Message: message, IsBadToken: true}
}

// AsTokenError maps an error returned by an [Engine]'s Verify to the error
// the server reports, as the reference does for any engine: a *TokenError
// (found with errors.As) is returned as is; any other error becomes an
// AuthTokenError with the error's text and IsBadToken true. nil stays nil.
func AsTokenError(err error) *TokenError {
	if err == nil {
		return nil
	}
	var te *TokenError
	if errors.As(err, &te) {
		return te
	}
	return NewTokenError(err.Error())
}

// IsBadToken reports whether err means the client's token should be thrown
// away (every verification failure except AuthTokenNotBeforeError).
func IsBadToken(err error) bool {
	te := AsTokenError(err)
	return te != nil && te.IsBadToken
}

// SignError is a failure to sign a token. Its text is jsonwebtoken's message
// where the reference has one (for example `Bad "options.issuer" option. The
// payload already has an "iss" property.`); on the reference such errors
// have the generic name "Error", so on the wire they carry no name.
type SignError struct {
	Message string
	Err     error // underlying cause, if any (e.g. a JSON encoding error)
}

func (e *SignError) Error() string { return e.Message }
func (e *SignError) Unwrap() error { return e.Err }

func signErrorf(format string, args ...any) *SignError {
	return &SignError{Message: fmt.Sprintf(format, args...)}
}

// OptionsError is an invalid [Options] value given to [New]; the reference
// names such errors InvalidOptionsError.
type OptionsError struct {
	Message string
	Err     error
}

// Name returns "InvalidOptionsError".
func (e *OptionsError) Name() string  { return "InvalidOptionsError" }
func (e *OptionsError) Error() string { return e.Message }
func (e *OptionsError) Unwrap() error { return e.Err }

func isoOrNil(t *time.Time) any {
	if t == nil {
		return nil
	}
	return ISOString(*t)
}

// ISOString formats t like JavaScript's Date.prototype.toISOString: UTC,
// millisecond precision, "2026-11-22T02:45:16.000Z", with a signed six-digit
// year outside 0000–9999.
func ISOString(t time.Time) string {
	t = t.UTC()
	y := t.Year()
	var year string
	switch {
	case y >= 0 && y <= 9999:
		year = fmt.Sprintf("%04d", y)
	case y < 0:
		year = fmt.Sprintf("-%06d", -y)
	default:
		year = fmt.Sprintf("+%06d", y)
	}
	return fmt.Sprintf("%s-%02d-%02dT%02d:%02d:%02d.%03dZ", year, int(t.Month()), t.Day(),
		t.Hour(), t.Minute(), t.Second(), t.Nanosecond()/1e6)
}
