//go:build linux

package main

import (
	"math"
	"math/bits"
	"sync/atomic"
)

// Hist is a log-linear latency histogram in the style of HdrHistogram: values
// (nanoseconds) below 2·subCount are counted exactly, and every power of two
// above that is split into subCount equal buckets, so a reported percentile
// is within 1/subCount/2 (0.8 %) of the true value. Memory is fixed
// (numBuckets counters per shard) whatever the number of samples.
//
// Record is safe for concurrent use. Recorders pass a shard hint (for example
// their connection number) so that goroutines on different CPUs mostly touch
// different cache lines.
type Hist struct {
	shards []histShard
}

const (
	subBits    = 6
	subCount   = 1 << subBits // buckets per power of two
	maxExp     = 42           // values up to 2^(maxExp+subBits) ns (≈ 3 days)
	numBuckets = (maxExp + 2) * subCount
)

type histShard struct {
	counts [numBuckets]atomic.Uint64
	n      atomic.Int64
	sum    atomic.Int64
	max    atomic.Int64
	_      [64]byte // keep the hot words of neighbours apart
}

// NewHist returns a histogram with the given number of shards (at least 1).
func NewHist(shards int) *Hist {
	return &Hist{shards: make([]histShard, max(shards, 1))}
}

// bucketOf maps a non-negative value to its bucket index.
func bucketOf(v int64) int {
	if v < 2*subCount {
		if v < 0 {
			return 0
		}
		return int(v)
	}
	e := bits.Len64(uint64(v)) - (subBits + 1) // v>>e is in [subCount, 2·subCount)
	if e > maxExp {
		return numBuckets - 1
	}
	return (e+1)*subCount + int(v>>e) - subCount
}

// bucketRange returns the smallest and largest value that map to bucket b.
func bucketRange(b int) (lo, hi int64) {
	if b < 2*subCount {
		return int64(b), int64(b)
	}
	e := b/subCount - 1
	m := int64(b%subCount + subCount)
	lo = m << e
	return lo, lo + (1 << e) - 1
}

// Record adds one value.
func (h *Hist) Record(shard int, v int64) {
	if v < 0 {
		v = 0
	}
	s := &h.shards[uint(shard)%uint(len(h.shards))]
	s.counts[bucketOf(v)].Add(1)
	s.n.Add(1)
	s.sum.Add(v)
	for {
		m := s.max.Load()
		if v <= m || s.max.CompareAndSwap(m, v) {
			break
		}
	}
}

// Snapshot is a merged, immutable copy of a Hist.
type Snapshot struct {
	counts [numBuckets]uint64
	N      int64
	Sum    int64
	Max    int64
}

// Snapshot merges the shards. Values recorded concurrently may or may not be
// included.
func (h *Hist) Snapshot() *Snapshot {
	s := new(Snapshot)
	for i := range h.shards {
		sh := &h.shards[i]
		for b := range sh.counts {
			s.counts[b] += sh.counts[b].Load()
		}
		s.N += sh.n.Load()
		s.Sum += sh.sum.Load()
		s.Max = max(s.Max, sh.max.Load())
	}
	return s
}

// Quantile returns the value at quantile q (0 ≤ q ≤ 1): the smallest
// recorded value v such that at least q·N samples are ≤ v, reported as the
// middle of v's bucket (and never above the exact maximum). It returns 0 for
// an empty histogram.
func (s *Snapshot) Quantile(q float64) int64 {
	var total uint64
	for _, c := range s.counts {
		total += c
	}
	if total == 0 {
		return 0
	}
	rank := uint64(math.Ceil(q * float64(total)))
	rank = min(max(rank, 1), total)
	var seen uint64
	for b, c := range s.counts {
		seen += c
		if seen >= rank {
			lo, hi := bucketRange(b)
			v := lo + (hi-lo)/2
			if s.Max > 0 && v > s.Max {
				v = s.Max
			}
			return v
		}
	}
	return s.Max
}

// Mean returns the exact mean of the recorded values.
func (s *Snapshot) Mean() float64 {
	if s.N == 0 {
		return 0
	}
	return float64(s.Sum) / float64(s.N)
}
