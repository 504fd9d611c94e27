// Package brokertest is a conformance kit for implementations of
// broker.Broker. Run checks, with two or three broker instances standing in
// for separate server instances, the contract written down in package broker:
//
//   - a publish reaches every other subscribed instance exactly once, and a
//     publish made right after Subscribe returned is not missed;
//   - per-channel order from one publisher (2000 messages), also through
//     broker.BatchPublisher when the broker implements it (batches of
//     several channels, in order, each message exactly once);
//   - Unsubscribe stops delivery; batches of subscribes and unsubscribes;
//   - channel names that are not valid as-is on most buses ("", ".", "*",
//     ">", spaces, control bytes, unicode, invalid UTF-8, ~10 KB names,
//     names differing only in their last byte) arrive under their exact name
//     and never on another channel;
//   - empty, small, and near-1 MB payloads arrive byte for byte;
//   - concurrent publishers on several instances;
//   - Close stops Deliver, also while other instances keep publishing, and
//     methods called after Close fail instead of hanging.
//
// newBroker must return a new, not yet started broker each time it is
// called; all the brokers it returns during one Run must be on the same bus
// (for broker.Memory: the same *broker.Bus; for a network broker: the same
// server and namespace). Run starts them, gives them its own Handler, and
// closes them when each subtest ends. Subtests run one after another.
//
// The handler Run installs behaves like the hub: it drops envelopes it
// published itself (a broker may or may not echo a publish to the
// publishing instance), so "exactly once" is checked on the other instances.
//
// Network brokers should be given a namespace of their own per Run (a key
// prefix or subject prefix), since Run uses fixed channel names such as "" and
// "*" that another test on the same server could also use.
//
// The package also has helpers for the tests of network brokers and of
// code using them: URL finds the shared test server of a kind ("redis",
// "nats") or skips loudly (fails under SC_REQUIRE_BROKERS=1), StartProcess
// runs a server of the test's own that it can stop and restart, Recorder is
// a broker.Handler that records what a broker reports.
package brokertest

import (
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/socketcluster-go/socketcluster/broker"
)

// Timeouts are generous: CI is a shared 2-core machine.
const (
	arriveTimeout = 60 * time.Second       // for something that must happen
	quietPeriod   = 300 * time.Millisecond // for something that must not happen
	opTimeout     = 30 * time.Second       // per broker call
)

// Run runs the conformance suite as subtests of t.
func Run(t *testing.T, newBroker func(t *testing.T) broker.Broker) {
	t.Helper()
	k := &kit{newBroker: newBroker}
	t.Run("SubscribePublishExactlyOnce", k.testExactlyOnce)
	t.Run("SubscribeConfirmedBeforeReturn", k.testSubscribeConfirmed)
	t.Run("PerChannelOrder", k.testOrder)
	t.Run("PublishBatch", k.testPublishBatch)
	t.Run("Unsubscribe", k.testUnsubscribe)
	t.Run("Batches", k.testBatches)
	t.Run("ChannelNames", k.testNames)
	t.Run("Payloads", k.testPayloads)
	t.Run("ConcurrentPublishers", k.testConcurrent)
	t.Run("CloseStopsDeliver", k.testCloseStopsDeliver)
	t.Run("CloseWhilePublishing", k.testCloseWhilePublishing)
	t.Run("AfterClose", k.testAfterClose)
}

type kit struct {
	newBroker func(t *testing.T) broker.Broker
	seq       atomic.Int64
}

// Msg is one delivery recorded by the kit's handler.
type msg struct {
	channel string
	from    string // instance that published it
	body    []byte // payload without the kit's envelope
}

// inst is one broker instance with its recording handler.
type inst struct {
	t  *testing.T
	id string
	b  broker.Broker

	mu       sync.Mutex
	msgs     []msg
	channels map[string]struct{}
	statuses []error
	badEnv   int

	closed     atomic.Bool  // set after Close returned
	afterClose atomic.Int64 // Deliver calls seen after that
}

func (in *inst) Deliver(channel string, payload []byte) {
	if in.closed.Load() {
		in.afterClose.Add(1)
		return
	}
	from, body, ok := openEnvelope(payload)
	in.mu.Lock()
	defer in.mu.Unlock()
	if !ok {
		in.badEnv++
		return
	}
	if from == in.id { // the hub drops its own echo
		return
	}
	// Copy: a broker may reuse or share the buffer after Deliver returns
	// (the contract says Deliver only queues the message).
	in.msgs = append(in.msgs, msg{channel: channel, from: from, body: bytes.Clone(body)})
}

func (in *inst) Channels() []string {
	in.mu.Lock()
	defer in.mu.Unlock()
	out := make([]string, 0, len(in.channels))
	for ch := range in.channels {
		out = append(out, ch)
	}
	return out
}

func (in *inst) Status(err error) {
	in.mu.Lock()
	in.statuses = append(in.statuses, err)
	in.mu.Unlock()
}

// newInsts starts n instances on the shared bus.
func (k *kit) newInsts(t *testing.T, n int) []*inst {
	t.Helper()
	out := make([]*inst, n)
	run := k.seq.Add(1)
	for i := range out {
		in := &inst{t: t, id: fmt.Sprintf("i%d-%d", run, i), channels: map[string]struct{}{}}
		in.b = k.newBroker(t)
		if in.b == nil {
			t.Fatal("brokertest: newBroker returned nil")
		}
		ctx, cancel := context.WithTimeout(context.Background(), opTimeout)
		err := in.b.Start(ctx, in)
		cancel()
		if err != nil {
			t.Fatalf("brokertest: Start: %v", err)
		}
		t.Cleanup(func() { in.close() })
		out[i] = in
	}
	return out
}

func (in *inst) close() {
	in.t.Helper()
	if in.closed.Load() {
		return
	}
	done := make(chan error, 1)
	go func() { done <- in.b.Close() }()
	select {
	case err := <-done:
		if err != nil {
			in.t.Errorf("brokertest: %s: Close: %v", in.id, err)
		}
	case <-time.After(opTimeout):
		in.t.Errorf("brokertest: %s: Close did not return within %v", in.id, opTimeout)
	}
	in.closed.Store(true)
}

func (in *inst) subscribe(chs ...string) {
	in.t.Helper()
	in.mu.Lock()
	for _, ch := range chs {
		in.channels[ch] = struct{}{}
	}
	in.mu.Unlock()
	ctx, cancel := context.WithTimeout(context.Background(), opTimeout)
	defer cancel()
	if err := in.b.Subscribe(ctx, chs); err != nil {
		in.t.Fatalf("brokertest: %s: Subscribe(%d channels): %v", in.id, len(chs), err)
	}
}

func (in *inst) unsubscribe(chs ...string) {
	in.t.Helper()
	in.mu.Lock()
	for _, ch := range chs {
		delete(in.channels, ch)
	}
	in.mu.Unlock()
	ctx, cancel := context.WithTimeout(context.Background(), opTimeout)
	defer cancel()
	if err := in.b.Unsubscribe(ctx, chs); err != nil {
		in.t.Fatalf("brokertest: %s: Unsubscribe(%d channels): %v", in.id, len(chs), err)
	}
}

func (in *inst) publish(ch string, body []byte) {
	in.t.Helper()
	if err := in.tryPublish(ch, body); err != nil {
		in.t.Fatalf("brokertest: %s: Publish(%s, %d bytes): %v", in.id, short(ch), len(body), err)
	}
}

func (in *inst) tryPublish(ch string, body []byte) error {
	ctx, cancel := context.WithTimeout(context.Background(), opTimeout)
	defer cancel()
	return in.b.Publish(ctx, ch, envelope(in.id, body))
}

func (in *inst) snapshot() []msg {
	in.mu.Lock()
	defer in.mu.Unlock()
	return append([]msg(nil), in.msgs...)
}

func (in *inst) count() int {
	in.mu.Lock()
	defer in.mu.Unlock()
	return len(in.msgs)
}

// waitCount waits until the instance recorded at least n messages.
func (in *inst) waitCount(n int) {
	in.t.Helper()
	deadline := time.Now().Add(arriveTimeout)
	for in.count() < n {
		if time.Now().After(deadline) {
			in.t.Fatalf("brokertest: %s: got %d messages, want %d within %v", in.id, in.count(), n, arriveTimeout)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

// settle waits until n messages arrived, then a quiet period, and fails if
// more than n arrived.
func (in *inst) settle(n int) []msg {
	in.t.Helper()
	in.waitCount(n)
	time.Sleep(quietPeriod)
	got := in.snapshot()
	if len(got) != n {
		in.t.Errorf("brokertest: %s: got %d messages, want exactly %d:\n%s", in.id, len(got), n, describe(got, 10))
	}
	in.mu.Lock()
	bad := in.badEnv
	in.mu.Unlock()
	if bad != 0 {
		in.t.Errorf("brokertest: %s: %d payloads were not delivered unchanged (envelope damaged)", in.id, bad)
	}
	return got
}

func (in *inst) reset() {
	in.mu.Lock()
	in.msgs = nil
	in.mu.Unlock()
}

// The envelope stands in for the hub's: it names the publishing instance.
// Layout: uvarint(len(id)) id uvarint(len(body)) body.
func envelope(id string, body []byte) []byte {
	out := make([]byte, 0, len(id)+len(body)+2*binary.MaxVarintLen64)
	out = binary.AppendUvarint(out, uint64(len(id)))
	out = append(out, id...)
	out = binary.AppendUvarint(out, uint64(len(body)))
	return append(out, body...)
}

func openEnvelope(p []byte) (from string, body []byte, ok bool) {
	n, w := binary.Uvarint(p)
	if w <= 0 || uint64(len(p)-w) < n {
		return "", nil, false
	}
	from, p = string(p[w:w+int(n)]), p[w+int(n):]
	n, w = binary.Uvarint(p)
	if w <= 0 || uint64(len(p)-w) != n {
		return "", nil, false
	}
	return from, p[w:], true
}

func short(s string) string {
	if len(s) > 40 {
		return fmt.Sprintf("%q…(%d bytes)", s[:40], len(s))
	}
	return fmt.Sprintf("%q", s)
}

func describe(ms []msg, max int) string {
	var sb strings.Builder
	for i, m := range ms {
		if i == max {
			fmt.Fprintf(&sb, "  … %d more\n", len(ms)-max)
			break
		}
		body := string(m.body)
		if len(body) > 40 {
			body = body[:40] + "…"
		}
		fmt.Fprintf(&sb, "  %s from %s: %q\n", short(m.channel), m.from, body)
	}
	return sb.String()
}

func (k *kit) testExactlyOnce(t *testing.T) {
	in := k.newInsts(t, 3)
	a, b, c := in[0], in[1], in[2]
	b.subscribe("once")
	c.subscribe("once")

	a.publish("once", []byte("from a")) // publisher not subscribed
	for _, x := range []*inst{b, c} {
		got := x.settle(1)
		if len(got) == 1 && (got[0].channel != "once" || string(got[0].body) != "from a" || got[0].from != a.id) {
			t.Errorf("%s got %s", x.id, describe(got, 1))
		}
	}
	if n := a.count(); n != 0 {
		t.Errorf("unsubscribed publisher got %d messages", n)
	}

	// Publisher subscribed too: the others still get it exactly once
	// (its own echo, if any, is dropped like the hub does).
	b.reset()
	c.reset()
	b.publish("once", []byte("from b"))
	c.settle(1)
	time.Sleep(quietPeriod)
	if n := b.count(); n != 0 {
		t.Errorf("publisher got %d foreign messages", n)
	}
	if n := a.count(); n != 0 {
		t.Errorf("unsubscribed instance got %d messages", n)
	}

	// A channel nobody subscribes to.
	a.publish("nobody-listens", []byte("x"))
}

func (k *kit) testSubscribeConfirmed(t *testing.T) {
	in := k.newInsts(t, 2)
	a, b := in[0], in[1]
	const n = 100
	for i := range n {
		ch := fmt.Sprintf("confirm-%d", i)
		b.subscribe(ch)
		a.publish(ch, []byte(ch)) // must not be missed: Subscribe returned
	}
	got := b.settle(n)
	for _, m := range got {
		if m.channel != string(m.body) {
			t.Fatalf("message for %q delivered on %q", m.body, m.channel)
		}
	}
}

func (k *kit) testOrder(t *testing.T) {
	in := k.newInsts(t, 3)
	a, b, c := in[0], in[1], in[2]
	const n = 2000
	chans := []string{"order-x", "order-y"}
	b.subscribe(chans...)
	c.subscribe(chans[0])
	for i := range n {
		// Interleave two channels; order is checked per channel.
		a.publish(chans[i%2], fmt.Appendf(nil, "%d", i))
	}
	for _, x := range []struct {
		in    *inst
		total int
		chans int
	}{{b, n, 2}, {c, n / 2, 1}} {
		got := x.in.settle(x.total)
		next := map[string]int{"order-x": 0, "order-y": 1}
		for i, m := range got {
			want := next[m.channel]
			if string(m.body) != fmt.Sprint(want) {
				t.Fatalf("%s: message %d on %s is %q, want %d (per-channel order broken)", x.in.id, i, m.channel, m.body, want)
			}
			next[m.channel] = want + 2
		}
	}
}

func (k *kit) testPublishBatch(t *testing.T) {
	in := k.newInsts(t, 2)
	a, b := in[0], in[1]
	bp, ok := a.b.(broker.BatchPublisher)
	if !ok {
		t.Skip("the broker does not implement broker.BatchPublisher")
	}
	chans := []string{"batch-x", "batch-y", "batch-z"}
	b.subscribe(chans...)
	const n, size = 1500, 100
	for start := 0; start < n; start += size {
		msgs := make([]broker.Message, 0, size)
		for i := start; i < start+size; i++ {
			msgs = append(msgs, broker.Message{Channel: chans[i%3], Payload: envelope(a.id, fmt.Appendf(nil, "%d", i))})
		}
		ctx, cancel := context.WithTimeout(context.Background(), opTimeout)
		errs := bp.PublishBatch(ctx, msgs)
		cancel()
		if errs != nil && len(errs) != len(msgs) {
			t.Fatalf("PublishBatch returned %d errors for %d messages", len(errs), len(msgs))
		}
		for i, err := range errs {
			if err != nil {
				t.Fatalf("PublishBatch: message %d: %v", i, err)
			}
		}
	}
	got := b.settle(n)
	next := map[string]int{"batch-x": 0, "batch-y": 1, "batch-z": 2}
	for i, m := range got {
		want := next[m.channel]
		if string(m.body) != fmt.Sprint(want) {
			t.Fatalf("message %d on %s is %q, want %d (per-channel order broken in batches)", i, m.channel, m.body, want)
		}
		next[m.channel] = want + 3
	}
	// A batch on a closed broker fails, one error per message.
	a.close()
	ctx, cancel := context.WithTimeout(context.Background(), opTimeout)
	defer cancel()
	errs := bp.PublishBatch(ctx, []broker.Message{{Channel: "batch-x", Payload: envelope(a.id, nil)}, {Channel: "batch-y", Payload: envelope(a.id, nil)}})
	if len(errs) != 2 || errs[0] == nil || errs[1] == nil {
		t.Fatalf("PublishBatch after Close: %v, want two errors", errs)
	}
}

func (k *kit) testUnsubscribe(t *testing.T) {
	in := k.newInsts(t, 2)
	a, b := in[0], in[1]
	b.subscribe("unsub-gone", "unsub-kept")
	a.publish("unsub-gone", []byte("before"))
	a.publish("unsub-kept", []byte("before"))
	b.settle(2)

	b.unsubscribe("unsub-gone")
	b.reset()
	for range 20 {
		a.publish("unsub-gone", []byte("after"))
	}
	a.publish("unsub-kept", []byte("marker"))
	got := b.settle(1)
	for _, m := range got {
		if m.channel != "unsub-kept" {
			t.Errorf("delivery on %s after Unsubscribe returned", short(m.channel))
		}
	}

	// Unsubscribing what is not subscribed is harmless; subscribing again works.
	b.unsubscribe("unsub-never")
	b.subscribe("unsub-gone")
	b.reset()
	a.publish("unsub-gone", []byte("again"))
	b.settle(1)
}

func (k *kit) testBatches(t *testing.T) {
	in := k.newInsts(t, 2)
	a, b := in[0], in[1]
	const n = 600
	chans := make([]string, n)
	for i := range chans {
		chans[i] = fmt.Sprintf("batch-%d", i)
	}
	b.subscribe(chans...) // one call
	for _, ch := range chans {
		a.publish(ch, []byte(ch))
	}
	got := b.settle(n)
	seen := map[string]int{}
	for _, m := range got {
		if m.channel != string(m.body) {
			t.Fatalf("message for %q delivered on %s", m.body, short(m.channel))
		}
		seen[m.channel]++
	}
	for _, ch := range chans {
		if seen[ch] != 1 {
			t.Errorf("%s: %d deliveries, want 1", ch, seen[ch])
		}
	}

	// Unsubscribe every other channel in one call.
	var gone []string
	kept := map[string]bool{}
	for i, ch := range chans {
		if i%2 == 0 {
			gone = append(gone, ch)
		} else {
			kept[ch] = true
		}
	}
	b.unsubscribe(gone...)
	b.reset()
	for _, ch := range chans {
		a.publish(ch, []byte(ch))
	}
	for _, m := range b.settle(n / 2) {
		if !kept[m.channel] {
			t.Errorf("delivery on unsubscribed %s", m.channel)
		}
	}

	// Empty batches are no-ops; subscribing twice does not duplicate
	// deliveries.
	b.subscribe()
	b.unsubscribe()
	b.subscribe("batch-dup", "batch-dup")
	b.subscribe("batch-dup")
	b.reset()
	a.publish("batch-dup", []byte("one"))
	b.settle(1)
}

// Names that are not valid as-is as NATS subjects, Redis-cluster hash tags,
// URL paths, and so on.
func oddNames() []string {
	long := strings.Repeat("long-name/", 1024) // ~10 KB
	return []string{
		"", ".", "..", "*", ">", "a.b", "a.*", "a.>", "*.b", "a.b.", ".a",
		" ", "with space", "tab\tname", "new\nline", "cr\r\nlf", "nul\x00byte",
		"unicode ✓ ü 日本語 🚀", "\xff\xfe invalid utf-8", "{tag}", "{tag}x", "#", "%2F", "a/b", "a:b",
		"$SYS", "_INBOX.x", "PING", "=", "-", "_", "a=b", "c", "h", "ca", "Yw", "YQ",
		long, long + "a", long + "b", strings.Repeat("é", 5000),
	}
}

func (k *kit) testNames(t *testing.T) {
	in := k.newInsts(t, 2)
	a, b := in[0], in[1]
	names := oddNames()
	b.subscribe(names...)
	for _, ch := range names {
		a.publish(ch, []byte(ch))
	}
	got := b.settle(len(names))
	seen := map[string]int{}
	for _, m := range got {
		if m.channel != string(m.body) {
			t.Errorf("message published on %s delivered on %s", short(string(m.body)), short(m.channel))
		}
		seen[m.channel]++
	}
	for _, ch := range names {
		if seen[ch] != 1 {
			t.Errorf("%s: %d deliveries, want 1", short(ch), seen[ch])
		}
	}

	// Only the exact name: with one odd name subscribed, publishes on the
	// others do not leak into it (no wildcard or prefix matching).
	b.unsubscribe(names...)
	b.subscribe("*", "a.>", "")
	b.reset()
	for _, ch := range names {
		a.publish(ch, []byte(ch))
	}
	for _, m := range b.settle(3) {
		if m.channel != string(m.body) {
			t.Errorf("message published on %s delivered on %s", short(string(m.body)), short(m.channel))
		}
	}
}

func (k *kit) testPayloads(t *testing.T) {
	in := k.newInsts(t, 2)
	a, b := in[0], in[1]
	b.subscribe("payloads")
	sizes := []int{0, 1, 2, 100, 64 << 10, 1000 * 1000, 1000*1000 - 1}
	var sent [][]byte
	for i, n := range sizes {
		p := make([]byte, n)
		for j := range p {
			p[j] = byte(i*131 + j*7 + j>>8) // every byte value, varying
		}
		sent = append(sent, p)
		a.publish("payloads", p)
	}
	got := b.settle(len(sizes))
	for i, m := range got {
		if i < len(sent) && !bytes.Equal(m.body, sent[i]) {
			t.Errorf("payload %d: got %d bytes, want %d bytes, equal=%v", i, len(m.body), len(sent[i]), false)
		}
	}
}

func (k *kit) testConcurrent(t *testing.T) {
	in := k.newInsts(t, 3)
	chans := []string{"conc-0", "conc-1", "conc-2", "conc-3"}
	for _, x := range in {
		x.subscribe(chans...)
	}
	const goroutines, perG = 8, 150
	var wg sync.WaitGroup
	errs := make(chan error, len(in)*goroutines)
	for _, x := range in {
		for g := range goroutines {
			wg.Go(func() {
				for i := range perG {
					ch := chans[(g+i)%len(chans)]
					if err := x.tryPublish(ch, fmt.Appendf(nil, "%d %d", g, i)); err != nil {
						errs <- fmt.Errorf("%s: Publish: %w", x.id, err)
						return
					}
				}
			})
		}
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	// Each instance gets every message of the two others exactly once, and
	// each publishing goroutine's messages on a channel in order.
	want := 2 * goroutines * perG
	for _, x := range in {
		got := x.settle(want)
		type key struct {
			from, ch string
			g        int
		}
		last := map[key]int{}
		seen := map[string]bool{}
		for _, m := range got {
			var g, i int
			if _, err := fmt.Sscanf(string(m.body), "%d %d", &g, &i); err != nil {
				t.Fatalf("%s: bad body %q", x.id, m.body)
			}
			id := fmt.Sprintf("%s %s", m.from, m.body)
			if seen[id] {
				t.Errorf("%s: duplicate %s", x.id, id)
			}
			seen[id] = true
			kk := key{m.from, m.channel, g}
			if prev, ok := last[kk]; ok && i <= prev {
				t.Errorf("%s: from %s goroutine %d on %s: %d after %d", x.id, m.from, g, m.channel, i, prev)
			}
			last[kk] = i
		}
	}
}

func (k *kit) testCloseStopsDeliver(t *testing.T) {
	in := k.newInsts(t, 2)
	a, b := in[0], in[1]
	b.subscribe("close")
	a.publish("close", []byte("before"))
	b.settle(1)
	b.close()
	for range 50 {
		a.publish("close", []byte("after")) // must not fail because b left
	}
	time.Sleep(quietPeriod)
	if n := b.afterClose.Load(); n != 0 {
		t.Errorf("Deliver called %d times after Close returned", n)
	}
}

func (k *kit) testCloseWhilePublishing(t *testing.T) {
	in := k.newInsts(t, 3)
	a, b, c := in[0], in[1], in[2]
	b.subscribe("close-busy")
	c.subscribe("close-busy")
	stop := make(chan struct{})
	var wg sync.WaitGroup
	var published atomic.Int64
	for _, x := range []*inst{a, c} {
		wg.Go(func() {
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				if err := x.tryPublish("close-busy", []byte("busy")); err != nil {
					if !x.closed.Load() {
						t.Errorf("%s: Publish: %v", x.id, err)
					}
					return
				}
				published.Add(1)
				if i%64 == 63 {
					time.Sleep(time.Millisecond) // leave the CPU to the receivers now and then
				}
			}
		})
	}
	// Let deliveries flow, then close b in the middle of them.
	deadline := time.Now().Add(arriveTimeout)
	for b.count() < 20 && time.Now().Before(deadline) {
		time.Sleep(2 * time.Millisecond)
	}
	if b.count() < 20 {
		close(stop)
		wg.Wait()
		t.Fatalf("no traffic before Close (published %d, received %d)", published.Load(), b.count())
	}
	b.close()
	time.Sleep(quietPeriod)
	close(stop)
	wg.Wait()
	if n := b.afterClose.Load(); n != 0 {
		t.Errorf("Deliver called %d times after Close returned", n)
	}
	// The others are unaffected: c keeps receiving a's messages.
	n := c.count()
	a.publish("close-busy", []byte("still there"))
	c.waitCount(n + 1)
}

func (k *kit) testAfterClose(t *testing.T) {
	in := k.newInsts(t, 1)
	a := in[0]
	a.subscribe("after-close")
	a.close()
	ctx, cancel := context.WithTimeout(context.Background(), opTimeout)
	defer cancel()
	if err := a.b.Publish(ctx, "after-close", envelope(a.id, nil)); err == nil {
		t.Error("Publish after Close returned nil")
	}
	if err := a.b.Subscribe(ctx, []string{"after-close-2"}); err == nil {
		t.Error("Subscribe after Close returned nil")
	}
	_ = a.b.Unsubscribe(ctx, []string{"after-close"}) // must return (error or not)
	if err := a.b.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
}
