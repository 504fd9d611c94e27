package main

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/socketcluster-go/socketcluster/broker/brokertest"
)

// writeKeyPair writes a PEM key pair (RSA or EC) and returns the paths.
func writeKeyPair(t *testing.T, kind string) (priv, pub string) {
	t.Helper()
	var key any
	var err error
	switch kind {
	case "rsa":
		key, err = rsa.GenerateKey(rand.Reader, 2048)
	default:
		key, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	}
	if err != nil {
		t.Fatal(err)
	}
	pk, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	var pubKey any
	switch k := key.(type) {
	case *rsa.PrivateKey:
		pubKey = &k.PublicKey
	case *ecdsa.PrivateKey:
		pubKey = &k.PublicKey
	}
	pb, err := x509.MarshalPKIXPublicKey(pubKey)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	priv, pub = filepath.Join(dir, kind+".key"), filepath.Join(dir, kind+".pub")
	_ = os.WriteFile(priv, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: pk}), 0o600)
	_ = os.WriteFile(pub, pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: pb}), 0o600)
	return priv, pub
}

// TestSettingsThatCannotWork: scserver refuses to start with exit code 2
// and names the flag(s), for every setting that would start and then
// fail (issue 9 item 8).
func TestSettingsThatCannotWork(t *testing.T) {
	t.Parallel()
	rsaPriv, rsaPub := writeKeyPair(t, "rsa")
	ecPriv, _ := writeKeyPair(t, "ec")
	certFile, _ := writeCert(t, t.TempDir(), "one")
	for _, tc := range []struct {
		args []string
		want []string // each must appear in stderr
	}{
		{[]string{"-auth-algorithm", "RS256", "-auth-key", "secret"}, []string{"-auth-algorithm", "-auth-private-key-file"}},
		{[]string{"-auth-algorithm", "HS999"}, []string{"-auth-algorithm", `"HS999"`}},
		{[]string{"-auth-algorithm", "HS256", "-auth-private-key-file", rsaPriv, "-auth-public-key-file", rsaPub}, []string{"-auth-algorithm", "HMAC"}},
		{[]string{"-auth-algorithm", "RS256", "-auth-private-key-file", rsaPriv}, []string{"-auth-public-key-file"}},
		{[]string{"-auth-algorithm", "ES256", "-auth-private-key-file", rsaPriv, "-auth-public-key-file", rsaPub}, []string{"-auth-private-key-file", "sign"}},
		{[]string{"-auth-algorithm", "ES256", "-auth-private-key-file", ecPriv, "-auth-public-key-file", rsaPub}, []string{"-auth-public-key-file"}},
		{[]string{"-auth-algorithm", "RS256", "-auth-private-key-file", rsaPriv, "-auth-public-key-file", "/nonexistent.pem"}, []string{"-auth-public-key-file", "/nonexistent.pem"}},
		{[]string{"-origins", "garbage"}, []string{"-origins", `"garbage"`}},
		{[]string{"-origins", "https://example.com"}, []string{"-origins"}},
		{[]string{"-origins", "example.com:http"}, []string{"-origins"}},
		{[]string{"-drain-timeout", "-1s"}, []string{"-drain-timeout"}},
		{[]string{"-drain-delay", "-1s"}, []string{"-drain-delay"}},
		{[]string{"-channel-limit", "-1"}, []string{"-channel-limit", "SC_CHANNEL_LIMIT"}},
		{[]string{"-ping-interval", "30s", "-ping-timeout", "10s"}, []string{"-ping-timeout", "-ping-interval"}},
		{[]string{"-handshake-timeout", "0"}, []string{"-handshake-timeout"}},
		{[]string{"-max-header-bytes", "100"}, []string{"-max-header-bytes"}},
		{[]string{"-outbound-queue-limit", "0"}, []string{"-outbound-queue-limit"}},
		{[]string{"-path", "socketcluster"}, []string{"-path"}},
		{[]string{"-addr", "nonsense"}, []string{"-addr"}},
		{[]string{"-addr", "127.0.0.1:8000", "-metrics-addr", "127.0.0.1:8000"}, []string{"-metrics-addr", "-addr"}},
		{[]string{"-broker", "redis://127.0.0.1:6379"}, []string{"-auth-key", "-broker", "-allow-random-auth-key"}},
		{[]string{"-broker", "kafka://x", "-auth-key", "k"}, []string{"-broker"}},
		{[]string{"-tls-cert", certFile}, []string{"-tls-cert", "-tls-key"}},
		{[]string{"-tls-cert", certFile, "-tls-key", rsaPriv}, []string{"-tls-cert", "-tls-key"}},
		{[]string{"-max-connections", "-5"}, []string{"-max-connections"}},
		{[]string{"-inbound-message-rate", "-1"}, []string{"-inbound-message-rate"}},
		{[]string{"-client-address-header", "X-Forwarded-For: evil"}, []string{"-client-address-header"}},
		{[]string{"-client-js", "/nonexistent.js"}, []string{"-client-js"}},
		{[]string{"-log-level", "loud"}, []string{"-log-level"}},
		{[]string{"-demo=maybe"}, []string{"-demo"}},
	} {
		var stderr strings.Builder
		args := append([]string{"-addr", "127.0.0.1:0"}, tc.args...)
		code := run(context.Background(), args, env(nil), io.Discard, &stderr)
		if code != exitSettings {
			t.Errorf("%q: exit %d, want %d; stderr:\n%s", tc.args, code, exitSettings, stderr.String())
			continue
		}
		for _, w := range tc.want {
			if !strings.Contains(stderr.String(), w) {
				t.Errorf("%q: stderr does not mention %q:\n%s", tc.args, w, stderr.String())
			}
		}
		if strings.Contains(stderr.String(), "Options.") {
			t.Errorf("%q: stderr names a Go field instead of the flag:\n%s", tc.args, stderr.String())
		}
	}
}

// TestEverySettingErrorIsReported: several bad settings are all listed at
// once, each on its own line.
func TestEverySettingErrorIsReported(t *testing.T) {
	t.Parallel()
	var stderr strings.Builder
	code := run(context.Background(), []string{"-drain-timeout", "-1s", "-origins", "x", "-channel-limit", "-2"}, env(nil), io.Discard, &stderr)
	lines := strings.Split(strings.TrimSpace(stderr.String()), "\n")
	if code != exitSettings || len(lines) != 3 {
		t.Fatalf("exit %d, %d lines:\n%s", code, len(lines), stderr.String())
	}
}

// TestGoodAuthSettingsStart: a key pair with its algorithm, and a broker
// with a shared key or an explicit -allow-random-auth-key, start.
func TestGoodAuthSettingsStart(t *testing.T) {
	t.Parallel()
	if testing.Short() {
		t.Skip("starts servers")
	}
	rsaPriv, rsaPub := writeKeyPair(t, "rsa")
	ecPriv, ecPub := writeKeyPair(t, "ec")
	for _, args := range [][]string{
		{"-auth-algorithm", "RS256", "-auth-private-key-file", rsaPriv, "-auth-public-key-file", rsaPub},
		{"-auth-algorithm", "ES256", "-auth-private-key-file", ecPriv, "-auth-public-key-file", ecPub},
		{"-broker", "memory"},
		{"-origins", "example.com:443 *.example.org:* localhost:8000"},
	} {
		p := start(t, append(args, "-drain-delay", "0", "-log-level", "error")...)
		if code, _ := mustGet(t, "http://"+p.addr+"/readyz"); code != 200 {
			t.Fatalf("%q: /readyz %d", args, code)
		}
		p.cancel()
		if code := p.wait(t); code != 0 {
			t.Fatalf("%q: exit %d\n%s", args, code, p.stderr)
		}
	}
}

// TestRandomAuthKeyWithBroker: with a broker and no key, scserver refuses
// to start (TestSettingsThatCannotWork); -allow-random-auth-key starts it
// and warns, naming the flag.
func TestRandomAuthKeyWithBroker(t *testing.T) {
	t.Parallel()
	url := brokertest.URL(t, "nats")
	p := start(t, "-broker", url, "-allow-random-auth-key", "-drain-delay", "0", "-log-level", "warn")
	if s := p.stderr.String(); !strings.Contains(s, "random key") || !strings.Contains(s, "-auth-key") {
		t.Fatalf("no warning naming -auth-key:\n%s", s)
	}
	// With a shared key: no warning.
	q := start(t, "-broker", url, "-auth-key", "shared", "-drain-delay", "0", "-log-level", "warn")
	if s := q.stderr.String(); strings.Contains(s, "random key") {
		t.Fatalf("warning with -auth-key:\n%s", s)
	}
}
