package auth_test

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/socketcluster-go/socketcluster/auth"
)

// now is t0 in seconds, as a JSON number decodes.
const now = 1795315652.0

func TestSignClaims(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		opts    auth.Options
		payload map[string]any
		so      *auth.SignOptions
		want    map[string]any
	}{
		{name: "defaults", payload: map[string]any{"username": "alice"},
			want: map[string]any{"username": "alice", "iat": now, "exp": now + 86400}},
		{name: "payload iat is the base", payload: map[string]any{"username": "alice", "iat": 100},
			want: map[string]any{"username": "alice", "iat": 100.0, "exp": 86500.0}},
		{name: "payload iat 0 is replaced", payload: map[string]any{"iat": 0},
			want: map[string]any{"iat": now, "exp": now + 86400}},
		{name: "fractional iat", payload: map[string]any{"iat": 1.5},
			want: map[string]any{"iat": 1.5, "exp": 86401.5}},
		{name: "payload exp wins", payload: map[string]any{"exp": now + 50}, so: &auth.SignOptions{ExpiresIn: 60 * time.Second},
			want: map[string]any{"iat": now, "exp": now + 50}},
		{name: "expiresIn", payload: map[string]any{}, so: &auth.SignOptions{ExpiresIn: time.Minute},
			want: map[string]any{"iat": now, "exp": now + 60}},
		{name: "expiresIn below a second is floored", payload: map[string]any{"iat": 1.5}, so: &auth.SignOptions{ExpiresIn: 1500 * time.Millisecond},
			want: map[string]any{"iat": 1.5, "exp": 3.0}},
		{name: "negative expiresIn", payload: map[string]any{}, so: &auth.SignOptions{ExpiresIn: -10 * time.Second},
			want: map[string]any{"iat": now, "exp": now - 10}},
		{name: "default expiry option", opts: auth.Options{DefaultExpiry: time.Hour}, payload: map[string]any{},
			want: map[string]any{"iat": now, "exp": now + 3600}},
		{name: "no default expiry", opts: auth.Options{DefaultExpiry: -1}, payload: map[string]any{},
			want: map[string]any{"iat": now}},
		{name: "no default expiry, expiresIn", opts: auth.Options{DefaultExpiry: -1}, payload: map[string]any{}, so: &auth.SignOptions{ExpiresIn: time.Second},
			want: map[string]any{"iat": now, "exp": now + 1}},
		{name: "noTimestamp", payload: map[string]any{"iat": 5}, so: &auth.SignOptions{NoTimestamp: true},
			want: map[string]any{"exp": 86405.0}},
		{name: "registered claims", payload: map[string]any{"username": "alice"},
			so:   &auth.SignOptions{NotBefore: 10 * time.Second, Audience: []string{"a", "b"}, Issuer: "i", Subject: "s", JWTID: "j", KeyID: "k"},
			want: map[string]any{"username": "alice", "iat": now, "nbf": now + 10, "exp": now + 86400, "aud": []any{"a", "b"}, "iss": "i", "sub": "s", "jti": "j"}},
		{name: "single audience", payload: map[string]any{}, so: &auth.SignOptions{Audience: []string{"a"}},
			want: map[string]any{"iat": now, "exp": now + 86400, "aud": "a"}},
		{name: "deep copy through JSON", payload: map[string]any{"n": int64(7), "s": struct {
			A int `json:"a"`
		}{1}, "l": []string{"x"}},
			want: map[string]any{"n": 7.0, "s": map[string]any{"a": 1.0}, "l": []any{"x"}, "iat": now, "exp": now + 86400}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.opts.Key = []byte(secret)
			tt.opts.Now = fixedClock
			j := mustNew(t, tt.opts)
			before, _ := json.Marshal(tt.payload)
			tok, claims, err := j.Sign(context.Background(), tt.payload, tt.so)
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(claims, tt.want) {
				t.Errorf("claims %v, want %v", claims, tt.want)
			}
			if after, _ := json.Marshal(tt.payload); string(after) != string(before) {
				t.Errorf("payload modified: %s -> %s", before, after)
			}
			// The token carries exactly the claims (checked without
			// verification, since some have expired).
			parts := strings.Split(tok, ".")
			raw, err := base64.RawURLEncoding.DecodeString(parts[1])
			if err != nil {
				t.Fatal(err)
			}
			var inToken map[string]any
			if err := json.Unmarshal(raw, &inToken); err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(inToken, claims) {
				t.Errorf("token payload %s, claims %v", raw, claims)
			}
		})
	}
}

// Tokens signed by the reference (jsonwebtoken 9.0.3 with "secret-key" and
// Date.now() at t0): the same inputs must give the same bytes.
func TestSignMatchesReference(t *testing.T) {
	t.Parallel()
	j := mustNew(t, auth.Options{Key: []byte(secret), Now: fixedClock})
	tests := []struct {
		payload map[string]any
		so      *auth.SignOptions
		want    string
	}{
		{map[string]any{"username": "alice"}, nil,
			"eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJ1c2VybmFtZSI6ImFsaWNlIiwiaWF0IjoxNzk1MzE1NjUyLCJleHAiOjE3OTU0MDIwNTJ9.RFEdsqUQj6sw1RvMbgxa_Zbp35Od7uUR73VHBsNJD3Y"},
		{map[string]any{"username": "alice"}, &auth.SignOptions{NotBefore: 10 * time.Second, Audience: []string{"a", "b"}, Issuer: "i", Subject: "s", JWTID: "j", KeyID: "k"},
			"eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCIsImtpZCI6ImsifQ.eyJ1c2VybmFtZSI6ImFsaWNlIiwiaWF0IjoxNzk1MzE1NjUyLCJuYmYiOjE3OTUzMTU2NjIsImV4cCI6MTc5NTQwMjA1MiwiYXVkIjpbImEiLCJiIl0sImlzcyI6ImkiLCJzdWIiOiJzIiwianRpIjoiaiJ9.XKzk11fEcerWhF13m1I9fdYbEobYUiWOrqZxtp4JwwA"},
		{map[string]any{"a": "<&>\u2028é"}, nil,
			"eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJhIjoiPCY-4oCow6kiLCJpYXQiOjE3OTUzMTU2NTIsImV4cCI6MTc5NTQwMjA1Mn0.SH8j-4ZxYivyY8gHQ7fS5xgsAMaflOe2CYzTz8xZwj8"},
	}
	for _, tt := range tests {
		got, _, err := j.Sign(context.Background(), tt.payload, tt.so)
		if err != nil {
			t.Fatal(err)
		}
		if got != tt.want {
			t.Errorf("Sign(%v) =\n %s\nwant\n %s", tt.payload, got, tt.want)
		}
	}
}

func TestSignErrors(t *testing.T) {
	t.Parallel()
	k := keys()
	small, err := rsa.GenerateKey(rand.Reader, 1024)
	if err != nil {
		t.Fatal(err)
	}
	smallPriv, _ := x509.MarshalPKCS8PrivateKey(small)
	smallPub, _ := x509.MarshalPKIXPublicKey(&small.PublicKey)

	hs := auth.Options{Key: []byte(secret)}
	tests := []struct {
		name    string
		opts    auth.Options
		payload map[string]any
		so      *auth.SignOptions
		want    string
	}{
		{"issuer conflict", hs, map[string]any{"iss": "x"}, &auth.SignOptions{Issuer: "y"},
			`Bad "options.issuer" option. The payload already has an "iss" property.`},
		{"subject conflict", hs, map[string]any{"sub": "x"}, &auth.SignOptions{Subject: "y"},
			`Bad "options.subject" option. The payload already has an "sub" property.`},
		{"jwtid conflict", hs, map[string]any{"jti": "x"}, &auth.SignOptions{JWTID: "y"},
			`Bad "options.jwtid" option. The payload already has an "jti" property.`},
		{"audience conflict", hs, map[string]any{"aud": "x"}, &auth.SignOptions{Audience: []string{"y"}},
			`Bad "options.audience" option. The payload already has an "aud" property.`},
		{"null claim conflicts too", hs, map[string]any{"iss": nil}, &auth.SignOptions{Issuer: "y"},
			`Bad "options.issuer" option. The payload already has an "iss" property.`},
		{"audience before issuer", hs, map[string]any{"aud": "x", "iss": "x"}, &auth.SignOptions{Audience: []string{"y"}, Issuer: "y"},
			`Bad "options.audience" option. The payload already has an "aud" property.`},
		{"notBefore conflict", hs, map[string]any{"nbf": 1}, &auth.SignOptions{NotBefore: time.Second},
			`Bad "options.notBefore" option the payload already has an "nbf" property.`},
		{"exp not a number", hs, map[string]any{"exp": "x"}, nil, `"exp" should be a number of seconds`},
		{"exp null", hs, map[string]any{"exp": nil}, nil, `"exp" should be a number of seconds`},
		{"iat not a number", hs, map[string]any{"iat": "x"}, nil, `"iat" should be a number of seconds`},
		{"nbf not a number", hs, map[string]any{"nbf": true}, nil, `"nbf" should be a number of seconds`},
		{"nil payload", hs, nil, nil, `Expected "payload" to be a plain object.`},
		{"key pair with the default HS256", auth.Options{PrivateKeyPEM: k.rsaPriv, PublicKeyPEM: k.rsaPub}, map[string]any{}, nil,
			"secretOrPrivateKey must be a symmetric key when using HS256"},
		{"secret with RS256", auth.Options{Key: []byte(secret), Algorithm: "RS256"}, map[string]any{}, nil,
			"secretOrPrivateKey must be an asymmetric key when using RS256"},
		{"rsa key with ES256", auth.Options{PrivateKeyPEM: k.rsaPriv, PublicKeyPEM: k.rsaPub, Algorithm: "ES256"}, map[string]any{}, nil,
			`"alg" parameter for "rsa" key type must be one of: RS256, PS256, RS384, PS384, RS512, PS512.`},
		{"ec key with RS256", auth.Options{PrivateKeyPEM: k.ec256Priv, PublicKeyPEM: k.ec256Pub, Algorithm: "RS256"}, map[string]any{}, nil,
			`"alg" parameter for "ec" key type must be one of: ES256, ES384, ES512.`},
		{"ec curve mismatch", auth.Options{PrivateKeyPEM: k.ec256Priv, PublicKeyPEM: k.ec256Pub, Algorithm: "ES384"}, map[string]any{}, nil,
			`"alg" parameter "ES384" requires curve "secp384r1".`},
		{"rsa key too small", auth.Options{PrivateKeyPEM: pemBlock("PRIVATE KEY", smallPriv), PublicKeyPEM: pemBlock("PUBLIC KEY", smallPub), Algorithm: "RS256"}, map[string]any{}, nil,
			"secretOrPrivateKey has a minimum key size of 2048 bits for RS256"},
		{"header alg changes the algorithm", auth.Options{PrivateKeyPEM: k.rsaPriv, PublicKeyPEM: k.rsaPub, Algorithm: "RS256"}, map[string]any{},
			&auth.SignOptions{Header: map[string]any{"alg": "HS256"}}, "secretOrPrivateKey must be a symmetric key when using HS256"},
		{"header alg none", hs, map[string]any{}, &auth.SignOptions{Header: map[string]any{"alg": "none"}},
			`unsigned tokens (alg "none") are not supported`},
		{"header alg unknown", hs, map[string]any{}, &auth.SignOptions{Header: map[string]any{"alg": "XX1"}},
			"\"XX1\" is not a valid algorithm.\n  Supported algorithms are:\n  \"HS256\", \"HS384\", \"HS512\", \"RS256\", \"RS384\", \"RS512\", \"PS256\", \"PS384\", \"PS512\", \"ES256\", \"ES384\", \"ES512\" and \"none\"."},
		{"token too large", auth.Options{Key: []byte(secret), MaxTokenSize: 100}, map[string]any{"a": strings.Repeat("x", 100)}, nil,
			"auth: the signed token has 271 bytes, more than the 100 that Verify accepts (Options.MaxTokenSize)"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.opts.Now = fixedClock
			j := mustNew(t, tt.opts)
			tok, claims, err := j.Sign(context.Background(), tt.payload, tt.so)
			if err == nil {
				t.Fatalf("Sign succeeded: %s %v", tok, claims)
			}
			var se *auth.SignError
			if !errors.As(err, &se) {
				t.Fatalf("error %T is not a *SignError", err)
			}
			if err.Error() != tt.want {
				t.Errorf("error %q\nwant %q", err, tt.want)
			}
		})
	}

	// A payload JSON cannot encode.
	j := mustNew(t, auth.Options{Key: []byte(secret)})
	if _, _, err := j.Sign(context.Background(), map[string]any{"f": func() {}}, nil); err == nil {
		t.Error("Sign accepted a func value")
	}
}

func TestSignHeader(t *testing.T) {
	t.Parallel()
	j := mustNew(t, auth.Options{Key: []byte(secret), Now: fixedClock})
	tok, _, err := j.Sign(context.Background(), map[string]any{"u": 1},
		&auth.SignOptions{KeyID: "k1", Header: map[string]any{"x-b": 2, "x-a": "<>", "typ": "AT+JWT", "alg": "HS512"}})
	if err != nil {
		t.Fatal(err)
	}
	raw, _ := base64.RawURLEncoding.DecodeString(strings.Split(tok, ".")[0])
	if want := `{"alg":"HS512","typ":"AT+JWT","kid":"k1","x-a":"<>","x-b":2}`; string(raw) != want {
		t.Errorf("header %s, want %s", raw, want)
	}
	// The header's alg was used, and the token verifies (typ is free).
	if _, err := j.Verify(context.Background(), tok, t0); err != nil {
		t.Errorf("Verify: %v", err)
	}
}

func TestSignVerifyRoundTrip(t *testing.T) {
	t.Parallel()
	j := mustNew(t, auth.Options{Key: []byte(secret)})
	payload := map[string]any{"username": "alice", "roles": []string{"a", "b"}, "n": 3, "nested": map[string]any{"ok": true, "nil": nil}}
	tok, claims, err := j.Sign(context.Background(), payload, &auth.SignOptions{Issuer: "me"})
	if err != nil {
		t.Fatal(err)
	}
	got, err := j.Verify(context.Background(), tok, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, claims) {
		t.Errorf("Verify = %v, Sign claims = %v", got, claims)
	}
	// The returned claims are the caller's to keep: not shared with payload.
	claims["nested"].(map[string]any)["ok"] = false
	if payload["nested"].(map[string]any)["ok"] != true {
		t.Error("claims share memory with the payload")
	}
}
