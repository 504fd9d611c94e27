package socketcluster

import (
	"math/rand/v2"
	"testing"
)

// TestDeadlinesHeap schedules, moves and cancels sockets at random and
// checks the heap after every step: each parent due no later than its
// children, every socket's slot its index. It never lets the timer fire
// (the deadlines are far in the future).
func TestDeadlinesHeap(t *testing.T) {
	t.Parallel()
	var d deadlines
	defer func() {
		if d.timer != nil {
			d.timer.Stop()
		}
	}()
	far := monoNow() + int64(1<<40)
	socks := make([]*Socket, 200)
	for i := range socks {
		socks[i] = &Socket{slot: -1}
	}
	check := func() {
		t.Helper()
		for i, s := range d.heap {
			if int(s.slot) != i {
				t.Fatalf("socket at %d has slot %d", i, s.slot)
			}
			if i > 0 && d.heap[(i-1)/2].due > s.due {
				t.Fatalf("heap order broken at %d", i)
			}
		}
		n := 0
		for _, s := range socks {
			if s.slot >= 0 {
				n++
			}
		}
		if n != len(d.heap) {
			t.Fatalf("%d sockets scheduled, heap holds %d", n, len(d.heap))
		}
	}
	r := rand.New(rand.NewPCG(1, 2))
	for range 5000 {
		s := socks[r.IntN(len(socks))]
		if r.IntN(3) == 0 {
			d.cancel(s)
		} else {
			d.schedule(s, far+int64(r.IntN(1000)))
		}
		check()
	}
	if d.at == 0 || (len(d.heap) > 0 && d.at > d.heap[0].due) {
		t.Fatalf("timer at %d, earliest deadline %d", d.at, d.heap[0].due)
	}
}
