//go:build linux

package main

import (
	"context"
	"flag"
	"fmt"
	"time"
)

// idleHandler is the handler of connections that only answer pings.
type idleHandler struct{ stats *connStats }

func (h idleHandler) OnResponse(*Conn, int64, bool, int64)  { h.stats.others.Add(1) }
func (h idleHandler) OnDelivery(*Conn, int64, int64, int64) { h.stats.others.Add(1) }

func connsFlags(fs *flag.FlagSet) runFunc {
	n := fs.Int("n", 1000, "number of connections")
	hold := fs.Duration("hold", 10*time.Second, "keep the connections open and idle this long once all are set up (pings are answered)")
	return func(ctx context.Context, t *Target) (*Result, error) {
		return runConns(ctx, t, *n, *hold)
	}
}

func runConns(ctx context.Context, t *Target, n int, hold time.Duration) (*Result, error) {
	t.tlsOK = true // wss:// connections are held by a goroutine each (conn.go, holdTLS)
	if err := t.resolve(ctx, n); err != nil {
		return nil, err
	}
	if lim, err := raiseFileLimit(); err == nil && uint64(n)+64 > lim {
		t.progress("warning: %d connections need more than the file limit %d allows", n, lim)
	}
	probe := serverProbe{t.ServerPID}
	stats := &connStats{}
	p0 := probe.sample()
	t.progress("conns: opening %d connections to %s (%d source addresses)", n, t.u, max(1, len(t.srcs)))
	ps, err := t.newRunPollers(n)
	if err != nil {
		return nil, err
	}
	defer ps.stop()
	dr := t.dialAll(ctx, ps, n, nil, func(int) Handler { return idleHandler{stats} }, stats, 0)
	defer closeAll(dr.conns)
	if dr.ok == 0 {
		return nil, fmt.Errorf("no connection could be set up: %w", dr.firstErr)
	}
	p1 := probe.sample()
	t.progress("conns: %d open, %d failed in %.2fs", dr.ok, dr.failed, dr.elapsed.Seconds())
	if dr.firstErr != nil {
		t.progress("conns: first failure: %v", dr.firstErr)
	}

	holdStart := time.Now()
	for time.Since(holdStart) < hold {
		if !sleepCtx(ctx, min(time.Second, hold-time.Since(holdStart))) {
			break
		}
		t.progress("conns: holding %d open, %d pings answered, %d dropped",
			int64(dr.ok)-stats.closed.Load(), stats.pings.Load(), stats.closed.Load())
	}
	p2 := probe.sample()

	r := newResult("conns")
	r.set("target", t.u.String())
	r.set("requested", n)
	r.set("conns", dr.ok)
	r.set("failed", dr.failed)
	if dr.firstErr != nil {
		r.set("first_error", dr.firstErr.Error())
	}
	r.set("src_addrs", max(1, len(t.srcs)))
	r.set("connect_s", dr.elapsed.Seconds())
	r.set("connect_rate", float64(dr.ok)/dr.elapsed.Seconds())
	r.setLatency("setup", dr.setup.Snapshot())
	r.set("hold_s", p2.at.Sub(p1.at).Seconds())
	r.set("pings_answered", stats.pings.Load())
	r.set("dropped", stats.closed.Load())
	r.set("unexpected_packets", stats.others.Load())
	if p0.cpu >= 0 && p2.cpu >= 0 {
		r.set("server_cpu_connect_ms", float64(p1.cpu-p0.cpu)/float64(time.Millisecond))
		if dr.ok > 0 {
			r.set("server_cpu_us_per_conn", float64(p1.cpu-p0.cpu)/float64(time.Microsecond)/float64(dr.ok))
		}
		r.set("server_cpu_hold_pct", 100*float64(p2.cpu-p1.cpu)/float64(p2.at.Sub(p1.at)))
	}
	r.setSteal(p0, p1) // the set-up phase, whose CPU is measured
	if p0.rssKB >= 0 && p2.rssKB >= 0 {
		r.set("rss_before_kb", p0.rssKB)
		r.set("rss_connected_kb", p1.rssKB)
		r.set("rss_after_kb", p2.rssKB)
		if dr.ok > 0 {
			r.set("rss_per_conn_bytes", float64(p2.rssKB-p0.rssKB)*1024/float64(dr.ok))
		}
	}
	gen := p2.selfCP - p0.selfCP
	r.set("gen_cpu_ms", float64(gen)/float64(time.Millisecond))
	if dr.ok > 0 {
		r.set("gen_cpu_us_per_conn", float64(p1.selfCP-p0.selfCP)/float64(time.Microsecond)/float64(dr.ok))
	}
	return r, nil
}
