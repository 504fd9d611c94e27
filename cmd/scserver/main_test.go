package main

import (
	"bufio"
	"context"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/socketcluster-go/socketcluster/internal/sctest"
)

func env(m map[string]string) func(string) string { return func(k string) string { return m[k] } }

func TestConfigPrecedence(t *testing.T) {
	t.Parallel()
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
	t.Parallel()
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
	t.Parallel()
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

func TestCoalescePacketsFlag(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		args []string
		env  map[string]string
		want bool
	}{
		{nil, nil, false},
		{[]string{"-coalesce-packets"}, nil, true},
		{nil, map[string]string{"SC_COALESCE_PACKETS": "true"}, true},
		{[]string{"-coalesce-packets=false"}, map[string]string{"SC_COALESCE_PACKETS": "true"}, false},
	} {
		c, err := parse(tc.args, env(tc.env), io.Discard)
		if err != nil {
			t.Fatal(err)
		}
		o, err := c.options(nil)
		if err != nil {
			t.Fatal(err)
		}
		if o.CoalescePackets != tc.want {
			t.Errorf("%v %v: CoalescePackets %v, want %v", tc.args, tc.env, o.CoalescePackets, tc.want)
		}
	}
}

func TestBadBrokerURLFailsAtStart(t *testing.T) {
	t.Parallel()
	var stderr strings.Builder
	code := run(context.Background(), []string{"-addr", "127.0.0.1:0", "-broker", "kafka://x", "-auth-key", "k"}, env(nil), io.Discard, &stderr)
	if code == 0 || !strings.Contains(stderr.String(), "kafka://x") {
		t.Fatalf("exit %d, stderr %q", code, stderr.String())
	}
	stderr.Reset()
	code = run(context.Background(), []string{"-addr", "127.0.0.1:0", "-broker", "redis://127.0.0.1:1", "-auth-key", "k"}, env(nil), io.Discard, &stderr)
	if code == 0 || !strings.Contains(stderr.String(), "redis://127.0.0.1:1") {
		t.Fatalf("unreachable redis: exit %d, stderr %q", code, stderr.String())
	}
}

// proc is a run of scserver in the test process.
type proc struct {
	addr        string // the public address
	metricsAddr string // -metrics-addr's, when set
	stderr      *syncBuffer
	cancel      context.CancelFunc // starts the drain, as SIGTERM
	exited      chan struct{}      // closed when run returned
	code        int                // run's exit code, set before exited is closed
}

// wait waits for the exit code.
func (p *proc) wait(t *testing.T) int {
	t.Helper()
	select {
	case <-p.exited:
		return p.code
	case <-time.After(20 * time.Second):
		t.Fatal("scserver did not stop")
		return -1
	}
}

// syncBuffer is a log sink safe for concurrent use.
type syncBuffer struct {
	mu sync.Mutex
	b  strings.Builder
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}

// start runs scserver with args (on 127.0.0.1:0 unless -addr is given)
// until the end of the test, and waits until it listens.
func start(t *testing.T, args ...string) *proc {
	t.Helper()
	if !slices.Contains(args, "-addr") {
		args = append([]string{"-addr", "127.0.0.1:0"}, args...)
	}
	ctx, cancel := context.WithCancel(context.Background())
	pr, pw := io.Pipe()
	p := &proc{stderr: &syncBuffer{}, cancel: cancel, exited: make(chan struct{})}
	go func() {
		p.code = run(ctx, args, env(nil), pw, p.stderr)
		close(p.exited)
		_ = pw.Close()
	}()
	t.Cleanup(func() {
		cancel()
		select {
		case <-p.exited:
		case <-time.After(20 * time.Second):
			t.Error("scserver did not stop")
		}
	})
	lines := bufio.NewReader(pr)
	want := 1
	if slices.Contains(args, "-metrics-addr") {
		want = 2
	}
	for i := 0; i < want; i++ {
		line, err := lines.ReadString('\n')
		if err != nil {
			t.Fatalf("scserver did not start: %v\n%s", err, p.stderr)
		}
		f := strings.Fields(line)
		switch {
		case strings.HasPrefix(line, "listening on "):
			p.addr = f[len(f)-1]
		case strings.HasPrefix(line, "metrics on "):
			p.metricsAddr = f[len(f)-1]
		}
	}
	go func() { _, _ = io.Copy(io.Discard, pr) }()
	return p
}

// get fetches a URL and returns the status and body; err for connection
// errors.
func get(url string) (int, string, error) {
	resp, err := http.Get(url)
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b), nil
}

func mustGet(t *testing.T, url string) (int, string) {
	t.Helper()
	code, body, err := get(url)
	if err != nil {
		t.Fatal(err)
	}
	return code, body
}

// eventually polls cond for up to 10 s.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); !cond(); time.Sleep(20 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
	}
}

func TestServeEndpointsAndDrain(t *testing.T) {
	t.Parallel()
	p := start(t, "-drain-timeout", "5s", "-drain-delay", "2s", "-log-level", "warn")
	base := "http://" + p.addr
	if code, body := mustGet(t, base+"/healthz"); code != 200 || body != "ok\n" {
		t.Fatalf("/healthz: %d %q", code, body)
	}
	if code, _ := mustGet(t, base+"/readyz"); code != 200 {
		t.Fatalf("/readyz: %d", code)
	}
	_, body := mustGet(t, base+"/")
	if !strings.Contains(body, "socketcluster-go") || !strings.Contains(body, "import * as socketClusterClient from '/socketcluster-client.min.js'") {
		t.Fatalf("demo page: %.400s", body)
	}
	if strings.Contains(body, "https://") {
		t.Fatal("the demo page loads something from the internet")
	}
	if code, js := mustGet(t, base+"/socketcluster-client.min.js"); code != 200 || js != string(clientJS) || !strings.Contains(js, "export{") {
		t.Fatalf("client script: %d, %d bytes", code, len(js))
	}

	// Request headers are capped as in the reference (srv.HTTPServer).
	req, _ := http.NewRequest("GET", base+"/healthz", nil)
	req.Header.Set("X-Big", strings.Repeat("a", 20<<10))
	if resp, err := http.DefaultClient.Do(req); err != nil || resp.StatusCode != http.StatusRequestHeaderFieldsTooLarge {
		t.Fatalf("20 KiB header: %v %v, want 431", resp, err)
	} else {
		resp.Body.Close()
	}

	cl := sctest.Dial(t, p.addr, &sctest.Options{AutoPong: true})
	cl.Handshake(nil)
	if r := cl.Invoke("echo", map[string]int{"a": 1}); string(r.Data) != `{"a":1}` {
		t.Fatalf("echo: %s", r.Raw)
	}
	if _, body := mustGet(t, base+"/metrics"); !strings.Contains(body, "socketcluster_clients 1") || !strings.Contains(body, "go_goroutines") {
		t.Fatalf("metrics:\n%.400s", body)
	}

	// Drain: /readyz answers 503 (it is not refused) while the client is
	// still connected, during -drain-delay; then the client gets 1001 and
	// the process ends with 0.
	p.cancel()
	eventually(t, "/readyz 503 during the drain", func() bool {
		code, _, err := get(base + "/readyz")
		if err != nil {
			t.Fatalf("/readyz during the drain: %v (the listener must stay open)", err)
		}
		return code == http.StatusServiceUnavailable
	})
	if r := cl.Invoke("echo", "still served"); string(r.Data) != `"still served"` {
		t.Fatalf("echo during the drain delay: %s", r.Raw)
	}
	if code, _, _ := cl.ExpectClose(); code != 1001 {
		t.Fatalf("close code %d, want 1001", code)
	}
	if code := p.wait(t); code != 0 {
		t.Fatalf("exit %d", code)
	}
}

func TestBrokerTimeoutFlag(t *testing.T) {
	t.Parallel()
	c, err := parse([]string{"-broker-timeout", "750ms"}, env(nil), io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	o, err := c.options(nil)
	if err != nil {
		t.Fatal(err)
	}
	if o.BrokerTimeout != 750*time.Millisecond {
		t.Fatalf("Options.BrokerTimeout = %v, want 750ms", o.BrokerTimeout)
	}
	if c, _ := parse(nil, env(nil), io.Discard); c.BrokerTimeout != 5*time.Second {
		t.Fatalf("default -broker-timeout %v, want 5s", c.BrokerTimeout)
	}
	for _, v := range []string{"0s", "-1s", "soon"} {
		if _, err := parse([]string{"-broker-timeout", v}, env(nil), io.Discard); err == nil || !strings.Contains(err.Error(), "-broker-timeout") {
			t.Errorf("-broker-timeout %s: got %v, want an error naming the flag", v, err)
		}
	}
}

func TestHistoryFlags(t *testing.T) {
	t.Parallel()
	c, err := parse([]string{"-history", "chat.*, news", "-history-ttl", "90s"}, env(map[string]string{"SC_HISTORY_SIZE": "42"}), io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	o, err := c.options(nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(o.History) != 1 || strings.Join(o.History[0].Patterns, "|") != "chat.*|news" || o.History[0].Size != 42 || o.History[0].TTL != 90*time.Second {
		t.Fatalf("Options.History = %+v", o.History)
	}
	if c, _ := parse(nil, env(nil), io.Discard); c.History != "" {
		t.Fatalf("history on by default: %q", c.History)
	} else if o, _ := c.options(nil); o.History != nil {
		t.Fatalf("Options.History without -history: %+v", o.History)
	}
	for _, args := range [][]string{{"-history-size", "0"}, {"-history-size", "x"}, {"-history-ttl", "0s"}, {"-history-ttl", "later"}} {
		if _, err := parse(args, env(nil), io.Discard); err == nil || !strings.Contains(err.Error(), args[0]) {
			t.Errorf("%v: got %v, want an error naming the flag", args, err)
		}
	}
	c, _ = parse([]string{"-history", " , "}, env(nil), io.Discard)
	if _, err := c.options(nil); err == nil || !strings.Contains(err.Error(), "-history") {
		t.Errorf("-history with no pattern: %v", err)
	}
}
