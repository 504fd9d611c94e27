package socketcluster_test

import (
	"net/http"
	"strings"
	"testing"
	"time"

	sc "github.com/socketcluster-go/socketcluster"
	"github.com/socketcluster-go/socketcluster/internal/fixture"
	"github.com/socketcluster-go/socketcluster/internal/sctest"
)

func TestHandshakeResponseGolden(t *testing.T) {
	t.Parallel()
	ts := newServer(t, sc.Options{})
	c := ts.dial(t, nil)
	c.SendText(`{"event":"#handshake","data":{"authToken":null},"cid":1}`)
	got := c.NextText()
	if want := `{"rid":1,"data":{"id":"<id>","pingTimeout":30000,"isAuthenticated":false}}`; maskID(got) != want {
		t.Fatalf("handshake response\n got: %s\nwant: %s", got, want)
	}
}

func TestHandshakeVariants(t *testing.T) {
	t.Parallel()
	ts := newServer(t, sc.Options{PingTimeout: 3 * time.Second})
	for _, tc := range []struct{ name, in, want string }{
		{"empty data", `{"event":"#handshake","data":{},"cid":7}`, `{"rid":7,"data":{"id":"<id>","pingTimeout":3000,"isAuthenticated":false}}`},
		{"no data", `{"event":"#handshake","cid":9}`, `{"rid":9,"data":{"id":"<id>","pingTimeout":3000,"isAuthenticated":false}}`},
		{"fractional cid", `{"event":"#handshake","data":{"authToken":null},"cid":15.5}`, `{"rid":15.5,"data":{"id":"<id>","pingTimeout":3000,"isAuthenticated":false}}`},
		{"negative cid", `{"event":"#handshake","data":{"authToken":null},"cid":-1}`, `{"rid":-1,"data":{"id":"<id>","pingTimeout":3000,"isAuthenticated":false}}`},
		{"cid 1.0", `{"event":"#handshake","data":{"authToken":null},"cid":1.0}`, `{"rid":1,"data":{"id":"<id>","pingTimeout":3000,"isAuthenticated":false}}`},
		{"huge cid", `{"event":"#handshake","data":{"authToken":null},"cid":1e21}`, `{"rid":1e+21,"data":{"id":"<id>","pingTimeout":3000,"isAuthenticated":false}}`},
		{"falsy token", `{"event":"#handshake","data":{"authToken":""},"cid":2}`, `{"rid":2,"data":{"id":"<id>","pingTimeout":3000,"isAuthenticated":false}}`},
		{"leading whitespace", " \r\n\t" + `{"event":"#handshake","cid":3}`, `{"rid":3,"data":{"id":"<id>","pingTimeout":3000,"isAuthenticated":false}}`},
		{"in a batch", `[{"event":"#handshake","cid":4}]`, `{"rid":4,"data":{"id":"<id>","pingTimeout":3000,"isAuthenticated":false}}`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := ts.dial(t, nil)
			c.SendText(tc.in)
			if got := maskID(c.NextText()); got != tc.want {
				t.Fatalf("\n got: %s\nwant: %s", got, tc.want)
			}
		})
	}
}

func TestHandshakeInBinaryFrame(t *testing.T) {
	t.Parallel()
	ts := newServer(t, sc.Options{})
	c := ts.dial(t, nil)
	c.SendBinary([]byte(`{"event":"#handshake","data":{"authToken":null},"cid":1}`))
	f := c.NextFrame()
	if f.Op != 1 { // text
		t.Fatalf("the answer to a binary packet must be a text frame, got %v", f)
	}
	c.SendBinary([]byte(`{"event":"echo","data":"bin","cid":2}`))
	c.Expect(`{"rid":2,"data":"bin"}`)
}

func TestSocketIDsAreUniqueAndURLSafe(t *testing.T) {
	t.Parallel()
	ts := newServer(t, sc.Options{})
	seen := map[string]bool{}
	for range 5 {
		c := ts.dial(t, nil)
		h := c.Handshake(nil)
		if len(h.ID) != 20 || strings.ContainsAny(h.ID, "+/=") || seen[h.ID] {
			t.Fatalf("bad or repeated id %q", h.ID)
		}
		seen[h.ID] = true
	}
	if id := ts.GenerateID(); len(id) != 20 || seen[id] {
		t.Fatalf("GenerateID: %q", id)
	}
}

// A second #handshake is answered with the same id and does not count the
// socket twice (docs/protocol.md §13).
func TestRepeatedHandshake(t *testing.T) {
	t.Parallel()
	ts := newServer(t, sc.Options{})
	c, _ := ts.connect(t, nil)
	c.SendText(`{"event":"#handshake","data":{"authToken":null},"cid":2}`)
	c.Expect(`{"rid":2,"data":{"id":"` + c.ID + `","pingTimeout":30000,"isAuthenticated":false}}`)
	if n := ts.ClientsCount(); n != 1 {
		t.Fatalf("ClientsCount = %d after a repeated handshake", n)
	}
}

// docs/protocol.md §14.1, end to end with raw frames.
func TestTranscriptAnonymousPubSub(t *testing.T) {
	t.Parallel()
	ts := newServer(t, sc.Options{PingTimeout: 3 * time.Second, PingInterval: time.Second}, fixture.Install)
	txs := make(chan string, 4)
	ts.HandleReceiver("tx", func(_ *sc.Socket, d sc.Data) { txs <- string(d) })
	early := make(chan string, 4)
	ts.HandleReceiver("early", func(_ *sc.Socket, d sc.Data) { early <- string(d) })

	conns := sc.Listen[sc.ConnectionEvent](ts).Consumer()
	defer conns.Stop()
	c := ts.dial(t, &sctest.Options{AutoPong: true})
	c.SendText(`{"event":"#handshake","data":{"authToken":null},"cid":1}`)
	resp := c.NextText()
	if maskID(resp) != `{"rid":1,"data":{"id":"<id>","pingTimeout":3000,"isAuthenticated":false}}` {
		t.Fatalf("handshake: %s", resp)
	}
	s := next(t, conns).Socket
	raws := sc.Listen[sc.RawEvent](s).Consumer()
	defer raws.Stop()

	c.SendText(`{"event":"#subscribe","data":{"channel":"high","data":{"d":1}},"cid":2}`)
	c.SendText(`{"event":"#subscribe","data":{"channel":"low"},"cid":3}`)
	c.SendText(`{"event":"early","data":"queued before connect"}`)
	c.Expect(`{"rid":2}`)
	c.Expect(`{"rid":3}`)
	if got := <-early; got != `"queued before connect"` {
		t.Fatalf("early receiver got %s", got)
	}
	c.SendText(`{"event":"echo","data":{"a":1},"cid":4}`)
	c.Expect(`{"rid":4,"data":{"a":1}}`)
	c.SendText(`{"event":"tx","data":[1,2]}`)
	c.SendText(`{"event":"#publish","data":{"channel":"high","data":"ip"},"cid":5}`)
	c.ExpectSet(`{"event":"#publish","data":{"channel":"high","data":"ip"}}`, `{"rid":5}`)
	c.SendText(`{"event":"#publish","data":{"channel":"high","data":"tp"}}`)
	c.SendText(`raw-from-client`)
	c.Expect(`{"event":"#publish","data":{"channel":"high","data":"tp"}}`)
	c.SendText(`{"event":"#unsubscribe","data":"low"}`)
	barrier(t, c)

	if got := <-txs; got != `[1,2]` {
		t.Fatalf("tx receiver got %s", got)
	}
	if ev := next(t, raws); string(ev.Message) != "raw-from-client" || ev.Binary {
		t.Fatalf("raw event %+v", ev)
	}
	if subs := s.Subscriptions(); len(subs) != 1 || subs[0] != "high" {
		t.Fatalf("subscriptions after #unsubscribe: %v", subs)
	}
	if !s.IsSubscribed("high") || s.IsSubscribed("low") || s.ChannelSubscriptionsCount() != 1 {
		t.Fatalf("IsSubscribed/ChannelSubscriptionsCount disagree with %v", s.Subscriptions())
	}
	c.ExpectNothing(100 * time.Millisecond)
}

func TestUpgradeChecks(t *testing.T) {
	t.Parallel()
	ts := newServer(t, sc.Options{Origins: "allowed.example:*"})
	get := func(path string, hdr map[string]string) (*http.Response, string) {
		req, _ := http.NewRequest(http.MethodGet, "http://"+ts.addr+path, nil)
		for k, v := range hdr {
			req.Header.Set(k, v)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var b strings.Builder
		buf := make([]byte, 512)
		for {
			n, err := resp.Body.Read(buf)
			b.Write(buf[:n])
			if err != nil {
				break
			}
		}
		return resp, b.String()
	}
	ws := map[string]string{
		"Connection": "Upgrade", "Upgrade": "websocket",
		"Sec-WebSocket-Key": "dGhlIHNhbXBsZSBub25jZQ==", "Sec-WebSocket-Version": "13",
	}
	with := func(k, v string) map[string]string {
		m := map[string]string{}
		for a, b := range ws {
			m[a] = b
		}
		if v == "" {
			delete(m, k)
		} else {
			m[k] = v
		}
		return m
	}
	for _, tc := range []struct {
		name   string
		path   string
		hdr    map[string]string
		status int
		body   string
	}{
		{"plain http", "/socketcluster/", nil, 501, "Not Implemented"},
		{"no key", "/socketcluster/", with("Sec-WebSocket-Key", ""), 400, "Missing or invalid Sec-WebSocket-Key header"},
		{"bad version", "/socketcluster/", with("Sec-WebSocket-Version", "12"), 400, "Missing or invalid Sec-WebSocket-Version header"},
		{"wrong path", "/socketcluster", ws, 400, "Bad Request"},
		{"no origin", "/socketcluster/", ws, 403, "Failed to authorize socket handshake - Invalid origin: *"},
		{"bad origin", "/socketcluster/", with("Origin", "http://evil.example:80"), 403, "Failed to authorize socket handshake - Invalid origin: http://evil.example:80"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			resp, body := get(tc.path, tc.hdr)
			if resp.StatusCode != tc.status || body != tc.body {
				t.Fatalf("got %d %q, want %d %q", resp.StatusCode, body, tc.status, tc.body)
			}
		})
	}
	c := ts.dial(t, &sctest.Options{Header: http.Header{"Origin": {"http://allowed.example:8080"}}})
	c.Handshake(nil)
}

// The #handshake answer goes out before the connection handlers run: a
// v14 "connection" handler that waits delays neither the answer nor what
// other goroutines send to the socket meanwhile.
func TestHandshakeAnswerNotHeldByConnectionHandler(t *testing.T) {
	t.Parallel()
	release := make(chan struct{})
	defer close(release)
	ts := newServer(t, sc.Options{}, func(srv *sc.Server) {
		_ = srv.On("connection", func(e sc.Event) {
			sock := e.(sc.ConnectionEvent).Socket
			go func() { _ = sock.Transmit("hello", "from another goroutine") }()
			<-release
		})
	})
	c := ts.dial(t, &sctest.Options{AutoPong: true})
	hs := c.Handshake(nil) // fails the test if the answer does not come
	if hs.ID == "" {
		t.Fatal("no socket id in the handshake answer")
	}
	c.Expect(`{"event":"hello","data":"from another goroutine"}`)
}
