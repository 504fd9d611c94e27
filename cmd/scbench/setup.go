//go:build linux

package main

import (
	"context"
	"runtime"
	"sync"
	"sync/atomic"
	"time"
)

// dialResult is the outcome of opening many connections.
type dialResult struct {
	conns    []*Conn // nil entries for failures
	ok       int
	failed   int
	firstErr error
	elapsed  time.Duration
	setup    *Hist // set-up latency of each successful connection
}

// dialAll opens n connections, t.Concurrency at a time, and starts each one's
// reader with handler(i) as soon as it is set up. channel(i), if not nil,
// names the channel connection i subscribes to during set-up. It stops early
// when ctx ends or when failures reach maxFail (0: never).
func (t *Target) dialAll(ctx context.Context, ps *pollSet, n int, channel func(i int) string, handler func(i int) Handler, stats *connStats, maxFail int) *dialResult {
	r := &dialResult{conns: make([]*Conn, n), setup: NewHist(16)}
	var (
		next   atomic.Int64
		ok     atomic.Int64
		failed atomic.Int64
		mu     sync.Mutex
		wg     sync.WaitGroup
	)
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	start := time.Now()
	done := make(chan struct{})
	go func() {
		tick := time.NewTicker(time.Second)
		defer tick.Stop()
		for {
			select {
			case <-done:
				return
			case <-tick.C:
				t.progress("connecting: %d/%d open, %d failed", ok.Load(), n, failed.Load())
			}
		}
	}()
	for w := 0; w < max(1, min(t.Concurrency, n)); w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for ctx.Err() == nil {
				i := int(next.Add(1) - 1)
				if i >= n {
					return
				}
				ch := ""
				if channel != nil {
					ch = channel(i)
				}
				t0 := nanotime()
				c, err := t.dial(ctx, ps, i, ch, handler(i), stats)
				if err != nil {
					f := failed.Add(1)
					mu.Lock()
					if r.firstErr == nil {
						r.firstErr = err
					}
					mu.Unlock()
					if maxFail > 0 && f >= int64(maxFail) {
						cancel()
					}
					continue
				}
				r.setup.Record(i, nanotime()-t0)
				r.conns[i] = c
				ok.Add(1)
			}
		}()
	}
	wg.Wait()
	close(done)
	r.elapsed = time.Since(start)
	r.ok = int(ok.Load())
	r.failed = int(failed.Load())
	return r
}

// newRunPollers starts the pollers for a run of n connections.
func (t *Target) newRunPollers(n int) (*pollSet, error) {
	k := t.Pollers
	if k <= 0 {
		// Half the CPUs: the generator should leave the rest to the server
		// (on this 2-CPU machine one poller reaches the same ceiling as two).
		k = max(1, runtime.GOMAXPROCS(0)/2)
	}
	return newPollSet(min(k, n), n, t.RxStamps)
}

// closeAll closes the connections in parallel and waits for their readers.
func closeAll(conns []*Conn) {
	var wg sync.WaitGroup
	const workers = 32
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := w; i < len(conns); i += workers {
				if c := conns[i]; c != nil {
					c.close(true)
				}
			}
		}()
	}
	wg.Wait()
}

// sleepCtx sleeps for d or until ctx ends; it reports whether ctx is still live.
func sleepCtx(ctx context.Context, d time.Duration) bool {
	if d <= 0 {
		return ctx.Err() == nil
	}
	tm := time.NewTimer(d)
	defer tm.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-tm.C:
		return true
	}
}
