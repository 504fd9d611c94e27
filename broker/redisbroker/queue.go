package redisbroker

import "sync/atomic"

// item is one message received from Redis and not yet delivered.
type item struct {
	channel string
	payload []byte
}

// queue decouples reading the pub/sub connections (which must never stall,
// or Redis closes them when their output buffer fills up) from calling
// Handler.Deliver. It is bounded both in messages and in bytes. push never
// blocks: when the queue is full the new message is dropped (drop-newest,
// which keeps the order of what is delivered) and push reports false.
type queue struct {
	c        chan item
	bytes    atomic.Int64
	maxBytes int64
}

func newQueue(size int, maxBytes int64) *queue {
	return &queue{c: make(chan item, size), maxBytes: maxBytes}
}

func (it item) size() int64 { return int64(len(it.channel) + len(it.payload)) }

// push enqueues it, or drops it and returns false when the queue is full. A
// message larger than maxBytes is accepted when the queue is empty.
func (q *queue) push(it item) bool {
	n := it.size()
	if total := q.bytes.Add(n); total > q.maxBytes && total != n {
		q.bytes.Add(-n)
		return false
	}
	select {
	case q.c <- it:
		return true
	default:
		q.bytes.Add(-n)
		return false
	}
}

// done releases the bytes of an item taken from q.c once it is delivered.
func (q *queue) done(it item) { q.bytes.Add(-it.size()) }

// low reports whether the queue has drained to half its limits.
func (q *queue) low() bool {
	return len(q.c) <= cap(q.c)/2 && q.bytes.Load() <= q.maxBytes/2
}
