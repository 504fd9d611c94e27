package redisbroker

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/redis/rueidis"

	"github.com/socketcluster-go/socketcluster/broker"
	"github.com/socketcluster-go/socketcluster/broker/internal/dial"
	"github.com/socketcluster-go/socketcluster/broker/internal/dqueue"
	"github.com/socketcluster-go/socketcluster/broker/internal/hseq"
	"github.com/socketcluster-go/socketcluster/broker/internal/lifecycle"
)

// ErrOverflow is reported through Handler.Status (wrapped) when messages
// received from Redis were dropped because the delivery queue was full.
var ErrOverflow = errors.New("redisbroker: delivery queue full, messages dropped")

// ErrNotConnected is returned (wrapped) by Subscribe and Unsubscribe while
// the pub/sub connection is down. The change is kept and applied when the
// connection is back.
var ErrNotConnected = errors.New("redisbroker: not connected")

// Options configures a Broker. The zero value is usable.
type Options struct {
	// Prefix is prepended to every channel name on Redis, so that several
	// applications can share one Redis: with Prefix "app1:", the hub's
	// channel "news" is the Redis channel "app1:news". Empty means none.
	// In cluster mode a prefix holding a hash tag ("{app1}:") puts every
	// channel in one slot, so on one shard.
	Prefix string

	// Sharded uses SPUBLISH/SSUBSCRIBE (Redis 7+) instead of
	// PUBLISH/SUBSCRIBE. With Redis Cluster this sends each message to the
	// shard that owns its channel only, instead of broadcasting it to every
	// node; the broker then keeps one pub/sub connection per master. It
	// also works on a standalone Redis 7. Every instance sharing a channel
	// must use the same setting: the two kinds of channels are separate.
	Sharded bool

	// QueueSize bounds the number of received messages waiting for
	// Handler.Deliver (default 65536); QueueBytes bounds their total size
	// (default 64 MiB). Beyond either, new messages are dropped; see the
	// package documentation.
	QueueSize  int
	QueueBytes int64

	// MinBackoff and MaxBackoff bound the delay between reconnection
	// attempts after an outage (defaults 100ms and 5s). The first attempt
	// is immediate; the delay then doubles, with ±20% jitter.
	MinBackoff time.Duration
	MaxBackoff time.Duration

	// OpTimeout bounds one round of SUBSCRIBE/UNSUBSCRIBE commands and the
	// PING that checks a new pub/sub connection (default 10s).
	OpTimeout time.Duration

	// SubscribeBatch is the largest number of channels sent in one
	// SUBSCRIBE or UNSUBSCRIBE command (default 1000). Larger batches are
	// split into several commands sent together in one pipeline.
	SubscribeBatch int

	// Configure, when set, may adjust the rueidis options parsed from the
	// URL (TLS, credentials provider, timeouts...) before connecting.
	Configure func(*rueidis.ClientOption)
}

func (o *Options) setDefaults() {
	if o.QueueSize <= 0 {
		o.QueueSize = 65536
	}
	if o.QueueBytes <= 0 {
		o.QueueBytes = 64 << 20
	}
	if o.MinBackoff <= 0 {
		o.MinBackoff = 100 * time.Millisecond
	}
	if o.MaxBackoff < o.MinBackoff {
		o.MaxBackoff = max(5*time.Second, o.MinBackoff)
	}
	if o.OpTimeout <= 0 {
		o.OpTimeout = 10 * time.Second
	}
	if o.SubscribeBatch <= 0 {
		o.SubscribeBatch = 1000
	}
}

// Stats are counters of a Broker.
type Stats struct {
	Dropped uint64 // messages dropped because the delivery queue was full
	Queued  int    // messages waiting for Deliver now
}

// Broker is a broker.Broker on Redis pub/sub. Create it with New.
type Broker struct {
	url  string // redacted, for messages
	opts Options
	copt rueidis.ClientOption

	state        lifecycle.Machine
	client       atomic.Pointer[rueidis.Client]
	keyedPublish bool          // set before client is stored
	q            *dqueue.Queue // counts the drops

	mu      sync.RWMutex
	h       broker.Handler
	want    map[string]struct{} // channels the hub needs (hub names)
	dirty   map[string]struct{} // channels changed since the manager last looked
	waiters []waiter            // Subscribe/Unsubscribe calls waiting for the manager

	kick  chan struct{}  // wakes the manager: pending changes or overflow
	fails chan failEvent // a pub/sub connection broke
	notes chan noteEvent // the server unsubscribed a sharded channel

	overflow   atomic.Bool // drops not yet reported
	inChannels atomic.Bool // the manager is inside Handler.Channels
	resync     atomic.Bool // a note was lost: re-check every channel

	ctx    context.Context // cancelled by Close
	cancel context.CancelFunc
	wg     sync.WaitGroup

	m *manager

	// History (history.go): set by Start when the handler uses history.
	hh       broker.HistoryHandler
	seq      *hseq.Seq   // owned by the delivery goroutine
	seqStale atomic.Bool // seq has fills to retry
}

var (
	_ broker.Broker         = (*Broker)(nil)
	_ broker.BatchPublisher = (*Broker)(nil)
)

// New returns a Broker for the Redis at url, which is not contacted before
// Start. Accepted forms (those of rueidis.ParseURL):
//
//	redis://[user:password@]host:port[/db]
//	rediss://...                                   (TLS)
//	redis://host:port?addr=host2:port2&addr=...    (several seeds: cluster)
//	redis://sentinel1:26379?addr=sentinel2:26379&master_set=mymaster
//	unix:///path/to/redis.sock
//
// Standalone, Sentinel and Cluster deployments are detected. New fails on a
// malformed URL; the error names the URL, with any password redacted.
func New(rawURL string, opts Options) (*Broker, error) {
	opts.setDefaults()
	red := redact(rawURL)
	copt, err := rueidis.ParseURL(rawURL)
	if err != nil {
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err // without the URL, which may hold a password
		}
		return nil, fmt.Errorf("redisbroker: bad URL %s: %w", red, err)
	}
	copt.DisableCache = true // no client-side caching: this client only publishes
	copt.ClientName = "socketcluster-broker"
	if opts.Configure != nil {
		opts.Configure(&copt)
	}
	if len(copt.InitAddress) == 0 {
		return nil, fmt.Errorf("redisbroker: bad URL %s: no address", red)
	}
	ctx, cancel := context.WithCancel(context.Background())
	b := &Broker{
		url:    red,
		opts:   opts,
		copt:   copt,
		q:      dqueue.New(opts.QueueSize, opts.QueueBytes),
		want:   make(map[string]struct{}),
		dirty:  make(map[string]struct{}),
		kick:   make(chan struct{}, 1),
		fails:  make(chan failEvent),
		notes:  make(chan noteEvent, 1024),
		ctx:    ctx,
		cancel: cancel,
	}
	b.m = newManager(b)
	return b, nil
}

// redact returns u with any password replaced, for error messages.
func redact(u string) string {
	p, err := url.Parse(u)
	if err != nil {
		// Do not echo something that may hold a password.
		if i := strings.LastIndexByte(u, '@'); i >= 0 {
			return "(unparsable URL ending in " + u[i:] + ")"
		}
		return fmt.Sprintf("%q", u)
	}
	return p.Redacted()
}

// Start implements broker.Broker. It connects, subscribes the channels
// h.Channels returns, and starts reading. It fails, naming the URL, when
// Redis cannot be reached or refuses the connection (auth, TLS...); the
// Broker is then closed.
func (b *Broker) Start(ctx context.Context, h broker.Handler) error {
	if h == nil {
		return errors.New("redisbroker: Start with a nil Handler")
	}
	return b.state.Start(ctx, b.steps(h))
}

// steps are this broker's parts of the shared lifecycle (Start and Close).
func (b *Broker) steps(h broker.Handler) *lifecycle.Steps {
	closeClient := func() {
		if c := b.client.Load(); c != nil {
			(*c).Close()
		}
	}
	return &lifecycle.Steps{
		Name: "redisbroker", Mu: &b.mu, Done: b.ctx, Cancel: b.cancel,
		Begin: func() {
			b.h = h
			if hh, ok := h.(broker.HistoryHandler); ok {
				b.hh = hh
				b.seq = newSeq(b)
			}
		},
		Connect: b.start,
		Run: func() {
			b.wg.Add(2)
			go b.deliverLoop()
			go b.m.run()
			b.poke()
		},
		Abort: func() {
			b.m.shutdown()
			closeClient()
		},
		Closing: func() {
			for _, w := range b.waiters {
				w.done <- broker.ErrClosed // buffered
			}
			b.waiters = nil
		},
		Stop: func() {
			b.wg.Wait() // manager (closes pub/sub connections), delivery, watchers
			closeClient()
		},
	}
}

func (b *Broker) start(ctx context.Context) error {
	// rueidis.NewClient dials without a context; the dial timeout it is
	// given is kept for later reconnections, so it is not derived from
	// ctx. Give up waiting when ctx ends instead.
	c, err := dial.WithContext(ctx, func() (rueidis.Client, error) { return rueidis.NewClient(b.copt) })
	if err != nil {
		return fmt.Errorf("redisbroker: connect to %s: %w", b.url, err)
	}
	b.m.cluster = c.Mode() == rueidis.ClientModeCluster
	b.keyedPublish = b.m.cluster && !b.opts.Sharded
	b.client.Store(&c) // publishes b.keyedPublish to Publish
	if err := c.Do(ctx, c.B().Ping().Build()).Error(); err != nil {
		return fmt.Errorf("redisbroker: connect to %s: PING: %w", b.url, err)
	}
	if err := b.m.resubscribeAll(ctx); err != nil {
		return fmt.Errorf("redisbroker: start on %s: %w", b.url, err)
	}
	b.m.healthy = true
	return nil
}

// Subscribe implements broker.Broker. It returns once Redis confirmed every
// channel (all the SUBSCRIBE commands of the batch are pipelined, and
// concurrent calls share round trips). While the connection is down it
// fails with ErrNotConnected, but the channels stay wanted: they are
// subscribed on reconnection, with everything Handler.Channels returns.
func (b *Broker) Subscribe(ctx context.Context, channels []string) error {
	if b.state.Load() == lifecycle.Running && !b.inChannels.Load() {
		if err := b.startPositions(ctx, channels); err != nil {
			// Redis is unreachable: Subscribe fails, but the channels stay
			// wanted, as for any Subscribe during an outage.
			if cerr := b.change(ctx, channels, true); cerr != nil {
				return cerr
			}
			return fmt.Errorf("%w to %s: %w", ErrNotConnected, b.url, err)
		}
	}
	return b.change(ctx, channels, true)
}

// Unsubscribe implements broker.Broker. It returns once Redis confirmed;
// deliveries on the channels stop when it returns in any case. While the
// connection is down it succeeds at once: the channels will simply not be
// subscribed on the new connection.
func (b *Broker) Unsubscribe(ctx context.Context, channels []string) error {
	err := b.change(ctx, channels, false)
	if b.hh != nil && b.state.Load() == lifecycle.Running {
		for _, ch := range channels {
			if _, ok := b.hh.History(ch); ok {
				b.q.PushMarker(ctx, dqueue.Item{Channel: ch, Kind: hseq.KindForget})
			}
		}
	}
	return err
}

func (b *Broker) change(ctx context.Context, channels []string, sub bool) error {
	b.mu.Lock()
	st := b.state.Load()
	if st == lifecycle.Closed || st == lifecycle.New && sub {
		b.mu.Unlock()
		if st == lifecycle.New {
			return errors.New("redisbroker: Subscribe before Start")
		}
		return broker.ErrClosed
	}
	for _, ch := range channels {
		if sub {
			b.want[ch] = struct{}{}
		} else {
			delete(b.want, ch)
		}
		b.dirty[ch] = struct{}{}
	}
	if len(channels) == 0 || st != lifecycle.Running || b.inChannels.Load() {
		// During Start, or while the manager asks Handler.Channels (which
		// may call back here: waiting would deadlock), the resubscription
		// that follows picks the change up.
		b.mu.Unlock()
		return nil
	}
	done := make(chan error, 1)
	b.waiters = append(b.waiters, waiter{done: done, sub: sub})
	b.mu.Unlock()
	b.poke()
	select {
	case err := <-done:
		return err
	case <-ctx.Done():
		return ctx.Err()
	}
}

// waiter is a Subscribe or Unsubscribe call waiting for the manager.
type waiter struct {
	done chan error // buffered
	sub  bool
}

// answer tells w the outcome. An Unsubscribe succeeds whatever Redis said:
// deliveries stop at once (the delivery loop only delivers wanted
// channels), and a connection that failed is not resubscribed to it.
func (w waiter) answer(err error) {
	if !w.sub {
		err = nil
	}
	w.done <- err
}

// poke wakes the manager.
func (b *Broker) poke() {
	select {
	case b.kick <- struct{}{}:
	default:
	}
}

// Publish implements broker.Broker. It returns once Redis replied to the
// PUBLISH (or SPUBLISH). Concurrent publishes are pipelined on shared
// connections by rueidis.
func (b *Broker) Publish(ctx context.Context, channel string, payload []byte) error {
	c, err := b.publishClient()
	if err != nil {
		return err
	}
	return b.publishErr(c.Do(ctx, b.publishCmd(c, channel, payload)).Error())
}

// PublishBatch implements broker.BatchPublisher: the publishes are sent in
// one pipeline (per node on a cluster), in order, and it returns once
// Redis replied to all of them.
func (b *Broker) PublishBatch(ctx context.Context, msgs []broker.Message) []error {
	c, err := b.publishClient()
	if err != nil {
		return fillErr(len(msgs), err)
	}
	cmds := make(rueidis.Commands, len(msgs))
	for i, m := range msgs {
		cmds[i] = b.publishCmd(c, m.Channel, m.Payload)
	}
	var errs []error
	for i, r := range c.DoMulti(ctx, cmds...) {
		if err := b.publishErr(r.Error()); err != nil {
			if errs == nil {
				errs = make([]error, len(msgs))
			}
			errs[i] = err
		}
	}
	return errs
}

func fillErr(n int, err error) []error {
	errs := make([]error, n)
	for i := range errs {
		errs[i] = err
	}
	return errs
}

func (b *Broker) publishClient() (rueidis.Client, error) {
	if b.state.Load() == lifecycle.Closed {
		return nil, broker.ErrClosed
	}
	cp := b.client.Load()
	if cp == nil {
		return nil, errors.New("redisbroker: Publish before Start")
	}
	return *cp, nil
}

func (b *Broker) publishCmd(c rueidis.Client, channel string, payload []byte) rueidis.Completed {
	name := b.opts.Prefix + channel
	switch {
	case b.keyedPublish:
		// Classic PUBLISH on a cluster: any node accepts it and broadcasts
		// it, and rueidis would pick a node at random. Sending all the
		// publishes of a channel through one node (the owner of the
		// channel's slot) keeps their order.
		return c.B().Arbitrary("PUBLISH").Keys(name).Args(rueidis.BinaryString(payload)).Build()
	case b.opts.Sharded:
		return c.B().Spublish().Channel(name).Message(rueidis.BinaryString(payload)).Build()
	default:
		return c.B().Publish().Channel(name).Message(rueidis.BinaryString(payload)).Build()
	}
}

func (b *Broker) publishErr(err error) error {
	if err == nil {
		return nil
	}
	if b.state.Load() == lifecycle.Closed {
		return broker.ErrClosed
	}
	return fmt.Errorf("redisbroker: publish on %s: %w", b.url, err)
}

// Close implements broker.Broker. It closes every connection and waits for
// the background goroutines: Deliver is not called after Close returns.
// Close must not be called from inside Handler.Deliver.
func (b *Broker) Close() error {
	b.state.Close(b.steps(nil))
	return nil
}

// Stats returns the broker's counters.
func (b *Broker) Stats() Stats {
	return Stats{Dropped: b.q.Dropped(), Queued: b.q.Len()}
}

// onMessage runs in the reading goroutine of a pub/sub connection: it only
// queues.
func (b *Broker) onMessage(m rueidis.PubSubMessage) {
	ch, ok := strings.CutPrefix(m.Channel, b.opts.Prefix)
	if !ok {
		return
	}
	it := dqueue.Item{Channel: ch}
	if _, hist := b.historyOf(ch); hist {
		pos, payload, ok := parseHistoryMessage(m.Message)
		if !ok {
			return // not from a history publish: ignored
		}
		it.Kind, it.Pos, it.Payload = hseq.KindHist, pos, payload
	} else {
		it.Payload = []byte(m.Message)
	}
	if !b.q.Push(it) {
		if b.overflow.CompareAndSwap(false, true) {
			b.poke()
		}
	}
}

// deliverLoop is the one goroutine that calls Handler.Deliver, in the order
// messages were read.
func (b *Broker) deliverLoop() {
	defer b.wg.Done()
	b.q.RunItems(b.ctx, b.handleItem)
}

// wanted reports whether the hub still wants channel.
func (b *Broker) wanted(channel string) bool {
	b.mu.RLock()
	defer b.mu.RUnlock()
	_, ok := b.want[channel]
	return ok
}
