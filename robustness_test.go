package socketcluster_test

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gobwas/ws"
	"go.uber.org/goleak"

	sc "github.com/socketcluster-go/socketcluster"
	"github.com/socketcluster-go/socketcluster/internal/sctest"
	"github.com/socketcluster-go/socketcluster/protocol"
)

// A subscriber that stops reading is disconnected once its outbound queue
// passes OutboundQueueLimit; the publisher and the other subscribers go on
// undisturbed and miss nothing.
func TestSlowConsumer(t *testing.T) {
	t.Parallel()
	for _, own := range []bool{false, true} {
		t.Run(map[bool]string{false: "tcpconn", true: "owned-descriptors"}[own], func(t *testing.T) {
			t.Parallel()
			slowConsumer(t, own)
		})
	}
}

func slowConsumer(t *testing.T, own bool) {
	const limit = 1 << 20
	// A generous broker timeout: on a loaded machine under -race one
	// 256 KiB publish can take seconds to go through the in-process broker.
	ts := newServer(t, sc.Options{OutboundQueueLimit: limit, BrokerTimeout: time.Minute, OwnDescriptors: own})
	slowEvents := sc.Listen[sc.SlowConsumerEvent](ts).Consumer()
	defer slowEvents.Stop()
	discs := sc.Listen[sc.DisconnectionEvent](ts).Consumer()
	defer discs.Stop()

	slow, slowSocket := ts.connect(t, &sctest.Options{QueueSize: 1})
	slow.Subscribe("big")
	fast, fastSocket := ts.connect(t, &sctest.Options{AutoPong: true})
	fast.Subscribe("big")

	pad := strings.Repeat("x", 256<<10)
	publish := func(i int) {
		t.Helper()
		// Each publish has its own deadline: the test as a whole can take
		// longer than sctest's default on a loaded machine.
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		start := time.Now()
		if err := ts.Exchange().InvokePublish(ctx, "big", map[string]any{"i": i, "pad": pad}); err != nil {
			t.Fatal(err)
		}
		if d := time.Since(start); d > 30*time.Second { // blocked behind the slow subscriber, not slow
			t.Fatalf("publish %d blocked for %v", i, d)
		}
		want := fmt.Sprintf(`{"event":"#publish","data":{"channel":"big","data":{"i":%d,"pad":"%s"}}}`, i, pad)
		if got := fast.NextText(); got != want {
			t.Fatalf("fast subscriber: message %d is %.100s…", i, got)
		}
	}
	i := 0
	for ; ts.SlowConsumerCount() == 0; i++ {
		if i == 2000 {
			t.Fatal("the slow consumer was never detected")
		}
		publish(i)
	}
	for end := i + 20; i < end; i++ {
		publish(i)
	}
	ev := next(t, slowEvents)
	if ev.Socket != slowSocket || ev.QueuedBytes <= limit {
		t.Fatalf("slowConsumer event %+v (socket %s)", ev, ev.Socket.ID())
	}
	if ts.SlowConsumerCount() != 1 {
		t.Fatalf("SlowConsumerCount %d", ts.SlowConsumerCount())
	}
	if d := next(t, discs); d.Socket != slowSocket || d.Code != protocol.CloseSlowConsumer {
		t.Fatalf("disconnection %+v", d)
	}
	if fastSocket.State() != sc.StateOpen || slowSocket.State() != sc.StateClosed {
		t.Fatalf("states: fast %s slow %s", fastSocket.State(), slowSocket.State())
	}
	// Reading again, even after longer than the server waits for a close
	// reply, the slow client finds the close frame right after what the
	// network had buffered: the write under way was cut at a frame's end
	// and the queue dropped (issue 9 item 6: it used to see EOF).
	time.Sleep(4 * time.Second)
	code, reason, skipped := slow.ExpectClose()
	if code != protocol.CloseSlowConsumer || reason != protocol.SlowConsumerReason {
		t.Fatalf("slow client close %d %q after %d frames", code, reason, len(skipped))
	}
	// What it got before the close is what was on its way when the queue
	// went over the limit: at most the limit queued plus the sockets'
	// buffers, far less than everything published.
	if len(skipped) >= i-1 {
		t.Fatalf("the slow client got %d of %d messages before the close: the queue was not dropped", len(skipped), i)
	}
	barrier(t, fast)
}

// malformed frames, each on a fresh connection after its handshake; the
// server must neither panic nor stop serving the others.
func TestMalformedInput(t *testing.T) {
	t.Parallel()
	ts := newServer(t, sc.Options{MaxPayload: 4 << 20})
	canary, _ := ts.connect(t, nil)
	deep := func(n int) string { return strings.Repeat("[", n) + strings.Repeat("]", n) }
	hugeName := strings.Repeat("c", 1<<20)
	for _, tc := range []struct {
		name  string
		frame string
		want  string // expected answer ("" for none)
	}{
		{"numeric event", `{"event":5,"data":1,"cid":1}`, ""},
		{"object event", `{"event":{"a":1},"cid":1}`, ""},
		{"array event", `{"event":["echo"],"cid":1}`, ""},
		{"string cid", `{"event":"echo","data":1,"cid":"7"}`, ""},
		{"object cid", `{"event":"echo","data":1,"cid":{}}`, ""},
		{"cid out of range", `{"event":"echo","data":1,"cid":1e999}`, `{"rid":null,"data":1}`},
		{"string rid", `{"rid":"1","data":1}`, ""},
		{"null rid", `{"rid":null}`, ""},
		{"huge rid", `{"rid":1e308,"data":1}`, ""},
		{"negative zero cid", `{"event":"echo","data":"z","cid":-0}`, `{"rid":0,"data":"z"}`},
		{"subscribe channel number", `{"event":"#subscribe","data":{"channel":5},"cid":2}`, `{"rid":2,"error":{"message":"Subscribe channel name was malformatted","name":"InvalidActionError"}}`},
		{"subscribe channel array", `{"event":"#subscribe","data":{"channel":["a"]},"cid":2}`, `{"rid":2,"error":{"message":"Subscribe channel name was malformatted","name":"InvalidActionError"}}`},
		{"subscribe data array", `{"event":"#subscribe","data":[1],"cid":2}`, `{"rid":2,"error":{"message":"Subscribe channel name was malformatted","name":"InvalidActionError"}}`},
		{"subscribe string cid", `{"event":"#subscribe","data":{"channel":"a"},"cid":"2"}`, ""},
		{"publish channel null", `{"event":"#publish","data":{"channel":null},"cid":3}`, `{"rid":3,"error":{"message":"Publish channel name was malformatted","name":"InvalidActionError"}}`},
		{"publish without cid", `{"event":"#publish","data":{"channel":1}}`, ""},
		{"unsubscribe number", `{"event":"#unsubscribe","data":5,"cid":4}`, `{"rid":4,"error":{"message":"Unsubscribe channel name was malformatted","name":"InvalidActionError"}}`},
		{"unsubscribe absent", `{"event":"#unsubscribe","cid":4}`, `{"rid":4,"error":{"message":"Unsubscribe channel name was malformatted","name":"InvalidActionError"}}`},
		{"authenticate object", `{"event":"#authenticate","data":{"token":"x"},"cid":5}`, `{"rid":5,"error":{"message":"Invalid token format - Token must be a string","name":"AuthTokenError","isBadToken":true}}`},
		{"huge channel name", `{"event":"#subscribe","data":{"channel":"` + hugeName + `"},"cid":6}`, `{"rid":6}`},
		{"deep but valid", `{"event":"echo","data":` + deep(5000) + `,"cid":7}`, `{"rid":7,"data":` + deep(5000) + `}`},
		{"too deep for JSON decoders", `{"event":"echo","data":` + deep(100000) + `,"cid":8}`, ""},
		{"deep batch", `[` + deep(20000) + `]`, ""},
		{"batch of garbage", `[1,null,"x",[],{},{"rid":"x"}]`, ""},
		{"empty batch", `[]`, ""},
		{"invalid json", `{"event":"echo",`, ""},
		{"escaped unicode event", `{"event":"\u0065cho","data":"\ud83d\ude00","cid":10}`, `{"rid":10,"data":"\ud83d\ude00"}`},
		{"handshake again", `{"event":"#handshake","cid":11}`, ""},
		{"control characters", "\x00\x01\x02", ""},
		{"old protocol names", `{"event":"#disconnect","data":{"code":4000}}`, ""},
		{"unknown hash invoke", `{"event":"#foo","cid":12}`, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, _ := ts.connect(t, nil)
			c.SendText(tc.frame)
			if tc.want != "" {
				c.Expect(tc.want)
			}
			if tc.name == "handshake again" {
				c.ExpectMatch(`\{"rid":11,"data":\{"id":"[^"]+","pingTimeout":30000,"isAuthenticated":false\}\}`)
			}
			barrier(t, c)
			barrier(t, canary)
		})
	}
	t.Run("binary frames", func(t *testing.T) {
		c, _ := ts.connect(t, nil)
		c.SendBinary([]byte{0xff, 0x00, 0xfe})
		c.SendBinary([]byte(`{"event":"echo","data":"bin","cid":20}`))
		c.Expect(`{"rid":20,"data":"bin"}`)
		barrier(t, canary)
	})
	t.Run("fragmented message with a ping inside", func(t *testing.T) {
		c, _ := ts.connect(t, nil)
		must(t, c.SendFrame(ws.OpText, false, []byte(`{"event":"echo",`)))
		must(t, c.SendFrame(ws.OpPing, true, []byte("p")))
		must(t, c.SendFrame(ws.OpContinuation, false, []byte(`"data":"frag",`)))
		must(t, c.SendFrame(ws.OpContinuation, true, []byte(`"cid":21}`)))
		c.Expect(`{"rid":21,"data":"frag"}`)
	})
	t.Run("unmasked frame", func(t *testing.T) {
		c, _ := ts.connect(t, nil)
		must(t, c.WriteRaw([]byte{0x81, 0x02, 'h', 'i'}))
		c.ExpectCloseNow(1002, "")
		barrier(t, canary)
	})
	t.Run("garbage bytes", func(t *testing.T) {
		c, _ := ts.connect(t, nil)
		must(t, c.WriteRaw([]byte("GET / HTTP/1.1\r\n\r\n")))
		c.WaitEnd()
		barrier(t, canary)
	})
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// A message over MaxPayload closes the connection with 1009.
func TestMaxPayload(t *testing.T) {
	t.Parallel()
	ts := newServer(t, sc.Options{MaxPayload: 1 << 20})
	canary, _ := ts.connect(t, nil)
	c, s := ts.connect(t, nil)
	errs := sc.Listen[sc.ErrorEvent](s).Consumer()
	defer errs.Stop()
	big := `{"event":"echo","data":"` + strings.Repeat("a", 5<<20) + `","cid":9}`
	go func() { _ = c.TrySendText(big) }() // the server stops reading midway
	code, _, _ := c.ExpectClose()
	if code != 1009 {
		t.Fatalf("close code %d, want 1009", code)
	}
	e := asError(t, next(t, errs).Error, "RangeError")
	if e.Message != "Max payload size exceeded" {
		t.Fatalf("error %q", e.Message)
	}
	// Just under the limit is fine.
	ok := `{"event":"echo","data":"` + strings.Repeat("b", (1<<20)-64) + `","cid":2}`
	canary.SendText(ok)
	if got := canary.NextText(); len(got) < 1<<19 {
		t.Fatalf("answer of %d bytes", len(got))
	}
	barrier(t, canary)
}

// Floods of small frames: every one is processed, in order, and the
// server stays responsive for others.
func TestFlood(t *testing.T) {
	t.Parallel()
	ts := newServer(t, sc.Options{})
	var mu sync.Mutex
	count := 0
	ts.HandleReceiver("noop", func(*sc.Socket, sc.Data) { mu.Lock(); count++; mu.Unlock() })
	canary, _ := ts.connect(t, nil)
	c, _ := ts.connect(t, nil)
	const n = 10000
	for range n {
		c.SendText(`{"event":"noop","data":1}`)
	}
	barrier(t, c)
	mu.Lock()
	got := count
	mu.Unlock()
	if got != n {
		t.Fatalf("%d of %d transmits handled", got, n)
	}
	barrier(t, canary)

	// Invokes pipelined without waiting: every answer, in order.
	done := make(chan error, 1)
	go func() {
		for i := range n {
			if err := c.TrySendText(sctest.EventPacket("echo", i, float64(1000+i))); err != nil {
				done <- err
				return
			}
		}
		done <- nil
	}()
	for i := range n {
		if got, want := c.NextText(), fmt.Sprintf(`{"rid":%d,"data":%d}`, 1000+i, i); got != want {
			t.Fatalf("answer %d: %s, want %s", i, got, want)
		}
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	// Raw garbage flood.
	for range n {
		c.SendText("x")
	}
	barrier(t, c)
	barrier(t, canary)
}

// Connecting and disconnecting leaves no goroutine behind once the server
// is closed.
func TestNoGoroutineLeak(t *testing.T) {
	// Not parallel: it counts the process's goroutines.
	before := goleak.IgnoreCurrent()
	defer func() {
		// goleak retries for about half a second; on a loaded machine the
		// last poller worker and the HTTP server's connection goroutines
		// may take longer to see the end, so wait up to the usual bound.
		for deadline := time.Now().Add(wait); goleak.Find(before) != nil && time.Now().Before(deadline); {
			time.Sleep(50 * time.Millisecond)
		}
		goleak.VerifyNone(t, before)
	}()
	srv, err := sc.New(sc.Options{Logger: quietLogger, PingInterval: 20 * time.Millisecond, AckTimeout: 50 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	l, err := listen()
	if err != nil {
		t.Fatal(err)
	}
	served := make(chan struct{})
	go func() { _ = srv.Serve(l); close(served) }()
	srv.HandleProcedure("echo", func(r *sc.Request) { _ = r.End(r.Data) })
	ts := &testServer{Server: srv, addr: l.Addr().String()}
	conns := sc.Listen[sc.ConnectionEvent](srv).Consumer()
	var sockets []*sc.Socket
	for i := range 20 {
		c := sctest.Dial(t, ts.addr, &sctest.Options{AutoPong: true})
		c.Handshake(nil)
		sockets = append(sockets, next(t, conns).Socket)
		c.Subscribe(fmt.Sprint("ch", i%3))
		barrier(t, c)
		switch i % 4 {
		case 0:
			_ = c.SendClose(1000, "")
			c.WaitEnd()
		case 1:
			c.Close() // no close frame
		case 2:
			_, _ = sockets[i].Invoke(context.Background(), "unanswered", 1)
			_ = sockets[i].Disconnect(4000, "")
			c.ExpectClose()
			c.WaitEnd()
		case 3:
			// left open: Close must end it
		}
	}
	conns.Stop()
	pending := sctest.Dial(t, ts.addr, nil) // never handshakes
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	if err := srv.Close(ctx); err != nil {
		t.Fatal(err)
	}
	<-served
	for _, s := range sockets {
		select {
		case <-s.Done():
		case <-time.After(wait):
			t.Fatalf("socket %s not ended", s.ID())
		}
	}
	if srv.ClientsCount() != 0 || srv.PendingClientsCount() != 0 {
		t.Fatalf("counts %d %d", srv.ClientsCount(), srv.PendingClientsCount())
	}
	pending.Close()
}

// A text frame that is not UTF-8 closes the socket with 1007, as the
// reference's ws engine does; other sockets are not affected.
func TestInvalidUTF8Closes1007(t *testing.T) {
	t.Parallel()
	ts := newServer(t, sc.Options{})
	other, _ := ts.connect(t, nil)
	c, _ := ts.connect(t, nil)
	c.SendText("{\"event\":\"echo\",\"data\":\"\xff\xfe\",\"cid\":9}")
	if code, _, _ := c.ExpectClose(); code != protocol.CloseInvalidPayload {
		t.Fatalf("close code %d, want 1007", code)
	}
	barrier(t, other)
}
