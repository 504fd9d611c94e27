// Package hseq turns what a network bus delivers for history channels
// (publications possibly missing, repeated or late, after outages or when
// concurrent publishers raced) into what broker.HistoryHandler expects:
// every publication once, in offset order, reading the channel's history
// to fill gaps and to catch up after a reconnection.
//
// A Seq is owned by the broker's delivery goroutine: every method is called
// from it only, so the state needs no lock.
package hseq

import (
	"context"
	"time"

	"github.com/socketcluster-go/socketcluster/broker"
)

// Reader reads a channel's history (the broker's ReadHistory).
type Reader func(ctx context.Context, channel string, q broker.HistoryQuery, opts broker.HistoryOptions) (broker.HistoryResult, error)

// Seq sequences the deliveries of history channels.
type Seq struct {
	h       broker.HistoryHandler
	read    Reader
	timeout time.Duration
	last    map[string]broker.Position // channel → last delivered (or starting) position
	stale   map[string]struct{}        // channels whose gap could not be filled yet
}

// New returns a Seq delivering to h, reading with read; timeout bounds
// one read.
func New(h broker.HistoryHandler, read Reader, timeout time.Duration) *Seq {
	return &Seq{h: h, read: read, timeout: timeout, last: make(map[string]broker.Position), stale: make(map[string]struct{})}
}

// Start sets the position a newly subscribed channel starts from: what
// follows top is delivered. It is ignored when the channel is already
// being delivered.
func (s *Seq) Start(channel string, top broker.Position) {
	if _, ok := s.last[channel]; !ok {
		s.last[channel] = top
	}
}

// Forget drops the state of an unsubscribed channel.
func (s *Seq) Forget(channel string) {
	delete(s.last, channel)
	delete(s.stale, channel)
}

// Stale reports whether some channel waits for a gap to be filled (call
// Retry).
func (s *Seq) Stale() bool { return len(s.stale) > 0 }

// Live handles a publication received from the bus.
func (s *Seq) Live(ctx context.Context, channel string, pub broker.Publication, opts broker.HistoryOptions) {
	last, ok := s.last[channel]
	switch {
	case !ok:
		// No starting position (should not happen): start here.
		s.deliver(channel, pub)
		return
	case pub.Epoch == last.Epoch && pub.Offset <= last.Offset:
		return // already delivered
	case pub.Epoch == last.Epoch && pub.Offset == last.Offset+1:
		if _, waiting := s.stale[channel]; !waiting {
			s.deliver(channel, pub)
			return
		}
	}
	// A gap, a new epoch, or a fill still pending: read what is missing.
	s.fill(ctx, channel, opts)
}

// CatchUp reads and delivers what channel missed, e.g. after the bus
// connection came back.
func (s *Seq) CatchUp(ctx context.Context, channel string, opts broker.HistoryOptions) {
	if _, ok := s.last[channel]; ok {
		s.fill(ctx, channel, opts)
	}
}

// Retry tries again the fills that failed; opts gives each channel's
// limits.
func (s *Seq) Retry(ctx context.Context, opts func(channel string) (broker.HistoryOptions, bool)) {
	for ch := range s.stale {
		if o, ok := opts(ch); ok {
			s.fill(ctx, ch, o)
		} else {
			s.Forget(ch)
		}
	}
}

func (s *Seq) deliver(channel string, pub broker.Publication) {
	s.last[channel] = pub.Position
	s.h.DeliverHistory(channel, pub)
}

// fill reads the history after the last delivered position and delivers
// it. When the read fails the channel is marked stale: live publications
// are held back (they are stored: the next fill delivers them) until a
// read succeeds.
func (s *Seq) fill(ctx context.Context, channel string, opts broker.HistoryOptions) {
	last := s.last[channel]
	for {
		rctx, cancel := context.WithTimeout(ctx, s.timeout)
		res, err := s.read(rctx, channel, broker.HistoryQuery{Since: &last, Limit: opts.Size}, opts)
		cancel()
		if err != nil {
			if ctx.Err() == nil {
				s.stale[channel] = struct{}{}
			}
			return
		}
		delete(s.stale, channel)
		if !res.Recovered {
			s.h.HistoryLost(channel, last, broker.ErrHistoryLost)
		}
		for _, p := range res.Publications {
			s.deliver(channel, p)
		}
		cur := s.last[channel]
		if len(res.Publications) == 0 && (cur.Epoch != res.Top.Epoch || cur.Offset < res.Top.Offset) {
			// Nothing left to read (lost or expired): go on from the top.
			s.last[channel] = res.Top
			return
		}
		if len(res.Publications) < opts.Size || cur.Epoch == res.Top.Epoch && cur.Offset >= res.Top.Offset {
			return
		}
		last = cur // more than one page: read on
	}
}
