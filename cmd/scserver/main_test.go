package main

import (
	"bufio"
	"context"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/socketcluster-go/socketcluster/internal/sctest"
)

func env(m map[string]string) func(string) string { return func(k string) string { return m[k] } }

func TestConfigPrecedence(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "c.json")
	if err := os.WriteFile(file, []byte(`{"ping-interval":"2s","channel-limit":5,"path":"/file/","allow-client-publish":false}`), 0o600); err != nil {
		t.Fatal(err)
	}
	c, err := parse([]string{"-config", file, "-channel-limit", "7"}, env(map[string]string{"SC_PATH": "/env/"}), io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if c.PingInterval != 2*time.Second || c.ChannelLimit != 7 || c.Path != "/env/" || c.AllowClientPublish {
		t.Fatalf("precedence flag > env > file > default broken: %+v", c)
	}
	if c.PingTimeout != 30*time.Second || c.Addr != ":8000" {
		t.Fatalf("defaults: %+v", c)
	}
}

func TestConfigErrorsNameTheSetting(t *testing.T) {
	dir := t.TempDir()
	bad := filepath.Join(dir, "bad.json")
	_ = os.WriteFile(bad, []byte(`{"no-such":1}`), 0o600)
	for _, tc := range []struct {
		args []string
		env  map[string]string
		want string
	}{
		{[]string{"-ping-interval", "soon"}, nil, "-ping-interval"},
		{nil, map[string]string{"SC_CHANNEL_LIMIT": "many"}, "SC_CHANNEL_LIMIT"},
		{[]string{"-config", bad}, nil, `unknown key "no-such"`},
		{[]string{"-config", filepath.Join(dir, "missing.json")}, nil, "config file"},
	} {
		_, err := parse(tc.args, env(tc.env), io.Discard)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%v %v: got %v, want an error mentioning %q", tc.args, tc.env, err, tc.want)
		}
	}
}

func TestPerMessageDeflateFlags(t *testing.T) {
	c, err := parse(nil, env(nil), io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	o, err := c.options(nil)
	if err != nil {
		t.Fatal(err)
	}
	if o.PerMessageDeflate != nil {
		t.Fatal("compression on by default")
	}
	c, err = parse([]string{"-per-message-deflate", "-deflate-level", "6"}, env(map[string]string{"SC_DEFLATE_THRESHOLD": "0"}), io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if o, err = c.options(nil); err != nil {
		t.Fatal(err)
	}
	if d := o.PerMessageDeflate; d == nil || d.Level != 6 || d.Threshold != -1 {
		t.Fatalf("deflate options %+v, want level 6, every message", d)
	}
	if _, err := parse([]string{"-per-message-deflate=maybe"}, env(nil), io.Discard); err == nil || !strings.Contains(err.Error(), "-per-message-deflate") {
		t.Fatalf("got %v", err)
	}
}

func TestBadBrokerURLFailsAtStart(t *testing.T) {
	var stderr strings.Builder
	code := run(context.Background(), []string{"-addr", "127.0.0.1:0", "-broker", "kafka://x"}, env(nil), io.Discard, &stderr)
	if code == 0 || !strings.Contains(stderr.String(), "kafka://x") {
		t.Fatalf("exit %d, stderr %q", code, stderr.String())
	}
	stderr.Reset()
	code = run(context.Background(), []string{"-addr", "127.0.0.1:0", "-broker", "redis://127.0.0.1:1"}, env(nil), io.Discard, &stderr)
	if code == 0 || !strings.Contains(stderr.String(), "redis://127.0.0.1:1") {
		t.Fatalf("unreachable redis: exit %d, stderr %q", code, stderr.String())
	}
}

func TestServeEndpointsAndDrain(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	pr, pw := io.Pipe()
	done := make(chan int, 1)
	go func() {
		done <- run(ctx, []string{"-addr", "127.0.0.1:0", "-drain-timeout", "3s", "-log-level", "warn"}, env(nil), pw, io.Discard)
		_ = pw.Close()
	}()
	line, err := bufio.NewReader(pr).ReadString('\n')
	if err != nil {
		t.Fatal(err)
	}
	go func() { _, _ = io.Copy(io.Discard, pr) }()
	addr := strings.TrimSpace(strings.TrimPrefix(line, "listening on "))
	get := func(path string) (int, string) {
		resp, err := http.Get("http://" + addr + path)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	if code, body := get("/healthz"); code != 200 || body != "ok\n" {
		t.Fatalf("/healthz: %d %q", code, body)
	}
	if code, _ := get("/readyz"); code != 200 {
		t.Fatalf("/readyz: %d", code)
	}
	if _, body := get("/"); !strings.Contains(body, "socketcluster-go") || !strings.Contains(body, "import * as socketClusterClient") {
		t.Fatalf("demo page: %.200s", body)
	}

	// Request headers are capped as in the reference (srv.HTTPServer).
	req, _ := http.NewRequest("GET", "http://"+addr+"/healthz", nil)
	req.Header.Set("X-Big", strings.Repeat("a", 20<<10))
	if resp, err := http.DefaultClient.Do(req); err != nil || resp.StatusCode != http.StatusRequestHeaderFieldsTooLarge {
		t.Fatalf("20 KiB header: %v %v, want 431", resp, err)
	} else {
		resp.Body.Close()
	}

	cl := sctest.Dial(t, addr, &sctest.Options{AutoPong: true})
	cl.Handshake(nil)
	if r := cl.Invoke("echo", map[string]int{"a": 1}); string(r.Data) != `{"a":1}` {
		t.Fatalf("echo: %s", r.Raw)
	}
	if _, body := get("/metrics"); !strings.Contains(body, "socketcluster_clients 1") || !strings.Contains(body, "go_goroutines") {
		t.Fatalf("metrics:\n%.400s", body)
	}

	// Drain: the client gets 1001 and the process ends with 0.
	cancel()
	if code, _, _ := cl.ExpectClose(); code != 1001 {
		t.Fatalf("close code %d, want 1001", code)
	}
	select {
	case code := <-done:
		if code != 0 {
			t.Fatalf("exit %d", code)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("scserver did not stop")
	}
}
