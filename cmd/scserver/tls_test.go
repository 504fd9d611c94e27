package main

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/socketcluster-go/socketcluster/client"
)

// writeCert writes a self-signed certificate for 127.0.0.1 whose common
// name is cn to dir/cert.pem and dir/key.pem (replacing them as a
// certificate manager would: write aside, rename), and returns the paths.
func writeCert(t *testing.T, dir, cn string) (certFile, keyFile string) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	serial, _ := rand.Int(rand.Reader, big.NewInt(1<<62))
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{CommonName: cn},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(24 * time.Hour),
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		IPAddresses:           []net.IP{net.ParseIP("127.0.0.1")},
		DNSNames:              []string{"localhost"},
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	kb, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	certFile, keyFile = filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	for _, f := range []struct {
		path string
		b    *pem.Block
	}{{keyFile, &pem.Block{Type: "PRIVATE KEY", Bytes: kb}}, {certFile, &pem.Block{Type: "CERTIFICATE", Bytes: der}}} {
		if err := os.WriteFile(f.path+".new", pem.EncodeToMemory(f.b), 0o600); err != nil {
			t.Fatal(err)
		}
		if err := os.Rename(f.path+".new", f.path); err != nil {
			t.Fatal(err)
		}
	}
	return certFile, keyFile
}

// servedCN returns the common name of the certificate a new TLS
// connection to addr gets.
func servedCN(t *testing.T, addr string, maxVersion uint16) (string, error) {
	t.Helper()
	conn, err := tls.DialWithDialer(&net.Dialer{Timeout: 5 * time.Second}, "tcp", addr, &tls.Config{InsecureSkipVerify: true, MaxVersion: maxVersion})
	if err != nil {
		return "", err
	}
	defer conn.Close()
	return conn.ConnectionState().PeerCertificates[0].Subject.CommonName, nil
}

func pool(t *testing.T, certFile string) *x509.CertPool {
	t.Helper()
	b, err := os.ReadFile(certFile)
	if err != nil {
		t.Fatal(err)
	}
	p := x509.NewCertPool()
	p.AppendCertsFromPEM(b)
	return p
}

// startTLS runs scserver with a certificate for the test and the given
// poll interval of the certificate files.
func startTLS(t *testing.T, poll time.Duration) (p *proc, dir, certFile string) {
	t.Helper()
	dir = t.TempDir()
	certFile, keyFile := writeCert(t, dir, "first")
	old := certPollInterval
	certPollInterval = poll
	t.Cleanup(func() { certPollInterval = old }) // after the server stopped (cleanups run last first)
	p = start(t, "-tls-cert", certFile, "-tls-key", keyFile, "-drain-delay", "0", "-log-level", "info")
	return p, dir, certFile
}

// TestTLS: wss:// with a certificate the test makes, https for the other
// endpoints, TLS 1.1 refused, and the certificate reloaded when its files
// change without dropping the sockets open.
func TestTLS(t *testing.T) {
	// Not parallel: it sets the package-level certPollInterval and sends SIGHUP to the whole test process.
	p, dir, certFile := startTLS(t, 100*time.Millisecond)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	c, err := client.Dial(ctx, "wss://"+p.addr+"/socketcluster/", &client.Options{TLSConfig: &tls.Config{RootCAs: pool(t, certFile)}})
	if err != nil {
		t.Fatalf("wss dial: %v\n%s", err, p.stderr)
	}
	defer c.Close(1000, "")
	if d, err := c.Invoke(ctx, "echo", "over TLS"); err != nil || string(d) != `"over TLS"` {
		t.Fatalf("echo over wss: %s %v", d, err)
	}
	hc := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool(t, certFile)}, ForceAttemptHTTP2: true}}
	if resp, err := hc.Get("https://" + p.addr + "/healthz"); err != nil || resp.StatusCode != 200 {
		t.Fatalf("https /healthz: %v %v", resp, err)
	} else {
		resp.Body.Close()
		if resp.ProtoMajor != 2 {
			t.Fatalf("https /healthz over %s, want HTTP/2 offered", resp.Proto)
		}
	}
	if _, err := servedCN(t, p.addr, tls.VersionTLS11); err == nil {
		t.Fatal("a TLS 1.1 handshake succeeded; TLS 1.2 is the minimum")
	}

	// File change: new connections get the new certificate.
	writeCert(t, dir, "second")
	eventually(t, "the certificate reloaded after its files changed", func() bool {
		cn, err := servedCN(t, p.addr, 0)
		return err == nil && cn == "second"
	})
	// The socket opened with the first certificate was not dropped.
	if d, err := c.Invoke(ctx, "echo", "still here"); err != nil || string(d) != `"still here"` {
		t.Fatalf("echo after the reload: %s %v", d, err)
	}
}

// TestTLSReloadOnSIGHUP: SIGHUP reads the files again; a broken pair is
// logged and the last good certificate stays in use.
func TestTLSReloadOnSIGHUP(t *testing.T) {
	// Not parallel: it sets the package-level certPollInterval and sends SIGHUP to the whole test process.
	p, dir, certFile := startTLS(t, time.Hour) // no polling: only SIGHUP reloads
	writeCert(t, dir, "second")
	if err := syscall.Kill(os.Getpid(), syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	eventually(t, "the certificate reloaded on SIGHUP", func() bool {
		cn, err := servedCN(t, p.addr, 0)
		return err == nil && cn == "second"
	})
	if err := os.WriteFile(certFile, []byte("not a certificate"), 0o600); err != nil {
		t.Fatal(err)
	}
	_ = syscall.Kill(os.Getpid(), syscall.SIGHUP)
	eventually(t, "the failed reload logged", func() bool {
		return strings.Contains(p.stderr.String(), "TLS certificate not reloaded")
	})
	if cn, err := servedCN(t, p.addr, 0); err != nil || cn != "second" {
		t.Fatalf("after a broken reload: %q %v, want the previous certificate", cn, err)
	}
}
