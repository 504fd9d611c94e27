package socketcluster_test

import (
	"context"
	"fmt"
	"runtime"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	sc "github.com/socketcluster-go/socketcluster"
	"github.com/socketcluster-go/socketcluster/broker"
	"github.com/socketcluster-go/socketcluster/broker/brokertest"
	"github.com/socketcluster-go/socketcluster/broker/natsbroker"
	"github.com/socketcluster-go/socketcluster/broker/redisbroker"
	"github.com/socketcluster-go/socketcluster/history"
)

// BenchmarkFanOutHistory is BenchmarkFanOut through each broker, on a
// channel with history ("history=on": every publish is stored by the
// broker before it is delivered) and on one without ("history=off", on
// the same server, which has history rules for other channels: the path
// of such channels must stay as fast as without Options.History).
func BenchmarkFanOutHistory(b *testing.B) {
	brokers := []struct {
		name string
		open func(b *testing.B) broker.Broker
	}{
		{"memory", func(*testing.B) broker.Broker { return broker.NewMemory(nil) }},
		{"redis", func(b *testing.B) broker.Broker {
			br, err := redisbroker.New(brokertest.URL(b, "redis"), redisbroker.Options{Prefix: fmt.Sprintf("scbench:%d:", time.Now().UnixNano())})
			if err != nil {
				b.Fatal(err)
			}
			return br
		}},
		{"nats", func(b *testing.B) broker.Broker {
			u := brokertest.URL(b, "nats")
			prefix := fmt.Sprintf("scbench.p%d", time.Now().UnixNano())
			br, err := natsbroker.New(u, natsbroker.Options{Prefix: prefix})
			if err != nil {
				b.Fatal(err)
			}
			b.Cleanup(func() { deleteStreams(u, prefix) })
			return br
		}},
	}
	for _, bk := range brokers {
		for _, hist := range []bool{false, true} {
			for _, n := range []int{1, 100, 1000} {
				name := fmt.Sprintf("broker=%s/history=%v/subscribers=%d", bk.name, map[bool]string{false: "off", true: "on"}[hist], n)
				b.Run(name, func(b *testing.B) {
					benchFanOutHistory(b, bk.open(b), hist, n)
				})
			}
		}
	}
}

func benchFanOutHistory(b *testing.B, br broker.Broker, hist bool, n int) {
	srv, err := sc.New(sc.Options{
		Logger: quietLogger, PingInterval: time.Hour, PingTimeout: time.Hour, Broker: br,
		History: []history.Rule{{Patterns: []string{"h.*"}, Size: 1000, TTL: time.Minute}},
	})
	if err != nil {
		b.Fatal(err)
	}
	channel, perSub := "plain", int64(1)
	if hist {
		channel, perSub = "h.bench", 2 // the subscribe ack and sc.recovery
	}
	var delivered atomic.Int64
	closers := make([]func(), n)
	for i := range closers {
		closers[i] = pipeSubscribe(b, srv, channel, &delivered)
	}
	for delivered.Load() < perSub*int64(n) {
		runtime.Gosched()
	}
	delivered.Store(0)
	defer func() {
		for _, c := range closers {
			c()
		}
		_ = srv.Close(context.Background())
	}()
	data := map[string]any{"bid": 1.0842, "ask": 1.0844, "ts": int64(1732245000123)}
	ctx := context.Background()
	exch := srv.Exchange()
	start := time.Now()
	ops := 0
	b.ReportAllocs()
	for b.Loop() {
		ops++
		if err := exch.InvokePublish(ctx, channel, data); err != nil {
			b.Fatal(err)
		}
		want := int64(ops * n)
		for delivered.Load() < want {
			runtime.Gosched()
		}
	}
	b.ReportMetric(float64(time.Since(start).Nanoseconds())/float64(ops*n), "ns/msg")
}

// deleteStreams deletes the history streams a NATS broker with prefix
// created on the shared server (they are on disk).
func deleteStreams(url, prefix string) {
	nc, err := nats.Connect(url)
	if err != nil {
		return
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	want := strings.ToUpper(strings.ReplaceAll(prefix, ".", "_")) + "_H"
	var del []string
	names := js.StreamNames(ctx)
	for n := range names.Name() {
		if strings.HasPrefix(n, want) {
			del = append(del, n)
		}
	}
	for _, n := range del {
		_ = js.DeleteStream(ctx, n)
	}
}
