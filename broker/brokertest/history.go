package brokertest

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/socketcluster-go/socketcluster/broker"
)

// RunHistory runs the conformance suite of broker.History as subtests of
// t: positions, acknowledgement after storage, delivery in offset order
// exactly once to every subscribed instance (the publisher included, with
// concurrent publishers on several instances), reading (newest, since a
// position, another epoch, a future position), the size and age limits,
// and that a channel whose history expired starts a new epoch.
//
// newBroker follows the rules of Run. Channels whose name starts with
// "small:" keep 5 publications, "ttl:" keep them 1 second; the others keep
// 1000 for a minute (HistoryOptionsFor).
func RunHistory(t *testing.T, newBroker func(t *testing.T) broker.History) {
	t.Helper()
	k := &hkit{newBroker: newBroker}
	t.Run("Positions", k.testPositions)
	t.Run("DeliveryOrderExactlyOnce", k.testDelivery)
	t.Run("ConcurrentPublishers", k.testConcurrent)
	t.Run("Read", k.testRead)
	t.Run("SizeLimit", k.testSize)
	t.Run("AgeLimit", k.testAge)
	t.Run("UnsubscribeStops", k.testUnsubscribe)
	t.Run("Batch", k.testBatch)
}

// HistoryOptionsFor is the history of channel in RunHistory.
func HistoryOptionsFor(channel string) broker.HistoryOptions {
	switch {
	case strings.HasPrefix(channel, "small:"):
		return broker.HistoryOptions{Size: 5, TTL: time.Minute}
	case strings.HasPrefix(channel, "ttl:"):
		return broker.HistoryOptions{Size: 1000, TTL: time.Second}
	}
	return broker.HistoryOptions{Size: 1000, TTL: time.Minute}
}

type hkit struct {
	newBroker func(t *testing.T) broker.History
	seq       atomic.Int64
}

// HistoryRecorder is a broker.HistoryHandler that records what a broker
// delivers; every channel keeps history (HistoryOptionsFor). Safe for
// concurrent use.
type HistoryRecorder struct {
	mu       sync.Mutex
	channels map[string]struct{}
	pubs     map[string][]broker.Publication
	lost     map[string]int
	plain    int
	statuses []error
}

// NewHistoryRecorder returns an empty HistoryRecorder.
func NewHistoryRecorder() *HistoryRecorder {
	return &HistoryRecorder{channels: map[string]struct{}{}, pubs: map[string][]broker.Publication{}, lost: map[string]int{}}
}

var _ broker.HistoryHandler = (*HistoryRecorder)(nil)

// Deliver implements broker.Handler; a plain delivery is counted (it must
// not happen on history channels).
func (h *HistoryRecorder) Deliver(string, []byte) {
	h.mu.Lock()
	h.plain++
	h.mu.Unlock()
}

// Channels implements broker.Handler.
func (h *HistoryRecorder) Channels() []string {
	h.mu.Lock()
	defer h.mu.Unlock()
	out := make([]string, 0, len(h.channels))
	for ch := range h.channels {
		out = append(out, ch)
	}
	return out
}

// AddChannels adds to what Channels returns; RemoveChannels removes.
func (h *HistoryRecorder) AddChannels(chs ...string) {
	h.mu.Lock()
	for _, ch := range chs {
		h.channels[ch] = struct{}{}
	}
	h.mu.Unlock()
}

// RemoveChannels removes from what Channels returns.
func (h *HistoryRecorder) RemoveChannels(chs ...string) {
	h.mu.Lock()
	for _, ch := range chs {
		delete(h.channels, ch)
	}
	h.mu.Unlock()
}

// Status implements broker.Handler.
func (h *HistoryRecorder) Status(err error) {
	h.mu.Lock()
	h.statuses = append(h.statuses, err)
	h.mu.Unlock()
}

// History implements broker.HistoryHandler.
func (h *HistoryRecorder) History(channel string) (broker.HistoryOptions, bool) {
	return HistoryOptionsFor(channel), true
}

// DeliverHistory implements broker.HistoryHandler.
func (h *HistoryRecorder) DeliverHistory(channel string, pub broker.Publication) {
	pub.Payload = append([]byte(nil), pub.Payload...)
	h.mu.Lock()
	h.pubs[channel] = append(h.pubs[channel], pub)
	h.mu.Unlock()
}

// HistoryLost implements broker.HistoryHandler.
func (h *HistoryRecorder) HistoryLost(channel string, _ broker.Position, _ error) {
	h.mu.Lock()
	h.lost[channel]++
	h.mu.Unlock()
}

// Got returns the publications delivered on channel, in order.
func (h *HistoryRecorder) Got(channel string) []broker.Publication {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]broker.Publication(nil), h.pubs[channel]...)
}

// Lost is the number of HistoryLost calls for channel.
func (h *HistoryRecorder) Lost(channel string) int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.lost[channel]
}

// Plain is the number of plain Deliver calls.
func (h *HistoryRecorder) Plain() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.plain
}

// Statuses returns what Status was called with.
func (h *HistoryRecorder) Statuses() []error {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]error(nil), h.statuses...)
}

// CheckSequence checks that pubs are the payloads want, in order, with
// offsets increasing by one in one epoch. It returns a description of the
// first difference, or "".
func CheckSequence(pubs []broker.Publication, want []string) string {
	if len(pubs) != len(want) {
		return fmt.Sprintf("got %d publications, want %d", len(pubs), len(want))
	}
	for i, p := range pubs {
		if string(p.Payload) != want[i] {
			return fmt.Sprintf("publication %d is %q, want %q", i, short(string(p.Payload)), short(want[i]))
		}
		if i > 0 && (p.Epoch != pubs[i-1].Epoch || p.Offset != pubs[i-1].Offset+1) {
			return fmt.Sprintf("publication %d at %+v follows %+v", i, p.Position, pubs[i-1].Position)
		}
	}
	return ""
}

type hinst struct {
	t *testing.T
	b broker.History
	h *HistoryRecorder
}

func (k *hkit) newInsts(t *testing.T, n int) []*hinst {
	t.Helper()
	out := make([]*hinst, n)
	for i := range out {
		in := &hinst{t: t, b: k.newBroker(t), h: NewHistoryRecorder()}
		ctx, cancel := context.WithTimeout(context.Background(), opTimeout)
		err := in.b.Start(ctx, in.h)
		cancel()
		if err != nil {
			t.Fatalf("brokertest: Start: %v", err)
		}
		t.Cleanup(func() { in.b.Close() })
		out[i] = in
	}
	return out
}

func (k *hkit) channel(prefix string) string {
	return fmt.Sprintf("%shist-%d-%d", prefix, time.Now().UnixNano(), k.seq.Add(1))
}

func (in *hinst) subscribe(chs ...string) {
	in.t.Helper()
	in.h.AddChannels(chs...)
	ctx, cancel := context.WithTimeout(context.Background(), opTimeout)
	defer cancel()
	if err := in.b.Subscribe(ctx, chs); err != nil {
		in.t.Fatalf("brokertest: Subscribe: %v", err)
	}
}

func (in *hinst) publish(ch, body string) broker.Position {
	in.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), opTimeout)
	defer cancel()
	pos, err := in.b.PublishHistory(ctx, ch, []byte(body), HistoryOptionsFor(ch))
	if err != nil {
		in.t.Fatalf("brokertest: PublishHistory: %v", err)
	}
	return pos
}

func (in *hinst) read(ch string, q broker.HistoryQuery) broker.HistoryResult {
	in.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), opTimeout)
	defer cancel()
	res, err := in.b.ReadHistory(ctx, ch, q, HistoryOptionsFor(ch))
	if err != nil {
		in.t.Fatalf("brokertest: ReadHistory: %v", err)
	}
	return res
}

func (in *hinst) waitPubs(ch string, n int) []broker.Publication {
	in.t.Helper()
	WaitUntil(in.t, arriveTimeout, fmt.Sprintf("%d publications on %s", n, ch), func() bool { return len(in.h.Got(ch)) >= n })
	time.Sleep(quietPeriod) // nothing more may come
	return in.h.Got(ch)
}

func bodies(prefix string, n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = prefix + strconv.Itoa(i)
	}
	return out
}

func (k *hkit) testPositions(t *testing.T) {
	in := k.newInsts(t, 1)[0]
	ch := k.channel("")
	var epoch string
	for i := 1; i <= 20; i++ {
		pos := in.publish(ch, "m"+strconv.Itoa(i))
		if i == 1 {
			epoch = pos.Epoch
			if epoch == "" {
				t.Fatal("empty epoch")
			}
		}
		if pos.Offset != uint64(i) || pos.Epoch != epoch {
			t.Fatalf("publication %d got position %+v, want offset %d epoch %s", i, pos, i, epoch)
		}
		// Acknowledged means stored: the history has it at once.
		res := in.read(ch, broker.HistoryQuery{Limit: 1})
		if len(res.Publications) != 1 || res.Publications[0].Position != pos || string(res.Publications[0].Payload) != "m"+strconv.Itoa(i) {
			t.Fatalf("after publication %d the history holds %+v", i, res.Publications)
		}
		if res.Top != pos {
			t.Fatalf("top %+v, want %+v", res.Top, pos)
		}
	}
	// Another channel has its own offsets.
	if pos := in.publish(k.channel(""), "x"); pos.Offset != 1 {
		t.Fatalf("first publication on a new channel at %+v", pos)
	}
}

func (k *hkit) testDelivery(t *testing.T) {
	ins := k.newInsts(t, 3)
	ch := k.channel("")
	for _, in := range ins {
		in.subscribe(ch)
	}
	want := bodies("d", 300)
	for _, b := range want {
		ins[0].publish(ch, b)
	}
	for i, in := range ins {
		if d := CheckSequence(in.waitPubs(ch, len(want)), want); d != "" {
			t.Errorf("instance %d: %s", i, d)
		}
		if got := in.h.Got(ch); len(got) > 0 && got[0].Offset != 1 {
			t.Errorf("instance %d: first offset %d", i, got[0].Offset)
		}
		if n := in.h.Plain(); n != 0 {
			t.Errorf("instance %d: %d plain deliveries on a history channel", i, n)
		}
		if n := in.h.Lost(ch); n != 0 {
			t.Errorf("instance %d: %d losses reported", i, n)
		}
	}
}

func (k *hkit) testConcurrent(t *testing.T) {
	ins := k.newInsts(t, 3)
	ch := k.channel("")
	for _, in := range ins {
		in.subscribe(ch)
	}
	const per = 200
	var wg sync.WaitGroup
	for p, in := range ins {
		wg.Add(1)
		go func() {
			defer wg.Done()
			ctx, cancel := context.WithTimeout(context.Background(), opTimeout)
			defer cancel()
			for i := range per {
				if _, err := in.b.PublishHistory(ctx, ch, []byte(fmt.Sprintf("p%d-%d", p, i)), HistoryOptionsFor(ch)); err != nil {
					t.Errorf("PublishHistory: %v", err)
					return
				}
			}
		}()
	}
	wg.Wait()
	ref := ins[0].waitPubs(ch, 3*per)
	var order []string
	for _, p := range ref {
		order = append(order, string(p.Payload))
	}
	if d := CheckSequence(ref, order); d != "" {
		t.Fatalf("instance 0: %s", d)
	}
	// Each publisher's own order is kept, every instance sees the same
	// sequence.
	next := make([]int, 3)
	dup := map[string]bool{}
	for _, b := range order {
		if dup[b] {
			t.Fatalf("%q delivered twice", b)
		}
		dup[b] = true
		var p, i int
		fmt.Sscanf(b, "p%d-%d", &p, &i)
		if i != next[p] {
			t.Fatalf("publisher %d: %q arrives when %d was expected", p, b, next[p])
		}
		next[p]++
	}
	for i, in := range ins[1:] {
		if d := CheckSequence(in.waitPubs(ch, 3*per), order); d != "" {
			t.Errorf("instance %d: %s", i+1, d)
		}
	}
}

func (k *hkit) testRead(t *testing.T) {
	in := k.newInsts(t, 1)[0]
	ch := k.channel("")
	empty := in.read(ch, broker.HistoryQuery{Limit: 10})
	if len(empty.Publications) != 0 || empty.Top.Offset != 0 || !empty.Recovered {
		t.Fatalf("new channel: %+v", empty)
	}
	var pos []broker.Position
	for i := range 10 {
		pos = append(pos, in.publish(ch, "r"+strconv.Itoa(i)))
	}
	if empty.Top.Epoch != "" && empty.Top.Epoch != pos[0].Epoch {
		t.Fatalf("the epoch of an empty channel %q changed at its first publication (%q)", empty.Top.Epoch, pos[0].Epoch)
	}
	res := in.read(ch, broker.HistoryQuery{Limit: 3})
	if d := CheckSequence(res.Publications, []string{"r7", "r8", "r9"}); d != "" || res.Top != pos[9] {
		t.Fatalf("newest 3: %s (top %+v)", d, res.Top)
	}
	if res := in.read(ch, broker.HistoryQuery{Limit: 0}); len(res.Publications) != 0 || res.Top != pos[9] {
		t.Fatalf("limit 0: %+v", res)
	}
	res = in.read(ch, broker.HistoryQuery{Since: &pos[3], Limit: 100})
	if d := CheckSequence(res.Publications, bodies("r", 10)[4:]); d != "" || !res.Recovered {
		t.Fatalf("since offset 4: %s, recovered %v", d, res.Recovered)
	}
	res = in.read(ch, broker.HistoryQuery{Since: &pos[3], Limit: 2})
	if d := CheckSequence(res.Publications, []string{"r4", "r5"}); d != "" || !res.Recovered {
		t.Fatalf("since offset 4, limit 2: %s, recovered %v", d, res.Recovered)
	}
	res = in.read(ch, broker.HistoryQuery{Since: &pos[9], Limit: 100})
	if len(res.Publications) != 0 || !res.Recovered {
		t.Fatalf("since the top: %+v", res)
	}
	zero := broker.Position{Offset: 0, Epoch: pos[0].Epoch}
	res = in.read(ch, broker.HistoryQuery{Since: &zero, Limit: 100})
	if d := CheckSequence(res.Publications, bodies("r", 10)); d != "" || !res.Recovered {
		t.Fatalf("since offset 0: %s, recovered %v", d, res.Recovered)
	}
	other := broker.Position{Offset: 3, Epoch: "not-" + pos[0].Epoch}
	res = in.read(ch, broker.HistoryQuery{Since: &other, Limit: 100})
	if res.Recovered {
		t.Fatalf("a position of another epoch recovered: %+v", res)
	}
	future := broker.Position{Offset: 11, Epoch: pos[0].Epoch}
	if _, err := in.b.ReadHistory(context.Background(), ch, broker.HistoryQuery{Since: &future, Limit: 5}, HistoryOptionsFor(ch)); !errors.Is(err, broker.ErrFuturePosition) {
		t.Fatalf("a future position: %v, want ErrFuturePosition", err)
	}
}

func (k *hkit) testSize(t *testing.T) {
	in := k.newInsts(t, 1)[0]
	ch := k.channel("small:")
	var pos []broker.Position
	for i := range 12 {
		pos = append(pos, in.publish(ch, "s"+strconv.Itoa(i)))
	}
	res := in.read(ch, broker.HistoryQuery{Limit: 100})
	if d := CheckSequence(res.Publications, bodies("s", 12)[7:]); d != "" {
		t.Fatalf("a history of 5: %s", d)
	}
	res = in.read(ch, broker.HistoryQuery{Since: &pos[2], Limit: 100})
	if res.Recovered {
		t.Fatal("a position older than the history recovered")
	}
	if d := CheckSequence(res.Publications, bodies("s", 12)[7:]); d != "" {
		t.Fatalf("not recovered: %s", d)
	}
	res = in.read(ch, broker.HistoryQuery{Since: &pos[6], Limit: 100})
	if !res.Recovered || len(res.Publications) != 5 {
		t.Fatalf("the oldest kept position: recovered %v, %d publications", res.Recovered, len(res.Publications))
	}
}

func (k *hkit) testAge(t *testing.T) {
	in := k.newInsts(t, 1)[0]
	ch := k.channel("ttl:")
	first := in.publish(ch, "old")
	time.Sleep(2500 * time.Millisecond) // TTL 1s
	res := in.read(ch, broker.HistoryQuery{Limit: 100})
	if len(res.Publications) != 0 {
		t.Fatalf("expired publications still read: %+v", res.Publications)
	}
	// The whole history expired: it is lost, a new epoch starts.
	res = in.read(ch, broker.HistoryQuery{Since: &first, Limit: 100})
	if res.Recovered {
		t.Fatalf("recovery from a position whose history expired claims success: %+v", res)
	}
	if next := in.publish(ch, "new"); next.Epoch == first.Epoch {
		t.Fatalf("after expiry the history goes on at %+v in the same epoch", next)
	}
}

func (k *hkit) testUnsubscribe(t *testing.T) {
	ins := k.newInsts(t, 2)
	ch := k.channel("")
	ins[1].subscribe(ch)
	ins[0].publish(ch, "a")
	ins[1].waitPubs(ch, 1)
	ins[1].h.RemoveChannels(ch)
	ctx, cancel := context.WithTimeout(context.Background(), opTimeout)
	defer cancel()
	if err := ins[1].b.Unsubscribe(ctx, []string{ch}); err != nil {
		t.Fatal(err)
	}
	ins[0].publish(ch, "b")
	ins[0].publish(ch, "c")
	time.Sleep(quietPeriod)
	if got := ins[1].h.Got(ch); len(got) != 1 {
		t.Fatalf("after Unsubscribe: %d publications", len(got))
	}
	// Subscribing again starts from now: what was published meanwhile is
	// not delivered (it is in the history for whoever wants it).
	ins[1].subscribe(ch)
	ins[0].publish(ch, "d")
	got := ins[1].waitPubs(ch, 2)
	if len(got) != 2 || string(got[1].Payload) != "d" {
		t.Fatalf("after subscribing again: %d publications, last %q", len(got), got[len(got)-1].Payload)
	}
}

// testBatch checks PublishHistoryBatch, for brokers that have it: in
// order, per channel, delivered like single publishes.
func (k *hkit) testBatch(t *testing.T) {
	ins := k.newInsts(t, 2)
	bp, ok := ins[0].b.(broker.HistoryBatchPublisher)
	if !ok {
		t.Skip("no broker.HistoryBatchPublisher")
	}
	a, b := k.channel(""), k.channel("")
	ins[1].subscribe(a, b)
	var msgs []broker.HistoryMessage
	for i := range 60 {
		ch := a
		if i%3 == 0 {
			ch = b
		}
		msgs = append(msgs, broker.HistoryMessage{Channel: ch, Payload: []byte(strconv.Itoa(i)), Options: HistoryOptionsFor(ch)})
	}
	ctx, cancel := context.WithTimeout(context.Background(), opTimeout)
	defer cancel()
	pos, errs := bp.PublishHistoryBatch(ctx, msgs)
	if errs != nil {
		t.Fatalf("PublishHistoryBatch: %v", errs)
	}
	var wantA, wantB []string
	next := map[string]uint64{a: 1, b: 1}
	for i, m := range msgs {
		if pos[i].Offset != next[m.Channel] {
			t.Fatalf("message %d on %s at %+v, want offset %d", i, m.Channel, pos[i], next[m.Channel])
		}
		next[m.Channel]++
		if m.Channel == a {
			wantA = append(wantA, string(m.Payload))
		} else {
			wantB = append(wantB, string(m.Payload))
		}
	}
	if d := CheckSequence(ins[1].waitPubs(a, len(wantA)), wantA); d != "" {
		t.Errorf("channel a: %s", d)
	}
	if d := CheckSequence(ins[1].waitPubs(b, len(wantB)), wantB); d != "" {
		t.Errorf("channel b: %s", d)
	}
}
