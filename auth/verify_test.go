package auth_test

import (
	"context"
	"encoding/json"
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/socketcluster-go/socketcluster/auth"
)

// The expected names and messages below were checked against the reference
// (ag-auth 2.1.1, jsonwebtoken 9.0.3, jws 4.0.1, Node 20) by running the
// same tokens through it, except where a case says it is a deliberate
// difference.
func TestVerifyErrors(t *testing.T) {
	t.Parallel()
	k := keys()
	hs := mustNew(t, auth.Options{Key: []byte(secret)})
	hsAny := mustNew(t, auth.Options{Key: []byte(secret), VerifyAlgorithms: []string{"HS256", "RS256", "ES256"}})
	rs := mustNew(t, auth.Options{PrivateKeyPEM: k.rsaPriv, PublicKeyPEM: k.rsaPub, Algorithm: "RS256", VerifyAlgorithms: []string{"RS256", "PS256"}})
	rsDefault := mustNew(t, auth.Options{PrivateKeyPEM: k.rsaPriv, PublicKeyPEM: k.rsaPub, Algorithm: "RS256"})
	rsConfused := mustNew(t, auth.Options{PrivateKeyPEM: k.rsaPriv, PublicKeyPEM: k.rsaPub, Algorithm: "RS256", VerifyAlgorithms: []string{"HS256", "RS256", "ES256"}})
	es := mustNew(t, auth.Options{PrivateKeyPEM: k.ec256Priv, PublicKeyPEM: k.ec256Pub, Algorithm: "ES256", VerifyAlgorithms: []string{"ES256", "ES384", "ES512"}})

	ctx := context.Background()
	rsTok, _, err := rs.Sign(ctx, map[string]any{"a": 1}, nil)
	if err != nil {
		t.Fatal(err)
	}
	esTok, _, err := es.Sign(ctx, map[string]any{"a": 1}, nil)
	if err != nil {
		t.Fatal(err)
	}
	esParts := strings.Split(esTok, ".")

	const jwtHdr = `{"alg":"HS256","typ":"JWT"}`
	good := hs256(`{"user":"alice","exp":1795400000}`)
	goodParts := strings.Split(good, ".")

	// Classic algorithm confusion: an HS256 token whose HMAC key is the
	// server's public key PEM.
	confusion := hsToken("HS256", string(k.rsaPub), jwtHdr, `{"user":"admin"}`)

	// An HMAC signature whose last character differs only in the unused
	// padding bits: the same bytes, but jwa compares the text.
	sig := goodParts[2]
	last := strings.IndexByte("AQgw", sig[len(sig)-1])
	nonCanonical := ""
	if last >= 0 {
		nonCanonical = goodParts[0] + "." + goodParts[1] + "." + sig[:len(sig)-1] + string("BRhx"[last])
	}

	iso := func(s string) *time.Time {
		tm, err := time.Parse(time.RFC3339Nano, s)
		if err != nil {
			t.Fatal(err)
		}
		return &tm
	}

	tests := []struct {
		name   string
		eng    *auth.JWT
		token  any
		now    time.Time
		want   auth.TokenError
		expiry *time.Time
		date   *time.Time
	}{
		// Type and presence (ag-auth, then jsonwebtoken).
		{name: "nil", token: nil, want: auth.TokenError{Name: auth.NameInvalid, Message: "jwt must be provided"}},
		{name: "empty", token: "", want: auth.TokenError{Name: auth.NameInvalid, Message: "jwt must be provided"}},
		{name: "number", token: 42.0, want: auth.TokenError{Name: auth.NameToken, Message: "Invalid token format - Token must be a string"}},
		{name: "bool", token: false, want: auth.TokenError{Name: auth.NameToken, Message: "Invalid token format - Token must be a string"}},
		{name: "object", token: map[string]any{"a": 1.0}, want: auth.TokenError{Name: auth.NameToken, Message: "Invalid token format - Token must be a string"}},

		// Shape.
		{name: "garbage", token: "garbage", want: auth.TokenError{Name: auth.NameInvalid, Message: "jwt malformed"}},
		{name: "two parts", token: "a.b", want: auth.TokenError{Name: auth.NameInvalid, Message: "jwt malformed"}},
		{name: "four parts", token: good + ".x", want: auth.TokenError{Name: auth.NameInvalid, Message: "jwt malformed"}},
		{name: "empty parts", token: "..", want: auth.TokenError{Name: auth.NameInvalid, Message: "invalid token"}},
		{name: "header not json", token: "a.b.c", want: auth.TokenError{Name: auth.NameInvalid, Message: "invalid token"}},
		{name: "not base64url", token: "a+b.c.d", want: auth.TokenError{Name: auth.NameInvalid, Message: "invalid token"}},
		{name: "space in signature", token: goodParts[0] + "." + goodParts[1] + ".a b", want: auth.TokenError{Name: auth.NameInvalid, Message: "invalid token"}},
		{name: "header null", token: b64("null") + ".e30.abc", want: auth.TokenError{Name: auth.NameInvalid, Message: "invalid token"}},
		{name: "header zero", token: b64("0") + ".e30.abc", want: auth.TokenError{Name: auth.NameInvalid, Message: "invalid token"}},
		{name: "header number", token: b64("1") + ".e30.abc", want: auth.TokenError{Name: auth.NameInvalid, Message: "invalid algorithm"}},
		{name: "header array", token: b64("[]") + ".e30.abc", want: auth.TokenError{Name: auth.NameInvalid, Message: "invalid algorithm"}},

		// A typ JWT payload that is not JSON fails before the signature is
		// looked at, with V8's JSON.parse message.
		{name: "payload not json", token: b64(jwtHdr) + "." + b64("garbage") + ".abc",
			want: auth.TokenError{Name: auth.NameToken, Message: `Unexpected token 'g', "garbage" is not valid JSON`}},
		{name: "payload truncated", token: b64(jwtHdr) + "." + b64(`{"a":1`) + ".abc",
			want: auth.TokenError{Name: auth.NameToken, Message: `Expected ',' or '}' after property value in JSON at position 6`}},
		{name: "payload trailing data", token: b64(jwtHdr) + "." + b64(`{"a":1}x`) + ".",
			want: auth.TokenError{Name: auth.NameToken, Message: `Unexpected non-whitespace character after JSON at position 7`}},
		{name: "payload long context", token: b64(jwtHdr) + "." + b64(`{"a":1,"b":2,"c":3,"d":x}`) + ".abc",
			want: auth.TokenError{Name: auth.NameToken, Message: `Unexpected token 'x', ...""c":3,"d":x}" is not valid JSON`}},
		{name: "payload invalid utf-8", token: b64(jwtHdr) + "." + b64("\xe2\x80\n") + ".abc",
			want: auth.TokenError{Name: auth.NameToken, Message: "Unexpected token '\ufffd', \"\ufffd\n\" is not valid JSON"}},
		// Without typ JWT the payload stays text until after the signature.
		{name: "payload not json no typ", token: b64(`{"alg":"HS256"}`) + "." + b64("garbage") + ".abc",
			want: auth.TokenError{Name: auth.NameInvalid, Message: "invalid signature"}},

		// Signature and algorithm.
		{name: "no signature", token: goodParts[0] + "." + goodParts[1] + ".", want: auth.TokenError{Name: auth.NameInvalid, Message: "jwt signature is required"}},
		{name: "alg none unsigned", token: b64(`{"alg":"none","typ":"JWT"}`) + "." + goodParts[1] + ".", want: auth.TokenError{Name: auth.NameInvalid, Message: "jwt signature is required"}},
		{name: "alg none signed", token: b64(`{"alg":"none","typ":"JWT"}`) + "." + goodParts[1] + "." + goodParts[2], want: auth.TokenError{Name: auth.NameInvalid, Message: "invalid algorithm"}},
		{name: "alg missing", token: b64(`{"typ":"JWT"}`) + "." + goodParts[1] + "." + goodParts[2], want: auth.TokenError{Name: auth.NameInvalid, Message: "invalid algorithm"}},
		{name: "alg not a string", token: b64(`{"alg":256,"typ":"JWT"}`) + "." + goodParts[1] + "." + goodParts[2], want: auth.TokenError{Name: auth.NameInvalid, Message: "invalid algorithm"}},
		{name: "alg unknown", token: b64(`{"alg":"HS999","typ":"JWT"}`) + "." + goodParts[1] + "." + goodParts[2], want: auth.TokenError{Name: auth.NameInvalid, Message: "invalid algorithm"}},
		{name: "tampered payload", token: goodParts[0] + "." + b64(`{"user":"mallory","exp":1795400000}`) + "." + goodParts[2], want: auth.TokenError{Name: auth.NameInvalid, Message: "invalid signature"}},
		{name: "tampered signature", token: goodParts[0] + "." + goodParts[1] + ".abc", want: auth.TokenError{Name: auth.NameInvalid, Message: "invalid signature"}},
		{name: "signature with extra char", token: good + "A", want: auth.TokenError{Name: auth.NameInvalid, Message: "invalid signature"}},
		{name: "wrong key", token: hsToken("HS256", "other-key", jwtHdr, `{"a":1}`), want: auth.TokenError{Name: auth.NameInvalid, Message: "invalid signature"}},
		{name: "hash does not match alg", token: hsToken("HS256", secret, `{"alg":"HS384","typ":"JWT"}`, `{"a":1}`), want: auth.TokenError{Name: auth.NameInvalid, Message: "invalid signature"}},
		{name: "rsa token against secret", token: rsTok, want: auth.TokenError{Name: auth.NameInvalid, Message: "invalid algorithm"}},
		{name: "rsa token against secret, RS256 allowed", eng: hsAny, token: rsTok, want: auth.TokenError{Name: auth.NameInvalid, Message: "secretOrPublicKey must be an asymmetric key when using RS256"}},
		{name: "hmac token against rsa key", eng: rsDefault, token: good, want: auth.TokenError{Name: auth.NameInvalid, Message: "invalid algorithm"}},
		{name: "algorithm confusion refused", eng: rsDefault, token: confusion, want: auth.TokenError{Name: auth.NameInvalid, Message: "invalid algorithm"}},
		{name: "algorithm confusion, HS256 allowed", eng: rsConfused, token: confusion, want: auth.TokenError{Name: auth.NameInvalid, Message: "secretOrPublicKey must be a symmetric key when using HS256"}},
		{name: "ec token against rsa key", eng: rsConfused, token: esTok, want: auth.TokenError{Name: auth.NameToken, Message: `"alg" parameter for "rsa" key type must be one of: RS256, PS256, RS384, PS384, RS512, PS512.`}},
		{name: "rsa token against ec key", eng: es, token: rsTok, want: auth.TokenError{Name: auth.NameInvalid, Message: "invalid algorithm"}},
		{name: "ec curve mismatch", eng: es, token: b64(`{"alg":"ES384","typ":"JWT"}`) + "." + esParts[1] + "." + esParts[2], want: auth.TokenError{Name: auth.NameToken, Message: `"alg" parameter "ES384" requires curve "secp384r1".`}},
		{name: "ec signature too short", eng: es, token: esTok[:len(esTok)-4], want: auth.TokenError{Name: auth.NameToken, Message: `"ES256" signatures must be "64" bytes, saw "61"`}},
		{name: "ec signature tampered", eng: es, token: esParts[0] + "." + b64(`{"a":2}`) + "." + esParts[2], want: auth.TokenError{Name: auth.NameInvalid, Message: "invalid signature"}},
		{name: "rsa signature tampered", eng: rs, token: rsTok[:len(rsTok)-3] + "abc", want: auth.TokenError{Name: auth.NameInvalid, Message: "invalid signature"}},

		// Claims, after the signature: nbf first, then exp.
		{name: "expired", token: hs256(`{"exp":1795315000}`), want: auth.TokenError{Name: auth.NameExpired, Message: "jwt expired"},
			expiry: iso("2026-11-22T02:36:40Z")},
		{name: "expires now", token: hs256(`{"exp":1795315652}`), want: auth.TokenError{Name: auth.NameExpired, Message: "jwt expired"},
			expiry: iso("2026-11-22T02:47:32Z")},
		{name: "expired long ago", token: hs256(`{"exp":1}`), want: auth.TokenError{Name: auth.NameExpired, Message: "jwt expired"},
			expiry: iso("1970-01-01T00:00:01Z")},
		{name: "fractional exp", token: hs256(`{"exp":1795315651.9999}`), want: auth.TokenError{Name: auth.NameExpired, Message: "jwt expired"},
			expiry: iso("2026-11-22T02:47:31.999Z")},
		{name: "not active", token: hs256(`{"nbf":1795315653}`), want: auth.TokenError{Name: auth.NameNotBefore, Message: "jwt not active"},
			date: iso("2026-11-22T02:47:33Z")},
		{name: "not active and expired", token: hs256(`{"nbf":9999999999,"exp":1}`), want: auth.TokenError{Name: auth.NameNotBefore, Message: "jwt not active"},
			date: iso("2286-11-20T17:46:39Z")},
		{name: "nbf not a number", token: hs256(`{"nbf":"1"}`), want: auth.TokenError{Name: auth.NameInvalid, Message: "invalid nbf value"}},
		{name: "exp not a number", token: hs256(`{"exp":"x"}`), want: auth.TokenError{Name: auth.NameInvalid, Message: "invalid exp value"}},
		{name: "exp null", token: hs256(`{"exp":null}`), want: auth.TokenError{Name: auth.NameInvalid, Message: "invalid exp value"}},
		{name: "bad claims are checked after the signature", token: goodParts[0] + "." + b64(`{"exp":"x"}`) + "." + goodParts[2], want: auth.TokenError{Name: auth.NameInvalid, Message: "invalid signature"}},
		{name: "null payload", token: hs256(`null`), want: auth.TokenError{Name: auth.NameToken, Message: "Cannot read properties of null (reading 'nbf')"}},

		// Deliberate differences from the reference (see the package doc).
		{name: "array payload", token: hs256(`[1]`), want: auth.TokenError{Name: auth.NameToken, Message: "jwt payload is not a JSON object"}},
		{name: "number out of range", token: hs256(`{"a":1e400}`), want: auth.TokenError{Name: auth.NameToken, Message: "jwt payload has a number out of range"}},
		{name: "too large", token: strings.Repeat("a", auth.DefaultMaxTokenSize+1), want: auth.TokenError{Name: auth.NameInvalid, Message: "jwt too large"}},
	}
	if nonCanonical != "" {
		tests = append(tests, struct {
			name   string
			eng    *auth.JWT
			token  any
			now    time.Time
			want   auth.TokenError
			expiry *time.Time
			date   *time.Time
		}{name: "non-canonical hmac signature", token: nonCanonical, want: auth.TokenError{Name: auth.NameInvalid, Message: "invalid signature"}})
	}

	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			eng := tt.eng
			if eng == nil {
				eng = hs
			}
			now := tt.now
			if now.IsZero() {
				now = t0
			}
			claims, err := eng.Verify(ctx, tt.token, now)
			if err == nil {
				t.Fatalf("Verify succeeded with %v", claims)
			}
			var te *auth.TokenError
			if !errors.As(err, &te) {
				t.Fatalf("error %T %v is not a *TokenError", err, err)
			}
			if te.Name != tt.want.Name || te.Message != tt.want.Message {
				t.Errorf("got %s %q, want %s %q", te.Name, te.Message, tt.want.Name, tt.want.Message)
			}
			if wantBad := te.Name != auth.NameNotBefore; te.IsBadToken != wantBad {
				t.Errorf("IsBadToken = %v, want %v", te.IsBadToken, wantBad)
			}
			if !sameTime(te.Expiry, tt.expiry) || !sameTime(te.Date, tt.date) {
				t.Errorf("Expiry, Date = %v, %v; want %v, %v", te.Expiry, te.Date, tt.expiry, tt.date)
			}
		})
	}
}

func sameTime(a, b *time.Time) bool {
	if a == nil || b == nil {
		return a == b
	}
	return a.Equal(*b)
}

func TestVerifyExpiryOutOfDateRange(t *testing.T) {
	t.Parallel()
	hs := mustNew(t, auth.Options{Key: []byte(secret)})
	// new Date(-1e303) is an Invalid Date, which JSON.stringify writes as
	// null.
	_, err := hs.Verify(context.Background(), hs256(`{"exp":-1e300}`), t0)
	te := auth.AsTokenError(err)
	if te == nil || te.Name != auth.NameExpired || te.Expiry != nil {
		t.Fatalf("got %#v", te)
	}
	b, _ := json.Marshal(te)
	if want := `{"message":"jwt expired","name":"AuthTokenExpiredError","expiry":null,"isBadToken":true}`; string(b) != want {
		t.Errorf("wire form %s, want %s", b, want)
	}
}

func TestVerifyAccepts(t *testing.T) {
	t.Parallel()
	k := keys()
	ctx := context.Background()
	hs := mustNew(t, auth.Options{Key: []byte(secret)})
	payload := `{"user":"alice","n":1.5,"list":[1,"x",null],"iat":1795315000,"exp":1795315653}`
	want := map[string]any{"user": "alice", "n": 1.5, "list": []any{1.0, "x", nil}, "iat": 1795315000.0, "exp": 1795315653.0}

	for _, tok := range []string{
		hsToken("HS256", secret, `{"alg":"HS256","typ":"JWT"}`, payload),
		hsToken("HS384", secret, `{"alg":"HS384","typ":"JWT"}`, payload),
		hsToken("HS512", secret, `{"alg":"HS512","typ":"JWT"}`, payload),
		hsToken("HS256", secret, `{"alg":"HS256"}`, payload),                        // no typ
		hsToken("HS256", secret, `{"typ":"JWT","kid":"k1","alg":"HS256"}`, payload), // other key order, extra params
		hsToken("HS256", secret, `{"alg":"HS256","typ":"JWT"}`, " "+payload+"\n"),   // JSON whitespace
	} {
		claims, err := hs.Verify(ctx, tok, t0)
		if err != nil {
			t.Errorf("%s: %v", tok, err)
			continue
		}
		if !reflect.DeepEqual(claims, want) {
			t.Errorf("%s: claims %v, want %v", tok, claims, want)
		}
	}

	// nbf == now is active; exp == now+1 is not expired yet.
	if _, err := hs.Verify(ctx, hs256(`{"nbf":1795315652,"exp":1795315653}`), t0); err != nil {
		t.Errorf("nbf=now: %v", err)
	}
	// The clock counts whole seconds: 999 ms before exp is still valid.
	if _, err := hs.Verify(ctx, hs256(`{"exp":1795315653}`), t0.Add(999*time.Millisecond)); err != nil {
		t.Errorf("exp in 1 ms: %v", err)
	}
	// The zero time means the engine's clock.
	clocked := mustNew(t, auth.Options{Key: []byte(secret), Now: fixedClock})
	if _, err := clocked.Verify(ctx, hs256(`{"exp":1795315653}`), time.Time{}); err != nil {
		t.Errorf("zero now: %v", err)
	}

	// A token the reference (jsonwebtoken 9.0.3) signed with "secret-key".
	const nodeHS512 = "eyJhbGciOiJIUzUxMiIsInR5cCI6IkpXVCJ9.eyJ1c2VybmFtZSI6ImFsaWNlIiwiaWF0IjoxNzk1MzE1NjUyLCJleHAiOjE3OTU0MDIwNTJ9.HOYYkqgCqRW4rpULfBNfNqPM-07TH4SiVhgVHZK0M8c3HRUh2t2FVB3o8OdiTOJyYRooIEulbYU8VKGpePfLjw"
	claims, err := hs.Verify(ctx, nodeHS512, t0)
	if err != nil {
		t.Fatalf("reference token: %v", err)
	}
	if want := map[string]any{"username": "alice", "iat": 1795315652.0, "exp": 1795402052.0}; !reflect.DeepEqual(claims, want) {
		t.Errorf("reference token claims %v, want %v", claims, want)
	}

	// Key pairs: every algorithm of the key, default verification list.
	for _, c := range []struct {
		priv, pub []byte
		algs      []string
	}{
		{k.rsaPriv, k.rsaPub, []string{"RS256", "RS384", "RS512", "PS256", "PS384", "PS512"}},
		{k.ec256Priv, k.ec256Pub, []string{"ES256"}},
		{k.ec384Priv, k.ec384Pub, []string{"ES384"}},
		{k.ec521Priv, k.ec521Pub, []string{"ES512"}},
	} {
		verifier := mustNew(t, auth.Options{PrivateKeyPEM: c.priv, PublicKeyPEM: c.pub})
		for _, alg := range c.algs {
			signer := mustNew(t, auth.Options{PrivateKeyPEM: c.priv, PublicKeyPEM: c.pub, Algorithm: alg})
			tok, signed, err := signer.Sign(ctx, map[string]any{"user": "alice"}, nil)
			if err != nil {
				t.Fatalf("%s: Sign: %v", alg, err)
			}
			if !strings.HasPrefix(tok, b64(`{"alg":"`+alg+`","typ":"JWT"}`)+".") {
				t.Errorf("%s: header of %s", alg, tok)
			}
			for _, v := range []*auth.JWT{verifier, signer} {
				claims, err := v.Verify(ctx, tok, time.Now())
				if err != nil {
					t.Errorf("%s: Verify: %v", alg, err)
				} else if !reflect.DeepEqual(claims, signed) {
					t.Errorf("%s: claims %v, want %v", alg, claims, signed)
				}
			}
		}
	}
}

func TestVerifyTooLargeIsFast(t *testing.T) {
	t.Parallel()
	hs := mustNew(t, auth.Options{Key: []byte(secret)})
	huge := hs256(`{"junk":"` + strings.Repeat("x", 8<<20) + `"}`)
	start := time.Now()
	_, err := hs.Verify(context.Background(), huge, t0)
	if !errors.Is(err, &auth.TokenError{Name: auth.NameInvalid, Message: "jwt too large"}) {
		t.Fatalf("err = %v", err)
	}
	if d := time.Since(start); d > 50*time.Millisecond {
		t.Errorf("refusing an 8 MiB token took %v", d)
	}

	unlimited := mustNew(t, auth.Options{Key: []byte(secret), MaxTokenSize: -1})
	if _, err := unlimited.Verify(context.Background(), huge, t0); err != nil {
		t.Errorf("MaxTokenSize -1: %v", err)
	}
	small := mustNew(t, auth.Options{Key: []byte(secret), MaxTokenSize: 100})
	if _, err := small.Verify(context.Background(), hs256(`{"a":"`+strings.Repeat("x", 100)+`"}`), t0); !errors.Is(err, auth.ErrInvalid) {
		t.Errorf("MaxTokenSize 100: %v", err)
	}
}
