package client

import (
	"github.com/socketcluster-go/socketcluster/protocol"
	"github.com/socketcluster-go/socketcluster/stream"
)

// Stream is a named stream of items of type T: the client's listeners
// (events), receivers (transmits from the server), procedures (invokes
// from the server) and channels (published data). It is the server's
// socketcluster.Stream, the same type, and behaves the same: every consumer
// that exists when an item is written gets it, in order, at its own pace;
// items written while a stream has no consumer are dropped.
//
// Range over All, or create a Consumer first when it must exist before
// something happens. It is stream.Stream, documented in package stream.
type Stream[T any] = stream.Stream[T]

// Consumer reads one stream; Next returns stream.ErrEnded once the stream
// was closed (and the backlog taken) or killed, or the consumer stopped. It
// is stream.TypedConsumer, the server's socketcluster.Consumer.
type Consumer[T any] = stream.TypedConsumer[T]

// Listener returns the stream of the named client event ("connect",
// "disconnect", "close", "error", "kickOut", "authenticate"…; each event
// type's EventName). Use Listen for a typed stream.
func (c *Client) Listener(name string) Stream[Event] {
	return stream.NewStream[Event](c.listeners, name)
}

// Receiver returns the stream of the data the server transmits to name
// (socket.Transmit(name, data) on the server).
func (c *Client) Receiver(name string) Stream[protocol.Data] {
	return stream.NewStream[protocol.Data](c.receivers, name)
}

// Procedure returns the stream of the server's invokes of name
// (socket.Invoke(ctx, name, data) on the server). Answer each Request
// once with End or Error; an invoke nobody consumes is never answered and
// the server times out.
func (c *Client) Procedure(name string) Stream[*Request] {
	return stream.NewStream[*Request](c.procedures, name)
}

// Listen returns a typed stream of one event type of a client:
//
//	for ev := range client.Listen[client.KickOutEvent](c).All(ctx) { … }
func Listen[E Event](c *Client) Stream[E] {
	var zero E
	return stream.NewStream[E](c.listeners, zero.EventName())
}

func (c *Client) emit(e Event) { c.listeners.Write(e.EventName(), e) }
