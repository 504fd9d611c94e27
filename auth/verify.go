package auth

import (
	"context"
	"crypto/ecdsa"
	"crypto/rsa"
	"crypto/subtle"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"strings"
	"time"
	"unicode/utf8"
)

// Verify checks token and returns its claims (numbers as float64). now is
// the time to check nbf and exp against, in whole seconds (Unix time,
// floored); the zero time means time.Now().
//
// token is what the client sent: a string; nil, which is treated as "" and
// fails with AuthTokenInvalidError `jwt must be provided`; or anything else,
// which fails with AuthTokenError `Invalid token format - Token must be a
// string`. Every error is a [*TokenError] named and worded as on the
// reference (see the package documentation for the order of the checks).
func (j *JWT) Verify(_ context.Context, token any, now time.Time) (map[string]any, error) {
	var s string
	switch t := token.(type) {
	case nil:
	case string:
		s = t
	default:
		return nil, NewTokenError("Invalid token format - Token must be a string")
	}
	if s == "" {
		return nil, NewInvalidError("jwt must be provided")
	}
	if j.maxSize >= 0 && len(s) > j.maxSize {
		return nil, NewInvalidError("jwt too large")
	}
	if now.IsZero() {
		now = j.now()
	}
	clock := float64(now.Unix())

	// jsonwebtoken: exactly three dot-separated parts.
	if strings.Count(s, ".") != 2 {
		return nil, NewInvalidError("jwt malformed")
	}
	h, rest, _ := strings.Cut(s, ".")
	p, sig, _ := strings.Cut(rest, ".")
	input := s[:len(h)+1+len(p)]

	// jws.decode: header and payload non-empty base64url, signature
	// optional, and a header that parses as a truthy JSON value.
	if h == "" || p == "" || !isBase64URL(h) || !isBase64URL(p) || !isBase64URL(sig) {
		return nil, NewInvalidError("invalid token")
	}
	header, _, err := parseJSON(decodeBase64URL(h))
	if err != nil || falsy(header) {
		return nil, NewInvalidError("invalid token")
	}
	hdr, _ := header.(map[string]any)

	// jws parses the payload when the header says typ JWT, and a syntax
	// error then escapes as a SyntaxError (an AuthTokenError); jsonwebtoken
	// then parses a string payload and keeps the result if it is an object.
	raw := toWellFormedUTF8(decodeBase64URL(p))
	var payload any
	var overflow bool
	if typ, _ := hdr["typ"].(string); typ == "JWT" {
		payload, overflow, err = parseJSON(raw)
		if err != nil {
			return nil, NewTokenError(v8JSONError(raw, err))
		}
	} else {
		payload = string(raw)
	}
	if str, ok := payload.(string); ok {
		if v, o, err := parseJSON([]byte(str)); err == nil {
			switch v.(type) {
			case map[string]any, []any:
				payload, overflow = v, o
			}
		}
	}

	if sig == "" {
		return nil, NewInvalidError("jwt signature is required")
	}
	alg, _ := hdr["alg"].(string)
	if !containsString(j.verifyAlgs, alg) {
		return nil, NewInvalidError("invalid algorithm")
	}
	a := algs[alg]
	var key any = j.secret
	if j.secret == nil {
		key = j.public
	}
	switch {
	case a == nil:
		// Not reachable: New accepts known algorithms only.
		return nil, NewTokenError(fmt.Sprintf("%q is not a valid algorithm.", alg))
	case a.family == 'H' && j.secret == nil:
		return nil, NewInvalidError("secretOrPublicKey must be a symmetric key when using " + alg)
	case a.family != 'H' && j.secret != nil:
		return nil, NewInvalidError("secretOrPublicKey must be an asymmetric key when using " + alg)
	}
	if msg := checkKeyForAlg(alg, key); msg != "" {
		return nil, NewTokenError(msg)
	}
	if !j.checkSignature(a, input, sig, key) {
		if a.family == 'E' {
			// jwa converts the signature to DER first and throws on a
			// wrong length (a TypeError, so an AuthTokenError).
			if n := len(decodeBase64URL(sig)); n != 2*a.size {
				return nil, NewTokenError(fmt.Sprintf(`"%s" signatures must be "%d" bytes, saw "%d"`, alg, 2*a.size, n))
			}
		}
		return nil, NewInvalidError("invalid signature")
	}

	claims, ok := payload.(map[string]any)
	switch {
	case payload == nil:
		// payload.nbf on null throws a TypeError.
		return nil, NewTokenError("Cannot read properties of null (reading 'nbf')")
	case !ok:
		return nil, NewTokenError("jwt payload is not a JSON object")
	case overflow:
		return nil, NewTokenError("jwt payload has a number out of range")
	}
	if v, ok := claims["nbf"]; ok {
		nbf, isNum := v.(float64)
		if !isNum {
			return nil, NewInvalidError("invalid nbf value")
		}
		if nbf > clock {
			return nil, &TokenError{Name: NameNotBefore, Message: "jwt not active", Date: jsDate(nbf)}
		}
	}
	if v, ok := claims["exp"]; ok {
		exp, isNum := v.(float64)
		if !isNum {
			return nil, NewInvalidError("invalid exp value")
		}
		if clock >= exp {
			return nil, &TokenError{Name: NameExpired, Message: "jwt expired", IsBadToken: true, Expiry: jsDate(exp)}
		}
	}
	return claims, nil
}

// checkSignature verifies sig (base64url text) over input with golang-jwt's
// signing methods.
func (j *JWT) checkSignature(a *algorithm, input, sig string, key any) bool {
	if a.family == 'H' {
		// jwa compares the base64url text of the HMAC, so a signature with
		// non-zero padding bits does not match.
		want, err := a.method.Sign(input, key)
		if err != nil {
			return false
		}
		w := base64.RawURLEncoding.EncodeToString(want)
		return subtle.ConstantTimeCompare([]byte(w), []byte(sig)) == 1
	}
	switch key.(type) {
	case *rsa.PublicKey, *ecdsa.PublicKey:
	default:
		return false
	}
	return a.method.Verify(input, decodeBase64URL(sig), key) == nil
}

func containsString(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}

// isBase64URL reports whether s has only base64url characters (the
// JWS_REGEX of jws).
func isBase64URL(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '-' || c == '_') {
			return false
		}
	}
	return true
}

// decodeBase64URL decodes base64url text as Node's Buffer.from(s, 'base64')
// does: unpadded, non-zero padding bits ignored, a dangling last character
// dropped. s must hold base64url characters only.
func decodeBase64URL(s string) []byte {
	if len(s)%4 == 1 {
		s = s[:len(s)-1]
	}
	b, err := base64.RawURLEncoding.DecodeString(s)
	if err != nil {
		return nil
	}
	return b
}

// toWellFormedUTF8 is Node's Buffer.toString('utf8'): each maximal invalid
// subpart (WHATWG) becomes one U+FFFD. b is returned as is when valid.
func toWellFormedUTF8(b []byte) []byte {
	if utf8.Valid(b) {
		return b
	}
	out := make([]byte, 0, len(b)+8)
	for i := 0; i < len(b); {
		r, n := utf8.DecodeRune(b[i:])
		if r == utf8.RuneError && n == 1 {
			n = invalidPrefixLen(b[i:])
		}
		out = utf8.AppendRune(out, r)
		i += n
	}
	return out
}

// invalidPrefixLen returns the length of the maximal subpart of an
// ill-formed UTF-8 sequence at the start of b (at least 1): the lead byte
// plus the continuation bytes that fit it before the sequence breaks off.
func invalidPrefixLen(b []byte) int {
	lo, hi, need := byte(0x80), byte(0xBF), 0
	switch c := b[0]; {
	case 0xC2 <= c && c <= 0xDF:
		need = 1
	case c == 0xE0:
		lo, need = 0xA0, 2
	case c == 0xED:
		hi, need = 0x9F, 2
	case 0xE1 <= c && c <= 0xEF:
		need = 2
	case c == 0xF0:
		lo, need = 0x90, 3
	case c == 0xF4:
		hi, need = 0x8F, 3
	case 0xF1 <= c && c <= 0xF3:
		need = 3
	}
	n := 1
	for n <= need && n < len(b) && lo <= b[n] && b[n] <= hi {
		n++
		lo, hi = 0x80, 0xBF
	}
	return n
}

// parseJSON parses b like JSON.parse. overflow reports a number beyond the
// float64 range (Infinity in JavaScript), which Go cannot represent; such a
// value reads as nil, or as +Inf at the top level.
func parseJSON(b []byte) (v any, overflow bool, err error) {
	err = json.Unmarshal(b, &v)
	var ute *json.UnmarshalTypeError
	if errors.As(err, &ute) {
		if v == nil {
			v = math.Inf(1)
		}
		return v, true, nil
	}
	return v, false, err
}

// falsy reports whether a parsed JSON value is falsy in JavaScript.
func falsy(v any) bool {
	switch v := v.(type) {
	case nil:
		return true
	case bool:
		return !v
	case string:
		return v == ""
	case float64:
		return v == 0
	}
	return false
}

// jsDate is new Date(seconds * 1000): truncated to the millisecond, nil when
// outside the range of a JavaScript Date (an Invalid Date, sent as null).
func jsDate(seconds float64) *time.Time {
	ms := seconds * 1000
	if math.IsNaN(ms) || math.Abs(ms) > 8.64e15 {
		return nil
	}
	t := time.UnixMilli(int64(math.Trunc(ms))).UTC()
	return &t
}
