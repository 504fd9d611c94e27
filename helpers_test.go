package socketcluster_test

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"regexp"
	"testing"
	"time"

	"go.uber.org/goleak"

	sc "github.com/socketcluster-go/socketcluster"
	"github.com/socketcluster-go/socketcluster/internal/sctest"
)

// TestMain fails the run when a test leaves a goroutine behind (every
// server is closed by its test's cleanup, every client too).
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// wait bounds every wait for something asynchronous. It is generous: the
// tests never assert on how fast something happens, only that it does.
const wait = 10 * time.Second

var quietLogger = slog.New(slog.NewTextHandler(io.Discard, nil))

// testServer is a server on 127.0.0.1:0, closed at the end of the test.
type testServer struct {
	*sc.Server
	addr string
}

// newServer starts a server with opts (Logger silenced unless given). It
// registers an "echo" procedure first, so that tests can use an echo as a
// barrier: the server handles a socket's messages in order, so once the
// echo's answer is back every earlier message was processed. setup runs
// before the server accepts connections.
func newServer(t testing.TB, opts sc.Options, setup ...func(*sc.Server)) *testServer {
	t.Helper()
	if opts.Logger == nil {
		opts.Logger = quietLogger
	}
	srv, err := sc.New(opts)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	srv.HandleProcedure("echo", func(r *sc.Request) { _ = r.End(r.Data) })
	for _, f := range setup {
		f(srv)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("listen: %v", err)
	}
	served := make(chan error, 1)
	go func() { served <- srv.Serve(l) }()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), wait)
		defer cancel()
		if err := srv.Close(ctx); err != nil {
			t.Errorf("Close: %v", err)
		}
		select {
		case err := <-served:
			if !errors.Is(err, http.ErrServerClosed) {
				t.Errorf("Serve returned %v", err)
			}
		case <-time.After(wait):
			t.Errorf("Serve did not return after Close")
		}
	})
	return &testServer{Server: srv, addr: l.Addr().String()}
}

// dial connects a raw client (no handshake).
func (ts *testServer) dial(t testing.TB, o *sctest.Options) *sctest.Client {
	t.Helper()
	return sctest.Dial(t, ts.addr, o)
}

// connect dials, handshakes and returns the client with its server-side
// socket.
func (ts *testServer) connect(t testing.TB, o *sctest.Options) (*sctest.Client, *sc.Socket) {
	t.Helper()
	cons := sc.Listen[sc.ConnectionEvent](ts).Consumer()
	defer cons.Stop()
	c := ts.dial(t, o)
	c.Handshake(nil)
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	for {
		ev, err := cons.Next(ctx)
		if err != nil {
			t.Fatalf("waiting for the connection event of %s: %v", c.ID, err)
		}
		if ev.ID == c.ID {
			return c, ev.Socket
		}
	}
}

// barrier makes sure the server processed everything c sent before.
func barrier(t testing.TB, c *sctest.Client) {
	t.Helper()
	r := c.Invoke("echo", "barrier")
	if string(r.Data) != `"barrier"` {
		t.Fatalf("barrier: %s", r.Raw)
	}
}

// next reads one item from a consumer or fails the test.
func next[T any](t testing.TB, c *sc.Consumer[T]) T {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	v, err := c.Next(ctx)
	if err != nil {
		var zero T
		t.Fatalf("waiting for %T: %v", zero, err)
	}
	return v
}

// eventually polls cond until it holds.
func eventually(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(wait)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

var idPattern = regexp.MustCompile(`"id":"[A-Za-z0-9_-]{20}"`)

// maskID replaces a socket id in a frame with <id>.
func maskID(s string) string { return idPattern.ReplaceAllString(s, `"id":"<id>"`) }

// asError requires err to be an *sc.Error with the given name.
func asError(t testing.TB, err error, name string) *sc.Error {
	t.Helper()
	var e *sc.Error
	if !errors.As(err, &e) {
		t.Fatalf("want *Error %s, got %T %v", name, err, err)
	}
	if e.Name != name {
		t.Fatalf("want error name %s, got %s (%v)", name, e.Name, e)
	}
	return e
}

// jsonEq compares two JSON texts by value.
func jsonEq(t testing.TB, got, want string) {
	t.Helper()
	var g, w any
	if err := json.Unmarshal([]byte(got), &g); err != nil {
		t.Fatalf("bad JSON %q: %v", got, err)
	}
	if err := json.Unmarshal([]byte(want), &w); err != nil {
		t.Fatalf("bad JSON %q: %v", want, err)
	}
	gb, _ := json.Marshal(g)
	wb, _ := json.Marshal(w)
	if string(gb) != string(wb) {
		t.Fatalf("JSON mismatch\n got: %s\nwant: %s", got, want)
	}
}

func listen() (net.Listener, error) { return net.Listen("tcp", "127.0.0.1:0") }

func ctxT(t testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	t.Cleanup(cancel)
	return ctx
}
