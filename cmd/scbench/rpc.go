//go:build linux

package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"strconv"
	"sync/atomic"
	"time"
)

type rpcConfig struct {
	n         int
	inflight  int
	rate      float64
	procedure string
	size      int
	duration  time.Duration
	warmup    time.Duration
	drain     time.Duration
}

func rpcFlags(fs *flag.FlagSet) runFunc {
	c := &rpcConfig{}
	fs.IntVar(&c.n, "n", 100, "number of clients")
	fs.IntVar(&c.inflight, "inflight", 10, "calls in flight per client (with -rate: each client's calls take its -inflight slots in turn, and a call whose slot still waits for an answer is skipped)")
	fs.Float64Var(&c.rate, "rate", 0, "open loop: this many `calls/s` in all, on a fixed schedule, round-robin over the clients, latency counted from each call's scheduled time (0: closed loop, every answer sends the next call)")
	fs.StringVar(&c.procedure, "procedure", "echo", "procedure invoked; its data is a string of -size bytes")
	fs.IntVar(&c.size, "size", 16, "payload `bytes` per call")
	fs.DurationVar(&c.duration, "duration", 10*time.Second, "measured time")
	fs.DurationVar(&c.warmup, "warmup", time.Second, "calls before the measurement (not counted)")
	fs.DurationVar(&c.drain, "drain", 3*time.Second, "after the measurement, wait at most this long for the calls in flight")
	return func(ctx context.Context, t *Target) (*Result, error) {
		return runRPC(ctx, t, c)
	}
}

type rpcRun struct {
	cfg      *rpcConfig
	t        *Target
	stats    connStats
	clients  []rpcClient
	hist     atomic.Pointer[Hist]
	stopping atomic.Bool
	prefix   []byte // {"event":"echo","data":"xxxx","cid":
}

// rpcClient keeps inflight calls going: slot s carries the calls with cid
// s+1, s+1+K, s+1+2K, ... (K = inflight), and every response sends the
// slot's next call from the reader goroutine. With -rate (open loop) the
// pacer sends the calls instead: slot s is free (cidOf 0) once its call
// was answered, and a response sends nothing.
type rpcClient struct {
	run         *rpcRun
	k           int64
	cidOf       []atomic.Int64
	sentAt      []atomic.Int64
	frame       []byte
	completed   atomic.Int64
	errs        atomic.Int64
	outstanding atomic.Int64
	nextCid     int64 // open loop: the pacer's, the last cid sent
}

func appendCall(dst, prefix []byte, cid int64) []byte {
	dst = append(dst, prefix...)
	dst = strconv.AppendInt(dst, cid, 10)
	return append(dst, '}')
}

func (k *rpcClient) OnResponse(c *Conn, rid int64, isErr bool, now int64) {
	r := k.run
	if rid < 1 {
		r.stats.others.Add(1)
		return
	}
	slot := (rid - 1) % k.k
	if k.cidOf[slot].Load() != rid {
		r.stats.others.Add(1)
		return
	}
	r.hist.Load().Record(c.ID, now-k.sentAt[slot].Load())
	k.completed.Add(1)
	if isErr && k.errs.Add(1) == 1 {
		r.t.progress("rpc: the server answered %q with an error", r.cfg.procedure)
	}
	if r.stopping.Load() || r.cfg.rate > 0 {
		k.cidOf[slot].Store(0)
		k.outstanding.Add(-1)
		return
	}
	cid := rid + k.k
	k.cidOf[slot].Store(cid)
	// From now on the clock, not the answer's arrival (now may be its
	// receive stamp): the generator's delay in reading the answer is not
	// the next call's.
	k.sentAt[slot].Store(nanotime())
	k.frame = appendCall(k.frame[:0], r.prefix, cid)
	c.queue(k.frame) // written when the reader has nothing more to read
}

func (k *rpcClient) OnDelivery(*Conn, int64, int64, int64) { k.run.stats.others.Add(1) }

func runRPC(ctx context.Context, t *Target, cfg *rpcConfig) (*Result, error) {
	if cfg.n < 1 || cfg.inflight < 1 {
		return nil, errors.New("-n and -inflight must be at least 1")
	}
	if cfg.rate != 0 && !(cfg.rate >= 0.01 && cfg.rate <= 1e8) {
		return nil, errors.New("-rate must be between 0.01 and 100 000 000 calls per second, or 0 for a closed loop")
	}
	if err := t.resolve(ctx, cfg.n); err != nil {
		return nil, err
	}
	r := &rpcRun{cfg: cfg, t: t, clients: make([]rpcClient, cfg.n)}
	r.hist.Store(NewHist(64))
	r.prefix = []byte(`{"event":` + strconv.Quote(cfg.procedure) + `,"data":"`)
	for range cfg.size {
		r.prefix = append(r.prefix, 'x')
	}
	r.prefix = append(r.prefix, `","cid":`...)
	for i := range r.clients {
		k := &r.clients[i]
		k.run = r
		k.k = int64(cfg.inflight)
		k.cidOf = make([]atomic.Int64, cfg.inflight)
		k.sentAt = make([]atomic.Int64, cfg.inflight)
	}
	if !t.proto.rpc {
		return nil, fmt.Errorf("the rpc scenario needs procedure calls, which protocol %s has not", t.proto.name)
	}
	t.progress("rpc: connecting %d clients to %s", cfg.n, t.u)
	ps, err := t.newRunPollers(cfg.n)
	if err != nil {
		return nil, err
	}
	defer ps.stop()
	dr := t.dialAll(ctx, ps, cfg.n, nil, func(i int) Handler { return &r.clients[i] }, &r.stats, 1)
	defer closeAll(dr.conns)
	if dr.failed > 0 {
		return nil, fmt.Errorf("setting up clients: %w", dr.firstErr)
	}
	probe := serverProbe{t.ServerPID}
	t.progress("rpc: %d clients ready in %.2fs; %d calls in flight each", cfg.n, dr.elapsed.Seconds(), cfg.inflight)

	// Start the calls. The handshake used cid 1 and is answered already.
	var pacer *rpcPacer
	if cfg.rate > 0 {
		pacer = startPacer(ctx, r, dr.conns)
		defer pacer.stop()
	} else if err := r.startClosedLoop(dr.conns); err != nil {
		return nil, err
	}
	completed := func() (n, errs, outstanding int64) {
		for i := range r.clients {
			n += r.clients[i].completed.Load()
			errs += r.clients[i].errs.Load()
			outstanding += r.clients[i].outstanding.Load()
		}
		return
	}
	wait := func(d time.Duration) {
		for end := time.Now().Add(d); time.Now().Before(end); {
			if !sleepCtx(ctx, min(time.Second, time.Until(end))) {
				return
			}
			n, _, _ := completed()
			t.progress("rpc: %d calls completed", n)
		}
	}
	wait(cfg.warmup)

	hist := NewHist(64)
	r.hist.Store(hist)
	n0, e0, _ := completed()
	p0 := probe.sample()
	var pace0 pacerCounts
	if pacer != nil {
		pace0 = pacer.window()
	}
	wait(cfg.duration)
	n1, e1, _ := completed()
	p1 := probe.sample()
	var pace1 pacerCounts
	if pacer != nil {
		pace1 = pacer.counts()
	}
	r.hist.Store(NewHist(1)) // calls completing from now on are not measured
	r.stopping.Store(true)
	if pacer != nil {
		pacer.stop()
	}

	var unanswered int64
	for end := time.Now().Add(cfg.drain); ; time.Sleep(5 * time.Millisecond) {
		_, _, unanswered = completed()
		if unanswered <= 0 || time.Now().After(end) {
			break
		}
	}
	snap := hist.Snapshot()
	calls := n1 - n0
	secs := p1.at.Sub(p0.at).Seconds()

	res := newResult("rpc")
	res.set("target", t.u.String())
	res.set("clients", cfg.n)
	res.set("inflight", cfg.inflight)
	if pacer != nil {
		res.set("rate", cfg.rate)
		res.set("sent", pace1.sent-pace0.sent)
		res.set("skipped", pace1.skipped-pace0.skipped)
		res.set("lag_max_ms", ms(pace1.lagMax))
	}
	res.set("procedure", cfg.procedure)
	res.set("size", cfg.size)
	res.set("duration_s", secs)
	res.set("calls", calls)
	res.set("calls_per_s", float64(calls)/secs)
	res.set("errors", e1-e0)
	res.set("unanswered", unanswered)
	res.set("unexpected_packets", r.stats.others.Load())
	res.setLatency("latency", snap)
	res.setCPU(p0, p1, calls, "call")
	t.progress("rpc: %d calls (%.0f/s), %d errors, p50 %.3fms p99 %.3fms max %.3fms",
		calls, float64(calls)/secs, e1-e0, ms(snap.Quantile(0.5)), ms(snap.Quantile(0.99)), ms(snap.Max))
	return res, nil
}

// startClosedLoop sends each client's first -inflight calls; every answer
// then sends the next (OnResponse).
func (r *rpcRun) startClosedLoop(conns []*Conn) error {
	var frame []byte
	for i, c := range conns {
		k := &r.clients[i]
		for s := range r.cfg.inflight {
			cid := int64(s + 1)
			k.cidOf[s].Store(cid)
			k.sentAt[s].Store(nanotime())
			k.outstanding.Add(1)
			frame = appendCall(frame[:0], r.prefix, cid)
			c.queue(frame)
		}
		if err := c.flush(); err != nil {
			return err
		}
	}
	return nil
}

// rpcPacer sends the calls of an open-loop run (-rate): the i-th call is
// due at start + i/rate and goes to client i mod n; a client's calls take
// its K slots in turn (cid c in slot (c-1) mod K, as in the closed loop),
// and a call whose slot still waits for an answer is skipped (counted), so
// a slow server meets a constant offered load, not one that slows down
// with it. A call's latency runs from the time it was due, so that a
// generator falling behind does not hide the delay.
type rpcPacer struct {
	r       *rpcRun
	conns   []*Conn
	cancel  context.CancelFunc
	exited  chan struct{}
	sent    atomic.Int64
	skipped atomic.Int64
	lagMax  atomic.Int64 // in the measured window (window resets it)
}

// pacerCounts is a reading of the pacer's counters.
type pacerCounts struct{ sent, skipped, lagMax int64 }

func (p *rpcPacer) counts() pacerCounts {
	return pacerCounts{p.sent.Load(), p.skipped.Load(), p.lagMax.Load()}
}

// window reads the counters at the start of the measured window and
// restarts the worst lag from there.
func (p *rpcPacer) window() pacerCounts {
	c := p.counts()
	p.lagMax.Store(0)
	return c
}

// startPacer starts the pacer of an open-loop run; it runs until stop or
// the end of ctx.
func startPacer(ctx context.Context, r *rpcRun, conns []*Conn) *rpcPacer {
	ctx, cancel := context.WithCancel(ctx)
	p := &rpcPacer{r: r, conns: conns, cancel: cancel, exited: make(chan struct{})}
	go p.run(ctx)
	return p
}

// stop ends the pacer and waits until it sends nothing more.
func (p *rpcPacer) stop() {
	p.cancel()
	<-p.exited
}

func (p *rpcPacer) run(ctx context.Context) {
	defer close(p.exited)
	r := p.r
	rate := r.cfg.rate
	start := nanotime()
	// dueAt is call i's due time; sent counts the calls due so far (sent
	// or skipped).
	dueAt := func(i int64) int64 { return start + int64(float64(i)/rate*1e9) }
	var sent int64
	var frame []byte
	touched := make([]bool, len(p.conns))
	for ctx.Err() == nil {
		now := nanotime()
		due := int64(float64(now-start)/1e9*rate) + 1 - sent
		if due <= 0 {
			sleepCtx(ctx, time.Duration(dueAt(sent)-now))
			continue
		}
		if lag := now - dueAt(sent); lag > p.lagMax.Load() {
			p.lagMax.Store(lag)
		}
		for range min(due, 1024) {
			i := int(sent % int64(len(p.conns)))
			k := &r.clients[i]
			at := dueAt(sent)
			sent++
			k.nextCid++
			cid := k.nextCid + 1 // cid 1 was the handshake's
			slot := (cid - 1) % k.k
			if k.cidOf[slot].Load() != 0 {
				p.skipped.Add(1)
				continue
			}
			k.sentAt[slot].Store(at)
			k.outstanding.Add(1)
			k.cidOf[slot].Store(cid)
			p.sent.Add(1)
			frame = appendCall(frame[:0], r.prefix, cid)
			p.conns[i].queue(frame)
			touched[i] = true
		}
		for i, c := range p.conns {
			if touched[i] {
				touched[i] = false
				if err := c.flush(); err != nil {
					r.t.progress("rpc: client %d: %v", i, err)
				}
			}
		}
	}
}
