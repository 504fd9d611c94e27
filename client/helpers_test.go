package client

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"testing"
	"time"

	"go.uber.org/goleak"

	sc "github.com/socketcluster-go/socketcluster"
)

// TestMain fails the run when a test leaves a goroutine behind: every
// client and server is closed by its test's cleanup.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// wait bounds every wait for something asynchronous. It is generous: no
// test asserts how fast anything happens, only that it does.
const wait = 10 * time.Second

var quiet = slog.New(slog.NewTextHandler(io.Discard, nil))

type testServer struct {
	*sc.Server
	url string
}

// newServer starts a server on loopback with an "echo" procedure, closed
// when the test ends (after the test's clients, as cleanups run last in
// first out). setup runs before the server accepts connections.
func newServer(t *testing.T, opts sc.Options, setup ...func(*sc.Server)) *testServer {
	t.Helper()
	if opts.Logger == nil {
		opts.Logger = quiet
	}
	srv, err := sc.New(opts)
	if err != nil {
		t.Fatalf("sc.New: %v", err)
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
			t.Errorf("server Close: %v", err)
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
	return &testServer{Server: srv, url: "ws://" + l.Addr().String() + "/socketcluster/"}
}

// dial connects a client, closed when the test ends.
func (ts *testServer) dial(t *testing.T, o *Options) *Client {
	t.Helper()
	c, err := Dial(ctxT(t), ts.url, o)
	if err != nil {
		t.Fatalf("Dial: %v", err)
	}
	t.Cleanup(func() { _ = c.Close(1000, "") })
	return c
}

// connect dials and returns the client with its server-side socket.
func (ts *testServer) connect(t *testing.T, o *Options) (*Client, *sc.Socket) {
	t.Helper()
	cons := sc.Listen[sc.ConnectionEvent](ts).Consumer()
	defer cons.Stop()
	c := ts.dial(t, o)
	for {
		ev := next(t, cons)
		if ev.ID == c.ID() {
			return c, ev.Socket
		}
	}
}

// nextConnection waits for the server's next connection event.
func nextConnection(t *testing.T, cons *sc.Consumer[sc.ConnectionEvent]) sc.ConnectionEvent {
	t.Helper()
	return next(t, cons)
}

// next reads one item from a server consumer or fails the test.
func next[T any](t *testing.T, c *sc.Consumer[T]) T {
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

// nextC reads one item from a client consumer or fails the test.
func nextC[T any](t *testing.T, c *Consumer[T]) T {
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
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(wait)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

func ctxT(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	t.Cleanup(cancel)
	return ctx
}

// asError requires err to be an *sc.Error with the given name.
func asError(t *testing.T, err error, name string) *sc.Error {
	t.Helper()
	var e *sc.Error
	if !errors.As(err, &e) {
		t.Fatalf("want *Error %s, got %T %v", name, err, err)
	}
	if e.Name != name {
		t.Fatalf("want error name %s, got %q (%v)", name, e.Name, e)
	}
	return e
}

// barrier makes sure the server handled everything c sent before.
func barrier(t *testing.T, c *Client) {
	t.Helper()
	d, err := c.Invoke(ctxT(t), "echo", "barrier")
	if err != nil || string(d) != `"barrier"` {
		t.Fatalf("barrier: %s %v", d, err)
	}
}
