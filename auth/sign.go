package auth

import (
	"bytes"
	"context"
	"crypto/rsa"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"slices"
	"time"
)

// Sign signs payload and returns the token and the claims as the socket
// stores them: a deep copy of the payload (through JSON, so numbers become
// float64 and structs become maps, exactly what Verify returns for the
// token) plus the claims Sign added. payload is not modified. o may be nil.
//
// The rules are those of the reference's socket.setAuthToken:
//
//   - iat = now in seconds, unless the payload has a non-zero iat, which is
//     kept and used as the base of exp and nbf (NoTimestamp removes iat).
//   - If the payload has exp it is kept and o.ExpiresIn is ignored; else
//     exp = iat + (o.ExpiresIn, or the engine's default expiry unless that
//     is negative).
//   - o.NotBefore, o.Audience, o.Issuer, o.Subject and o.JWTID fail if the
//     payload already has nbf, aud, iss, sub or jti, with jsonwebtoken's
//     messages.
//   - iat, exp and nbf in the payload must be numbers.
//
// Errors are [*SignError] values.
func (j *JWT) Sign(_ context.Context, payload map[string]any, o *SignOptions) (string, map[string]any, error) {
	if o == nil {
		o = &SignOptions{}
	}

	// The server decides expiresIn before calling jsonwebtoken: a payload
	// exp (even null) means none.
	expiresIn, hasExpiresIn := o.ExpiresIn, o.ExpiresIn != 0
	if !hasExpiresIn && j.expiry > 0 {
		expiresIn, hasExpiresIn = j.expiry, true
	}
	if v, ok := payload["exp"]; ok && v != nil {
		hasExpiresIn = false
	}

	// Header and algorithm.
	alg := j.alg
	if v, ok := o.Header["alg"]; ok {
		s, isString := v.(string)
		switch {
		case !isString:
			return "", nil, signErrorf(`"alg" header parameter must be a string`)
		case s == "none":
			return "", nil, signErrorf(`unsigned tokens (alg "none") are not supported`)
		case algs[s] == nil:
			return "", nil, signErrorf("%q is not a valid algorithm.\n  Supported algorithms are:\n  \"HS256\", \"HS384\", \"HS512\", \"RS256\", \"RS384\", \"RS512\", \"PS256\", \"PS384\", \"PS512\", \"ES256\", \"ES384\", \"ES512\" and \"none\".", s)
		}
		alg = s
	}
	a := algs[alg]

	// Key checks, in jsonwebtoken's order.
	var key any
	switch a.family {
	case 'H':
		if j.secret == nil {
			return "", nil, signErrorf("secretOrPrivateKey must be a symmetric key when using %s", alg)
		}
		key = j.secret
	default:
		if j.private == nil {
			return "", nil, signErrorf("secretOrPrivateKey must be an asymmetric key when using %s", alg)
		}
		if k, ok := j.private.(*rsa.PrivateKey); ok && a.family != 'E' && k.N.BitLen() < 2048 {
			return "", nil, signErrorf("secretOrPrivateKey has a minimum key size of 2048 bits for %s", alg)
		}
		key = j.private
	}

	if payload == nil {
		return "", nil, signErrorf(`Expected "payload" to be a plain object.`)
	}
	claims, err := deepCopy(payload)
	if err != nil {
		return "", nil, err
	}
	for _, c := range [...]string{"iat", "exp", "nbf"} {
		if v, ok := claims[c]; ok {
			if _, isNum := v.(float64); !isNum {
				return "", nil, signErrorf(`%q should be a number of seconds`, c)
			}
		}
	}
	if _, ok := claims["nbf"]; ok && o.NotBefore != 0 {
		return "", nil, signErrorf(`Bad "options.notBefore" option the payload already has an "nbf" property.`)
	}
	if msg := checkKeyForAlg(alg, key); msg != "" {
		return "", nil, signErrorf("%s", msg)
	}

	// Claims, added in jsonwebtoken's order; added keys are written after
	// the payload's own.
	var added []string
	set := func(k string, v any) {
		if _, ok := claims[k]; !ok {
			added = append(added, k)
		}
		claims[k] = v
	}
	timestamp, _ := claims["iat"].(float64)
	if timestamp == 0 { // payload.iat || now
		timestamp = float64(j.now().Unix())
	}
	if o.NoTimestamp {
		delete(claims, "iat")
	} else {
		set("iat", timestamp)
	}
	if o.NotBefore != 0 {
		set("nbf", timespan(o.NotBefore, timestamp))
	}
	if hasExpiresIn {
		set("exp", timespan(expiresIn, timestamp))
	}
	if len(o.Audience) > 0 {
		if _, ok := claims["aud"]; ok {
			return "", nil, conflict("audience", "aud")
		}
		if len(o.Audience) == 1 {
			set("aud", o.Audience[0])
		} else {
			aud := make([]any, len(o.Audience))
			for i, s := range o.Audience {
				aud[i] = s
			}
			set("aud", aud)
		}
	}
	for _, c := range [...]struct{ opt, claim, value string }{
		{"issuer", "iss", o.Issuer}, {"subject", "sub", o.Subject}, {"jwtid", "jti", o.JWTID},
	} {
		if c.value == "" {
			continue
		}
		if _, ok := claims[c.claim]; ok {
			return "", nil, conflict(c.opt, c.claim)
		}
		set(c.claim, c.value)
	}

	// Encode and sign.
	var buf bytes.Buffer
	if err := encodeHeader(&buf, alg, o); err != nil {
		return "", nil, err
	}
	header := base64.RawURLEncoding.EncodeToString(buf.Bytes())
	buf.Reset()
	if err := encodeObject(&buf, claims, added); err != nil {
		return "", nil, err
	}
	input := header + "." + base64.RawURLEncoding.EncodeToString(buf.Bytes())
	sig, err := a.method.Sign(input, key)
	if err != nil {
		return "", nil, &SignError{Message: "auth: signing failed: " + err.Error(), Err: err}
	}
	token := input + "." + base64.RawURLEncoding.EncodeToString(sig)
	if j.maxSize >= 0 && len(token) > j.maxSize {
		return "", nil, signErrorf("auth: the signed token has %d bytes, more than the %d that Verify accepts (Options.MaxTokenSize)", len(token), j.maxSize)
	}
	return token, claims, nil
}

func conflict(opt, claim string) *SignError {
	return signErrorf(`Bad "options.%s" option. The payload already has an %q property.`, opt, claim)
}

// timespan is jsonwebtoken's timespan(): a whole number of seconds is added
// as a number; anything finer is added in milliseconds and floored, as for
// a string such as "1500ms".
func timespan(d time.Duration, timestamp float64) float64 {
	if d%time.Second == 0 {
		return timestamp + float64(d/time.Second)
	}
	return math.Floor(timestamp + d.Seconds())
}

// deepCopy copies payload through JSON, the form every verifier sees.
func deepCopy(payload map[string]any) (map[string]any, error) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(payload); err != nil {
		return nil, &SignError{Message: "auth: payload cannot be encoded as JSON: " + err.Error(), Err: err}
	}
	var claims map[string]any
	if err := json.Unmarshal(buf.Bytes(), &claims); err != nil {
		var ute *json.UnmarshalTypeError
		if errors.As(err, &ute) {
			return nil, &SignError{Message: "auth: payload has a number out of range: " + ute.Value, Err: err}
		}
		return nil, &SignError{Message: "auth: payload cannot be encoded as JSON: " + err.Error(), Err: err}
	}
	return claims, nil
}

// encodeHeader writes the JOSE header as jsonwebtoken builds it:
// Object.assign({alg, typ: "JWT", kid}, options.header).
func encodeHeader(buf *bytes.Buffer, alg string, o *SignOptions) error {
	h := map[string]any{"alg": alg, "typ": "JWT"}
	first := []string{"alg", "typ"}
	if o.KeyID != "" {
		h["kid"] = o.KeyID
		first = append(first, "kid")
	} else if _, ok := o.Header["kid"]; ok {
		first = append(first, "kid")
	}
	for k, v := range o.Header {
		h[k] = v
	}
	var rest []string
	for k := range h {
		if !slices.Contains(first, k) {
			rest = append(rest, k)
		}
	}
	slices.Sort(rest)
	return writeObject(buf, h, append(first, rest...))
}

// encodeObject writes m with its keys sorted, except that the keys in tail
// come last, in that order.
func encodeObject(buf *bytes.Buffer, m map[string]any, tail []string) error {
	keys := make([]string, 0, len(m))
	for k := range m {
		if !slices.Contains(tail, k) {
			keys = append(keys, k)
		}
	}
	slices.Sort(keys)
	return writeObject(buf, m, append(keys, tail...))
}

func writeObject(buf *bytes.Buffer, m map[string]any, keys []string) error {
	enc := json.NewEncoder(buf)
	enc.SetEscapeHTML(false)
	encode := func(k string, v any) error {
		start := buf.Len()
		if err := enc.Encode(v); err != nil {
			return &SignError{Message: fmt.Sprintf("auth: %q cannot be encoded as JSON: %v", k, err), Err: err}
		}
		buf.Truncate(buf.Len() - 1) // Encode's newline
		unescapeLineSeparators(buf, start)
		return nil
	}
	buf.WriteByte('{')
	for i, k := range keys {
		if i > 0 {
			buf.WriteByte(',')
		}
		if err := encode(k, k); err != nil {
			return err
		}
		buf.WriteByte(':')
		if err := encode(k, m[k]); err != nil {
			return err
		}
	}
	buf.WriteByte('}')
	return nil
}

// unescapeLineSeparators rewrites the \u2028 and \u2029 escapes that
// encoding/json writes (from buf[start:]) as the raw characters, as
// JSON.stringify does, so that tokens are byte for byte the reference's.
func unescapeLineSeparators(buf *bytes.Buffer, start int) {
	b := buf.Bytes()[start:]
	if !bytes.Contains(b, []byte(`\u202`)) {
		return
	}
	out := make([]byte, 0, len(b))
	for i := 0; i < len(b); i++ {
		if b[i] != '\\' || i+1 >= len(b) {
			out = append(out, b[i])
			continue
		}
		switch string(b[i:min(i+6, len(b))]) {
		case `\u2028`:
			out = append(out, "\u2028"...)
			i += 5
			continue
		case `\u2029`:
			out = append(out, "\u2029"...)
			i += 5
			continue
		}
		out = append(out, b[i], b[i+1]) // an escape pair, e.g. \\
		i++
	}
	buf.Truncate(start)
	buf.Write(out)
}
