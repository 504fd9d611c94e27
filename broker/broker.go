// Package broker defines the seam between a server's local hub (channel →
// local subscribers) and the bus that carries publishes between server
// instances, plus the in-process implementation used by default.
//
// The contract, shared by every implementation (memory, Redis, NATS):
//
//   - The hub calls Subscribe when a channel gets its first local subscriber
//     and Unsubscribe when it loses its last one. Both take batches.
//   - The hub delivers a publish to its own local subscribers itself, then
//     calls Publish with an opaque payload (an envelope that names the
//     publishing instance). The broker carries the payload unchanged to every
//     instance subscribed to the channel, the publishing instance included if
//     it is subscribed; the hub drops envelopes that carry its own instance
//     id. So each subscriber gets each message exactly once, whichever
//     instance it was published on, and local clients keep being served while
//     the bus is down.
//   - Messages published by one instance on one channel are delivered to
//     Handler.Deliver in publish order (per-channel order across the hop).
//   - After a (re)connection the broker asks Handler.Channels for everything
//     the instance needs and subscribes it again, and reports its health
//     through Handler.Status.
//   - Delivery is at most once: what is published while the bus is down, or
//     while an instance is disconnected from it, is lost for the remote
//     instances (as in SocketCluster's own cluster). Channels with history
//     (brokers implementing History, history.go) are the exception: their
//     publications are stored, and delivered exactly once and in order.
//   - The hub calls Publish (or BatchPublisher.PublishBatch) from one
//     goroutine at a time, in publish order, with a context whose deadline
//     is the server's Options.BrokerTimeout; a call that outlives it makes
//     the publisher's answer a ClusterPublishError (delivered locally, not
//     confirmed for the cluster). A broker should return when ctx is done.
//     An InProcess broker is instead called directly by each publisher.
package broker

import "context"

// Handler is implemented by the hub; a Broker calls it.
type Handler interface {
	// Deliver is called for every message received from the bus, in the
	// order received, from one goroutine per broker connection. It must
	// return quickly (the hub only queues the message). The payload is
	// read-only for both sides and the hub may keep it: a broker must not
	// modify or reuse it after Deliver, and may hand the same slice to
	// several handlers.
	Deliver(channel string, payload []byte)
	// Channels returns every channel the instance needs right now. The
	// broker calls it after each (re)connection and subscribes them all.
	Channels() []string
	// Status reports the health of the bus: a non-nil error when the
	// connection is lost or an operation failed in the background, nil when
	// it is (again) connected and resubscribed.
	Status(err error)
}

// Broker carries publishes between server instances.
//
// All methods are safe for concurrent use. Subscribe, Unsubscribe and
// Publish may be called before Start returns only by the hub's own
// Channels callback logic; the hub calls Start first.
type Broker interface {
	// Start connects to the bus and begins delivering to h. An error names
	// the broker URL and what failed. Start is called once.
	Start(ctx context.Context, h Handler) error
	// Subscribe subscribes the instance to the channels (a batch). It
	// returns once the bus has confirmed, so that a publish made after it
	// returns reaches this instance.
	Subscribe(ctx context.Context, channels []string) error
	// Unsubscribe removes the instance from the channels (a batch).
	Unsubscribe(ctx context.Context, channels []string) error
	// Publish sends payload to every instance subscribed to channel. It
	// returns once the bus has accepted the message.
	Publish(ctx context.Context, channel string, payload []byte) error
	// Close disconnects and releases every resource; Deliver is not called
	// after Close returns.
	Close() error
}

// Message is one publish of a batch.
type Message struct {
	Channel string
	Payload []byte
}

// BatchPublisher is implemented by brokers that can send several publishes
// in one round trip (pipelining). The hub hands its queued publishes to
// PublishBatch in order instead of calling Publish once per message.
type BatchPublisher interface {
	// PublishBatch publishes msgs in order, with the semantics of one
	// Publish per message, and returns nil when the bus accepted them all,
	// else one error (nil for a message accepted) per message. The
	// payloads follow the same rules as Publish's.
	PublishBatch(ctx context.Context, msgs []Message) []error
}

// InProcess is implemented by brokers whose Publish never waits for the
// network or another process and never blocks (Memory). The hub then
// calls Publish directly from the publisher's goroutine, without a
// deadline, instead of handing it to its outbox goroutine: there is no
// round trip to keep the publisher from, and no hop to pay for.
type InProcess interface {
	// InProcess reports whether Publish is in-process (true for Memory).
	InProcess() bool
}
