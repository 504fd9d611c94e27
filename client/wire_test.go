package client

import (
	"context"
	"net"
	"testing"
	"time"

	"github.com/gobwas/ws"

	sc "github.com/socketcluster-go/socketcluster"
	"github.com/socketcluster-go/socketcluster/internal/sctest"
	"github.com/socketcluster-go/socketcluster/protocol"
)

// fakeServer is a bare WebSocket server that a test drives frame by frame,
// to check the exact frames the client writes (docs/protocol.md §12, §14).
type fakeServer struct {
	t *testing.T
	l net.Listener
}

func newFakeServer(t *testing.T) *fakeServer {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = l.Close() })
	return &fakeServer{t: t, l: l}
}

func (f *fakeServer) url() string { return "ws://" + f.l.Addr().String() + "/socketcluster/" }

// accept takes the next connection and upgrades it.
func (f *fakeServer) accept() *fakeConn {
	f.t.Helper()
	nc, err := f.l.Accept()
	if err != nil {
		f.t.Fatal(err)
	}
	f.t.Cleanup(func() { _ = nc.Close() })
	_ = nc.SetDeadline(time.Now().Add(wait))
	if _, err := ws.Upgrade(nc); err != nil {
		f.t.Fatal(err)
	}
	return &fakeConn{t: f.t, nc: nc}
}

type fakeConn struct {
	t  *testing.T
	nc net.Conn
}

func (fc *fakeConn) read() (ws.OpCode, string) {
	fc.t.Helper()
	fr, err := sctest.ReadFrame(fc.nc)
	if err != nil {
		fc.t.Fatalf("reading a client frame: %v", err)
	}
	if !fr.Header.Masked {
		fc.t.Fatal("client frame not masked")
	}
	ws.Cipher(fr.Payload, fr.Header.Mask, 0)
	return fr.Header.OpCode, string(fr.Payload)
}

// expect reads one text frame and compares it with want.
func (fc *fakeConn) expect(want string) {
	fc.t.Helper()
	op, got := fc.read()
	if op != ws.OpText || got != want {
		fc.t.Fatalf("client sent op %v %q\n                    want %q", op, got, want)
	}
}

func (fc *fakeConn) send(text string) {
	fc.t.Helper()
	if err := ws.WriteFrame(fc.nc, ws.NewTextFrame([]byte(text))); err != nil {
		fc.t.Fatal(err)
	}
}

func (fc *fakeConn) sendClose(code int, reason string) {
	fc.t.Helper()
	if err := ws.WriteFrame(fc.nc, ws.NewCloseFrame(ws.NewCloseFrameBody(ws.StatusCode(code), reason))); err != nil {
		fc.t.Fatal(err)
	}
}

// expectClose reads a close frame.
func (fc *fakeConn) expectClose(code int, reason string) {
	fc.t.Helper()
	op, payload := fc.read()
	gotCode, gotReason := ws.ParseCloseFrameData([]byte(payload))
	if op != ws.OpClose || int(gotCode) != code || gotReason != reason {
		fc.t.Fatalf("client sent op %v %d %q, want close %d %q", op, gotCode, gotReason, code, reason)
	}
}

// TestWireTranscript checks the client's frames against the official
// client's (docs/protocol.md §14.1, §14.2, §14.6): key order, cids that keep
// counting across reconnects, pongs, receipts, resubscription with the
// stored token.
func TestWireTranscript(t *testing.T) {
	t.Parallel()
	const jwt = "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJ1c2VybmFtZSI6ImFsaWNlIn0.c2ln"
	fs := newFakeServer(t)
	type dialed struct {
		c   *Client
		err error
	}
	dc := make(chan dialed, 1)
	go func() {
		c, err := Dial(context.Background(), fs.url(), &Options{AutoReconnect: true})
		dc <- dialed{c, err}
	}()

	s := fs.accept()
	s.expect(`{"event":"#handshake","data":{"authToken":null},"cid":1}`)
	s.send("") // a ping before the handshake answer is answered too
	s.expect("")
	s.send(`{"rid":1,"data":{"id":"first","pingTimeout":30000,"isAuthenticated":false}}`)
	d := <-dc
	if d.err != nil {
		t.Fatal(d.err)
	}
	c := d.c
	defer c.Close(1000, "")
	ctx := ctxT(t)

	subscribed := make(chan error, 1)
	go func() {
		_, err := c.Subscribe(ctx, "high", WithData(map[string]int{"d": 1}))
		subscribed <- err
	}()
	s.expect(`{"event":"#subscribe","data":{"channel":"high","data":{"d":1}},"cid":2}`)
	s.send(`{"rid":2}`)
	if err := <-subscribed; err != nil {
		t.Fatal(err)
	}

	if err := c.Transmit("tx", []int{1, 2}); err != nil {
		t.Fatal(err)
	}
	s.expect(`{"event":"tx","data":[1,2]}`)
	if err := c.Transmit("noteUndef", sc.Undefined); err != nil {
		t.Fatal(err)
	}
	s.expect(`{"event":"noteUndef"}`)

	invoked := make(chan string, 1)
	go func() {
		d, err := c.Invoke(ctx, "echo", map[string]any{"a": 1})
		if err != nil {
			invoked <- err.Error()
			return
		}
		invoked <- string(d)
	}()
	s.expect(`{"event":"echo","data":{"a":1},"cid":3}`)
	s.send(`{"rid":99,"data":"unknown rids are ignored"}`)
	s.send(`{"rid":3,"data":{"a":1}}`)
	if got := <-invoked; got != `{"a":1}` {
		t.Fatalf("invoke got %s", got)
	}
	if err := c.TransmitPublish("high", "tp"); err != nil {
		t.Fatal(err)
	}
	s.expect(`{"event":"#publish","data":{"channel":"high","data":"tp"}}`)

	// #setAuthToken with a receipt.
	s.send(`{"event":"#setAuthToken","cid":1,"data":{"token":"` + jwt + `"}}`)
	s.expect(`{"rid":1}`)
	if c.AuthToken()["username"] != "alice" {
		t.Fatalf("token payload %v", c.AuthToken())
	}

	// The server closes with 4000: the client answers the close frame and
	// reconnects at once with its stored token, the cid counter going on.
	s.sendClose(4000, "")
	s.expectClose(4000, "")
	s = fs.accept()
	s.expect(`{"event":"#handshake","data":{"authToken":"` + jwt + `"},"cid":4}`)
	s.send(`[{"rid":4,"data":{"id":"second","pingTimeout":30000,"isAuthenticated":true}}]`)
	s.expect(`{"event":"#subscribe","data":{"channel":"high","data":{"d":1}},"cid":5}`)
	s.send(`{"rid":5}`)
	eventually(t, "the resubscription", func() bool { return c.IsSubscribed("high", false) })
	if c.ID() != "second" || c.AuthState() != protocol.Authenticated {
		t.Fatalf("after reconnect: %s %s", c.ID(), c.AuthState())
	}

	s.send(`{"event":"#setAuthToken","cid":2}`)
	s.expect(`{"rid":2,"error":{"message":"No token data provided by #setAuthToken event","name":"InvalidMessageError"}}`)
	s.send(`{"event":"#removeAuthToken","cid":3}`)
	s.expect(`{"rid":3}`)
	if c.AuthState() != protocol.Unauthenticated || c.StoredAuthToken() != "" {
		t.Fatal("still authenticated after #removeAuthToken")
	}

	if err := c.Channel("high").Unsubscribe(); err != nil {
		t.Fatal(err)
	}
	s.expect(`{"event":"#unsubscribe","data":"high"}`)
	if err := c.Deauthenticate(); err != nil {
		t.Fatal(err)
	}
	s.expect(`{"event":"#removeAuthToken"}`)

	closed := make(chan error, 1)
	go func() { closed <- c.Close(4100, "bye") }()
	s.expectClose(4100, "bye")
	s.sendClose(4100, "bye")
	if err := <-closed; err != nil {
		t.Fatal(err)
	}
}

// TestHandshakeTimeout: no answer to #handshake within AckTimeout closes
// the connection with 4003.
func TestHandshakeTimeout(t *testing.T) {
	t.Parallel()
	fs := newFakeServer(t)
	errc := make(chan error, 1)
	go func() {
		_, err := Dial(context.Background(), fs.url(), &Options{AckTimeout: 100 * time.Millisecond})
		errc <- err
	}()
	s := fs.accept()
	s.expect(`{"event":"#handshake","data":{"authToken":null},"cid":1}`)
	s.expectClose(4003, "")
	s.sendClose(4003, "")
	if err := <-errc; err == nil {
		t.Fatal("Dial succeeded")
	} else {
		asError(t, err, "TimeoutError")
	}
}
