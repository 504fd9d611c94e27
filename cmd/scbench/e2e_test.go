//go:build linux

package main

import (
	"bytes"
	"context"
	"encoding/json"
	"encoding/pem"
	"io"
	"log"
	"log/slog"
	"net/http/httptest"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	sc "github.com/socketcluster-go/socketcluster"
	"github.com/socketcluster-go/socketcluster/broker"
)

func startMini(t *testing.T, pingEvery time.Duration) (*miniServer, string) {
	t.Helper()
	s := newMiniServer(pingEvery, true)
	hs := httptest.NewServer(s)
	t.Cleanup(func() {
		s.close()
		hs.Close()
	})
	return s, strings.TrimPrefix(hs.URL, "http://")
}

// runJSON runs scbench with args and decodes its one line of JSON.
func runJSON(t *testing.T, args ...string) map[string]any {
	t.Helper()
	return runJSONFDs(t, true, args...)
}

// runJSONFDs is runJSON; checkFDs false skips the descriptor count (for a
// server in this process that keeps its side open a while, as
// socketcluster-go does while it waits for the client's close frame).
func runJSONFDs(t *testing.T, checkFDs bool, args ...string) map[string]any {
	t.Helper()
	var out, errb bytes.Buffer
	fds := openFDs(t)
	code := run(context.Background(), args, &out, &errb)
	if code != 0 {
		t.Fatalf("scbench %s: exit %d\nstderr:\n%s", strings.Join(args, " "), code, errb.String())
	}
	// Every socket and epoll descriptor of the run is closed again (the
	// mini server closes its side when it reads the end).
	for end := time.Now().Add(2 * time.Second); checkFDs && openFDs(t) > fds; time.Sleep(5 * time.Millisecond) {
		if time.Now().After(end) {
			t.Fatalf("%d descriptors open after the run, %d before", openFDs(t), fds)
		}
	}
	lines := strings.Split(strings.TrimRight(out.String(), "\n"), "\n")
	if len(lines) != 1 {
		t.Fatalf("stdout has %d lines, want 1:\n%s", len(lines), out.String())
	}
	var m map[string]any
	if err := json.Unmarshal([]byte(lines[0]), &m); err != nil {
		t.Fatalf("stdout is not JSON: %v\n%s", err, lines[0])
	}
	checkNoLeftovers(t)
	return m
}

func openFDs(t *testing.T) int {
	t.Helper()
	ents, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Fatal(err)
	}
	return len(ents)
}

// checkNoLeftovers fails if a run left its pollers or publishers behind.
func checkNoLeftovers(t *testing.T) {
	t.Helper()
	var stacks string
	for end := time.Now().Add(2 * time.Second); ; time.Sleep(5 * time.Millisecond) {
		buf := make([]byte, 1<<20)
		stacks = string(buf[:runtime.Stack(buf, true)])
		if !strings.Contains(stacks, "main.(*poller).loop") && !strings.Contains(stacks, "main.(*channelsRun).drive") {
			return
		}
		if time.Now().After(end) {
			t.Fatalf("goroutines left behind by the run:\n%s", stacks)
		}
	}
}

func num(t *testing.T, m map[string]any, k string) float64 {
	t.Helper()
	v, ok := m[k].(float64)
	if !ok {
		t.Fatalf("figure %q missing or not a number in %v", k, m)
	}
	return v
}

var pid = strconv.Itoa(os.Getpid())

func TestE2EConns(t *testing.T) {
	s, addr := startMini(t, 20*time.Millisecond)
	m := runJSON(t, "conns", "-addr", addr, "-n", "20", "-hold", "300ms", "-server-pid", pid)
	if num(t, m, "conns") != 20 || num(t, m, "failed") != 0 || num(t, m, "dropped") != 0 {
		t.Fatalf("conns: %v", m)
	}
	if num(t, m, "pings_answered") == 0 {
		t.Fatalf("no ping answered: %v", m)
	}
	if num(t, m, "connect_rate") <= 0 || num(t, m, "setup_p99_ms") < num(t, m, "setup_p50_ms") {
		t.Fatalf("set-up figures: %v", m)
	}
	num(t, m, "rss_per_conn_bytes")
	num(t, m, "server_cpu_us_per_conn")
	if s.handshakes.Load() != 20 {
		t.Fatalf("server saw %d handshakes", s.handshakes.Load())
	}
	// Every ping the generator answered reached the server as a pong.
	waitFor(t, func() bool { return s.pongs.Load() >= int64(num(t, m, "pings_answered")) })
}

// wss:// connections (conns only): set up through crypto/tls, held by a
// goroutine each, pings answered; the other scenarios refuse wss://.
func TestE2EConnsTLS(t *testing.T) {
	s := newMiniServer(20*time.Millisecond, true)
	hs := httptest.NewUnstartedServer(s)
	hs.Config.ErrorLog = log.New(io.Discard, "", 0) // the refused handshake below
	hs.StartTLS()
	t.Cleanup(func() {
		s.close()
		hs.Close()
	})
	ca := filepath.Join(t.TempDir(), "ca.pem")
	if err := os.WriteFile(ca, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: hs.Certificate().Raw}), 0o600); err != nil {
		t.Fatal(err)
	}
	addr := "wss://" + strings.TrimPrefix(hs.URL, "https://")
	m := runJSON(t, "conns", "-addr", addr, "-ca", ca, "-n", "20", "-hold", "300ms", "-server-pid", pid)
	if num(t, m, "conns") != 20 || num(t, m, "failed") != 0 || num(t, m, "dropped") != 0 {
		t.Fatalf("conns: %v", m)
	}
	if num(t, m, "pings_answered") == 0 {
		t.Fatalf("no ping answered over TLS: %v", m)
	}
	if s.handshakes.Load() != 20 {
		t.Fatalf("server saw %d handshakes", s.handshakes.Load())
	}
	// Every answer reaches the server but, per connection, one written
	// just as the generator closes: a ping arriving then is unread, so
	// the close resets the connection and the server may lose what it
	// had not read yet.
	answered := int64(num(t, m, "pings_answered"))
	waitFor(t, func() bool { return s.pongs.Load() >= max(answered-20, 1) })

	// Without the certificate trusted, set-up fails with a TLS error.
	var out, errb bytes.Buffer
	if code := run(context.Background(), []string{"conns", "-addr", addr, "-n", "1", "-hold", "0s", "-q"}, &out, &errb); code == 0 || !strings.Contains(errb.String(), "TLS handshake") {
		t.Fatalf("untrusted certificate: exit %d, stderr %q", code, errb.String())
	}
	if code := run(context.Background(), []string{"rpc", "-addr", addr, "-ca", ca, "-n", "1", "-duration", "100ms", "-q"}, &out, &errb); code == 0 || !strings.Contains(errb.String(), "conns scenario only") {
		t.Fatalf("rpc over wss://: exit %d, stderr %q", code, errb.String())
	}
}

func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	for end := time.Now().Add(5 * time.Second); !cond(); time.Sleep(5 * time.Millisecond) {
		if time.Now().After(end) {
			t.Fatal("condition not reached")
		}
	}
}

func checkDeliveries(t *testing.T, m map[string]any, perPublish float64) {
	t.Helper()
	pub := num(t, m, "published")
	if pub == 0 {
		t.Fatalf("nothing published: %v", m)
	}
	if num(t, m, "publish_errors") != 0 || num(t, m, "lost") != 0 || num(t, m, "duplicates") != 0 ||
		num(t, m, "order_violations") != 0 || m["drained"] != true {
		t.Fatalf("deliveries not clean: %v", m)
	}
	if num(t, m, "expected") != pub*perPublish || num(t, m, "deliveries") != pub*perPublish {
		t.Fatalf("published %v × %v != deliveries: %v", pub, perPublish, m)
	}
	if num(t, m, "latency_max_ms") < num(t, m, "latency_p50_ms") || num(t, m, "latency_p50_ms") <= 0 {
		t.Fatalf("latency figures: %v", m)
	}
}

func TestE2EFanoutWindow(t *testing.T) {
	s, addr := startMini(t, 50*time.Millisecond)
	m := runJSON(t, "fanout", "-addr", addr, "-n", "10", "-window", "4", "-duration", "300ms",
		"-warmup", "100ms", "-server-pid", pid, "-q")
	checkDeliveries(t, m, 10)
	if m["mode"] != "window" {
		t.Fatalf("mode: %v", m)
	}
	num(t, m, "server_cpu_us_per_delivery")
	num(t, m, "gen_cpu_us_per_delivery")
	// Warm-up publishes reached the server too, but are not in the figures.
	if got := s.publishes.Load(); got <= int64(num(t, m, "published")) {
		t.Fatalf("server saw %d publishes, figures say %v", got, m["published"])
	}
}

func TestE2EFanoutRate(t *testing.T) {
	_, addr := startMini(t, 50*time.Millisecond)
	m := runJSON(t, "fanout", "-addr", addr, "-n", "8", "-rate", "400", "-duration", "300ms",
		"-warmup", "0", "-size", "300", "-q")
	checkDeliveries(t, m, 8)
	if m["mode"] != "rate" || num(t, m, "published") != 120 {
		t.Fatalf("rate mode: %v", m)
	}
}

func TestE2EFanoutSearch(t *testing.T) {
	_, addr := startMini(t, 0)
	m := runJSON(t, "fanout", "-addr", addr, "-n", "4", "-search", "-search-start", "200",
		"-search-steps", "3", "-duration", "150ms", "-warmup", "50ms", "-pause", "0", "-q")
	if m["search"] != true || num(t, m, "search_trials") != 3 || num(t, m, "search_max_rate") < 200 {
		t.Fatalf("search: %v", m)
	}
	checkDeliveries(t, m, 4)
}

func TestE2EChannels(t *testing.T) {
	_, addr := startMini(t, 50*time.Millisecond)
	m := runJSON(t, "channels", "-addr", addr, "-n", "12", "-rate", "50", "-duration", "300ms",
		"-warmup", "100ms", "-peer-offset", "5", "-q")
	checkDeliveries(t, m, 1)
	if got := num(t, m, "published"); got != 12*50*0.3 {
		t.Fatalf("published %v, want 180", got)
	}
	// Transmitted publishes (no cid, no acknowledgement).
	m = runJSON(t, "channels", "-addr", addr, "-n", "6", "-rate", "50", "-duration", "200ms",
		"-warmup", "0", "-invoke=false", "-q")
	checkDeliveries(t, m, 1)
}

func TestE2ERPC(t *testing.T) {
	s, addr := startMini(t, 50*time.Millisecond)
	m := runJSON(t, "rpc", "-addr", addr, "-n", "5", "-inflight", "4", "-duration", "300ms",
		"-warmup", "100ms", "-size", "200", "-server-pid", pid, "-q")
	calls := num(t, m, "calls")
	if calls == 0 || num(t, m, "errors") != 0 || num(t, m, "unanswered") != 0 || num(t, m, "unexpected_packets") != 0 {
		t.Fatalf("rpc: %v", m)
	}
	if int64(calls) > s.calls.Load() {
		t.Fatalf("%v calls measured, server answered %d", calls, s.calls.Load())
	}
	num(t, m, "server_cpu_us_per_call")

	// An unknown procedure is answered with errors, which are counted.
	m = runJSON(t, "rpc", "-addr", addr, "-n", "2", "-inflight", "2", "-duration", "200ms",
		"-warmup", "0", "-procedure", "nope", "-q")
	if num(t, m, "errors") != num(t, m, "calls") || num(t, m, "calls") == 0 {
		t.Fatalf("rpc errors: %v", m)
	}
}

// Open loop: the calls follow the schedule (-rate), whatever the answers;
// a client whose slots all wait skips its turn.
func TestE2ERPCRate(t *testing.T) {
	s, addr := startMini(t, 0)
	m := runJSON(t, "rpc", "-addr", addr, "-n", "4", "-inflight", "4", "-rate", "2000",
		"-duration", "500ms", "-warmup", "100ms", "-q")
	calls := num(t, m, "calls")
	if num(t, m, "errors") != 0 || num(t, m, "unanswered") != 0 || num(t, m, "unexpected_packets") != 0 {
		t.Fatalf("rpc -rate: %v", m)
	}
	// 1 000 calls are due in the measured half second; the bounds are
	// wide for a busy machine, but a closed loop would make far more.
	if calls < 250 || calls > 2000 {
		t.Fatalf("%v calls measured at 2000/s for 0.5 s", calls)
	}
	// What the schedule sent in the window (measured calls are those
	// answered in it: nearly the same), with latencies from due times.
	want := 2000 * num(t, m, "duration_s")
	if sent := num(t, m, "sent"); sent < want/4 || sent > want*1.5 || num(t, m, "rate") != 2000 {
		t.Fatalf("sent %v in the window, want about %v: %v", sent, want, m)
	}
	if p50, max := num(t, m, "latency_p50_ms"), num(t, m, "latency_max_ms"); p50 <= 0 || max < p50 || max > 5000 {
		t.Fatalf("latencies p50 %v max %v", p50, max)
	}
	num(t, m, "skipped")
	num(t, m, "lag_max_ms")
	if int64(calls) > s.calls.Load() {
		t.Fatalf("%v calls measured, server answered %d", calls, s.calls.Load())
	}
	for _, bad := range []string{"-1", "1e-300", "1e300", "NaN"} {
		if code := run(context.Background(), []string{"rpc", "-addr", addr, "-rate", bad, "-q"}, io.Discard, io.Discard); code == 0 {
			t.Fatalf("-rate %s was accepted", bad)
		}
	}
}

func TestE2ECompare(t *testing.T) {
	_, a := startMini(t, 0)
	_, b := startMini(t, 0)
	m := runJSON(t, "compare", "-a", a, "-b", b, "-rounds", "2", "-pause", "0",
		"rpc", "-n", "2", "-inflight", "2", "-duration", "150ms", "-warmup", "0", "-q")
	if m["compared"] != "rpc" || num(t, m, "rounds") != 2 {
		t.Fatalf("compare: %v", m)
	}
	ratio, ok := m["b_over_a"].(map[string]any)
	if !ok || ratio["calls_per_s"] == nil || ratio["clients"] != 1.0 {
		t.Fatalf("ratios: %v", m)
	}
}

func TestRefusesRemote(t *testing.T) {
	var out, errb bytes.Buffer
	code := run(context.Background(), []string{"rpc", "-addr", "192.0.2.1:8000", "-q"}, &out, &errb)
	if code == 0 || out.Len() != 0 || !strings.Contains(errb.String(), "-allow-remote") {
		t.Fatalf("exit %d, stdout %q, stderr %q", code, out.String(), errb.String())
	}
}

func TestSetupFailure(t *testing.T) {
	_, addr := startMini(t, 0)
	var out, errb bytes.Buffer
	// Wrong path: the upgrade is refused.
	code := run(context.Background(), []string{"rpc", "-addr", "ws://" + addr + "/nope/", "-n", "2", "-q"}, &out, &errb)
	if code == 0 || !strings.Contains(errb.String(), "upgrade") {
		t.Fatalf("exit %d, stderr %q", code, errb.String())
	}
}

// scbench floor serves until its context ends; fanout against it (one write
// per delivery) is clean, and -label/-server reach the result line.
func TestE2EFloor(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	pr, pw, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer pr.Close()
	exited := make(chan int, 1)
	var errb bytes.Buffer
	go func() {
		exited <- runFloor(ctx, []string{"-listen", "127.0.0.1:0", "-ping", "50ms"}, pw, &errb)
		pw.Close()
	}()
	line := make([]byte, 64)
	n, err := pr.Read(line)
	if err != nil {
		t.Fatal(err)
	}
	port, ok := strings.CutPrefix(strings.TrimSpace(string(line[:n])), "READY ")
	if !ok {
		t.Fatalf("floor printed %q", line[:n])
	}
	m := runJSON(t, "fanout", "-addr", "127.0.0.1:"+port, "-n", "5", "-rate", "200",
		"-duration", "300ms", "-warmup", "0", "-label", "floor fanout", "-server", "floor")
	checkDeliveries(t, m, 5)
	if m["label"] != "floor fanout" || m["server"] != "floor" {
		t.Fatalf("label and server not in the result: %v", m)
	}
	cancel()
	select {
	case code := <-exited:
		if code != 0 {
			t.Fatalf("floor exited %d: %s", code, errb.String())
		}
	case <-time.After(10 * time.Second):
		t.Fatal("floor did not stop with its context")
	}
}

// TestE2EDeflate: against socketcluster-go with permessage-deflate, the
// generator negotiates it, inflates the compressed publishes (2 KB each)
// and counts them like plain ones; against a server without it, -deflate
// fails at set-up instead of measuring something else.
func TestE2EDeflate(t *testing.T) {
	srv, err := sc.New(sc.Options{PerMessageDeflate: &sc.DeflateOptions{}, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	hs := httptest.NewServer(srv)
	t.Cleanup(func() {
		_ = srv.Close(context.Background())
		hs.Close()
	})
	m := runJSONFDs(t, false, "fanout", "-addr", strings.TrimPrefix(hs.URL, "http://"), "-deflate", "-n", "5", "-window", "4",
		"-size", "2000", "-duration", "300ms", "-warmup", "50ms", "-q")
	checkDeliveries(t, m, 5)
	if m["deflate"] != true {
		t.Fatalf("result does not say deflate: %v", m)
	}
	if st := srv.Stats(); st.Compressions < int64(num(t, m, "published")) || st.CompressionOutBytes*4 > st.CompressionInBytes {
		t.Fatalf("server stats %+v for %v publishes", st, m["published"])
	}

	_, addr := startMini(t, 0)
	var out, errb bytes.Buffer
	if code := run(context.Background(), []string{"conns", "-addr", addr, "-deflate", "-n", "1", "-hold", "0s", "-q"}, &out, &errb); code == 0 || !strings.Contains(errb.String(), "permessage-deflate") {
		t.Fatalf("exit %d, stderr %q", code, errb.String())
	}
}

// Cross-instance fan-out: subscribers on one socketcluster-go server, the
// publisher on another, the two joined by a broker bus; every publish
// crosses it.
func TestE2EFanoutPubAddr(t *testing.T) {
	bus := broker.NewBus()
	var addrs []string
	for range 2 {
		// Reading goroutines on the server side: its epoll descriptors
		// would otherwise count as left open by the run.
		srv, err := sc.New(sc.Options{Broker: broker.NewMemory(bus), DisableEventReads: true})
		if err != nil {
			t.Fatal(err)
		}
		hs := httptest.NewServer(srv)
		t.Cleanup(func() {
			_ = srv.Close(context.Background())
			hs.Close()
		})
		addrs = append(addrs, strings.TrimPrefix(hs.URL, "http://"))
	}
	m := runJSON(t, "fanout", "-addr", addrs[0], "-pub-addr", addrs[1], "-n", "5", "-window", "4",
		"-duration", "300ms", "-warmup", "100ms", "-q")
	checkDeliveries(t, m, 5)
}
