package brokertest

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/socketcluster-go/socketcluster/broker"
)

// Helpers for the tests of network brokers: where the shared test servers
// are, servers of a test's own, and a recording broker.Handler.
//
// A test that needs a broker which is not there (unreachable server,
// missing server binary) is skipped loudly, or fails when the environment
// variable SC_REQUIRE_BROKERS is 1 (as in CI, where the brokers are
// services and a skip would hide that they are not running).

// brokerKind describes a broker that URL and StartProcess know.
type brokerKind struct {
	env, def string // variable holding the shared server's URL; its default
	name     string // for messages
	server   string // what the variable must name
	scheme   string
	ping     bool // readiness is an answer to PING (else a TCP connection)
}

var kinds = map[string]brokerKind{
	"redis": {env: "REDIS_URL", def: "redis://127.0.0.1:6379", name: "Redis", server: "a Redis 7 server", scheme: "redis", ping: true},
	"nats":  {env: "NATS_URL", def: "nats://127.0.0.1:4222", name: "NATS", server: "a NATS server", scheme: "nats"},
}

func kindOf(tb testing.TB, name string) brokerKind {
	tb.Helper()
	k, ok := kinds[name]
	if !ok {
		tb.Fatalf("brokertest: unknown broker kind %q (want redis or nats)", name)
	}
	return k
}

// Unavailable skips tb loudly, or fails it when SC_REQUIRE_BROKERS=1, for
// a broker of kind ("redis" or "nats") that the test needs and cannot have.
func Unavailable(tb testing.TB, kind, format string, args ...any) {
	tb.Helper()
	k := kindOf(tb, kind)
	msg := fmt.Sprintf(format, args...)
	if os.Getenv("SC_REQUIRE_BROKERS") == "1" {
		tb.Fatalf("%s (SC_REQUIRE_BROKERS=1)", msg)
	}
	fmt.Fprintf(os.Stderr, "!!! SKIPPING %s: %s\n", tb.Name(), msg)
	tb.Skipf("\n!!!!!!!! SKIPPED: %s\n!!!!!!!! Set %s to %s; SC_REQUIRE_BROKERS=1 makes this a failure.", msg, k.env, k.server)
}

// URL returns the URL of the shared test server of kind ("redis" or
// "nats"): $REDIS_URL or $NATS_URL, by default the standard port on
// 127.0.0.1. When it does not answer (a Redis must answer PING), the test
// is skipped loudly, or fails under SC_REQUIRE_BROKERS=1.
func URL(tb testing.TB, kind string) string {
	tb.Helper()
	k := kindOf(tb, kind)
	u := os.Getenv(k.env)
	if u == "" {
		u = k.def
	}
	network, addr, err := dialAddr(u, k.def)
	if err != nil {
		tb.Fatalf("%s=%q: %v", k.env, u, err)
	}
	if err := probe(network, addr, k.ping, 2*time.Second); err != nil {
		Unavailable(tb, kind, "%s at %s unreachable: %v", k.name, u, err)
	}
	return u
}

// dialAddr returns where to reach the (first) server of a broker URL; the
// port defaults to that of def.
func dialAddr(raw, def string) (network, addr string, err error) {
	first, _, _ := strings.Cut(raw, ",") // NATS takes a list of servers
	u, err := url.Parse(strings.TrimSpace(first))
	if err != nil {
		return "", "", err
	}
	if u.Scheme == "unix" {
		return "unix", u.Path, nil
	}
	if u.Hostname() == "" {
		return "", "", fmt.Errorf("no host")
	}
	port := u.Port()
	if port == "" {
		d, _ := url.Parse(def)
		port = d.Port()
	}
	return "tcp", net.JoinHostPort(u.Hostname(), port), nil
}

// probe checks that a server listens on addr; with ping, that it answers
// an inline PING with +PONG (or -NOAUTH: it is there, it wants a password).
func probe(network, addr string, ping bool, timeout time.Duration) error {
	c, err := net.DialTimeout(network, addr, timeout)
	if err != nil {
		return err
	}
	defer c.Close()
	if !ping {
		return nil
	}
	_ = c.SetDeadline(time.Now().Add(timeout))
	if _, err := c.Write([]byte("PING\r\n")); err != nil {
		return err
	}
	line, err := bufio.NewReader(c).ReadString('\n')
	if err != nil {
		return err
	}
	if !strings.HasPrefix(line, "+PONG") && !strings.HasPrefix(line, "-NOAUTH") {
		return fmt.Errorf("unexpected reply %q", line)
	}
	return nil
}

// FreePort returns a loopback TCP port nothing listens on (at the time of
// the call).
func FreePort(tb testing.TB) int {
	tb.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// Binary returns the path of a server program (redis-server, redis-cli,
// nats-server...), looked up in PATH and then in /usr/sbin. When it is not
// installed, the test is skipped loudly, or fails under
// SC_REQUIRE_BROKERS=1, as for an unreachable broker of kind.
func Binary(tb testing.TB, kind, name string) string {
	tb.Helper()
	p, err := exec.LookPath(name)
	if err != nil {
		if _, serr := os.Stat("/usr/sbin/" + name); serr == nil {
			return "/usr/sbin/" + name
		}
		Unavailable(tb, kind, "%s not found in PATH: %v", name, err)
	}
	return p
}

// Process is a broker server process of the test's own, on a free loopback
// port: its URL stays the same across Stop and Start, so that a test can
// play an outage. Create it with StartProcess.
type Process struct {
	tb   testing.TB
	kind string
	port int
	args []string
	cmd  *exec.Cmd
	done chan struct{} // closed once cmd has exited and been reaped
	out  bytes.Buffer  // what it printed, read once done is closed
}

// errExited: the process ended before it answered.
var errExited = errors.New("exited before it answered")

// StartProcess starts a server of kind ("redis": redis-server without
// persistence; "nats": nats-server) on 127.0.0.1 and a free port, with the
// extra command-line arguments, waits until it answers, and stops it when
// the test ends. A process that exits at once (the free port taken by
// someone else meanwhile) is tried again on another port, twice. A missing
// binary skips the test loudly, or fails it under SC_REQUIRE_BROKERS=1.
func StartProcess(tb testing.TB, kind string, extra ...string) *Process {
	tb.Helper()
	kindOf(tb, kind)
	// A Redis Cluster node also listens on its port + 10000 (the bus).
	bus := kind == "redis" && slices.Contains(extra, "--cluster-enabled")
	for attempt := 1; ; attempt++ {
		p := &Process{tb: tb, kind: kind, port: freePort(tb, bus)}
		port := strconv.Itoa(p.port)
		switch kind {
		case "redis":
			p.args = []string{Binary(tb, kind, "redis-server"), "--port", port, "--bind", "127.0.0.1",
				"--save", "", "--appendonly", "no", "--protected-mode", "no"}
		case "nats":
			p.args = []string{Binary(tb, kind, "nats-server"), "-a", "127.0.0.1", "-p", port}
		}
		p.args = append(p.args, extra...)
		err := p.start()
		if err == nil {
			tb.Cleanup(p.Stop)
			return p
		}
		if !errors.Is(err, errExited) || attempt == 3 {
			tb.Fatal(err)
		}
		tb.Logf("brokertest: %v; trying another port", err)
	}
}

// freePort is FreePort, and with bus a port whose port + 10000 is free too.
func freePort(tb testing.TB, bus bool) int {
	tb.Helper()
	for range 100 {
		port := FreePort(tb)
		if !bus {
			return port
		}
		if port+10000 > 65535 {
			continue
		}
		if l, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(port+10000))); err == nil {
			_ = l.Close()
			return port
		}
	}
	tb.Fatal("brokertest: no free port whose port + 10000 is free too, in 100 tries")
	return 0
}

// Addr is the server's host:port.
func (p *Process) Addr() string { return net.JoinHostPort("127.0.0.1", strconv.Itoa(p.port)) }

// URL is the server's URL, "redis://127.0.0.1:port" or "nats://…".
func (p *Process) URL() string { return kindOf(p.tb, p.kind).scheme + "://" + p.Addr() }

// Start starts the server again after Stop (StartProcess starts it a first
// time) and waits until it answers.
func (p *Process) Start() {
	p.tb.Helper()
	if err := p.start(); err != nil {
		p.tb.Fatal(err)
	}
}

// start starts the process unless it runs, and waits until it answers: an
// error if it exits first (errExited, with what it printed) or does not
// answer within 20 s (then it is stopped).
func (p *Process) start() error {
	if p.cmd != nil {
		return nil
	}
	cmd := exec.Command(p.args[0], p.args[1:]...)
	p.out.Reset()
	cmd.Stdout, cmd.Stderr = &p.out, &p.out
	// A child of the server (a Redis BGSAVE) may hold the output pipe
	// after the server was killed: Wait gives up on it after this.
	cmd.WaitDelay = 2 * time.Second
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("start %v: %w", p.args, err)
	}
	done := make(chan struct{})
	go func() {
		_ = cmd.Wait()
		close(done)
	}()
	p.cmd, p.done = cmd, done
	ping := kindOf(p.tb, p.kind).ping
	deadline := time.Now().Add(20 * time.Second)
	for {
		err := probe("tcp", p.Addr(), ping, time.Second)
		if err == nil {
			return nil
		}
		select {
		case <-done:
			p.cmd = nil
			return fmt.Errorf("%s on %s %w: %s", p.args[0], p.Addr(), errExited, lastLines(p.out.String(), 5))
		default:
		}
		if time.Now().After(deadline) {
			p.Stop()
			return fmt.Errorf("%s on %s not ready: %v", p.args[0], p.Addr(), err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// lastLines returns the last n lines of s.
func lastLines(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	return strings.Join(lines[max(0, len(lines)-n):], "\n")
}

// Stop kills the process, by its PID, and reaps it.
func (p *Process) Stop() {
	if p.cmd == nil {
		return
	}
	_ = p.cmd.Process.Kill()
	<-p.done
	p.cmd = nil
}

// Recorder is a broker.Handler that records what a broker reports, for
// tests of a broker. Its methods are safe for concurrent use; set the hooks
// before the broker starts.
type Recorder struct {
	// OnDeliver, when set, is called at the start of every Deliver.
	OnDeliver func(channel string, payload []byte)
	// OnChannels, when set, is called at the start of every Channels.
	OnChannels func()

	mu       sync.Mutex
	msgs     map[string][]string
	channels []string
	status   []error
}

var _ broker.Handler = (*Recorder)(nil)

// NewRecorder returns a Recorder whose Channels returns channels.
func NewRecorder(channels ...string) *Recorder {
	return &Recorder{msgs: map[string][]string{}, channels: channels}
}

// Deliver implements broker.Handler: it records the payload.
func (h *Recorder) Deliver(channel string, payload []byte) {
	if h.OnDeliver != nil {
		h.OnDeliver(channel, payload)
	}
	h.mu.Lock()
	h.msgs[channel] = append(h.msgs[channel], string(payload))
	h.mu.Unlock()
}

// Channels implements broker.Handler: the channels given to NewRecorder
// and AddChannels.
func (h *Recorder) Channels() []string {
	if h.OnChannels != nil {
		h.OnChannels()
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]string(nil), h.channels...)
}

// AddChannels adds to what Channels returns.
func (h *Recorder) AddChannels(channels ...string) {
	h.mu.Lock()
	h.channels = append(h.channels, channels...)
	h.mu.Unlock()
}

// Status implements broker.Handler: it records err.
func (h *Recorder) Status(err error) {
	h.mu.Lock()
	h.status = append(h.status, err)
	h.mu.Unlock()
}

// Got returns the payloads delivered on channel, in order.
func (h *Recorder) Got(channel string) []string {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]string(nil), h.msgs[channel]...)
}

// Statuses returns what Status was called with, in order.
func (h *Recorder) Statuses() []error {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]error(nil), h.status...)
}

// Start starts b with h and closes it when the test ends.
func Start(tb testing.TB, b broker.Broker, h broker.Handler) {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := b.Start(ctx, h); err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { b.Close() })
}

// WaitUntil polls cond every 10ms, and fails the test when it does not
// hold within d.
func WaitUntil(tb testing.TB, d time.Duration, what string, cond func() bool) {
	tb.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			tb.Fatalf("timed out after %v waiting for %s", d, what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// Context returns a context that ends after 20s, or when the test ends.
func Context(tb testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	tb.Cleanup(cancel)
	return ctx
}
