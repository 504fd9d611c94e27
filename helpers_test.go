package socketcluster_test

import (
	"context"
	"encoding/json"
	"net"
	"regexp"
	"testing"

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
const wait = sctest.DefaultTimeout

var quietLogger = sctest.QuietLogger

// testServer is a server on 127.0.0.1:0, closed at the end of the test.
type testServer struct {
	*sc.Server
	addr string
}

// newServer starts a server with opts (sctest.StartServer: Logger silenced
// unless given, an "echo" procedure registered first, so that tests can use
// an echo as a barrier). setup runs before the server accepts connections.
func newServer(t testing.TB, opts sc.Options, setup ...func(*sc.Server)) *testServer {
	t.Helper()
	srv, addr := sctest.StartServer(t, opts, setup...)
	return &testServer{Server: srv, addr: addr}
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
	return sctest.Next(t, c)
}

// eventually polls cond until it holds.
func eventually(t testing.TB, what string, cond func() bool) {
	t.Helper()
	sctest.Eventually(t, what, cond)
}

var idPattern = regexp.MustCompile(`"id":"[A-Za-z0-9_-]{20}"`)

// maskID replaces a socket id in a frame with <id>.
func maskID(s string) string { return idPattern.ReplaceAllString(s, `"id":"<id>"`) }

// asError requires err to be an *sc.Error with the given name.
func asError(t testing.TB, err error, name string) *sc.Error {
	t.Helper()
	return sctest.AsError(t, err, name)
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

func ctxT(t testing.TB) context.Context { return sctest.Context(t) }
