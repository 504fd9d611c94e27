package socketcluster_test

import (
	"context"
	"encoding/json"
	"errors"
	"runtime/debug"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	sc "github.com/socketcluster-go/socketcluster"
	"github.com/socketcluster-go/socketcluster/broker"
	"github.com/socketcluster-go/socketcluster/internal/sctest"
)

// A client's #subscribe of a channel that this instance has not
// subscribed yet waits for the broker, but the socket's next packets do
// not wait for it (socket_pubsub.go subscribeAsync).

// gateBroker is a broker whose Subscribe blocks until the test opens the
// gate (or returns fail), and which records its calls.
type gateBroker struct {
	gate    chan struct{}
	entered chan string
	fail    atomic.Pointer[error] // Subscribe's answer after the gate

	mu    sync.Mutex
	calls []string // "+ch" for Subscribe, "-ch" for Unsubscribe
}

func newGateBroker() *gateBroker {
	return &gateBroker{gate: make(chan struct{}), entered: make(chan string, 1000)}
}

func (b *gateBroker) Start(context.Context, broker.Handler) error   { return nil }
func (b *gateBroker) Close() error                                  { return nil }
func (b *gateBroker) Publish(context.Context, string, []byte) error { return nil }

func (b *gateBroker) Subscribe(ctx context.Context, chans []string) error {
	for _, ch := range chans {
		b.entered <- ch
	}
	select {
	case <-b.gate:
	case <-ctx.Done():
		return ctx.Err()
	}
	if err := b.fail.Load(); err != nil {
		return *err
	}
	b.record("+", chans)
	return nil
}

func (b *gateBroker) Unsubscribe(_ context.Context, chans []string) error {
	b.record("-", chans)
	return nil
}

func (b *gateBroker) record(op string, chans []string) {
	b.mu.Lock()
	defer b.mu.Unlock()
	for _, ch := range chans {
		b.calls = append(b.calls, op+ch)
	}
}

func (b *gateBroker) log() []string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return slices.Clone(b.calls)
}

// awaitEntered waits until the broker's Subscribe of channel is in progress.
func (b *gateBroker) awaitEntered(t *testing.T, channel string) {
	t.Helper()
	timeout := time.After(wait)
	for {
		select {
		case ch := <-b.entered:
			if ch == channel {
				return
			}
		case <-timeout:
			t.Fatalf("the broker was not asked to subscribe %q", channel)
		}
	}
}

// heldSubscribe starts a server whose broker holds subscribes until its
// gate closes, connects a client and sends its #subscribe of channel; it
// returns once the broker holds that subscribe, with the #subscribe's cid.
func heldSubscribe(t *testing.T, channel string) (*gateBroker, *testServer, *sctest.Client, *sc.Socket, float64) {
	t.Helper()
	b := newGateBroker()
	ts := newServer(t, sc.Options{Broker: b, BrokerTimeout: time.Minute})
	c, sock := ts.connect(t, &sctest.Options{AutoPong: true})
	cid := subscribeCid(c, channel)
	b.awaitEntered(t, channel)
	return b, ts, c, sock, cid
}

func subscribeCid(c *sctest.Client, channel string) float64 {
	cid := c.NextCid()
	c.SendText(sctest.EventPacket("#subscribe", map[string]any{"channel": channel}, cid))
	return cid
}

// expectAnswers reads the next frames, which must be successful answers
// to cids, in that order.
func expectAnswers(t *testing.T, c *sctest.Client, cids ...float64) {
	t.Helper()
	for _, cid := range cids {
		f := c.NextFrame()
		p, ok := sctest.ParsePacket(f.Text())
		if !ok || p.Rid == nil || *p.Rid != cid || p.Error != nil {
			t.Fatalf("want the answer to %v, got %s", cid, f.Text())
		}
	}
}

func errorName(raw json.RawMessage) string {
	var e struct {
		Name string `json:"name"`
	}
	_ = json.Unmarshal(raw, &e)
	return e.Name
}

// While the broker holds a #subscribe, the same socket's RPCs and its
// publishes to other channels are answered; the #subscribe is answered
// once the broker confirms, and the channel's publications reach the
// socket.
func TestSubscribeDoesNotHoldTheReader(t *testing.T) {
	t.Parallel()
	b, ts, c, sock, sub := heldSubscribe(t, "slow")
	if r := c.Invoke("echo", "meanwhile"); string(r.Data) != `"meanwhile"` {
		t.Fatalf("echo while the subscribe waits: %s", r.Raw)
	}
	if r := c.AwaitResponse(publishCid(c, "other", 1)); r.Error != nil {
		t.Fatalf("publish while the subscribe waits: %s", r.Raw)
	}
	if !sock.IsSubscribed("slow") {
		t.Fatal("a pending subscribe does not count as subscribed")
	}
	close(b.gate)
	if r := c.AwaitResponse(sub); r.Error != nil || r.Data != nil {
		t.Fatalf("subscribe: %s", r.Raw)
	}
	if err := ts.Exchange().Publish(context.Background(), "slow", "hello"); err != nil {
		t.Fatal(err)
	}
	c.ExpectMatch(`^\{"event":"#publish","data":\{"channel":"slow","data":"hello"\}\}$`)
	if got := b.log(); !slices.Equal(got, []string{"+slow"}) {
		t.Fatalf("broker calls %v", got)
	}
}

// A broker that fails the subscribe: the client gets a BrokerError, and
// the socket is not left in the channel.
func TestSubscribeBrokerError(t *testing.T) {
	t.Parallel()
	b := newGateBroker()
	fail := errors.New("no such luck")
	b.fail.Store(&fail)
	close(b.gate)
	ts := newServer(t, sc.Options{Broker: b, BrokerTimeout: time.Minute})
	c, sock := ts.connect(t, &sctest.Options{AutoPong: true})
	r := c.AwaitResponse(subscribeCid(c, "doomed"))
	if errorName(r.Error) != "BrokerError" {
		t.Fatalf("subscribe with a failing broker: %s", r.Raw)
	}
	if sock.IsSubscribed("doomed") || len(sock.Subscriptions()) != 0 {
		t.Fatalf("subscriptions after a failed subscribe: %v", sock.Subscriptions())
	}
	// The socket can subscribe again once the broker works.
	b.fail.Store(nil)
	c.Subscribe("doomed")
	if !sock.IsSubscribed("doomed") {
		t.Fatal("not subscribed after the retry")
	}
}

// An #unsubscribe (and a second #subscribe) of a channel whose subscribe
// waits for the broker wait behind it: the answers come in the order the
// packets were sent, and the socket ends unsubscribed.
func TestUnsubscribeWaitsForPendingSubscribe(t *testing.T) {
	t.Parallel()
	b, _, c, sock, sub := heldSubscribe(t, "ch")
	unsub := c.NextCid()
	c.SendText(sctest.EventPacket("#unsubscribe", "ch", unsub))
	barrier(t, c) // the #unsubscribe was read and is waiting
	c.ExpectNothing(50 * time.Millisecond)
	close(b.gate)
	expectAnswers(t, c, sub, unsub)
	if sock.IsSubscribed("ch") {
		t.Fatal("subscribed after subscribe then unsubscribe")
	}
	eventually(t, "the broker unsubscribed", func() bool {
		return slices.Equal(b.log(), []string{"+ch", "-ch"})
	})
}

// A socket that goes away while its subscribe waits leaves nothing
// behind: once the broker answers, the channel is unsubscribed.
func TestDisconnectDuringPendingSubscribe(t *testing.T) {
	t.Parallel()
	b, _, c, sock, _ := heldSubscribe(t, "gone")
	c.Close()
	eventually(t, "the socket closed", func() bool { return sock.State() == sc.StateClosed })
	close(b.gate)
	eventually(t, "the broker unsubscribed", func() bool {
		return slices.Equal(b.log(), []string{"+gone", "-gone"})
	})
	if len(sock.Subscriptions()) != 0 {
		t.Fatalf("closed socket still in %v", sock.Subscriptions())
	}
}

// Pending subscribes count against SocketChannelLimit.
func TestChannelLimitCountsPendingSubscribes(t *testing.T) {
	t.Parallel()
	b := newGateBroker()
	ts := newServer(t, sc.Options{Broker: b, BrokerTimeout: time.Minute, SocketChannelLimit: 1})
	c, _ := ts.connect(t, &sctest.Options{AutoPong: true})
	first := subscribeCid(c, "one")
	b.awaitEntered(t, "one")
	r := c.AwaitResponse(subscribeCid(c, "two"))
	if errorName(r.Error) != "BrokerError" {
		t.Fatalf("a second channel over the limit while the first waits: %s", r.Raw)
	}
	close(b.gate)
	if r := c.AwaitResponse(first); r.Error != nil {
		t.Fatalf("first subscribe: %s", r.Raw)
	}
}

// Many sockets subscribing one channel at once while the broker holds
// it: every one is answered once it confirms.
func TestManySocketsSubscribeOnePendingChannel(t *testing.T) {
	t.Parallel()
	b := newGateBroker()
	ts := newServer(t, sc.Options{Broker: b, BrokerTimeout: time.Minute})
	const n = 40
	clients := make([]*sctest.Client, n)
	cids := make([]float64, n)
	for i := range clients {
		clients[i], _ = ts.connect(t, &sctest.Options{AutoPong: true})
		cids[i] = subscribeCid(clients[i], "crowd")
	}
	b.awaitEntered(t, "crowd")
	for _, c := range clients {
		barrier(t, c)
	}
	close(b.gate)
	for i, c := range clients {
		if r := c.AwaitResponse(cids[i]); r.Error != nil {
			t.Fatalf("client %d: %s", i, r.Raw)
		}
	}
	if err := ts.Exchange().Publish(context.Background(), "crowd", "all"); err != nil {
		t.Fatal(err)
	}
	for _, c := range clients {
		c.ExpectMatch(`^\{"event":"#publish","data":\{"channel":"crowd","data":"all"\}\}$`)
	}
}

// A KickOut made as soon as the client has its subscribe answer takes
// effect before it returns, while the goroutine that answered has not yet
// finished the subscribe (held there by a hook).
func TestKickOutRightAfterSubscribeAnswer(t *testing.T) {
	// Not parallel: the hook is process-wide.
	b := newGateBroker()
	close(b.gate)
	ts := newServer(t, sc.Options{Broker: b, BrokerTimeout: time.Minute})
	c, sock := ts.connect(t, &sctest.Options{AutoPong: true})
	release := make(chan struct{})
	held := make(chan struct{}, 1)
	sc.SetSubscribeAnswered(t, func(channel string) {
		if channel == "held" {
			held <- struct{}{}
			<-release
		}
	})
	c.Subscribe("held")
	<-held
	if err := sock.KickOut([]string{"held"}, sc.Undefined); err != nil {
		t.Fatalf("kick out: %v", err)
	}
	if sock.IsSubscribed("held") || len(sock.Subscriptions()) != 0 {
		t.Fatalf("after the kick out the socket is in %v", sock.Subscriptions())
	}
	c.Expect(`{"event":"#kickOut","data":{"channel":"held"}}`)
	close(release)
	// The subscribe finishes with nothing left to do: the socket stays
	// out, and can subscribe again.
	c.Subscribe("held")
	if !sock.IsSubscribed("held") {
		t.Fatal("not subscribed again")
	}
	eventually(t, "the broker subscribed twice", func() bool {
		return slices.Equal(b.log(), []string{"+held", "-held", "+held"})
	})
}

// Operations queued behind a pending subscribe, one of them a subscribe
// that waits for the broker in turn, run once each and in order, with
// their answers in the order the packets came.
func TestQueueBehindResubscribe(t *testing.T) {
	t.Parallel()
	b := newGateBroker()
	ts := newServer(t, sc.Options{Broker: b, BrokerTimeout: time.Minute})
	c, sock := ts.connect(t, &sctest.Options{AutoPong: true})
	var cids []float64
	cids = append(cids, subscribeCid(c, "ch"))
	b.awaitEntered(t, "ch")
	for _, ev := range []string{"#unsubscribe", "#subscribe", "#unsubscribe", "#subscribe"} {
		cid := c.NextCid()
		var data any = "ch"
		if ev == "#subscribe" {
			data = map[string]any{"channel": "ch"}
		}
		c.SendText(sctest.EventPacket(ev, data, cid))
		cids = append(cids, cid)
	}
	barrier(t, c)
	close(b.gate)
	expectAnswers(t, c, cids...)
	if !sock.IsSubscribed("ch") {
		t.Fatal("not subscribed after the last #subscribe")
	}
	c.ExpectNothing(50 * time.Millisecond)
}

// Thousands of #unsubscribe/#subscribe pairs queued behind a pending
// subscribe, on a channel that another socket keeps subscribed (so each
// queued #subscribe is answered within its own hub call): they run in
// order without nesting one call per queued subscribe (a small stack
// limit would end the process otherwise), and every one is answered.
func TestLongQueueBehindPendingSubscribe(t *testing.T) {
	// Not parallel: it lowers the process's stack limit.
	defer debug.SetMaxStack(debug.SetMaxStack(4 << 20))
	const pairs = 20000
	sc.SetMaxQueuedBehindJoin(t, 2*pairs)
	b := newGateBroker()
	ts := newServer(t, sc.Options{Broker: b, BrokerTimeout: time.Minute})
	c, sock := ts.connect(t, &sctest.Options{AutoPong: true})
	other, _ := ts.connect(t, &sctest.Options{AutoPong: true})
	first := subscribeCid(c, "ch")
	b.awaitEntered(t, "ch")
	otherSub := subscribeCid(other, "ch")
	var want []float64
	for batch := 0; batch < 2*pairs; batch += 1000 {
		var sb strings.Builder
		sb.WriteByte('[')
		for i := batch; i < batch+1000; i++ {
			if i > batch {
				sb.WriteByte(',')
			}
			cid := c.NextCid()
			want = append(want, cid)
			if i%2 == 0 {
				sb.WriteString(sctest.EventPacket("#unsubscribe", "ch", cid))
			} else {
				sb.WriteString(sctest.EventPacket("#subscribe", map[string]any{"channel": "ch"}, cid))
			}
		}
		sb.WriteByte(']')
		c.SendText(sb.String())
	}
	barrier(t, c)
	close(b.gate)
	if r := other.AwaitResponse(otherSub); r.Error != nil {
		t.Fatalf("the other socket's subscribe: %s", r.Raw)
	}
	expectAnswers(t, c, append([]float64{first}, want...)...)
	if !sock.IsSubscribed("ch") {
		t.Fatal("not subscribed after the last #subscribe")
	}
}

// A KickOut racing the client's #subscribe and #unsubscribe of the same
// channel leaves the socket's subscriptions and the hub agreeing: a
// socket that counts as subscribed gets the channel's publications.
func TestKickOutRacingSubscribe(t *testing.T) {
	t.Parallel()
	ts := newServer(t, sc.Options{})
	c, sock := ts.connect(t, &sctest.Options{AutoPong: true})
	keep, _ := ts.connect(t, &sctest.Options{AutoPong: true})
	keep.Subscribe("ch") // the channel stays subscribed on this instance
	for range 300 {
		subscribeCid(c, "ch")
		done := make(chan struct{})
		go func() {
			defer close(done)
			_ = sock.KickOut([]string{"ch"}, sc.Undefined)
		}()
		unsub := c.NextCid()
		c.SendText(sctest.EventPacket("#unsubscribe", "ch", unsub))
		subscribeCid(c, "ch")
		<-done
		barrier(t, c)
		eventually(t, "the subscriptions and the hub agree", func() bool {
			return sock.IsSubscribed("ch") == sc.InHub(ts.Server, sock, "ch")
		})
	}
}

// A server-side Subscribe made while the client's own #unsubscribe of
// the channel is under way (between the socket forgetting the channel and
// leaving it in the hub) runs after it: the socket ends up subscribed, and
// its subscriptions and the hub agree. Before, Subscribe's join saw the
// channel forgotten, found the socket still in the hub, and the
// unsubscribe's hub removal then left it subscribed but out of the hub.
func TestSubscribeDuringUnsubscribe(t *testing.T) {
	ts := newServer(t, sc.Options{})
	c, sock := ts.connect(t, &sctest.Options{AutoPong: true})
	keep, _ := ts.connect(t, &sctest.Options{AutoPong: true})
	keep.Subscribe("raced") // the channel stays subscribed on this instance
	c.Subscribe("raced")
	var once sync.Once
	sc.SetChannelLeaving(t, func(s *sc.Socket, channel string) {
		if s == sock && channel == "raced" {
			once.Do(func() {
				if err := sock.Subscribe("raced"); err != nil {
					t.Errorf("subscribe: %v", err)
				}
			})
		}
	})
	if r := c.Invoke("#unsubscribe", "raced"); r.Error != nil {
		t.Fatalf("unsubscribe: %s", r.Raw)
	}
	barrier(t, c)
	eventually(t, "subscribed again, in the hub too", func() bool {
		return sock.IsSubscribed("raced") && sc.InHub(ts.Server, sock, "raced")
	})
}

// A server-side Subscribe made while operations on the channel are
// queued behind its pending subscribe runs after them: after KickOut
// (its leave queued) the socket ends up subscribed, as the two calls were
// made in that order; likewise after the client's queued #unsubscribe.
func TestSubscribeQueuesBehindPendingOperations(t *testing.T) {
	t.Parallel()
	for _, kick := range []bool{true, false} {
		t.Run(map[bool]string{true: "kickOut", false: "unsubscribe"}[kick], func(t *testing.T) {
			t.Parallel()
			b, ts, c, sock, sub := heldSubscribe(t, "ch")
			var unsub float64
			if kick {
				_ = sock.KickOut([]string{"ch"}, sc.Undefined)
			} else {
				unsub = c.NextCid()
				c.SendText(sctest.EventPacket("#unsubscribe", "ch", unsub))
				barrier(t, c) // queued behind the pending subscribe
			}
			if err := sock.Subscribe("ch"); err != nil {
				t.Fatal(err)
			}
			close(b.gate)
			if kick {
				c.AwaitResponse(sub)
			} else {
				expectAnswers(t, c, sub, unsub)
			}
			eventually(t, "subscribed by the later Subscribe, in the hub too", func() bool {
				return sock.IsSubscribed("ch") && sc.InHub(ts.Server, sock, "ch")
			})
		})
	}
}

// A client may have at most 1 024 packets waiting behind one channel's
// pending subscribe: the ones beyond are refused at once with an
// InvalidActionError, the others answered in order once the broker
// confirms.
func TestQueueBehindPendingSubscribeIsBounded(t *testing.T) {
	t.Parallel()
	const limit, extra = 1024, 50
	b, _, c, _, first := heldSubscribe(t, "ch")
	var cids []float64
	var sb strings.Builder
	sb.WriteByte('[')
	for i := range limit + extra {
		if i > 0 {
			sb.WriteByte(',')
		}
		cid := c.NextCid()
		cids = append(cids, cid)
		sb.WriteString(sctest.EventPacket("#unsubscribe", "ch", cid))
	}
	sb.WriteByte(']')
	c.SendText(sb.String())
	for _, cid := range cids[limit:] {
		r := c.AwaitResponse(cid)
		if errorName(r.Error) != "InvalidActionError" {
			t.Fatalf("packet %v beyond the limit: %s", cid, r.Raw)
		}
	}
	close(b.gate)
	expectAnswers(t, c, first, cids[0])
	// The other queued #unsubscribes find the channel left: an error each,
	// in order.
	for _, cid := range cids[1:limit] {
		r := c.AwaitResponse(cid)
		if errorName(r.Error) != "BrokerError" {
			t.Fatalf("a later #unsubscribe: %s", r.Raw)
		}
	}
}
