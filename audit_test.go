package socketcluster_test

// Tests written for the API coverage audit (docs/api-coverage.md): the
// items of the SocketCluster server API documents that no other test
// exercised. Each test names the items it covers.

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	sc "github.com/socketcluster-go/socketcluster"
	"github.com/socketcluster-go/socketcluster/internal/sctest"
	"github.com/socketcluster-go/socketcluster/stream"
)

// ended requires the consumer to have ended (closed or killed) with nothing
// left to read.
func ended[T any](t *testing.T, what string, c *sc.Consumer[T]) {
	t.Helper()
	if v, err := c.Next(ctxT(t)); !errors.Is(err, stream.ErrEnded) {
		t.Fatalf("%s: got %v, %v; want the stream ended", what, v, err)
	}
}

// drain reads n items from the consumer, then requires it to have ended.
func drainThenEnded[T any](t *testing.T, what string, c *sc.Consumer[T], n int) {
	t.Helper()
	for i := 0; i < n; i++ {
		if _, err := c.Next(ctxT(t)); err != nil {
			t.Fatalf("%s: backlog item %d: %v", what, i+1, err)
		}
	}
	ended(t, what, c)
}

func statsIDs(stats []stream.ConsumerStats, stream string) map[int]int {
	m := map[int]int{}
	for _, s := range stats {
		if stream == "" || s.Stream == stream {
			m[s.ID] = s.Backpressure
		}
	}
	return m
}

// Server listener management: listenerBackpressure, allListenersBackpressure,
// listenerConsumerStats, allListenersConsumerStats, killListenerConsumer,
// closeListener, killListener, closeAllListeners, killAllListeners.
func TestServerListenerManagement(t *testing.T) {
	t.Parallel()
	ts := newServer(t, sc.Options{})
	w1 := ts.Listener("warning").Consumer()
	w2 := ts.Listener("warning").Consumer()
	e1 := ts.Listener("error").Consumer()
	defer w1.Stop()
	defer w2.Stop()
	defer e1.Stop()
	ts.EmitWarning(errors.New("w1"))
	ts.EmitWarning(errors.New("w2"))
	ts.EmitError(errors.New("e1"))

	if got := ts.ListenerBackpressure("warning"); got != 2 {
		t.Fatalf("ListenerBackpressure(warning) %d, want 2", got)
	}
	if got := ts.ListenerBackpressure("error"); got != 1 {
		t.Fatalf("ListenerBackpressure(error) %d, want 1", got)
	}
	if got := ts.AllListenersBackpressure(); got != 2 {
		t.Fatalf("AllListenersBackpressure %d, want 2", got)
	}
	if got := statsIDs(ts.ListenerConsumerStats("warning"), ""); len(got) != 2 || got[w1.ID()] != 2 || got[w2.ID()] != 2 {
		t.Fatalf("ListenerConsumerStats(warning) %v", got)
	}
	all := statsIDs(ts.AllListenersConsumerStats(), "")
	if all[w1.ID()] != 2 || all[w2.ID()] != 2 || all[e1.ID()] != 1 {
		t.Fatalf("AllListenersConsumerStats %v", ts.AllListenersConsumerStats())
	}
	if statsIDs(ts.AllListenersConsumerStats(), "error")[e1.ID()] != 1 {
		t.Fatal("AllListenersConsumerStats does not name the error stream")
	}
	if ts.ListenerConsumerBackpressure(e1.ID()) != 1 || !ts.HasListenerConsumer("error", e1.ID()) ||
		ts.HasListenerConsumer("warning", e1.ID()) || !ts.HasAnyListenerConsumer(w2.ID()) {
		t.Fatal("ListenerConsumerBackpressure / HasListenerConsumer / HasAnyListenerConsumer")
	}

	// killListenerConsumer: that consumer ends at once, the other keeps its backlog.
	ts.KillListenerConsumer(w1.ID())
	ended(t, "killed consumer", w1)
	if ts.ListenerBackpressure("warning") != 2 || ts.HasAnyListenerConsumer(w1.ID()) {
		t.Fatal("killing one consumer touched the other or left it registered")
	}
	// closeListener: the backlog is still read, then the end.
	ts.CloseListener("warning")
	drainThenEnded(t, "closed warning listener", w2, 2)
	// killListener: the backlog is dropped.
	ts.KillListener("error")
	ended(t, "killed error listener", e1)
	if ts.AllListenersBackpressure() != 0 {
		t.Fatalf("backpressure %d after kill", ts.AllListenersBackpressure())
	}

	// closeAllListeners and killAllListeners, on fresh consumers.
	w3, e3 := ts.Listener("warning").Consumer(), ts.Listener("error").Consumer()
	ts.EmitWarning(errors.New("w3"))
	ts.EmitError(errors.New("e3"))
	ts.CloseAllListeners()
	drainThenEnded(t, "warning after CloseAllListeners", w3, 1)
	drainThenEnded(t, "error after CloseAllListeners", e3, 1)

	w4, e4 := ts.Listener("warning").Consumer(), ts.Listener("error").Consumer()
	ts.EmitWarning(errors.New("w4"))
	ts.EmitError(errors.New("e4"))
	if ts.AllListenersBackpressure() != 1 {
		t.Fatalf("backpressure %d before KillAllListeners", ts.AllListenersBackpressure())
	}
	ts.KillAllListeners()
	ended(t, "warning after KillAllListeners", w4)
	ended(t, "error after KillAllListeners", e4)
	if ts.AllListenersBackpressure() != 0 || len(ts.AllListenersConsumerStats()) != 0 {
		t.Fatalf("after KillAllListeners: backpressure %d, consumers %v", ts.AllListenersBackpressure(), ts.AllListenersConsumerStats())
	}
}

// Socket listener management (the same methods on a socket, with its
// message and raw events), and killProcedureConsumer.
func TestSocketListenerManagementAndKillProcedureConsumer(t *testing.T) {
	t.Parallel()
	ts := newServer(t, sc.Options{})
	c, s := ts.connect(t, nil) // no pongs: every message is one of ours
	m1, m2 := s.Listener("message").Consumer(), s.Listener("message").Consumer()
	r1 := s.Listener("raw").Consumer()
	defer m1.Stop()
	defer m2.Stop()
	defer r1.Stop()
	c.SendText("not a packet 1")
	c.SendText("not a packet 2")
	barrier(t, c) // a third message
	if s.ListenerBackpressure("message") != 3 || s.ListenerBackpressure("raw") != 2 || s.AllListenersBackpressure() != 3 {
		t.Fatalf("backpressure message %d raw %d all %d, want 3 2 3",
			s.ListenerBackpressure("message"), s.ListenerBackpressure("raw"), s.AllListenersBackpressure())
	}
	if got := statsIDs(s.ListenerConsumerStats("message"), "message"); len(got) != 2 || got[m1.ID()] != 3 || got[m2.ID()] != 3 {
		t.Fatalf("ListenerConsumerStats(message) %v", s.ListenerConsumerStats("message"))
	}
	if all := statsIDs(s.AllListenersConsumerStats(), ""); all[r1.ID()] != 2 || all[m1.ID()] != 3 {
		t.Fatalf("AllListenersConsumerStats %v", s.AllListenersConsumerStats())
	}
	s.KillListenerConsumer(m1.ID())
	ended(t, "killed message consumer", m1)
	s.CloseListener("message")
	drainThenEnded(t, "closed message listener", m2, 3)
	s.KillListener("raw")
	ended(t, "killed raw listener", r1)

	m3, r3 := s.Listener("message").Consumer(), s.Listener("raw").Consumer()
	c.SendText("not a packet 3")
	barrier(t, c)
	s.CloseAllListeners()
	drainThenEnded(t, "message after CloseAllListeners", m3, 2)
	drainThenEnded(t, "raw after CloseAllListeners", r3, 1)

	m4 := s.Listener("message").Consumer()
	barrier(t, c)
	s.KillAllListeners()
	ended(t, "message after KillAllListeners", m4)
	if s.AllListenersBackpressure() != 0 {
		t.Fatalf("socket listener backpressure %d after KillAllListeners", s.AllListenersBackpressure())
	}

	// killProcedureConsumer: one of two consumers of a procedure.
	p1, p2 := s.Procedure("p").Consumer(), s.Procedure("p").Consumer()
	defer p2.Stop()
	cid := c.NextCid()
	c.SendText(sctest.EventPacket("p", 1, cid))
	barrier(t, c)
	if s.ProcedureBackpressure("p") != 1 || len(s.ProcedureConsumerStats("p")) != 2 {
		t.Fatalf("procedure backpressure %d, consumers %v", s.ProcedureBackpressure("p"), s.ProcedureConsumerStats("p"))
	}
	s.KillProcedureConsumer(p1.ID())
	ended(t, "killed procedure consumer", p1)
	if s.HasAnyProcedureConsumer(p1.ID()) || !s.HasProcedureConsumer("p", p2.ID()) {
		t.Fatal("HasProcedureConsumer after KillProcedureConsumer")
	}
	req := next(t, p2)
	_ = req.End("from p2")
	if r := c.AwaitResponse(cid); string(r.Data) != `"from p2"` {
		t.Fatalf("answer %s", r.Raw)
	}
}

// authPrivateKey/authPublicKey with authAlgorithm, and authDefaultExpiry,
// through the server's Options (the auth package has its own tests).
func TestAuthKeyPairAlgorithmAndDefaultExpiry(t *testing.T) {
	t.Parallel()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	privDER, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	pubDER, err := x509.MarshalPKIXPublicKey(&key.PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	ts := newServer(t, sc.Options{
		AuthPrivateKey:    pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: privDER}),
		AuthPublicKey:     pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: pubDER}),
		AuthAlgorithm:     "ES256",
		AuthDefaultExpiry: 90 * time.Minute,
	})
	c, s := ts.connect(t, &sctest.Options{AutoPong: true})
	if err := s.SetAuthToken(ctxT(t), sc.AuthToken{"user": "ann"}, nil); err != nil {
		t.Fatal(err)
	}
	token := tokenFrom(t, c.NextText())
	claims := jwt.MapClaims{}
	parsed, err := jwt.ParseWithClaims(token, claims, func(*jwt.Token) (any, error) { return &key.PublicKey, nil },
		jwt.WithValidMethods([]string{"ES256"}))
	if err != nil || !parsed.Valid {
		t.Fatalf("token is not an ES256 token of our key: %v", err)
	}
	iat, _ := claims["iat"].(float64)
	exp, _ := claims["exp"].(float64)
	if claims["user"] != "ann" || exp-iat != 90*60 {
		t.Fatalf("claims %v: want exp = iat + 5400", claims)
	}
	// The token authenticates another connection.
	c2 := ts.dial(t, &sctest.Options{AutoPong: true})
	if hs := c2.Handshake(token); !hs.IsAuthenticated {
		t.Fatalf("own token refused: %s", hs.Raw)
	}
	// An HMAC token is refused: only ES256 is verified.
	c3 := ts.dial(t, &sctest.Options{AutoPong: true})
	if hs := c3.Handshake(sign(t, []byte("some secret"), jwt.MapClaims{"user": "eve"})); hs.IsAuthenticated {
		t.Fatalf("HS256 token accepted by an ES256 server: %s", hs.Raw)
	}
}

// The fields of the version 14 middleware request: Request and Socket
// (handshakeSC), Event and Data (emit, for transmits and invokes), Channel,
// Data and WaitForAuth (subscribe), Channel and Data (publishIn), and
// AuthTokenExpiredError (emit, once the socket's token has expired).
func TestV14RequestFields(t *testing.T) {
	t.Parallel()
	srv, addr := startV14(t, sc.Options{AuthKey: authKey})
	reqs := make(chan sc.V14Request, 64)
	for _, typ := range []sc.V14MiddlewareType{sc.V14MiddlewareHandshakeSC, sc.V14MiddlewareEmit, sc.V14MiddlewareSubscribe, sc.V14MiddlewarePublishIn} {
		typ := typ
		if _, err := srv.AddMiddleware(typ, func(req *sc.V14Request, next func(error)) {
			r := *req
			if typ == sc.V14MiddlewareHandshakeSC {
				r.Event = "(handshakeSC)" // marks the type for the reader
			}
			if typ == sc.V14MiddlewareSubscribe {
				r.Event = "(subscribe)"
			}
			if typ == sc.V14MiddlewarePublishIn {
				r.Event = "(publishIn)"
			}
			reqs <- r
			next(nil)
		}); err != nil {
			t.Fatal(err)
		}
	}
	// take returns the next request marked ev, skipping the others.
	take := func(ev string) sc.V14Request {
		t.Helper()
		deadline := time.After(wait)
		for {
			select {
			case r := <-reqs:
				if r.Event == ev {
					return r
				}
			case <-deadline:
				t.Fatalf("no %s middleware request", ev)
			}
		}
	}

	var c *sctest.Client
	s := connected(t, srv, func() {
		c = sctest.Dial(t, addr, &sctest.Options{AutoPong: true, Query: "room=7"})
		c.Handshake(nil)
	})
	hs := take("(handshakeSC)")
	if hs.Request == nil || hs.Request.URL.Query().Get("room") != "7" || hs.Socket != s {
		t.Fatalf("handshakeSC request %+v", hs)
	}

	c.Transmit("tx", map[string]int{"a": 1})
	if r := take("tx"); string(r.Data) != `{"a":1}` || r.Socket != s || r.AuthTokenExpiredError != nil {
		t.Fatalf("emit (transmit) request %+v", r)
	}
	barrier(t, c)
	if r := take("echo"); string(r.Data) != `"barrier"` || r.Socket != s {
		t.Fatalf("emit (invoke) request %+v", r)
	}

	c.SendText(fmt.Sprintf(`{"event":"#subscribe","data":{"channel":"room/7","data":{"d":1},"waitForAuth":true},"cid":%d}`, int(c.NextCid())))
	if r := take("(subscribe)"); r.Channel != "room/7" || string(r.Data) != `{"d":1}` || !r.WaitForAuth || r.Socket != s {
		t.Fatalf("subscribe request %+v", r)
	}
	if r := c.Invoke("#publish", map[string]any{"channel": "room/7", "data": "hi"}); r.Error != nil {
		t.Fatalf("publish %s", r.Raw)
	}
	if r := take("(publishIn)"); r.Channel != "room/7" || string(r.Data) != `"hi"` || r.Socket != s {
		t.Fatalf("publishIn request %+v", r)
	}

	// A token that has expired: the next emit request carries the error.
	if err := s.SetAuthToken(ctxT(t), sc.AuthToken{"user": "x", "exp": time.Now().Add(-10 * time.Second).Unix()}, nil); err != nil {
		t.Fatal(err)
	}
	c.Transmit("late", nil)
	r := take("late")
	var e *sc.Error
	if !errors.As(r.AuthTokenExpiredError, &e) || e.Name != "AuthTokenExpiredError" {
		t.Fatalf("emit request after expiry: AuthTokenExpiredError %v", r.AuthTokenExpiredError)
	}
}

// The exchange's channel stream management: closeChannel, killChannel,
// closeAllChannels, killAllChannels, getAllChannelsBackpressure,
// getAllChannelOutputsConsumerStatsList, and a channel's listener
// management (closeAllListeners, killAllListeners, getListenerBackpressure,
// getAllListenersBackpressure, getListenerConsumerStatsList,
// killListenerConsumer).
func TestExchangeChannelStreams(t *testing.T) {
	t.Parallel()
	ts := newServer(t, sc.Options{})
	ex := ts.Exchange()
	a, b := ex.Channel("a"), ex.Channel("b")
	da, db := a.Consumer(), b.Consumer()
	subA1, subA2 := a.Listener("subscribe").Consumer(), a.Listener("subscribe").Consumer()
	unsubA := a.Listener("unsubscribe").Consumer()
	defer da.Stop()
	defer db.Stop()
	defer subA1.Stop()
	defer subA2.Stop()
	defer unsubA.Stop()
	for _, ch := range []*sc.Channel{a, b} {
		if err := ch.Subscribe(ctxT(t)); err != nil {
			t.Fatal(err)
		}
	}
	for i := 0; i < 3; i++ {
		if err := ex.InvokePublish(ctxT(t), "a", i); err != nil {
			t.Fatal(err)
		}
	}
	if err := ex.InvokePublish(ctxT(t), "b", "x"); err != nil {
		t.Fatal(err)
	}
	eventually(t, "published data queued", func() bool { return da.Backpressure() == 3 && db.Backpressure() == 1 })
	if ex.AllChannelsBackpressure() != 3 {
		t.Fatalf("AllChannelsBackpressure %d, want 3", ex.AllChannelsBackpressure())
	}
	if st := statsIDs(ex.AllChannelOutputsConsumerStats(), "a"); st[da.ID()] != 3 || len(statsIDs(ex.AllChannelOutputsConsumerStats(), "")) != 2 {
		t.Fatalf("AllChannelOutputsConsumerStats %v", ex.AllChannelOutputsConsumerStats())
	}
	if a.ListenerBackpressure("subscribe") != 1 || a.AllListenersBackpressure() != 1 || b.AllListenersBackpressure() != 0 {
		t.Fatalf("channel listener backpressure %d %d %d", a.ListenerBackpressure("subscribe"), a.AllListenersBackpressure(), b.AllListenersBackpressure())
	}
	if st := a.ListenerConsumerStats("subscribe"); len(st) != 2 || st[0].Stream != "subscribe" || st[0].Backpressure != 1 {
		t.Fatalf("ListenerConsumerStats %+v", st)
	}
	// killOutputConsumer: one data consumer of a, the other keeps its backlog.
	extra := a.Consumer()
	a.KillConsumer(extra.ID())
	ended(t, "killed data consumer", extra)
	if len(a.ConsumerStats()) != 1 || da.Backpressure() != 3 {
		t.Fatalf("after KillConsumer: %+v", a.ConsumerStats())
	}
	a.KillListenerConsumer(subA1.ID())
	ended(t, "killed channel listener consumer", subA1)
	b.KillListenerConsumer(subA2.ID()) // not b's: ignored
	if len(a.ListenerConsumerStats("subscribe")) != 1 {
		t.Fatal("another channel's KillListenerConsumer killed a's consumer")
	}
	a.CloseAllListeners()
	drainThenEnded(t, "channel listener after CloseAllListeners", subA2, 1)
	ended(t, "unsubscribe listener after CloseAllListeners", unsubA)

	// closeChannel keeps the backlog; killChannel drops it; both leave the
	// server subscribed.
	la, lb := a.Listener("unsubscribe").Consumer(), b.Listener("subscribe").Consumer()
	ex.CloseChannel("a")
	drainThenEnded(t, "data of a after CloseChannel", da, 3)
	ended(t, "listener of a after CloseChannel", la)
	if len(b.ListenerConsumerStats("subscribe")) != 1 {
		t.Fatal("CloseChannel(a) closed a listener of b")
	}
	ex.KillChannel("b")
	ended(t, "data of b after KillChannel", db)
	ended(t, "listener of b after KillChannel", lb)
	if !ex.IsSubscribed("a", false) || !ex.IsSubscribed("b", false) {
		t.Fatal("closing or killing a channel's streams unsubscribed the server")
	}

	// Outputs and listeners separately, then all channels at once.
	do, dl := a.Consumer(), a.Listener("unsubscribe").Consumer()
	_ = ex.TransmitPublish("a", 0)
	eventually(t, "published data queued", func() bool { return do.Backpressure() == 1 })
	ex.CloseAllChannelListeners()
	ended(t, "listener after CloseAllChannelListeners", dl)
	if do.Backpressure() != 1 || !ex.Channel("a").IsSubscribed(false) {
		t.Fatal("CloseAllChannelListeners touched the data consumer")
	}
	dl = a.Listener("unsubscribe").Consumer()
	ex.KillAllChannelOutputs()
	ended(t, "data after KillAllChannelOutputs", do)
	if len(a.ListenerConsumerStats("unsubscribe")) != 1 {
		t.Fatal("KillAllChannelOutputs killed a listener")
	}
	ex.KillAllChannelListeners()
	ended(t, "listener after KillAllChannelListeners", dl)
	do = a.Consumer()
	_ = ex.TransmitPublish("a", 0)
	eventually(t, "published data queued", func() bool { return do.Backpressure() == 1 })
	ex.CloseAllChannelOutputs()
	drainThenEnded(t, "data after CloseAllChannelOutputs", do, 1)

	// All channels at once.
	da2, db2, ev2 := a.Consumer(), b.Consumer(), b.Listener("unsubscribe").Consumer()
	_ = ex.TransmitPublish("a", 1)
	_ = ex.TransmitPublish("b", 2)
	eventually(t, "published data queued", func() bool { return da2.Backpressure() == 1 && db2.Backpressure() == 1 })
	ex.CloseAllChannels()
	drainThenEnded(t, "a after CloseAllChannels", da2, 1)
	drainThenEnded(t, "b after CloseAllChannels", db2, 1)
	ended(t, "b's listener after CloseAllChannels", ev2)
	da3, sub3 := a.Consumer(), a.Listener("unsubscribe").Consumer()
	_ = ex.TransmitPublish("a", 3)
	eventually(t, "published data queued", func() bool { return da3.Backpressure() == 1 })
	ex.KillAllChannels()
	ended(t, "a after KillAllChannels", da3)
	ended(t, "a's listener after KillAllChannels", sub3)
	if ex.AllChannelsBackpressure() != 0 {
		t.Fatalf("AllChannelsBackpressure %d after KillAllChannels", ex.AllChannelsBackpressure())
	}
}

// The server's ackTimeout property: the option, or 10 s by default, and it
// bounds server invokes.
func TestServerAckTimeoutProperty(t *testing.T) {
	t.Parallel()
	def, err := sc.New(sc.Options{Logger: quietLogger})
	if err != nil {
		t.Fatal(err)
	}
	defer def.Terminate()
	if def.AckTimeout() != 10*time.Second {
		t.Fatalf("default AckTimeout %v", def.AckTimeout())
	}
	ts := newServer(t, sc.Options{AckTimeout: 700 * time.Millisecond})
	if ts.AckTimeout() != 700*time.Millisecond {
		t.Fatalf("AckTimeout %v, want the option", ts.AckTimeout())
	}
	_, s := ts.connect(t, &sctest.Options{AutoPong: true}) // never answers invokes
	_, err = s.Invoke(ctxT(t), "noAnswer", nil)
	asError(t, err, "TimeoutError")
}
