package sccbroker

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gobwas/ws"

	sc "github.com/socketcluster-go/socketcluster"
	"github.com/socketcluster-go/socketcluster/broker"
	"github.com/socketcluster-go/socketcluster/client"
	"github.com/socketcluster-go/socketcluster/internal/wire"
	"github.com/socketcluster-go/socketcluster/scc/mapping"
)

// ErrNoBroker is returned (wrapped) by Publish when no scc-broker is known
// for the channel: before the first join of the cluster, or while the
// cluster has no broker. The message reached the local subscribers only.
var ErrNoBroker = errors.New("sccbroker: no scc-broker for the channel")

// Stats are the counters of a Broker.
type Stats struct {
	Published       uint64 // messages sent to scc-broker instances
	PublishFailures uint64 // publishes an scc-broker did not acknowledge (refused, timed out, connection lost)
	NoBroker        uint64 // publishes dropped for want of a broker (ErrNoBroker)
	Received        uint64 // messages received from scc-broker instances and delivered
	EchoDropped     uint64 // own messages that came back, dropped
	// StaleDropped counts messages that came on a broker connection the
	// channel is no longer assigned to (moved to another broker by a list
	// change, or no longer needed here), dropped: delivered after those of
	// the channel's new broker, they would be out of order.
	StaleDropped    uint64
	BadPackets      uint64 // packets from a broker that are not {sender, messages}
	BadStateUpdates uint64 // cluster updates from scc-state without a valid broker list or time
	BrokerUpdates   uint64 // broker lists applied (join, then each newer snapshot)
	ChannelsMoved   uint64 // channel subscriptions moved to another broker by a list change
	JoinFailures    uint64 // sccWorkerJoinCluster attempts that failed (retried)
	StateLost       uint64 // connections to scc-state lost (reconnected)
	ConnectFailures uint64 // failed connection attempts to scc-broker instances (retried)

	Brokers  int // scc-broker instances in the current list
	Workers  int // scc-worker instances in the latest worker list
	Channels int // channels this worker needs
	// Unconfirmed counts the channels needed that no broker has confirmed
	// yet (no broker known, broker down, subscription under way): their
	// messages from other instances are missed meanwhile.
	Unconfirmed int
	Joined      bool
}

type counters struct {
	published, publishFailures, noBroker, received, echoDropped, badPackets  atomic.Uint64
	staleDropped                                                             atomic.Uint64
	badState, brokerUpdates, moved, joinFailures, stateLost, connectFailures atomic.Uint64
}

// Broker is a broker.Broker that makes the server an scc-worker of a
// SocketCluster cluster. Create it with New or Open.
type Broker struct {
	stateURL string
	opts     Options
	remoteID [16]byte // envelope id of messages from other instances
	sender   []byte   // JSON string of InstanceID
	log      *logLimiter

	started atomic.Bool
	h       broker.Handler
	state   *client.Client
	ctx     context.Context
	cancel  context.CancelFunc
	wg      sync.WaitGroup
	c       counters

	// moveMu orders deliveries and channel moves: receive holds it (read)
	// from the check that the packet's connection is the channel's own
	// until the messages are delivered, setBrokers (write) while it
	// reassigns channels. So once a channel has moved, nothing from its
	// old connection is delivered after it, and the new connection, which
	// subscribes after the move, delivers only after what the old one
	// delivered.
	moveMu sync.RWMutex

	// listMu orders the cluster's lists: a broker list is compared with
	// the one applied and applied (setBrokers) under it, so that two
	// lists are never applied at once nor in the wrong order, whichever
	// goroutine brings them (the join answer, sccBrokerJoinCluster and
	// sccBrokerLeaveCluster each have their own). Taken before moveMu
	// and mu.
	listMu      sync.Mutex
	brokers     snapshot // the broker list applied (listMu)
	workerSnaps snapshot // the worker list counted (listMu)

	mu         sync.Mutex
	mapper     mapping.Mapper
	uris       []string
	pools      map[string]*pool
	wanted     map[string]*poolClient // channel → the connection it is (to be) subscribed on; nil when no broker
	workers    int                    // written under listMu and mu
	joined     bool                   // written under listMu and mu
	batch      map[string][][]byte
	flushMu    sync.Mutex // one flush at a time, in the order batches were taken
	batchTimer *time.Timer
	closed     bool
}

// snapshot is where a worker stands in scc-state's snapshots of one list
// (brokers or workers): the time of the one applied, whether it came
// with a join answer, and how many have been applied (so that a join
// answer can tell whether an update was applied while it was awaited).
type snapshot struct {
	time     float64
	fromJoin bool
	applied  uint64
}

// newer reports whether an update of time t comes after the snapshot
// applied. A join answer ranks below an update of the same time: scc-state
// answers a join before it sends the updates of that millisecond.
func (s *snapshot) newer(t float64) bool {
	return t > s.time || (s.fromJoin && t == s.time)
}

// joinApplies reports whether a join answer of time t (nil: the answer
// had none), sent when applied was since, replaces the snapshot. As the
// Node worker does, a join starts the ordering again (a new scc-state's
// clock may be behind the old one's), unless an update applied while the
// answer was awaited is at least as new: it came on the same connection
// after the answer was made, and the Node worker, which handles one
// connection's messages in arrival order, would have applied it last.
func (s *snapshot) joinApplies(t *float64, since uint64) bool {
	if s.applied == since {
		return true
	}
	return t != nil && *t > s.time
}

// set records the snapshot of time t (nil: unknown, -1 as the Node
// worker's reset) as applied.
func (s *snapshot) set(t *float64, fromJoin bool) {
	s.time, s.fromJoin = -1, fromJoin
	if t != nil {
		s.time = *t
	}
	s.applied++
}

// Open parses an scc:// URL (ParseURL) and returns a Broker.
func Open(spec string) (*Broker, error) {
	u, o, err := ParseURL(spec)
	if err != nil {
		return nil, err
	}
	return New(u, o)
}

// New returns a Broker that joins the cluster of the scc-state server at
// stateURL (ws://host:port/socketcluster/) when the server starts it.
func New(stateURL string, o Options) (*Broker, error) {
	o.setDefaults()
	m, err := mapping.New(o.MappingEngine)
	if err != nil {
		return nil, err
	}
	u, err := url.Parse(stateURL)
	if err != nil || (u.Scheme != "ws" && u.Scheme != "wss") || u.Host == "" {
		return nil, fmt.Errorf("sccbroker: scc-state URL %q: want ws://host:port/socketcluster/", stateURL)
	}
	b := &Broker{
		stateURL:    stateURL,
		opts:        o,
		mapper:      m,
		brokers:     snapshot{time: -1},
		workerSnaps: snapshot{time: -1},
		pools:       make(map[string]*pool),
		wanted:      make(map[string]*poolClient),
		batch:       make(map[string][][]byte),
		log:         newLogLimiter(o.Logger),
	}
	_, _ = rand.Read(b.remoteID[:])
	b.sender, _ = json.Marshal(o.InstanceID)
	b.ctx, b.cancel = context.WithCancel(context.Background())
	return b, nil
}

// InstanceID returns the worker's id in the cluster.
func (b *Broker) InstanceID() string { return b.opts.InstanceID }

// Stats returns the counters.
func (b *Broker) Stats() Stats {
	b.mu.Lock()
	s := Stats{Brokers: len(b.uris), Workers: b.workers, Channels: len(b.wanted), Joined: b.joined}
	wanted := make(map[string]*poolClient, len(b.wanted))
	for ch, pc := range b.wanted {
		wanted[ch] = pc
	}
	b.mu.Unlock()
	for ch, pc := range wanted {
		if pc == nil || !pc.c.IsSubscribed(ch, false) {
			s.Unconfirmed++
		}
	}
	c := &b.c
	s.Published, s.PublishFailures, s.NoBroker = c.published.Load(), c.publishFailures.Load(), c.noBroker.Load()
	s.Received, s.EchoDropped, s.BadPackets = c.received.Load(), c.echoDropped.Load(), c.badPackets.Load()
	s.StaleDropped = c.staleDropped.Load()
	s.BadStateUpdates, s.BrokerUpdates, s.ChannelsMoved = c.badState.Load(), c.brokerUpdates.Load(), c.moved.Load()
	s.JoinFailures, s.StateLost, s.ConnectFailures = c.joinFailures.Load(), c.stateLost.Load(), c.connectFailures.Load()
	return s
}

// Brokers returns the current scc-broker list.
func (b *Broker) Brokers() []string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return append([]string(nil), b.uris...)
}

// Start implements broker.Broker: it connects to scc-state, retrying
// every RetryDelay for up to StartTimeout (and ctx), and returns once
// connected. A refusal
// by scc-state (a wrong authKey, a version it does not accept) fails at
// once with the state server's error. Joining the cluster and the broker
// connections follow in the background: scc-state refuses workers during
// its start-up delay, and the join is retried every RetryDelay (logged,
// counted in Stats.JoinFailures).
func (b *Broker) Start(ctx context.Context, h broker.Handler) error {
	if !b.started.CompareAndSwap(false, true) {
		return errors.New("sccbroker: Start called twice")
	}
	b.h = h
	q := url.Values{}
	q.Set("authKey", b.opts.AuthKey)
	q.Set("instancePort", strconv.Itoa(b.opts.InstancePort))
	q.Set("instanceType", "scc-worker")
	q.Set("version", ClientVersion)
	st, err := client.New(b.stateURL, &client.Options{
		ConnectTimeout: b.opts.StateConnectTimeout,
		AckTimeout:     b.opts.StateAckTimeout,
		AutoReconnect:  true,
		Reconnect: client.ReconnectOptions{
			InitialDelay: b.opts.RetryDelay,
			Randomness:   time.Second,
			Multiplier:   1,
			MaxDelay:     b.opts.RetryDelay + time.Second,
		},
		Query: q,
	})
	if err != nil {
		return fmt.Errorf("sccbroker: %w", err)
	}
	b.state = st
	connects := client.Listen[client.ConnectEvent](st).Consumer()
	disconnects := client.Listen[client.DisconnectEvent](st).Consumer()
	procs := map[string]*client.Consumer[*client.Request]{}
	for _, name := range []string{"sccBrokerJoinCluster", "sccBrokerLeaveCluster", "sccWorkerJoinCluster", "sccWorkerLeaveCluster"} {
		procs[name] = st.Procedure(name).Consumer()
	}
	b.wg.Add(2 + len(procs))
	go func() {
		defer b.wg.Done()
		for range connects.All(b.ctx) {
			b.wg.Add(1)
			go b.join()
		}
	}()
	go func() {
		defer b.wg.Done()
		for ev := range disconnects.All(b.ctx) {
			if b.ctx.Err() != nil {
				return // our own Close
			}
			// Not a broker outage: messages keep flowing through the
			// brokers of the list, which is kept.
			b.c.stateLost.Add(1)
			b.log.warn("state-lost", "sccbroker: lost the connection to scc-state; reconnecting, the broker list is kept", "state", b.stateURL, "code", ev.Code, "reason", ev.Reason)
		}
	}()
	for name, cons := range procs {
		go func() {
			defer b.wg.Done()
			for req := range cons.All(b.ctx) {
				b.stateUpdate(name, req)
			}
		}()
	}
	deadline := time.NewTimer(b.opts.StartTimeout)
	defer deadline.Stop()
	for {
		cctx, cancel := context.WithTimeout(ctx, b.opts.StateConnectTimeout)
		err = st.Connect(cctx)
		cancel()
		if err == nil {
			return nil
		}
		if refused(err) {
			b.Close()
			return fmt.Errorf("sccbroker: scc-state %s refused this worker (check authKey and the versions it accepts): %w", b.stateURL, err)
		}
		b.c.connectFailures.Add(1)
		b.log.warn("state-connect", "sccbroker: cannot reach scc-state; retrying", "url", b.stateURL, "error", err.Error())
		select {
		case <-ctx.Done():
			b.Close()
			return fmt.Errorf("sccbroker: cannot reach scc-state %s: %w", b.stateURL, err)
		case <-deadline.C:
			b.Close()
			return fmt.Errorf("sccbroker: cannot reach scc-state %s within %s: %w", b.stateURL, b.opts.StartTimeout, err)
		case <-time.After(b.opts.RetryDelay):
		}
	}
}

// refused tells a refusal by the server (an error answer to the
// handshake, or an HTTP error status to the upgrade: a wrong authKey)
// from a failure to reach it.
func refused(err error) bool {
	var scErr *sc.Error
	var status ws.StatusError
	return errors.As(err, &scErr) || (errors.As(err, &status) && status >= 400 && status < 500)
}

// join sends sccWorkerJoinCluster until it succeeds, the state
// connection is lost (the next connection joins again) or Close.
func (b *Broker) join() {
	defer b.wg.Done()
	data := map[string]any{
		"instanceId":       b.opts.InstanceID,
		"instanceIpFamily": b.opts.InstanceIPFamily,
	}
	if b.opts.InstanceIP != "" {
		data["instanceIp"] = b.opts.InstanceIP
	}
	for {
		b.listMu.Lock()
		brokersSince, workersSince := b.brokers.applied, b.workerSnaps.applied
		b.listMu.Unlock()
		ans, err := b.state.Invoke(b.ctx, "sccWorkerJoinCluster", data)
		if err == nil {
			var st joinAnswer
			if err = ans.Decode(&st); err == nil && st.Brokers == nil {
				err = errors.New("the answer has no sccBrokerURIs")
			}
			if err == nil {
				b.applyJoin(st, brokersSince, workersSince)
				return
			}
			b.c.badState.Add(1)
		}
		if b.ctx.Err() != nil {
			return
		}
		b.c.joinFailures.Add(1)
		b.log.warn("join", "sccbroker: joining the cluster failed; retrying", "state", b.stateURL, "error", err.Error())
		b.mu.Lock()
		relaying := len(b.uris) > 0
		b.mu.Unlock()
		if !relaying { // nothing flows until a join gives brokers
			b.h.Status(fmt.Errorf("sccbroker: joining the cluster at %s failed: %w", b.stateURL, err))
		}
		select {
		case <-b.ctx.Done():
			return
		case <-time.After(b.opts.RetryDelay):
		}
		if b.state.State() != client.StateOpen {
			return // the next connect event joins
		}
	}
}

func (b *Broker) o() *Options { return &b.opts }

type joinAnswer struct {
	Brokers []string `json:"sccBrokerURIs"`
	Workers []string `json:"sccWorkerURIs"`
	Time    *float64 `json:"time"`
}

// applyJoin applies the answer to sccWorkerJoinCluster, unless an update
// at least as new was applied since the join was sent (brokersSince,
// workersSince: the counts of lists applied then). The answer and the
// updates are handled by different goroutines, so an update scc-state
// sent after the answer may be handled first.
func (b *Broker) applyJoin(st joinAnswer, brokersSince, workersSince uint64) {
	b.listMu.Lock()
	defer b.listMu.Unlock()
	if b.workerSnaps.joinApplies(st.Time, workersSince) {
		b.workerSnaps.set(st.Time, true)
		b.mu.Lock()
		b.workers = len(st.Workers)
		b.mu.Unlock()
	}
	kept := !b.brokers.joinApplies(st.Time, brokersSince)
	if !kept {
		b.brokers.set(st.Time, true)
		b.setBrokers(st.Brokers)
	}
	b.mu.Lock()
	b.joined = true
	b.mu.Unlock()
	b.o().Logger.Info("sccbroker: joined the cluster", "state", b.stateURL, "brokers", len(st.Brokers), "instanceId", b.opts.InstanceID, "newerListKept", kept)
}

// stateUpdate handles scc-state's calls: newer broker snapshots replace
// the broker list; worker snapshots are counted only.
func (b *Broker) stateUpdate(name string, req *client.Request) {
	defer func() { _ = req.End(sc.Undefined) }()
	var up struct {
		Brokers []string `json:"sccBrokerURIs"`
		Workers []string `json:"sccWorkerURIs"`
		Time    *float64 `json:"time"`
	}
	if err := req.Data.Decode(&up); err != nil || up.Time == nil {
		b.c.badState.Add(1)
		b.log.warn("bad-state", "sccbroker: ignored a cluster update without a valid list and time", "procedure", name, "data", truncate(req.Data))
		return
	}
	b.listMu.Lock()
	defer b.listMu.Unlock()
	switch name {
	case "sccBrokerJoinCluster", "sccBrokerLeaveCluster":
		if up.Brokers == nil {
			b.c.badState.Add(1)
			return
		}
		if !b.brokers.newer(*up.Time) {
			return
		}
		b.brokers.set(up.Time, false)
		b.setBrokers(up.Brokers)
	default:
		if b.workerSnaps.newer(*up.Time) {
			b.workerSnaps.set(up.Time, false)
			b.mu.Lock()
			b.workers = len(up.Workers)
			b.mu.Unlock()
		}
	}
}

func truncate(d sc.Data) string {
	if len(d) > 200 {
		return string(d[:200]) + "…"
	}
	return string(d)
}

// setBrokers applies a broker list, with listMu held: connections to new
// brokers are made, those to brokers that left are closed, and every
// channel is subscribed on the connection the mapping now gives it. From
// then on, what a moved channel's old connection still brings is dropped
// (receive), even before that connection's loop has unsubscribed it.
func (b *Broker) setBrokers(uris []string) {
	b.c.brokerUpdates.Add(1)
	b.moveMu.Lock() // not held while closing connections: their readers may wait for it
	b.mu.Lock()
	if b.closed {
		b.mu.Unlock()
		b.moveMu.Unlock()
		return
	}
	b.uris = append([]string(nil), uris...)
	b.mapper.SetSites(b.uris)
	keep := make(map[string]bool, len(uris))
	for _, u := range uris {
		keep[u] = true
		if b.pools[u] == nil {
			b.pools[u] = b.newPool(u)
		}
	}
	var gone []*pool
	for u, p := range b.pools {
		if !keep[u] {
			gone = append(gone, p)
			delete(b.pools, u)
		}
	}
	for ch, was := range b.wanted {
		now := b.targetLocked(ch)
		if now == was {
			continue
		}
		if was != nil {
			delete(was.wanted, ch)
			was.kick()
		}
		if now != nil {
			now.wanted[ch] = struct{}{}
			now.kick()
		}
		b.wanted[ch] = now
		b.c.moved.Add(1)
	}
	b.mu.Unlock()
	b.moveMu.Unlock()
	for _, p := range gone {
		p.close()
	}
	b.o().Logger.Info("sccbroker: broker list", "brokers", uris)
	if len(uris) == 0 {
		b.h.Status(fmt.Errorf("sccbroker: the cluster of scc-state %s has no scc-broker: publishes reach this instance only", b.stateURL))
	} else {
		b.h.Status(nil)
	}
}

// targetLocked is the connection of a channel: the pool of the mapped
// broker, the client of the channel's hash in it.
func (b *Broker) targetLocked(channel string) *poolClient {
	uri, ok := b.mapper.FindSite(channel)
	if !ok {
		return nil
	}
	p := b.pools[uri]
	if p == nil || len(p.clients) == 0 {
		return nil
	}
	return p.clients[mapping.HashToIndex(channel, len(p.clients))]
}

// Subscribe implements broker.Broker. The channel is subscribed on its
// broker's connection; when that connection is open, Subscribe waits for
// the broker's confirmation at most BrokerAckTimeout (and ctx). A broker
// that is down or not yet known does not fail the call: the subscription
// is made once it is reachable (SCC is best effort, as with the Node
// workers, which never wait).
func (b *Broker) Subscribe(ctx context.Context, channels []string) error {
	type sub struct {
		ch string
		pc *poolClient
	}
	var todo []sub
	b.mu.Lock()
	if b.closed {
		b.mu.Unlock()
		return errors.New("sccbroker: closed")
	}
	for _, ch := range channels {
		if _, ok := b.wanted[ch]; ok {
			continue
		}
		pc := b.targetLocked(ch)
		b.wanted[ch] = pc
		if pc != nil {
			pc.wanted[ch] = struct{}{}
			todo = append(todo, sub{ch, pc})
		}
	}
	b.mu.Unlock()
	for _, s := range todo {
		if s.pc.c.State() != client.StateOpen {
			s.pc.kick() // its loop subscribes once connected
			continue
		}
		sctx, cancel := context.WithTimeout(ctx, b.opts.BrokerAckTimeout)
		_, err := s.pc.c.Subscribe(sctx, s.ch)
		cancel()
		if err != nil && !errors.Is(err, context.DeadlineExceeded) && !errors.Is(err, client.ErrClosed) {
			b.log.warn("subscribe", "sccbroker: subscription refused by scc-broker", "broker", s.pc.p.uri, "channel", s.ch, "error", err.Error())
		}
		b.mu.Lock()
		_, still := s.pc.wanted[s.ch]
		b.mu.Unlock()
		if !still {
			// The channel moved (or was unsubscribed) while this
			// subscription was being made, perhaps after the
			// connection's loop had synced: it syncs again and drops it.
			s.pc.kick()
		}
	}
	return ctx.Err()
}

// Unsubscribe implements broker.Broker.
func (b *Broker) Unsubscribe(ctx context.Context, channels []string) error {
	type unsub struct {
		ch string
		pc *poolClient
	}
	var todo []unsub
	b.mu.Lock()
	for _, ch := range channels {
		pc, ok := b.wanted[ch]
		if !ok {
			continue
		}
		delete(b.wanted, ch)
		if pc != nil {
			delete(pc.wanted, ch)
			todo = append(todo, unsub{ch, pc})
		}
	}
	b.mu.Unlock()
	for _, u := range todo {
		if ch := u.pc.c.Channel(u.ch); ch != nil {
			_ = ch.Unsubscribe()
		}
	}
	return nil
}

// Publish implements broker.Broker: payload is the hub's envelope (16
// bytes of instance id, then the data's JSON). The data is sent to the
// channel's broker in a {sender, messages} packet, at once or with the
// next batch. Publish returns once the packet is written (or queued while
// the broker connection is re-established); a broker that does not
// acknowledge it is counted in Stats.PublishFailures.
func (b *Broker) Publish(ctx context.Context, channel string, payload []byte) error {
	data := messageData(payload)
	if b.opts.PubSubBatchDuration > 0 {
		b.mu.Lock()
		if b.closed {
			b.mu.Unlock()
			return errors.New("sccbroker: closed")
		}
		b.batch[channel] = append(b.batch[channel], append([]byte(nil), data...))
		if b.batchTimer == nil {
			b.batchTimer = time.AfterFunc(b.opts.PubSubBatchDuration, b.flush)
		}
		b.mu.Unlock()
		return nil
	}
	return b.send(channel, [][]byte{data})
}

var _ broker.BatchPublisher = (*Broker)(nil)

// PublishBatch implements broker.BatchPublisher: the publishes the server
// had queued are sent as one {sender, messages} packet per channel, in
// order, which adds no delay (unlike PubSubBatchDuration) and saves the
// brokers and the other workers a packet per message under load.
func (b *Broker) PublishBatch(ctx context.Context, msgs []broker.Message) []error {
	if b.opts.PubSubBatchDuration > 0 || len(msgs) == 1 {
		var errs []error
		for i, m := range msgs {
			if err := b.Publish(ctx, m.Channel, m.Payload); err != nil {
				if errs == nil {
					errs = make([]error, len(msgs))
				}
				errs[i] = err
			}
		}
		return errs
	}
	var order []string
	byChannel := make(map[string][]int, len(msgs))
	for i, m := range msgs {
		if _, ok := byChannel[m.Channel]; !ok {
			order = append(order, m.Channel)
		}
		byChannel[m.Channel] = append(byChannel[m.Channel], i)
	}
	var errs []error
	for _, ch := range order {
		idx := byChannel[ch]
		data := make([][]byte, len(idx))
		for k, i := range idx {
			data[k] = messageData(msgs[i].Payload)
		}
		if err := b.send(ch, data); err != nil {
			if errs == nil {
				errs = make([]error, len(msgs))
			}
			for _, i := range idx {
				errs[i] = err
			}
		}
	}
	return errs
}

// messageData is the data of a hub envelope as it goes in messages.
func messageData(payload []byte) []byte {
	var data []byte
	if len(payload) >= 16 {
		data = payload[16:]
	}
	if len(data) == 0 {
		return []byte("null") // undefined in an array is null in JSON
	}
	return data
}

// flush sends the batched messages, one packet per channel. Flushes are
// serialised (flushMu): a timer started while an earlier flush is still
// sending must not overtake it, or a channel's messages would be
// reordered.
func (b *Broker) flush() {
	b.flushMu.Lock()
	defer b.flushMu.Unlock()
	b.mu.Lock()
	batch := b.batch
	b.batch = make(map[string][][]byte)
	b.batchTimer = nil
	b.mu.Unlock()
	for ch, msgs := range batch {
		_ = b.send(ch, msgs)
	}
}

// packet encodes {"sender":…,"messages":[…]}.
func (b *Broker) packet(msgs [][]byte) sc.Data {
	n := 32 + len(b.sender)
	for _, m := range msgs {
		n += len(m) + 1
	}
	out := make([]byte, 0, n)
	out = append(out, `{"sender":`...)
	out = append(out, b.sender...)
	out = append(out, `,"messages":[`...)
	for i, m := range msgs {
		if i > 0 {
			out = append(out, ',')
		}
		out = append(out, m...)
	}
	return append(out, "]}"...)
}

func (b *Broker) send(channel string, msgs [][]byte) error {
	b.mu.Lock()
	pc := b.targetLocked(channel)
	b.mu.Unlock()
	if pc == nil {
		b.c.noBroker.Add(uint64(len(msgs)))
		return fmt.Errorf("%w %q (scc-state %s lists none)", ErrNoBroker, channel, b.stateURL)
	}
	n := uint64(len(msgs))
	pc.pubMu.Lock() // one packet after the other: per-channel order
	err := pc.c.InvokePublishAsync(channel, b.packet(msgs), func(err error) {
		if err != nil {
			b.c.publishFailures.Add(n)
			b.log.warn("publish", "sccbroker: publish not acknowledged by scc-broker", "broker", pc.p.uri, "channel", channel, "error", err.Error())
		}
	})
	pc.pubMu.Unlock()
	if err != nil {
		b.c.publishFailures.Add(n)
		return fmt.Errorf("sccbroker: publish to %s: %w", pc.p.uri, err)
	}
	b.c.published.Add(n)
	return nil
}

// receive handles a publish from a broker on connection pc: {sender,
// messages} from another worker is delivered message by message; our own
// is dropped, and so is what comes on a connection the channel is no
// longer assigned to (moveMu). data is valid JSON (the client parsed the
// frame), read without decoding.
func (b *Broker) receive(pc *poolClient, channel string, data sc.Data) {
	var sender, msgs []byte
	isObject := wire.Object(data, func(k string, v []byte) {
		switch k {
		case "sender":
			sender = v
		case "messages":
			msgs = v
		}
	})
	if !isObject || len(msgs) == 0 || msgs[0] != '[' {
		b.c.badPackets.Add(1)
		b.log.warn("bad-packet", "sccbroker: dropped a packet that is not {sender, messages}", "channel", channel, "data", truncate(data))
		return
	}
	if b.own(sender) {
		wire.Array(msgs, func([]byte) { b.c.echoDropped.Add(1) })
		return
	}
	b.moveMu.RLock()
	defer b.moveMu.RUnlock()
	b.mu.Lock()
	current := b.wanted[channel] == pc
	b.mu.Unlock()
	if !current {
		wire.Array(msgs, func([]byte) { b.c.staleDropped.Add(1) })
		return
	}
	wire.Array(msgs, func(m []byte) {
		env := make([]byte, 16+len(m))
		copy(env, b.remoteID[:])
		copy(env[16:], m)
		b.c.received.Add(1)
		b.h.Deliver(channel, env)
	})
}

// own reports whether a packet's raw sender is this worker's id.
func (b *Broker) own(sender []byte) bool {
	if bytes.Equal(sender, b.sender) {
		return true
	}
	if len(sender) == 0 || sender[0] != '"' || bytes.IndexByte(sender, '\\') < 0 {
		return false
	}
	s, ok := wire.Unquote(sender) // the same id written with escapes
	return ok && s == b.opts.InstanceID
}

// Close implements broker.Broker.
func (b *Broker) Close() error {
	b.mu.Lock()
	if b.closed {
		b.mu.Unlock()
		return nil
	}
	b.closed = true
	if b.batchTimer != nil {
		b.batchTimer.Stop()
	}
	pools := b.pools
	b.pools = map[string]*pool{}
	b.mu.Unlock()
	b.cancel()
	if b.state != nil {
		_ = b.state.Close(1000, "")
	}
	for _, p := range pools {
		p.close()
	}
	b.wg.Wait()
	return nil
}
