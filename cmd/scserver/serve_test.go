package main

import (
	"crypto/sha256"
	"encoding/json"
	"errors"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/gobwas/ws"

	"github.com/socketcluster-go/socketcluster/internal/sctest"
)

// TestDebugLogsConnections: at -log-level debug each connection, each
// disconnection with its code, and each refused upgrade is logged.
func TestDebugLogsConnections(t *testing.T) {
	t.Parallel()
	p := start(t, "-log-level", "debug", "-origins", "example.com:443", "-drain-delay", "0")
	c := sctest.Dial(t, p.addr, &sctest.Options{Header: http.Header{"Origin": {"https://example.com"}}})
	c.Handshake(nil)
	_ = c.SendClose(4321, "bye")
	c.WaitEnd()
	if _, err := sctest.DialErr(t, p.addr, &sctest.Options{Header: http.Header{"Origin": {"https://evil.example"}}}); err == nil {
		t.Fatal("an upgrade from a refused origin succeeded")
	}
	eventually(t, "the debug lines", func() bool {
		s := p.stderr.String()
		return strings.Contains(s, "scserver: connected") && strings.Contains(s, "socket="+c.ID) &&
			strings.Contains(s, "scserver: disconnected") && strings.Contains(s, "code=4321") &&
			strings.Contains(s, "scserver: upgrade refused") && strings.Contains(s, "status=403") &&
			strings.Contains(s, "https://evil.example")
	})
	if _, body := mustGet(t, "http://"+p.addr+"/metrics"); !strings.Contains(body, "socketcluster_origin_refusals_total 1") {
		t.Fatal("the origin refusal is not counted in /metrics")
	}
}

// TestInfoLogsNoConnections: at info level nothing is logged per
// connection.
func TestInfoLogsNoConnections(t *testing.T) {
	t.Parallel()
	p := start(t, "-log-level", "info", "-drain-delay", "0")
	c := sctest.Dial(t, p.addr, nil)
	c.Handshake(nil)
	c.Invoke("echo", 1)
	c.Close()
	if s := p.stderr.String(); strings.Contains(s, "connected") || strings.Contains(s, "disconnected") {
		t.Fatalf("per-connection lines at info level:\n%s", s)
	}
}

// TestDemoOff: -demo=false serves no page and no echo procedure.
func TestDemoOff(t *testing.T) {
	t.Parallel()
	p := start(t, "-demo=false", "-drain-delay", "0", "-log-level", "error")
	for _, path := range []string{"/", "/socketcluster-client.min.js"} {
		if code, _ := mustGet(t, "http://"+p.addr+path); code != http.StatusNotFound {
			t.Fatalf("%s with -demo=false: %d, want 404", path, code)
		}
	}
	c := sctest.Dial(t, p.addr, &sctest.Options{AutoPong: true})
	c.Handshake(nil)
	c.SendText(sctest.EventPacket("echo", 1, c.NextCid()))
	c.ExpectNothing(time.Second) // the echo procedure would answer at once

	if code, _ := mustGet(t, "http://"+p.addr+"/healthz"); code != 200 {
		t.Fatalf("/healthz: %d", code)
	}
}

// TestMetricsAddr: with -metrics-addr, /metrics is served there and not on
// the public address.
func TestMetricsAddr(t *testing.T) {
	t.Parallel()
	p := start(t, "-metrics-addr", "127.0.0.1:0", "-drain-delay", "0", "-log-level", "error")
	if p.metricsAddr == "" || p.metricsAddr == p.addr {
		t.Fatalf("metrics address %q (public %q)", p.metricsAddr, p.addr)
	}
	if code, body := mustGet(t, "http://"+p.metricsAddr+"/metrics"); code != 200 || !strings.Contains(body, "socketcluster_clients") {
		t.Fatalf("/metrics on -metrics-addr: %d %.200s", code, body)
	}
	if code, _ := mustGet(t, "http://"+p.addr+"/metrics"); code == 200 {
		t.Fatal("/metrics is still served on the public address")
	}
}

// TestLimitFlags: each limit flag reaches the server, and refusals show in
// /metrics by limit.
func TestLimitFlags(t *testing.T) {
	t.Parallel()
	p := start(t, "-max-connections", "2", "-max-connections-per-address", "1", "-client-address-header", "X-Real-IP",
		"-inbound-message-rate", "1", "-inbound-message-burst", "5", "-drain-delay", "0", "-log-level", "error")
	ip := func(v string) *sctest.Options { return &sctest.Options{Header: http.Header{"X-Real-Ip": {v}}} }
	status := func(o *sctest.Options) int {
		_, err := sctest.DialErr(t, p.addr, o)
		var se ws.StatusError
		if errors.As(err, &se) {
			return int(se)
		}
		if err != nil {
			t.Fatal(err)
		}
		return 101
	}
	if s := status(ip("10.1.1.1")); s != 101 {
		t.Fatalf("first: %d", s)
	}
	if s := status(ip("10.1.1.1")); s != http.StatusTooManyRequests {
		t.Fatalf("second from 10.1.1.1: %d, want 429", s)
	}
	flood := sctest.Dial(t, p.addr, ip("10.1.1.2"))
	if s := status(ip("10.1.1.3")); s != http.StatusServiceUnavailable {
		t.Fatalf("third connection: %d, want 503", s)
	}
	flood.Handshake(nil)
	for i := 0; i < 50; i++ {
		if flood.TrySendText(sctest.EventPacket("x", i, 0)) != nil {
			break
		}
	}
	if code, reason, _ := flood.ExpectClose(); code != 4101 || reason != "Socket inbound rate limit exceeded" {
		t.Fatalf("flood closed with %d %q, want 4101", code, reason)
	}
	eventually(t, "the refusals in /metrics", func() bool {
		_, body := mustGet(t, "http://"+p.addr+"/metrics")
		return strings.Contains(body, `socketcluster_refused_upgrades_total{limit="connections"} 1`) &&
			strings.Contains(body, `socketcluster_refused_upgrades_total{limit="connections_per_address"} 1`) &&
			strings.Contains(body, `socketcluster_refused_upgrades_total{limit="handshake_rate"} 0`) &&
			strings.Contains(body, "socketcluster_rate_limited_sockets_total 1")
	})
}

// TestEmbeddedClientIsTheNPMBuild: the embedded client is the file of the
// socketcluster-client package the interop suite installs (when it is
// installed), at the version stated.
func TestEmbeddedClientIsTheNPMBuild(t *testing.T) {
	t.Parallel()
	dir := filepath.Join("..", "..", "interop", "node_modules", "socketcluster-client")
	b, err := os.ReadFile(filepath.Join(dir, "socketcluster-client.min.js"))
	if err != nil {
		t.Skipf("interop/node_modules not installed (npm ci in interop/): %v", err)
	}
	if sha256.Sum256(b) != sha256.Sum256(clientJS) {
		t.Fatal("assets/socketcluster-client.min.js differs from the npm package's; update it (assets/NOTICE.md)")
	}
	var pkg struct{ Version string }
	pj, _ := os.ReadFile(filepath.Join(dir, "package.json"))
	if err := json.Unmarshal(pj, &pkg); err != nil || pkg.Version != clientJSVersion {
		t.Fatalf("npm package version %q, embedded %q", pkg.Version, clientJSVersion)
	}
}

// TestMaxHeaderBytesFlag: -max-header-bytes sets the cap of request
// headers (431 above it) on every listener.
func TestMaxHeaderBytesFlag(t *testing.T) {
	t.Parallel()
	p := start(t, "-max-header-bytes", "8192", "-metrics-addr", "127.0.0.1:0", "-drain-delay", "0", "-log-level", "error")
	for _, tc := range []struct {
		addr string
		size int
		want int
	}{
		{p.addr, 4 << 10, http.StatusOK},
		{p.addr, 10 << 10, http.StatusRequestHeaderFieldsTooLarge}, // under the default 16 KiB
		{p.metricsAddr, 10 << 10, http.StatusRequestHeaderFieldsTooLarge},
	} {
		req, _ := http.NewRequest("GET", "http://"+tc.addr+"/healthz", nil)
		if tc.addr == p.metricsAddr {
			req.URL.Path = "/metrics"
		}
		req.Header.Set("X-Big", strings.Repeat("a", tc.size))
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != tc.want {
			t.Fatalf("%s with a %d-byte header: %d, want %d", req.URL, tc.size, resp.StatusCode, tc.want)
		}
	}
}
