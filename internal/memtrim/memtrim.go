// Package memtrim gives the heap's free memory back to the operating
// system once the process has gone quiet.
//
// Go's collector lets the heap grow to about twice its live size between
// collections (GOGC=100), and its scavenger keeps what the next cycle may
// need: a server that set up many connections and then sits idle holds
// about twice their live memory, resident, for as long as it stays idle.
// Run reads the runtime's figures every Period. When the last period
// allocated little (QuietBytes, or a 1024th of the live heap if that is
// more) and a collection would let a good share of the heap go, it
// collects and returns the free memory (debug.FreeOSMemory). Then it
// waits: the next trim needs a period that was not quiet (a new quiet
// spell) or a collection the runtime made by itself since (the heap grew
// back), and MinGap. So a quiet process pays at most one collection more
// per collection of its own, and a busy one nothing.
package memtrim

import (
	"context"
	"runtime/debug"
	"runtime/metrics"
	"time"
)

// Config tunes Run; zero fields take the defaults.
type Config struct {
	// Period is how often the runtime's figures are read. Default 1s.
	Period time.Duration
	// MinGap is the least time between two trims. Default 30s.
	MinGap time.Duration
	// MinBytes: a trim is made only when at least this much (and a
	// quarter of the live heap) could be released. Default 16 MiB.
	MinBytes uint64
	// QuietBytes: a period that allocated at most this much (or a 1024th
	// of the live heap, if more) is quiet. Default 1 MiB.
	QuietBytes uint64
	// Trimmed, if set, is called after each trim with the bytes of heap
	// released to the operating system since the figures that called
	// for it.
	Trimmed func(released uint64)
}

func (c *Config) defaults() {
	if c.Period <= 0 {
		c.Period = time.Second
	}
	if c.MinGap <= 0 {
		c.MinGap = 30 * time.Second
	}
	if c.MinBytes == 0 {
		c.MinBytes = 16 << 20
	}
	if c.QuietBytes == 0 {
		c.QuietBytes = 1 << 20
	}
}

// sample is what due decides on.
type sample struct {
	allocs   uint64 // bytes allocated since the process started
	live     uint64 // the live heap found by the last collection
	objects  uint64 // heap bytes in objects, live or not yet collected
	free     uint64 // heap bytes free and not yet released
	released uint64 // heap bytes released to the operating system
	cycles   uint64 // collections the runtime started by itself
}

var names = []string{
	"/gc/heap/allocs:bytes",
	"/gc/heap/live:bytes",
	"/memory/classes/heap/objects:bytes",
	"/memory/classes/heap/free:bytes",
	"/memory/classes/heap/released:bytes",
	"/gc/cycles/automatic:gc-cycles",
}

// reader reads samples, reusing its metrics slice.
type reader []metrics.Sample

func newReader() reader {
	r := make(reader, len(names))
	for i, n := range names {
		r[i].Name = n
	}
	return r
}

func (r reader) read() sample {
	metrics.Read(r)
	v := func(i int) uint64 {
		if r[i].Value.Kind() != metrics.KindUint64 {
			return 0 // not offered by this runtime
		}
		return r[i].Value.Uint64()
	}
	return sample{allocs: v(0), live: v(1), objects: v(2), free: v(3), released: v(4), cycles: v(5)}
}

// quiet reports whether the period from prev to cur allocated at most
// quietBytes, or a 1024th of the live heap if that is more.
func quiet(prev, cur sample, quietBytes uint64) bool {
	return cur.allocs-prev.allocs <= max(quietBytes, cur.live/1024)
}

// worth reports whether a collection would let at least minBytes and a
// quarter of the live heap go: the objects beyond the live heap found by
// the last collection, and the free bytes kept.
func worth(cur sample, minBytes uint64) bool {
	garbage := cur.objects - min(cur.live, cur.objects)
	return garbage+cur.free >= max(minBytes, cur.live/4)
}

// Run trims until ctx is done.
func Run(ctx context.Context, c Config) {
	c.defaults()
	r := newReader()
	run(ctx, c, r.read, debug.FreeOSMemory)
}

func run(ctx context.Context, c Config, read func() sample, trim func()) {
	t := time.NewTicker(c.Period)
	defer t.Stop()
	prev := read()
	armed := true           // no trim yet in this quiet spell, or the heap grew back since
	var cyclesAtTrim uint64 // the runtime's own collections when the last trim ended
	gap := int64(c.MinGap / c.Period)
	since := gap // periods since the last trim
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		cur := read()
		since++
		q := quiet(prev, cur, c.QuietBytes)
		if !q || cur.cycles != cyclesAtTrim {
			armed = true
		}
		if armed && q && since >= gap && worth(cur, c.MinBytes) {
			trim()
			after := read()
			armed, since, cyclesAtTrim = false, 0, after.cycles
			if c.Trimmed != nil {
				c.Trimmed(after.released - min(cur.released, after.released))
			}
			cur = after
		}
		prev = cur
	}
}
