package socketcluster_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	sc "github.com/socketcluster-go/socketcluster"
	"github.com/socketcluster-go/socketcluster/broker"
	"github.com/socketcluster-go/socketcluster/internal/sctest"
	"github.com/socketcluster-go/socketcluster/protocol"
)

func TestSubscribeAndUnsubscribeErrors(t *testing.T) {
	t.Parallel()
	ts := newServer(t, sc.Options{})
	c, s := ts.connect(t, nil)
	for _, tc := range []struct{ in, want string }{
		{`{"event":"#subscribe","data":{"channel":5},"cid":5}`, `{"rid":5,"error":{"message":"Subscribe channel name was malformatted","name":"InvalidActionError"}}`},
		{`{"event":"#subscribe","data":"a","cid":6}`, `{"rid":6,"error":{"message":"Subscribe channel name was malformatted","name":"InvalidActionError"}}`},
		{`{"event":"#subscribe","cid":7}`, `{"rid":7,"error":{"message":"Subscribe channel name was malformatted","name":"InvalidActionError"}}`},
		{`{"event":"#subscribe","data":null,"cid":8}`, `{"rid":8,"error":{"message":"Subscribe channel name was malformatted","name":"InvalidActionError"}}`},
		{`{"event":"#unsubscribe","data":{"channel":"c"},"cid":16}`, `{"rid":16,"error":{"message":"Unsubscribe channel name was malformatted","name":"InvalidActionError"}}`},
		{`{"event":"#unsubscribe","data":"zzz","cid":17}`, `{"rid":17,"error":{"message":"Failed to unsubscribe socket from the zzz channel - InvalidActionError: Socket ` + c.ID + ` tried to unsubscribe from a channel which it is not subscribed to","name":"BrokerError"}}`},
		{`{"event":"#publish","data":{"channel":5},"cid":13}`, `{"rid":13,"error":{"message":"Publish channel name was malformatted","name":"InvalidActionError"}}`},
		{`{"event":"#publish","data":"x","cid":14}`, `{"rid":14,"error":{"message":"Publish channel name was malformatted","name":"InvalidActionError"}}`},
		{`{"event":"#publish","cid":15}`, `{"rid":15,"error":{"message":"Publish channel name was malformatted","name":"InvalidActionError"}}`},
		// The empty channel name is a channel.
		{`{"event":"#subscribe","data":{"channel":""},"cid":18}`, `{"rid":18}`},
		{`{"event":"#unsubscribe","data":"","cid":19}`, `{"rid":19}`},
		// Re-subscribing succeeds.
		{`{"event":"#subscribe","data":{"channel":"x"},"cid":20}`, `{"rid":20}`},
		{`{"event":"#subscribe","data":{"channel":"x"},"cid":21}`, `{"rid":21}`},
	} {
		c.SendText(tc.in)
		c.Expect(tc.want)
	}
	// #subscribe without a cid subscribes nothing.
	c.SendText(`{"event":"#subscribe","data":{"channel":"nocid"}}`)
	barrier(t, c)
	if fmt.Sprint(s.Subscriptions()) != "[x]" {
		t.Fatalf("subscriptions %v", s.Subscriptions())
	}
}

// subscribe events carry the subscription options (docs/protocol.md §3.7).
func TestSubscribeEvents(t *testing.T) {
	t.Parallel()
	ts := newServer(t, sc.Options{})
	subs := sc.Listen[sc.SubscriptionEvent](ts).Consumer()
	defer subs.Stop()
	unsubs := sc.Listen[sc.UnsubscriptionEvent](ts).Consumer()
	defer unsubs.Stop()
	c, s := ts.connect(t, nil)
	c.SendText(`{"event":"#subscribe","data":{"channel":"authonly","waitForAuth":true,"data":{"x":1},"priority":5},"cid":7}`)
	c.Expect(`{"rid":7}`)
	ev := next(t, subs)
	if ev.Socket != s || ev.Channel != "authonly" {
		t.Fatalf("subscription %+v", ev)
	}
	jsonEq(t, string(ev.SubscriptionOptions), `{"waitForAuth":true,"data":{"x":1},"priority":5}`)
	c.SendText(`{"event":"#unsubscribe","data":"authonly","cid":8}`)
	c.Expect(`{"rid":8}`)
	if u := next(t, unsubs); u.Socket != s || u.Channel != "authonly" {
		t.Fatalf("unsubscription %+v", u)
	}
}

func TestKickOut(t *testing.T) {
	t.Parallel()
	ts := newServer(t, sc.Options{})
	c, s := ts.connect(t, nil)
	c.Subscribe("a")
	c.Subscribe("b")
	c.Subscribe("c")
	if err := s.KickOut([]string{"a"}, "bye"); err != nil {
		t.Fatal(err)
	}
	c.Expect(`{"event":"#kickOut","data":{"channel":"a","message":"bye"}}`)
	if s.IsSubscribed("a") {
		t.Fatal("still subscribed to a")
	}
	if err := ts.Exchange().InvokePublish(ctxT(t), "a", "missed"); err != nil {
		t.Fatal(err)
	}
	if err := ts.Exchange().InvokePublish(ctxT(t), "b", "got"); err != nil {
		t.Fatal(err)
	}
	c.Expect(`{"event":"#publish","data":{"channel":"b","data":"got"}}`)

	// A channel the socket is not in still gets #kickOut, and an error.
	err := s.KickOut([]string{"zzz"}, sc.Undefined)
	asError(t, err, "InvalidActionError")
	c.Expect(`{"event":"#kickOut","data":{"channel":"zzz"}}`)

	// No channel: every channel, message left out.
	if err := s.KickOut(nil, sc.Undefined); err != nil {
		t.Fatal(err)
	}
	c.ExpectSet(`{"event":"#kickOut","data":{"channel":"b"}}`, `{"event":"#kickOut","data":{"channel":"c"}}`)
	if len(s.Subscriptions()) != 0 {
		t.Fatalf("subscriptions %v", s.Subscriptions())
	}
	_ = ts.Exchange().InvokePublish(ctxT(t), "c", 1)
	barrier(t, c)
}

func TestSocketChannelLimit(t *testing.T) {
	t.Parallel()
	ts := newServer(t, sc.Options{SocketChannelLimit: 2})
	c, _ := ts.connect(t, nil)
	c.Subscribe("a")
	c.Subscribe("b")
	c.SendText(`{"event":"#subscribe","data":{"channel":"c"},"cid":9}`)
	c.Expect(`{"rid":9,"error":{"message":"Failed to subscribe socket to the c channel - InvalidActionError: Socket ` + c.ID + ` tried to exceed the channel subscription limit of 2","name":"BrokerError"}}`)
	// The limit counts current channels, even for a channel already held.
	c.SendText(`{"event":"#subscribe","data":{"channel":"a"},"cid":10}`)
	c.ExpectMatch(`\{"rid":10,"error":\{"message":"Failed to subscribe socket to the a channel - InvalidActionError: .* limit of 2","name":"BrokerError"\}\}`)
	c.SendText(`{"event":"#unsubscribe","data":"a"}`)
	c.SendText(`{"event":"#subscribe","data":{"channel":"c"},"cid":11}`)
	c.Expect(`{"rid":11}`)
}

func TestDisableClientPublish(t *testing.T) {
	t.Parallel()
	ts := newServer(t, sc.Options{DisableClientPublish: true})
	c, _ := ts.connect(t, nil)
	c.Subscribe("news")
	c.SendText(`{"event":"#publish","data":{"channel":"news","data":"x"},"cid":3}`)
	c.Expect(`{"rid":3,"error":{"message":"Client publish feature is disabled","name":"InvalidActionError"}}`)
	c.SendText(`{"event":"#publish","data":{"channel":"news","data":"y"}}`)
	barrier(t, c)
	// Server-side publishes still work.
	if err := ts.Exchange().InvokePublish(ctxT(t), "news", map[string]int{"x": 1}); err != nil {
		t.Fatal(err)
	}
	c.Expect(`{"event":"#publish","data":{"channel":"news","data":{"x":1}}}`)
	if err := ts.Exchange().TransmitPublish("news", sc.Undefined); err != nil {
		t.Fatal(err)
	}
	c.Expect(`{"event":"#publish","data":{"channel":"news"}}`)
	if err := ts.Exchange().Channel("news").Publish(ctxT(t), nil); err != nil {
		t.Fatal(err)
	}
	c.Expect(`{"event":"#publish","data":{"channel":"news","data":null}}`)
}

// The exchange subscribes the server itself; client publishes reach it.
func TestExchangeSubscribe(t *testing.T) {
	t.Parallel()
	ts := newServer(t, sc.Options{})
	ctx := ctxT(t)
	exEvents := sc.Listen[sc.SubscribeEvent](ts.Exchange()).Consumer()
	defer exEvents.Stop()
	ch, err := ts.Exchange().Subscribe(ctx, "srvchan")
	if err != nil {
		t.Fatal(err)
	}
	if ch.Name() != "srvchan" || ch.State() != sc.ChannelSubscribed || !ts.Exchange().IsSubscribed("srvchan", false) {
		t.Fatalf("state %s", ch.State())
	}
	if ev := next(t, exEvents); ev.Channel != "srvchan" {
		t.Fatalf("exchange subscribe event %+v", ev)
	}
	if fmt.Sprint(ts.Exchange().Subscriptions(false)) != "[srvchan]" {
		t.Fatalf("subscriptions %v", ts.Exchange().Subscriptions(false))
	}
	cons := ch.Consumer()
	got := make(chan []string, 1)
	go func() {
		var items []string
		for d := range ch.All(ctx) {
			items = append(items, string(d))
			if len(items) == 3 {
				break
			}
		}
		got <- items
	}()
	c, _ := ts.connect(t, nil)
	c.SendText(`{"event":"#publish","data":{"channel":"srvchan","data":"from client"},"cid":2}`)
	c.Expect(`{"rid":2}`)
	c.SendText(`{"event":"#publish","data":{"channel":"srvchan"}}`)
	barrier(t, c)
	if err := ts.Exchange().InvokePublish(ctx, "srvchan", []int{1}); err != nil {
		t.Fatal(err)
	}
	if items := <-got; fmt.Sprintf("%q", items) != `["\"from client\"" "" "[1]"]` {
		t.Fatalf("channel loop got %q", items)
	}
	if bp := ch.Backpressure(); bp != 3 || cons.Backpressure() != 3 {
		t.Fatalf("channel backpressure %d", bp)
	}
	if st := ch.ConsumerStats(); len(st) != 1 || st[0].Backpressure != 3 {
		t.Fatalf("stats %+v", st)
	}
	ch.Close()
	n := 0
	for range cons.All(ctx) {
		n++
	}
	if n != 3 {
		t.Fatalf("consumer drained %d after Close", n)
	}

	// Unsubscribed: no more data.
	ch.Unsubscribe()
	if ch.State() != sc.ChannelUnsubscribed || ch.IsSubscribed(true) {
		t.Fatalf("state after unsubscribe %s", ch.State())
	}
	later := ch.Consumer()
	defer later.Stop()
	c.SendText(`{"event":"#publish","data":{"channel":"srvchan","data":"after"},"cid":3}`)
	c.Expect(`{"rid":3}`)
	if later.Backpressure() != 0 {
		t.Fatal("an unsubscribed exchange channel received data")
	}
}

// Two servers on one bus: every subscriber gets every message exactly once,
// in order, whichever server the publisher is on.
func TestTwoServersSharingABus(t *testing.T) {
	t.Parallel()
	bus := broker.NewBus()
	ts1 := newServer(t, sc.Options{Broker: broker.NewMemory(bus)})
	ts2 := newServer(t, sc.Options{Broker: broker.NewMemory(bus)})
	a, _ := ts1.connect(t, nil)
	a2, _ := ts1.connect(t, nil)
	b, _ := ts2.connect(t, nil)
	for _, c := range []*sctest.Client{a, a2, b} {
		c.Subscribe("ch")
	}
	ctx := ctxT(t)
	srvCh, err := ts2.Exchange().Subscribe(ctx, "ch")
	if err != nil {
		t.Fatal(err)
	}
	srvCons := srvCh.Consumer()
	defer srvCons.Stop()

	const n = 30
	for i := range n {
		switch i % 3 {
		case 0: // a client publish on server 1
			a.SendText(sctest.EventPacket("#publish", map[string]any{"channel": "ch", "data": i}, 0))
		case 1: // a client publish on server 2
			b.SendText(sctest.EventPacket("#publish", map[string]any{"channel": "ch", "data": i}, 0))
		case 2: // a server publish on server 1
			if err := ts1.Exchange().InvokePublish(ctx, "ch", i); err != nil {
				t.Fatal(err)
			}
		}
		// Wait for the message everywhere before the next one, so that the
		// expected order is defined.
		for _, c := range []*sctest.Client{a, a2, b} {
			c.Expect(fmt.Sprintf(`{"event":"#publish","data":{"channel":"ch","data":%d}}`, i))
		}
		if d := next(t, srvCons); string(d) != fmt.Sprint(i) {
			t.Fatalf("server 2 exchange got %s, want %d", d, i)
		}
	}
	for _, c := range []*sctest.Client{a, a2, b} {
		barrier(t, c)
		c.ExpectNothing(20 * time.Millisecond)
	}
	if srvCons.Backpressure() != 0 {
		t.Fatalf("duplicate deliveries to the exchange: %d", srvCons.Backpressure())
	}

	// A channel nobody on server 2 wants does not reach it.
	b.SendText(`{"event":"#unsubscribe","data":"ch"}`)
	barrier(t, b)
	srvCh.Unsubscribe()
	a.SendText(`{"event":"#publish","data":{"channel":"ch","data":"only 1"},"cid":99}`)
	a.ExpectSet(`{"rid":99}`, `{"event":"#publish","data":{"channel":"ch","data":"only 1"}}`)
	a2.Expect(`{"event":"#publish","data":{"channel":"ch","data":"only 1"}}`)
	barrier(t, b)
	b.ExpectNothing(20 * time.Millisecond)
}

// PUBLISH_OUT middleware decides per socket: allow, rewrite, or block
// (docs/protocol.md §7.4), for client and server publishes alike.
func TestOutboundMiddleware(t *testing.T) {
	t.Parallel()
	var seen = make(chan string, 64)
	ts := newServer(t, sc.Options{}, func(srv *sc.Server) {
		if err := srv.SetMiddleware(sc.MiddlewareOutbound, func(_ context.Context, a *sc.Action) error {
			if a.Type != sc.ActionPublishOut {
				return fmt.Errorf("unexpected action %s", a.Type)
			}
			seen <- a.Socket.Request().URL.Query().Get("role") + " " + a.Channel + " " + string(a.Data)
			switch a.Socket.Request().URL.Query().Get("role") {
			case "rewrite":
				return a.SetData("rewritten-out")
			case "block":
				return sc.ErrBlocked
			case "keep":
				return a.SetData(sc.Undefined) // undefined means keep
			}
			return nil
		}); err != nil {
			t.Fatal(err)
		}
	})
	errs := sc.Listen[sc.WarningEvent](ts).Consumer()
	defer errs.Stop()
	allow, _ := ts.connect(t, &sctest.Options{Query: "role=allow"})
	rewrite, _ := ts.connect(t, &sctest.Options{Query: "role=rewrite"})
	block, _ := ts.connect(t, &sctest.Options{Query: "role=block"})
	keep, _ := ts.connect(t, &sctest.Options{Query: "role=keep"})
	for _, c := range []*sctest.Client{allow, rewrite, block, keep} {
		c.Subscribe("ch")
	}
	if err := ts.Exchange().InvokePublish(ctxT(t), "ch", "hello"); err != nil {
		t.Fatal(err)
	}
	allow.Expect(`{"event":"#publish","data":{"channel":"ch","data":"hello"}}`)
	keep.Expect(`{"event":"#publish","data":{"channel":"ch","data":"hello"}}`)
	rewrite.Expect(`{"event":"#publish","data":{"channel":"ch","data":"rewritten-out"}}`)
	// The blocked socket's publisher still gets a plain ack.
	block.SendText(`{"event":"#publish","data":{"channel":"ch","data":"mine"},"cid":50}`)
	block.Expect(`{"rid":50}`)
	allow.Expect(`{"event":"#publish","data":{"channel":"ch","data":"mine"}}`)
	rewrite.Expect(`{"event":"#publish","data":{"channel":"ch","data":"rewritten-out"}}`)
	keep.Expect(`{"event":"#publish","data":{"channel":"ch","data":"mine"}}`)
	barrier(t, block)
	block.ExpectNothing(20 * time.Millisecond)
	got := map[string]bool{}
	for range 8 {
		select {
		case s := <-seen:
			got[s] = true
		case <-time.After(wait):
			t.Fatal("middleware not called for every socket")
		}
	}
	for _, want := range []string{`allow ch "hello"`, `block ch "hello"`, `rewrite ch "mine"`, `keep ch "mine"`} {
		if !got[want] {
			t.Errorf("middleware did not see %s (saw %v)", want, got)
		}
	}
	// The block is emitted as a socket error / server warning.
	w := next(t, errs)
	asError(t, w.Warning, "SilentMiddlewareBlockedError")
}

// Batching (docs/protocol.md §2.4): packets become one array frame.
func TestBatching(t *testing.T) {
	t.Parallel()
	t.Run("StartBatching then StopBatching", func(t *testing.T) {
		ts := newServer(t, sc.Options{BatchInterval: time.Hour})
		c, s := ts.connect(t, nil)
		c.Subscribe("ch")
		s.StartBatching()
		if !s.IsBatching() {
			t.Fatal("IsBatching false")
		}
		_ = s.Transmit("a", 1)
		_ = s.Transmit("b", 2)
		processed := s.InboundProcessedMessageCount()
		c.SendText(`[{"event":"echo","data":"x","cid":100},{"event":"echo","data":"y","cid":101}]`)
		eventually(t, "the batch processed", func() bool { return s.InboundProcessedMessageCount() > processed })
		if err := ts.Exchange().InvokePublish(ctxT(t), "ch", "p"); err != nil {
			t.Fatal(err)
		}
		// Nothing is written while batching.
		c.ExpectNothing(30 * time.Millisecond)
		s.StopBatching()
		c.Expect(`[{"event":"a","data":1},{"event":"b","data":2},{"rid":100,"data":"x"},{"rid":101,"data":"y"},{"event":"#publish","data":{"channel":"ch","data":"p"}}]`)
		if s.IsBatching() {
			t.Fatal("still batching")
		}
		_ = s.Transmit("c", 3)
		c.Expect(`{"event":"c","data":3}`)
	})
	t.Run("periodic flush", func(t *testing.T) {
		ts := newServer(t, sc.Options{BatchInterval: 20 * time.Millisecond})
		c, s := ts.connect(t, nil)
		s.StartBatching()
		for i := range 5 {
			_ = s.Transmit("e", i)
		}
		var got []string
		for len(got) < 5 {
			f := c.NextText()
			if !strings.HasPrefix(f, "[") {
				t.Fatalf("unbatched frame %s", f)
			}
			got = append(got, strings.Split(strings.Trim(f, "[]"), "},{")...)
		}
		if len(got) != 5 {
			t.Fatalf("packets %q", got)
		}
		s.CancelBatching()
		_ = s.Transmit("after", 1)
		c.Expect(`{"event":"after","data":1}`)
	})
	t.Run("CancelBatching discards", func(t *testing.T) {
		ts := newServer(t, sc.Options{BatchInterval: time.Hour})
		c, s := ts.connect(t, nil)
		s.StartBatching()
		_ = s.Transmit("lost", 1)
		s.CancelBatching()
		_ = s.Transmit("kept", 1)
		c.Expect(`{"event":"kept","data":1}`)
	})
	t.Run("manual batch", func(t *testing.T) {
		ts := newServer(t, sc.Options{})
		c, s := ts.connect(t, nil)
		s.StartBatch()
		_ = s.Transmit("a", 1)
		_ = s.Transmit("b", sc.Undefined)
		s.FlushBatch()
		c.Expect(`[{"event":"a","data":1},{"event":"b"}]`)
		s.StartBatch()
		_ = s.Transmit("gone", 1)
		s.CancelBatch()
		s.FlushBatch() // nothing left: no empty array frame
		_ = s.Transmit("c", 1)
		c.Expect(`{"event":"c","data":1}`)
	})
	t.Run("BatchOnHandshake", func(t *testing.T) {
		ts := newServer(t, sc.Options{BatchOnHandshake: true, BatchOnHandshakeDuration: 300 * time.Millisecond, BatchInterval: 20 * time.Millisecond})
		c := ts.dial(t, nil)
		// The handshake response itself is not batched.
		c.SendText(`{"event":"#handshake","data":{"authToken":null},"cid":1}`)
		if f := c.NextText(); !strings.HasPrefix(f, `{"rid":1,"data":{"id":`) {
			t.Fatalf("handshake response %s", f)
		}
		c.SendText(`{"event":"echo","data":1,"cid":2}`)
		c.SendText(`{"event":"echo","data":2,"cid":3}`)
		var got []string
		for len(got) < 2 {
			f := c.NextText()
			if !strings.HasPrefix(f, "[") {
				t.Fatalf("unbatched frame during batchOnHandshake: %s", f)
			}
			got = append(got, strings.Split(strings.Trim(f, "[]"), "},{")...)
		}
		// After the duration, frames are single packets again.
		deadline := time.Now().Add(wait)
		for cid := 10.0; ; cid++ {
			c.SendText(sctest.EventPacket("echo", 0, cid))
			f := c.NextText()
			if f == fmt.Sprintf(`{"rid":%v,"data":0}`, cid) {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("still batching: %s", f)
			}
			time.Sleep(20 * time.Millisecond)
		}
	})
}

// A client batch is handled element by element; non-packets each yield a
// raw event carrying the whole frame.
func TestClientBatch(t *testing.T) {
	t.Parallel()
	ts := newServer(t, sc.Options{})
	c, s := ts.connect(t, nil)
	raws := sc.Listen[sc.RawEvent](s).Consumer()
	defer raws.Stop()
	frame := `[1,"a",{"event":"echo","data":1,"cid":3},{"event":"echo","data":2,"cid":4},{}]`
	c.SendText(frame)
	c.Expect(`{"rid":3,"data":1}`)
	c.Expect(`{"rid":4,"data":2}`)
	for range 3 {
		if ev := next(t, raws); string(ev.Message) != frame {
			t.Fatalf("raw event %q", ev.Message)
		}
	}
	c.SendText(`[]`)
	barrier(t, c)
	if raws.Backpressure() != 0 {
		t.Fatal("[] produced raw events")
	}
}

// Send writes raw frames; it bypasses the codec.
func TestSendRaw(t *testing.T) {
	t.Parallel()
	ts := newServer(t, sc.Options{})
	c, s := ts.connect(t, nil)
	if err := s.Send("raw text"); err != nil {
		t.Fatal(err)
	}
	c.Expect("raw text")
	if err := s.Send([]byte{0xca, 0xfe}); err != nil {
		t.Fatal(err)
	}
	if f := c.NextFrame(); f.Op != 2 || string(f.Payload) != "\xca\xfe" {
		t.Fatalf("binary send: %v", f)
	}
	if err := s.Send(protocol.Binary("bin")); err != nil {
		t.Fatal(err)
	}
	if f := c.NextFrame(); f.Op != 2 || string(f.Payload) != "bin" {
		t.Fatalf("Binary send: %v", f)
	}
	asError(t, s.Send(5), "InvalidArgumentsError")
	_ = s.Disconnect(1000, "")
	c.ExpectClose()
	<-s.Done()
	if err := s.Send("late"); !errors.Is(err, sc.ErrClosed) {
		t.Fatalf("Send after close: %v", err)
	}
}

// Transmit data shapes: absent, null, bytes.
func TestTransmitShapes(t *testing.T) {
	t.Parallel()
	ts := newServer(t, sc.Options{})
	c, s := ts.connect(t, nil)
	for _, tc := range []struct {
		data any
		want string
	}{
		{sc.Undefined, `{"event":"e"}`},
		{nil, `{"event":"e","data":null}`},
		{[]byte("hello"), `{"event":"e","data":{"base64":true,"data":"aGVsbG8="}}`},
		{map[string]any{"b": protocol.Binary{1, 2, 3}}, `{"event":"e","data":{"b":{"base64":true,"data":"AQID"}}}`},
		{sc.Data(`{"raw":true}`), `{"event":"e","data":{"raw":true}}`},
		{"<&>", `{"event":"e","data":"<&>"}`},
	} {
		if err := s.Transmit("e", tc.data); err != nil {
			t.Fatal(err)
		}
		c.Expect(tc.want)
	}
	if err := s.Transmit("e", make(chan int)); err == nil {
		t.Fatal("unencodable data accepted")
	}
}

// The server counts its sockets that batch (deliveries skip the batch
// check while none does): the count follows periodic and manual batches,
// the handshake's batching, and closes.
func TestBatchingSocketsCount(t *testing.T) {
	t.Parallel()
	ts := newServer(t, sc.Options{BatchInterval: time.Hour})
	_, s := ts.connect(t, nil)
	want := func(n int32) {
		t.Helper()
		if got := sc.BatchingSockets(ts.Server); got != n {
			t.Fatalf("%d sockets batching, want %d", got, n)
		}
	}
	want(0)
	s.StartBatching()
	want(1)
	s.StartBatch()
	want(1)
	s.StopBatching()
	want(1) // the manual batch is still open
	s.FlushBatch()
	want(0)
	s.StartBatch()
	s.CancelBatch()
	want(0)
	s.StartBatching()
	s.CancelBatching()
	want(0)
	s.StartBatching()
	s.Disconnect(1000, "")
	eventually(t, "the closed socket no longer counted", func() bool { return sc.BatchingSockets(ts.Server) == 0 })
	s.StartBatching() // closed: not counted
	want(0)

	hs := newServer(t, sc.Options{BatchOnHandshake: true, BatchOnHandshakeDuration: 500 * time.Millisecond})
	hs.connect(t, nil)
	eventually(t, "the handshake's batching counted", func() bool { return sc.BatchingSockets(hs.Server) == 1 })
	eventually(t, "the handshake's batching over", func() bool { return sc.BatchingSockets(hs.Server) == 0 })
}
