// Package dqueue is the bounded delivery queue of the network brokers
// (redisbroker, natsbroker). It decouples the goroutine that reads the bus,
// which must never stall (Redis closes a pub/sub connection whose output
// buffer fills up, a NATS server drops a slow consumer), from the one
// goroutine that calls broker.Handler.Deliver, in the order messages were
// received.
//
// The queue is bounded both in messages and in bytes. Push never blocks:
// when the queue is full the new message is dropped (drop-newest, which
// keeps the order of what is delivered) and counted.
package dqueue

import (
	"context"
	"fmt"
	"sync/atomic"

	"github.com/socketcluster-go/socketcluster/broker"
)

// Item is one message received from the bus and not yet delivered.
type Item struct {
	Channel string
	Payload []byte
	// Kind tells what the item is, for brokers with history: a plain
	// message (0) or a broker-defined marker or history publication. Pos
	// is the history position the item carries, if any.
	Kind uint8
	Pos  broker.Position
}

func (it Item) size() int64 { return int64(len(it.Channel) + len(it.Payload)) }

// Queue is a bounded FIFO of Items with one producer side (Push, never
// blocking) and one consumer (Run). Create it with New.
type Queue struct {
	c        chan Item
	bytes    atomic.Int64
	maxBytes int64
	dropped  atomic.Uint64
}

// New returns a queue holding at most size messages and maxBytes bytes of
// channel names and payloads.
func New(size int, maxBytes int64) *Queue {
	return &Queue{c: make(chan Item, size), maxBytes: maxBytes}
}

// Push enqueues it, or drops it, counts the drop and returns false when the
// queue is full. A message larger than the byte limit is accepted when the
// queue is empty.
func (q *Queue) Push(it Item) bool {
	n := it.size()
	if total := q.bytes.Add(n); total > q.maxBytes && total != n {
		q.bytes.Add(-n)
		q.dropped.Add(1)
		return false
	}
	select {
	case q.c <- it:
		return true
	default:
		q.bytes.Add(-n)
		q.dropped.Add(1)
		return false
	}
}

// Len is the number of messages waiting for delivery.
func (q *Queue) Len() int { return len(q.c) }

// Dropped is the number of messages Push dropped so far.
func (q *Queue) Dropped() uint64 { return q.dropped.Load() }

// Low reports whether the queue has drained to half its limits.
func (q *Queue) Low() bool {
	return len(q.c) <= cap(q.c)/2 && q.bytes.Load() <= q.maxBytes/2
}

// Run is the delivery loop: it takes the messages in order and calls
// deliver for those whose channel is still wanted (a message may arrive
// for a channel unsubscribed a moment ago; the hub does not need it), until
// ctx is done. Nothing is delivered once ctx is done. Run must have one
// caller at a time.
func (q *Queue) Run(ctx context.Context, wanted func(channel string) bool, deliver func(channel string, payload []byte)) {
	q.RunItems(ctx, func(it Item) {
		if wanted(it.Channel) {
			deliver(it.Channel, it.Payload)
		}
	})
}

// RunItems is Run for brokers with history: every item is handed to
// handle, which does its own filtering, until ctx is done.
func (q *Queue) RunItems(ctx context.Context, handle func(Item)) {
	done := ctx.Done()
	for {
		select {
		case <-done:
			return
		case it := <-q.c:
			if ctx.Err() == nil {
				handle(it)
			}
			q.bytes.Add(-it.size())
		}
	}
}

// PushMarker enqueues a marker item (no payload) even when the queue is
// over its byte limit; it blocks while the queue is full of messages, or
// until ctx ends (then it returns false).
func (q *Queue) PushMarker(ctx context.Context, it Item) bool {
	q.bytes.Add(it.size())
	select {
	case q.c <- it:
		return true
	case <-ctx.Done():
		q.bytes.Add(-it.size())
		return false
	}
}

// OverflowError is the error a broker reports through Handler.Status when
// messages were dropped: errOverflow (the broker's ErrOverflow) wrapped,
// with the number dropped so far.
func OverflowError(errOverflow error, dropped uint64) error {
	return fmt.Errorf("%w (%d so far): Handler.Deliver is too slow for the traffic", errOverflow, dropped)
}
