//go:build linux

package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"math"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
)

type channelsConfig struct {
	n           int
	rate        float64
	offset      int
	prefix      string
	duration    time.Duration
	warmup      time.Duration
	drain       time.Duration
	size        int
	maxInflight int
	publishers  int
	tick        time.Duration
	invoke      bool
}

func channelsFlags(fs *flag.FlagSet) runFunc {
	c := &channelsConfig{}
	fs.IntVar(&c.n, "n", 1000, "number of clients")
	fs.Float64Var(&c.rate, "rate", 10, "publishes per second per client")
	fs.IntVar(&c.offset, "peer-offset", 1, "client i publishes to the channel of client (i+offset) mod n")
	fs.StringVar(&c.prefix, "channel-prefix", "scbench-ch-", "channel names are this prefix plus the client number")
	fs.DurationVar(&c.duration, "duration", 10*time.Second, "measured publishing time")
	fs.DurationVar(&c.warmup, "warmup", time.Second, "publishing before the measurement (not counted)")
	fs.DurationVar(&c.drain, "drain", 3*time.Second, "after publishing stops, wait at most this long without progress for outstanding deliveries")
	fs.IntVar(&c.size, "size", 0, "extra payload `bytes` per message")
	fs.IntVar(&c.maxInflight, "max-inflight", 1000, "a client skips its turn while this many of its publishes are unacknowledged")
	fs.BoolVar(&c.invoke, "invoke", true, "publish with a cid and count the acknowledgements (invokePublish); false: without (transmitPublish)")
	fs.IntVar(&c.publishers, "publishers", 1, "goroutines that drive the publishing")
	fs.DurationVar(&c.tick, "tick", time.Millisecond, "publishing wakes up at most once per tick and sends what is due")
	return func(ctx context.Context, t *Target) (*Result, error) {
		return runChannels(ctx, t, c)
	}
}

type channelsRun struct {
	cfg     *channelsConfig
	t       *Target
	probe   serverProbe
	stats   connStats
	clients []chClient
	hist    atomic.Pointer[Hist]
	skipped atomic.Int64
}

// chClient is one client: subscriber of its own channel, publisher to its
// peer's. seq is owned by the publishing goroutine that drives the client.
type chClient struct {
	run    *channelsRun
	c      *Conn
	tr     seqTracker
	seq    int64
	acked  atomic.Int64
	errs   atomic.Int64
	prefix []byte
	frame  []byte
}

func (k *chClient) OnDelivery(c *Conn, seq, ts, now int64) {
	k.tr.add(seq, now)
	k.run.hist.Load().Record(c.ID, now-ts)
}

func (k *chClient) OnResponse(_ *Conn, _ int64, isErr bool, _ int64) {
	if isErr && k.errs.Add(1) == 1 {
		k.run.t.progress("channels: the server refused a publish of client %d", k.c.ID)
	}
	k.acked.Add(1)
}

func runChannels(ctx context.Context, t *Target, cfg *channelsConfig) (*Result, error) {
	if cfg.n < 1 || cfg.rate <= 0 {
		return nil, errors.New("-n and -rate must be positive")
	}
	if err := t.resolve(ctx, cfg.n); err != nil {
		return nil, err
	}
	if !cfg.invoke && t.proto.newlines {
		return nil, fmt.Errorf("-invoke=false: protocol %s answers every publish", t.proto.name)
	}
	r := &channelsRun{cfg: cfg, t: t, probe: serverProbe{t.ServerPID}, clients: make([]chClient, cfg.n)}
	r.hist.Store(NewHist(64))
	name := func(i int) string { return cfg.prefix + strconv.Itoa(i) }
	for i := range r.clients {
		peer := ((i+cfg.offset)%cfg.n + cfg.n) % cfg.n
		r.clients[i].run = r
		r.clients[i].prefix = t.proto.publishPrefix(name(peer))
	}
	t.progress("channels: connecting %d clients to %s", cfg.n, t.u)
	ps, err := t.newRunPollers(cfg.n)
	if err != nil {
		return nil, err
	}
	defer ps.stop()
	dr := t.dialAll(ctx, ps, cfg.n, name, func(i int) Handler { return &r.clients[i] }, &r.stats, 1)
	defer closeAll(dr.conns)
	if dr.failed > 0 {
		return nil, fmt.Errorf("setting up clients: %w", dr.firstErr)
	}
	for i := range r.clients {
		r.clients[i].c = dr.conns[i]
	}
	t.progress("channels: %d clients ready in %.2fs", cfg.n, dr.elapsed.Seconds())
	if cfg.warmup > 0 {
		t.progress("channels: warming up for %v", cfg.warmup)
		if _, err := r.trial(ctx, cfg.warmup); err != nil {
			return nil, err
		}
	}
	return r.trial(ctx, cfg.duration)
}

func (r *channelsRun) counts() (sum seqCounts, last, published, acked, errs int64) {
	for i := range r.clients {
		k := &r.clients[i]
		sum = sum.plus(k.tr.counts())
		last = max(last, k.tr.last.Load())
		acked += k.acked.Load()
		errs += k.errs.Load()
	}
	return
}

func (r *channelsRun) published() (n int64) {
	for i := range r.clients {
		n += r.clients[i].seq
	}
	return n
}

func (r *channelsRun) trial(ctx context.Context, d time.Duration) (*Result, error) {
	cfg := r.cfg
	before, _, _, _, errs0 := r.counts()
	pub0 := r.published()
	skip0 := r.skipped.Load()
	hist := NewHist(64)
	r.hist.Store(hist)
	p0 := r.probe.sample()
	start := nanotime()

	g := max(1, min(cfg.publishers, cfg.n))
	var wg sync.WaitGroup
	lags := make([]time.Duration, g)
	errCh := make(chan error, g)
	stopProgress := make(chan struct{})
	go func() {
		tick := time.NewTicker(time.Second)
		defer tick.Stop()
		for {
			select {
			case <-stopProgress:
				return
			case <-tick.C:
				c, _, _, acked, _ := r.counts()
				r.t.progress("channels: acknowledged %d, delivered %d", acked, c.recv)
			}
		}
	}()
	for w := range g {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var group []*chClient
			for i := w; i < cfg.n; i += g {
				group = append(group, &r.clients[i])
			}
			lag, err := r.drive(ctx, group, d)
			lags[w] = lag
			if err != nil {
				errCh <- err
			}
		}()
	}
	wg.Wait()
	close(stopProgress)
	pubEnd := nanotime()
	select {
	case err := <-errCh:
		return nil, fmt.Errorf("publishing: %w", err)
	default:
	}
	published := r.published() - pub0

	drained := false
	lastProgress, lastUniq := time.Now(), int64(-1)
	var now seqCounts
	var lastDelivery, acked, errs int64
	for {
		now, lastDelivery, _, acked, errs = r.counts()
		got := now.uniq - before.uniq
		if got >= published-(errs-errs0) && (!cfg.invoke || acked >= r.published()) {
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
	errs -= errs0
	expected := published - errs
	snap := hist.Snapshot()
	var lagMax time.Duration
	for _, l := range lags {
		lagMax = max(lagMax, l)
	}

	res := newResult("channels")
	res.set("target", r.t.u.String())
	res.set("clients", cfg.n)
	res.set("rate_per_client", cfg.rate)
	res.set("invoke", cfg.invoke)
	res.set("target_rate", cfg.rate*float64(cfg.n))
	res.set("size", cfg.size)
	// At a fixed rate the last message leaves 1/rate before the period
	// ends: the period, not the send span, is the denominator.
	pubSecs := max(float64(pubEnd-start)/1e9, d.Seconds())
	res.set("duration_s", pubSecs)
	res.set("published", published)
	res.set("publish_errors", errs)
	res.set("publish_rate", float64(published)/pubSecs)
	res.set("skipped", r.skipped.Load()-skip0)
	res.set("behind_max_ms", float64(lagMax)/float64(time.Millisecond))
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
	r.t.progress("channels: %d published (%.0f/s), %d deliveries, lost %d, p50 %.3fms p99 %.3fms max %.3fms",
		published, float64(published)/pubSecs, c.recv, expected-c.uniq,
		ms(snap.Quantile(0.5)), ms(snap.Quantile(0.99)), ms(snap.Max))
	return res, nil
}

// drive publishes for the clients of one group, round robin, at
// cfg.rate × len(group) messages per second in total, for d.
func (r *channelsRun) drive(ctx context.Context, group []*chClient, d time.Duration) (time.Duration, error) {
	rate := r.cfg.rate * float64(len(group))
	suffix := publishSuffix(r.cfg.size)
	start := time.Now()
	end := start.Add(d)
	total := int64(math.Round(rate * d.Seconds()))
	var sent int64
	var lagMax time.Duration
	next := 0
	for sent < total && ctx.Err() == nil {
		now := time.Now()
		if now.After(end.Add(time.Second)) {
			break
		}
		due := min(int64(now.Sub(start).Seconds()*rate)+1, total) - sent
		sched := start.Add(time.Duration(float64(sent) / rate * 1e9))
		if due <= 0 {
			time.Sleep(max(sched.Sub(now), r.cfg.tick))
			continue
		}
		lagMax = max(lagMax, now.Sub(sched))
		ts := nanotime()
		for range due {
			k := group[next]
			next++
			if next == len(group) {
				next = 0
			}
			if r.cfg.invoke && k.seq-k.acked.Load() >= int64(r.cfg.maxInflight) {
				r.skipped.Add(1)
				continue
			}
			k.seq++
			cid := k.seq
			if !r.cfg.invoke {
				cid = -1
			}
			k.frame = r.t.proto.appendPublish(k.frame[:0], k.prefix, suffix, k.seq, ts, cid)
			if err := k.c.send(k.frame); err != nil {
				return lagMax, err
			}
		}
		sent += due
	}
	return lagMax, nil
}
