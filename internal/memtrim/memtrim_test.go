package memtrim

import (
	"context"
	"runtime"
	"sync"
	"testing"
	"time"
)

const mb = 1 << 20

func TestQuietAndWorth(t *testing.T) {
	base := sample{allocs: 1000 * mb, live: 100 * mb, objects: 160 * mb, free: 10 * mb}
	step := func(s sample, alloc uint64) sample { s.allocs += alloc; return s }
	huge := sample{allocs: 0, live: 4096 * mb, objects: 4096 * mb, free: 2048 * mb}
	for _, tc := range []struct {
		name      string
		prev, cur sample
		want      bool
	}{
		{"nothing allocated", base, base, true},
		{"1 MiB allocated", base, step(base, mb), true},
		{"2 MiB allocated, 100 MiB live", base, step(base, 2*mb), false},
		{"4 MiB allocated, 4 GiB live", huge, step(huge, 4*mb), true},
		{"60 MiB allocated, 4 GiB live", huge, step(huge, 60*mb), false},
	} {
		if got := quiet(tc.prev, tc.cur, mb); got != tc.want {
			t.Errorf("quiet, %s: %v, want %v", tc.name, got, tc.want)
		}
	}
	for _, tc := range []struct {
		name string
		cur  sample
		want bool
	}{
		{"70 MiB to release, 100 MiB live", base, true},
		{"7 MiB to release", sample{live: 100 * mb, objects: 105 * mb, free: 2 * mb}, false},
		{"small heap: 9 MiB, under MinBytes", sample{live: 4 * mb, objects: 12 * mb, free: mb}, false},
		{"objects under the live heap (freed since)", sample{live: 100 * mb, objects: 50 * mb, free: 30 * mb}, true},
	} {
		if got := worth(tc.cur, 16*mb); got != tc.want {
			t.Errorf("worth, %s: %v, want %v", tc.name, got, tc.want)
		}
	}
}

// sim plays a process to run, one period per read: alloc bytes allocated
// per period (a function of the period's number), a collection of its own
// when the heap doubled (the garbage then kept as free heap, as the
// runtime does), and trims that free everything.
type sim struct {
	mu                  sync.Mutex
	s                   sample
	periods, trims, gcs int
	alloc               func(period int) uint64
}

func (m *sim) read() sample {
	m.mu.Lock()
	defer m.mu.Unlock()
	a := m.alloc(m.periods)
	m.periods++
	m.s.allocs += a
	m.s.objects += a
	if m.s.objects >= 2*m.s.live {
		m.s.free += m.s.objects - m.s.live
		m.s.objects = m.s.live
		m.s.cycles++
		m.gcs++
	}
	return m.s
}

func (m *sim) trim() {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.s.released += m.s.free + m.s.objects - m.s.live
	m.s.objects, m.s.free = m.s.live, 0
	m.trims++
}

// runSim runs the trimmer over m for n periods (reads, the trims' included).
func runSim(t *testing.T, m *sim, c Config, n int) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		run(ctx, c, m.read, m.trim)
	}()
	deadline := time.Now().Add(30 * time.Second)
	for {
		m.mu.Lock()
		p := m.periods
		m.mu.Unlock()
		if p >= n {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("only %d periods in 30 s", p)
		}
		time.Sleep(time.Millisecond)
	}
	cancel()
	<-done
}

// An idle process is trimmed once, however long it stays idle.
func TestIdleTrimmedOnce(t *testing.T) {
	m := &sim{s: sample{live: 100 * mb, objects: 200 * mb}, alloc: func(int) uint64 { return 0 }}
	runSim(t, m, Config{Period: time.Millisecond, MinGap: time.Millisecond, MinBytes: 16 * mb, QuietBytes: mb}, 300)
	if m.trims != 1 {
		t.Fatalf("%d trims of an idle process, want 1", m.trims)
	}
}

// A steady load under the quiet threshold (1 MiB per period, 100 MiB
// live: the runtime collects every 100 periods) is trimmed at most once
// per collection of the runtime's own, plus the first.
func TestSteadyQuietLoadTrimsOncePerCollection(t *testing.T) {
	m := &sim{s: sample{live: 100 * mb, objects: 100 * mb}, alloc: func(int) uint64 { return mb }}
	runSim(t, m, Config{Period: time.Millisecond, MinGap: time.Millisecond, MinBytes: 16 * mb, QuietBytes: mb}, 1000)
	if m.trims == 0 || m.trims > m.gcs+1 {
		t.Fatalf("%d trims, %d collections of the runtime's own in %d periods", m.trims, m.gcs, m.periods)
	}
}

// A busy process (4 MiB per period over a 100 MiB heap) is never
// trimmed; once it goes quiet, it is.
func TestBusyNeverTrimmed(t *testing.T) {
	m := &sim{s: sample{live: 100 * mb, objects: 100 * mb}, alloc: func(p int) uint64 {
		if p < 500 {
			return 4 * mb
		}
		return 0
	}}
	runSim(t, m, Config{Period: time.Millisecond, MinGap: time.Millisecond, MinBytes: 16 * mb, QuietBytes: mb}, 490)
	if m.trims != 0 {
		t.Fatalf("%d trims of a busy process", m.trims)
	}
	runSim(t, m, Config{Period: time.Millisecond, MinGap: time.Millisecond, MinBytes: 16 * mb, QuietBytes: mb}, 600)
	if m.trims != 1 {
		t.Fatalf("%d trims once quiet, want 1", m.trims)
	}
}

// MinGap holds a trim back even when a new quiet spell calls for one.
func TestMinGap(t *testing.T) {
	m := &sim{s: sample{live: 100 * mb, objects: 200 * mb}, alloc: func(p int) uint64 {
		if p%10 == 5 {
			return 64 * mb // a burst every 10 periods ends each quiet spell
		}
		return 0
	}}
	runSim(t, m, Config{Period: time.Millisecond, MinGap: time.Hour, MinBytes: 16 * mb, QuietBytes: mb}, 200)
	if m.trims != 1 {
		t.Fatalf("%d trims with an hour's MinGap, want 1", m.trims)
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
