package socketcluster_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	sc "github.com/socketcluster-go/socketcluster"
	"github.com/socketcluster-go/socketcluster/broker"
	"github.com/socketcluster-go/socketcluster/internal/sctest"
)

// Tests of the publish path (hub_publish.go): local delivery never waits
// for the broker, the broker gets each publisher's messages in order, and
// a publish the broker does not confirm fails with a ClusterPublishError.

// fakeBroker records what reaches it. With a gate, each publish call
// blocks until the gate is closed (or, unless deaf, its context is done).
type fakeBroker struct {
	gate    chan struct{} // nil: no blocking
	deaf    bool          // ignore the context while blocked, as a hung client library might
	entered chan struct{} // receives once per blocking call
	delay   time.Duration // per call, to let the queue build up

	mu      sync.Mutex
	got     []string // data of the publishes accepted, in order
	batches []int    // size of each call
}

func newFakeBroker(gated bool) *fakeBroker {
	b := &fakeBroker{entered: make(chan struct{}, 1000)}
	if gated {
		b.gate = make(chan struct{})
	}
	return b
}

func (b *fakeBroker) Start(context.Context, broker.Handler) error { return nil }
func (b *fakeBroker) Subscribe(context.Context, []string) error   { return nil }
func (b *fakeBroker) Unsubscribe(context.Context, []string) error { return nil }
func (b *fakeBroker) Close() error                                { return nil }
func (b *fakeBroker) Publish(ctx context.Context, ch string, p []byte) error {
	return b.call(ctx, []broker.Message{{Channel: ch, Payload: p}})
}

func (b *fakeBroker) call(ctx context.Context, msgs []broker.Message) error {
	if b.gate != nil {
		b.entered <- struct{}{}
		if b.deaf {
			<-b.gate
		} else {
			select {
			case <-b.gate:
			case <-ctx.Done():
				return ctx.Err()
			}
		}
	}
	if b.delay > 0 {
		time.Sleep(b.delay)
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	b.batches = append(b.batches, len(msgs))
	for _, m := range msgs {
		b.got = append(b.got, m.Channel+":"+string(m.Payload[16:])) // after the envelope's instance id
	}
	return nil
}

func (b *fakeBroker) accepted() []string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return append([]string(nil), b.got...)
}

// batchBroker is a fakeBroker that takes batches.
type batchBroker struct{ *fakeBroker }

func (b batchBroker) PublishBatch(ctx context.Context, msgs []broker.Message) []error {
	if err := b.call(ctx, msgs); err != nil {
		errs := make([]error, len(msgs))
		for i := range errs {
			errs[i] = err
		}
		return errs
	}
	return nil
}

// publishCid sends a #publish with a cid and returns the cid.
func publishCid(c *sctest.Client, channel string, data any) float64 {
	cid := c.NextCid()
	c.SendText(sctest.EventPacket("#publish", map[string]any{"channel": channel, "data": data}, cid))
	return cid
}

// pubOrAck is one frame of interest: a #publish delivery or a response.
type pubOrAck struct {
	pub   bool
	data  string  // the delivery's data
	rid   float64 // the response's rid
	error json.RawMessage
}

// readPubsAndAcks reads frames until it has pubs deliveries on channel and
// acks responses, in arrival order.
func readPubsAndAcks(t *testing.T, c *sctest.Client, channel string, pubs, acks int) []pubOrAck {
	t.Helper()
	var out []pubOrAck
	np, na := 0, 0
	deadline := time.Now().Add(wait)
	for np < pubs || na < acks {
		f, err := c.Next(time.Until(deadline))
		if err != nil {
			t.Fatalf("after %d of %d deliveries and %d of %d answers: %v", np, pubs, na, acks, err)
		}
		p, ok := sctest.ParsePacket(f.Text())
		if !ok {
			continue
		}
		switch {
		case p.Event != nil && *p.Event == "#publish":
			var d struct {
				Channel string          `json:"channel"`
				Data    json.RawMessage `json:"data"`
			}
			if json.Unmarshal(p.Data, &d) == nil && d.Channel == channel {
				out = append(out, pubOrAck{pub: true, data: string(d.Data)})
				np++
			}
		case p.Event == nil && p.Rid != nil:
			out = append(out, pubOrAck{rid: *p.Rid, error: p.Error})
			na++
		}
	}
	return out
}

func errName(raw json.RawMessage) string {
	var e struct {
		Name    string `json:"name"`
		Message string `json:"message"`
	}
	_ = json.Unmarshal(raw, &e)
	return e.Name
}

func waitEntered(t *testing.T, b *fakeBroker) {
	t.Helper()
	select {
	case <-b.entered:
	case <-time.After(wait):
		t.Fatal("the publish never reached the broker")
	}
}

// TestClusterPublishQueueFull: with the broker stuck on one publish, the
// outbox holds BrokerQueueLimit more; the next ones are still delivered
// locally, in order, and fail at once with ClusterPublishError; the queued
// ones reach the broker in order once it moves on.
func TestClusterPublishQueueFull(t *testing.T) {
	t.Parallel()
	fb := newFakeBroker(true)
	ts := newServer(t, sc.Options{Broker: fb, BrokerQueueLimit: 3, BrokerTimeout: time.Hour})
	c := ts.dial(t, &sctest.Options{AutoPong: true})
	c.Handshake(nil)
	c.Subscribe("q")

	cids := []float64{publishCid(c, "q", 0)}
	waitEntered(t, fb) // #0 is in flight, the queue is empty
	for i := 1; i < 10; i++ {
		cids = append(cids, publishCid(c, "q", i))
	}
	// All ten are delivered here in order; #4…#9 are refused at once.
	got := readPubsAndAcks(t, c, "q", 10, 6)
	var delivered []string
	refused := map[float64]bool{}
	for _, f := range got {
		if f.pub {
			delivered = append(delivered, f.data)
			continue
		}
		if n := errName(f.error); n != "ClusterPublishError" || !strings.Contains(string(f.error), "queue full") {
			t.Fatalf("answer to %v: %s, want a ClusterPublishError (queue full)", f.rid, f.error)
		}
		refused[f.rid] = true
	}
	if strings.Join(delivered, ",") != "0,1,2,3,4,5,6,7,8,9" {
		t.Fatalf("local deliveries %v", delivered)
	}
	for _, cid := range cids[4:] {
		if !refused[cid] {
			t.Fatalf("publish %v was not refused; refused %v", cid, refused)
		}
	}
	if n := ts.Stats().BrokerErrors; n < 6 {
		t.Fatalf("BrokerErrors = %d, want at least 6", n)
	}
	c.ExpectNothing(200 * time.Millisecond) // #0…#3 still wait for the broker

	close(fb.gate)
	for _, cid := range cids[:4] {
		if r := c.AwaitResponse(cid); r.Error != nil {
			t.Fatalf("publish %v after the broker moved on: %s", cid, r.Raw)
		}
	}
	if got := strings.Join(fb.accepted(), ","); got != "q:0,q:1,q:2,q:3" {
		t.Fatalf("the broker got %s, want q:0…q:3 in order", got)
	}
}

// TestClusterPublishHungBroker: a broker call that never returns, even past
// its context's deadline, does not hold the publisher: every publish is
// answered with a ClusterPublishError after BrokerTimeout, other requests
// of the socket are answered at once, and the expired publishes are never
// sent once the broker moves on.
func TestClusterPublishHungBroker(t *testing.T) {
	t.Parallel()
	fb := newFakeBroker(true)
	fb.deaf = true
	ts := newServer(t, sc.Options{Broker: fb, BrokerTimeout: 2 * time.Second})
	warnings := sc.Listen[sc.WarningEvent](ts).Consumer()
	defer warnings.Stop()
	c := ts.dial(t, &sctest.Options{AutoPong: true})
	c.Handshake(nil)
	c.Subscribe("h")

	cids := []float64{publishCid(c, "h", 0)}
	waitEntered(t, fb)
	for i := 1; i < 5; i++ {
		cids = append(cids, publishCid(c, "h", i))
	}
	// The socket's next request does not queue behind the broker.
	echo := c.NextCid()
	c.SendText(sctest.EventPacket("echo", "x", echo))
	got := readPubsAndAcks(t, c, "h", 5, 6)
	if got[5].pub || got[5].rid != echo {
		t.Fatalf("the echo was not answered before the publishes: %+v", got)
	}
	answered := map[float64]bool{}
	for _, f := range got[6:] {
		if errName(f.error) != "ClusterPublishError" {
			t.Fatalf("answer to %v: %s", f.rid, f.error)
		}
		answered[f.rid] = true
	}
	for _, cid := range cids {
		if !answered[cid] {
			t.Fatalf("publish %v not answered", cid)
		}
	}

	// The server's own publishes fail the same way, as errors.Is can tell.
	err := ts.Exchange().InvokePublish(context.Background(), "h", "server")
	var cpe *sc.ClusterPublishError
	if !errors.Is(err, sc.ErrClusterPublish) || !errors.As(err, &cpe) || cpe.Channel != "h" || !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("InvokePublish with a hung broker: %v", err)
	}
	if r := readPubsAndAcks(t, c, "h", 1, 0); r[0].data != `"server"` {
		t.Fatalf("server publish not delivered locally: %+v", r)
	}
	ts.Exchange().TransmitPublish("w", "warned")
	for {
		ev := next(t, warnings)
		if errors.As(ev.Warning, &cpe) && cpe.Channel == "w" {
			break
		}
	}

	close(fb.gate)
	cid := publishCid(c, "h", 5)
	if r := c.AwaitResponse(cid); r.Error != nil {
		t.Fatalf("publish after the broker moved on: %s", r.Raw)
	}
	// #0 was in flight and went through late; #1…#4, the server's and
	// TransmitPublish's had expired in the queue and were dropped.
	if got := strings.Join(fb.accepted(), ","); got != "h:0,h:5" {
		t.Fatalf("the broker got %s, want h:0,h:5", got)
	}
}

// TestPublishOrder: concurrent publishers on several channels; every
// subscriber here and the broker see each publisher's messages in order,
// with brokers that take one publish at a time and in batches.
func TestPublishOrder(t *testing.T) {
	t.Parallel()
	for _, batched := range []bool{false, true} {
		t.Run(fmt.Sprintf("batched=%v", batched), func(t *testing.T) {
			fb := newFakeBroker(false)
			fb.delay = time.Millisecond
			var b broker.Broker = fb
			if batched {
				b = batchBroker{fb}
			}
			ts := newServer(t, sc.Options{Broker: b})
			channels := []string{"o1", "o2", "o3"}
			const publishers, per = 3, 300
			var clients []*sctest.Client
			for range publishers {
				c := ts.dial(t, &sctest.Options{AutoPong: true, QueueSize: 8192})
				c.Handshake(nil)
				for _, ch := range channels {
					c.Subscribe(ch)
				}
				clients = append(clients, c)
			}
			var wg sync.WaitGroup
			for p, c := range clients {
				wg.Add(1)
				go func() {
					defer wg.Done()
					for i := range per {
						publishCid(c, channels[i%len(channels)], fmt.Sprintf("%d-%d", p, i))
					}
				}()
			}
			wg.Wait()
			check := func(who string, seq []string) {
				t.Helper()
				next := make([]int, publishers)
				for _, s := range seq {
					var p, i int
					if _, err := fmt.Sscanf(strings.Trim(s[strings.IndexByte(s, ':')+1:], `"`), "%d-%d", &p, &i); err != nil {
						t.Fatalf("%s: bad message %q", who, s)
					}
					if i != next[p] {
						t.Fatalf("%s: from publisher %d got #%d, want #%d", who, p, i, next[p])
					}
					next[p]++
				}
				for p, n := range next {
					if n != per {
						t.Fatalf("%s: %d of %d messages of publisher %d", who, n, per, p)
					}
				}
			}
			for ci, c := range clients {
				var seq []string
				acks := 0
				deadline := time.Now().Add(wait)
				for len(seq) < publishers*per || acks < per {
					f, err := c.Next(time.Until(deadline))
					if err != nil {
						t.Fatalf("client %d: %d deliveries, %d answers: %v", ci, len(seq), acks, err)
					}
					p, ok := sctest.ParsePacket(f.Text())
					if !ok {
						continue
					}
					if p.Rid != nil && p.Event == nil {
						if p.Error != nil {
							t.Fatalf("client %d: publish failed: %s", ci, p.Raw)
						}
						acks++
						continue
					}
					if p.Event != nil && *p.Event == "#publish" {
						var d struct {
							Channel string          `json:"channel"`
							Data    json.RawMessage `json:"data"`
						}
						_ = json.Unmarshal(p.Data, &d)
						seq = append(seq, d.Channel+":"+string(d.Data))
					}
				}
				check(fmt.Sprintf("client %d", ci), seq)
			}
			check("broker", fb.accepted())
			if batched {
				fb.mu.Lock()
				most := 0
				for _, n := range fb.batches {
					most = max(most, n)
				}
				fb.mu.Unlock()
				if most < 2 {
					t.Fatalf("the broker never got a batch of more than one publish (%d calls)", len(fb.batches))
				}
			}
		})
	}
}
