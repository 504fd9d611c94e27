package socketcluster

import (
	"context"
	"errors"
	"iter"
	"sync"

	"github.com/socketcluster-go/socketcluster/stream"
)

// ChannelState is the state of a server-side channel subscription.
type ChannelState string

// Channel states.
const (
	ChannelPending      ChannelState = "pending"
	ChannelSubscribed   ChannelState = "subscribed"
	ChannelUnsubscribed ChannelState = "unsubscribed"
)

// Exchange is the server's own pub/sub client (AGExchange): it publishes
// without the PUBLISH_IN middleware or the client-publish check, and
// subscribes the server itself to channels, as a stream of their data.
// Its listeners emit SubscribeEvent and UnsubscribeEvent.
type Exchange struct {
	Listeners
	srv   *Server
	data  *stream.Demux[any] // channel name → published data
	chEvs *stream.Demux[any] // channel-level events, keyed event\x00channel

	mu    sync.Mutex
	state map[string]ChannelState
}

func newExchange(srv *Server) *Exchange {
	return &Exchange{
		srv:   srv,
		data:  stream.NewDemux[any](),
		chEvs: stream.NewDemux[any](),
		state: make(map[string]ChannelState),
	}
}

// TransmitPublish publishes data to channel. Publish-out middleware still
// applies per receiving socket. It does not wait for the broker: a
// publish the broker does not confirm is emitted as a warning (a
// *ClusterPublishError).
func (e *Exchange) TransmitPublish(channel string, data any) error {
	raw, err := encodeValue(data)
	if err != nil {
		return err
	}
	e.srv.hub.publish(channel, raw, nil) // broker failures: warnings
	return nil
}

// InvokePublish publishes data to channel and returns once the broker has
// taken the message. Local subscribers have it queued before the broker is
// called; when the broker fails, does not answer within
// Options.BrokerTimeout or ctx is done first, the error is a
// *ClusterPublishError (errors.Is(err, ErrClusterPublish)): delivered
// here, not known to have reached the other instances.
func (e *Exchange) InvokePublish(ctx context.Context, channel string, data any) error {
	raw, err := encodeValue(data)
	if err != nil {
		return err
	}
	err = e.srv.hub.publishWait(ctx, channel, raw)
	if err != nil && !errors.Is(err, ErrClusterPublish) {
		return NewError("BrokerError", "Failed to publish to the "+channel+" channel - "+err.Error())
	}
	return err
}

// Publish is the SocketCluster 14 form of InvokePublish.
func (e *Exchange) Publish(ctx context.Context, channel string, data any) error {
	return e.InvokePublish(ctx, channel, data)
}

// Subscribe subscribes the server to channel and returns it; iterate it
// (Channel.All) to consume the published data.
func (e *Exchange) Subscribe(ctx context.Context, channel string) (*Channel, error) {
	e.mu.Lock()
	if e.state[channel] == ChannelSubscribed {
		e.mu.Unlock()
		return e.Channel(channel), nil
	}
	e.state[channel] = ChannelPending
	e.mu.Unlock()
	if err := e.srv.hub.addWait(nil, channel); err != nil {
		e.mu.Lock()
		delete(e.state, channel)
		e.mu.Unlock()
		e.chEvs.Write(channelEventKey("subscribeFail", channel), ChannelSubscribeFailEvent{Channel: channel, Error: err})
		e.emit(ChannelSubscribeFailEvent{Channel: channel, Error: err})
		return nil, err
	}
	e.mu.Lock()
	e.state[channel] = ChannelSubscribed
	e.mu.Unlock()
	e.chEvs.Write(channelEventKey("subscribe", channel), SubscribeEvent{Channel: channel})
	e.emit(SubscribeEvent{Channel: channel})
	return e.Channel(channel), nil
}

// Unsubscribe unsubscribes the server from channel. The channel's
// consumers keep running; close or kill them to end them.
func (e *Exchange) Unsubscribe(channel string) {
	e.mu.Lock()
	_, ok := e.state[channel]
	delete(e.state, channel)
	e.mu.Unlock()
	if !ok {
		return
	}
	e.srv.hub.remove(nil, channel)
	e.chEvs.Write(channelEventKey("unsubscribe", channel), UnsubscribeEvent{Channel: channel})
	e.emit(UnsubscribeEvent{Channel: channel})
}

// Channel returns channel without subscribing to it.
func (e *Exchange) Channel(name string) *Channel { return &Channel{name: name, e: e} }

// Subscriptions lists the server's subscribed channels (and pending ones
// with includePending).
func (e *Exchange) Subscriptions(includePending bool) []string {
	e.mu.Lock()
	defer e.mu.Unlock()
	out := make([]string, 0, len(e.state))
	for ch, st := range e.state {
		if st == ChannelSubscribed || includePending {
			out = append(out, ch)
		}
	}
	return out
}

// IsSubscribed reports whether the server is subscribed to channel.
func (e *Exchange) IsSubscribed(channel string, includePending bool) bool {
	e.mu.Lock()
	defer e.mu.Unlock()
	st, ok := e.state[channel]
	return ok && (st == ChannelSubscribed || includePending)
}

// ChannelState returns the state of the server's subscription to channel.
func (e *Exchange) ChannelState(channel string) ChannelState {
	e.mu.Lock()
	defer e.mu.Unlock()
	if st, ok := e.state[channel]; ok {
		return st
	}
	return ChannelUnsubscribed
}

func (e *Exchange) deliver(channel string, data Data) {
	e.data.Write(channel, data)
}

// ChannelSubscribeFailEvent: a server-side subscription failed.
type ChannelSubscribeFailEvent struct {
	Channel string
	Error   error
}

// EventName implements Event.
func (ChannelSubscribeFailEvent) EventName() string { return "subscribeFail" }

// Channel is one channel as seen from the server (AGChannel): a stream of
// the data published to it, plus its own subscribe/unsubscribe events.
type Channel struct {
	name string
	e    *Exchange
}

// Name returns the channel name.
func (c *Channel) Name() string { return c.name }

// State returns the server's subscription state for the channel.
func (c *Channel) State() ChannelState { return c.e.ChannelState(c.name) }

// IsSubscribed reports whether the server is subscribed.
func (c *Channel) IsSubscribed(includePending bool) bool {
	return c.e.IsSubscribed(c.name, includePending)
}

// Subscribe subscribes the server to the channel.
func (c *Channel) Subscribe(ctx context.Context) error {
	_, err := c.e.Subscribe(ctx, c.name)
	return err
}

// Unsubscribe unsubscribes the server from the channel.
func (c *Channel) Unsubscribe() { c.e.Unsubscribe(c.name) }

// Publish publishes data to the channel (InvokePublish).
func (c *Channel) Publish(ctx context.Context, data any) error {
	return c.e.InvokePublish(ctx, c.name, data)
}

// TransmitPublish publishes data to the channel without waiting.
func (c *Channel) TransmitPublish(data any) error { return c.e.TransmitPublish(c.name, data) }

func (c *Channel) stream() Stream[Data] { return stream.NewStream[Data](c.e.data, c.name) }

// All iterates the channel's data until it is closed or killed, or ctx is
// done.
func (c *Channel) All(ctx context.Context) iter.Seq[Data] { return c.stream().All(ctx) }

// Consumer registers a data consumer now.
func (c *Channel) Consumer() *Consumer[Data] { return c.stream().Consumer() }

// Once waits for the next published data.
func (c *Channel) Once(ctx context.Context) (Data, error) { return c.stream().Once(ctx) }

// Close ends the data consumers after their backlog (closeOutput).
func (c *Channel) Close() { c.e.data.Close(c.name) }

// Kill ends the data consumers now (killOutput).
func (c *Channel) Kill() { c.e.data.Kill(c.name) }

// Backpressure is the largest backlog of the channel's data consumers.
func (c *Channel) Backpressure() int { return c.e.data.Backpressure(c.name) }

// ConsumerStats lists the channel's data consumers.
func (c *Channel) ConsumerStats() []stream.ConsumerStats { return c.e.data.Stats(c.name) }

// KillConsumer kills one data consumer.
func (c *Channel) KillConsumer(id int) { c.e.data.KillConsumer(id) }

// Listener returns the channel's events: "subscribe", "unsubscribe",
// "subscribeFail".
func (c *Channel) Listener(event string) Stream[Event] {
	return stream.NewStream[Event](c.e.chEvs, channelEventKey(event, c.name))
}

// CloseListener closes one of the channel's event listeners.
func (c *Channel) CloseListener(event string) { c.e.chEvs.Close(channelEventKey(event, c.name)) }

// KillListener kills one of the channel's event listeners.
func (c *Channel) KillListener(event string) { c.e.chEvs.Kill(channelEventKey(event, c.name)) }
