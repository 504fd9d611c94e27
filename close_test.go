package socketcluster_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"
	"unicode/utf8"

	sc "github.com/socketcluster-go/socketcluster"
	"github.com/socketcluster-go/socketcluster/internal/fixture"
	"github.com/socketcluster-go/socketcluster/internal/sctest"
	"github.com/socketcluster-go/socketcluster/protocol"
)

// docs/protocol.md §14.7: pings are empty text frames; without pongs the
// server closes with 4001 and an empty reason.
func TestPongTimeout(t *testing.T) {
	t.Parallel()
	ts := newServer(t, sc.Options{PingInterval: 40 * time.Millisecond, PingTimeout: 400 * time.Millisecond})
	discs := sc.Listen[sc.DisconnectionEvent](ts).Consumer()
	defer discs.Stop()
	c := ts.dial(t, nil)
	c.Handshake(nil)
	pings := 0
	for {
		f, err := c.Next(wait)
		if err != nil {
			t.Fatalf("no close frame: %v", err)
		}
		if f.IsPing() {
			pings++
			continue
		}
		if !f.IsClose() || f.CloseCode != 4001 || f.CloseReason != "" {
			t.Fatalf("want close 4001 with empty reason, got %v", f)
		}
		break
	}
	if pings == 0 {
		t.Fatal("no ping before the pong timeout")
	}
	ev := next(t, discs)
	if ev.Code != 4001 || ev.Reason != "Client pong timed out" {
		t.Fatalf("disconnection event %+v", ev)
	}
}

// Pongs keep a socket alive past several pong timeouts.
func TestPongsKeepSocketAlive(t *testing.T) {
	t.Parallel()
	// The pong timeout leaves room for a late pong on a loaded machine; the
	// test outlives it by far.
	ts := newServer(t, sc.Options{PingInterval: 50 * time.Millisecond, PingTimeout: 3 * time.Second})
	c := ts.dial(t, &sctest.Options{AutoPong: true})
	c.Handshake(nil)
	time.Sleep(4500 * time.Millisecond)
	barrier(t, c)
	if ts.ClientsCount() != 1 {
		t.Fatalf("ClientsCount %d", ts.ClientsCount())
	}
}

func TestProtocolVersion1Pings(t *testing.T) {
	t.Parallel()
	ts := newServer(t, sc.Options{ProtocolVersion: 1, PingInterval: 30 * time.Millisecond, PingTimeout: 5 * time.Second})
	c, s := ts.connect(t, nil)
	raws := sc.Listen[sc.RawEvent](s).Consumer()
	defer raws.Stop()
	c.Expect("#1")
	c.SendText("#2")
	// A version-1 server treats "" as a raw message.
	c.SendText("")
	if ev := next(t, raws); string(ev.Message) != "" {
		t.Fatalf("raw %q", ev.Message)
	}
	if s.ProtocolVersion() != 1 {
		t.Fatalf("ProtocolVersion %d", s.ProtocolVersion())
	}
}

// docs/protocol.md §9.3: no #handshake within HandshakeTimeout → 4005.
func TestHandshakeTimeout(t *testing.T) {
	t.Parallel()
	ts := newServer(t, sc.Options{HandshakeTimeout: 150 * time.Millisecond})
	aborts := sc.Listen[sc.ConnectionAbortEvent](ts).Consumer()
	defer aborts.Stop()
	c := ts.dial(t, nil)
	c.ExpectCloseNow(4005, "")
	ev := next(t, aborts)
	if ev.Code != 4005 || ev.Reason != "Did not receive #handshake from client before timeout" {
		t.Fatalf("connectionAbort %+v", ev)
	}
	eventually(t, "pending count back to 0", func() bool { return ts.PendingClientsCount() == 0 })
}

// Anything but #handshake before the handshake closes with 4009.
func TestMessageBeforeHandshake(t *testing.T) {
	t.Parallel()
	ts := newServer(t, sc.Options{})
	for _, tc := range []struct {
		name   string
		binary bool
		msg    string
	}{
		{"subscribe", false, `{"event":"#subscribe","data":{"channel":"a"},"cid":1}`},
		{"transmit", false, `{"event":"chat","data":1}`},
		{"invoke", false, `{"event":"echo","data":1,"cid":1}`},
		{"response", false, `{"rid":1}`},
		{"pong", false, ``},
		{"invalid json", false, `{bad json`},
		{"raw", false, `hello`},
		{"batch of non-packets", false, `[1]`},
		{"batch with a transmit", false, `[{"event":"chat"}]`},
		{"binary raw", true, "\xca\xfe"},
		{"authenticate", false, `{"event":"#authenticate","data":"x","cid":1}`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := ts.dial(t, nil)
			if tc.binary {
				c.SendBinary([]byte(tc.msg))
			} else {
				c.SendText(tc.msg)
			}
			c.ExpectCloseNow(4009, "")
		})
	}
}

// With DisableStrictHandshake, events are processed while connecting but
// #subscribe is refused.
func TestNonStrictHandshake(t *testing.T) {
	t.Parallel()
	notes := make(chan string, 2)
	ts := newServer(t, sc.Options{DisableStrictHandshake: true}, func(srv *sc.Server) {
		srv.HandleReceiver("note", func(_ *sc.Socket, d sc.Data) { notes <- string(d) })
	})
	c := ts.dial(t, nil)
	c.Transmit("note", "early")
	if got := <-notes; got != `"early"` {
		t.Fatalf("note %s", got)
	}
	if r := c.Invoke("echo", 1); r.Raw != `{"rid":1,"data":1}` {
		t.Fatalf("echo before handshake: %s", r.Raw)
	}
	r := c.Invoke("#subscribe", map[string]string{"channel": "a"})
	if r.Raw != `{"rid":2,"error":{"message":"Cannot subscribe socket to a channel before it has completed the handshake","name":"InvalidActionError"}}` {
		t.Fatalf("subscribe before handshake: %s", r.Raw)
	}
	c.Handshake(nil)
	c.Subscribe("a")
}

func TestMalformedHandshakeAndAuthenticate(t *testing.T) {
	t.Parallel()
	ts := newServer(t, sc.Options{})
	t.Run("handshake without cid", func(t *testing.T) {
		c := ts.dial(t, nil)
		c.SendText(`{"event":"#handshake","data":{"authToken":null}}`)
		c.ExpectCloseNow(4008, "")
	})
	t.Run("handshake with a string cid", func(t *testing.T) {
		c := ts.dial(t, nil)
		c.SendText(`{"event":"#handshake","data":{"authToken":null},"cid":"1"}`)
		c.ExpectCloseNow(4008, "")
	})
	t.Run("authenticate without cid", func(t *testing.T) {
		c, s := ts.connect(t, nil)
		errs := sc.Listen[sc.ErrorEvent](s).Consumer()
		defer errs.Stop()
		c.SendText(`{"event":"#authenticate","data":"x"}`)
		c.ExpectCloseNow(4008, "")
		e := asError(t, next(t, errs).Error, "InvalidActionError")
		if e.Message != "Authenticate request was malformatted" {
			t.Fatalf("error %q", e.Message)
		}
	})
}

// docs/protocol.md §3.3.2 and §14.4: a blocked HANDSHAKE_SC action answers
// with the error (statusCode added) then closes with that code.
func TestRejectedHandshake(t *testing.T) {
	t.Parallel()
	t.Run("fixture", func(t *testing.T) {
		ts := newServer(t, sc.Options{}, fixture.Install)
		c := ts.dial(t, &sctest.Options{Query: "rejectsc=1"})
		c.SendText(`{"event":"#handshake","data":{"authToken":null},"cid":1}`)
		c.Expect(`{"rid":1,"error":{"message":"Handshake rejected by the server","name":"HandshakeRejectedError","statusCode":4008}}`)
		c.ExpectCloseNow(4008, "")
		if _, err := sctest.DialErr(t, ts.addr, &sctest.Options{Query: "reject=1"}); err == nil {
			t.Fatal("WebSocket stage rejection did not refuse the upgrade")
		}
	})
	for _, tc := range []struct {
		name string
		err  error
		want string
		code protocol.CloseCode
	}{
		{"named error", sc.NewError("HandshakeRejectedError", "go away"),
			`{"rid":1,"error":{"message":"go away","name":"HandshakeRejectedError","statusCode":4008}}`, 4008},
		{"own status code", sc.NewError("HandshakeRejectedError", "nope sc code").With("statusCode", 4501),
			`{"rid":1,"error":{"message":"nope sc code","name":"HandshakeRejectedError","statusCode":4501}}`, 4501},
		{"silent", sc.ErrBlocked,
			`{"rid":1,"error":{"message":"The handshakeSC AGAction was blocked by handshake middleware","name":"SilentMiddlewareBlockedError","type":"handshake","statusCode":4008}}`, 4008},
		{"silent wrapper", sc.Silent(sc.NewError("Secret", "not for the client")),
			`{"rid":1,"error":{"message":"The handshakeSC AGAction was blocked by handshake middleware","name":"SilentMiddlewareBlockedError","type":"handshake","statusCode":4008}}`, 4008},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ts := newServer(t, sc.Options{}, func(srv *sc.Server) {
				_ = srv.SetMiddleware(sc.MiddlewareHandshake, func(_ context.Context, a *sc.Action) error {
					if a.Type == sc.ActionHandshakeSC {
						return tc.err
					}
					return nil
				})
			})
			aborts := sc.Listen[sc.ConnectionAbortEvent](ts).Consumer()
			defer aborts.Stop()
			c := ts.dial(t, nil)
			c.SendText(`{"event":"#handshake","data":{"authToken":null},"cid":1}`)
			c.Expect(tc.want)
			c.ExpectCloseNow(tc.code, "")
			if ev := next(t, aborts); ev.Code != tc.code {
				t.Fatalf("connectionAbort %+v", ev)
			}
			if ts.ClientsCount() != 0 {
				t.Fatalf("ClientsCount %d", ts.ClientsCount())
			}
		})
	}
}

// A plain error (a JavaScript Error without a name) is an object too: the
// reference adds statusCode 4008 to it (docs/protocol.md §3.3.2); only string
// errors cannot carry one.
func TestRejectedHandshakePlainError(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		err  error
		want string
	}{
		{protocol.StringError("go away"), `{"rid":1,"error":"go away"}`},
		{errors.New("plain"), `{"rid":1,"error":{"message":"plain","statusCode":4008}}`},
	} {
		ts := newServer(t, sc.Options{}, func(srv *sc.Server) {
			_ = srv.SetMiddleware(sc.MiddlewareHandshake, func(_ context.Context, a *sc.Action) error {
				if a.Type == sc.ActionHandshakeSC {
					return tc.err
				}
				return nil
			})
		})
		c := ts.dial(t, nil)
		c.SendText(`{"event":"#handshake","data":{"authToken":null},"cid":1}`)
		if got := c.NextText(); got != tc.want {
			t.Fatalf("got %s, want %s", got, tc.want)
		}
		c.ExpectCloseNow(4008, "")
	}
}

// The HANDSHAKE_WS stage answers 401 with the error message as the body.
func TestRejectedUpgrade(t *testing.T) {
	t.Parallel()
	ts := newServer(t, sc.Options{}, func(srv *sc.Server) {
		_ = srv.SetMiddleware(sc.MiddlewareHandshake, func(_ context.Context, a *sc.Action) error {
			if a.Type == sc.ActionHandshakeWS && a.Request.URL.Query().Get("deny") != "" {
				return sc.NewError("Denied", "no entry").With("statusCode", 4999)
			}
			return nil
		})
	})
	req, _ := http.NewRequest(http.MethodGet, "http://"+ts.addr+"/socketcluster/?deny=1", nil)
	req.Header.Set("Connection", "Upgrade")
	req.Header.Set("Upgrade", "websocket")
	req.Header.Set("Sec-WebSocket-Key", "dGhlIHNhbXBsZSBub25jZQ==")
	req.Header.Set("Sec-WebSocket-Version", "13")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body := make([]byte, 64)
	n, _ := resp.Body.Read(body)
	if resp.StatusCode != 401 || string(body[:n]) != "no entry" {
		t.Fatalf("got %d %q", resp.StatusCode, body[:n])
	}
	ts.dial(t, nil).Handshake(nil)
}

// Socket.Disconnect puts its code and reason on the wire; invalid codes
// are refused and leave the socket open.
func TestSocketDisconnect(t *testing.T) {
	t.Parallel()
	ts := newServer(t, sc.Options{})
	for _, tc := range []struct {
		code         protocol.CloseCode
		reason       string
		wantCode     protocol.CloseCode
		wantReason   string
		eventReason  string
		protocolErr  bool
		protocolText string
	}{
		{0, "", 1000, "", "Socket closed normally", false, ""},
		{1000, "", 1000, "", "Socket closed normally", false, ""},
		{1001, "bye", 1001, "bye", "bye", false, ""},
		{4600, "server reason", 4600, "server reason", "server reason", true, "Socket connection closed with status code 4600 and reason: server reason"},
		{1011, "", 1011, "", "Server encountered an unexpected fatal condition", true, "Server encountered an unexpected fatal condition"},
		{4501, "", 4501, "", "", true, "Socket connection closed with status code 4501"},
		{3000, strings.Repeat("r", 200), 3000, strings.Repeat("r", 123), strings.Repeat("r", 123), true, ""},
		{4000, strings.Repeat("é", 100), 4000, strings.Repeat("é", 61), strings.Repeat("é", 61), true, ""},
	} {
		t.Run(fmt.Sprint(tc.code), func(t *testing.T) {
			c, s := ts.connect(t, nil)
			discs := sc.Listen[sc.DisconnectEvent](s).Consumer()
			errs := sc.Listen[sc.ErrorEvent](s).Consumer()
			ends := sc.Listen[sc.EndEvent](s).Consumer()
			if err := s.Disconnect(tc.code, tc.reason); err != nil {
				t.Fatal(err)
			}
			code, reason, _ := c.ExpectClose()
			if code != tc.wantCode || reason != tc.wantReason {
				t.Fatalf("close frame %d %q, want %d %q", code, reason, tc.wantCode, tc.wantReason)
			}
			if !utf8.ValidString(reason) {
				t.Fatal("truncated reason is not valid UTF-8")
			}
			ev := next(t, discs)
			if ev.Code != tc.wantCode || ev.Reason != tc.eventReason {
				t.Fatalf("disconnect event %+v, want reason %q", ev, tc.eventReason)
			}
			var errEvents []error
			for v := range errs.All(ctxT(t)) {
				errEvents = append(errEvents, v.Error)
			}
			if tc.protocolErr {
				if len(errEvents) != 1 {
					t.Fatalf("error events %v", errEvents)
				}
				e := asError(t, errEvents[0], "SocketProtocolError")
				if tc.protocolText != "" && e.Message != tc.protocolText {
					t.Fatalf("SocketProtocolError %q, want %q", e.Message, tc.protocolText)
				}
				if code, _ := e.Field("code"); fmt.Sprint(code) != fmt.Sprint(int(tc.wantCode)) {
					t.Fatalf("SocketProtocolError code %v", code)
				}
			} else if len(errEvents) != 0 {
				t.Fatalf("no error expected for %d, got %v", tc.wantCode, errEvents)
			}
			next(t, ends)
			if s.State() != sc.StateClosed {
				t.Fatalf("state %s", s.State())
			}
			if err := s.Disconnect(1000, ""); err != nil {
				t.Fatalf("second Disconnect: %v", err)
			}
		})
	}
	t.Run("invalid codes", func(t *testing.T) {
		c, s := ts.connect(t, nil)
		for _, code := range []protocol.CloseCode{-1, 999, 1004, 1005, 1006, 1015, 2999, 5000, 65535} {
			err := s.Disconnect(code, "")
			e := asError(t, err, "InvalidArgumentsError")
			if !strings.Contains(e.Message, fmt.Sprint(int(code))) {
				t.Fatalf("message %q", e.Message)
			}
		}
		if s.State() != sc.StateOpen {
			t.Fatalf("state %s after refused codes", s.State())
		}
		barrier(t, c)
	})
}

// docs/protocol.md §9.4: events on a client-initiated disconnect, and their
// order. Each event is read by a probe consumer; when the probe sees an
// event, a second, unread witness consumer of each earlier event must
// already hold it. (The check can only miss a wrong order, never flag a
// right one.)
func TestDisconnectEventOrder(t *testing.T) {
	t.Parallel()
	ts := newServer(t, sc.Options{})
	c, s := ts.connect(t, nil)
	c.Subscribe("a")
	c.Subscribe("b")

	type backlog interface{ Backpressure() int }
	type step struct {
		name    string
		witness backlog
		probe   func(context.Context) (any, error)
		count   int
	}
	sock := func(name string, n int) step {
		w := s.Listener(name).Consumer()
		p := s.Listener(name).Consumer()
		return step{"socket " + name, w, func(ctx context.Context) (any, error) { return p.Next(ctx) }, n}
	}
	server := func(name string, n int) step {
		w := ts.Listener(name).Consumer()
		p := ts.Listener(name).Consumer()
		t.Cleanup(w.Stop)
		t.Cleanup(p.Stop)
		return step{"server " + name, w, func(ctx context.Context) (any, error) { return p.Next(ctx) }, n}
	}
	steps := []step{
		sock("disconnect", 1),
		server("disconnection", 1),
		sock("close", 1),
		server("closure", 1),
		sock("error", 1),
		server("warning", 1),
		sock("unsubscribe", 2),
		server("unsubscription", 2),
		sock("end", 1),
	}
	// before[i] lists the steps that must have been emitted, with how many
	// items, when step i is seen.
	before := func(i int) map[int]int {
		m := map[int]int{}
		for j := range i {
			m[j] = steps[j].count
		}
		if steps[i].name == "server unsubscription" {
			m[6] = 1 // socket unsubscribe and server unsubscription alternate per channel
		}
		return m
	}
	var mu sync.Mutex
	var violations []string
	items := make([][]any, len(steps))
	var wg sync.WaitGroup
	ctx := ctxT(t)
	for i := range steps {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for k := range steps[i].count {
				v, err := steps[i].probe(ctx)
				if err != nil {
					mu.Lock()
					violations = append(violations, fmt.Sprintf("%s #%d: %v", steps[i].name, k, err))
					mu.Unlock()
					return
				}
				if k > 0 {
					continue
				}
				for j, n := range before(i) {
					if got := steps[j].witness.Backpressure(); got < n {
						mu.Lock()
						violations = append(violations, fmt.Sprintf("%s seen before %s (%d of %d)", steps[i].name, steps[j].name, got, n))
						mu.Unlock()
					}
				}
				mu.Lock()
				items[i] = append(items[i], v)
				mu.Unlock()
			}
		}()
	}
	if err := c.SendClose(4100, "bye"); err != nil {
		t.Fatal(err)
	}
	wg.Wait()
	for _, v := range violations {
		t.Error(v)
	}
	if ev := items[0][0].(sc.DisconnectEvent); ev.Code != 4100 || ev.Reason != "bye" {
		t.Errorf("disconnect %+v", ev)
	}
	if ev := items[1][0].(sc.DisconnectionEvent); ev.Socket != s || ev.Code != 4100 || ev.Reason != "bye" {
		t.Errorf("disconnection %+v", ev)
	}
	if ev := items[3][0].(sc.ClosureEvent); ev.Socket != s || ev.Code != 4100 {
		t.Errorf("closure %+v", ev)
	}
	e := asError(t, items[4][0].(sc.ErrorEvent).Error, "SocketProtocolError")
	if code, _ := e.Field("code"); fmt.Sprint(code) != "4100" {
		t.Errorf("SocketProtocolError code %v", code)
	}
	if s.State() != sc.StateClosed || len(s.Subscriptions()) != 0 {
		t.Errorf("state %s, subscriptions %v", s.State(), s.Subscriptions())
	}
	select {
	case <-s.Done():
	case <-time.After(wait):
		t.Fatal("Done not closed after end")
	}
	if ts.ClientsCount() != 0 {
		t.Errorf("ClientsCount %d", ts.ClientsCount())
	}
}

// The reference's text for application codes: a client closing with an
// application code must give "Socket connection closed with status code
// <code> and reason: <reason>" (docs/protocol.md §5.2, §5.4).
func TestSocketProtocolErrorTextForApplicationCodes(t *testing.T) {
	t.Parallel()
	ts := newServer(t, sc.Options{})
	c, s := ts.connect(t, nil)
	errs := sc.Listen[sc.ErrorEvent](s).Consumer()
	defer errs.Stop()
	discs := sc.Listen[sc.DisconnectEvent](s).Consumer()
	defer discs.Stop()
	_ = c.SendClose(4100, "")
	if ev := next(t, discs); ev.Reason != "" {
		t.Errorf("disconnect reason %q, want empty (4100 has no reference text)", ev.Reason)
	}
	e := asError(t, next(t, errs).Error, "SocketProtocolError")
	if e.Message != "Socket connection closed with status code 4100" {
		t.Errorf("message %q", e.Message)
	}
}

// Server events and the client counts (docs/protocol.md §9.2, §9.5).
func TestServerEventsAndCounts(t *testing.T) {
	t.Parallel()
	ts := newServer(t, sc.Options{})
	hs := sc.Listen[sc.HandshakeEvent](ts).Consumer()
	conns := sc.Listen[sc.ConnectionEvent](ts).Consumer()
	discs := sc.Listen[sc.DisconnectionEvent](ts).Consumer()
	aborts := sc.Listen[sc.ConnectionAbortEvent](ts).Consumer()
	closures := sc.Listen[sc.ClosureEvent](ts).Consumer()
	for _, c := range []interface{ Stop() }{hs, conns, discs, aborts, closures} {
		defer c.Stop()
	}

	c := ts.dial(t, nil)
	h := next(t, hs)
	if h.Socket.State() != sc.StateConnecting || ts.PendingClientsCount() != 1 || ts.ClientsCount() != 0 {
		t.Fatalf("at handshake event: state %s pending %d clients %d", h.Socket.State(), ts.PendingClientsCount(), ts.ClientsCount())
	}
	if _, ok := ts.PendingClients()[h.Socket.ID()]; !ok {
		t.Fatal("socket not in PendingClients")
	}
	connects := sc.Listen[sc.ConnectEvent](h.Socket).Consumer()
	defer connects.Stop()
	resp := c.Handshake(nil)
	ev := next(t, conns)
	if ev.Socket != h.Socket || ev.ID != resp.ID || ev.PingTimeout != 30*time.Second || ev.IsAuthenticated || ev.AuthError != nil {
		t.Fatalf("connection event %+v", ev)
	}
	if ce := next(t, connects); ce.ID != resp.ID || ce.IsAuthenticated {
		t.Fatalf("connect event %+v", ce)
	}
	if ts.ClientsCount() != 1 || ts.PendingClientsCount() != 0 || ev.Socket.State() != sc.StateOpen {
		t.Fatalf("after handshake: clients %d pending %d state %s", ts.ClientsCount(), ts.PendingClientsCount(), ev.Socket.State())
	}
	if got := ts.Clients(); len(got) != 1 || got[resp.ID] != ev.Socket || len(ts.PendingClients()) != 0 {
		t.Fatalf("Clients %v", got)
	}
	if ev.Socket.RemoteAddress() != "127.0.0.1" || ev.Socket.RemotePort() == 0 || ev.Socket.Request().URL.Path != "/socketcluster/" {
		t.Fatalf("remote %s:%d path %s", ev.Socket.RemoteAddress(), ev.Socket.RemotePort(), ev.Socket.Request().URL.Path)
	}

	// A second client that never completes its handshake.
	c2 := ts.dial(t, nil)
	next(t, hs)
	if ts.PendingClientsCount() != 1 || ts.ClientsCount() != 1 {
		t.Fatalf("pending %d clients %d", ts.PendingClientsCount(), ts.ClientsCount())
	}
	_ = c2.SendClose(1000, "")
	if ab := next(t, aborts); ab.Code != 1000 || ab.Reason != "Socket closed normally" {
		t.Fatalf("connectionAbort %+v", ab)
	}
	if cl := next(t, closures); cl.Code != 1000 {
		t.Fatalf("closure %+v", cl)
	}
	eventually(t, "pending 0", func() bool { return ts.PendingClientsCount() == 0 })

	_ = c.SendClose(1001, "")
	if d := next(t, discs); d.Code != 1001 || d.Reason != "Socket was disconnected" || d.Socket != ev.Socket {
		t.Fatalf("disconnection %+v", d)
	}
	next(t, closures)
	eventually(t, "clients 0", func() bool { return ts.ClientsCount() == 0 && len(ts.Clients()) == 0 })
}

// Server.Close sends every socket a 1001 close frame; Terminate drops the
// connections without one.
func TestServerCloseAndTerminate(t *testing.T) {
	t.Parallel()
	t.Run("close", func(t *testing.T) {
		srv, err := sc.New(sc.Options{Logger: quietLogger})
		if err != nil {
			t.Fatal(err)
		}
		ts := startOn(t, srv)
		c := ts.dial(t, nil)
		c.Handshake(nil)
		pending := ts.dial(t, nil)
		eventually(t, "pending socket", func() bool { return srv.PendingClientsCount() == 1 })
		done := make(chan error, 1)
		go func() { done <- srv.Close(context.Background()) }()
		code, reason, _ := c.ExpectClose()
		if code != 1001 {
			t.Fatalf("close frame %d %q", code, reason)
		}
		if code, _, _ := pending.ExpectClose(); code != 1001 {
			t.Fatalf("pending socket close frame %d", code)
		}
		if err := <-done; err != nil {
			t.Fatal(err)
		}
		if srv.ClientsCount() != 0 || srv.PendingClientsCount() != 0 {
			t.Fatalf("counts after Close: %d %d", srv.ClientsCount(), srv.PendingClientsCount())
		}
		if _, err := sctest.DialErr(t, ts.addr, nil); err == nil {
			t.Fatal("dial after Close succeeded")
		}
	})
	t.Run("terminate", func(t *testing.T) {
		srv, err := sc.New(sc.Options{Logger: quietLogger})
		if err != nil {
			t.Fatal(err)
		}
		ts := startOn(t, srv)
		discs := sc.Listen[sc.DisconnectionEvent](srv).Consumer()
		defer discs.Stop()
		c := ts.dial(t, nil)
		c.Handshake(nil)
		srv.Terminate()
		for {
			f, err := c.Next(wait)
			if err != nil {
				break // connection dropped
			}
			if f.IsClose() {
				t.Fatalf("Terminate sent a close frame %v", f)
			}
		}
		if d := next(t, discs); d.Code != 1006 {
			t.Fatalf("disconnection %+v", d)
		}
		_ = srv.Close(context.Background())
	})
}

// startOn serves srv on a new loopback listener; the test closes srv.
func startOn(t *testing.T, srv *sc.Server) *testServer {
	t.Helper()
	ts := &testServer{Server: srv}
	l, err := listen()
	if err != nil {
		t.Fatal(err)
	}
	ts.addr = l.Addr().String()
	served := make(chan struct{})
	go func() { _ = srv.Serve(l); close(served) }()
	t.Cleanup(func() {
		_ = srv.Close(context.Background())
		<-served
	})
	return ts
}

// docs/protocol.md §9.8: after end, "kill" drops the streams' backlogs, "close"
// lets loops finish them, anything else leaves the streams alone.
func TestSocketStreamCleanupMode(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		mode string
		want int // items read before the consumer ends
	}{{"", 0}, {"kill", 0}, {"close", 10}, {"none", -1}} {
		t.Run(tc.mode, func(t *testing.T) {
			ts := newServer(t, sc.Options{SocketStreamCleanupMode: tc.mode})
			c, s := ts.connect(t, nil)
			cons := s.Receiver("r").Consumer()
			defer cons.Stop()
			for i := range 10 {
				c.Transmit("r", i)
			}
			barrier(t, c)
			_ = c.SendClose(1000, "")
			<-s.Done()
			if tc.want < 0 {
				ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
				defer cancel()
				n := 0
				for range cons.All(ctx) {
					n++
				}
				if n != 10 || ctx.Err() == nil {
					t.Fatalf("mode none: read %d, stream ended %v", n, ctx.Err() == nil)
				}
				return
			}
			n := 0
			for range cons.All(ctxT(t)) {
				n++
			}
			if n != tc.want {
				t.Fatalf("read %d items, want %d", n, tc.want)
			}
		})
	}
}

// docs/protocol.md §2.3 step 2: any message restarts the pong timer when a
// quarter of PingTimeout passed, so a busy client needs no pongs.
func TestTrafficKeepsSocketAlive(t *testing.T) {
	t.Parallel()
	// Traffic for more than twice the ping timeout; the timeout leaves room
	// for a stalled test goroutine on a loaded machine.
	ts := newServer(t, sc.Options{PingInterval: time.Hour, PingTimeout: 3 * time.Second})
	c, s := ts.connect(t, nil)
	for end := time.Now().Add(7 * time.Second); time.Now().Before(end); {
		barrier(t, c)
		time.Sleep(50 * time.Millisecond)
	}
	if s.State() != sc.StateOpen {
		t.Fatalf("state %s", s.State())
	}
}

// A close frame without a code is recorded as 1005.
func TestCloseWithoutCode(t *testing.T) {
	t.Parallel()
	ts := newServer(t, sc.Options{})
	aborts := sc.Listen[sc.ConnectionAbortEvent](ts).Consumer()
	defer aborts.Stop()
	c := ts.dial(t, nil)
	_ = c.SendClose(0, "")
	if ev := next(t, aborts); ev.Code != 1005 || ev.Reason != "Socket closed without status code" {
		t.Fatalf("connectionAbort %+v", ev)
	}
}
