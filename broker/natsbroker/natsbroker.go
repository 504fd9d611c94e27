package natsbroker

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/socketcluster-go/socketcluster/broker"
	"github.com/socketcluster-go/socketcluster/broker/internal/dial"
	"github.com/socketcluster-go/socketcluster/broker/internal/dqueue"
	"github.com/socketcluster-go/socketcluster/broker/internal/hseq"
	"github.com/socketcluster-go/socketcluster/broker/internal/lifecycle"
)

// ErrOverflow is reported through Handler.Status (wrapped) when messages
// were dropped because the delivery queue was full.
var ErrOverflow = errors.New("natsbroker: delivery queue full, messages dropped")

// ErrNotConnected is returned (wrapped) by Publish while the connection is
// down (the message is dropped, not buffered), and by Subscribe, whose
// subscription is nevertheless kept and sent on reconnection.
var ErrNotConnected = errors.New("natsbroker: not connected")

// Options configures a Broker. The zero value is usable.
type Options struct {
	// Prefix starts every subject (default "sc"), so that several
	// applications can share NATS servers. It must be one or more
	// dot-separated tokens without wildcards or whitespace.
	Prefix string

	// QueueSize bounds the number of received messages waiting for
	// Handler.Deliver (default 65536); QueueBytes bounds their total size
	// (default 64 MiB). Beyond either, new messages are dropped.
	QueueSize  int
	QueueBytes int64

	// ReconnectWait is the delay between reconnection rounds (default 1s,
	// plus up to 100ms of jitter). Reconnection is attempted forever.
	ReconnectWait time.Duration

	// PingInterval is how often the client pings the server to detect a
	// dead connection (default 10s; the connection is declared lost after
	// 3 unanswered pings).
	PingInterval time.Duration

	// OpTimeout bounds Subscribe's wait for the server's confirmation when
	// its context has no deadline, and the resubscription after a
	// reconnection (default 10s).
	OpTimeout time.Duration

	// NATSOptions are applied after the broker's own nats.Options
	// (credentials, TLS, a different reconnection policy...). Do not
	// replace the connection event handlers: the broker relies on them.
	NATSOptions []nats.Option
}

func (o *Options) setDefaults() {
	if o.Prefix == "" {
		o.Prefix = "sc"
	}
	if o.QueueSize <= 0 {
		o.QueueSize = 65536
	}
	if o.QueueBytes <= 0 {
		o.QueueBytes = 64 << 20
	}
	if o.ReconnectWait <= 0 {
		o.ReconnectWait = time.Second
	}
	if o.PingInterval <= 0 {
		o.PingInterval = 10 * time.Second
	}
	if o.OpTimeout <= 0 {
		o.OpTimeout = 10 * time.Second
	}
}

// Stats are counters of a Broker.
type Stats struct {
	Dropped uint64 // messages dropped: delivery queue full, or slow consumer in nats.go
	Queued  int    // messages waiting for Deliver now
}

// Broker is a broker.Broker on NATS core publish/subscribe. Create it
// with New.
type Broker struct {
	rawURL string
	url    string // redacted, for messages
	opts   Options
	prefix string

	state lifecycle.Machine
	nc    atomic.Pointer[nats.Conn]

	mu   sync.RWMutex
	h    broker.Handler
	subs map[string]*nats.Subscription // hub channel → subscription

	in chan *nats.Msg // every subscription feeds it; read by pump
	q  *dqueue.Queue  // counts the drops in our queue

	statusMu  sync.Mutex // Status calls come from several goroutines
	connected atomic.Bool
	ncDropped atomic.Uint64 // slow-consumer drops in nats.go of unsubscribed subscriptions
	overflow  chan struct{}

	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup

	// History (history.go): set by Start when the handler uses history.
	hist     histState
	hh       broker.HistoryHandler
	seq      *hseq.Seq   // owned by the delivery goroutine
	seqStale atomic.Bool // seq has fills to retry
}

var (
	_ broker.Broker         = (*Broker)(nil)
	_ broker.BatchPublisher = (*Broker)(nil)
)

// New returns a Broker for the NATS server(s) at url, which are not
// contacted before Start: "nats://host:4222", "tls://...", with optional
// "user:password@" or a comma-separated list of servers. New fails on a
// malformed URL or prefix; the error names the URL with any password
// redacted.
func New(rawURL string, opts Options) (*Broker, error) {
	opts.setDefaults()
	red := redact(rawURL)
	if strings.TrimSpace(rawURL) == "" {
		return nil, errors.New("natsbroker: bad URL: empty")
	}
	for _, s := range strings.Split(rawURL, ",") {
		u, err := url.Parse(strings.TrimSpace(s))
		if err != nil {
			return nil, fmt.Errorf("natsbroker: bad URL %s: %w", red, stripURL(err))
		}
		switch u.Scheme {
		case "nats", "tls", "ws", "wss":
		default:
			return nil, fmt.Errorf("natsbroker: bad URL %s: scheme %q (want nats, tls, ws or wss)", red, u.Scheme)
		}
		if u.Host == "" {
			return nil, fmt.Errorf("natsbroker: bad URL %s: no host", red)
		}
	}
	if !validPrefix(opts.Prefix) {
		return nil, fmt.Errorf("natsbroker: bad Prefix %q: want dot-separated tokens without wildcards or whitespace", opts.Prefix)
	}
	ctx, cancel := context.WithCancel(context.Background())
	return &Broker{
		rawURL:   rawURL,
		url:      red,
		opts:     opts,
		prefix:   opts.Prefix,
		subs:     make(map[string]*nats.Subscription),
		in:       make(chan *nats.Msg, 4096),
		q:        dqueue.New(opts.QueueSize, opts.QueueBytes),
		overflow: make(chan struct{}, 1),
		ctx:      ctx,
		cancel:   cancel,
	}, nil
}

// stripURL drops the URL (which may hold a password) from a url.Parse
// error.
func stripURL(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		return ue.Err
	}
	return err
}

func redact(raw string) string {
	parts := strings.Split(raw, ",")
	for i, s := range parts {
		u, err := url.Parse(strings.TrimSpace(s))
		if err != nil {
			if j := strings.LastIndexByte(s, '@'); j >= 0 {
				parts[i] = "(unparsable URL ending in " + s[j:] + ")"
			}
			continue
		}
		parts[i] = u.Redacted()
	}
	return strings.Join(parts, ",")
}

// Start implements broker.Broker. It connects, subscribes what
// h.Channels returns, waits for the server to confirm, and starts
// delivering. It fails, naming the URL, when no server can be reached or
// the server refuses the connection; the Broker is then closed.
func (b *Broker) Start(ctx context.Context, h broker.Handler) error {
	if h == nil {
		return errors.New("natsbroker: Start with a nil Handler")
	}
	return b.state.Start(ctx, b.steps(h))
}

// steps are this broker's parts of the shared lifecycle (Start and Close).
func (b *Broker) steps(h broker.Handler) *lifecycle.Steps {
	closeConn := func() {
		if nc := b.nc.Load(); nc != nil {
			nc.Close()
		}
	}
	return &lifecycle.Steps{
		Name: "natsbroker", Mu: &b.mu, Done: b.ctx, Cancel: b.cancel,
		Begin: func() {
			b.h = h
			if hh, ok := h.(broker.HistoryHandler); ok {
				b.hh = hh
				b.seq = newSeq(b)
			}
		},
		Connect: b.start,
		Run: func() {
			b.wg.Add(3)
			go b.pump()
			go b.deliverLoop()
			go b.monitor()
		},
		Abort: closeConn,
		Stop: func() {
			closeConn()
			b.wg.Wait()
		},
	}
}

func (b *Broker) start(ctx context.Context) error {
	opts := []nats.Option{
		nats.Name("socketcluster-broker"),
		// The hub drops its own echo anyway; do not even receive it.
		nats.NoEcho(),
		nats.MaxReconnects(-1),
		nats.ReconnectWait(b.opts.ReconnectWait),
		nats.ReconnectJitter(100*time.Millisecond, time.Second),
		// Publishing while disconnected fails at once instead of being
		// buffered and sent late (at-most-once, like Redis).
		nats.ReconnectBufSize(-1),
		nats.PingInterval(b.opts.PingInterval),
		nats.MaxPingsOutstanding(3),
		nats.DisconnectErrHandler(b.onDisconnect),
		nats.ReconnectHandler(b.onReconnect),
		nats.ErrorHandler(b.onAsyncError),
	}
	opts = append(opts, b.opts.NATSOptions...)
	// nats.Connect takes no context (its dial timeout, nats.Timeout, is
	// also used for reconnections): stop waiting when ctx ends instead.
	nc, err := dial.WithContext(ctx, func() (*nats.Conn, error) { return nats.Connect(b.rawURL, opts...) })
	if err != nil {
		return fmt.Errorf("natsbroker: connect to %s: %w", b.url, err)
	}
	b.nc.Store(nc)
	b.connected.Store(true)
	chs := b.h.Channels()
	b.mu.Lock()
	err = b.subscribeLocked(nc, chs)
	b.mu.Unlock()
	if err == nil {
		err = b.flush(ctx, nc)
	}
	if err != nil {
		return fmt.Errorf("natsbroker: start on %s: %w", b.url, err)
	}
	return nil
}

// subscribeLocked subscribes the channels not subscribed yet. b.mu held.
func (b *Broker) subscribeLocked(nc *nats.Conn, channels []string) error {
	var firstErr error
	for _, ch := range channels {
		if _, ok := b.subs[ch]; ok {
			continue
		}
		subj, _ := b.subject(ch)
		if opts, ok := b.historyOf(ch); ok {
			subj = b.liveSubject(ch, opts)
		}
		s, err := nc.ChanSubscribe(subj, b.in)
		if err != nil {
			if firstErr == nil {
				firstErr = err
			}
			continue
		}
		b.subs[ch] = s
	}
	return firstErr
}

// flush waits until the server has processed everything sent so far.
func (b *Broker) flush(ctx context.Context, nc *nats.Conn) error {
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, b.opts.OpTimeout)
		defer cancel()
	}
	return nc.FlushWithContext(ctx)
}

// Subscribe implements broker.Broker. The SUB protocol messages of the
// batch are sent together, then Subscribe waits for a PING/PONG round trip,
// so the server has every subscription when it returns. While the
// connection is down it fails with ErrNotConnected, but the subscriptions
// are kept and nats.go sends them on reconnection.
func (b *Broker) Subscribe(ctx context.Context, channels []string) error {
	nc, err := b.conn()
	if err != nil {
		return err
	}
	if b.state.Load() == lifecycle.Running {
		var fresh []string
		b.mu.RLock()
		for _, ch := range channels {
			if _, ok := b.subs[ch]; !ok {
				fresh = append(fresh, ch)
			}
		}
		b.mu.RUnlock()
		if err := b.startPositions(ctx, fresh); err != nil {
			return b.wrap("subscribe (reading the history position)", err)
		}
	}
	b.mu.Lock()
	if b.state.Load() == lifecycle.Closed {
		b.mu.Unlock()
		return broker.ErrClosed
	}
	err = b.subscribeLocked(nc, channels)
	b.mu.Unlock()
	if err != nil {
		return b.wrap("subscribe", err)
	}
	if len(channels) == 0 || b.state.Load() == lifecycle.Starting {
		return nil // Start flushes
	}
	if !nc.IsConnected() {
		return fmt.Errorf("%w to %s (the subscription is sent on reconnection)", ErrNotConnected, b.url)
	}
	if err := b.flush(ctx, nc); err != nil {
		return b.wrap("subscribe", err)
	}
	return nil
}

// Unsubscribe implements broker.Broker. Deliveries on the channels stop when
// it returns.
func (b *Broker) Unsubscribe(ctx context.Context, channels []string) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	var firstErr error
	for _, ch := range channels {
		s := b.subs[ch]
		if s == nil {
			continue
		}
		delete(b.subs, ch)
		if n, err := s.Dropped(); err == nil && n > 0 {
			b.ncDropped.Add(uint64(n))
		}
		if err := s.Unsubscribe(); err != nil && !errors.Is(err, nats.ErrConnectionClosed) && firstErr == nil {
			firstErr = err
		}
	}
	if b.hh != nil && b.state.Load() == lifecycle.Running {
		for _, ch := range channels {
			if _, ok := b.hh.History(ch); ok {
				b.q.Push(dqueue.Item{Channel: ch, Kind: hseq.KindForget})
			}
		}
	}
	if firstErr != nil {
		return b.wrap("unsubscribe", firstErr)
	}
	return nil
}

// Publish implements broker.Broker. NATS core has no acknowledgement:
// Publish returns once the message is in the connection's write buffer,
// which nats.go flushes right away, in order. It fails at once while
// disconnected (ErrNotConnected) and when the message exceeds the
// server's max_payload (1 MB by default).
func (b *Broker) Publish(ctx context.Context, channel string, payload []byte) error {
	nc, err := b.conn()
	if err != nil {
		return err
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	subj, hashed := b.subject(channel)
	if hashed {
		payload = frame(channel, payload)
	}
	if err := nc.Publish(subj, payload); err != nil {
		return b.wrap("publish", err)
	}
	return nil
}

// PublishBatch implements broker.BatchPublisher, the way the server's hub
// publishes: Publish for each message, in order, then one PING/PONG round
// trip (Flush), so that it returns once the NATS server has processed them
// all, or fails when it does not answer before ctx is done (a hung
// server). A publish that fails stops the batch; it and the rest fail
// with its error.
func (b *Broker) PublishBatch(ctx context.Context, msgs []broker.Message) []error {
	fail := func(i int, err error) []error {
		errs := make([]error, len(msgs))
		for j := i; j < len(msgs); j++ {
			errs[j] = err
		}
		return errs
	}
	for i, m := range msgs {
		if err := b.Publish(ctx, m.Channel, m.Payload); err != nil {
			return fail(i, err)
		}
	}
	nc, err := b.conn()
	if err != nil {
		return fail(0, err)
	}
	if err := b.flush(ctx, nc); err != nil {
		return fail(0, b.wrap("publish", err))
	}
	return nil
}

func (b *Broker) conn() (*nats.Conn, error) {
	if b.state.Load() == lifecycle.Closed {
		return nil, broker.ErrClosed
	}
	nc := b.nc.Load()
	if nc == nil {
		return nil, errors.New("natsbroker: used before Start")
	}
	return nc, nil
}

func (b *Broker) wrap(op string, err error) error {
	switch {
	case b.state.Load() == lifecycle.Closed:
		return broker.ErrClosed
	case errors.Is(err, nats.ErrReconnectBufExceeded),
		errors.Is(err, nats.ErrConnectionClosed), // a Flush interrupted by a disconnection
		errors.Is(err, nats.ErrConnectionReconnecting),
		errors.Is(err, nats.ErrDisconnected):
		return fmt.Errorf("%w to %s: %s: %w", ErrNotConnected, b.url, op, err)
	}
	return fmt.Errorf("natsbroker: %s on %s: %w", op, b.url, err)
}

// Close implements broker.Broker. It closes the connection and waits for
// the background goroutines: Deliver is not called after Close returns.
// Close must not be called from inside Handler.Deliver.
func (b *Broker) Close() error {
	b.state.Close(b.steps(nil))
	return nil
}

// Stats returns the broker's counters.
func (b *Broker) Stats() Stats {
	d := b.q.Dropped() + b.ncDropped.Load()
	b.mu.RLock()
	for _, s := range b.subs {
		if n, err := s.Dropped(); err == nil {
			d += uint64(n)
		}
	}
	b.mu.RUnlock()
	return Stats{Dropped: d, Queued: b.q.Len() + len(b.in)}
}

// status reports to the hub, never concurrently and never after Close.
func (b *Broker) status(err error) {
	b.statusMu.Lock()
	defer b.statusMu.Unlock()
	if b.state.Load() == lifecycle.Running {
		b.h.Status(err)
	}
}

func (b *Broker) onDisconnect(_ *nats.Conn, err error) {
	b.connected.Store(false)
	if err == nil {
		err = errors.New("disconnected")
	}
	b.status(fmt.Errorf("natsbroker: connection to %s lost: %w", b.url, err))
}

// onReconnect runs after nats.go reconnected and sent every existing
// subscription again. It also subscribes what Handler.Channels returns and
// the broker lacks, waits for the server, then reports health.
func (b *Broker) onReconnect(nc *nats.Conn) {
	if b.state.Load() != lifecycle.Running {
		return
	}
	chs := b.h.Channels()
	b.mu.Lock()
	err := b.subscribeLocked(nc, chs)
	b.mu.Unlock()
	if err == nil {
		ctx, cancel := context.WithTimeout(b.ctx, b.opts.OpTimeout)
		err = nc.FlushWithContext(ctx)
		cancel()
	}
	if err != nil {
		b.status(fmt.Errorf("natsbroker: resubscribe on %s: %w", b.url, err))
		return
	}
	b.connected.Store(true)
	b.queueCatchUp(b.ctx)
	b.status(nil)
}

func (b *Broker) onAsyncError(_ *nats.Conn, _ *nats.Subscription, err error) {
	if errors.Is(err, nats.ErrSlowConsumer) {
		b.signalOverflow()
		return
	}
	b.status(fmt.Errorf("natsbroker: on %s: %w", b.url, err))
}

func (b *Broker) signalOverflow() {
	select {
	case b.overflow <- struct{}{}:
	default:
	}
}

// pump moves messages from nats.go's channel to the bounded queue; it
// never blocks, so nats.go's reader never finds the channel full.
func (b *Broker) pump() {
	defer b.wg.Done()
	for {
		select {
		case <-b.ctx.Done():
			return
		case m := <-b.in:
			var it dqueue.Item
			if strings.HasPrefix(m.Subject, b.prefix+".L") {
				ch, payload, err := b.decodeHist(m.Subject, m.Data)
				pos, ok := positionOf(m.Header)
				if err != nil || !ok {
					continue
				}
				it = dqueue.Item{Channel: ch, Payload: payload, Kind: hseq.KindHist, Pos: pos}
			} else {
				ch, payload, err := b.decode(m.Subject, m.Data)
				if err != nil {
					continue
				}
				it = dqueue.Item{Channel: ch, Payload: payload}
			}
			if !b.q.Push(it) {
				b.signalOverflow()
			}
		}
	}
}

// deliverLoop is the one goroutine that calls Handler.Deliver, in the order
// messages were received.
func (b *Broker) deliverLoop() {
	defer b.wg.Done()
	b.q.RunItems(b.ctx, b.handleItem)
}

// subscribed reports whether the hub still wants channel.
func (b *Broker) subscribed(channel string) bool {
	b.mu.RLock()
	defer b.mu.RUnlock()
	_, ok := b.subs[channel]
	return ok
}

// monitor reports overflows, and health again once the queue drained.
func (b *Broker) monitor() {
	defer b.wg.Done()
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	shown := false
	for {
		select {
		case <-b.ctx.Done():
			return
		case <-b.overflow:
			if !shown {
				shown = true
				b.status(dqueue.OverflowError(ErrOverflow, b.Stats().Dropped))
			}
		case <-tick.C:
			if b.seqStale.Load() {
				b.q.Push(dqueue.Item{Kind: hseq.KindRetry})
			}
			if shown && b.q.Low() && len(b.in) <= cap(b.in)/2 {
				shown = false
				if b.connected.Load() {
					b.status(nil)
				}
			}
		}
	}
}
