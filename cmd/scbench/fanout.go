//go:build linux

package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"math"
	"sync/atomic"
	"time"
)

type fanoutConfig struct {
	n           int
	channel     string
	rate        float64
	window      int
	maxInflight int
	duration    time.Duration
	warmup      time.Duration
	drain       time.Duration
	size        int
	pubAddr     string

	search        bool
	p99Bound      time.Duration
	searchStart   float64
	searchMax     float64
	searchSteps   int
	searchConfirm int
	pause         time.Duration
}

func fanoutFlags(fs *flag.FlagSet) runFunc {
	c := &fanoutConfig{}
	fs.IntVar(&c.n, "n", 1000, "number of subscribers")
	fs.StringVar(&c.channel, "channel", "scbench-fanout", "channel name")
	fs.Float64Var(&c.rate, "rate", 0, "publishes per second (0: as fast as -window allows)")
	fs.IntVar(&c.window, "window", 32, "window mode: publishes in flight (sent, not yet acknowledged)")
	fs.IntVar(&c.maxInflight, "max-inflight", 10000, "rate mode: publishing pauses while this many publishes are unacknowledged")
	fs.DurationVar(&c.duration, "duration", 10*time.Second, "measured publishing time (per trial with -search)")
	fs.DurationVar(&c.warmup, "warmup", time.Second, "publishing before the measurement (not counted)")
	fs.DurationVar(&c.drain, "drain", 3*time.Second, "after publishing stops, wait at most this long without progress for outstanding deliveries")
	fs.StringVar(&c.pubAddr, "pub-addr", "", "connect the publisher to this other instance (cross-instance fan-out through the cluster's broker; default: -addr)")
	fs.IntVar(&c.size, "size", 0, "extra payload `bytes` per message (the minimal message is about 40 bytes of data)")
	fs.BoolVar(&c.search, "search", false, "find the highest -rate whose delivery p99 stays under -p99-bound without loss")
	fs.DurationVar(&c.p99Bound, "p99-bound", 100*time.Millisecond, "search: bound on the p99 end-to-end latency")
	fs.Float64Var(&c.searchStart, "search-start", 100, "search: first rate tried (publishes/s); doubled until a trial fails")
	fs.Float64Var(&c.searchMax, "search-max", 1e6, "search: highest rate tried")
	fs.IntVar(&c.searchSteps, "search-steps", 16, "search: at most this many trials")
	fs.IntVar(&c.searchConfirm, "search-confirm", 1, "search: a failing rate is tried this many more times before it counts as failed")
	fs.DurationVar(&c.pause, "pause", 500*time.Millisecond, "search: pause between trials")
	return func(ctx context.Context, t *Target) (*Result, error) {
		return runFanout(ctx, t, c)
	}
}

// fanoutRun is the state of one fanout scenario.
type fanoutRun struct {
	cfg   *fanoutConfig
	t     *Target
	probe serverProbe
	stats connStats
	subs  []fanSub
	pub   *Conn
	hist  atomic.Pointer[Hist]

	// publisher side
	acked   atomic.Int64
	pubErrs atomic.Int64
	tokens  chan struct{} // window mode: one per publish that may be sent
	seq     int64         // last sequence number published (publisher goroutine)
	frame   []byte
	prefix  []byte // {"event":"#publish","data":{"channel":"...","data":{"scb":
	suffix  []byte // ,"pad":"xxx"}},"cid":
}

type fanSub struct {
	run *fanoutRun
	tr  seqTracker
}

func (s *fanSub) OnDelivery(c *Conn, seq, ts, now int64) {
	s.tr.add(seq, now)
	s.run.hist.Load().Record(c.ID, now-ts)
}

func (s *fanSub) OnResponse(*Conn, int64, bool, int64) { s.run.stats.others.Add(1) }

type fanPub struct{ run *fanoutRun }

func (p fanPub) OnResponse(_ *Conn, _ int64, isErr bool, _ int64) {
	r := p.run
	if isErr {
		if r.pubErrs.Add(1) == 1 {
			r.t.progress("fanout: the server refused a publish")
		}
	}
	r.acked.Add(1)
	select {
	case r.tokens <- struct{}{}:
	default:
	}
}

func (p fanPub) OnDelivery(*Conn, int64, int64, int64) { p.run.stats.others.Add(1) }

// queuePublishes queues k publishes on the publisher and writes them at once.
func (r *fanoutRun) queuePublishes(k int64) error {
	ts := nanotime()
	for range k {
		r.seq++
		r.frame = r.t.proto.appendPublish(r.frame[:0], r.prefix, r.suffix, r.seq, ts, r.seq)
		r.pub.queue(r.frame)
	}
	return r.pub.flush()
}

func runFanout(ctx context.Context, t *Target, cfg *fanoutConfig) (*Result, error) {
	if cfg.n < 1 {
		return nil, errors.New("-n must be at least 1")
	}
	if cfg.rate <= 0 && cfg.window < 1 && !cfg.search {
		return nil, errors.New("give -rate or a -window of at least 1")
	}
	if err := t.resolve(ctx, cfg.n+1); err != nil {
		return nil, err
	}
	r := &fanoutRun{
		cfg:    cfg,
		t:      t,
		probe:  serverProbe{t.ServerPID},
		subs:   make([]fanSub, cfg.n),
		tokens: make(chan struct{}, max(cfg.window, 1)),
		prefix: t.proto.publishPrefix(cfg.channel),
		suffix: publishSuffix(cfg.size),
	}
	for range max(cfg.window, 1) {
		r.tokens <- struct{}{}
	}
	r.hist.Store(NewHist(64))
	for i := range r.subs {
		r.subs[i].run = r
	}
	t.progress("fanout: connecting %d subscribers to %s, channel %q", cfg.n, t.u, cfg.channel)
	ps, err := t.newRunPollers(cfg.n + 1)
	if err != nil {
		return nil, err
	}
	defer ps.stop()
	dr := t.dialAll(ctx, ps, cfg.n, func(int) string { return cfg.channel },
		func(i int) Handler { return &r.subs[i] }, &r.stats, 1)
	defer closeAll(dr.conns)
	if dr.failed > 0 {
		return nil, fmt.Errorf("setting up subscribers: %w", dr.firstErr)
	}
	pt := t
	if cfg.pubAddr != "" {
		c := *t
		c.Addr, c.SrcAddrs = cfg.pubAddr, 0
		if err := c.resolve(ctx, 1); err != nil {
			return nil, fmt.Errorf("-pub-addr: %w", err)
		}
		pt = &c
		t.progress("fanout: the publisher connects to %s", pt.u)
	}
	pub, err := pt.dial(ctx, ps, cfg.n, "", fanPub{r}, &r.stats)
	if err != nil {
		return nil, fmt.Errorf("publisher: %w", err)
	}
	r.pub = pub
	defer pub.close(true)
	t.progress("fanout: %d subscribers ready in %.2fs", cfg.n, dr.elapsed.Seconds())

	if cfg.warmup > 0 {
		t.progress("fanout: warming up for %v", cfg.warmup)
		rate := cfg.rate
		if cfg.search {
			rate = cfg.searchStart
		}
		if _, err := r.trial(ctx, rate, cfg.warmup, true); err != nil {
			return nil, err
		}
	}
	if cfg.search {
		return r.searchRate(ctx)
	}
	res, err := r.trial(ctx, cfg.rate, cfg.duration, false)
	if err != nil {
		return nil, err
	}
	return res, nil
}

// subCounts sums the subscribers' counters.
func (r *fanoutRun) subCounts() (sum seqCounts, last int64) {
	for i := range r.subs {
		sum = sum.plus(r.subs[i].tr.counts())
		last = max(last, r.subs[i].tr.last.Load())
	}
	return sum, last
}

// trial publishes for d at the given rate (0: window mode), waits for the
// deliveries and reports.
func (r *fanoutRun) trial(ctx context.Context, rate float64, d time.Duration, quiet bool) (*Result, error) {
	cfg := r.cfg
	n := int64(cfg.n)
	before, _ := r.subCounts()
	seq0, err0 := r.seq, r.pubErrs.Load()
	hist := NewHist(64)
	r.hist.Store(hist)
	p0 := r.probe.sample()
	start := nanotime()

	var lagMax time.Duration
	var err error
	if rate > 0 {
		lagMax, err = r.publishRate(ctx, rate, d)
	} else {
		err = r.publishWindow(ctx, d)
	}
	pubEnd := nanotime()
	if err != nil {
		return nil, fmt.Errorf("publishing: %w", err)
	}
	published := r.seq - seq0

	// Drain: wait for the acknowledgements and deliveries still on the way.
	drained := false
	lastProgress, lastUniq := time.Now(), int64(-1)
	var now seqCounts
	var lastDelivery int64
	for {
		now, lastDelivery = r.subCounts()
		errs := r.pubErrs.Load() - err0
		got := now.uniq - before.uniq
		if got >= (published-errs)*n && r.acked.Load() >= r.seq {
			drained = true
			break
		}
		if got != lastUniq {
			lastUniq, lastProgress = got, time.Now()
		} else if time.Since(lastProgress) > cfg.drain || ctx.Err() != nil {
			break
		}
		time.Sleep(5 * time.Millisecond)
	}
	p1 := r.probe.sample()
	c := now.minus(before)
	errs := r.pubErrs.Load() - err0
	expected := (published - errs) * n
	snap := hist.Snapshot()

	res := newResult("fanout")
	res.set("target", r.t.u.String())
	res.set("subscribers", cfg.n)
	if rate > 0 {
		res.set("mode", "rate")
		res.set("target_rate", rate)
	} else {
		res.set("mode", "window")
		res.set("window", cfg.window)
	}
	res.set("size", cfg.size)
	// At a fixed rate the last message leaves 1/rate before the period
	// ends: the period, not the send span, is the denominator.
	pubSecs := max(float64(pubEnd-start)/1e9, d.Seconds())
	res.set("duration_s", pubSecs)
	res.set("published", published)
	res.set("publish_errors", errs)
	res.set("publish_rate", float64(published)/pubSecs)
	if rate > 0 {
		res.set("behind_max_ms", float64(lagMax)/float64(time.Millisecond))
	}
	res.set("expected", expected)
	res.set("deliveries", c.recv)
	span := float64(max(lastDelivery, pubEnd)-start) / 1e9
	res.set("deliveries_per_s", float64(c.recv)/span)
	res.set("lost", expected-c.uniq)
	res.set("duplicates", c.dup)
	res.set("order_violations", c.ooo)
	res.set("drained", drained)
	res.setLatency("latency", snap)
	res.setCPU(p0, p1, c.recv, "delivery")
	if !quiet {
		r.t.progress("fanout: %d published (%.0f/s), %d deliveries (%.0f/s), lost %d, p50 %.3fms p99 %.3fms max %.3fms",
			published, float64(published)/pubSecs, c.recv, float64(c.recv)/span, expected-c.uniq,
			ms(snap.Quantile(0.5)), ms(snap.Quantile(0.99)), ms(snap.Max))
	}
	return res, nil
}

// publishWindow publishes as fast as the window of unacknowledged publishes
// allows, for d.
func (r *fanoutRun) publishWindow(ctx context.Context, d time.Duration) error {
	end := time.NewTimer(d)
	defer end.Stop()
	progress := time.NewTicker(time.Second)
	defer progress.Stop()
	const batch = 256
	for {
		select {
		case <-end.C:
			return nil
		case <-ctx.Done():
			return nil
		case <-progress.C:
			r.progressLine()
			continue
		case <-r.tokens:
		}
		k := int64(1)
	more:
		for k < batch {
			select {
			case <-r.tokens:
				k++
			default:
				break more
			}
		}
		if err := r.queuePublishes(k); err != nil {
			return err
		}
	}
}

// publishRate publishes rate messages per second for d, in bursts when the
// schedule falls behind the clock. It returns how late the generator was at
// worst.
func (r *fanoutRun) publishRate(ctx context.Context, rate float64, d time.Duration) (lagMax time.Duration, err error) {
	start := time.Now()
	end := start.Add(d)
	nextProgress := start.Add(time.Second)
	var sent int64
	total := int64(math.Round(rate * d.Seconds()))
	for sent < total && ctx.Err() == nil {
		now := time.Now()
		if now.After(end.Add(time.Second)) {
			break // far behind: stop rather than publishing long after the end
		}
		if now.After(nextProgress) {
			r.progressLine()
			nextProgress = nextProgress.Add(time.Second)
		}
		due := min(int64(now.Sub(start).Seconds()*rate)+1, total) - sent
		if due <= 0 {
			next := start.Add(time.Duration(float64(sent) / rate * 1e9))
			time.Sleep(max(next.Sub(now), 0))
			continue
		}
		inflight := r.seq - r.acked.Load()
		allowed := int64(r.cfg.maxInflight) - inflight
		if allowed <= 0 {
			time.Sleep(100 * time.Microsecond)
			continue
		}
		if lag := now.Sub(start.Add(time.Duration(float64(sent) / rate * 1e9))); lag > lagMax {
			lagMax = lag
		}
		k := min(due, allowed, 1024)
		if err := r.queuePublishes(k); err != nil {
			return lagMax, err
		}
		sent += k
	}
	return lagMax, nil
}

func (r *fanoutRun) progressLine() {
	c, _ := r.subCounts()
	r.t.progress("fanout: published %d, acknowledged %d, delivered %d", r.seq, r.acked.Load(), c.recv)
}

// searchRate finds the highest publish rate whose p99 stays under the bound
// with no loss: the rate doubles until a trial fails, then bisects.
func (r *fanoutRun) searchRate(ctx context.Context) (*Result, error) {
	cfg := r.cfg
	lo, hi := 0.0, math.Inf(1)
	rate := cfg.searchStart
	var best *Result
	trials := 0
	for trials < cfg.searchSteps && ctx.Err() == nil {
		var res *Result
		pass := false
		// A failure is confirmed by a second trial at the same rate: one
		// noisy trial (a GC pause, a neighbour's burst) must not cap the
		// search for good.
		for attempt := 0; attempt <= cfg.searchConfirm && !pass && trials < cfg.searchSteps; attempt++ {
			trials++
			var err error
			if res, err = r.trial(ctx, rate, cfg.duration, true); err != nil {
				return nil, err
			}
			p99, _ := res.number("latency_p99_ms")
			lost, _ := res.number("lost")
			got, _ := res.number("publish_rate")
			pass = p99 <= float64(cfg.p99Bound)/float64(time.Millisecond) && lost == 0 && got >= 0.95*rate
			verdict := "fail"
			if pass {
				verdict = "pass"
			}
			r.t.progress("fanout search: trial %d rate %.1f/s: achieved %.1f/s, p99 %.3fms, lost %.0f: %s",
				trials, rate, got, p99, lost, verdict)
			if !pass && attempt < cfg.searchConfirm {
				sleepCtx(ctx, cfg.pause)
			}
		}
		if pass {
			lo, best = rate, res
		} else {
			hi = rate
		}
		next, done := nextSearchRate(lo, hi, rate, cfg.searchMax)
		if done {
			break
		}
		rate = next
		sleepCtx(ctx, cfg.pause)
	}
	if best == nil {
		best = newResult("fanout")
		best.set("target", r.t.u.String())
		best.set("subscribers", cfg.n)
	}
	best.set("search", true)
	best.set("search_p99_bound_ms", float64(cfg.p99Bound)/float64(time.Millisecond))
	best.set("search_trials", trials)
	best.set("search_max_rate", lo)
	if !math.IsInf(hi, 1) {
		best.set("search_failed_rate", hi)
	}
	return best, nil
}

// nextSearchRate picks the next trial rate from the highest passing rate lo
// (0: none yet) and the lowest failing rate hi (+Inf: none yet). done means
// the search has converged (within 5 %) or hit its ceiling.
func nextSearchRate(lo, hi, rate, ceiling float64) (next float64, done bool) {
	switch {
	case math.IsInf(hi, 1):
		if rate >= ceiling {
			return 0, true
		}
		return min(rate*2, ceiling), false
	case lo == 0:
		if rate < 1 {
			return 0, true
		}
		return rate / 2, false
	case (hi-lo)/hi < 0.05:
		return 0, true
	default:
		return (lo + hi) / 2, false
	}
}
