package redisbroker_test

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/rueidis"

	"github.com/socketcluster-go/socketcluster/broker/redisbroker"
)

func redisURL() string {
	if u := os.Getenv("REDIS_URL"); u != "" {
		return u
	}
	return "redis://127.0.0.1:6379"
}

// unavailable skips loudly, or fails when SC_REQUIRE_BROKERS=1.
func unavailable(t testing.TB, format string, args ...any) {
	t.Helper()
	msg := fmt.Sprintf(format, args...)
	if os.Getenv("SC_REQUIRE_BROKERS") == "1" {
		t.Fatalf("%s (SC_REQUIRE_BROKERS=1)", msg)
	}
	t.Skipf("\n!!!!!!!! SKIPPED: %s\n!!!!!!!! Set REDIS_URL to a Redis 7 server; SC_REQUIRE_BROKERS=1 makes this a failure.", msg)
}

// requireRedis returns the URL of the shared test Redis, or skips.
func requireRedis(t testing.TB) string {
	t.Helper()
	u := redisURL()
	opt, err := rueidis.ParseURL(u)
	if err != nil {
		t.Fatalf("REDIS_URL %q: %v", u, err)
	}
	if err := ping(opt.InitAddress[0], 2*time.Second); err != nil {
		unavailable(t, "Redis at %s unreachable: %v", u, err)
	}
	return u
}

// ping sends an inline PING and expects +PONG.
func ping(addr string, timeout time.Duration) error {
	c, err := net.DialTimeout("tcp", addr, timeout)
	if err != nil {
		return err
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(timeout))
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

var prefixSeq atomic.Int64

// uniquePrefix namespaces a test's channels on the shared server.
func uniquePrefix() string {
	return fmt.Sprintf("sctest:%d:%d:%d:", os.Getpid(), time.Now().UnixNano(), prefixSeq.Add(1))
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

// redisServer is a redis-server process started by a test.
type redisServer struct {
	t    testing.TB
	port int
	args []string
	cmd  *exec.Cmd
}

func requireBinary(t testing.TB, name string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	if err != nil {
		unavailable(t, "%s not found in PATH: %v", name, err)
	}
	return p
}

// startRedisServer starts redis-server on 127.0.0.1:port with no
// persistence, and stops it (by PID) when the test ends.
func startRedisServer(t testing.TB, port int, extra ...string) *redisServer {
	t.Helper()
	requireBinary(t, "redis-server")
	s := &redisServer{t: t, port: port}
	s.args = append([]string{"--port", strconv.Itoa(port), "--bind", "127.0.0.1",
		"--save", "", "--appendonly", "no", "--protected-mode", "no"}, extra...)
	s.start()
	t.Cleanup(s.stop)
	return s
}

func (s *redisServer) addr() string { return net.JoinHostPort("127.0.0.1", strconv.Itoa(s.port)) }
func (s *redisServer) url() string  { return "redis://" + s.addr() }

func (s *redisServer) start() {
	s.t.Helper()
	cmd := exec.Command("redis-server", s.args...)
	if err := cmd.Start(); err != nil {
		s.t.Fatalf("start redis-server: %v", err)
	}
	s.cmd = cmd
	deadline := time.Now().Add(20 * time.Second)
	for {
		err := ping(s.addr(), time.Second)
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			s.stop()
			s.t.Fatalf("redis-server on %s not ready: %v", s.addr(), err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// stop kills the process this test started, by PID, and reaps it.
func (s *redisServer) stop() {
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
	deliver  func(channel string, payload []byte) // optional hook, called first
	onChans  func()                               // optional, called at the start of Channels
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

// waitUntil polls cond for up to d.
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

func start(t testing.TB, url string, opts redisbroker.Options, h *handler) *redisbroker.Broker {
	t.Helper()
	b, err := redisbroker.New(url, opts)
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
