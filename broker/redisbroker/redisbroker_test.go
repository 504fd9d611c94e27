package redisbroker_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/rueidis"

	"github.com/socketcluster-go/socketcluster/broker"
	"github.com/socketcluster-go/socketcluster/broker/brokertest"
	"github.com/socketcluster-go/socketcluster/broker/redisbroker"
)

func TestNewBadURL(t *testing.T) {
	t.Parallel()
	for _, u := range []string{
		"http://127.0.0.1:6379",
		"redis://user:s3cret@127.0.0.1:6379/notadb",
		"redis://[::1",
		"redis://user:s3cret@[::1",
	} {
		_, err := redisbroker.New(u, redisbroker.Options{})
		if err == nil {
			t.Errorf("New(%q) succeeded", u)
			continue
		}
		if !strings.Contains(err.Error(), "bad URL") {
			t.Errorf("New(%q): %v; want it to say bad URL", u, err)
		}
		if strings.Contains(err.Error(), "s3cret") {
			t.Errorf("New(%q): password leaked in %v", u, err)
		}
	}
}

func TestStartUnreachable(t *testing.T) {
	t.Parallel()
	port := brokertest.FreePort(t) // nothing listens there
	u := fmt.Sprintf("redis://user:s3cret@127.0.0.1:%d", port)
	b, err := redisbroker.New(u, redisbroker.Options{})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	err = b.Start(ctx, newHandler())
	if err == nil {
		t.Fatal("Start succeeded with nothing listening")
	}
	msg := err.Error()
	if !strings.Contains(msg, fmt.Sprintf("127.0.0.1:%d", port)) || !strings.Contains(msg, "connect") {
		t.Errorf("Start error %q should name the URL and say connect", msg)
	}
	if strings.Contains(msg, "s3cret") {
		t.Errorf("password leaked in %q", msg)
	}
	// The broker is closed after a failed Start.
	if err := b.Publish(ctx, "x", nil); !errors.Is(err, broker.ErrClosed) {
		t.Errorf("Publish after failed Start: %v, want ErrClosed", err)
	}
	if err := b.Close(); err != nil {
		t.Errorf("Close after failed Start: %v", err)
	}
}

// Start subscribes what Handler.Channels returns, before returning.
func TestStartSubscribesHandlerChannels(t *testing.T) {
	t.Parallel()
	url := requireRedis(t)
	opts := redisbroker.Options{Prefix: uniquePrefix()}
	hb := newHandler("pre-1", "pre-2")
	b := start(t, url, opts, hb)
	a := start(t, url, opts, newHandler())
	_ = b
	for _, ch := range []string{"pre-1", "pre-2", "other"} {
		if err := a.Publish(ctx(t), ch, []byte(ch)); err != nil {
			t.Fatal(err)
		}
	}
	waitUntil(t, 30*time.Second, "pre-subscribed deliveries", func() bool {
		return len(hb.Got("pre-1")) == 1 && len(hb.Got("pre-2")) == 1
	})
	time.Sleep(200 * time.Millisecond)
	if got := hb.Got("other"); len(got) != 0 {
		t.Errorf("delivery on a channel never subscribed: %q", got)
	}
}

// The prefix namespaces channels on Redis; the mode picks the kind of
// channel (PUBSUB CHANNELS vs PUBSUB SHARDCHANNELS).
func TestPrefixAndMode(t *testing.T) {
	t.Parallel()
	url := requireRedis(t)
	raw, err := rueidis.NewClient(rueidis.MustParseURL(url))
	if err != nil {
		t.Fatal(err)
	}
	defer raw.Close()
	list := func(sharded bool, pattern string) []string {
		cmd := raw.B().PubsubChannels().Pattern(pattern).Build()
		if sharded {
			cmd = raw.B().PubsubShardchannels().Pattern(pattern).Build()
		}
		got, err := raw.Do(ctx(t), cmd).AsStrSlice()
		if err != nil {
			t.Fatal(err)
		}
		slices.Sort(got)
		return got
	}
	for _, sharded := range []bool{false, true} {
		p1, p2 := uniquePrefix(), uniquePrefix()
		h1, h2, h3 := newHandler(), newHandler(), newHandler()
		b1 := start(t, url, redisbroker.Options{Prefix: p1, Sharded: sharded}, h1)
		b2 := start(t, url, redisbroker.Options{Prefix: p2, Sharded: sharded}, h2)
		pub := start(t, url, redisbroker.Options{Prefix: p1, Sharded: sharded}, h3)
		for _, b := range []*redisbroker.Broker{b1, b2} {
			if err := b.Subscribe(ctx(t), []string{"x", "y"}); err != nil {
				t.Fatal(err)
			}
		}
		if got, want := list(sharded, p1+"*"), []string{p1 + "x", p1 + "y"}; !slices.Equal(got, want) {
			t.Errorf("sharded=%v: Redis channels %q, want %q", sharded, got, want)
		}
		if got := list(!sharded, p1+"*"); len(got) != 0 {
			t.Errorf("sharded=%v: channels of the other kind: %q", sharded, got)
		}
		if err := pub.Publish(ctx(t), "x", []byte("hello")); err != nil {
			t.Fatal(err)
		}
		waitUntil(t, 30*time.Second, "delivery in namespace", func() bool { return len(h1.Got("x")) == 1 })
		time.Sleep(200 * time.Millisecond)
		if got := h2.Got("x"); len(got) != 0 {
			t.Errorf("sharded=%v: delivery across namespaces: %q", sharded, got)
		}
		if err := b1.Unsubscribe(ctx(t), []string{"x"}); err != nil {
			t.Fatal(err)
		}
		if got, want := list(sharded, p1+"*"), []string{p1 + "y"}; !slices.Equal(got, want) {
			t.Errorf("sharded=%v: after Unsubscribe, Redis channels %q, want %q", sharded, got, want)
		}
	}
}

// A Deliver that stalls does not stall the pub/sub connection: messages
// beyond the queue are dropped and reported, the connection survives, and
// health is reported again once the queue drained.
func TestOverflow(t *testing.T) {
	t.Parallel()
	url := requireRedis(t)
	opts := redisbroker.Options{Prefix: uniquePrefix(), QueueSize: 16}
	gate := make(chan struct{})
	var once sync.Once
	hb := newHandler()
	hb.OnDeliver = func(channel string, _ []byte) {
		if channel == "flood" {
			once.Do(func() { <-gate })
		}
	}
	b := start(t, url, opts, hb)
	a := start(t, url, opts, newHandler())
	if err := b.Subscribe(ctx(t), []string{"flood", "after"}); err != nil {
		t.Fatal(err)
	}
	for i := range 500 {
		if err := a.Publish(ctx(t), "flood", fmt.Appendf(nil, "%d", i)); err != nil {
			t.Fatal(err)
		}
	}
	waitUntil(t, 30*time.Second, "drops", func() bool { return b.Stats().Dropped > 0 })
	waitUntil(t, 30*time.Second, "overflow status", func() bool {
		for _, err := range hb.Statuses() {
			if errors.Is(err, redisbroker.ErrOverflow) {
				return true
			}
		}
		return false
	})
	close(gate)
	waitUntil(t, 30*time.Second, "recovery status", func() bool {
		st := hb.Statuses()
		return len(st) >= 2 && st[len(st)-1] == nil
	})
	got := hb.Got("flood")
	if len(got) == 0 || len(got)+int(b.Stats().Dropped) != 500 {
		t.Errorf("delivered %d + dropped %d, want 500 in all", len(got), b.Stats().Dropped)
	}
	// What was delivered is in order.
	for i := 1; i < len(got); i++ {
		var x, y int
		fmt.Sscan(got[i-1], &x)
		fmt.Sscan(got[i], &y)
		if y <= x {
			t.Fatalf("out of order: %s then %s", got[i-1], got[i])
		}
	}
	// The connection is still up.
	if err := a.Publish(ctx(t), "after", []byte("ok")); err != nil {
		t.Fatal(err)
	}
	waitUntil(t, 30*time.Second, "delivery after overflow", func() bool { return len(hb.Got("after")) == 1 })
}

// The outage test runs its own redis-server, kills it, and restarts it on
// the same port.
func TestOutage(t *testing.T) {
	t.Parallel()
	for _, sharded := range []bool{false, true} {
		t.Run(fmt.Sprintf("sharded=%v", sharded), func(t *testing.T) { testOutage(t, sharded) })
	}
}

func testOutage(t *testing.T, sharded bool) {
	srv := startRedisServer(t)
	opts := redisbroker.Options{
		Prefix: "app:", Sharded: sharded,
		MinBackoff: 20 * time.Millisecond, MaxBackoff: 300 * time.Millisecond,
	}
	ha := newHandler()
	hb := newHandler("keep", "via-channels") // what B's hub needs
	a := start(t, srv.URL(), opts, ha)
	b := start(t, srv.URL(), opts, hb)
	if err := b.Subscribe(ctx(t), []string{"keep", "dropped"}); err != nil {
		t.Fatal(err)
	}
	if err := a.Publish(ctx(t), "keep", []byte("before")); err != nil {
		t.Fatal(err)
	}
	waitUntil(t, 30*time.Second, "delivery before the outage", func() bool { return len(hb.Got("keep")) == 1 })
	if st := hb.Statuses(); len(st) != 0 {
		t.Fatalf("statuses before the outage: %v", st)
	}

	srv.Stop()
	waitUntil(t, 30*time.Second, "Status(error) on outage", func() bool {
		st := hb.Statuses()
		return len(st) > 0 && st[0] != nil
	})
	t.Logf("outage reported: %v", hb.Statuses()[0])
	if err := a.Publish(ctx(t), "keep", []byte("lost")); err == nil {
		t.Error("Publish succeeded with the server down")
	}
	// A subscription made during the outage fails now but is applied on
	// reconnection.
	hb.AddChannels("during")
	if err := b.Subscribe(ctx(t), []string{"during"}); !errors.Is(err, redisbroker.ErrNotConnected) {
		t.Errorf("Subscribe during outage: %v, want ErrNotConnected", err)
	}
	// An unsubscription during the outage succeeds and sticks.
	if err := b.Unsubscribe(ctx(t), []string{"dropped"}); err != nil {
		t.Errorf("Unsubscribe during outage: %v", err)
	}

	time.Sleep(500 * time.Millisecond) // a few failed reconnection attempts
	srv.Start()
	waitUntil(t, 30*time.Second, "Status(nil) on recovery", func() bool {
		st := hb.Statuses()
		return len(st) >= 2 && st[len(st)-1] == nil
	})
	for i, err := range hb.Statuses()[1 : len(hb.Statuses())-1] {
		if err == nil {
			t.Errorf("status %d: nil before recovery", i+1)
		}
	}
	// Cross-instance delivery resumes on every channel B needs.
	for _, ch := range []string{"keep", "via-channels", "during"} {
		waitUntil(t, 30*time.Second, "publish after recovery", func() bool {
			return a.Publish(ctx(t), ch, []byte("after")) == nil
		})
	}
	waitUntil(t, 30*time.Second, "deliveries after recovery", func() bool {
		return slices.Contains(hb.Got("keep"), "after") &&
			slices.Contains(hb.Got("via-channels"), "after") &&
			slices.Contains(hb.Got("during"), "after")
	})
	if slices.Contains(hb.Got("keep"), "lost") {
		t.Error("a message published during the outage was delivered (want at-most-once, dropped)")
	}
	// A publish may still fail once on a connection that has not yet seen
	// the restart (EOF): publishes are at most once, the caller retries.
	waitUntil(t, 30*time.Second, "publish on the dropped channel", func() bool {
		return a.Publish(ctx(t), "dropped", []byte("after")) == nil
	})
	raw, err := rueidis.NewClient(rueidis.ClientOption{InitAddress: []string{srv.Addr()}, DisableCache: true})
	if err != nil {
		t.Fatal(err)
	}
	defer raw.Close()
	cmd := raw.B().PubsubChannels().Pattern("app:*").Build()
	if sharded {
		cmd = raw.B().PubsubShardchannels().Pattern("app:*").Build()
	}
	chans, err := raw.Do(ctx(t), cmd).AsStrSlice()
	if err != nil {
		t.Fatal(err)
	}
	slices.Sort(chans)
	if want := []string{"app:during", "app:keep", "app:via-channels"}; !slices.Equal(chans, want) {
		t.Errorf("subscribed on Redis after recovery: %q, want %q", chans, want)
	}
	time.Sleep(200 * time.Millisecond)
	if got := hb.Got("dropped"); len(got) != 0 {
		t.Errorf("delivery on a channel unsubscribed during the outage: %q", got)
	}
	// A's own pub/sub connection recovered too.
	waitUntil(t, 30*time.Second, "A's Status(nil)", func() bool {
		st := ha.Statuses()
		return len(st) >= 2 && st[0] != nil && st[len(st)-1] == nil
	})
}

// Handler.Channels may call back into the broker (the contract lets the
// hub's Channels logic call Subscribe); the resubscription after a
// reconnection must not deadlock on it.
func TestChannelsMayCallSubscribe(t *testing.T) {
	t.Parallel()
	srv := startRedisServer(t)
	opts := redisbroker.Options{MinBackoff: 20 * time.Millisecond, MaxBackoff: 200 * time.Millisecond}
	hb := newHandler("plain")
	var b *redisbroker.Broker
	var mu sync.Mutex
	hb.OnChannels = func() {
		mu.Lock()
		defer mu.Unlock()
		if b != nil {
			if err := b.Subscribe(context.Background(), []string{"reentrant"}); err != nil {
				t.Errorf("Subscribe from Channels: %v", err)
			}
		}
	}
	bb := start(t, srv.URL(), opts, hb)
	mu.Lock()
	b = bb
	mu.Unlock()
	a := start(t, srv.URL(), opts, newHandler())
	srv.Stop()
	waitUntil(t, 30*time.Second, "Status(error)", func() bool { return len(hb.Statuses()) > 0 })
	srv.Start()
	waitUntil(t, 30*time.Second, "Status(nil)", func() bool {
		st := hb.Statuses()
		return len(st) >= 2 && st[len(st)-1] == nil
	})
	waitUntil(t, 30*time.Second, "deliveries", func() bool {
		_ = a.Publish(ctx(t), "plain", []byte("x"))
		_ = a.Publish(ctx(t), "reentrant", []byte("x"))
		time.Sleep(50 * time.Millisecond)
		return len(hb.Got("plain")) > 0 && len(hb.Got("reentrant")) > 0
	})
}
