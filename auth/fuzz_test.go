package auth_test

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"crypto/sha512"
	"encoding/base64"
	"encoding/json"
	"errors"
	"hash"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/socketcluster-go/socketcluster/auth"
)

// checkVerifyResult asserts what every Verify result must look like.
func checkVerifyResult(t *testing.T, claims map[string]any, err error) *auth.TokenError {
	t.Helper()
	if err == nil {
		if claims == nil {
			t.Fatal("Verify returned neither claims nor an error")
		}
		return nil
	}
	if claims != nil {
		t.Fatalf("Verify returned claims and %v", err)
	}
	var te *auth.TokenError
	if !errors.As(err, &te) {
		t.Fatalf("error %T %v is not a *TokenError", err, err)
	}
	switch te.Name {
	case auth.NameExpired, auth.NameInvalid, auth.NameNotBefore, auth.NameToken:
	default:
		t.Fatalf("unknown error name %q", te.Name)
	}
	if te.Message == "" {
		t.Fatalf("%s without a message", te.Name)
	}
	if te.IsBadToken != (te.Name != auth.NameNotBefore) {
		t.Fatalf("%v: IsBadToken %v", te, te.IsBadToken)
	}
	b, jerr := te.MarshalJSON()
	if jerr != nil || !json.Valid(b) {
		t.Fatalf("MarshalJSON = %s, %v", b, jerr)
	}
	return te
}

// hmacValid reports whether token's signature is the canonical HS256/384/512
// HMAC of its first two parts under secret.
func hmacValid(token string) bool {
	parts := strings.Split(token, ".")
	if len(parts) != 3 {
		return false
	}
	for _, h := range []func() hash.Hash{sha256.New, sha512.New384, sha512.New} {
		m := hmac.New(h, []byte(secret))
		m.Write([]byte(parts[0] + "." + parts[1]))
		if base64.RawURLEncoding.EncodeToString(m.Sum(nil)) == parts[2] {
			return true
		}
	}
	return false
}

// FuzzVerify feeds arbitrary strings to Verify. Verify must not panic,
// must return a well-formed *TokenError or claims, must be deterministic,
// and must never accept a token whose HMAC is not right.
func FuzzVerify(f *testing.F) {
	const hdr = `{"alg":"HS256","typ":"JWT"}`
	for _, s := range []string{
		"", "garbage", "a.b", "a.b.c", "..", "a.b.c.d",
		hs256(`{"user":"alice","iat":1795315000,"exp":1795400000}`),
		hs256(`{"exp":1}`),
		hs256(`{"nbf":9999999999}`),
		hs256(`{"exp":"x"}`),
		hs256(`null`),
		hs256(`[1,2]`),
		hs256(`{"a":1e400}`),
		hsToken("HS512", secret, `{"alg":"HS512"}`, `{"a":1}`),
		hsToken("HS256", secret, `{"alg":"HS256"}`, `"{\"a\":1}"`),
		b64(hdr) + "." + b64(`{"a":1`) + ".abc",
		b64(hdr) + "." + b64("\xe2\x80{\"\\\xff\":x}") + ".abc",
		b64(`{"alg":"none"}`) + "." + b64(`{}`) + ".",
		b64(`{"alg":"RS256","typ":"JWT"}`) + "." + b64(`{}`) + ".abc",
		b64(`{"alg":"ES256","typ":"JWT"}`) + "." + b64(`{}`) + ".abc",
		"eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJ1c2VybmFtZSI6ImFsaWNlIiwiaWF0IjoxNzk1MzE1NjUyLCJleHAiOjE3OTU0MDIwNTJ9.RFEdsqUQj6sw1RvMbgxa_Zbp35Od7uUR73VHBsNJD3Y",
	} {
		f.Add(s)
	}
	hs := mustNew(f, auth.Options{Key: []byte(secret), MaxTokenSize: 4096})
	k := keys()
	es := mustNew(f, auth.Options{PrivateKeyPEM: k.ec256Priv, PublicKeyPEM: k.ec256Pub, VerifyAlgorithms: []string{"ES256", "ES384", "HS256"}})
	ctx := context.Background()

	f.Fuzz(func(t *testing.T, token string) {
		claims, err := hs.Verify(ctx, token, t0)
		te := checkVerifyResult(t, claims, err)
		if te == nil || te.Name == auth.NameExpired || te.Name == auth.NameNotBefore {
			if !hmacValid(token) {
				t.Fatalf("accepted a token with a wrong signature: %q", token)
			}
		}
		claims2, err2 := hs.Verify(ctx, token, t0)
		if !reflect.DeepEqual(claims, claims2) || !reflect.DeepEqual(err, err2) {
			t.Fatalf("not deterministic: %v %v / %v %v", claims, err, claims2, err2)
		}
		claims, err = es.Verify(ctx, token, t0)
		if te := checkVerifyResult(t, claims, err); te == nil {
			t.Fatalf("EC engine accepted %q", token)
		}
	})
}

// FuzzVerifyJSON signs arbitrary header and payload texts correctly, so the
// fuzzer explores the JSON handling behind the signature check.
func FuzzVerifyJSON(f *testing.F) {
	for _, c := range [][2]string{
		{`{"alg":"HS256","typ":"JWT"}`, `{"user":"alice","exp":1795400000}`},
		{`{"alg":"HS256","typ":"JWT"}`, `{"a":[1,{"b":null}],"nbf":1795315652}`},
		{`{"alg":"HS256","typ":"JWT"}`, `{"a":1,"b":2,"c":3,"d":x}`},
		{`{"alg":"HS256","typ":"JWT"}`, `{"a":"\u12g4"}`},
		{`{"alg":"HS256","typ":"JWT"}`, "{\"\\\u4e00\":1}"},
		{`{"alg":"HS256","typ":"JWT"}`, `-`},
		{`{"alg":"HS256","typ":"JWT"}`, `01`},
		{`{"alg":"HS256","typ":"JWT"}`, `1.e5`},
		{`{"alg":"HS256","typ":"JWT"}`, `[tru]`},
		{`{"alg":"HS256","typ":"JWT"}`, `"\ud83d"`},
		{`{"alg":"HS256"}`, `not json`},
		{`{"alg":"HS256","typ":"JWT","x":1e999}`, `{}`},
		{`[]`, `{}`},
	} {
		f.Add(c[0], c[1])
	}
	hs := mustNew(f, auth.Options{Key: []byte(secret), MaxTokenSize: -1})
	ctx := context.Background()

	f.Fuzz(func(t *testing.T, header, payload string) {
		token := hsToken("HS256", secret, header, payload)
		claims, err := hs.Verify(ctx, token, t0)
		te := checkVerifyResult(t, claims, err)
		if te != nil && te.Name == auth.NameToken {
			// A JSON syntax error must be worded as V8 words it, not as
			// encoding/json does (its nesting limit aside).
			for _, goStyle := range []string{"invalid character", "unexpected end of JSON input"} {
				if strings.HasPrefix(te.Message, goStyle) {
					t.Fatalf("payload %q: Go-style message %q", payload, te.Message)
				}
			}
		}
		if te != nil {
			return
		}
		// The payload is read as Node reads it: each maximal ill-formed
		// UTF-8 subpart is one U+FFFD (encoding/json makes one per byte).
		payload = string(auth.WellFormedUTF8([]byte(payload)))
		var want map[string]any
		if err := json.Unmarshal([]byte(payload), &want); err != nil {
			// Only a JSON string holding an object may be accepted this way.
			var s string
			if json.Unmarshal([]byte(payload), &s) != nil || json.Unmarshal([]byte(s), &want) != nil {
				t.Fatalf("accepted payload %q (%v)", payload, claims)
			}
		}
		if !reflect.DeepEqual(claims, want) {
			t.Fatalf("payload %q: claims %v, want %v", payload, claims, want)
		}
		// Whatever verifies can be signed again to the same claims (the
		// reference does not check iat on verification, Sign does).
		if iat, ok := claims["iat"]; ok {
			if _, isNum := iat.(float64); !isNum {
				return
			}
		}
		_, signed, err := hs.Sign(ctx, claims, &auth.SignOptions{NoTimestamp: true})
		if err != nil {
			t.Fatalf("re-signing %v: %v", claims, err)
		}
		delete(signed, "exp")
		delete(want, "exp")
		delete(want, "iat")
		if !reflect.DeepEqual(signed, want) {
			t.Fatalf("re-signed claims %v, want %v", signed, want)
		}
	})
}

// TestVerifyAfterClockChange checks the clock is read per call.
func TestVerifyAfterClockChange(t *testing.T) {
	t.Parallel()
	hs := mustNew(t, auth.Options{Key: []byte(secret)})
	tok := hs256(`{"exp":1795315653}`)
	if _, err := hs.Verify(context.Background(), tok, t0); err != nil {
		t.Fatal(err)
	}
	if _, err := hs.Verify(context.Background(), tok, t0.Add(time.Second)); !errors.Is(err, auth.ErrExpired) {
		t.Fatalf("one second later: %v", err)
	}
}
