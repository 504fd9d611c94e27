package socketcluster_test

// Tests of API items of the reference documents that had none: server and
// socket events, stream clean-up methods, backpressure getters and
// consumer stats, the exchange, and a few options.

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"

	sc "github.com/socketcluster-go/socketcluster"
	"github.com/socketcluster-go/socketcluster/auth"
	scclient "github.com/socketcluster-go/socketcluster/client"
	"github.com/socketcluster-go/socketcluster/internal/sctest"
	"github.com/socketcluster-go/socketcluster/protocol"
	"github.com/socketcluster-go/socketcluster/stream"
)

func TestServerDeauthenticationAndStateChangeEvents(t *testing.T) {
	t.Parallel()
	ts := newServer(t, sc.Options{AuthKey: authKey})
	deauths := sc.Listen[sc.DeauthenticationEvent](ts).Consumer()
	defer deauths.Stop()
	changes := sc.Listen[sc.AuthenticationStateChangeEvent](ts).Consumer()
	defer changes.Stop()
	c, s := ts.connect(t, &sctest.Options{AutoPong: true})

	if err := s.SetAuthToken(context.Background(), sc.AuthToken{"user": "ann"}, nil); err != nil {
		t.Fatal(err)
	}
	ch := next(t, changes)
	if ch.Socket != s || ch.OldAuthState != protocol.Unauthenticated || ch.NewAuthState != protocol.Authenticated || ch.AuthToken["user"] != "ann" {
		t.Fatalf("authenticationStateChange on login: %+v", ch)
	}
	c.ExpectMatch(`^\{"event":"#setAuthToken","data":\{"token":"[^"]+"\}\}$`)

	s.Deauthenticate()
	d := next(t, deauths)
	if d.Socket != s || d.OldAuthToken["user"] != "ann" {
		t.Fatalf("deauthentication: %+v", d)
	}
	ch = next(t, changes)
	if ch.Socket != s || ch.OldAuthState != protocol.Authenticated || ch.NewAuthState != protocol.Unauthenticated || ch.AuthToken != nil {
		t.Fatalf("authenticationStateChange on logout: %+v", ch)
	}
	c.Expect(`{"event":"#removeAuthToken"}`)
}

// socketFor dials a raw client and returns it with its server socket
// before the handshake (from the server's handshake event).
func socketFor(t *testing.T, ts *testServer, o *sctest.Options) (*sctest.Client, *sc.Socket) {
	t.Helper()
	hs := sc.Listen[sc.HandshakeEvent](ts).Consumer()
	defer hs.Stop()
	c := ts.dial(t, o)
	return c, next(t, hs).Socket
}

func TestSocketConnectAbortEvent(t *testing.T) {
	t.Parallel()
	ts := newServer(t, sc.Options{})
	c, s := socketFor(t, ts, nil)
	aborts := sc.Listen[sc.ConnectAbortEvent](s).Consumer()
	defer aborts.Stop()
	disconnects := sc.Listen[sc.DisconnectEvent](s).Consumer()
	defer disconnects.Stop()
	_ = c.SendClose(4321, "never mind")
	ev := next(t, aborts)
	if ev.Code != 4321 || ev.Reason != "never mind" {
		t.Fatalf("connectAbort %+v", ev)
	}
	<-s.Done()
	if disconnects.Backpressure() != 0 {
		t.Fatal("a socket closed while connecting emitted disconnect")
	}
}

func TestSocketBadAuthTokenEvent(t *testing.T) {
	t.Parallel()
	ts := newServer(t, sc.Options{AuthKey: authKey})
	c, s := socketFor(t, ts, &sctest.Options{AutoPong: true})
	bad := sc.Listen[sc.BadAuthTokenEvent](s).Consumer()
	defer bad.Stop()
	token := sign(t, []byte("another key"), map[string]any{"user": "eve"})
	if hs := c.Handshake(token); hs.IsAuthenticated {
		t.Fatalf("token signed with another key accepted: %+v", hs)
	}
	ev := next(t, bad)
	if ev.SignedAuthToken != token {
		t.Fatalf("badAuthToken token %q", ev.SignedAuthToken)
	}
	var te *auth.TokenError
	if !errors.As(ev.AuthError, &te) || te.Name != auth.NameInvalid || !te.IsBadToken {
		t.Fatalf("badAuthToken error %#v", ev.AuthError)
	}
}

func TestCloseAndKillAllReceiversAndProcedures(t *testing.T) {
	t.Parallel()
	ts := newServer(t, sc.Options{})
	c, s := ts.connect(t, &sctest.Options{AutoPong: true})
	ra, rb := s.Receiver("a").Consumer(), s.Receiver("b").Consumer()
	pa, pb := s.Procedure("pa").Consumer(), s.Procedure("pb").Consumer()
	c.Transmit("a", 1)
	c.Transmit("b", 2)
	c.SendText(sctest.EventPacket("pa", 1, c.NextCid()))
	c.SendText(sctest.EventPacket("pb", 2, c.NextCid()))
	barrier(t, c)

	ctx := sctest.Context(t)
	// Close: the backlog is still read, then the consumers end.
	s.CloseAllReceivers()
	for _, rc := range []*sc.Consumer[sc.Data]{ra, rb} {
		if _, err := rc.Next(ctx); err != nil {
			t.Fatalf("backlog after CloseAllReceivers: %v", err)
		}
		if _, err := rc.Next(ctx); !errors.Is(err, stream.ErrEnded) {
			t.Fatalf("after the backlog: %v", err)
		}
	}
	// Kill: the backlog is dropped.
	s.KillAllProcedures()
	for _, pc := range []*sc.Consumer[*sc.Request]{pa, pb} {
		if _, err := pc.Next(ctx); !errors.Is(err, stream.ErrEnded) {
			t.Fatalf("after KillAllProcedures: %v", err)
		}
	}
	// CloseAllProcedures and KillAllReceivers, on fresh consumers.
	pc := s.Procedure("pc").Consumer()
	rc := s.Receiver("c").Consumer()
	cid := c.NextCid()
	c.SendText(sctest.EventPacket("pc", 3, cid))
	c.Transmit("c", 3)
	barrier(t, c)
	s.CloseAllProcedures()
	s.KillAllReceivers()
	req, err := pc.Next(ctx)
	if err != nil {
		t.Fatalf("backlog after CloseAllProcedures: %v", err)
	}
	_ = req.End("late")
	if r := c.AwaitResponse(cid); string(r.Data) != `"late"` {
		t.Fatalf("answer from a closed procedure's backlog: %s", r.Raw)
	}
	if _, err := rc.Next(ctx); !errors.Is(err, stream.ErrEnded) {
		t.Fatalf("after KillAllReceivers: %v", err)
	}
}

func TestBackpressureGetters(t *testing.T) {
	t.Parallel()
	release := make(chan struct{})
	entered := make(chan struct{}, 1)
	ts := newServer(t, sc.Options{}, func(srv *sc.Server) {
		srv.HandleReceiver("hold", func(*sc.Socket, sc.Data) {
			entered <- struct{}{}
			<-release
		})
	})
	// Inbound: a message being processed is received, not processed.
	c, s := ts.connect(t, &sctest.Options{AutoPong: true, QueueSize: 1})
	c.Transmit("hold", nil)
	<-entered
	if s.InboundBackpressure() < 1 || s.Backpressure() < 1 {
		t.Fatalf("inbound backpressure %d while a message is processed", s.InboundBackpressure())
	}
	close(release)
	barrier(t, c)
	eventually(t, "inbound backpressure back to 0", func() bool { return s.InboundBackpressure() == 0 })

	// Procedures: three invokes nobody reads yet.
	pc := s.Procedure("slow").Consumer()
	defer pc.Stop()
	for i := 0; i < 3; i++ {
		c.SendText(sctest.EventPacket("slow", i, c.NextCid()))
	}
	barrier(t, c)
	if s.AllProceduresBackpressure() != 3 || s.ProcedureConsumerBackpressure(pc.ID()) != 3 {
		t.Fatalf("procedure backpressure %d, consumer %d", s.AllProceduresBackpressure(), s.ProcedureConsumerBackpressure(pc.ID()))
	}
	stats := s.AllProceduresConsumerStats()
	if len(stats) != 1 || stats[0].ID != pc.ID() || stats[0].Backpressure != 3 || stats[0].Stream != "slow" {
		t.Fatalf("consumer stats %+v", stats)
	}
	if !s.HasAnyProcedureConsumer(pc.ID()) || !s.HasProcedureConsumer("slow", pc.ID()) {
		t.Fatal("HasProcedureConsumer")
	}

	// Outbound: a client that reads nothing (its queue holds one frame)
	// leaves frames queued on the server.
	// More frames until some stay queued: a frame seen queued for a moment
	// may still go to the kernel's buffers, which hold several MB.
	big := strings.Repeat("x", 1<<20)
	sent := 0
	eventually(t, "outbound backpressure", func() bool {
		if s.OutboundBackpressure() > 0 {
			return true
		}
		if sent < 200 {
			_ = s.Transmit("big", big)
			sent++
		}
		return false
	})
	if s.Backpressure() < s.OutboundBackpressure() {
		t.Fatalf("Backpressure %d below the outbound %d", s.Backpressure(), s.OutboundBackpressure())
	}
	deadline := time.Now().Add(wait)
	for s.OutboundBackpressure() > 0 && time.Now().Before(deadline) {
		// A frame, or a pause while the server's count catches up with
		// the last write.
		if _, err := c.Next(100 * time.Millisecond); err != nil && !errors.Is(err, sctest.ErrTimeout) {
			t.Fatalf("reading the queued frames: %v", err)
		}
	}
	if s.OutboundBackpressure() != 0 {
		t.Fatalf("outbound backpressure %d after reading everything", s.OutboundBackpressure())
	}
}

func TestExchangePublishAndSocketExchange(t *testing.T) {
	t.Parallel()
	ts := newServer(t, sc.Options{})
	c, s := ts.connect(t, &sctest.Options{AutoPong: true})
	if s.Exchange() != ts.Exchange() {
		t.Fatal("Socket.Exchange is not the server's exchange")
	}
	c.Subscribe("news")
	if err := s.Exchange().Publish(context.Background(), "news", map[string]int{"n": 1}); err != nil {
		t.Fatal(err)
	}
	c.Expect(`{"event":"#publish","data":{"channel":"news","data":{"n":1}}}`)
	// The exchange's own subscription gets it too.
	ch, err := ts.Exchange().Subscribe(context.Background(), "news")
	if err != nil {
		t.Fatal(err)
	}
	cons := ch.Consumer()
	defer cons.Stop()
	if err := ts.Exchange().Publish(context.Background(), "news", "two"); err != nil {
		t.Fatal(err)
	}
	if d := next(t, cons); string(d) != `"two"` {
		t.Fatalf("exchange subscriber got %s", d)
	}
	c.Expect(`{"event":"#publish","data":{"channel":"news","data":"two"}}`)
}

func TestCustomPath(t *testing.T) {
	t.Parallel()
	ts := newServer(t, sc.Options{Path: "/rt/"})
	if ts.Path() != "/rt/" {
		t.Fatalf("Path() %q", ts.Path())
	}
	c := ts.dial(t, &sctest.Options{Path: "/rt/", AutoPong: true})
	c.Handshake(nil)
	barrier(t, c)
	if _, err := sctest.DialErr(nil, ts.addr, &sctest.Options{Path: "/socketcluster/"}); err == nil {
		t.Fatal("the default path still upgrades with a custom Path")
	}
}

func TestPingTimeoutDisabled(t *testing.T) {
	// Not parallel: 300 ms ping timings.
	ts := newServer(t, sc.Options{PingTimeoutDisabled: true, PingInterval: 50 * time.Millisecond, PingTimeout: 300 * time.Millisecond})
	c := ts.dial(t, nil) // never answers pings
	if hs := c.Handshake(nil); hs.PingTimeout != 300 {
		t.Fatalf("handshake pingTimeout %v", hs.PingTimeout)
	}
	// Many ping intervals and pong timeouts later: no ping, still open.
	c.ExpectNothing(time.Second)
	if r := c.Invoke("echo", 1); string(r.Data) != "1" {
		t.Fatalf("echo after a second of silence: %s", r.Raw)
	}
}

// prefixCodec is JSON with a "~" in front of every message, enough to
// tell that the server uses Options.Codec both ways.
type prefixCodec struct{}

func (prefixCodec) Encode(v any) ([]byte, bool, error) {
	b, err := json.Marshal(v)
	return append([]byte("~"), b...), false, err
}

func (prefixCodec) Decode(frame []byte, _ bool) (any, error) {
	rest, ok := bytes.CutPrefix(frame, []byte("~"))
	if !ok {
		return nil, errors.New("no ~ prefix")
	}
	var v any
	err := json.Unmarshal(rest, &v)
	return v, err
}

func TestOptionsCodec(t *testing.T) {
	t.Parallel()
	ts := newServer(t, sc.Options{Codec: prefixCodec{}})
	c := ts.dial(t, &sctest.Options{AutoPong: true})
	c.SendText(`~{"event":"#handshake","data":{},"cid":1}`)
	if f := c.NextText(); !strings.HasPrefix(f, `~{`) || !strings.Contains(f, `"rid":1`) {
		t.Fatalf("handshake response through the codec: %s", f)
	}
	c.SendText(`~{"event":"echo","data":"coded","cid":2}`)
	if f := c.NextText(); f != `~{"data":"coded","rid":2}` {
		t.Fatalf("echo through the codec: %s", f)
	}
	// Plain JSON is not what this codec reads: an error event, no answer.
	c.SendText(`{"event":"echo","data":"plain","cid":3}`)
	c.ExpectNothing(300 * time.Millisecond)
}

func TestSocketSecureHostSourcePort(t *testing.T) {
	t.Parallel()
	ts := newServer(t, sc.Options{})
	_, s := ts.connect(t, nil)
	_, port, _ := net.SplitHostPort(ts.addr)
	if s.Secure() || s.Host() != "127.0.0.1" || strconv.Itoa(s.SourcePort()) != port {
		t.Fatalf("plain: secure %v host %q port %d, want false 127.0.0.1 %s", s.Secure(), s.Host(), s.SourcePort(), port)
	}
	// The Host header decides, as the client sent it; no port means the
	// scheme's default.
	for _, tc := range []struct {
		header, host string
		port         int
	}{
		{"chat.example.com", "chat.example.com", 80},
		{"chat.example.com:8443", "chat.example.com", 8443},
		{"[::1]:9000", "::1", 9000},
		{"chat.example.com:99999", "chat.example.com", 80},
	} {
		s := upgradeWithHost(t, ts, tc.header)
		if s.Host() != tc.host || s.SourcePort() != tc.port || s.Secure() {
			t.Fatalf("Host %q: host %q port %d secure %v", tc.header, s.Host(), s.SourcePort(), s.Secure())
		}
		_ = s.Request() // parsed from now on: the same answers
		if s.Host() != tc.host || s.SourcePort() != tc.port {
			t.Fatalf("Host %q after Request: %q %d", tc.header, s.Host(), s.SourcePort())
		}
	}

	// Over TLS.
	srv, err := sc.New(sc.Options{Logger: quietLogger})
	if err != nil {
		t.Fatal(err)
	}
	hs := httptest.NewTLSServer(srv)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), wait)
		defer cancel()
		_ = srv.Close(ctx)
		hs.Close()
	})
	conns := sc.Listen[sc.ConnectionEvent](srv).Consumer()
	defer conns.Stop()
	u, _ := url.Parse(hs.URL)
	cl, err := scclient.Dial(sctest.Context(t), "wss://"+u.Host+"/socketcluster/", &scclient.Options{TLSConfig: hs.Client().Transport.(*http.Transport).TLSClientConfig})
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = cl.Close(1000, "") }()
	s = next(t, conns).Socket
	if !s.Secure() || s.Request().TLS == nil || s.Request().TLS.Version == 0 || s.Host() != "127.0.0.1" || strconv.Itoa(s.SourcePort()) != u.Port() {
		t.Fatalf("TLS: secure %v host %q port %d, want true 127.0.0.1 %s", s.Secure(), s.Host(), s.SourcePort(), u.Port())
	}
}

// upgradeWithHost opens a WebSocket with the given Host header and returns its
// socket (connecting).
func upgradeWithHost(t *testing.T, ts *testServer, host string) *sc.Socket {
	t.Helper()
	hs := sc.Listen[sc.HandshakeEvent](ts).Consumer()
	defer hs.Stop()
	conn, err := net.Dial("tcp", ts.addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = conn.Close() })
	_, _ = conn.Write([]byte("GET /socketcluster/ HTTP/1.1\r\nHost: " + host + "\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n" +
		"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"))
	line := make([]byte, 12)
	if _, err := io.ReadFull(conn, line); err != nil || string(line) != "HTTP/1.1 101" {
		t.Fatalf("upgrade with Host %q: %q %v", host, line, err)
	}
	return next(t, hs).Socket
}
