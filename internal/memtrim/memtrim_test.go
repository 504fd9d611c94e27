package memtrim

import (
	"context"
	"runtime"
	"sync/atomic"
	"testing"
	"time"
)

func TestDue(t *testing.T) {
	const mb = 1 << 20
	base := sample{allocs: 1000 * mb, live: 100 * mb, objects: 160 * mb, free: 10 * mb}
	busy := base
	busy.allocs += 50 * mb
	little := base
	little.objects, little.free = 105*mb, 2*mb
	smallHeap := sample{allocs: 10 * mb, live: 4 * mb, objects: 12 * mb, free: 1 * mb}
	for _, tc := range []struct {
		name      string
		prev, cur sample
		want      bool
	}{
		{"quiet, 70 MiB to release", base, base, true},
		{"busy: 50 MiB allocated in the period", base, busy, false},
		{"quiet, only 7 MiB to release", little, little, false},
		{"quiet, small heap: under MinBytes", smallHeap, smallHeap, false},
	} {
		if got := due(tc.prev, tc.cur, 16*mb); got != tc.want {
			t.Errorf("%s: due = %v, want %v", tc.name, got, tc.want)
		}
	}
}

// run trims when due, not again before MinGap, and stops with its
// context.
func TestRunTrimsOncePerGap(t *testing.T) {
	const mb = 1 << 20
	var trims atomic.Int32
	read := func() sample { // always quiet, always worth it
		return sample{allocs: 1000 * mb, live: 100 * mb, objects: 200 * mb, free: 10 * mb}
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		run(ctx, Config{Period: time.Millisecond, MinGap: time.Hour, MinBytes: 16 * mb}, read, func() { trims.Add(1) })
	}()
	deadline := time.Now().Add(10 * time.Second)
	for trims.Load() == 0 && time.Now().Before(deadline) {
		time.Sleep(time.Millisecond)
	}
	time.Sleep(50 * time.Millisecond) // fifty more periods
	cancel()
	<-done
	if n := trims.Load(); n != 1 {
		t.Fatalf("%d trims, want 1 (MinGap is an hour)", n)
	}
}

var sink [][]byte

// With the runtime's own figures: after garbage of 64 MiB, a quiet
// process is trimmed.
func TestRunReleasesGarbage(t *testing.T) {
	for range 64 {
		sink = append(sink, make([]byte, 1<<20))
	}
	sink = nil
	runtime.GC() // the 64 MiB are free heap, kept by the runtime for now
	released := make(chan uint64, 1)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go Run(ctx, Config{Period: 5 * time.Millisecond, MinBytes: 8 << 20, Trimmed: func(n uint64) {
		select {
		case released <- n:
		default:
		}
	}})
	select {
	case n := <-released:
		t.Logf("released %d MiB", n>>20)
	case <-time.After(30 * time.Second):
		t.Fatal("no trim within 30 s of a quiet process with 64 MiB free")
	}
}
