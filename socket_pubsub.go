package socketcluster

import (
	"bytes"
	"errors"
	"sort"
	"strconv"
	"sync"
	"sync/atomic"

	"github.com/socketcluster-go/socketcluster/broker"
	"github.com/socketcluster-go/socketcluster/internal/wire"
	"github.com/socketcluster-go/socketcluster/protocol"
)

// Client pub/sub (docs/protocol.md §3.7–3.10, §7).

// Subscriptions returns the channels the socket is subscribed to.
func (s *Socket) Subscriptions() []string {
	s.mu.Lock()
	out := make([]string, 0, len(s.channels))
	for ch := range s.channels {
		out = append(out, ch)
	}
	s.mu.Unlock()
	sort.Strings(out)
	return out
}

// IsSubscribed reports whether the socket is subscribed to channel. A
// client's #subscribe counts from the moment it is accepted, while the
// broker is still being asked (docs/protocol.md §3.7).
func (s *Socket) IsSubscribed(channel string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	_, ok := s.channels[channel]
	return ok
}

// ChannelSubscriptionsCount is the number of channels the socket is in.
func (s *Socket) ChannelSubscriptionsCount() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.channels)
}

// subscribeOptions returns the packet's data object minus "channel".
func subscribeOptions(raw []byte) Data {
	out := []byte{'{'}
	wire.Object(raw, func(k string, v []byte) {
		if k == "channel" {
			return
		}
		if len(out) > 1 {
			out = append(out, ',')
		}
		out = wire.AppendString(out, k)
		out = append(out, ':')
		out = append(out, v...)
	})
	return Data(append(out, '}'))
}

func (s *Socket) respondOrEmit(p *wire.Packet, err error) {
	s.emitError(err)
	if p.HasCid {
		s.sendResponse(p.Cid, nil, mustError(err))
	}
}

func (s *Socket) handleSubscribe(p *wire.Packet) {
	var (
		channel     string
		hasChannel  bool
		subData     []byte
		waitForAuth bool
	)
	isObj := wire.Object(p.Data, func(k string, v []byte) {
		switch k {
		case "channel":
			channel, hasChannel = wire.Unquote(v)
		case "data":
			subData = v
		case "waitForAuth":
			waitForAuth = string(v) == "true"
		}
	})
	if !isObj || !hasChannel {
		s.respondOrEmit(p, errInvalidAction("Subscribe channel name was malformatted"))
		return
	}
	expired := s.checkTokenExpiry()
	// The Action is made only for inbound middleware (as for calls).
	var (
		dataChanged bool
		newData     Data // the data an allow({data}) put in place of subData
	)
	if s.server.HasMiddleware(MiddlewareInbound) {
		a := &Action{Type: ActionSubscribe, Socket: s, Channel: channel, Data: Data(subData), WaitForAuth: waitForAuth, AuthTokenExpiredError: expired}
		if !s.inboundAllowed(a, p) {
			return
		}
		dataChanged, newData = a.dataChanged, a.Data
	}
	if !p.HasCid {
		s.deliverReceived(protocol.EventSubscribe, p)
		return // the reference subscribes nothing without a cid
	}
	if s.State() != StateOpen {
		s.respondOrEmit(p, errInvalidAction("Cannot subscribe socket to a channel before it has completed the handshake"))
		return
	}
	opts := subscribeOptions(p.Data)
	if dataChanged {
		// allow({data}) replaces the subscription's data field.
		var b []byte
		b = append(b, opts[:len(opts)-1]...)
		if len(b) > 1 {
			b = append(b, ',')
		}
		b = append(append(append(b, `"data":`...), newData...), '}')
		opts = b
	}
	hub := s.server.hub
	_, hist := hub.historyOf(channel)
	var since *broker.Position
	if hub.hist != nil {
		var err error
		if since, err = parseRecover(subData); err != nil {
			s.respondOrEmit(p, err)
			return
		}
		if since != nil && !hist {
			s.respondOrEmit(p, errNoHistory(channel))
			return
		}
	}
	s.inChannelOrder(channel, p, func(pk *wire.Packet, _ bool) { s.subscribeNow(pk, channel, opts, since, hist) })
}

// subscribeNow joins channel for a #subscribe that passed its checks. A
// channel with history is joined in the reader (its start position and
// missed publications are read first); any other is joined with
// subscribeAsync, so that the socket's next packets do not wait for the
// broker.
func (s *Socket) subscribeNow(p *wire.Packet, channel string, opts Data, since *broker.Position, hist bool) {
	if hist {
		if err := s.join(channel, opts, since, func() { s.sendResponse(p.Cid, nil, nil) }); err != nil {
			s.respondOrEmit(p, err)
			return
		}
		s.deliverAnswered(protocol.EventSubscribe, p)
		return
	}
	// The reply may come from another goroutine, after the reader has
	// reused the packet's buffers.
	pk := clonePacket(p)
	s.subscribeAsync(channel, opts, func(err error) {
		if err != nil {
			s.respondOrEmit(pk, err)
			return
		}
		s.sendResponse(pk.Cid, nil, nil)
		s.deliverAnswered(protocol.EventSubscribe, pk)
	})
}

// clonePacket copies p and its data, for a packet handled after the
// reader has moved on (its buffers are reused).
func clonePacket(p *wire.Packet) *wire.Packet {
	pk := *p
	pk.Data = bytes.Clone(p.Data)
	pk.Error = nil
	return &pk
}

// pendingSub is a client's #subscribe of a channel without history that
// waits for the broker (subscribeAsync). What comes meanwhile for the same
// channel (the client's #subscribe and #unsubscribe, KickOut) waits in
// queued and runs, in order, once it is answered (drainLocked). A channel
// has one queue: a queued #subscribe that waits for the broker in turn
// takes over the operations still queued behind it.
type pendingSub struct {
	queued []func()
	// All fields are under s.mu. answered: the broker has confirmed the
	// subscription and its events have fired (set just before the client
	// is answered). running: one goroutine, the queue's runner, is running
	// its operations (drainLocked), or a KickOut's leave that did not have
	// to wait; whatever comes meanwhile is queued and run by that runner.
	// inline: hub.add is still under way for a subscribe that was itself
	// a queued operation; deferred: it was answered during that call, and
	// its queue is left to the runner that ran it (no recursion, however
	// many subscribes were queued).
	answered, running, inline, deferred bool
}

// subscribeAnswered, set by tests only, runs after a pending subscribe's
// answer is sent and before what was queued behind it runs.
var subscribeAnswered atomic.Pointer[func(channel string)]

// inChannelOrder runs op in order with the socket's other operations on
// channel (a client's #subscribe and #unsubscribe, Subscribe, KickOut),
// so that no two of them interleave their changes to the socket's
// channels and to the hub. With nothing under way, op runs at once in the
// caller's goroutine, as the channel queue's runner (what arrives
// meanwhile waits behind it); otherwise it is queued and run later by the
// runner of the queue, with queued true and a copy of p (p may be nil).
// Beyond maxQueuedBehindJoin client packets waiting for one channel, p is
// refused with an InvalidActionError instead.
func (s *Socket) inChannelOrder(channel string, p *wire.Packet, op func(p *wire.Packet, queued bool)) {
	s.mu.Lock()
	ps := s.joiningLocked()[channel]
	if ps != nil && (!ps.answered || ps.running || len(ps.queued) > 0) {
		if p != nil && len(ps.queued) >= int(maxQueuedBehindJoin.Load()) {
			s.mu.Unlock()
			s.respondOrEmit(p, errInvalidAction("Socket "+s.id+" sent too many #subscribe and #unsubscribe packets of the "+channel+" channel while its subscribe was pending; wait for the answers"))
			return
		}
		pk := p
		if p != nil {
			pk = clonePacket(p)
		}
		ps.queued = append(ps.queued, func() { op(pk, true) })
		s.mu.Unlock()
		return
	}
	if ps == nil {
		if s.stateCode() == stClosed {
			// Closed: unsubscribeAll drops the queues, and leaves every
			// channel.
			s.mu.Unlock()
			op(p, false)
			return
		}
		// An answered entry for the time of op, so that what arrives
		// meanwhile waits behind it rather than racing it in the hub.
		m := s.moreLocked()
		if m.joining == nil {
			m.joining = make(map[string]*pendingSub)
		}
		ps = &pendingSub{answered: true}
		m.joining[channel] = ps
	}
	// Answered, and nothing waits (a subscribe whose answer is being
	// sent): run now as the queue's runner.
	ps.running = true
	s.mu.Unlock()
	op(p, false)
	s.mu.Lock()
	ps.running = false
	s.drainLocked(channel, ps)
	s.mu.Unlock()
}

// maxQueuedBehindJoin bounds the packets a client may have waiting behind
// one channel's queue (inChannelOrder), so that a flood
// while the broker is slow costs bounded memory. Tests raise it.
var maxQueuedBehindJoin atomic.Int32

func init() { maxQueuedBehindJoin.Store(1024) }

// subscribeAsync adds the socket to channel (a channel without history)
// at once, so that publications from now on reach it, and calls reply
// when the broker has confirmed the subscription: at once when this
// instance already has it, otherwise from the goroutine that made the
// broker call, while the socket's reader goes on with its next packets.
// The subscription events are emitted just before reply(nil). On a
// broker error the socket leaves the channel again and reply gets a
// BrokerError. Until then the channel counts as subscribed
// (IsSubscribed, Subscriptions, SocketChannelLimit).
func (s *Socket) subscribeAsync(channel string, opts Data, reply func(error)) {
	hub := s.server.hub
	s.mu.Lock()
	if s.stateCode() == stClosed {
		// A subscribe queued behind another ran after the socket closed
		// (unsubscribeAll has left every channel): nothing to join.
		s.mu.Unlock()
		reply(errInvalidAction("Cannot subscribe socket to a channel after it has closed"))
		return
	}
	already, err := s.addChannelLocked(channel)
	if err != nil || already {
		s.mu.Unlock()
		if err == nil {
			s.emitSubscribed(channel, opts)
		}
		reply(err)
		return
	}
	ps := &pendingSub{}
	m := s.moreLocked()
	if m.joining == nil {
		m.joining = make(map[string]*pendingSub)
	}
	prev := m.joining[channel]
	if prev != nil {
		// This subscribe is one of prev's queued operations, run by its
		// runner (drainLocked): what was queued after it now waits for
		// this one.
		ps.queued, prev.queued = prev.queued, nil
		ps.inline = true
	}
	m.joining[channel] = ps
	s.mu.Unlock()
	hub.add(s, channel, func(err error) {
		s.mu.Lock()
		live := s.joiningLocked()[channel] == ps
		if !live {
			// The socket closed meanwhile: unsubscribeAll left its
			// channels, but may have done so before hub.add counted the
			// socket in; leaving again is harmless.
			s.mu.Unlock()
			hub.remove(s, channel)
			return
		}
		if err != nil {
			delete(s.channels, channel)
		}
		s.mu.Unlock()
		if err != nil {
			hub.remove(s, channel)
			reply(NewError("BrokerError", "Failed to subscribe socket to the "+channel+" channel - "+err.Error()))
		} else {
			s.emitSubscribed(channel, opts)
			s.mu.Lock()
			ps.answered = true
			s.mu.Unlock()
			reply(nil)
			if h := subscribeAnswered.Load(); h != nil {
				(*h)(channel)
			}
		}
		s.mu.Lock()
		if ps.inline {
			ps.deferred = true // the runner that ran this subscribe goes on
		} else if !ps.running {
			s.drainLocked(channel, ps)
		}
		s.mu.Unlock()
	})
	if prev != nil {
		s.mu.Lock()
		ps.inline = false
		s.mu.Unlock()
	}
}

// addChannelLocked records channel among the socket's channels, with s.mu
// held, and reports whether it was there already; it returns the
// reference's error instead when the socket is at
// Options.SocketChannelLimit (counting the channel even when it repeats
// one).
func (s *Socket) addChannelLocked(channel string) (already bool, err error) {
	if limit := s.server.opts.SocketChannelLimit; limit > 0 && len(s.channels) >= limit {
		return false, NewError("BrokerError", "Failed to subscribe socket to the "+channel+" channel - InvalidActionError: Socket "+s.id+" tried to exceed the channel subscription limit of "+strconv.Itoa(limit))
	}
	if s.channels == nil {
		s.channels = make(map[string]struct{})
	}
	_, already = s.channels[channel]
	s.channels[channel] = struct{}{}
	return already, nil
}

func (s *Socket) emitSubscribed(channel string, opts Data) {
	s.emit(SubscribeEvent{Channel: channel, SubscriptionOptions: opts})
	s.server.emit(SubscriptionEvent{Socket: s, Channel: channel, SubscriptionOptions: opts})
}

// drainLocked runs, in order, what was queued behind channel's pending
// subscribe ps once it is answered, then forgets ps; s.mu is held on entry
// and on return, and released while each operation runs. The caller is
// the queue's runner (ps.running is false on entry). It stops when the
// socket closes (joining is cleared). When a queued #subscribe took the
// rest of the queue over (subscribeAsync) and was answered while it ran,
// the loop goes on with that one's queue.
func (s *Socket) drainLocked(channel string, ps *pendingSub) {
	for {
		for len(ps.queued) > 0 && s.joiningLocked() != nil {
			op := ps.queued[0]
			ps.queued = ps.queued[1:]
			ps.running = true
			s.mu.Unlock()
			op()
			s.mu.Lock()
			ps.running = false
		}
		ps.queued = nil
		m := s.joiningLocked()
		if m[channel] == ps {
			delete(m, channel)
		}
		next := m[channel]
		if next == nil || !next.deferred || next.running {
			return
		}
		next.deferred = false
		ps = next
	}
}

// Subscribe subscribes the socket to channel from the server side: no
// middleware runs and the client is not asked, but it receives the
// channel's publishes from now on (a client library shows them only for
// channels it subscribed to itself), and the subscription events fire as
// for a #subscribe. Subscribing twice is not an error. It fails before the
// handshake, beyond Options.SocketChannelLimit, or when the broker cannot
// subscribe.
//
// It runs in order with the client's own #subscribe and #unsubscribe of
// the channel: while one of those is under way (a subscribe waiting for
// the broker, say), Subscribe queues behind it and returns nil at once;
// the subscription is then made when that is done, and an error then is
// emitted as the socket's ErrorEvent.
func (s *Socket) Subscribe(channel string) error {
	if s.State() != StateOpen {
		return errInvalidAction("Cannot subscribe socket to a channel before it has completed the handshake")
	}
	var err error
	s.inChannelOrder(channel, nil, func(_ *wire.Packet, queued bool) {
		if s.IsSubscribed(channel) {
			return
		}
		if !queued {
			err = s.join(channel, Data("{}"), nil, nil)
			return
		}
		if s.State() != StateOpen {
			return
		}
		// Queued: run by whoever runs the queue (the goroutine that
		// completed a pending subscribe, say), which must not wait for
		// the broker unless the channel has history (as a queued
		// #subscribe).
		if _, hist := s.server.hub.historyOf(channel); hist {
			if err := s.join(channel, Data("{}"), nil, nil); err != nil {
				s.emitError(err)
			}
			return
		}
		s.subscribeAsync(channel, Data("{}"), func(err error) {
			if err != nil {
				s.emitError(err)
			}
		})
	})
	return err
}

// join adds the socket to channel and emits the subscription events, then
// calls answered (if not nil: the #subscribe response). On a history
// channel (hub_history.go) the socket starts from since, or from now when
// since is nil, and live publications wait until the missed ones, sent
// after answered, are out.
func (s *Socket) join(channel string, opts Data, since *broker.Position, answered func()) error {
	hub := s.server.hub
	hopts, hist := hub.historyOf(channel)
	s.mu.Lock()
	already, err := s.addChannelLocked(channel)
	s.mu.Unlock()
	if err != nil {
		return err
	}
	undo := func(err error) error {
		s.mu.Lock()
		delete(s.channels, channel)
		s.mu.Unlock()
		return err
	}
	recovering := hist && !already
	var start broker.Position
	var recovered broker.HistoryResult
	if recovering {
		// From the client's position, or from now; live publications wait
		// until those are sent.
		if since != nil {
			start = *since
		} else {
			var err error
			if start, err = hub.startPosition(channel, hopts); err != nil {
				return undo(NewError("BrokerError", "Failed to subscribe socket to the "+channel+" channel - "+err.Error()))
			}
		}
		hub.beginRecovery(s, channel)
	}
	if !already {
		if err := hub.addWait(s, channel); err != nil {
			if recovering {
				hub.endRecovery(s, channel)
			}
			return undo(NewError("BrokerError", "Failed to subscribe socket to the "+channel+" channel - "+err.Error()))
		}
		if s.State() == StateClosed {
			// Closed while the broker was asked: its unsubscribeAll may
			// have run before the socket was counted in.
			hub.remove(s, channel)
			if recovering {
				hub.endRecovery(s, channel)
			}
			return undo(errInvalidAction("Cannot subscribe socket to a channel after it has closed"))
		}
	}
	if recovering {
		var err error
		if recovered, err = hub.readRecovery(s, channel, start, hopts); err != nil {
			hub.remove(s, channel)
			return undo(err)
		}
	}
	s.emitSubscribed(channel, opts)
	if answered != nil {
		answered()
	}
	if recovering {
		hub.finishRecovery(s, channel, start, since != nil, recovered, hopts)
	}
	return nil
}

// leave removes the socket from channel (KickOut), in order with the
// channel's other operations (inChannelOrder); it reports whether it was
// in it. While the channel's subscribe waits for the broker, leaving waits
// behind it and counts as being in it.
func (s *Socket) leave(channel string) bool {
	ok := true
	s.inChannelOrder(channel, nil, func(_ *wire.Packet, queued bool) {
		if left := s.leaveNow(channel); !queued {
			ok = left
		}
	})
	return ok
}

// channelLeaving, set by tests only, runs in leaveNow between forgetting
// the channel and leaving it in the hub.
var channelLeaving atomic.Pointer[func(s *Socket, channel string)]

// leaveNow is leave without waiting for a pending subscribe.
func (s *Socket) leaveNow(channel string) bool {
	s.mu.Lock()
	_, ok := s.channels[channel]
	delete(s.channels, channel)
	s.mu.Unlock()
	if !ok {
		return false
	}
	if h := channelLeaving.Load(); h != nil {
		(*h)(s, channel)
	}
	s.server.hub.remove(s, channel)
	s.emit(UnsubscribeEvent{Channel: channel})
	s.server.emit(UnsubscriptionEvent{Socket: s, Channel: channel})
	return true
}

func (s *Socket) handleUnsubscribe(p *wire.Packet) {
	channel, ok := wire.Unquote(p.Data)
	if !ok {
		s.respondOrEmit(p, errInvalidAction("Unsubscribe channel name was malformatted"))
		return
	}
	s.inChannelOrder(channel, p, func(pk *wire.Packet, _ bool) { s.unsubscribeNow(pk, channel) })
}

func (s *Socket) unsubscribeNow(p *wire.Packet, channel string) {
	if !s.leaveNow(channel) {
		s.respondOrEmit(p, NewError("BrokerError", "Failed to unsubscribe socket from the "+channel+" channel - InvalidActionError: Socket "+s.id+" tried to unsubscribe from a channel which it is not subscribed to"))
		return
	}
	if p.HasCid {
		s.sendResponse(p.Cid, nil, nil)
		s.deliverAnswered(protocol.EventUnsubscribe, p)
	} else {
		s.deliverReceived(protocol.EventUnsubscribe, p)
	}
}

func (s *Socket) handlePublish(p *wire.Packet) {
	if s.server.opts.DisableClientPublish {
		s.respondOrEmit(p, errInvalidAction("Client publish feature is disabled"))
		return
	}
	var (
		channel    string
		hasChannel bool
		data       []byte
	)
	wire.Object(p.Data, func(k string, v []byte) {
		switch k {
		case "channel":
			channel, hasChannel = wire.Unquote(v)
		case "data":
			data = v
		}
	})
	if !hasChannel {
		s.respondOrEmit(p, errInvalidAction("Publish channel name was malformatted"))
		return
	}
	expired := s.checkTokenExpiry()
	payload, ack := Data(data), []byte(nil)
	// The Action is made only for inbound middleware, as for calls.
	if s.server.HasMiddleware(MiddlewareInbound) {
		a := &Action{Type: ActionPublishIn, Socket: s, Channel: channel, Data: payload, AuthTokenExpiredError: expired}
		if !s.inboundAllowed(a, p) {
			return
		}
		payload, ack = a.Data, a.ackData
	}
	// Local subscribers get it now; the answer waits for the broker, but
	// this socket's next packets do not (the callback answers).
	pk := *p
	s.server.hub.publish(channel, payload, func(err error) { s.published(&pk, channel, ack, err) })
}

// published answers a client's #publish once the broker has taken it (or
// failed: a *ClusterPublishError is passed on as it is, the client then
// sees a ClusterPublishError). ack is the data of the acknowledgement (v14
// publishIn AckData), nil for none.
func (s *Socket) published(p *wire.Packet, channel string, ack []byte, err error) {
	if err != nil {
		if !errors.Is(err, ErrClusterPublish) {
			err = NewError("BrokerError", "Failed to publish to the "+channel+" channel - "+err.Error())
		}
		s.respondOrEmit(p, err)
		return
	}
	if p.HasCid {
		s.sendResponse(p.Cid, ack, nil)
		s.deliverAnswered(protocol.EventPublish, p)
	} else {
		s.deliverReceived(protocol.EventPublish, p)
	}
}

// deliverPublish queues a publish to this socket, through the outbound
// middleware when one is set; rb, when not nil, takes it instead if the
// socket is idle (socket_ringsend.go).
func (s *Socket) deliverPublish(p *publication, rb *ringBatch) {
	if p.outbound && !s.deliverThroughOutbound(p) {
		return
	}
	if !s.addToBatch(p.packet) {
		frame := p.frame
		if s.conn.Deflate() {
			frame = p.deflatedFrame(s.server.compressor)
		}
		if rb != nil && rb.add(s.server, s, frame) {
			return
		}
		s.enqueuePacket(frame) // a closed socket's queue refuses it
	}
}

// deliverThroughOutbound runs the outbound middleware on a publication for
// this socket. It reports true when the shared frame is to be sent as it
// is; false when the middleware blocked it or changed its data (then the
// changed packet was sent here).
func (s *Socket) deliverThroughOutbound(p *publication) bool {
	// One action per delivery: recycled, since a middleware does not keep
	// it past its call (Middleware's contract).
	a := outboundActions.Get().(*Action)
	defer func() {
		*a = Action{}
		outboundActions.Put(a)
	}()
	*a = Action{Type: ActionPublishOut, Socket: s, Channel: p.channel, Data: Data(p.data)}
	if err := s.server.decide(MiddlewareOutbound, a, false); err != nil {
		s.server.blockError(err, a, MiddlewareOutbound)
		return false
	}
	if !a.dataChanged {
		return true
	}
	buf := newPacketBuf(len(p.channel) + len(a.Data) + 48)
	if p.pos != nil {
		buf = appendPublishAt(buf, p.channel, a.Data, *p.pos) // hub_history.go
	} else {
		buf = wire.AppendPublish(buf, p.channel, a.Data)
	}
	s.sendPacket(buf)
	return false
}

var outboundActions = sync.Pool{New: func() any { return new(Action) }}

// KickOut removes the socket from channels (all of them when channels is
// empty), sending the client one #kickOut per channel with message (pass
// Undefined for none). Channels the socket is not in still get #kickOut
// and are reported in the returned InvalidActionError.
func (s *Socket) KickOut(channels []string, message any) error {
	msg, err := encodeValue(message)
	if err != nil {
		return err
	}
	if len(channels) == 0 {
		channels = s.Subscriptions()
	}
	var errs []error
	for _, ch := range channels {
		data := append([]byte(`{"channel":`), wire.AppendString(nil, ch)...)
		if msg != nil {
			data = append(append(data, `,"message":`...), msg...)
		}
		data = append(data, '}')
		s.sendEvent(protocol.EventKickOut, data)
		if !s.leave(ch) {
			errs = append(errs, errInvalidAction("Socket "+s.id+" tried to kick out of a channel which it is not subscribed to: "+ch))
		}
	}
	return errors.Join(errs...)
}

// unsubscribeAll leaves every channel (on close).
func (s *Socket) unsubscribeAll() {
	s.mu.Lock()
	if s.more != nil {
		s.more.joining = nil // pending subscribes are dropped: their answers find nothing to do
	}
	s.mu.Unlock()
	for _, ch := range s.Subscriptions() {
		s.leaveNow(ch)
	}
}
