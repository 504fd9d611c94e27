package socketcluster

import (
	"bytes"
	"context"
	"crypto/rand"
	"sync"
	"time"

	"github.com/socketcluster-go/socketcluster/broker"
	"github.com/socketcluster-go/socketcluster/internal/wire"
	"github.com/socketcluster-go/socketcluster/internal/wsconn"
)

// The hub maps each channel to its local subscribers (sockets and the
// server's own exchange) and is the broker's Handler.
//
// Fan-out: a publish is encoded once per channel into one immutable frame;
// the same bytes are queued to every subscribed socket (sockets with
// outbound middleware that rewrites the data get their own frame). Queueing
// never blocks (see socket_out.go), so a slow subscriber never delays the
// publisher or the others.
//
// Broker subscriptions follow local interest: the first local subscriber of
// a channel subscribes the broker, the last one leaving unsubscribes it.
// Each channel's broker state is reconciled under the channel's opMu, so
// concurrent subscribe/unsubscribe never leave the broker out of step.
//
// Exactly once across instances: a publish is delivered to local
// subscribers at once, then published to the broker (through the outbox,
// hub_publish.go) in an envelope
// carrying this hub's instance id; envelopes coming back with our own id
// are dropped. Envelope: 16-byte instance id, then the data's raw JSON.

const envelopeIDLen = 16

type hub struct {
	srv    *Server
	broker broker.Broker
	id     [envelopeIDLen]byte

	out *outbox // broker publishes, in order (hub_publish.go)

	hist           *historyState   // nil without Options.History (hub_history.go)
	noHistCounters historyCounters // outages counted when hist is nil

	mu       sync.RWMutex
	channels map[string]*hubChannel
}

type hubChannel struct {
	name string
	// Guarded by hub.mu.
	sockets  map[*Socket]struct{}
	snapshot []*Socket // rebuilt on change; read without copying
	exchange bool      // the server's exchange is subscribed

	opMu       sync.Mutex // serialises broker calls for this channel
	subscribed bool       // broker state, guarded by opMu
}

func (c *hubChannel) empty() bool { return len(c.sockets) == 0 && !c.exchange }

func (c *hubChannel) rebuild() {
	s := make([]*Socket, 0, len(c.sockets))
	for k := range c.sockets {
		s = append(s, k)
	}
	c.snapshot = s
}

func newHub(srv *Server, b broker.Broker) *hub {
	h := &hub{srv: srv, broker: b, channels: make(map[string]*hubChannel)}
	_, _ = rand.Read(h.id[:])
	h.out = newOutbox(b, srv.opts.BrokerTimeout, srv.opts.BrokerQueueLimit, func(n int) { srv.counters.brokerErrors.Add(int64(n)) })
	return h
}

// add registers a subscriber (a socket, or the exchange when s is nil) and
// makes sure the broker is subscribed before returning.
func (h *hub) add(s *Socket, name string) error {
	h.mu.Lock()
	c := h.channels[name]
	if c == nil {
		c = &hubChannel{name: name, sockets: make(map[*Socket]struct{})}
		h.channels[name] = c
	}
	if s == nil {
		c.exchange = true
	} else {
		c.sockets[s] = struct{}{}
		c.rebuild()
	}
	h.mu.Unlock()
	if err := h.reconcile(c); err != nil {
		h.remove(s, name)
		return err
	}
	return nil
}

// remove unregisters a subscriber; the broker is unsubscribed in the
// background when the channel has no local subscriber left.
func (h *hub) remove(s *Socket, name string) {
	h.mu.Lock()
	c := h.channels[name]
	if c == nil {
		h.mu.Unlock()
		return
	}
	if s == nil {
		c.exchange = false
	} else if _, ok := c.sockets[s]; ok {
		delete(c.sockets, s)
		c.rebuild()
	}
	empty := c.empty()
	h.mu.Unlock()
	if empty {
		go func() { _ = h.reconcile(c) }()
	}
}

// reconcile brings the broker subscription of c in line with local
// interest, and forgets c when it is empty and unsubscribed.
func (h *hub) reconcile(c *hubChannel) error {
	c.opMu.Lock()
	defer c.opMu.Unlock()
	for {
		h.mu.RLock()
		want := !c.empty() && h.channels[c.name] == c
		h.mu.RUnlock()
		if want == c.subscribed {
			if !want {
				h.mu.Lock()
				if c.empty() && h.channels[c.name] == c {
					delete(h.channels, c.name)
				}
				h.mu.Unlock()
			}
			return nil
		}
		ctx, cancel := context.WithTimeout(context.Background(), h.srv.opts.BrokerTimeout)
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
			if want {
				return err
			}
			c.subscribed = false // treat as gone; a later subscribe retries
			continue
		}
		c.subscribed = want
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
// frame is encoded once, and only when somebody here is subscribed.
func (h *hub) deliverLocal(channel string, data []byte) error {
	h.mu.RLock()
	c := h.channels[channel]
	var subs []*Socket
	exch := false
	if c != nil {
		subs, exch = c.snapshot, c.exchange
	}
	h.mu.RUnlock()
	h.srv.counters.publishes.Add(1)
	if len(subs) > 0 {
		p, err := h.encode(channel, data)
		if err != nil {
			return err
		}
		p.outbound = h.srv.HasMiddleware(MiddlewareOutbound)
		h.srv.counters.deliveries.Add(int64(len(subs)))
		for _, s := range subs {
			s.deliverPublish(p)
		}
	}
	if exch {
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
	h.mu.RLock()
	defer h.mu.RUnlock()
	out := make([]string, 0, len(h.channels))
	for name, c := range h.channels {
		if !c.empty() {
			out = append(out, name)
		}
	}
	return out
}

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
}
