package natsbroker_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/socketcluster-go/socketcluster/broker"
	"github.com/socketcluster-go/socketcluster/broker/brokertest"
	"github.com/socketcluster-go/socketcluster/broker/natsbroker"
)

func TestNewBad(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		url    string
		prefix string
	}{
		{"http://127.0.0.1:4222", ""},
		{"nats://user:s3cret@[::1", ""},
		{"", ""},
		{"nats://127.0.0.1:4222", "a..b"},
		{"nats://127.0.0.1:4222", "a.*"},
		{"nats://127.0.0.1:4222", "a.>"},
		{"nats://127.0.0.1:4222", "has space"},
		{"nats://127.0.0.1:4222", ".a"},
	} {
		_, err := natsbroker.New(c.url, natsbroker.Options{Prefix: c.prefix})
		if err == nil {
			t.Errorf("New(%q, prefix %q) succeeded", c.url, c.prefix)
			continue
		}
		if strings.Contains(err.Error(), "s3cret") {
			t.Errorf("password leaked in %v", err)
		}
	}
}

func TestStartUnreachable(t *testing.T) {
	t.Parallel()
	port := brokertest.FreePort(t)
	u := fmt.Sprintf("nats://user:s3cret@127.0.0.1:%d", port)
	b, err := natsbroker.New(u, natsbroker.Options{})
	if err != nil {
		t.Fatal(err)
	}
	c, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	err = b.Start(c, newHandler())
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
	if err := b.Publish(c, "x", nil); !errors.Is(err, broker.ErrClosed) {
		t.Errorf("Publish after failed Start: %v, want ErrClosed", err)
	}
	if err := b.Close(); err != nil {
		t.Error(err)
	}
}

func TestStartSubscribesHandlerChannels(t *testing.T) {
	t.Parallel()
	url := requireNATS(t)
	opts := natsbroker.Options{Prefix: uniquePrefix()}
	hb := newHandler("pre-1", "pre 2")
	start(t, url, opts, hb)
	a := start(t, url, opts, newHandler())
	for _, ch := range []string{"pre-1", "pre 2", "other"} {
		if err := a.Publish(ctx(t), ch, []byte(ch)); err != nil {
			t.Fatal(err)
		}
	}
	waitUntil(t, 30*time.Second, "pre-subscribed deliveries", func() bool {
		return len(hb.Got("pre-1")) == 1 && len(hb.Got("pre 2")) == 1
	})
	time.Sleep(200 * time.Millisecond)
	if got := hb.Got("other"); len(got) != 0 {
		t.Errorf("delivery on a channel never subscribed: %q", got)
	}
}

// Prefixes keep applications apart on one server.
func TestPrefixIsolation(t *testing.T) {
	t.Parallel()
	url := requireNATS(t)
	p1, p2 := uniquePrefix(), uniquePrefix()
	h1, h2 := newHandler(), newHandler()
	b1 := start(t, url, natsbroker.Options{Prefix: p1}, h1)
	b2 := start(t, url, natsbroker.Options{Prefix: p2}, h2)
	pub := start(t, url, natsbroker.Options{Prefix: p1}, newHandler())
	for _, b := range []*natsbroker.Broker{b1, b2} {
		if err := b.Subscribe(ctx(t), []string{"x"}); err != nil {
			t.Fatal(err)
		}
	}
	if err := pub.Publish(ctx(t), "x", []byte("hi")); err != nil {
		t.Fatal(err)
	}
	waitUntil(t, 30*time.Second, "delivery", func() bool { return len(h1.Got("x")) == 1 })
	time.Sleep(200 * time.Millisecond)
	if got := h2.Got("x"); len(got) != 0 {
		t.Errorf("delivery across prefixes: %q", got)
	}
}

func TestPublishTooLarge(t *testing.T) {
	t.Parallel()
	url := requireNATS(t)
	a := start(t, url, natsbroker.Options{Prefix: uniquePrefix()}, newHandler())
	if err := a.Publish(ctx(t), "big", make([]byte, 64<<20)); err == nil {
		t.Error("a 64 MB publish succeeded")
	}
}

func TestOverflow(t *testing.T) {
	t.Parallel()
	url := requireNATS(t)
	opts := natsbroker.Options{Prefix: uniquePrefix(), QueueSize: 16}
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
		return slices.ContainsFunc(hb.Statuses(), func(err error) bool { return errors.Is(err, natsbroker.ErrOverflow) })
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
	for i := 1; i < len(got); i++ {
		var x, y int
		fmt.Sscan(got[i-1], &x)
		fmt.Sscan(got[i], &y)
		if y <= x {
			t.Fatalf("out of order: %s then %s", got[i-1], got[i])
		}
	}
	if err := a.Publish(ctx(t), "after", []byte("ok")); err != nil {
		t.Fatal(err)
	}
	waitUntil(t, 30*time.Second, "delivery after overflow", func() bool { return len(hb.Got("after")) == 1 })
}

// The outage test runs its own nats-server, kills it, and restarts it on
// the same port.
func TestOutage(t *testing.T) {
	t.Parallel()
	srv := startNATSServer(t)
	opts := natsbroker.Options{Prefix: "app", ReconnectWait: 50 * time.Millisecond}
	ha := newHandler()
	hb := newHandler("keep", "via-channels")
	a := start(t, srv.URL(), opts, ha)
	b := start(t, srv.URL(), opts, hb)
	if err := b.Subscribe(ctx(t), []string{"keep", "dropped"}); err != nil {
		t.Fatal(err)
	}
	if err := a.Publish(ctx(t), "keep", []byte("before")); err != nil {
		t.Fatal(err)
	}
	waitUntil(t, 30*time.Second, "delivery before the outage", func() bool { return len(hb.Got("keep")) == 1 })

	srv.Stop()
	waitUntil(t, 30*time.Second, "Status(error) on outage", func() bool {
		st := hb.Statuses()
		return len(st) > 0 && st[0] != nil
	})
	t.Logf("outage reported: %v", hb.Statuses()[0])
	// Once A knows the connection is lost, its publishes fail instead of
	// being buffered. (Before it knows, they vanish: at most once.)
	waitUntil(t, 30*time.Second, "A's Status(error)", func() bool {
		st := ha.Statuses()
		return len(st) > 0 && st[0] != nil
	})
	if err := a.Publish(ctx(t), "keep", []byte("lost")); !errors.Is(err, natsbroker.ErrNotConnected) {
		t.Errorf("Publish with the server down: %v, want ErrNotConnected", err)
	}
	hb.AddChannels("during")
	if err := b.Subscribe(ctx(t), []string{"during-sub"}); !errors.Is(err, natsbroker.ErrNotConnected) {
		t.Errorf("Subscribe during outage: %v, want ErrNotConnected", err)
	}
	if err := b.Unsubscribe(ctx(t), []string{"dropped"}); err != nil {
		t.Errorf("Unsubscribe during outage: %v", err)
	}

	time.Sleep(500 * time.Millisecond)
	srv.Start()
	waitUntil(t, 30*time.Second, "Status(nil) on recovery", func() bool {
		st := hb.Statuses()
		return len(st) >= 2 && st[len(st)-1] == nil
	})
	waitUntil(t, 30*time.Second, "A's Status(nil)", func() bool {
		st := ha.Statuses()
		return len(st) >= 2 && st[len(st)-1] == nil
	})
	// Delivery resumes on every channel B needs: subscribed before, from
	// Handler.Channels, and subscribed during the outage.
	chans := []string{"keep", "via-channels", "during", "during-sub"}
	for _, ch := range append(chans, "dropped") {
		if err := a.Publish(ctx(t), ch, []byte("after")); err != nil {
			t.Fatal(err)
		}
	}
	waitUntil(t, 30*time.Second, "deliveries after recovery", func() bool {
		for _, ch := range chans {
			if !slices.Contains(hb.Got(ch), "after") {
				return false
			}
		}
		return true
	})
	if slices.Contains(hb.Got("keep"), "lost") {
		t.Error("a message published during the outage was delivered")
	}
	time.Sleep(200 * time.Millisecond)
	if got := hb.Got("dropped"); len(got) != 0 {
		t.Errorf("delivery on a channel unsubscribed during the outage: %q", got)
	}
}

// Handler.Channels may call back into the broker (the contract lets the
// hub's Channels logic call Subscribe); the resubscription after a
// reconnection must not deadlock on it.
func TestChannelsMayCallSubscribe(t *testing.T) {
	t.Parallel()
	srv := startNATSServer(t)
	opts := natsbroker.Options{ReconnectWait: 50 * time.Millisecond}
	hb := newHandler("plain")
	var b *natsbroker.Broker
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
