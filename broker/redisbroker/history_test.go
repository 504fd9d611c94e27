package redisbroker_test

import (
	"context"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/socketcluster-go/socketcluster/broker"
	"github.com/socketcluster-go/socketcluster/broker/brokertest"
	"github.com/socketcluster-go/socketcluster/broker/redisbroker"
)

func startHist(t *testing.T, url string, h broker.Handler) *redisbroker.Broker {
	t.Helper()
	b, err := redisbroker.New(url, redisbroker.Options{Prefix: uniquePrefixFixed(t), MinBackoff: 50 * time.Millisecond, MaxBackoff: 500 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	brokertest.Start(t, b, h)
	return b
}

var fixedPrefixes sync.Map

// uniquePrefixFixed is one prefix per test, shared by its brokers.
func uniquePrefixFixed(t *testing.T) string {
	p, _ := fixedPrefixes.LoadOrStore(t.Name(), uniquePrefix())
	return p.(string)
}

// publisher publishes "0", "1", ... on ch until stop, and records which
// publishes were acknowledged.
type publisher struct {
	mu    sync.Mutex
	acked []string
	fails int
}

func (p *publisher) run(ctx context.Context, b broker.History, ch string, n int) {
	for i := 0; i < n && ctx.Err() == nil; i++ {
		body := strconv.Itoa(i)
		pctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		_, err := b.PublishHistory(pctx, ch, []byte(body), brokertest.HistoryOptionsFor(ch))
		cancel()
		p.mu.Lock()
		if err == nil {
			p.acked = append(p.acked, body)
		} else {
			p.fails++
		}
		p.mu.Unlock()
		time.Sleep(2 * time.Millisecond)
	}
}

// checkNoAckedLost checks that got is gap-free and in order, has no
// duplicates, and holds every acknowledged publish in publish order.
func checkNoAckedLost(t *testing.T, got []broker.Publication, acked []string, sameEpoch bool) {
	t.Helper()
	seen := map[string]int{}
	for i, p := range got {
		if j, dup := seen[string(p.Payload)]; dup {
			t.Fatalf("%q delivered twice (at %d and %d)", p.Payload, j, i)
		}
		seen[string(p.Payload)] = i
		if i > 0 && sameEpoch && (p.Epoch != got[i-1].Epoch || p.Offset != got[i-1].Offset+1) {
			t.Fatalf("delivery %d at %+v follows %+v", i, p.Position, got[i-1].Position)
		}
	}
	prev := -1
	for _, a := range acked {
		i, ok := seen[a]
		if !ok {
			t.Fatalf("acknowledged publish %q never delivered (%d acknowledged, %d delivered)", a, len(acked), len(got))
		}
		if i < prev {
			t.Fatalf("acknowledged publish %q delivered out of order", a)
		}
		prev = i
	}
}

// Pub/sub connections killed while another instance publishes: what was
// missed is read back from the stream, in order, before what follows.
func TestHistoryCatchUpAfterDisconnect(t *testing.T) {
	t.Parallel()
	srv := startRedisServer(t)
	h := brokertest.NewHistoryRecorder()
	ch := "catchup"
	h.AddChannels(ch)
	sub := startHist(t, srv.URL(), h)
	if err := sub.Subscribe(ctx(t), []string{ch}); err != nil {
		t.Fatal(err)
	}
	pub := startHist(t, srv.URL(), brokertest.NewHistoryRecorder())

	var p publisher
	done := make(chan struct{})
	go func() { defer close(done); p.run(context.Background(), pub, ch, 600) }()
	for range 4 {
		time.Sleep(150 * time.Millisecond)
		killPubSub(t, srv)
	}
	<-done
	waitUntil(t, 60*time.Second, "every publication", func() bool { return len(h.Got(ch)) >= len(p.acked) })
	time.Sleep(300 * time.Millisecond)
	got := h.Got(ch)
	checkNoAckedLost(t, got, p.acked, true)
	if len(got) != 600 || p.fails != 0 {
		t.Fatalf("%d delivered, %d publish failures; want 600 and 0", len(got), p.fails)
	}
	if n := h.Lost(ch); n != 0 {
		t.Fatalf("%d losses reported", n)
	}
}

// killPubSub disconnects every pub/sub client of srv.
func killPubSub(t *testing.T, srv *redisServer) {
	t.Helper()
	requireBinary(t, "redis-cli")
	if out, err := command(srv.Addr(), "CLIENT", "KILL", "TYPE", "pubsub"); err != nil {
		t.Fatalf("CLIENT KILL: %v: %s", err, out)
	}
}

// Redis killed with SIGKILL and restarted, with an append-only file
// written at every command: no acknowledged publish is lost, the epoch
// stays.
func TestHistoryRedisRestartPersistent(t *testing.T) {
	t.Parallel()
	srv := startRedisServer(t, "--appendonly", "yes", "--appendfsync", "always", "--dir", t.TempDir())
	h := brokertest.NewHistoryRecorder()
	ch := "restart"
	h.AddChannels(ch)
	sub := startHist(t, srv.URL(), h)
	if err := sub.Subscribe(ctx(t), []string{ch}); err != nil {
		t.Fatal(err)
	}
	pub := startHist(t, srv.URL(), brokertest.NewHistoryRecorder())
	var p publisher
	done := make(chan struct{})
	go func() { defer close(done); p.run(context.Background(), pub, ch, 800) }()
	time.Sleep(400 * time.Millisecond)
	srv.Stop() // SIGKILL
	time.Sleep(time.Second)
	srv.Start()
	<-done
	waitUntil(t, 60*time.Second, "every acknowledged publication", func() bool {
		got := h.Got(ch)
		return len(got) > 0 && string(got[len(got)-1].Payload) == "799"
	})
	time.Sleep(300 * time.Millisecond)
	checkNoAckedLost(t, h.Got(ch), p.acked, true)
	if p.fails == 0 {
		t.Log("no publish failed during the outage (it was short)")
	}
	if n := h.Lost(ch); n != 0 {
		t.Fatalf("%d losses reported with a persistent Redis", n)
	}
}

// Without persistence the history is gone after a restart: the epoch
// changes and the loss is reported.
func TestHistoryRedisRestartVolatile(t *testing.T) {
	t.Parallel()
	srv := startRedisServer(t)
	h := brokertest.NewHistoryRecorder()
	ch := "volatile"
	h.AddChannels(ch)
	sub := startHist(t, srv.URL(), h)
	if err := sub.Subscribe(ctx(t), []string{ch}); err != nil {
		t.Fatal(err)
	}
	pub := startHist(t, srv.URL(), brokertest.NewHistoryRecorder())
	var p publisher
	p.run(context.Background(), pub, ch, 10)
	waitUntil(t, 30*time.Second, "10 publications", func() bool { return len(h.Got(ch)) == 10 })
	before := h.Got(ch)[9].Position
	srv.Stop()
	time.Sleep(500 * time.Millisecond)
	srv.Start()
	waitUntil(t, 30*time.Second, "the loss reported", func() bool { return h.Lost(ch) > 0 })
	var after publisher
	waitUntil(t, 30*time.Second, "a publish on the new Redis", func() bool {
		after.run(context.Background(), pub, ch, 1)
		return len(after.acked) > 0
	})
	waitUntil(t, 30*time.Second, "the new publication", func() bool { return len(h.Got(ch)) == 11 })
	got := h.Got(ch)[10]
	if got.Epoch == before.Epoch {
		t.Fatalf("same epoch %q after Redis lost the history", got.Epoch)
	}
	if got.Offset != 1 {
		t.Fatalf("first publication of the new epoch at %+v", got.Position)
	}
}

// The keys of a history channel expire with its TTL: memory on Redis stays
// bounded with many channels.
func TestHistoryKeysExpire(t *testing.T) {
	t.Parallel()
	srv := startRedisServer(t)
	requireBinary(t, "redis-cli")
	b := startHist(t, srv.URL(), brokertest.NewHistoryRecorder())
	for i := range 50 {
		ch := "ttl:many" + strconv.Itoa(i)
		if _, err := b.PublishHistory(ctx(t), ch, []byte("x"), brokertest.HistoryOptionsFor(ch)); err != nil {
			t.Fatal(err)
		}
	}
	out, err := command(srv.Addr(), "DBSIZE")
	if err != nil || strings.TrimSpace(out) != "100" {
		t.Fatalf("DBSIZE %q %v, want 100 (two keys per channel)", out, err)
	}
	waitUntil(t, 30*time.Second, "the keys to expire", func() bool {
		out, err := command(srv.Addr(), "DBSIZE")
		return err == nil && strings.TrimSpace(out) == "0"
	})
}
