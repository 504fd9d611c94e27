//go:build linux

package main

import "sync/atomic"

// seqTracker follows one stream of sequence numbers (1, 2, 3, ... from one
// publisher) as received by one subscriber. Only the subscriber's reader
// goroutine calls add; the counters are atomics so that the coordinating
// goroutine can read them while the run goes on.
//
// Duplicates are recognised within a window of seqWindow numbers below the
// highest one seen; anything older that arrives late is counted as an order
// violation and assumed not to be a duplicate (bounded memory per subscriber).
type seqTracker struct {
	max  int64 // highest sequence number seen
	seen [seqWindow / 64]uint64

	recv atomic.Int64 // deliveries, duplicates included
	uniq atomic.Int64 // distinct sequence numbers
	dup  atomic.Int64 // deliveries of a number already seen
	ooo  atomic.Int64 // deliveries of a number lower than one seen before
	last atomic.Int64 // generator clock (ns) of the latest delivery
}

const seqWindow = 1024

func (t *seqTracker) bit(seq int64) (word *uint64, mask uint64) {
	i := uint64(seq) % seqWindow
	return &t.seen[i/64], 1 << (i % 64)
}

// add records one delivery of seq at time now.
func (t *seqTracker) add(seq, now int64) {
	t.recv.Add(1)
	t.last.Store(now)
	switch {
	case seq > t.max:
		if seq-t.max >= seqWindow {
			t.seen = [seqWindow / 64]uint64{}
		} else {
			for s := t.max + 1; s < seq; s++ {
				w, m := t.bit(s)
				*w &^= m
			}
		}
		w, m := t.bit(seq)
		*w |= m
		t.max = seq
		t.uniq.Add(1)
	case seq > t.max-seqWindow:
		w, m := t.bit(seq)
		if *w&m != 0 {
			t.dup.Add(1)
			return
		}
		*w |= m
		t.uniq.Add(1)
		t.ooo.Add(1)
	default:
		t.uniq.Add(1)
		t.ooo.Add(1)
	}
}

// seqCounts is a snapshot of a tracker's counters (or a sum of several).
type seqCounts struct {
	recv, uniq, dup, ooo int64
}

func (t *seqTracker) counts() seqCounts {
	return seqCounts{t.recv.Load(), t.uniq.Load(), t.dup.Load(), t.ooo.Load()}
}

func (a seqCounts) plus(b seqCounts) seqCounts {
	return seqCounts{a.recv + b.recv, a.uniq + b.uniq, a.dup + b.dup, a.ooo + b.ooo}
}

func (a seqCounts) minus(b seqCounts) seqCounts {
	return seqCounts{a.recv - b.recv, a.uniq - b.uniq, a.dup - b.dup, a.ooo - b.ooo}
}
