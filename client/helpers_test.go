package client

import (
	"context"
	"testing"

	"go.uber.org/goleak"

	sc "github.com/socketcluster-go/socketcluster"
	"github.com/socketcluster-go/socketcluster/internal/sctest"
)

// TestMain fails the run when a test leaves a goroutine behind: every
// client and server is closed by its test's cleanup.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// wait bounds every wait for something asynchronous. It is generous: no
// test asserts how fast anything happens, only that it does.
const wait = sctest.DefaultTimeout

type testServer struct {
	*sc.Server
	url string
}

// newServer starts a server on loopback with an "echo" procedure
// (sctest.StartServer), closed when the test ends (after the test's
// clients, as cleanups run last in first out). setup runs before the server
// accepts connections.
func newServer(t *testing.T, opts sc.Options, setup ...func(*sc.Server)) *testServer {
	t.Helper()
	srv, addr := sctest.StartServer(t, opts, setup...)
	return &testServer{Server: srv, url: "ws://" + addr + "/socketcluster/"}
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

// next reads one item from a consumer (of the server or of the client: the
// same type) or fails the test.
func next[T any](t *testing.T, c *Consumer[T]) T {
	t.Helper()
	return sctest.Next(t, c)
}

// eventually polls cond until it holds.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	sctest.Eventually(t, what, cond)
}

func ctxT(t *testing.T) context.Context { return sctest.Context(t) }

// asError requires err to be an *sc.Error with the given name.
func asError(t *testing.T, err error, name string) *sc.Error {
	t.Helper()
	return sctest.AsError(t, err, name)
}

// barrier makes sure the server handled everything c sent before.
func barrier(t *testing.T, c *Client) {
	t.Helper()
	d, err := c.Invoke(ctxT(t), "echo", "barrier")
	if err != nil || string(d) != `"barrier"` {
		t.Fatalf("barrier: %s %v", d, err)
	}
}
