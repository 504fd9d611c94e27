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
)

// Item is one message received from the bus and not yet delivered.
type Item struct {
	Channel string
	Payload []byte
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
	done := ctx.Done()
	for {
		select {
		case <-done:
			return
		case it := <-q.c:
			if wanted(it.Channel) && ctx.Err() == nil {
				deliver(it.Channel, it.Payload)
			}
			q.bytes.Add(-it.size())
		}
	}
}

// OverflowError is the error a broker reports through Handler.Status when
// messages were dropped: errOverflow (the broker's ErrOverflow) wrapped,
// with the number dropped so far.
func OverflowError(errOverflow error, dropped uint64) error {
	return fmt.Errorf("%w (%d so far): Handler.Deliver is too slow for the traffic", errOverflow, dropped)
}
