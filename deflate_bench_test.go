package socketcluster_test

import (
	"context"
	"fmt"
	"runtime"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	sc "github.com/socketcluster-go/socketcluster"
)

// Benchmarks of permessage-deflate: compressed fan-out against plain, and
// the memory an idle socket holds once it has negotiated compression and
// exchanged compressed messages. docs/performance.md has the results.

const offerDeflate = "permessage-deflate; client_max_window_bits"

// quotes is chatty JSON of about 2 KB: 24 price updates.
func quotes() []map[string]any {
	out := make([]map[string]any, 24)
	syms := []string{"EURUSD", "GBPUSD", "USDJPY", "AUDUSD", "USDCHF", "NZDUSD"}
	for i := range out {
		out[i] = map[string]any{"symbol": syms[i%len(syms)], "bid": 1.08 + float64(i)*0.0137, "ask": 1.0802 + float64(i)*0.0137, "ts": int64(1732245000123) + int64(i)*17, "venue": "LMAX"}
	}
	return out
}

// BenchmarkFanOutDeflate publishes one 2 KB JSON message per op to n
// in-process subscribers (see BenchmarkFanOut), all of them with
// compression negotiated or none; ns/msg is per delivery. With
// compression, each publish is compressed once (compressions/op) and
// wire-bytes is the size of the shared compressed message. cpu-ns/msg is
// the process's CPU time per delivery (the fake clients' side is small:
// they drop each frame on the spot).
func BenchmarkFanOutDeflate(b *testing.B) {
	for _, n := range []int{1, 100, 10000} {
		for _, deflate := range []bool{false, true} {
			b.Run(fmt.Sprintf("subscribers=%d/deflate=%v", n, deflate), func(b *testing.B) {
				o := sc.Options{Logger: quietLogger, PingInterval: time.Hour, PingTimeout: time.Hour}
				ext := ""
				if deflate {
					o.PerMessageDeflate = &sc.DeflateOptions{}
					ext = offerDeflate
				}
				srv, err := sc.New(o)
				if err != nil {
					b.Fatal(err)
				}
				var delivered atomic.Int64
				closers := make([]func(), n)
				for i := range closers {
					closers[i] = pipeSubscribeExt(b, srv, "bench", &delivered, ext)
				}
				for delivered.Load() < int64(n) {
					runtime.Gosched()
				}
				delivered.Store(0)
				defer func() {
					for _, c := range closers {
						c()
					}
					_ = srv.Close(context.Background())
				}()
				data := quotes()
				ctx := context.Background()
				exch := srv.Exchange()
				before := srv.Stats()
				cpu0 := cpuTime()
				start := time.Now()
				ops := 0
				b.ReportAllocs()
				for b.Loop() {
					ops++
					if err := exch.InvokePublish(ctx, "bench", data); err != nil {
						b.Fatal(err)
					}
					want := int64(ops * n)
					for delivered.Load() < want {
						runtime.Gosched()
					}
				}
				elapsed := time.Since(start)
				cpu := cpuTime() - cpu0
				after := srv.Stats()
				b.ReportMetric(float64(elapsed.Nanoseconds())/float64(ops*n), "ns/msg")
				b.ReportMetric(float64(cpu.Nanoseconds())/float64(ops*n), "cpu-ns/msg")
				b.ReportMetric(float64(after.Compressions-before.Compressions)/float64(ops), "compressions/op")
				if c := after.Compressions - before.Compressions; c > 0 {
					b.ReportMetric(float64(after.CompressionOutBytes-before.CompressionOutBytes)/float64(c), "wire-bytes")
				}
			})
		}
	}
}

// cpuTime is the process's user and system CPU time so far: on a shared
// machine it says more than the wall clock.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// BenchmarkIdleSocketHeapDeflate measures the live heap per idle socket,
// with compression negotiated or not, after each socket received a
// compressed publish: a socket keeps no compression state between
// messages (the pools' flate writers and readers are shared, and two
// garbage collections empty them; they are not counted). The figure
// includes the in-process client's side of each pipe and its reading
// goroutine's heap (the same in both cases): compare the two.
//
// With compression the server also keeps its pooled flate writer (made for
// the publish): a fixed amount, spread over the sockets; the two socket
// counts tell it apart from a per-socket cost.
func BenchmarkIdleSocketHeapDeflate(b *testing.B) {
	for _, sub := range []struct {
		n       int
		deflate bool
	}{{1000, false}, {1000, true}, {4000, false}, {4000, true}} {
		n, deflate := sub.n, sub.deflate
		b.Run(fmt.Sprintf("sockets=%d/deflate=%v", n, deflate), func(b *testing.B) {
			for b.Loop() {
				o := sc.Options{Logger: quietLogger, PingInterval: time.Hour, PingTimeout: time.Hour}
				ext := ""
				if deflate {
					o.PerMessageDeflate = &sc.DeflateOptions{}
					ext = offerDeflate
				}
				srv, err := sc.New(o)
				if err != nil {
					b.Fatal(err)
				}
				var delivered atomic.Int64
				var ms runtime.MemStats
				runtime.GC()
				runtime.GC()
				runtime.ReadMemStats(&ms)
				base := ms.HeapAlloc
				closers := make([]func(), n)
				for i := range closers {
					closers[i] = pipeSubscribeExt(b, srv, "idle", &delivered, ext)
				}
				for delivered.Load() < int64(n) {
					runtime.Gosched()
				}
				if err := srv.Exchange().InvokePublish(context.Background(), "idle", quotes()); err != nil {
					b.Fatal(err)
				}
				for delivered.Load() < int64(2*n) {
					runtime.Gosched()
				}
				if deflate && srv.Stats().Compressions != 1 {
					b.Fatalf("%d compressions", srv.Stats().Compressions)
				}
				time.Sleep(100 * time.Millisecond) // flushers done
				runtime.GC()
				runtime.GC() // sync.Pool keeps its objects for one collection
				runtime.ReadMemStats(&ms)
				b.ReportMetric(float64(ms.HeapAlloc-base)/float64(n), "heap-bytes/socket")
				for _, c := range closers {
					c()
				}
				_ = srv.Close(context.Background())
			}
		})
	}
}
