// Package stream is the stream machinery that listeners, receivers,
// procedures and channels are built on (docs/protocol.md §11).
//
// A Demux holds named streams. A named stream exists only while it has
// consumers: each Consumer owns an unbounded FIFO and sees, in order and at
// its own pace, every item written to its name after it was created. Items
// written to a name that has no consumer are dropped. Writing never blocks.
//
// Close(name) appends an end marker for the current consumers of name: they
// get no further items, finish their backlog and then end. Kill(name) ends
// the current consumers at once and discards their backlog. Both only affect
// the consumers that exist at the time of the call; a consumer created
// afterwards on the same name sees only items written after its creation.
//
// Backpressure is measured, never enforced: a consumer's backpressure is the
// length of its queue, a stream's is the maximum over its consumers and a
// demux's is the maximum over all its consumers.
//
// No goroutine is started per consumer or per stream; waiting is done by
// the goroutine calling Consumer.Next.
package stream

import (
	"context"
	"errors"
	"iter"
	"slices"
	"sort"
	"sync"
	"time"
)

// ErrEnded is returned by Consumer.Next once the consumer has ended: it was
// closed (and its backlog is drained), killed, or stopped.
var ErrEnded = errors.New("stream: consumer ended")

// ErrTimeout is returned by Consumer.Next when the consumer's timeout
// elapsed before an item arrived. Its Error() is the reference's
// TimeoutError message, "Stream consumer iteration timed out", and it has a
// Timeout() method that reports true. The consumer stays usable.
var ErrTimeout error = &timeoutError{}

// timeoutError is the dynamic type of ErrTimeout.
type timeoutError struct{}

// Error returns the reference's TimeoutError message.
func (*timeoutError) Error() string { return "Stream consumer iteration timed out" }

// Timeout reports true, so that the error satisfies the usual
// `interface{ Timeout() bool }` checks.
func (*timeoutError) Timeout() bool { return true }

// ConsumerStats describes one consumer, as returned by Demux.Stats and
// Demux.StatsAll. Its JSON form matches the reference's stats objects, e.g.
// {"id":1,"backpressure":8,"stream":"foo"}; Timeout is omitted when the
// consumer has none (note that it is a time.Duration, so it encodes as
// nanoseconds).
type ConsumerStats struct {
	// ID is the consumer's id, unique within its Demux.
	ID int `json:"id"`
	// Backpressure is the number of items queued for the consumer.
	Backpressure int `json:"backpressure"`
	// Stream is the name of the stream the consumer reads.
	Stream string `json:"stream,omitempty"`
	// Timeout is the consumer's per-item timeout, 0 if it has none.
	Timeout time.Duration `json:"timeout,omitempty"`
}

// Consumer states.
const (
	stateOpen    uint8 = iota // receives writes
	stateClosing              // closed with a backlog: no more writes, drains then ends
	stateEnded                // done: Next returns ErrEnded
)

// Buffer sizing. A consumer whose queue empties keeps its buffer only if its
// capacity is at most idleCap, so an idle consumer never holds on to the
// memory of a past burst; a queue whose live part falls to a quarter of a
// capacity above shrinkCap is moved into a smaller buffer.
const (
	idleCap   = 32
	shrinkCap = 64
)

// Demux is a set of named streams with one consumer-id sequence. The zero
// value is not usable; create one with NewDemux. All methods are safe for
// concurrent use.
type Demux[T any] struct {
	// mu guards streams, byID and nextID. Lock order: Demux.mu, then
	// entry.mu, then Consumer.mu. Nothing blocks while holding any of them.
	mu      sync.RWMutex
	streams map[string]*entry[T]
	byID    map[int]*Consumer[T]
	nextID  int
}

// entry is one named stream: its registered consumers in id order.
type entry[T any] struct {
	// mu serialises writers of this name (taken with Demux.mu read-locked),
	// so that concurrent writes reach every consumer in the same order.
	mu        sync.Mutex
	consumers []*Consumer[T]
}

// NewDemux returns an empty Demux whose first consumer gets id 1. Its
// maps are made with the first consumer: most sockets' demuxes never get
// one, and each empty map would cost every connection its header.
func NewDemux[T any]() *Demux[T] {
	return &Demux[T]{nextID: 1}
}

// Write appends v to the queue of every open consumer of name. It never
// blocks (queues are unbounded) and costs O(consumers of name); when name
// has no consumer, v is dropped after one read-lock and a map lookup.
// Consumers that are draining after Close do not receive v.
func (d *Demux[T]) Write(name string, v T) {
	d.mu.RLock()
	e := d.streams[name]
	if e != nil {
		e.mu.Lock()
		for _, c := range e.consumers {
			c.push(v)
		}
		e.mu.Unlock()
	}
	d.mu.RUnlock()
}

// HasConsumers reports whether a Write to name now would reach at least one
// consumer, i.e. whether name has an open consumer (consumers draining after
// Close do not count).
func (d *Demux[T]) HasConsumers(name string) bool {
	d.mu.RLock()
	defer d.mu.RUnlock()
	e := d.streams[name]
	if e == nil {
		return false
	}
	for _, c := range e.consumers {
		c.mu.Lock()
		open := c.state == stateOpen
		c.mu.Unlock()
		if open {
			return true
		}
	}
	return false
}

// NewConsumer creates a consumer of name and registers it immediately: it
// receives every item written to name from now on. A timeout > 0 bounds
// each wait of Consumer.Next for the next item (ErrTimeout); 0 means none.
// The caller should end the consumer with Stop when it no longer reads it,
// unless it reads until ErrEnded.
func (d *Demux[T]) NewConsumer(name string, timeout time.Duration) *Consumer[T] {
	if timeout < 0 {
		timeout = 0
	}
	c := &Consumer[T]{
		d:       d,
		name:    name,
		timeout: timeout,
		wake:    make(chan struct{}, 1),
		done:    make(chan struct{}),
	}
	d.mu.Lock()
	c.id = d.nextID
	d.nextID++
	if d.streams == nil {
		d.streams = make(map[string]*entry[T])
		d.byID = make(map[int]*Consumer[T])
	}
	e := d.streams[name]
	if e == nil {
		e = &entry[T]{}
		d.streams[name] = e
	}
	e.consumers = append(e.consumers, c) // ids only grow: stays in id order
	d.byID[c.id] = c
	d.mu.Unlock()
	return c
}

// Close appends an end marker for the current consumers of name: they
// receive no further items, and each one ends (Next returns ErrEnded) once
// it has taken the items queued before the marker. A consumer with an empty
// queue ends and is unregistered at once; one with a backlog stays
// registered (visible to Stats, Backpressure, HasConsumer, Kill...) until it
// has drained it. Consumers created later are unaffected.
func (d *Demux[T]) Close(name string) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if e := d.streams[name]; e != nil {
		d.closeEntryLocked(name, e)
	}
}

// CloseAll does Close for every name.
func (d *Demux[T]) CloseAll() {
	d.mu.Lock()
	defer d.mu.Unlock()
	for name, e := range d.streams {
		d.closeEntryLocked(name, e)
	}
}

// closeEntryLocked closes every consumer of e; d.mu must be held.
func (d *Demux[T]) closeEntryLocked(name string, e *entry[T]) {
	kept := e.consumers[:0]
	for _, c := range e.consumers {
		if c.close() {
			kept = append(kept, c)
		} else {
			delete(d.byID, c.id)
		}
	}
	clear(e.consumers[len(kept):])
	e.consumers = kept
	if len(kept) == 0 {
		delete(d.streams, name)
	}
}

// Kill ends the current consumers of name at once: their queued items are
// discarded (their backpressure drops to 0), they are unregistered, and
// Next returns ErrEnded. Consumers created later are unaffected.
func (d *Demux[T]) Kill(name string) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if e := d.streams[name]; e != nil {
		d.killEntryLocked(name, e)
	}
}

// KillAll does Kill for every name.
func (d *Demux[T]) KillAll() {
	d.mu.Lock()
	defer d.mu.Unlock()
	for name, e := range d.streams {
		d.killEntryLocked(name, e)
	}
}

// killEntryLocked kills every consumer of e; d.mu must be held.
func (d *Demux[T]) killEntryLocked(name string, e *entry[T]) {
	for _, c := range e.consumers {
		c.end()
		delete(d.byID, c.id)
	}
	delete(d.streams, name)
}

// KillConsumer kills the single consumer with the given id, as Kill does
// for a whole stream. Unknown ids are ignored.
func (d *Demux[T]) KillConsumer(id int) {
	d.mu.Lock()
	c := d.byID[id]
	if c != nil {
		c.end()
		d.unregisterLocked(c)
	}
	d.mu.Unlock()
}

// unregister removes c from d if it is still registered.
func (d *Demux[T]) unregister(c *Consumer[T]) {
	d.mu.Lock()
	d.unregisterLocked(c)
	d.mu.Unlock()
}

// unregisterLocked removes c from d if it is still registered; d.mu must be
// held.
func (d *Demux[T]) unregisterLocked(c *Consumer[T]) {
	if d.byID[c.id] != c {
		return
	}
	delete(d.byID, c.id)
	e := d.streams[c.name]
	if e == nil {
		return
	}
	if i := slices.Index(e.consumers, c); i >= 0 {
		e.consumers = slices.Delete(e.consumers, i, i+1)
	}
	if len(e.consumers) == 0 {
		delete(d.streams, c.name)
	}
}

// Backpressure returns the backpressure of the stream name: the largest
// queue length among its registered consumers, 0 if it has none.
func (d *Demux[T]) Backpressure(name string) int {
	d.mu.RLock()
	defer d.mu.RUnlock()
	bp := 0
	if e := d.streams[name]; e != nil {
		for _, c := range e.consumers {
			bp = max(bp, c.Backpressure())
		}
	}
	return bp
}

// BackpressureAll returns the largest queue length among all registered
// consumers of d, 0 if there are none.
func (d *Demux[T]) BackpressureAll() int {
	d.mu.RLock()
	defer d.mu.RUnlock()
	bp := 0
	for _, c := range d.byID {
		bp = max(bp, c.Backpressure())
	}
	return bp
}

// ConsumerBackpressure returns the queue length of the registered consumer
// with the given id, 0 if there is none.
func (d *Demux[T]) ConsumerBackpressure(id int) int {
	d.mu.RLock()
	defer d.mu.RUnlock()
	if c := d.byID[id]; c != nil {
		return c.Backpressure()
	}
	return 0
}

// HasConsumer reports whether the consumer with the given id is registered
// and reads name.
func (d *Demux[T]) HasConsumer(name string, id int) bool {
	d.mu.RLock()
	defer d.mu.RUnlock()
	c := d.byID[id]
	return c != nil && c.name == name
}

// HasAnyConsumer reports whether a consumer with the given id is
// registered, whatever its stream.
func (d *Demux[T]) HasAnyConsumer(id int) bool {
	d.mu.RLock()
	defer d.mu.RUnlock()
	return d.byID[id] != nil
}

// Stats returns the stats of the registered consumers of name, sorted by
// ID. It returns nil if name has none.
func (d *Demux[T]) Stats(name string) []ConsumerStats {
	d.mu.RLock()
	defer d.mu.RUnlock()
	e := d.streams[name]
	if e == nil {
		return nil
	}
	out := make([]ConsumerStats, 0, len(e.consumers))
	for _, c := range e.consumers { // kept in id order
		out = append(out, c.stats())
	}
	return out
}

// StatsAll returns the stats of every registered consumer of d, sorted by
// ID. Each entry names its stream. It returns nil if there are none.
func (d *Demux[T]) StatsAll() []ConsumerStats {
	d.mu.RLock()
	defer d.mu.RUnlock()
	if len(d.byID) == 0 {
		return nil
	}
	out := make([]ConsumerStats, 0, len(d.byID))
	for _, c := range d.byID {
		out = append(out, c.stats())
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out
}

// Names returns, sorted, the names that have at least one registered
// consumer (including consumers draining after Close).
func (d *Demux[T]) Names() []string {
	d.mu.RLock()
	defer d.mu.RUnlock()
	if len(d.streams) == 0 {
		return nil
	}
	names := make([]string, 0, len(d.streams))
	for name := range d.streams {
		names = append(names, name)
	}
	sort.Strings(names)
	return names
}

// Once waits for the next item written to name and returns it. It uses a
// temporary consumer, registered before Once blocks and stopped before it
// returns. Only ctx bounds the wait: Once returns ctx.Err() when ctx is
// done. As in the reference (where once() never resolves if the stream
// ends), a Close or Kill of name while Once waits does not make it return
// early: it keeps waiting for ctx. Pass a ctx that is eventually done.
func (d *Demux[T]) Once(ctx context.Context, name string) (T, error) {
	c := d.NewConsumer(name, 0)
	defer c.Stop()
	v, err := c.Next(ctx)
	if errors.Is(err, ErrEnded) {
		<-ctx.Done()
		return v, ctx.Err()
	}
	return v, err
}

// Consumer reads one named stream of a Demux. It is created by
// Demux.NewConsumer; its methods are safe for concurrent use (several
// goroutines may call Next; each item goes to exactly one of them).
type Consumer[T any] struct {
	d       *Demux[T]
	id      int
	name    string
	timeout time.Duration

	wake chan struct{} // capacity 1: "the queue may have changed"
	done chan struct{} // closed when the consumer enters stateEnded

	mu    sync.Mutex
	buf   []T // queue is buf[head:]
	head  int
	state uint8
}

// ID returns the consumer's id, unique within its Demux (ids start at 1).
func (c *Consumer[T]) ID() int { return c.id }

// Name returns the name of the stream the consumer reads.
func (c *Consumer[T]) Name() string { return c.name }

// Backpressure returns the number of items queued for the consumer; 0 once
// it was killed or stopped.
func (c *Consumer[T]) Backpressure() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.buf) - c.head
}

// stats returns c's stats.
func (c *Consumer[T]) stats() ConsumerStats {
	return ConsumerStats{ID: c.id, Backpressure: c.Backpressure(), Stream: c.name, Timeout: c.timeout}
}

// Next returns the next item of the consumer's queue, waiting for one if
// the queue is empty. It returns ErrEnded once the consumer has ended
// (closed and drained, killed, or stopped), ctx.Err() if ctx is done
// (checked first, so a done ctx wins over a queued item), and ErrTimeout if
// the consumer has a timeout and it elapsed while waiting; after ctx or a
// timeout the consumer is still registered and usable.
func (c *Consumer[T]) Next(ctx context.Context) (T, error) {
	var zero T
	var timeout <-chan time.Time
	for {
		if err := ctx.Err(); err != nil {
			return zero, err
		}
		c.mu.Lock()
		if c.head < len(c.buf) {
			v := c.pop()
			more := c.head < len(c.buf)
			finished := !more && c.state == stateClosing
			if finished {
				c.state = stateEnded
				close(c.done)
			}
			c.mu.Unlock()
			if more {
				c.signal() // pass the wake-up on to any other waiter
			}
			if finished {
				c.d.unregister(c)
			}
			return v, nil
		}
		ended := c.state != stateOpen
		c.mu.Unlock()
		if ended {
			return zero, ErrEnded
		}
		if timeout == nil && c.timeout > 0 {
			t := time.NewTimer(c.timeout)
			defer t.Stop()
			timeout = t.C
		}
		select {
		case <-c.wake:
		case <-c.done:
		case <-ctx.Done():
			return zero, ctx.Err()
		case <-timeout:
			return zero, ErrTimeout
		}
	}
}

// All returns an iterator over the consumer's items for use with range.
// The loop ends when Next would return an error (ErrEnded, ctx done, or
// ErrTimeout). Whenever the loop ends, for any of these reasons or because
// the loop body broke out of it, the consumer is stopped; use Next directly
// to keep a consumer across timeouts or ctx cancellations.
func (c *Consumer[T]) All(ctx context.Context) iter.Seq[T] {
	return func(yield func(T) bool) {
		defer c.Stop()
		for {
			v, err := c.Next(ctx)
			if err != nil || !yield(v) {
				return
			}
		}
	}
}

// Stop ends the consumer now: it is unregistered from its Demux, its queue
// is discarded and Next returns ErrEnded. Stop is idempotent.
func (c *Consumer[T]) Stop() {
	c.end()
	c.d.unregister(c)
}

// push appends v to c's queue unless c no longer takes writes. It never
// blocks on anything but c.mu.
func (c *Consumer[T]) push(v T) {
	c.mu.Lock()
	if c.state != stateOpen {
		c.mu.Unlock()
		return
	}
	if len(c.buf) == cap(c.buf) && c.head > 0 && c.head >= len(c.buf)/2 {
		// Full but at least half consumed: slide down instead of growing.
		n := copy(c.buf, c.buf[c.head:])
		clear(c.buf[n:])
		c.buf = c.buf[:n]
		c.head = 0
	}
	c.buf = append(c.buf, v)
	c.mu.Unlock()
	c.signal()
}

// pop removes and returns the head of the non-empty queue, releasing
// memory the queue no longer needs; c.mu must be held.
func (c *Consumer[T]) pop() T {
	var zero T
	v := c.buf[c.head]
	c.buf[c.head] = zero
	c.head++
	live := len(c.buf) - c.head
	switch {
	case live == 0:
		if cap(c.buf) > idleCap {
			c.buf = nil
		} else {
			c.buf = c.buf[:0]
		}
		c.head = 0
	case cap(c.buf) > shrinkCap && live <= cap(c.buf)/4:
		nb := make([]T, live, 2*live)
		copy(nb, c.buf[c.head:])
		c.buf = nb
		c.head = 0
	}
	return v
}

// signal records a wake-up without blocking.
func (c *Consumer[T]) signal() {
	select {
	case c.wake <- struct{}{}:
	default:
	}
}

// close marks c closed as Demux.Close does and reports whether it is still
// draining a backlog (and must stay registered).
func (c *Consumer[T]) close() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	switch c.state {
	case stateOpen:
		if c.head < len(c.buf) {
			c.state = stateClosing
			return true
		}
		c.state = stateEnded
		c.buf, c.head = nil, 0
		close(c.done)
		return false
	case stateClosing:
		return true
	default:
		return false
	}
}

// end ends c at once and discards its queue; it does not unregister it.
func (c *Consumer[T]) end() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.buf, c.head = nil, 0
	if c.state != stateEnded {
		c.state = stateEnded
		close(c.done)
	}
}
