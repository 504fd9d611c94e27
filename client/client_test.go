package client

import (
	"context"
	"errors"
	"testing"
	"time"

	sc "github.com/socketcluster-go/socketcluster"
	"github.com/socketcluster-go/socketcluster/protocol"
	"github.com/socketcluster-go/socketcluster/stream"
)

func TestHandshake(t *testing.T) {
	t.Parallel()
	ts := newServer(t, sc.Options{PingTimeout: 7 * time.Second})
	c, s := ts.connect(t, nil)
	if c.State() != StateOpen {
		t.Fatalf("state %s", c.State())
	}
	if c.ID() == "" || c.ID() != s.ID() {
		t.Fatalf("id %q, server socket %q", c.ID(), s.ID())
	}
	if c.PingTimeout() != 7*time.Second {
		t.Fatalf("ping timeout %v", c.PingTimeout())
	}
	if c.AuthState() != protocol.Unauthenticated || c.SignedAuthToken() != "" || c.AuthToken() != nil {
		t.Fatalf("auth: %s %q %v", c.AuthState(), c.SignedAuthToken(), c.AuthToken())
	}
}

func TestDialURL(t *testing.T) {
	t.Parallel()
	ts := newServer(t, sc.Options{})
	// An http URL without a path reaches /socketcluster/; the query and
	// headers reach the server.
	cons := sc.Listen[sc.ConnectionEvent](ts).Consumer()
	defer cons.Stop()
	u := "http" + ts.url[len("ws"):len(ts.url)-len("/socketcluster/")]
	c, err := Dial(ctxT(t), u, &Options{
		Query:  map[string][]string{"room": {"7"}},
		Header: map[string][]string{"X-Test": {"yes"}},
	})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close(1000, "")
	ev := nextConnection(t, cons)
	r := ev.Socket.Request()
	if r.URL.Path != "/socketcluster/" || r.URL.Query().Get("room") != "7" || r.Header.Get("X-Test") != "yes" {
		t.Fatalf("request %s %v", r.URL, r.Header)
	}
	if _, err := Dial(ctxT(t), "ftp://x/", nil); err == nil {
		t.Fatal("ftp URL accepted")
	}
}

func TestInvoke(t *testing.T) {
	t.Parallel()
	ts := newServer(t, sc.Options{}, func(srv *sc.Server) {
		srv.HandleProcedure("undef", func(r *sc.Request) { _ = r.End(sc.Undefined) })
		srv.HandleProcedure("null", func(r *sc.Request) { _ = r.End(nil) })
		srv.HandleProcedure("fail", func(r *sc.Request) {
			_ = r.Error(sc.NewError("FailError", "it failed").With("extra", map[string]any{"a": 1}).With("n", 2))
		})
		srv.HandleProcedure("plain", func(r *sc.Request) { _ = r.Error(errors.New("plain")) })
		srv.HandleProcedure("str", func(r *sc.Request) { _ = r.Error(protocol.StringError("just a string")) })
		srv.HandleProcedure("never", func(r *sc.Request) {})
	})
	c := ts.dial(t, &Options{AckTimeout: 300 * time.Millisecond})
	ctx := ctxT(t)

	d, err := c.Invoke(ctx, "echo", map[string]any{"a": 1})
	if err != nil || string(d) != `{"a":1}` {
		t.Fatalf("echo: %s %v", d, err)
	}
	d, err = c.Invoke(ctx, "echo", sc.Data(`[1,"x",null]`))
	if err != nil || string(d) != `[1,"x",null]` {
		t.Fatalf("echo raw: %s %v", d, err)
	}
	// No data sent: the server echoes undefined, which comes back absent.
	d, err = c.Invoke(ctx, "echo", sc.Undefined)
	if err != nil || d != nil {
		t.Fatalf("echo undefined: %q %v", d, err)
	}
	d, err = c.Invoke(ctx, "undef", nil)
	if err != nil || d != nil || !d.IsAbsent() {
		t.Fatalf("undef: %q %v", d, err)
	}
	d, err = c.Invoke(ctx, "null", nil)
	if err != nil || d == nil || !d.IsNull() {
		t.Fatalf("null: %q %v", d, err)
	}

	_, err = c.Invoke(ctx, "fail", nil)
	e := asError(t, err, "FailError")
	if e.Message != "it failed" || len(e.Fields) != 2 || e.Fields[0].Key != "extra" || e.Fields[1].Key != "n" {
		t.Fatalf("fail: %#v", e)
	}
	if v, _ := e.Field("extra"); v.(map[string]any)["a"] != float64(1) {
		t.Fatalf("extra field %v", v)
	}
	if !errors.Is(err, &sc.Error{Name: "FailError"}) {
		t.Fatal("errors.Is by name")
	}

	_, err = c.Invoke(ctx, "plain", nil)
	if e := asError(t, err, ""); e.Message != "plain" {
		t.Fatalf("plain: %#v", e)
	}
	_, err = c.Invoke(ctx, "str", nil)
	var ve *protocol.ValueError
	if !errors.As(err, &ve) || string(ve.Value) != `"just a string"` {
		t.Fatalf("string error: %T %v", err, err)
	}

	_, err = c.Invoke(ctx, "never", 1)
	if e := asError(t, err, "TimeoutError"); e.Message != "Event response for never event timed out" {
		t.Fatalf("timeout: %v", e)
	}

	cctx, cancel := context.WithCancel(ctx)
	cancel()
	if _, err := c.Invoke(cctx, "never", 1); !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled ctx: %v", err)
	}
	// The client still works after timeouts.
	barrier(t, c)
}

func TestTransmitBothWays(t *testing.T) {
	t.Parallel()
	got := make(chan sc.Data, 2)
	ts := newServer(t, sc.Options{}, func(srv *sc.Server) {
		srv.HandleReceiver("chat", func(_ *sc.Socket, d sc.Data) { got <- d })
	})
	c, s := ts.connect(t, nil)

	if err := c.Transmit("chat", map[string]string{"text": "hi"}); err != nil {
		t.Fatal(err)
	}
	if err := c.Transmit("chat", sc.Undefined); err != nil {
		t.Fatal(err)
	}
	if d := <-got; string(d) != `{"text":"hi"}` {
		t.Fatalf("server got %s", d)
	}
	if d := <-got; d != nil {
		t.Fatalf("server got %q for undefined", d)
	}

	note := c.Receiver("note").Consumer()
	defer note.Stop()
	if err := s.Transmit("note", 5); err != nil {
		t.Fatal(err)
	}
	if err := s.Transmit("note", sc.Undefined); err != nil {
		t.Fatal(err)
	}
	if d := next(t, note); string(d) != "5" {
		t.Fatalf("client got %s", d)
	}
	if d := next(t, note); d != nil {
		t.Fatalf("client got %q for undefined", d)
	}

	// A batch from the server: each packet is handled in order.
	s.StartBatching()
	_ = s.Transmit("note", "a")
	_ = s.Transmit("note", "b")
	s.StopBatching()
	if a, b := next(t, note), next(t, note); string(a) != `"a"` || string(b) != `"b"` {
		t.Fatalf("batched: %s %s", a, b)
	}

	// Raw frames become raw events.
	raw := Listen[RawEvent](c).Consumer()
	defer raw.Stop()
	if err := s.Send("raw-from-server"); err != nil {
		t.Fatal(err)
	}
	if ev := next(t, raw); string(ev.Message) != "raw-from-server" || ev.Binary {
		t.Fatalf("raw: %+v", ev)
	}
}

func TestServerInvokesClientProcedure(t *testing.T) {
	t.Parallel()
	ts := newServer(t, sc.Options{AckTimeout: 300 * time.Millisecond})
	c, s := ts.connect(t, nil)
	ctx := ctxT(t)

	procs := c.Procedure("double").Consumer()
	fails := c.Procedure("fail").Consumer()
	twice := make(chan error, 1)
	go func() {
		for req := range procs.All(ctx) {
			var n float64
			_ = req.Data.Decode(&n)
			_ = req.End(n * 2)
			twice <- req.End(0)
		}
	}()
	go func() {
		for req := range fails.All(ctx) {
			_ = req.Error(sc.NewError("ClientNo", "client says no").With("custom", true))
		}
	}()

	d, err := s.Invoke(ctx, "double", 5)
	if err != nil || string(d) != "10" {
		t.Fatalf("double: %s %v", d, err)
	}
	if err := <-twice; err == nil {
		t.Fatal("a request was answered twice")
	} else {
		asError(t, err, "InvalidActionError")
	}
	_, err = s.Invoke(ctx, "fail", nil)
	e := asError(t, err, "ClientNo")
	if v, _ := e.Field("custom"); v != true || e.Message != "client says no" {
		t.Fatalf("fail: %#v", e)
	}
	// Nobody consumes "nobody": the server times out.
	_, err = s.Invoke(ctx, "nobody", nil)
	asError(t, err, "TimeoutError")
}

func TestSubscribePublishUnsubscribe(t *testing.T) {
	t.Parallel()
	ts := newServer(t, sc.Options{}, func(srv *sc.Server) {
		_ = srv.SetMiddleware(sc.MiddlewareInbound, func(_ context.Context, a *sc.Action) error {
			if a.Type == sc.ActionSubscribe && a.Channel == "forbidden" {
				return sc.NewError("ForbiddenError", "forbidden channel")
			}
			return nil
		})
	})
	subs := sc.Listen[sc.SubscriptionEvent](ts).Consumer()
	defer subs.Stop()
	unsubs := sc.Listen[sc.UnsubscriptionEvent](ts).Consumer()
	defer unsubs.Stop()
	c, s := ts.connect(t, nil)
	ctx := ctxT(t)
	evs := Listen[SubscribeEvent](c).Consumer()
	defer evs.Stop()

	ch, err := c.Subscribe(ctx, "news", WithData(map[string]int{"d": 1}))
	if err != nil {
		t.Fatal(err)
	}
	if ev := next(t, subs); ev.Channel != "news" || ev.Socket != s || string(ev.SubscriptionOptions) != `{"data":{"d":1}}` {
		t.Fatalf("server subscription %+v %s", ev, ev.SubscriptionOptions)
	}
	if ev := next(t, evs); ev.Channel != "news" {
		t.Fatalf("client subscribe event %+v", ev)
	}
	if ch.State() != ChannelSubscribed || !c.IsSubscribed("news", false) || !s.IsSubscribed("news") {
		t.Fatal("not subscribed")
	}
	if again, err := c.Subscribe(ctx, "news"); err != nil || again != ch {
		t.Fatalf("second Subscribe: %v %v", again, err)
	}

	data := ch.Consumer()
	if err := ts.Exchange().TransmitPublish("news", "hello"); err != nil {
		t.Fatal(err)
	}
	if d := next(t, data); string(d) != `"hello"` {
		t.Fatalf("got %s", d)
	}
	if err := c.InvokePublish(ctx, "news", 42); err != nil {
		t.Fatal(err)
	}
	if d := next(t, data); string(d) != "42" {
		t.Fatalf("own publish: %s", d)
	}
	if err := ch.TransmitPublish(sc.Undefined); err != nil {
		t.Fatal(err)
	}
	if d := next(t, data); d != nil {
		t.Fatalf("publish without data: %q", d)
	}
	// A publish to a channel the client does not have is not delivered.
	other := c.Receiver("#publish").Consumer()
	defer other.Stop()
	if err := c.InvokePublish(ctx, "elsewhere", 1); err != nil {
		t.Fatal(err)
	}

	if err := ch.Unsubscribe(); err != nil {
		t.Fatal(err)
	}
	if ev := next(t, unsubs); ev.Channel != "news" || ev.Socket != s {
		t.Fatalf("server unsubscription %+v", ev)
	}
	if _, err := data.Next(ctx); !errors.Is(err, stream.ErrEnded) {
		t.Fatalf("channel data after Unsubscribe: %v", err)
	}
	if ch.State() != ChannelUnsubscribed || c.IsSubscribed("news", true) || len(c.Subscriptions(true)) != 0 {
		t.Fatal("still subscribed")
	}
	barrier(t, c)
	if s.IsSubscribed("news") {
		t.Fatal("server socket still subscribed")
	}
	if other.Backpressure() != 0 {
		t.Fatal("#publish reached a receiver")
	}

	// A refused subscription.
	fails := Listen[SubscribeFailEvent](c).Consumer()
	defer fails.Stop()
	_, err = c.Subscribe(ctx, "forbidden")
	if e := asError(t, err, "ForbiddenError"); e.Message != "forbidden channel" {
		t.Fatalf("refusal: %v", e)
	}
	if ev := next(t, fails); ev.Channel != "forbidden" {
		t.Fatalf("subscribeFail %+v", ev)
	}
	if c.Channel("forbidden") != nil {
		t.Fatal("refused channel kept")
	}
}

func TestKickOut(t *testing.T) {
	t.Parallel()
	ts := newServer(t, sc.Options{})
	c, s := ts.connect(t, nil)
	ctx := ctxT(t)
	ch, err := c.Subscribe(ctx, "a")
	if err != nil {
		t.Fatal(err)
	}
	kicks := Listen[KickOutEvent](c).Consumer()
	defer kicks.Stop()
	data := ch.Consumer()

	if err := s.KickOut([]string{"a"}, "bye"); err != nil {
		t.Fatal(err)
	}
	ev := next(t, kicks)
	if ev.Channel != "a" || string(ev.Message) != `"bye"` {
		t.Fatalf("kickOut %+v %s", ev, ev.Message)
	}
	if ch.State() != ChannelUnsubscribed || c.Channel("a") != nil {
		t.Fatalf("channel after kick-out: %s", ch.State())
	}
	if _, err := data.Next(ctx); !errors.Is(err, stream.ErrEnded) {
		t.Fatalf("channel data after kick-out: %v", err)
	}
	// A kick-out without message, and the loop form.
	ch, err = c.Subscribe(ctx, "b")
	if err != nil {
		t.Fatal(err)
	}
	cons := ch.Consumer()
	done := make(chan int)
	go func() {
		n := 0
		for range cons.All(ctx) {
			n++
		}
		done <- n
	}()
	// The publish and the kick-out leave the server in this order: the
	// loop gets the publish, then ends.
	_ = ts.Exchange().TransmitPublish("b", 1)
	if err := s.KickOut(nil, sc.Undefined); err != nil {
		t.Fatal(err)
	}
	if ev := next(t, kicks); ev.Channel != "b" || ev.Message != nil {
		t.Fatalf("kickOut %+v", ev)
	}
	if n := <-done; n != 1 {
		t.Fatalf("the loop got %d publishes", n)
	}
}

func TestSetAuthTokenThenReconnectAuthenticated(t *testing.T) {
	t.Parallel()
	ts := newServer(t, sc.Options{AuthKey: []byte("secret")}, func(srv *sc.Server) {
		srv.HandleProcedure("login", func(r *sc.Request) {
			var name string
			_ = r.Data.Decode(&name)
			if err := r.Socket.SetAuthToken(context.Background(), sc.AuthToken{"username": name}, nil); err != nil {
				_ = r.Error(err)
				return
			}
			_ = r.End("ok")
		})
	})
	conns := sc.Listen[sc.ConnectionEvent](ts).Consumer()
	defer conns.Stop()
	c := ts.dial(t, &Options{AutoReconnect: true})
	first := nextConnection(t, conns)
	ctx := ctxT(t)

	auths := Listen[AuthenticateEvent](c).Consumer()
	defer auths.Stop()
	changes := Listen[AuthStateChangeEvent](c).Consumer()
	defer changes.Stop()
	connects := Listen[ConnectEvent](c).Consumer()
	defer connects.Stop()

	if d, err := c.Invoke(ctx, "login", "alice"); err != nil || string(d) != `"ok"` {
		t.Fatalf("login: %s %v", d, err)
	}
	ev := next(t, auths)
	if ev.AuthToken["username"] != "alice" || ev.SignedAuthToken == "" {
		t.Fatalf("authenticate event %+v", ev)
	}
	if ch := next(t, changes); ch.OldAuthState != protocol.Unauthenticated || ch.NewAuthState != protocol.Authenticated {
		t.Fatalf("authStateChange %+v", ch)
	}
	if c.AuthState() != protocol.Authenticated || c.AuthToken()["username"] != "alice" || c.SignedAuthToken() != ev.SignedAuthToken {
		t.Fatalf("client auth: %s %v", c.AuthState(), c.AuthToken())
	}
	if c.SignedAuthToken() != first.Socket.SignedAuthToken() || c.StoredAuthToken() != c.SignedAuthToken() {
		t.Fatal("the client's token is not the server's")
	}
	if exp, _ := c.AuthToken()["exp"].(float64); exp == 0 {
		t.Fatalf("no exp in %v", c.AuthToken())
	}

	// The server drops the connection with 4000: the client reconnects at
	// once and presents the token in its handshake.
	_ = first.Socket.Disconnect(4000, "")
	second := nextConnection(t, conns)
	if !second.IsAuthenticated || second.Socket.AuthToken()["username"] != "alice" {
		t.Fatalf("reconnected: authenticated %v, token %v, error %v", second.IsAuthenticated, second.Socket.AuthToken(), second.AuthError)
	}
	if ce := next(t, connects); !ce.IsAuthenticated || ce.ID != second.ID || ce.AuthError != nil {
		t.Fatalf("connect event %+v", ce)
	}
	if c.AuthState() != protocol.Authenticated {
		t.Fatal("client not authenticated after the reconnect")
	}

	// Delivery-confirmed token operations are answered with {"rid"}.
	if err := second.Socket.SetAuthToken(ctx, sc.AuthToken{"username": "bob"}, &sc.SetAuthTokenOptions{RejectOnFailedDelivery: true}); err != nil {
		t.Fatalf("confirmed setAuthToken: %v", err)
	}
	if c.AuthToken()["username"] != "bob" {
		t.Fatalf("token after confirmed setAuthToken: %v", c.AuthToken())
	}
	removed := Listen[RemoveAuthTokenEvent](c).Consumer()
	defer removed.Stop()
	if err := second.Socket.DeauthenticateConfirmed(ctx); err != nil {
		t.Fatalf("confirmed deauthenticate: %v", err)
	}
	if ev := next(t, removed); ev.OldAuthToken["username"] != "bob" {
		t.Fatalf("removeAuthToken %+v", ev)
	}
	if c.AuthState() != protocol.Unauthenticated || c.StoredAuthToken() != "" || c.AuthToken() != nil {
		t.Fatal("still authenticated after #removeAuthToken")
	}
}

func TestAuthenticateAndDeauthenticate(t *testing.T) {
	t.Parallel()
	ts := newServer(t, sc.Options{AuthKey: []byte("secret")}, func(srv *sc.Server) {
		srv.HandleProcedure("login", func(r *sc.Request) {
			_ = r.Socket.SetAuthToken(context.Background(), sc.AuthToken{"username": "carol"}, nil)
			_ = r.End(sc.Undefined)
		})
	})
	ctx := ctxT(t)
	a := ts.dial(t, nil)
	if _, err := a.Invoke(ctx, "login", nil); err != nil {
		t.Fatal(err)
	}
	eventually(t, "a token", func() bool { return a.SignedAuthToken() != "" })
	token := a.SignedAuthToken()

	b, bs := ts.connect(t, nil)
	if err := b.Authenticate(ctx, token); err != nil {
		t.Fatalf("Authenticate: %v", err)
	}
	if b.AuthState() != protocol.Authenticated || b.AuthToken()["username"] != "carol" || bs.AuthState() != protocol.Authenticated {
		t.Fatalf("after Authenticate: %s %v, server %s", b.AuthState(), b.AuthToken(), bs.AuthState())
	}

	deauths := Listen[DeauthenticateEvent](b).Consumer()
	defer deauths.Stop()
	if err := b.Deauthenticate(); err != nil {
		t.Fatal(err)
	}
	if ev := next(t, deauths); ev.OldSignedAuthToken != token {
		t.Fatalf("deauthenticate %+v", ev)
	}
	barrier(t, b)
	if bs.AuthState() != protocol.Unauthenticated || b.StoredAuthToken() != "" {
		t.Fatalf("server socket still %s", bs.AuthState())
	}

	err := b.Authenticate(ctx, "garbage")
	if e := asError(t, err, "AuthTokenInvalidError"); e.Message != "jwt malformed" {
		t.Fatalf("bad token: %v", e)
	}
	if b.AuthState() != protocol.Unauthenticated {
		t.Fatal("authenticated with a bad token")
	}
}

func TestBadTokenAtHandshake(t *testing.T) {
	t.Parallel()
	ts := newServer(t, sc.Options{AuthKey: []byte("secret")})
	c := ts.dial(t, &Options{AuthToken: "garbage"})
	if c.AuthState() != protocol.Unauthenticated {
		t.Fatal("authenticated with garbage")
	}
	// The server follows the answer with #removeAuthToken.
	eventually(t, "the stored token to go", func() bool { return c.StoredAuthToken() == "" })
}

func TestWaitForAuth(t *testing.T) {
	t.Parallel()
	ts := newServer(t, sc.Options{AuthKey: []byte("secret")}, func(srv *sc.Server) {
		srv.HandleProcedure("login", func(r *sc.Request) {
			_ = r.Socket.SetAuthToken(context.Background(), sc.AuthToken{"username": "dave"}, nil)
			_ = r.End("ok")
		})
	})
	subs := sc.Listen[sc.SubscriptionEvent](ts).Consumer()
	defer subs.Stop()
	c, s := ts.connect(t, nil)
	ctx := ctxT(t)

	type subResult struct {
		ch  *Channel
		err error
	}
	res := make(chan subResult, 1)
	go func() {
		ch, err := c.Subscribe(ctx, "authonly", WaitForAuth())
		res <- subResult{ch, err}
	}()
	eventually(t, "the pending channel", func() bool { return c.IsSubscribed("authonly", true) })
	barrier(t, c)
	if s.IsSubscribed("authonly") {
		t.Fatal("subscribed before authenticating")
	}
	if _, err := c.Invoke(ctx, "login", nil); err != nil {
		t.Fatal(err)
	}
	r := <-res
	if r.err != nil || r.ch.State() != ChannelSubscribed {
		t.Fatalf("Subscribe: %v", r.err)
	}
	if ev := next(t, subs); ev.Channel != "authonly" || string(ev.SubscriptionOptions) != `{"waitForAuth":true}` {
		t.Fatalf("server subscription %+v %s", ev, ev.SubscriptionOptions)
	}
}

func TestReconnectAfter4000Resubscribes(t *testing.T) {
	t.Parallel()
	ts := newServer(t, sc.Options{})
	conns := sc.Listen[sc.ConnectionEvent](ts).Consumer()
	defer conns.Stop()
	subs := sc.Listen[sc.SubscriptionEvent](ts).Consumer()
	defer subs.Stop()
	c := ts.dial(t, &Options{AutoReconnect: true})
	first := nextConnection(t, conns)
	ctx := ctxT(t)

	news, err := c.Subscribe(ctx, "news", WithPriority(1))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Subscribe(ctx, "sport", WithPriority(5)); err != nil {
		t.Fatal(err)
	}
	next(t, subs)
	next(t, subs)
	data := news.Consumer()
	disconnects := Listen[DisconnectEvent](c).Consumer()
	defer disconnects.Stop()
	connects := Listen[ConnectEvent](c).Consumer()
	defer connects.Stop()

	if err := first.Socket.Disconnect(4000, "again"); err != nil {
		t.Fatal(err)
	}
	if ev := next(t, disconnects); ev.Code != 4000 || ev.Reason != "again" {
		t.Fatalf("disconnect %+v", ev)
	}
	second := nextConnection(t, conns)
	if second.Socket == first.Socket {
		t.Fatal("same socket")
	}
	// Both channels come back, the higher priority first.
	if a, b := next(t, subs), next(t, subs); a.Channel != "sport" || b.Channel != "news" || a.Socket != second.Socket || b.Socket != second.Socket {
		t.Fatalf("resubscribed %s then %s", a.Channel, b.Channel)
	}
	if ce := next(t, connects); ce.ID != second.ID {
		t.Fatalf("connect event %+v", ce)
	}
	eventually(t, "the channel to be subscribed", func() bool { return news.State() == ChannelSubscribed })
	// The consumer made before the reconnect still gets the channel's data.
	if err := ts.Exchange().TransmitPublish("news", "after"); err != nil {
		t.Fatal(err)
	}
	if d := next(t, data); string(d) != `"after"` {
		t.Fatalf("got %s", d)
	}
	barrier(t, c)
	if c.ID() != second.ID {
		t.Fatalf("client id %s, socket %s", c.ID(), second.ID)
	}
}

func TestReconnectWithBackoff(t *testing.T) {
	t.Parallel()
	ts := newServer(t, sc.Options{})
	conns := sc.Listen[sc.ConnectionEvent](ts).Consumer()
	defer conns.Stop()
	c := ts.dial(t, &Options{AutoReconnect: true, Reconnect: ReconnectOptions{InitialDelay: 5 * time.Millisecond, Randomness: -1}})
	first := nextConnection(t, conns)
	closes := Listen[CloseEvent](c).Consumer()
	defer closes.Stop()
	errs := Listen[ErrorEvent](c).Consumer()
	defer errs.Stop()
	_ = first.Socket.Disconnect(protocol.CloseInternalError, "")
	if ev := next(t, closes); ev.Code != 1011 || ev.Reason != "Server encountered an unexpected fatal condition" {
		t.Fatalf("close %+v", ev)
	}
	if e := asError(t, next(t, errs).Error, "SocketProtocolError"); e.Message != "Server encountered an unexpected fatal condition" {
		t.Fatalf("error event %v", e)
	}
	if second := nextConnection(t, conns); second.Socket == first.Socket {
		t.Fatal("no new connection")
	}
	barrier(t, c)
}

func TestNoReconnectAfter4500(t *testing.T) {
	t.Parallel()
	ts := newServer(t, sc.Options{})
	c, s := ts.connect(t, &Options{AutoReconnect: true, Reconnect: ReconnectOptions{InitialDelay: -1, Randomness: -1}})
	closes := Listen[CloseEvent](c).Consumer()
	defer closes.Stop()
	ch, err := c.Subscribe(ctxT(t), "kept")
	if err != nil {
		t.Fatal(err)
	}

	_ = s.Disconnect(4500, "go away")
	if ev := next(t, closes); ev.Code != 4500 || ev.Reason != "go away" {
		t.Fatalf("close %+v", ev)
	}
	// The state changed before the close event: no reconnect is pending.
	if c.State() != StateClosed {
		t.Fatalf("state %s after 4500", c.State())
	}
	if _, err := c.Invoke(ctxT(t), "echo", 1); !errors.Is(err, ErrClosed) {
		t.Fatalf("Invoke on a closed client: %v", err)
	}
	if err := c.Transmit("x", 1); !errors.Is(err, ErrClosed) {
		t.Fatalf("Transmit on a closed client: %v", err)
	}
	if ch.State() != ChannelPending {
		t.Fatalf("channel %s", ch.State())
	}
	// Connect dials again and resubscribes.
	if err := c.Connect(ctxT(t)); err != nil {
		t.Fatal(err)
	}
	if c.State() != StateOpen {
		t.Fatalf("state %s after Connect", c.State())
	}
	eventually(t, "the resubscription", func() bool { return ch.State() == ChannelSubscribed })
	barrier(t, c)
}

func TestPingsAreAnswered(t *testing.T) {
	t.Parallel()
	for _, v := range []int{1, 2} {
		t.Run("v"+string(rune('0'+v)), func(t *testing.T) {
			ts := newServer(t, sc.Options{ProtocolVersion: v, PingInterval: 10 * time.Millisecond})
			conns := sc.Listen[sc.ConnectionEvent](ts).Consumer()
			defer conns.Stop()
			pong := "#2"
			if v == 2 {
				pong = ""
			}
			c := ts.dial(t, &Options{ProtocolVersion: v})
			s := nextConnection(t, conns).Socket
			msgs := sc.Listen[sc.MessageEvent](s).Consumer()
			defer msgs.Stop()
			for {
				if ev := next(t, msgs); string(ev.Message) == pong {
					break
				}
			}
			if c.State() != StateOpen {
				t.Fatalf("state %s", c.State())
			}
		})
	}
}

func TestPingTimeoutClosesWith4000(t *testing.T) {
	t.Parallel()
	// The server announces a short pingTimeout and never pings.
	ts := newServer(t, sc.Options{PingTimeoutDisabled: true, PingTimeout: 200 * time.Millisecond})
	discs := sc.Listen[sc.DisconnectionEvent](ts).Consumer()
	defer discs.Stop()
	conns := sc.Listen[sc.ConnectionEvent](ts).Consumer()
	defer conns.Stop()
	c := ts.dial(t, &Options{AutoReconnect: true})
	closes := Listen[CloseEvent](c).Consumer()
	defer closes.Stop()
	first := nextConnection(t, conns)
	ev := next(t, discs)
	if ev.Code != 4000 || ev.Socket != first.Socket {
		t.Fatalf("server saw %d", ev.Code)
	}
	if ce := next(t, closes); ce.Code != 4000 || ce.Reason != "Server ping timed out" {
		t.Fatalf("client close %+v", ce)
	}
	// 4000 reconnects at once.
	nextConnection(t, conns)
}

func TestHandshakeRejected(t *testing.T) {
	t.Parallel()
	ts := newServer(t, sc.Options{}, func(srv *sc.Server) {
		_ = srv.SetMiddleware(sc.MiddlewareHandshake, func(_ context.Context, a *sc.Action) error {
			if a.Type == sc.ActionHandshakeSC {
				if a.Request.URL.Query().Get("permanent") != "" {
					return sc.NewError("HandshakeRejectedError", "never").With("statusCode", 4501)
				}
				return sc.NewError("HandshakeRejectedError", "go away")
			}
			return nil
		})
	})
	_, err := Dial(ctxT(t), ts.url, nil)
	e := asError(t, err, "HandshakeRejectedError")
	if code, _ := e.Field("statusCode"); e.Message != "go away" || code != float64(4008) {
		t.Fatalf("rejection %#v", e)
	}
	_, err = Dial(ctxT(t), ts.url+"?permanent=1", nil)
	if e := asError(t, err, "HandshakeRejectedError"); e.Message != "never" {
		t.Fatalf("rejection %#v", e)
	}
}

func TestDialFails(t *testing.T) {
	t.Parallel()
	ts := newServer(t, sc.Options{})
	if _, err := Dial(ctxT(t), ts.url[:len(ts.url)-len("socketcluster/")]+"nothing/", nil); err == nil {
		t.Fatal("dialled a path that is not served")
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := Dial(ctx, ts.url, nil); err == nil {
		t.Fatal("dialled with a cancelled context")
	}
}

func TestCloseEndsEverything(t *testing.T) {
	t.Parallel()
	ts := newServer(t, sc.Options{})
	discs := sc.Listen[sc.DisconnectionEvent](ts).Consumer()
	defer discs.Stop()
	c, s := ts.connect(t, &Options{AutoReconnect: true})
	ctx := ctxT(t)
	ch, err := c.Subscribe(ctx, "x")
	if err != nil {
		t.Fatal(err)
	}
	events := c.Listener("close").Consumer()
	recv := c.Receiver("r").Consumer()
	data := ch.Consumer()

	if err := c.Close(4100, "bye"); err != nil {
		t.Fatal(err)
	}
	if ev := next(t, discs); ev.Code != 4100 || ev.Reason != "bye" || ev.Socket != s {
		t.Fatalf("server saw %+v", ev)
	}
	if ev := next(t, events); ev.(CloseEvent).Code != 4100 || ev.(CloseEvent).Reason != "bye" {
		t.Fatalf("close event %+v", ev)
	}
	if _, err := events.Next(ctx); !errors.Is(err, stream.ErrEnded) {
		t.Fatalf("listener after Close: %v", err)
	}
	if _, err := recv.Next(ctx); !errors.Is(err, stream.ErrEnded) {
		t.Fatalf("receiver after Close: %v", err)
	}
	if _, err := data.Next(ctx); !errors.Is(err, stream.ErrEnded) {
		t.Fatalf("channel after Close: %v", err)
	}
	if c.State() != StateClosed || ch.State() != ChannelUnsubscribed {
		t.Fatalf("state %s, channel %s", c.State(), ch.State())
	}
	if _, err := c.Invoke(ctx, "echo", 1); !errors.Is(err, ErrClosed) {
		t.Fatalf("Invoke after Close: %v", err)
	}
	if err := c.Connect(ctx); !errors.Is(err, ErrClosed) {
		t.Fatalf("Connect after Close: %v", err)
	}
	if err := c.Close(1000, ""); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	if err := c.Close(1006, ""); err == nil {
		t.Fatal("Close accepted 1006")
	}
}

func TestCloseWhileReconnecting(t *testing.T) {
	t.Parallel()
	// The server goes away (1001): the client waits out its default 10 s+
	// back-off; Close must end that wait at once.
	ts := newServer(t, sc.Options{})
	c, s := ts.connect(t, &Options{AutoReconnect: true})
	discs := Listen[DisconnectEvent](c).Consumer()
	defer discs.Stop()
	_ = s.Disconnect(protocol.CloseGoingAway, "")
	if ev := next(t, discs); ev.Code != 1001 {
		t.Fatalf("disconnect %+v", ev)
	}
	if c.State() != StateConnecting {
		t.Fatalf("state %s", c.State())
	}
	// Sends made while reconnecting are queued: an invoke fails when the
	// client closes.
	res := make(chan error, 1)
	go func() {
		_, err := c.Invoke(context.Background(), "echo", 1)
		res <- err
	}()
	eventually(t, "the queued invoke", func() bool {
		c.mu.Lock()
		defer c.mu.Unlock()
		return len(c.outbox) == 1
	})
	if err := c.Close(1000, ""); err != nil {
		t.Fatal(err)
	}
	if err := <-res; !errors.Is(err, ErrClosed) {
		t.Fatalf("queued invoke: %v", err)
	}
}

func TestQueuedWhileReconnectingIsSent(t *testing.T) {
	t.Parallel()
	ts := newServer(t, sc.Options{})
	conns := sc.Listen[sc.ConnectionEvent](ts).Consumer()
	defer conns.Stop()
	c := ts.dial(t, &Options{AutoReconnect: true, Reconnect: ReconnectOptions{InitialDelay: 50 * time.Millisecond, Randomness: -1}})
	first := nextConnection(t, conns)
	discs := Listen[DisconnectEvent](c).Consumer()
	defer discs.Stop()
	_ = first.Socket.Disconnect(protocol.CloseInternalError, "")
	next(t, discs)
	// Whether the invoke is queued or the client already reconnected, it
	// is answered.
	d, err := c.Invoke(ctxT(t), "echo", "queued")
	if err != nil || string(d) != `"queued"` {
		t.Fatalf("invoke while reconnecting: %s %v", d, err)
	}
}

func TestBackoffAndPolicy(t *testing.T) {
	t.Parallel()
	c := &Client{opts: Options{Reconnect: ReconnectOptions{InitialDelay: 100 * time.Millisecond, Randomness: -1, Multiplier: 2, MaxDelay: 350 * time.Millisecond}}.withDefaults()}
	var got []time.Duration
	for range 4 {
		got = append(got, c.backoffLocked(true))
	}
	want := []time.Duration{0, 200 * time.Millisecond, 350 * time.Millisecond, 350 * time.Millisecond}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("immediate back-off %v, want %v", got, want)
		}
	}
	c.attempts = 0
	if d := c.backoffLocked(false); d != 100*time.Millisecond {
		t.Fatalf("first back-off %v", d)
	}
	d := Options{}.withDefaults()
	c = &Client{opts: d}
	if b := c.backoffLocked(false); b < 10*time.Second || b >= 20*time.Second {
		t.Fatalf("default first back-off %v", b)
	}
	for code, want := range map[int][2]bool{
		1000: {false, false}, 4500: {false, false}, 4999: {false, false},
		4000: {true, true}, 4001: {true, true}, 1005: {true, true},
		1001: {true, false}, 1006: {true, false}, 1011: {true, false}, 4008: {true, false}, 4499: {true, false},
	} {
		if again, immediate := reconnectPolicy(code); again != want[0] || immediate != want[1] {
			t.Errorf("policy(%d) = %v %v", code, again, immediate)
		}
	}
}

func TestDecodeToken(t *testing.T) {
	t.Parallel()
	// {"alg":"HS256"}.{"username":"ann","n":1}.sig
	tok := decodeToken("eyJhbGciOiJIUzI1NiJ9.eyJ1c2VybmFtZSI6ImFubiIsIm4iOjF9.c2ln")
	if tok["username"] != "ann" || tok["n"] != float64(1) {
		t.Fatalf("decoded %v", tok)
	}
	if decodeToken("garbage") != nil || decodeToken("a.!!!.c") != nil {
		t.Fatal("decoded garbage")
	}
}

func TestNewThenConnect(t *testing.T) {
	t.Parallel()
	ts := newServer(t, sc.Options{})
	c, err := New(ts.url, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close(1000, "")
	if c.State() != StateClosed {
		t.Fatalf("state %s before Connect", c.State())
	}
	// Listeners attached before Connect see the first connection.
	connecting := Listen[ConnectingEvent](c).Consumer()
	connects := Listen[ConnectEvent](c).Consumer()
	if err := c.Connect(ctxT(t)); err != nil {
		t.Fatal(err)
	}
	next(t, connecting)
	if ev := next(t, connects); ev.ID != c.ID() || ev.IsAuthenticated {
		t.Fatalf("connect %+v", ev)
	}
	if err := c.Connect(ctxT(t)); err != nil {
		t.Fatalf("Connect on an open client: %v", err)
	}
	barrier(t, c)
}
