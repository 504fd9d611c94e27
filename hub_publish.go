package socketcluster

import (
	"context"
	"errors"
	"sync"
	"time"

	"github.com/socketcluster-go/socketcluster/broker"
)

// The publish path.
//
// A publish is delivered to this instance's subscribers at once, in the
// publisher's goroutine, and never waits for the broker. It is then queued
// on the hub's outbox: one bounded FIFO from which a single goroutine at a
// time hands publishes to the broker, in order, one at a time or in
// batches (broker.BatchPublisher); an in-process broker (broker.InProcess,
// the default Memory) is called by each publisher directly, as it never
// waits. So the broker sees each publisher's
// messages in the order they were published, and a hung broker holds up
// only the outbox, never local delivery nor the publisher's socket: the
// publisher learns the outcome through a callback.
//
// Every queued publish has a deadline, Options.BrokerTimeout after it was
// queued. The broker call gets a context with that deadline, and a timer
// fails whatever has passed its deadline even while a broker call that
// ignores its context is still blocked; such a publish is then not sent
// when the outbox moves on. A full outbox (Options.BrokerQueueLimit) fails
// new publishes at once. Either way the publisher gets a
// *ClusterPublishError: its local subscribers have the message, the
// cluster may not.

// ErrClusterPublish is matched (errors.Is) by every *ClusterPublishError.
var ErrClusterPublish = errors.New("socketcluster: published on this instance only; the broker did not confirm it for the cluster")

// ErrBrokerQueueFull is the cause of a ClusterPublishError when the
// outbox already held Options.BrokerQueueLimit publishes.
var ErrBrokerQueueFull = errors.New("socketcluster: broker publish queue full")

// ClusterPublishError reports a publish that was delivered to the
// subscribers of this instance but that the broker did not confirm for the
// other instances: it failed, timed out (Options.BrokerTimeout), or the
// broker queue was full. Remote instances may or may not get it (a timed
// out call may still complete), so publishing again can deliver twice
// here and there; it is the error to treat as "partly done", unlike a
// failure before delivery. Clients receive it as an error named
// "ClusterPublishError".
type ClusterPublishError struct {
	Channel string
	// Err is the cause: the broker's error, context.DeadlineExceeded, or
	// ErrBrokerQueueFull.
	Err error
}

func (e *ClusterPublishError) Error() string { return e.toError().Error() }

// Unwrap returns the cause.
func (e *ClusterPublishError) Unwrap() error { return e.Err }

// Is makes errors.Is(err, ErrClusterPublish) true.
func (e *ClusterPublishError) Is(target error) bool {
	if target == ErrClusterPublish {
		return true
	}
	t, ok := target.(*Error)
	return ok && t.Name == "ClusterPublishError" && t.Message == ""
}

// MarshalJSON writes the wire form, {"message":…,"name":"ClusterPublishError"}.
func (e *ClusterPublishError) MarshalJSON() ([]byte, error) { return appendError(nil, e.toError()) }

func (e *ClusterPublishError) toError() *Error {
	cause := "unknown"
	switch {
	case e.Err == nil:
	case errors.Is(e.Err, context.DeadlineExceeded):
		cause = "the broker did not answer in time"
	default:
		cause = e.Err.Error()
	}
	return NewError("ClusterPublishError", "Published to the "+e.Channel+
		" channel on this instance only: its subscribers here received it, but the broker did not confirm it for other instances - "+cause)
}

// Defaults of the outbox.
const (
	defaultBrokerTimeout    = 5 * time.Second
	defaultBrokerQueueLimit = 10000
	maxPublishBatch         = 256
)

// outItem is one publish waiting for the broker.
type outItem struct {
	msg      broker.Message // payload is the envelope
	deadline time.Time
	done     func(error)
	finished bool // guarded by outbox.mu: done has been (or is being) called
}

// outbox is the hub's ordered queue of broker publishes.
type outbox struct {
	b       broker.Broker
	batch   broker.BatchPublisher // nil when b cannot pipeline
	direct  bool                  // b is in-process: publishers call it themselves
	timeout time.Duration
	limit   int
	failed  func(n int) // counts failures (outside the lock)

	mu       sync.Mutex
	queue    []*outItem // FIFO; queue[0] is next
	inflight []*outItem // handed to the broker, not finished by it yet
	running  bool       // a run goroutine exists
	timer    *time.Timer
	timerSet bool
}

func newOutbox(b broker.Broker, timeout time.Duration, limit int, failed func(int)) *outbox {
	o := &outbox{b: b, timeout: timeout, limit: limit, failed: failed}
	o.batch, _ = b.(broker.BatchPublisher)
	if ip, ok := b.(broker.InProcess); ok && ip.InProcess() {
		o.direct = true
	}
	return o
}

// push queues a publish; done (not nil) is called exactly once, from
// another goroutine, or from push itself when the queue is full or the
// broker is in-process.
func (o *outbox) push(channel string, payload []byte, done func(error)) {
	if o.direct {
		// Nothing to wait for: each publisher calls the broker itself,
		// in its own order (broker.InProcess).
		if err := o.b.Publish(context.Background(), channel, payload); err != nil {
			o.failed(1)
			done(&ClusterPublishError{Channel: channel, Err: err})
			return
		}
		done(nil)
		return
	}
	it := &outItem{msg: broker.Message{Channel: channel, Payload: payload}, deadline: time.Now().Add(o.timeout), done: done}
	o.mu.Lock()
	if len(o.queue) >= o.limit {
		o.mu.Unlock()
		o.finish(it, ErrBrokerQueueFull)
		return
	}
	o.queue = append(o.queue, it)
	o.armLocked(it.deadline)
	if !o.running {
		o.running = true
		go o.run()
	}
	o.mu.Unlock()
}

// armLocked makes sure the timer fires by at (deadlines are queued in
// increasing order, so an armed timer already fires earlier).
func (o *outbox) armLocked(at time.Time) {
	if o.timerSet {
		return
	}
	o.timerSet = true
	d := time.Until(at)
	if o.timer == nil {
		o.timer = time.AfterFunc(d, o.expire)
	} else {
		o.timer.Reset(d)
	}
}

// expire fails every publish past its deadline, queued or in flight.
func (o *outbox) expire() {
	now := time.Now()
	var late []*outItem
	o.mu.Lock()
	o.timerSet = false
	for _, it := range o.inflight {
		if !it.finished && !it.deadline.After(now) {
			it.finished = true
			late = append(late, it)
		}
	}
	n := 0
	for n < len(o.queue) && !o.queue[n].deadline.After(now) {
		o.queue[n].finished = true
		late = append(late, o.queue[n])
		o.queue[n] = nil
		n++
	}
	o.queue = o.queue[n:]
	if next, ok := o.nextDeadlineLocked(); ok {
		o.armLocked(next)
	}
	o.mu.Unlock()
	for _, it := range late {
		o.finish(it, context.DeadlineExceeded)
	}
}

func (o *outbox) nextDeadlineLocked() (time.Time, bool) {
	for _, it := range o.inflight {
		if !it.finished {
			return it.deadline, true
		}
	}
	if len(o.queue) > 0 {
		return o.queue[0].deadline, true
	}
	return time.Time{}, false
}

// finish calls it.done with nil (err nil: success) or a
// ClusterPublishError made from err.
func (o *outbox) finish(it *outItem, err error) {
	if err == nil {
		it.done(nil)
		return
	}
	o.failed(1)
	it.done(&ClusterPublishError{Channel: it.msg.Channel, Err: err})
}

// run hands the queue to the broker in order until it is empty.
func (o *outbox) run() {
	most := 1
	if o.batch != nil {
		most = maxPublishBatch
	}
	msgs := make([]broker.Message, 0, most)
	for {
		o.mu.Lock()
		if len(o.queue) == 0 {
			o.running = false
			o.mu.Unlock()
			return
		}
		n := min(len(o.queue), most)
		o.inflight = append(o.inflight[:0], o.queue[:n]...)
		clear(o.queue[:n])
		o.queue = o.queue[n:]
		if len(o.queue) == 0 {
			o.queue = nil // let the backing array go
		}
		deadline := o.inflight[0].deadline
		o.mu.Unlock()

		msgs = msgs[:0]
		for _, it := range o.inflight {
			msgs = append(msgs, it.msg)
		}
		ctx, cancel := context.WithDeadline(context.Background(), deadline)
		var errs []error
		if o.batch != nil {
			errs = o.batch.PublishBatch(ctx, msgs)
		} else if err := o.b.Publish(ctx, msgs[0].Channel, msgs[0].Payload); err != nil {
			errs = []error{err}
		}
		cancel()
		clear(msgs)

		o.mu.Lock()
		items := o.inflight
		o.inflight = nil
		var results []outResult
		for i, it := range items {
			if it.finished {
				continue // the timer already failed it
			}
			it.finished = true
			r := outResult{it: it}
			if i < len(errs) {
				r.err = errs[i]
			}
			results = append(results, r)
		}
		o.mu.Unlock()
		for _, r := range results {
			o.finish(r.it, r.err)
		}
	}
}

type outResult struct {
	it  *outItem
	err error
}

// publish delivers data to the local subscribers of channel at once, then
// queues it for the broker. done, when not nil, is called exactly once:
// with nil once the broker accepted the message, with a
// *ClusterPublishError when local subscribers got it but the broker did
// not confirm it, or with the encoding error when it was delivered to
// nobody. done may run before publish returns or later in another
// goroutine; it must not block. Publishes made one after the other (by one
// goroutine) reach the subscribers here and the broker in that order.
func (h *hub) publish(channel string, data []byte, done func(error)) {
	if h.hist != nil {
		if _, ok := h.historyOf(channel); ok {
			if done == nil {
				done = h.warnClusterPublish
			}
			h.publishHistory(channel, data, done) // hub_history.go
			return
		}
	}
	if err := h.deliverLocal(channel, data); err != nil {
		if done != nil {
			done(err)
		}
		return
	}
	if done == nil {
		done = h.warnClusterPublish
	}
	env := make([]byte, envelopeIDLen+len(data))
	copy(env, h.id[:])
	copy(env[envelopeIDLen:], data)
	h.out.push(channel, env, done)
}

// publishWait is publish for callers that wait for the outcome: it returns
// once the broker has confirmed the message or failed, or ctx is done
// (then with a *ClusterPublishError wrapping ctx's error; the message
// stays queued).
func (h *hub) publishWait(ctx context.Context, channel string, data []byte) error {
	res := make(chan error, 1)
	h.publish(channel, data, func(err error) { res <- err })
	select {
	case err := <-res:
		return err
	case <-ctx.Done():
		return &ClusterPublishError{Channel: channel, Err: ctx.Err()}
	}
}

func (h *hub) warnClusterPublish(err error) {
	if err != nil {
		h.srv.emitWarning(err)
	}
}
