package natsbroker_test

import (
	"context"
	"fmt"
	"net"
	"net/url"
	"os"
	"os/exec"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/socketcluster-go/socketcluster/broker/natsbroker"
)

func natsURL() string {
	if u := os.Getenv("NATS_URL"); u != "" {
		return u
	}
	return "nats://127.0.0.1:4222"
}

// unavailable skips loudly, or fails when SC_REQUIRE_BROKERS=1.
func unavailable(t testing.TB, format string, args ...any) {
	t.Helper()
	msg := fmt.Sprintf(format, args...)
	if os.Getenv("SC_REQUIRE_BROKERS") == "1" {
		t.Fatalf("%s (SC_REQUIRE_BROKERS=1)", msg)
	}
	t.Skipf("\n!!!!!!!! SKIPPED: %s\n!!!!!!!! Set NATS_URL to a NATS server; SC_REQUIRE_BROKERS=1 makes this a failure.", msg)
}

// requireNATS returns the URL of the shared test server, or skips.
func requireNATS(t testing.TB) string {
	t.Helper()
	u := natsURL()
	p, err := url.Parse(u)
	if err != nil {
		t.Fatalf("NATS_URL %q: %v", u, err)
	}
	host := p.Host
	if p.Port() == "" {
		host = net.JoinHostPort(p.Hostname(), "4222")
	}
	c, err := net.DialTimeout("tcp", host, 2*time.Second)
	if err != nil {
		unavailable(t, "NATS at %s unreachable: %v", u, err)
	}
	c.Close()
	return u
}

var prefixSeq atomic.Int64

// uniquePrefix namespaces a test's subjects on the shared server.
func uniquePrefix() string {
	return fmt.Sprintf("sctest.p%d_%d_%d", os.Getpid(), time.Now().UnixNano(), prefixSeq.Add(1))
}

func freePort(t testing.TB) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// natsServer is a nats-server process started by a test.
type natsServer struct {
	t    testing.TB
	port int
	cmd  *exec.Cmd
}

func startNATSServer(t testing.TB, port int) *natsServer {
	t.Helper()
	if _, err := exec.LookPath("nats-server"); err != nil {
		unavailable(t, "nats-server not found in PATH: %v", err)
	}
	s := &natsServer{t: t, port: port}
	s.start()
	t.Cleanup(s.stop)
	return s
}

func (s *natsServer) addr() string { return net.JoinHostPort("127.0.0.1", strconv.Itoa(s.port)) }
func (s *natsServer) url() string  { return "nats://" + s.addr() }

func (s *natsServer) start() {
	s.t.Helper()
	cmd := exec.Command("nats-server", "-a", "127.0.0.1", "-p", strconv.Itoa(s.port))
	if err := cmd.Start(); err != nil {
		s.t.Fatalf("start nats-server: %v", err)
	}
	s.cmd = cmd
	deadline := time.Now().Add(20 * time.Second)
	for {
		c, err := net.DialTimeout("tcp", s.addr(), time.Second)
		if err == nil {
			c.Close()
			return
		}
		if time.Now().After(deadline) {
			s.stop()
			s.t.Fatalf("nats-server on %s not ready: %v", s.addr(), err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// stop kills the process this test started, by PID, and reaps it.
func (s *natsServer) stop() {
	if s.cmd == nil {
		return
	}
	_ = s.cmd.Process.Kill()
	_ = s.cmd.Wait()
	s.cmd = nil
}

// handler records what a broker reports.
type handler struct {
	mu       sync.Mutex
	msgs     map[string][]string
	channels []string
	status   []error
	deliver  func(channel string, payload []byte)
	onChans  func() // optional, called at the start of Channels
}

func newHandler(channels ...string) *handler {
	return &handler{msgs: map[string][]string{}, channels: channels}
}

func (h *handler) Deliver(channel string, payload []byte) {
	if h.deliver != nil {
		h.deliver(channel, payload)
	}
	h.mu.Lock()
	h.msgs[channel] = append(h.msgs[channel], string(payload))
	h.mu.Unlock()
}

func (h *handler) Channels() []string {
	if h.onChans != nil {
		h.onChans()
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]string(nil), h.channels...)
}

func (h *handler) Status(err error) {
	h.mu.Lock()
	h.status = append(h.status, err)
	h.mu.Unlock()
}

func (h *handler) got(channel string) []string {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]string(nil), h.msgs[channel]...)
}

func (h *handler) statuses() []error {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]error(nil), h.status...)
}

func waitUntil(t testing.TB, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", d, what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func start(t testing.TB, url string, opts natsbroker.Options, h *handler) *natsbroker.Broker {
	t.Helper()
	b, err := natsbroker.New(url, opts)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := b.Start(ctx, h); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.Close() })
	return b
}

func ctx(t testing.TB) context.Context {
	c, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	t.Cleanup(cancel)
	return c
}
