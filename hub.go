package socketcluster

import (
	"bytes"
	"context"
	"crypto/rand"
	"hash/maphash"
	"sync"
	"sync/atomic"
	"time"

	"github.com/socketcluster-go/socketcluster/broker"
	"github.com/socketcluster-go/socketcluster/internal/wire"
	"github.com/socketcluster-go/socketcluster/internal/wsconn"
)

// The hub maps each channel to its local subscribers (sockets and the
// server's own exchange) and is the broker's Handler.
//
// Scaling: the channel map is split into hubShards shards by a hash of the
// channel name, each with its own lock, taken only for a map look-up,
// insertion or removal. Each channel's subscribers are a subSet
// (hub_subs.go): subscribe and unsubscribe cost O(1) (amortised) under the
// channel's own lock, and a publish reads the set without any lock and
// without copying it. So no work that grows with a channel's size is done
// under a lock that a publish, or anything on another channel, needs.
//
// Fan-out: a publish is encoded once per channel into one immutable frame;
// the same bytes are queued to every subscribed socket (sockets with
// outbound middleware that rewrites the data get their own frame). Queueing
// never blocks (see socket_out.go), so a slow subscriber never delays the
// publisher or the others.
//
// Broker subscriptions follow local interest: the first local subscriber of
// a channel subscribes the broker, the last one leaving unsubscribes it.
// One reconcile goroutine at a time per channel (while the channel is busy)
// brings the broker in line with local interest, so concurrent
// subscribe/unsubscribe never leave the broker out of step; subscribers
// that join meanwhile wait for it as callbacks, not goroutines.
//
// Exactly once across instances: a publish is delivered to local
// subscribers at once, then published to the broker (through the outbox,
// hub_publish.go) in an envelope carrying this hub's instance id;
// envelopes coming back with our own id are dropped. Envelope: 16-byte
// instance id, then the data's raw JSON.

const envelopeIDLen = 16

// hubShards is the number of channel-map shards (a power of two).
const hubShards = 64

type hub struct {
	srv    *Server
	broker broker.Broker
	id     [envelopeIDLen]byte
	seed   maphash.Seed

	out    *outbox // broker publishes, in order (hub_publish.go)
	inproc bool    // the broker is in-process: reconcile without a goroutine

	hist           *historyState   // nil without Options.History (hub_history.go)
	noHistCounters historyCounters // outages counted when hist is nil

	shards   [hubShards]hubShard
	channels atomic.Int64 // entries in all shards' maps
}

type hubShard struct {
	mu       sync.RWMutex
	channels map[string]*hubChannel
	_        [32]byte // keeps shards' locks on separate cache lines
}

type hubChannel struct {
	name string
	subs subSet      // sockets; read by publishes without a lock
	exch atomic.Bool // the server's exchange is subscribed; stored under mu
	// When the last publication here started and ended its delivery
	// (monoNow), and the moving averages of the time between publications
	// and of the time from the end of one delivery to the start of the
	// next: batched sends are for channels that publish at a moderate
	// rate and whose publishers are not backlogged (ringDue,
	// socket_ringsend.go). Concurrent publishers update them without
	// coordination: an estimate.
	lastPub, lastDone atomic.Int64
	pubGap, idleGap   atomic.Int64

	mu         sync.Mutex // guards the fields below, and changes to subs and exch
	dead       bool       // removed from its shard: add must look again
	subscribed bool       // the broker is subscribed
	busy       bool       // a reconcile goroutine runs for this channel
	waiters    []func(error)
}

func (c *hubChannel) emptyLocked() bool { return c.subs.len() == 0 && !c.exch.Load() }

func newHub(srv *Server, b broker.Broker) *hub {
	h := &hub{srv: srv, broker: b, seed: maphash.MakeSeed()}
	for i := range h.shards {
		h.shards[i].channels = make(map[string]*hubChannel)
	}
	_, _ = rand.Read(h.id[:])
	if ip, ok := b.(broker.InProcess); ok && ip.InProcess() {
		h.inproc = true
	}
	h.out = newOutbox(b, srv.opts.BrokerTimeout, srv.opts.BrokerQueueLimit, func(n int) { srv.counters.brokerErrors.Add(int64(n)) })
	return h
}

func (h *hub) shard(name string) *hubShard {
	return &h.shards[maphash.String(h.seed, name)&(hubShards-1)]
}

// lookup returns the channel, or nil.
func (h *hub) lookup(name string) *hubChannel {
	sh := h.shard(name)
	sh.mu.RLock()
	c := sh.channels[name]
	sh.mu.RUnlock()
	return c
}

// add registers a subscriber (a socket, or the exchange when s is nil).
// done is called once the broker is subscribed to the channel (at once,
// before add returns, when it already was), or with the broker's error; on
// error the caller removes the subscriber. done must not block.
func (h *hub) add(s *Socket, name string, done func(error)) {
	sh := h.shard(name)
	for {
		c := h.lookup(name)
		if c == nil {
			sh.mu.Lock()
			if c = sh.channels[name]; c == nil {
				c = &hubChannel{name: name}
				sh.channels[name] = c
				h.channels.Add(1)
			}
			sh.mu.Unlock()
		}
		c.mu.Lock()
		if c.dead {
			c.mu.Unlock()
			continue // forgotten meanwhile: make or find its successor
		}
		if s == nil {
			c.exch.Store(true)
		} else {
			c.subs.add(s)
		}
		if c.subscribed && !c.busy {
			c.mu.Unlock()
			done(nil)
			return
		}
		c.waiters = append(c.waiters, done)
		start := !c.busy
		c.busy = true
		c.mu.Unlock()
		if start {
			h.startReconcile(sh, c)
		}
		return
	}
}

// startReconcile runs reconcile for c, in a goroutine of its own unless
// the broker is in-process (no call to wait for).
func (h *hub) startReconcile(sh *hubShard, c *hubChannel) {
	if h.inproc {
		h.reconcile(sh, c)
		return
	}
	go h.reconcile(sh, c)
}

// addWait is add for callers that wait for the broker; on error it
// removes the subscriber again.
func (h *hub) addWait(s *Socket, name string) error {
	res := make(chan error, 1)
	h.add(s, name, func(err error) { res <- err })
	err := <-res
	if err != nil {
		h.remove(s, name)
	}
	return err
}

// remove unregisters a subscriber; the broker is unsubscribed in the
// background when the channel has no local subscriber left.
func (h *hub) remove(s *Socket, name string) {
	c := h.lookup(name)
	if c == nil {
		return
	}
	c.mu.Lock()
	if s == nil {
		c.exch.Store(false)
	} else {
		c.subs.remove(s)
	}
	start := !c.busy && c.emptyLocked()
	if start {
		c.busy = true
	}
	c.mu.Unlock()
	if start {
		h.startReconcile(h.shard(name), c)
	}
}

// reconcile brings the broker subscription of c in line with local
// interest, answers the waiters, and forgets c when it is empty and
// unsubscribed. It runs while c.busy, which it clears when it returns.
func (h *hub) reconcile(sh *hubShard, c *hubChannel) {
	for {
		c.mu.Lock()
		want := !c.emptyLocked()
		if want == c.subscribed {
			if !want {
				// Forget the channel: shard lock first (lock order).
				c.mu.Unlock()
				sh.mu.Lock()
				c.mu.Lock()
				if !c.emptyLocked() || c.subscribed {
					sh.mu.Unlock()
					c.mu.Unlock()
					continue // someone joined meanwhile
				}
				c.dead = true
				if sh.channels[c.name] == c {
					delete(sh.channels, c.name)
					h.channels.Add(-1)
				}
				sh.mu.Unlock()
			}
			waiters := c.waiters
			c.waiters = nil
			c.busy = false
			c.mu.Unlock()
			for _, w := range waiters {
				w(nil)
			}
			return
		}
		c.mu.Unlock()
		ctx, cancel := context.Background(), context.CancelFunc(func() {})
		if !h.inproc { // an in-process broker has nothing to wait for
			ctx, cancel = context.WithTimeout(ctx, h.srv.opts.BrokerTimeout)
		}
		var err error
		if want {
			err = h.broker.Subscribe(ctx, []string{c.name})
		} else {
			err = h.broker.Unsubscribe(ctx, []string{c.name})
		}
		cancel()
		if err != nil {
			h.srv.counters.brokerErrors.Add(1)
			h.srv.emitWarning(NewError("BrokerError", "Broker failed to "+map[bool]string{true: "subscribe to", false: "unsubscribe from"}[want]+" channel "+c.name+" - "+err.Error()))
		}
		c.mu.Lock()
		switch {
		case err == nil:
			c.subscribed = want
		case want:
			// The waiters remove their subscribers; the last one leaving
			// starts a reconcile that forgets the channel.
			waiters := c.waiters
			c.waiters = nil
			c.busy = false
			c.mu.Unlock()
			for _, w := range waiters {
				w(err)
			}
			return
		default:
			c.subscribed = false // treat as gone; a later subscribe retries
		}
		c.mu.Unlock()
	}
}

// publication is one message to fan out: the data once, the frame once.
type publication struct {
	channel string
	data    []byte // raw JSON, nil = undefined
	packet  []byte // JSON packet (for batches)
	payload []byte // the message in the server's codec
	binary  bool   // payload is binary
	frame   []byte // complete frame of payload

	zonce  sync.Once
	zframe []byte // deflatedFrame's

	// outbound tells whether outbound middleware must see each delivery
	// (looked up once per publish, not once per subscriber).
	outbound bool

	pos *broker.Position // history channels: the publication's position
}

func (h *hub) encode(channel string, data []byte) (*publication, error) {
	buf := newPacketBuf(len(channel) + len(data) + 48)
	buf = wire.AppendPublish(buf, channel, data)
	payload, bin, err := h.srv.packetPayload(buf)
	if err != nil {
		return nil, err
	}
	frame := h.srv.plainFrame(buf, payload, bin)
	return &publication{channel: channel, data: data, packet: buf[wsconn.MaxHeader:], payload: payload, binary: bin, frame: frame}, nil
}

// deflatedFrame returns the frame for subscribers that negotiated
// permessage-deflate: compressed once, by the first delivery that needs
// it, and shared by all of them (no context takeover makes the bytes the
// same for every connection); the plain frame when compression does not
// pay.
func (p *publication) deflatedFrame(z *wsconn.Compressor) []byte {
	p.zonce.Do(func() {
		if p.zframe = z.Frame(p.binary, p.payload); p.zframe == nil {
			p.zframe = p.frame
		}
	})
	return p.zframe
}

// deliverLocal queues a publish to the local subscribers of channel. The
// frame is encoded once, and only when somebody here is subscribed. The
// subscriber set is read without a lock and without a copy.
func (h *hub) deliverLocal(channel string, data []byte) error {
	h.srv.counters.publishes.Add(1)
	c := h.lookup(channel)
	if c == nil {
		return nil
	}
	var p *publication
	var rb *ringBatch
	n := 0
	slots := c.subs.view()
	for i := range slots {
		s := slots[i].Load()
		if s == nil {
			continue
		}
		if p == nil {
			var err error
			if p, err = h.encode(channel, data); err != nil {
				return err
			}
			p.outbound = h.srv.HasMiddleware(MiddlewareOutbound)
			rb = h.srv.ringBatchFor(c, p, len(slots))
		}
		s.deliverPublish(p, rb)
		n++
	}
	if p != nil {
		h.srv.endFanout(c, rb)
	}
	h.srv.counters.deliveries.Add(int64(n))
	if c.exch.Load() {
		h.srv.exchange.deliver(channel, Data(data))
	}
	return nil
}

// Deliver implements broker.Handler.
func (h *hub) Deliver(channel string, payload []byte) {
	if len(payload) < envelopeIDLen || bytes.Equal(payload[:envelopeIDLen], h.id[:]) {
		return
	}
	data := payload[envelopeIDLen:]
	if len(data) == 0 {
		data = nil
	}
	if err := h.deliverLocal(channel, data); err != nil {
		h.srv.emitWarning(err)
	}
}

// Channels implements broker.Handler.
func (h *hub) Channels() []string {
	var out []string
	for i := range h.shards {
		sh := &h.shards[i]
		sh.mu.RLock()
		for name, c := range sh.channels {
			c.mu.Lock()
			if !c.emptyLocked() {
				out = append(out, name)
			}
			c.mu.Unlock()
		}
		sh.mu.RUnlock()
	}
	return out
}

// channelCount is the number of channels the hub knows (with at least one
// local subscriber, or being unsubscribed from the broker).
func (h *hub) channelCount() int { return int(h.channels.Load()) }

// Status implements broker.Handler.
func (h *hub) Status(err error) {
	h.srv.brokerDown.Store(err != nil)
	if err != nil {
		h.srv.counters.brokerErrors.Add(1)
		h.outage(err)
		h.srv.emitWarning(NewError("BrokerError", "Broker connection problem - "+err.Error()))
		h.srv.opts.Logger.Warn("socketcluster: broker unavailable", "error", err.Error())
		return
	}
	h.srv.opts.Logger.Info("socketcluster: broker connected")
}

func (srv *Server) startPubSub() error {
	b := srv.opts.Broker
	if b == nil {
		b = broker.NewMemory(nil)
	}
	srv.hub = newHub(srv, b)
	srv.exchange = newExchange(srv)
	if err := srv.hub.initHistory(); err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := b.Start(ctx, srv.hub); err != nil {
		return err
	}
	return nil
}

func (srv *Server) stopPubSub() {
	_ = srv.hub.broker.Close()
	srv.rings.close()
}
