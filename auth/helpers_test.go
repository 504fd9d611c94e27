package auth_test

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/hmac"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/sha512"
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"hash"
	"sync"
	"testing"
	"time"

	"github.com/socketcluster-go/socketcluster/auth"
)

// secret is the HMAC key of most tests; t0 the fixed clock (2026-11-22 02:47:32 UTC).
const secret = "secret-key"

var t0 = time.Unix(1795315652, 0)

func b64(s string) string { return base64.RawURLEncoding.EncodeToString([]byte(s)) }

// hsToken builds a token by hand, as Node's jws does: base64url(header) "."
// base64url(payload) "." base64url(HMAC(key, those two)).
func hsToken(alg, key, header, payload string) string {
	var h func() hash.Hash
	switch alg {
	case "HS256":
		h = sha256.New
	case "HS384":
		h = sha512.New384
	case "HS512":
		h = sha512.New
	}
	input := b64(header) + "." + b64(payload)
	m := hmac.New(h, []byte(key))
	m.Write([]byte(input))
	return input + "." + base64.RawURLEncoding.EncodeToString(m.Sum(nil))
}

// hs256 is hsToken with the usual header and key.
func hs256(payload string) string {
	return hsToken("HS256", secret, `{"alg":"HS256","typ":"JWT"}`, payload)
}

func mustNew(tb testing.TB, o auth.Options) *auth.JWT {
	tb.Helper()
	j, err := auth.New(o)
	if err != nil {
		tb.Fatalf("New: %v", err)
	}
	return j
}

func pemBlock(typ string, der []byte) []byte {
	return pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der})
}

type keyPair struct {
	rsa                  *rsa.PrivateKey
	ec256, ec384, ec521  *ecdsa.PrivateKey
	rsaPriv, rsaPub      []byte // PKCS #8 and PKIX PEM
	ec256Priv, ec256Pub  []byte
	ec384Priv, ec384Pub  []byte
	ec521Priv, ec521Pub  []byte
	rsaPKCS1, rsaPKCS1Pb []byte // PKCS #1 private and public PEM
	ec256SEC1            []byte
}

// keys are generated once per test binary.
var keys = sync.OnceValue(func() *keyPair {
	k := &keyPair{}
	var err error
	if k.rsa, err = rsa.GenerateKey(rand.Reader, 2048); err != nil {
		panic(err)
	}
	ec := func(c elliptic.Curve) *ecdsa.PrivateKey {
		key, err := ecdsa.GenerateKey(c, rand.Reader)
		if err != nil {
			panic(err)
		}
		return key
	}
	k.ec256, k.ec384, k.ec521 = ec(elliptic.P256()), ec(elliptic.P384()), ec(elliptic.P521())
	pkcs8 := func(key any) []byte {
		der, err := x509.MarshalPKCS8PrivateKey(key)
		if err != nil {
			panic(err)
		}
		return pemBlock("PRIVATE KEY", der)
	}
	pkix := func(key any) []byte {
		der, err := x509.MarshalPKIXPublicKey(key)
		if err != nil {
			panic(err)
		}
		return pemBlock("PUBLIC KEY", der)
	}
	k.rsaPriv, k.rsaPub = pkcs8(k.rsa), pkix(&k.rsa.PublicKey)
	k.ec256Priv, k.ec256Pub = pkcs8(k.ec256), pkix(&k.ec256.PublicKey)
	k.ec384Priv, k.ec384Pub = pkcs8(k.ec384), pkix(&k.ec384.PublicKey)
	k.ec521Priv, k.ec521Pub = pkcs8(k.ec521), pkix(&k.ec521.PublicKey)
	k.rsaPKCS1 = pemBlock("RSA PRIVATE KEY", x509.MarshalPKCS1PrivateKey(k.rsa))
	k.rsaPKCS1Pb = pemBlock("RSA PUBLIC KEY", x509.MarshalPKCS1PublicKey(&k.rsa.PublicKey))
	sec1, err := x509.MarshalECPrivateKey(k.ec256)
	if err != nil {
		panic(err)
	}
	k.ec256SEC1 = pemBlock("EC PRIVATE KEY", sec1)
	return k
})

func fixedClock() time.Time { return t0 }
