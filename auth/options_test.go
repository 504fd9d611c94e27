package auth_test

import (
	"context"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/hex"
	"errors"
	"math/big"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/socketcluster-go/socketcluster/auth"
)

func TestNewOptionsErrors(t *testing.T) {
	t.Parallel()
	k := keys()
	tests := []struct {
		name string
		o    auth.Options
		want string
	}{
		{"private key only", auth.Options{PrivateKeyPEM: k.rsaPriv},
			"The authPublicKey option must be specified if authPrivateKey is specified"},
		{"public key only", auth.Options{PublicKeyPEM: k.rsaPub},
			"The authPrivateKey option must be specified if authPublicKey is specified"},
		{"bad private PEM", auth.Options{PrivateKeyPEM: []byte("not a key"), PublicKeyPEM: k.rsaPub},
			"auth: invalid authPrivateKey: no PEM private key found"},
		{"public key as private", auth.Options{PrivateKeyPEM: k.rsaPub, PublicKeyPEM: k.rsaPub},
			"auth: invalid authPrivateKey: no PEM private key found"},
		{"bad public PEM", auth.Options{PrivateKeyPEM: k.rsaPriv, PublicKeyPEM: []byte("-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n")},
			"auth: invalid authPublicKey: "},
		{"encrypted private key", auth.Options{PrivateKeyPEM: pemBlock("ENCRYPTED PRIVATE KEY", []byte{1}), PublicKeyPEM: k.rsaPub},
			"auth: invalid authPrivateKey: encrypted private keys are not supported"},
		{"unknown algorithm", auth.Options{Algorithm: "HS257"}, `auth: Algorithm: unknown algorithm "HS257"`},
		{"lower-case algorithm", auth.Options{Algorithm: "hs256"}, `auth: Algorithm: unknown algorithm "hs256"`},
		{"none algorithm", auth.Options{Algorithm: "none"}, `auth: Algorithm: unsigned tokens (alg "none") are not supported`},
		{"none verify algorithm", auth.Options{VerifyAlgorithms: []string{"HS256", "none"}},
			`auth: VerifyAlgorithms: unsigned tokens (alg "none") are not supported`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			j, err := auth.New(tt.o)
			if err == nil {
				t.Fatalf("New succeeded: %v", j)
			}
			var oe *auth.OptionsError
			if !errors.As(err, &oe) || oe.Name() != "InvalidOptionsError" {
				t.Errorf("error %T is not an *OptionsError", err)
			}
			if got := err.Error(); got != tt.want && !(strings.HasSuffix(tt.want, ": ") && strings.HasPrefix(got, tt.want)) {
				t.Errorf("error %q, want %q", err, tt.want)
			}
		})
	}
}

func TestNewDefaults(t *testing.T) {
	t.Parallel()
	k := keys()
	a, b := mustNew(t, auth.Options{}), mustNew(t, auth.Options{})
	for _, j := range []*auth.JWT{a, b} {
		key := j.Key()
		if len(key) != 64 {
			t.Fatalf("random key %q: want 64 hex characters", key)
		}
		if _, err := hex.DecodeString(string(key)); err != nil {
			t.Errorf("random key %q is not hex", key)
		}
	}
	if string(a.Key()) == string(b.Key()) {
		t.Error("two engines got the same random key")
	}
	// A token of one is a bad signature for the other.
	tok, _, err := a.Sign(context.Background(), map[string]any{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := b.Verify(context.Background(), tok, time.Now()); !errors.Is(err, &auth.TokenError{Name: auth.NameInvalid, Message: "invalid signature"}) {
		t.Errorf("Verify with another random key: %v", err)
	}

	tests := []struct {
		name     string
		o        auth.Options
		alg      string
		verifies []string
	}{
		{"secret", auth.Options{Key: []byte("k")}, "HS256", []string{"HS256", "HS384", "HS512"}},
		{"secret with algorithm", auth.Options{Key: []byte("k"), Algorithm: "HS384"}, "HS384", []string{"HS384"}},
		{"verify list wins", auth.Options{Key: []byte("k"), Algorithm: "HS384", VerifyAlgorithms: []string{"HS512", "HS384"}}, "HS384", []string{"HS512", "HS384"}},
		{"rsa", auth.Options{PrivateKeyPEM: k.rsaPriv, PublicKeyPEM: k.rsaPub}, "HS256", []string{"RS256", "RS384", "RS512", "PS256", "PS384", "PS512"}},
		{"ec", auth.Options{PrivateKeyPEM: k.ec256Priv, PublicKeyPEM: k.ec256Pub}, "HS256", []string{"ES256", "ES384", "ES512"}},
		{"ec with algorithm", auth.Options{PrivateKeyPEM: k.ec256Priv, PublicKeyPEM: k.ec256Pub, Algorithm: "ES256"}, "ES256", []string{"ES256"}},
		{"key ignored with a pair", auth.Options{Key: []byte("k"), PrivateKeyPEM: k.rsaPriv, PublicKeyPEM: k.rsaPub}, "HS256", []string{"RS256", "RS384", "RS512", "PS256", "PS384", "PS512"}},
	}
	for _, tt := range tests {
		j := mustNew(t, tt.o)
		if j.Algorithm() != tt.alg || !reflect.DeepEqual(j.VerifyAlgorithms(), tt.verifies) {
			t.Errorf("%s: Algorithm %s, VerifyAlgorithms %v; want %s, %v", tt.name, j.Algorithm(), j.VerifyAlgorithms(), tt.alg, tt.verifies)
		}
	}
}

func TestNewKeyFormats(t *testing.T) {
	t.Parallel()
	k := keys()
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "test"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour)}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &k.rsa.PublicKey, k.rsa)
	if err != nil {
		t.Fatal(err)
	}
	cert := pemBlock("CERTIFICATE", der)

	tests := []struct {
		name      string
		priv, pub []byte
		alg       string
	}{
		{"PKCS8 + PKIX", k.rsaPriv, k.rsaPub, "RS256"},
		{"PKCS1 + PKCS1", k.rsaPKCS1, k.rsaPKCS1Pb, "PS384"},
		{"certificate", k.rsaPKCS1, cert, "RS512"},
		{"private key as public key", k.rsaPriv, k.rsaPKCS1, "RS256"},
		{"SEC1 EC", k.ec256SEC1, k.ec256Pub, "ES256"},
		{"EC private key as public key", k.ec256Priv, k.ec256SEC1, "ES256"},
		{"leading unrelated block", append(pemBlock("PARAMETERS", []byte{1}), k.ec256SEC1...), k.ec256Pub, "ES256"},
	}
	for _, tt := range tests {
		j := mustNew(t, auth.Options{PrivateKeyPEM: tt.priv, PublicKeyPEM: tt.pub, Algorithm: tt.alg})
		tok, _, err := j.Sign(context.Background(), map[string]any{"a": 1}, nil)
		if err != nil {
			t.Errorf("%s: Sign: %v", tt.name, err)
			continue
		}
		if _, err := j.Verify(context.Background(), tok, time.Now()); err != nil {
			t.Errorf("%s: Verify: %v", tt.name, err)
		}
		if j.Key() != nil {
			t.Errorf("%s: Key() = %q with a key pair", tt.name, j.Key())
		}
	}
}
