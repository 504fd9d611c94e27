package redisbroker

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"strconv"
	"time"

	"github.com/redis/rueidis"

	"github.com/socketcluster-go/socketcluster/broker/internal/dqueue"
	"github.com/socketcluster-go/socketcluster/broker/internal/hseq"
)

// pconn is one pub/sub connection: to the Redis (standalone, Sentinel), or
// to one cluster master.
type pconn struct {
	key  string // "" for the single connection, else the node address
	dc   rueidis.DedicatedClient
	subs map[string]struct{} // hub channels subscribed on it (manager-owned)
}

type failEvent struct {
	pc  *pconn
	err error
}

type noteEvent struct {
	pc      *pconn
	channel string // hub name
}

// manager owns the pub/sub connections and the subscription state on Redis.
// Everything in it is touched by the manager goroutine only (and by Start
// before that goroutine runs), so that SUBSCRIBE/UNSUBSCRIBE commands go out
// in the order the hub asked for them.
type manager struct {
	b       *Broker
	cluster bool

	conns map[string]*pconn
	where map[string]*pconn // hub channel → connection it is subscribed on

	slots       []string                  // cluster: slot → master address
	masters     []string                  // cluster: master addresses, in slot order
	nodeClients map[string]rueidis.Client // cluster: one client per node

	healthy bool
	lastErr error
	backoff time.Duration
	retry   *time.Timer
	retryC  <-chan time.Time

	overflowShown bool
}

func newManager(b *Broker) *manager {
	return &manager{
		b:           b,
		conns:       make(map[string]*pconn),
		where:       make(map[string]*pconn),
		nodeClients: make(map[string]rueidis.Client),
	}
}

func (m *manager) run() {
	defer m.b.wg.Done()
	defer m.shutdown()
	b := m.b
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	for {
		select {
		case <-b.ctx.Done():
			return
		case <-b.kick:
			m.checkOverflow()
			if b.resync.Swap(false) && m.healthy {
				m.resyncAll()
			}
			m.processPending()
		case f := <-b.fails:
			m.connFailed(f.pc, f.err)
		case n := <-b.notes:
			m.serverUnsubscribed(n)
		case <-m.retryC:
			m.retryC = nil
			m.recover()
		case <-tick.C:
			m.checkOverflow()
			if b.seqStale.Load() {
				b.q.Push(dqueue.Item{Kind: hseq.KindRetry})
			}
		}
	}
}

// shutdown closes every connection; the manager is not used afterwards.
func (m *manager) shutdown() {
	for _, pc := range m.conns {
		pc.dc.Close()
	}
	clear(m.conns)
	clear(m.where)
	for _, c := range m.nodeClients {
		c.Close()
	}
	clear(m.nodeClients)
	if m.retry != nil {
		m.retry.Stop()
	}
}

// status reports to the hub; called from the manager goroutine only, so
// reports are never concurrent and come in order.
func (m *manager) status(err error) {
	if m.b.ctx.Err() == nil {
		m.b.h.Status(err)
	}
}

func (m *manager) checkOverflow() {
	b := m.b
	switch {
	case !m.overflowShown && b.overflow.Load():
		m.overflowShown = true
		m.status(dqueue.OverflowError(ErrOverflow, b.q.Dropped()))
	case m.overflowShown && b.q.Low():
		m.overflowShown = false
		b.overflow.Store(false)
		if m.healthy {
			m.status(nil)
		}
	}
}

// processPending applies the channels changed by Subscribe/Unsubscribe
// since the last call and answers the waiting calls.
func (m *manager) processPending() {
	b := m.b
	b.mu.Lock()
	dirty, waiters := b.dirty, b.waiters
	b.dirty, b.waiters = make(map[string]struct{}), nil
	desired := make(map[string]bool, len(dirty))
	for ch := range dirty {
		_, ok := b.want[ch]
		desired[ch] = ok
	}
	b.mu.Unlock()
	if len(desired) == 0 && len(waiters) == 0 {
		return
	}
	var err error
	if !m.healthy {
		// Applied by the full resubscription after reconnection.
		err = m.notConnected()
	} else if err = m.reconcile(b.ctx, desired); err != nil {
		if isConnErr(err) {
			m.unhealthy(err)
		}
		err = fmt.Errorf("redisbroker: on %s: %w", b.url, err)
	}
	for _, w := range waiters {
		w.answer(err)
	}
}

func (m *manager) notConnected() error {
	return fmt.Errorf("%w to %s (the change is applied on reconnection): %w", ErrNotConnected, m.b.url, m.lastErr)
}

// resubscribeAll makes Redis match what the hub needs: Handler.Channels
// (added to the wanted set) plus what Subscribe asked for. It runs at Start
// and after each reconnection.
func (m *manager) resubscribeAll(ctx context.Context) error {
	b := m.b
	if m.cluster {
		if err := m.refreshTopology(ctx); err != nil {
			return err
		}
	}
	// Outside b.mu: the hub may take its own locks, or even call Subscribe.
	b.inChannels.Store(true)
	chs := b.h.Channels()
	b.inChannels.Store(false)
	b.mu.Lock()
	for _, ch := range chs {
		b.want[ch] = struct{}{}
	}
	desired := make(map[string]bool, len(b.want)+len(m.where))
	for ch := range b.want {
		desired[ch] = true
	}
	for ch := range m.where {
		if _, ok := b.want[ch]; !ok {
			desired[ch] = false
		}
	}
	clear(b.dirty)
	waiters := b.waiters
	b.waiters = nil
	b.mu.Unlock()
	if m.cluster && !b.opts.Sharded && len(desired) == 0 {
		// Nothing to subscribe yet; still check that a node is reachable.
		if _, err := m.connFor(ctx, ""); err != nil {
			return err
		}
	}
	var wanted []string
	for ch, w := range desired {
		if w {
			wanted = append(wanted, ch)
		}
	}
	err := b.startPositions(ctx, wanted)
	if err != nil {
		err = connErr{err}
	} else {
		err = m.reconcile(ctx, desired)
	}
	if err == nil {
		b.queueCatchUp(ctx, wanted)
	}
	if err == nil && !m.cluster {
		// Open the connection even with nothing to subscribe, so that an
		// unreachable server is noticed now.
		_, err = m.connFor(ctx, "")
	}
	werr := err
	if isConnErr(err) {
		// Calls made during an outage fail with ErrNotConnected, even when
		// a reconnection attempt is what answers them: the channels stay
		// wanted and are applied on reconnection.
		werr = fmt.Errorf("%w to %s (the change is applied on reconnection): %w", ErrNotConnected, b.url, err)
	}
	for _, w := range waiters {
		w.answer(werr)
	}
	return err
}

// resyncAll re-checks every channel after a server-side unsubscription
// notice was lost.
func (m *manager) resyncAll() {
	for ch, pc := range m.where {
		delete(pc.subs, ch)
		delete(m.where, ch)
	}
	m.b.mu.Lock()
	for ch := range m.b.want {
		m.b.dirty[ch] = struct{}{}
	}
	m.b.mu.Unlock()
	if m.cluster {
		ctx, cancel := context.WithTimeout(m.b.ctx, m.b.opts.OpTimeout)
		defer cancel()
		if err := m.refreshTopology(ctx); err != nil {
			m.unhealthy(err)
		}
	}
}

// reconcile subscribes and unsubscribes so that, for each channel in
// desired, Redis has it subscribed (true) or not (false), on the right
// connection. Commands for one connection go in one pipeline. After a
// MOVED reply (the cluster changed under us) it learns the new layout and
// makes one more pass.
func (m *manager) reconcile(ctx context.Context, desired map[string]bool) error {
	moved, err := m.reconcilePass(ctx, desired)
	if moved && ctx.Err() == nil {
		if err := m.refreshTopology(ctx); err != nil {
			return err
		}
		_, err = m.reconcilePass(ctx, desired)
	}
	return err
}

func (m *manager) reconcilePass(ctx context.Context, desired map[string]bool) (moved bool, firstErr error) {
	type plan struct{ sub, unsub []string }
	plans := make(map[*pconn]*plan)
	get := func(pc *pconn) *plan {
		p := plans[pc]
		if p == nil {
			p = &plan{}
			plans[pc] = p
		}
		return p
	}
	keep := func(err error) {
		moved = moved || isMoved(err)
		if firstErr == nil || isConnErr(err) && !isConnErr(firstErr) {
			firstErr = err
		}
	}
	for ch, wanted := range desired {
		cur := m.where[ch]
		var tgt *pconn
		if wanted {
			var err error
			if tgt, err = m.connFor(ctx, ch); err != nil {
				keep(err)
				continue
			}
		}
		if cur == tgt {
			continue
		}
		if cur != nil {
			p := get(cur)
			p.unsub = append(p.unsub, ch)
		}
		if tgt != nil {
			p := get(tgt)
			p.sub = append(p.sub, ch)
		}
	}
	for pc, p := range plans {
		if err := m.exec(ctx, pc, p.unsub, false); err != nil {
			keep(err)
		}
		if err := m.exec(ctx, pc, p.sub, true); err != nil {
			keep(err)
		}
	}
	return moved, firstErr
}

// exec sends (S)SUBSCRIBE or (S)UNSUBSCRIBE commands for chs on pc, in
// one pipeline, and records what Redis confirmed.
func (m *manager) exec(ctx context.Context, pc *pconn, chs []string, sub bool) error {
	if len(chs) == 0 {
		return nil
	}
	b := m.b
	groups := m.group(chs)
	cmds := make(rueidis.Commands, 0, len(groups))
	for _, g := range groups {
		names := make([]string, len(g))
		for i, ch := range g {
			names[i] = b.opts.Prefix + ch
		}
		bd := pc.dc.B()
		switch {
		case sub && b.opts.Sharded:
			cmds = append(cmds, bd.Ssubscribe().Channel(names...).Build())
		case sub:
			cmds = append(cmds, bd.Subscribe().Channel(names...).Build())
		case b.opts.Sharded:
			cmds = append(cmds, bd.Sunsubscribe().Channel(names...).Build())
		default:
			cmds = append(cmds, bd.Unsubscribe().Channel(names...).Build())
		}
	}
	ctx, cancel := context.WithTimeout(ctx, b.opts.OpTimeout)
	defer cancel()
	res := pc.dc.DoMulti(ctx, cmds...)
	var firstErr error
	for i, r := range res {
		if err := r.Error(); err != nil {
			if firstErr == nil || isConnErr(err) && !isConnErr(firstErr) {
				firstErr = err
			}
			continue
		}
		for _, ch := range groups[i] {
			if sub {
				m.where[ch] = pc
				pc.subs[ch] = struct{}{}
			} else {
				delete(m.where, ch)
				delete(pc.subs, ch)
			}
		}
	}
	if firstErr != nil && isConnErr(firstErr) {
		m.dropConn(pc)
	}
	return firstErr
}

// group splits chs into command-sized groups; in cluster sharded mode
// every group is within one slot, as Redis Cluster requires.
func (m *manager) group(chs []string) [][]string {
	max := m.b.opts.SubscribeBatch
	var out [][]string
	if m.cluster && m.b.opts.Sharded {
		bySlot := make(map[uint16][]string)
		var order []uint16
		for _, ch := range chs {
			s := slotOf(m.b.opts.Prefix + ch)
			if _, ok := bySlot[s]; !ok {
				order = append(order, s)
			}
			bySlot[s] = append(bySlot[s], ch)
		}
		for _, s := range order {
			g := bySlot[s]
			for len(g) > max {
				out = append(out, g[:max])
				g = g[max:]
			}
			out = append(out, g)
		}
		return out
	}
	for len(chs) > max {
		out = append(out, chs[:max])
		chs = chs[max:]
	}
	return append(out, chs)
}

// connFor returns the connection channel ch belongs on, opening it if
// needed.
func (m *manager) connFor(ctx context.Context, ch string) (*pconn, error) {
	b := m.b
	key := ""
	if m.cluster && b.opts.Sharded {
		key = m.slots[slotOf(b.opts.Prefix+ch)]
		if key == "" {
			return nil, fmt.Errorf("no cluster node serves the slot of channel %q", ch)
		}
	}
	if pc := m.conns[key]; pc != nil {
		return pc, nil
	}
	var pc *pconn
	var err error
	switch {
	case !m.cluster:
		pc, err = m.open(ctx, "", *b.client.Load())
	case key != "":
		var c rueidis.Client
		if c, err = m.nodeClient(key); err == nil {
			pc, err = m.open(ctx, key, c)
		}
	default: // cluster, classic pub/sub: any master hears every PUBLISH
		err = errors.New("no cluster node")
		for _, addr := range m.masters {
			var c rueidis.Client
			if c, err = m.nodeClient(addr); err == nil {
				if pc, err = m.open(ctx, "", c); err == nil {
					break
				}
			}
		}
	}
	if err != nil {
		return nil, connErr{err}
	}
	m.conns[key] = pc
	return pc, nil
}

// open makes a new pub/sub connection through client.
func (m *manager) open(ctx context.Context, key string, client rueidis.Client) (*pconn, error) {
	b := m.b
	dc, _ := client.Dedicate() // dc.Close also gives it back
	pc := &pconn{key: key, dc: dc, subs: make(map[string]struct{})}
	errc := dc.SetPubSubHooks(rueidis.PubSubHooks{
		OnMessage: b.onMessage,
		OnSubscription: func(s rueidis.PubSubSubscription) {
			// Redis Cluster unsubscribes sharded channels by itself when
			// their slot moves to another node.
			if s.Kind == "sunsubscribe" {
				if ch, ok := cutPrefix(s.Channel, b.opts.Prefix); ok {
					select {
					case b.notes <- noteEvent{pc: pc, channel: ch}:
					default:
						b.resync.Store(true)
						b.poke()
					}
				}
			}
		},
	})
	ctx, cancel := context.WithTimeout(ctx, b.opts.OpTimeout)
	defer cancel()
	if err := dc.Do(ctx, dc.B().Ping().Build()).Error(); err != nil {
		dc.Close()
		return nil, err
	}
	b.wg.Add(1)
	go func() {
		defer b.wg.Done()
		err, ok := <-errc
		if !ok || err == nil {
			err = errors.New("pub/sub connection closed")
		}
		select {
		case b.fails <- failEvent{pc: pc, err: err}:
		case <-b.ctx.Done():
		}
	}()
	return pc, nil
}

func cutPrefix(s, prefix string) (string, bool) {
	if len(s) < len(prefix) || s[:len(prefix)] != prefix {
		return "", false
	}
	return s[len(prefix):], true
}

func (m *manager) nodeClient(addr string) (rueidis.Client, error) {
	if c := m.nodeClients[addr]; c != nil {
		return c, nil
	}
	opt := m.b.copt
	opt.InitAddress = []string{addr}
	opt.ForceSingleClient = true
	opt.Sentinel = rueidis.SentinelOption{}
	c, err := rueidis.NewClient(opt)
	if err != nil {
		return nil, fmt.Errorf("node %s: %w", addr, err)
	}
	m.nodeClients[addr] = c
	return c, nil
}

// dropConn forgets a broken connection and what was subscribed on it.
func (m *manager) dropConn(pc *pconn) {
	if m.conns[pc.key] != pc {
		return
	}
	delete(m.conns, pc.key)
	for ch := range pc.subs {
		if m.where[ch] == pc {
			delete(m.where, ch)
		}
	}
	clear(pc.subs)
	pc.dc.Close()
}

func (m *manager) connFailed(pc *pconn, err error) {
	if m.conns[pc.key] != pc {
		return // already replaced
	}
	m.dropConn(pc)
	m.unhealthy(connErr{err})
}

// unhealthy records an outage: reported once, then retried with back-off
// until resubscribeAll succeeds.
func (m *manager) unhealthy(err error) {
	m.lastErr = err
	if m.healthy {
		m.healthy = false
		m.backoff = 0
		m.status(fmt.Errorf("redisbroker: connection to %s lost: %w", m.b.url, err))
	}
	m.schedule()
}

func (m *manager) schedule() {
	if m.retryC != nil {
		return
	}
	d := m.backoff
	if d > 0 {
		d = time.Duration(float64(d) * (0.8 + 0.4*rand.Float64()))
	}
	if m.retry == nil {
		m.retry = time.NewTimer(d)
	} else {
		m.retry.Reset(d)
	}
	m.retryC = m.retry.C
}

// recover tries to reconnect and resubscribe everything.
func (m *manager) recover() {
	b := m.b
	ctx, cancel := context.WithTimeout(b.ctx, 2*b.opts.OpTimeout)
	defer cancel()
	err := m.resubscribeAll(ctx)
	if err == nil {
		m.healthy = true
		m.backoff = 0
		m.lastErr = nil
		if !m.overflowShown {
			m.status(nil)
		}
		return
	}
	if b.ctx.Err() != nil {
		return
	}
	m.lastErr = err
	m.backoff = min(max(2*m.backoff, b.opts.MinBackoff), b.opts.MaxBackoff)
	m.schedule()
}

// serverUnsubscribed handles a sunsubscribe notice: if it was not ours
// (the channel is still wanted there), the slot moved; resubscribe.
func (m *manager) serverUnsubscribed(n noteEvent) {
	if m.where[n.channel] != n.pc || m.conns[n.pc.key] != n.pc {
		return
	}
	m.b.mu.RLock()
	_, wanted := m.b.want[n.channel]
	m.b.mu.RUnlock()
	if !wanted {
		return // ours, or about to be
	}
	delete(m.where, n.channel)
	delete(n.pc.subs, n.channel)
	if m.cluster {
		ctx, cancel := context.WithTimeout(m.b.ctx, m.b.opts.OpTimeout)
		err := m.refreshTopology(ctx)
		cancel()
		if err != nil {
			m.unhealthy(err)
			return
		}
	}
	m.b.mu.Lock()
	m.b.dirty[n.channel] = struct{}{}
	m.b.mu.Unlock()
	m.b.poke()
}

// refreshTopology reads the slot layout of the cluster (CLUSTER SLOTS).
func (m *manager) refreshTopology(ctx context.Context) error {
	c := *m.b.client.Load()
	ctx, cancel := context.WithTimeout(ctx, m.b.opts.OpTimeout)
	defer cancel()
	entries, err := c.Do(ctx, c.B().ClusterSlots().Build()).ToArray()
	if err != nil {
		return connErr{fmt.Errorf("CLUSTER SLOTS: %w", err)}
	}
	slots := make([]string, slotCount)
	var masters []string
	seen := map[string]bool{}
	for _, e := range entries {
		v, err := e.ToArray()
		if err != nil || len(v) < 3 {
			continue
		}
		start, err1 := v[0].AsInt64()
		end, err2 := v[1].AsInt64()
		node, err3 := v[2].ToArray()
		if err1 != nil || err2 != nil || err3 != nil || len(node) < 2 || start < 0 || end >= slotCount || start > end {
			continue
		}
		host, _ := node[0].ToString()
		port, err := node[1].AsInt64()
		if err != nil {
			continue
		}
		if host == "" || host == "?" {
			host, _, _ = net.SplitHostPort(m.b.copt.InitAddress[0])
		}
		addr := net.JoinHostPort(host, strconv.FormatInt(port, 10))
		for s := start; s <= end; s++ {
			slots[s] = addr
		}
		if !seen[addr] {
			seen[addr] = true
			masters = append(masters, addr)
		}
	}
	if len(masters) == 0 {
		return connErr{errors.New("CLUSTER SLOTS: no master serves any slot")}
	}
	m.slots, m.masters = slots, masters
	// Connections to nodes that are no longer masters are dropped; their
	// channels get resubscribed where they now belong.
	for key, pc := range m.conns {
		if key != "" && !seen[key] {
			m.dropConn(pc)
		}
	}
	return nil
}

// connErr marks an error of the connection (as opposed to a command error
// such as MOVED or NOPERM).
type connErr struct{ err error }

func (e connErr) Error() string { return e.err.Error() }
func (e connErr) Unwrap() error { return e.err }

func isConnErr(err error) bool {
	if err == nil {
		return false
	}
	var ce connErr
	if errors.As(err, &ce) {
		return true
	}
	var re *rueidis.RedisError
	return !errors.As(err, &re)
}

func isMoved(err error) bool {
	var re *rueidis.RedisError
	if errors.As(err, &re) {
		_, moved := re.IsMoved()
		_, ask := re.IsAsk()
		return moved || ask
	}
	return false
}
