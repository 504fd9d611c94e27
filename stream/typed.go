package stream

import (
	"context"
	"iter"
	"time"
)

// Stream is a typed view of one named stream of a Demux[any] whose items
// written under that name are all of type T. socketcluster.Stream and
// client.Stream are aliases of it: a listener, receiver, procedure or
// channel of a server, socket or client is a Stream. It is a small value:
// copy it freely.
type Stream[T any] struct {
	d    *Demux[any]
	name string
}

// NewStream returns the view of the stream name of d; every item written
// to name must be a T.
func NewStream[T any](d *Demux[any], name string) Stream[T] {
	return Stream[T]{d: d, name: name}
}

// Retype returns the view of the same stream with items of type U (for a
// stream of an interface type whose items are all of one concrete type U).
func Retype[U, T any](s Stream[T]) Stream[U] { return Stream[U](s) }

// Name returns the stream's name.
func (s Stream[T]) Name() string { return s.name }

// Consumer registers a consumer now. Stop it when done, unless it is read
// until it ends.
func (s Stream[T]) Consumer() *TypedConsumer[T] {
	return &TypedConsumer[T]{c: s.d.NewConsumer(s.name, 0)}
}

// ConsumerWithTimeout registers a consumer whose Next fails with
// ErrTimeout when no item comes within timeout.
func (s Stream[T]) ConsumerWithTimeout(timeout time.Duration) *TypedConsumer[T] {
	return &TypedConsumer[T]{c: s.d.NewConsumer(s.name, timeout)}
}

// All returns an iterator over the stream's items. The consumer is
// registered when the loop starts; the loop ends when the stream is closed
// (after the backlog) or killed, or ctx is done; breaking out of it removes
// the consumer.
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
func (s Stream[T]) ConsumerStats() []ConsumerStats { return s.d.Stats(s.name) }

// HasConsumer reports whether consumer id reads this stream.
func (s Stream[T]) HasConsumer(id int) bool { return s.d.HasConsumer(s.name, id) }

// TypedConsumer reads one Stream: a Consumer[any] whose items are T. It is
// the Consumer of the public packages (socketcluster.Consumer and
// client.Consumer are aliases of it).
type TypedConsumer[T any] struct{ c *Consumer[any] }

// ID is the consumer's id, unique within its group of streams.
func (c *TypedConsumer[T]) ID() int { return c.c.ID() }

// Backpressure is the number of items waiting for this consumer.
func (c *TypedConsumer[T]) Backpressure() int { return c.c.Backpressure() }

// Next waits for the next item. It returns ErrEnded once the stream was
// closed (and the backlog taken) or killed, or the consumer stopped;
// ctx.Err() when ctx is done; ErrTimeout when the consumer's timeout
// elapsed.
func (c *TypedConsumer[T]) Next(ctx context.Context) (T, error) {
	v, err := c.c.Next(ctx)
	if err != nil {
		var zero T
		return zero, err
	}
	return v.(T), nil
}

// All iterates until the consumer ends or ctx is done; whenever the loop
// ends, the body breaking out included, the consumer is stopped.
func (c *TypedConsumer[T]) All(ctx context.Context) iter.Seq[T] {
	return func(yield func(T) bool) {
		for v := range c.c.All(ctx) {
			if !yield(v.(T)) {
				return
			}
		}
	}
}

// Stop removes the consumer and drops its backlog.
func (c *TypedConsumer[T]) Stop() { c.c.Stop() }
