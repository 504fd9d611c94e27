package brokertest

import (
	"context"
	"encoding/binary"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/socketcluster-go/socketcluster/broker"
)

// Bench runs publish→deliver benchmarks through two instances made by
// newBroker (on the same bus), as sub-benchmarks of b:
//
//   - Throughput/<size>: one goroutine publishes b.N messages on instance A
//     as fast as Publish returns, with at most a window of messages (up to
//     4096, and 4 MB) published and not yet delivered on instance B, since
//     a fire-and-forget bus would otherwise drop what B cannot keep up
//     with; ns/op is the time per message until the last one has been
//     delivered; msgs/s is also reported.
//   - ThroughputParallel/<size>: the same with many publishing goroutines
//     (b.RunParallel, 4 × GOMAXPROCS), which lets a broker batch publishes.
//   - Latency: one message at a time; ns/op is the time from Publish to
//     Deliver on B; p50-µs and p99-µs are reported too.
//
// Allocations are reported (they include both instances' work).
func Bench(b *testing.B, newBroker func(b *testing.B) broker.Broker) {
	for _, size := range []int{128, 16 << 10} {
		b.Run(fmt.Sprintf("Throughput/%dB", size), func(b *testing.B) { benchThroughput(b, newBroker, size, false) })
	}
	for _, size := range []int{128, 16 << 10} {
		b.Run(fmt.Sprintf("ThroughputParallel/%dB", size), func(b *testing.B) { benchThroughput(b, newBroker, size, true) })
	}
	b.Run("Latency", func(b *testing.B) { benchLatency(b, newBroker) })
}

// benchHandler counts deliveries and wakes a waiter at a target.
type benchHandler struct {
	mu     sync.Mutex
	errs   []error // Status reports
	n      atomic.Int64
	target atomic.Int64
	reach  chan struct{}
	onMsg  func(payload []byte) // optional, for latency
	window chan struct{}        // optional: a token per message in flight
}

func newBenchHandler() *benchHandler {
	h := &benchHandler{reach: make(chan struct{}, 1)}
	h.target.Store(-1)
	return h
}

func (h *benchHandler) Deliver(_ string, payload []byte) {
	if h.onMsg != nil {
		h.onMsg(payload)
	}
	if h.window != nil {
		select {
		case <-h.window:
		default:
		}
	}
	if h.n.Add(1) == h.target.Load() {
		select {
		case h.reach <- struct{}{}:
		default:
		}
	}
}
func (h *benchHandler) Channels() []string { return nil }
func (h *benchHandler) Status(err error) {
	h.mu.Lock()
	h.errs = append(h.errs, err)
	h.mu.Unlock()
}

// waitFor waits until n deliveries arrived in total.
func (h *benchHandler) waitFor(b *testing.B, n int64) {
	h.target.Store(n)
	deadline := time.After(arriveTimeout)
	for h.n.Load() < n {
		select {
		case <-h.reach:
		case <-deadline:
			h.mu.Lock()
			defer h.mu.Unlock()
			b.Fatalf("brokertest: %d of %d messages delivered within %v; Status reports: %v", h.n.Load(), n, arriveTimeout, h.errs)
		}
	}
}

var benchSeq atomic.Int64

// benchPair starts a publishing and a subscribed instance on a fresh
// channel; stop closes both.
func benchPair(b *testing.B, newBroker func(b *testing.B) broker.Broker, hb *benchHandler) (pub broker.Broker, channel string, stop func()) {
	b.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), opTimeout)
	defer cancel()
	channel = fmt.Sprintf("bench-%d", benchSeq.Add(1))
	a, s := newBroker(b), newBroker(b)
	stop = func() { a.Close(); s.Close() }
	if err := a.Start(ctx, newBenchHandler()); err != nil {
		b.Fatal(err)
	}
	if err := s.Start(ctx, hb); err != nil {
		a.Close()
		b.Fatal(err)
	}
	if err := s.Subscribe(ctx, []string{channel}); err != nil {
		stop()
		b.Fatal(err)
	}
	// Warm up the path (connections, buffers).
	for range 10 {
		if err := a.Publish(ctx, channel, []byte("warm")); err != nil {
			stop()
			b.Fatal(err)
		}
	}
	hb.waitFor(b, 10)
	return a, channel, stop
}

func benchThroughput(b *testing.B, newBroker func(b *testing.B) broker.Broker, size int, parallel bool) {
	hb := newBenchHandler()
	hb.window = make(chan struct{}, max(16, min(4096, (4<<20)/size)))
	a, channel, stop := benchPair(b, newBroker, hb)
	defer stop()
	payload := make([]byte, size)
	base := hb.n.Load()

	// A watchdog fails the benchmark when deliveries stop while publishers
	// wait for the window (a message was lost).
	stalled := make(chan struct{})
	done := make(chan struct{})
	defer close(done)
	go func() {
		last, since := hb.n.Load(), time.Now()
		for {
			select {
			case <-done:
				return
			case <-time.After(100 * time.Millisecond):
			}
			if n := hb.n.Load(); n != last {
				last, since = n, time.Now()
			} else if len(hb.window) == cap(hb.window) && time.Since(since) > arriveTimeout/2 {
				close(stalled)
				return
			}
		}
	}()
	var sent atomic.Int64
	publish := func(ctx context.Context) error {
		select {
		case hb.window <- struct{}{}:
		case <-stalled:
			return fmt.Errorf("brokertest: deliveries stalled with a full window: %d of %d delivered (messages lost?)", hb.n.Load()-base, sent.Load())
		}
		if err := a.Publish(ctx, channel, payload); err != nil {
			return err
		}
		sent.Add(1)
		return nil
	}
	ctx := context.Background()
	b.SetBytes(int64(size))
	b.ReportAllocs()
	b.ResetTimer()
	start := time.Now()
	if parallel {
		b.SetParallelism(4)
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				if err := publish(ctx); err != nil {
					b.Error(err)
					return
				}
			}
		})
	} else {
		for b.Loop() {
			if err := publish(ctx); err != nil {
				b.Fatal(err)
			}
		}
	}
	hb.waitFor(b, base+sent.Load())
	el := time.Since(start)
	b.StopTimer()
	b.ReportMetric(float64(sent.Load())/el.Seconds(), "msgs/s")
}

func benchLatency(b *testing.B, newBroker func(b *testing.B) broker.Broker) {
	hb := newBenchHandler()
	var mu sync.Mutex
	var lat []time.Duration
	got := make(chan struct{}, 1)
	hb.onMsg = func(p []byte) {
		if len(p) != 8 {
			return // warm-up
		}
		d := time.Duration(time.Now().UnixNano() - int64(binary.BigEndian.Uint64(p)))
		mu.Lock()
		lat = append(lat, d)
		mu.Unlock()
		got <- struct{}{}
	}
	a, channel, stop := benchPair(b, newBroker, hb)
	defer stop()
	ctx := context.Background()
	payload := make([]byte, 8)
	b.ReportAllocs()
	for b.Loop() {
		binary.BigEndian.PutUint64(payload, uint64(time.Now().UnixNano()))
		if err := a.Publish(ctx, channel, payload); err != nil {
			b.Fatal(err)
		}
		select {
		case <-got:
		case <-time.After(arriveTimeout):
			b.Fatal("brokertest: message not delivered")
		}
	}
	b.StopTimer()
	mu.Lock()
	defer mu.Unlock()
	if len(lat) > 0 {
		slices.Sort(lat)
		b.ReportMetric(float64(lat[len(lat)/2])/1e3, "p50-µs")
		b.ReportMetric(float64(lat[len(lat)*99/100])/1e3, "p99-µs")
	}
}
