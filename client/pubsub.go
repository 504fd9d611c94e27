package client

import (
	"context"
	"errors"
	"iter"
	"slices"
	"sync/atomic"
	"time"

	"github.com/socketcluster-go/socketcluster/internal/wire"
	"github.com/socketcluster-go/socketcluster/protocol"
	"github.com/socketcluster-go/socketcluster/stream"
)

// ChannelState is the state of a channel subscription.
type ChannelState string

// Channel states.
const (
	// ChannelPending: the subscription is wanted but not (yet, or no
	// longer) acknowledged: before the server's answer, while
	// disconnected, or while waiting for authentication (WaitForAuth).
	ChannelPending ChannelState = "pending"
	// ChannelSubscribed: the server acknowledged the subscription.
	ChannelSubscribed ChannelState = "subscribed"
	// ChannelUnsubscribed: the subscription ended (Unsubscribe, kick-out,
	// refusal, Close).
	ChannelUnsubscribed ChannelState = "unsubscribed"
)

// ErrUnsubscribed is returned by Subscribe when the channel was
// unsubscribed or kicked out while the subscription was pending.
var ErrUnsubscribed = errors.New("client: channel unsubscribed")

// SubscribeOption is an option of Subscribe.
type SubscribeOption func(*subscribeOptions)

type subscribeOptions struct {
	waitForAuth bool
	data        any
	hasData     bool
	priority    int
	recover     bool      // history.go
	from        *Position // RecoverFrom
}

// WaitForAuth subscribes only while the client is authenticated: the
// #subscribe is held back until the client authenticates.
func WaitForAuth() SubscribeOption { return func(o *subscribeOptions) { o.waitForAuth = true } }

// WithData sends data along with the subscription (the server's SUBSCRIBE
// middleware sees it as the action's data).
func WithData(data any) SubscribeOption {
	return func(o *subscribeOptions) { o.data, o.hasData = data, true }
}

// WithPriority orders subscriptions sent together (after a reconnect):
// higher first. It is not sent to the server.
func WithPriority(p int) SubscribeOption { return func(o *subscribeOptions) { o.priority = p } }

// Channel is a subscription of the client. Its data stream (All,
// Consumer) carries what is published to the channel; it ends when the
// channel is unsubscribed, kicked out or the client closed. Across
// reconnects the channel stays and is subscribed again.
type Channel struct {
	c           *Client
	name        string
	waitForAuth bool
	data        []byte
	priority    int
	seq         uint64

	recover bool // resubscribe from pos (history.go)

	// Guarded by c.mu.
	pos     Position // last publication received (history channels)
	hasPos  bool
	state   ChannelState
	cid     uint64 // the #subscribe in flight, 0 if none
	err     error
	changed chan struct{} // closed and replaced on every state change
}

func (ch *Channel) setStateLocked(s ChannelState, err error) {
	ch.state, ch.err = s, err
	close(ch.changed)
	ch.changed = make(chan struct{})
	if s == ChannelUnsubscribed {
		ch.c.channelData.Close(ch.name)
	}
}

// Subscribe subscribes to channel and waits for the server's
// acknowledgement (bounded by ctx only: subscriptions have no ack
// timeout). Subscribing to a channel the client already has returns the
// same *Channel (its options unchanged). While reconnecting, the
// subscription is sent once connected.
//
// A refusal is returned as the server's error and the channel is dropped.
// If ctx ends first, the subscription this call made is abandoned
// (unsubscribed).
func (c *Client) Subscribe(ctx context.Context, channel string, opts ...SubscribeOption) (*Channel, error) {
	var o subscribeOptions
	for _, f := range opts {
		f(&o)
	}
	var raw []byte
	if o.hasData {
		var err error
		if raw, err = protocol.MarshalData(o.data); err != nil {
			return nil, err
		}
		if o.recover && (len(raw) < 2 || raw[0] != '{') {
			return nil, errRecoverData
		}
	}
	c.mu.Lock()
	if c.terminal || c.state == StateClosed {
		c.mu.Unlock()
		return nil, ErrClosed
	}
	ch := c.channels[channel]
	created := ch == nil
	if created {
		c.chanSeq++
		ch = &Channel{
			c: c, name: channel, waitForAuth: o.waitForAuth, data: raw, priority: o.priority,
			seq: c.chanSeq, state: ChannelPending, changed: make(chan struct{}),
			recover: o.recover,
		}
		if o.from != nil {
			ch.pos, ch.hasPos = *o.from, true
		}
		c.channels[channel] = ch
	}
	var cn *conn
	var frames [][]byte
	if c.state == StateOpen {
		cn = c.cn
		frames = c.claimSubscriptionsLocked(cn)
	}
	c.mu.Unlock()
	for _, f := range frames {
		if cn.write(f) != nil {
			break
		}
	}
	if err := ch.wait(ctx); err != nil {
		if created && ctx.Err() != nil {
			_ = ch.Unsubscribe()
		}
		return nil, err
	}
	return ch, nil
}

// wait waits until the channel is subscribed (nil) or unsubscribed.
func (ch *Channel) wait(ctx context.Context) error {
	for {
		ch.c.mu.Lock()
		s, err, changed := ch.state, ch.err, ch.changed
		ch.c.mu.Unlock()
		switch s {
		case ChannelSubscribed:
			return nil
		case ChannelUnsubscribed:
			if err == nil {
				err = ErrUnsubscribed
			}
			return err
		}
		select {
		case <-changed:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// claimSubscriptionsLocked registers a #subscribe for every pending
// channel that has none in flight (WaitForAuth channels only when
// authenticated), highest priority first, and returns the frames to send
// on cn.
func (c *Client) claimSubscriptionsLocked(cn *conn) [][]byte {
	var todo []*Channel
	for _, ch := range c.channels {
		if ch.state == ChannelPending && ch.cid == 0 && (!ch.waitForAuth || c.authState == protocol.Authenticated) {
			todo = append(todo, ch)
		}
	}
	slices.SortFunc(todo, func(a, b *Channel) int {
		if a.priority != b.priority {
			return b.priority - a.priority
		}
		return int(a.seq) - int(b.seq)
	})
	frames := make([][]byte, 0, len(todo))
	for _, ch := range todo {
		c.nextCid++
		cid := c.nextCid
		ch.cid = cid
		c.calls[cid] = &call{event: protocol.EventSubscribe, cn: cn, done: c.subscribeDone(ch, cid)}
		data := wire.AppendString([]byte(`{"channel":`), ch.name)
		if ch.waitForAuth {
			data = append(data, `,"waitForAuth":true`...)
		}
		if d := ch.subscribeData(); d != nil {
			data = append(append(data, `,"data":`...), d...)
		}
		data = append(data, '}')
		frames = append(frames, appendInvoke(nil, protocol.EventSubscribe, data, cid))
	}
	return frames
}

// subscribeDone handles the answer to a #subscribe.
func (c *Client) subscribeDone(ch *Channel, cid uint64) func(protocol.Data, error) {
	return func(_ protocol.Data, err error) {
		c.mu.Lock()
		if c.channels[ch.name] != ch || ch.cid != cid {
			c.mu.Unlock() // unsubscribed or disconnected meanwhile
			return
		}
		ch.cid = 0
		if err != nil {
			delete(c.channels, ch.name)
			ch.setStateLocked(ChannelUnsubscribed, err)
			c.mu.Unlock()
			c.emit(SubscribeFailEvent{Channel: ch.name, Error: err})
			return
		}
		ch.setStateLocked(ChannelSubscribed, nil)
		c.mu.Unlock()
		c.emit(SubscribeEvent{Channel: ch.name})
	}
}

// Name returns the channel's name.
func (ch *Channel) Name() string { return ch.name }

// State returns the subscription's state.
func (ch *Channel) State() ChannelState {
	ch.c.mu.Lock()
	defer ch.c.mu.Unlock()
	return ch.state
}

// Consumer registers a consumer of the channel's data now. On a channel
// that is already unsubscribed the consumer is ended at once.
func (ch *Channel) Consumer() *Consumer[protocol.Data] {
	ch.c.mu.Lock()
	defer ch.c.mu.Unlock()
	cons := stream.NewStream[protocol.Data](ch.c.channelData, ch.name).Consumer()
	if ch.state == ChannelUnsubscribed {
		cons.Stop()
	}
	return cons
}

// All iterates over the data published to the channel (nil for a publish
// without data) until the channel is unsubscribed, kicked out or the
// client closed, or ctx is done.
func (ch *Channel) All(ctx context.Context) iter.Seq[protocol.Data] {
	return func(yield func(protocol.Data) bool) {
		ch.Consumer().All(ctx)(yield)
	}
}

// Once waits for the next publish.
func (ch *Channel) Once(ctx context.Context) (protocol.Data, error) {
	return ch.Consumer().Next(ctx)
}

// Unsubscribe leaves the channel: the server is told (if the subscription
// was sent) and the channel's data stream ends.
func (ch *Channel) Unsubscribe() error {
	c := ch.c
	c.mu.Lock()
	if c.channels[ch.name] != ch {
		c.mu.Unlock()
		return nil
	}
	delete(c.channels, ch.name)
	wasSubscribed := ch.state == ChannelSubscribed
	sent := wasSubscribed || ch.cid != 0
	if ch.cid != 0 {
		delete(c.calls, ch.cid)
		ch.cid = 0
	}
	ch.setStateLocked(ChannelUnsubscribed, nil)
	var cn *conn
	if c.state == StateOpen && sent {
		cn = c.cn
	}
	c.mu.Unlock()
	if wasSubscribed {
		c.emit(UnsubscribeEvent{Channel: ch.name})
	}
	if cn != nil {
		return cn.write(appendTransmit(nil, protocol.EventUnsubscribe, wire.AppendString(nil, ch.name)))
	}
	return nil
}

// InvokePublish publishes data to the channel and waits for the server's
// acknowledgement (see Client.InvokePublish).
func (ch *Channel) InvokePublish(ctx context.Context, data any) error {
	return ch.c.InvokePublish(ctx, ch.name, data)
}

// TransmitPublish publishes data to the channel without acknowledgement.
func (ch *Channel) TransmitPublish(data any) error { return ch.c.TransmitPublish(ch.name, data) }

// InvokePublish publishes data to channel (the client need not be
// subscribed) and waits for the server's acknowledgement, bounded by
// AckTimeout and ctx. Subscribers, this client included, get the data.
func (c *Client) InvokePublish(ctx context.Context, channel string, data any) error {
	raw, err := protocol.MarshalData(data)
	if err != nil {
		return err
	}
	_, err = c.invoke(ctx, protocol.EventPublish, publishData(channel, raw))
	return err
}

// InvokePublishAsync publishes data to channel as InvokePublish does (an
// invoke the server acknowledges) but returns once the packet is written,
// or queued while reconnecting. done, if not nil, is called once with the
// outcome: nil when the server acknowledged, the server's error, a
// TimeoutError after AckTimeout or a BadConnectionError; it runs on the
// client's goroutines and must not block. Calls made one after the other
// are sent in that order.
func (c *Client) InvokePublishAsync(channel string, data any, done func(error)) error {
	raw, err := protocol.MarshalData(data)
	if err != nil {
		return err
	}
	if done == nil {
		done = func(error) {}
	}
	var cidv atomic.Uint64
	t := time.AfterFunc(c.opts.AckTimeout, func() {
		if cid := cidv.Load(); cid != 0 && c.abandon(cid) {
			done(protocol.TimeoutError(protocol.EventPublish))
		}
	})
	cl := &call{event: protocol.EventPublish, done: func(_ protocol.Data, err error) {
		t.Stop()
		done(err)
	}}
	cid, err := c.send(protocol.EventPublish, publishData(channel, raw), cl)
	if err != nil {
		t.Stop()
		return err
	}
	cidv.Store(cid)
	return nil
}

// TransmitPublish publishes data to channel without acknowledgement.
func (c *Client) TransmitPublish(channel string, data any) error {
	raw, err := protocol.MarshalData(data)
	if err != nil {
		return err
	}
	_, err = c.send(protocol.EventPublish, publishData(channel, raw), nil)
	return err
}

// Channel returns the client's channel of that name, or nil.
func (c *Client) Channel(name string) *Channel {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.channels[name]
}

// Subscriptions lists the subscribed channels, with the pending ones when
// includePending is true.
func (c *Client) Subscriptions(includePending bool) []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	var out []string
	for name, ch := range c.channels {
		if ch.state == ChannelSubscribed || includePending {
			out = append(out, name)
		}
	}
	slices.Sort(out)
	return out
}

// IsSubscribed reports whether channel is subscribed (or pending, with
// includePending).
func (c *Client) IsSubscribed(channel string, includePending bool) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	ch := c.channels[channel]
	return ch != nil && (ch.state == ChannelSubscribed || includePending)
}

// channelAnd reads the data of a #publish or #kickOut packet,
// {"channel": name, key: value}: ok is false when there is no string
// "channel"; value is nil when key is absent.
func channelAnd(data protocol.Data, key string) (name string, value protocol.Data, ok bool) {
	wire.Object(data, func(k string, val []byte) {
		switch k {
		case "channel":
			name, ok = wire.Unquote(val)
		case key:
			value = protocol.Data(val)
		}
	})
	return name, value, ok
}

// handlePublish delivers a #publish to the channel if the client has it
// (subscribed or pending).
func (c *Client) handlePublish(data protocol.Data) {
	name, payload, ok := channelAnd(data, "data")
	if !ok {
		return
	}
	c.mu.Lock()
	ch := c.channels[name]
	have := ch != nil
	if have {
		if ch.recover {
			ch.notePosition(data) // history.go
		}
		c.channelData.Write(name, payload)
	}
	c.mu.Unlock()
	if have && c.opts.OnPublish != nil {
		c.opts.OnPublish(name, payload)
	}
}

// handleKickOut drops a channel the server kicked the client out of.
func (c *Client) handleKickOut(data protocol.Data) {
	name, msg, ok := channelAnd(data, "message")
	if !ok {
		return
	}
	c.mu.Lock()
	ch := c.channels[name]
	if ch == nil {
		c.mu.Unlock()
		return
	}
	delete(c.channels, name)
	wasSubscribed := ch.state == ChannelSubscribed
	if ch.cid != 0 {
		delete(c.calls, ch.cid)
		ch.cid = 0
	}
	ch.setStateLocked(ChannelUnsubscribed, nil)
	c.mu.Unlock()
	c.emit(KickOutEvent{Channel: name, Message: msg})
	if wasSubscribed {
		c.emit(UnsubscribeEvent{Channel: name})
	}
}
