package relay

import (
	"context"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"

	sc "github.com/socketcluster-go/socketcluster"
	"github.com/socketcluster-go/socketcluster/client"
	"github.com/socketcluster-go/socketcluster/scc/state"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

const wait = 30 * time.Second

var quiet = slog.New(slog.DiscardHandler)

func serve(t *testing.T, l net.Listener, hs *http.Server) {
	t.Helper()
	done := make(chan struct{})
	go func() { defer close(done); _ = hs.Serve(l) }()
	t.Cleanup(func() { _ = hs.Close(); <-done })
}

func listen(t *testing.T, addr string) net.Listener {
	t.Helper()
	l, err := net.Listen("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	return l
}

func startState(t *testing.T, l net.Listener, o state.Options) *state.Server {
	t.Helper()
	o.Logger = quiet
	s, err := state.New(o)
	if err != nil {
		t.Fatal(err)
	}
	serve(t, l, s.HTTPServer())
	t.Cleanup(func() { _ = s.Close(context.Background()) })
	return s
}

func fastState() state.Options {
	o := state.DefaultOptions()
	o.StartupDelay, o.ScaleOutDelay, o.ScaleBackDelay = 0, 50*time.Millisecond, 50*time.Millisecond
	return o
}

func newRelay(t *testing.T, stateAddr, key string) (*Relay, string) {
	t.Helper()
	l := listen(t, "127.0.0.1:0")
	r, err := New(Options{StateURL: "ws://" + stateAddr + "/socketcluster/", Port: l.Addr().(*net.TCPAddr).Port, AuthKey: key, RetryDelay: 100 * time.Millisecond, Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	serve(t, l, r.HTTPServer())
	t.Cleanup(func() { _ = r.Close(context.Background()) })
	return r, l.Addr().String()
}

func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(wait)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func dial(t *testing.T, addr, key string) (*client.Client, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	q := url.Values{}
	if key != "" {
		q.Set("authKey", key)
	}
	c, err := client.Dial(ctx, "ws://"+addr+"/socketcluster/", &client.Options{Query: q})
	if err == nil {
		t.Cleanup(func() { _ = c.Close(1000, "") })
	}
	return c, err
}

// The relay joins scc-state, relays publishes between workers that give
// the authKey, refuses the others and answers its health check; when it
// closes, scc-state drops it.
func TestRelayJoinsAndRelays(t *testing.T) {
	sl := listen(t, "127.0.0.1:0")
	o := fastState()
	o.AuthKey = "k"
	s := startState(t, sl, o)
	r, addr := newRelay(t, sl.Addr().String(), "k")
	if err := r.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	port := addr[strings.LastIndex(addr, ":")+1:]
	eventually(t, "the relay in the cluster", func() bool {
		b := s.Brokers()
		return len(b) == 1 && b[0] == "ws://[::ffff:127.0.0.1]:"+port
	})
	// scc-state lists the relay before its answer to the join reaches it.
	eventually(t, "the relay's join answered", func() bool { return r.Stats().Joined })

	if _, err := dial(t, addr, ""); err == nil {
		t.Fatal("a worker without the authKey was accepted")
	}
	if r.Stats().AuthRejected != 1 {
		t.Fatalf("%+v", r.Stats())
	}
	sub, err := dial(t, addr, "k")
	if err != nil {
		t.Fatal(err)
	}
	pub, err := dial(t, addr, "k")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	ch, err := sub.Subscribe(ctx, "c")
	if err != nil {
		t.Fatal(err)
	}
	cons := ch.Consumer()
	if err := pub.InvokePublish(ctx, "c", sc.Data(`{"sender":"w","messages":[1]}`)); err != nil {
		t.Fatal(err)
	}
	d, err := cons.Next(ctx)
	if err != nil || string(d) != `{"sender":"w","messages":[1]}` {
		t.Fatalf("%s %v", d, err)
	}

	resp, err := http.Get("http://" + addr + "/health-check")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || string(body) != "OK" {
		t.Fatalf("health check %d %q", resp.StatusCode, body)
	}

	_ = r.Close(context.Background())
	eventually(t, "the relay gone from the cluster", func() bool { return len(s.Brokers()) == 0 })
}

// A state server that refuses the relay's version fails Start at once.
func TestRelayRefusedByState(t *testing.T) {
	sl := listen(t, "127.0.0.1:0")
	o := fastState()
	o.AcceptMajors = []int{10}
	startState(t, sl, o)
	r, _ := newRelay(t, sl.Addr().String(), "")
	err := r.Start(context.Background())
	if err == nil || !strings.Contains(err.Error(), "CompatibilityError") && !strings.Contains(err.Error(), "incompatible") {
		t.Fatalf("Start: %v", err)
	}
}

// An unreachable state server is retried (counted) until it comes up.
func TestRelayRetriesUntilStateIsUp(t *testing.T) {
	sl := listen(t, "127.0.0.1:0")
	stateAddr := sl.Addr().String()
	sl.Close()
	r, _ := newRelay(t, stateAddr, "")
	if err := r.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	eventually(t, "retries", func() bool { return r.Stats().StateFailures >= 2 })
	l, err := net.Listen("tcp", stateAddr)
	if err != nil {
		t.Skipf("port %s taken meanwhile: %v", stateAddr, err)
	}
	s := startState(t, l, fastState())
	eventually(t, "the relay joined", func() bool { return len(s.Brokers()) == 1 && r.Stats().Joined })
}

func TestNewErrors(t *testing.T) {
	if _, err := New(Options{StateURL: "ws://x/socketcluster/"}); err == nil {
		t.Fatal("no port accepted")
	}
	if _, err := New(Options{Port: 1}); err == nil {
		t.Fatal("no state URL accepted")
	}
}
