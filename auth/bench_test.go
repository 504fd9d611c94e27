package auth_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/socketcluster-go/socketcluster/auth"
)

func benchEngines(b *testing.B) map[string]*auth.JWT {
	k := keys()
	return map[string]*auth.JWT{
		"HS256": mustNew(b, auth.Options{Key: []byte(secret)}),
		"RS256": mustNew(b, auth.Options{PrivateKeyPEM: k.rsaPriv, PublicKeyPEM: k.rsaPub, Algorithm: "RS256"}),
		"ES256": mustNew(b, auth.Options{PrivateKeyPEM: k.ec256Priv, PublicKeyPEM: k.ec256Pub, Algorithm: "ES256"}),
	}
}

var benchPayload = map[string]any{"username": "alice", "roles": []any{"admin", "user"}, "org": 42}

func BenchmarkSign(b *testing.B) {
	ctx := context.Background()
	for _, alg := range []string{"HS256", "RS256", "ES256"} {
		j := benchEngines(b)[alg]
		b.Run(alg, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, _, err := j.Sign(ctx, benchPayload, nil); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func BenchmarkVerify(b *testing.B) {
	ctx := context.Background()
	for _, alg := range []string{"HS256", "RS256", "ES256"} {
		j := benchEngines(b)[alg]
		tok, _, err := j.Sign(ctx, benchPayload, nil)
		if err != nil {
			b.Fatal(err)
		}
		now := time.Now()
		b.Run(alg, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, err := j.Verify(ctx, tok, now); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkVerifyRejected measures the cost of tokens a hostile client can
// send for free: a bad signature, garbage, and an 8 MiB token.
func BenchmarkVerifyRejected(b *testing.B) {
	ctx := context.Background()
	j := mustNew(b, auth.Options{Key: []byte(secret)})
	good := hs256(`{"user":"alice","exp":9999999999}`)
	for _, c := range []struct{ name, token string }{
		{"BadSignature", good[:len(good)-2] + "xx"},
		{"Malformed", "garbage"},
		{"Huge", hs256(`{"junk":"` + strings.Repeat("x", 8<<20) + `"}`)},
	} {
		b.Run(c.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, err := j.Verify(ctx, c.token, t0); err == nil {
					b.Fatal("accepted")
				}
			}
		})
	}
}
