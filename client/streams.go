package client

import (
	"context"
	"iter"
	"time"

	sc "github.com/socketcluster-go/socketcluster"
	"github.com/socketcluster-go/socketcluster/internal/stream"
)

// Stream is a named stream of items of type T: the client's listeners
// (events), receivers (transmits from the server), procedures (invokes
// from the server) and channels (published data). It behaves as the
// server's socketcluster.Stream: every consumer that exists when an item
// is written gets it, in order, at its own pace; items written while a
// stream has no consumer are dropped.
//
// Range over All, or create a Consumer first when it must exist before
// something happens.
type Stream[T any] struct {
	d    *stream.Demux[any]
	name string
}

// Name returns the stream's name.
func (s Stream[T]) Name() string { return s.name }

// Consumer registers a consumer now. Stop it when done, unless it is read
// until it ends.
func (s Stream[T]) Consumer() *Consumer[T] {
	return &Consumer[T]{c: s.d.NewConsumer(s.name, 0)}
}

// ConsumerWithTimeout registers a consumer whose Next fails with
// socketcluster.ErrStreamTimeout when no item comes within timeout.
func (s Stream[T]) ConsumerWithTimeout(timeout time.Duration) *Consumer[T] {
	return &Consumer[T]{c: s.d.NewConsumer(s.name, timeout)}
}

// All iterates over the stream's items. The consumer is registered when
// the loop starts; the loop ends when the stream is closed (after the
// backlog), when ctx is done, or when the body breaks out.
func (s Stream[T]) All(ctx context.Context) iter.Seq[T] {
	return func(yield func(T) bool) {
		s.Consumer().All(ctx)(yield)
	}
}

// Once waits for the next item (bounded by ctx only).
func (s Stream[T]) Once(ctx context.Context) (T, error) {
	v, err := s.d.Once(ctx, s.name)
	if err != nil {
		var zero T
		return zero, err
	}
	return v.(T), nil
}

// Close ends the stream's current consumers after their backlog.
func (s Stream[T]) Close() { s.d.Close(s.name) }

// Kill ends the stream's current consumers now, dropping their backlog.
func (s Stream[T]) Kill() { s.d.Kill(s.name) }

// Backpressure is the largest backlog among the stream's consumers.
func (s Stream[T]) Backpressure() int { return s.d.Backpressure(s.name) }

// ConsumerStats lists the stream's consumers.
func (s Stream[T]) ConsumerStats() []sc.ConsumerStats { return s.d.Stats(s.name) }

// Consumer reads one stream.
type Consumer[T any] struct{ c *stream.Consumer[any] }

// ID is the consumer's id.
func (c *Consumer[T]) ID() int { return c.c.ID() }

// Backpressure is the number of items waiting for this consumer.
func (c *Consumer[T]) Backpressure() int { return c.c.Backpressure() }

// Next waits for the next item. It returns socketcluster.ErrStreamEnded
// once the stream was closed (and the backlog taken) or killed, or the
// consumer stopped; ctx.Err() when ctx is done.
func (c *Consumer[T]) Next(ctx context.Context) (T, error) {
	v, err := c.c.Next(ctx)
	if err != nil {
		var zero T
		return zero, err
	}
	return v.(T), nil
}

// All iterates until the consumer ends or ctx is done; whenever the loop
// ends the consumer is stopped.
func (c *Consumer[T]) All(ctx context.Context) iter.Seq[T] {
	return func(yield func(T) bool) {
		for v := range c.c.All(ctx) {
			if !yield(v.(T)) {
				return
			}
		}
	}
}

// Stop removes the consumer and drops its backlog.
func (c *Consumer[T]) Stop() { c.c.Stop() }

// Listener returns the stream of the named client event ("connect",
// "disconnect", "close", "error", "kickOut", "authenticate"…; each event
// type's EventName). Use Listen for a typed stream.
func (c *Client) Listener(name string) Stream[Event] {
	return Stream[Event]{d: c.listeners, name: name}
}

// Receiver returns the stream of the data the server transmits to name
// (socket.Transmit(name, data) on the server).
func (c *Client) Receiver(name string) Stream[sc.Data] {
	return Stream[sc.Data]{d: c.receivers, name: name}
}

// Procedure returns the stream of the server's invokes of name
// (socket.Invoke(ctx, name, data) on the server). Answer each Request
// once with End or Error; an invoke nobody consumes is never answered and
// the server times out.
func (c *Client) Procedure(name string) Stream[*Request] {
	return Stream[*Request]{d: c.procedures, name: name}
}

// Listen returns a typed stream of one event type of a client:
//
//	for ev := range client.Listen[client.KickOutEvent](c).All(ctx) { … }
func Listen[E Event](c *Client) Stream[E] {
	var zero E
	return Stream[E]{d: c.listeners, name: zero.EventName()}
}

func (c *Client) emit(e Event) { c.listeners.Write(e.EventName(), e) }
