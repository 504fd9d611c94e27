package hseq

import (
	"context"

	"github.com/socketcluster-go/socketcluster/broker"
	"github.com/socketcluster-go/socketcluster/broker/internal/dqueue"
)

// Kinds of the items in a network broker's delivery queue (dqueue.Item.Kind).
const (
	KindMsg     uint8 = iota // plain message
	KindHist                 // history publication (Pos, Payload)
	KindStart                // starting position of a newly subscribed channel (Pos)
	KindCatchUp              // read what the channel missed (after a reconnection)
	KindForget               // the channel was unsubscribed
	KindRetry                // retry the fills that failed
)

// Target is what Handle needs of the broker whose delivery goroutine calls
// it.
type Target struct {
	Handler   broker.Handler
	Wanted    func(channel string) bool                          // the channel is still subscribed
	HistoryOf func(channel string) (broker.HistoryOptions, bool) // the channel's history, if any
}

// Handle runs one item of the delivery queue, in the broker's delivery
// goroutine: a plain message goes to the handler, history items through s
// (nil when the handler keeps no history). It reports whether s has fills
// to retry.
func Handle(ctx context.Context, s *Seq, b Target, it dqueue.Item) (stale bool) {
	switch it.Kind {
	case KindMsg:
		if b.Wanted(it.Channel) {
			b.Handler.Deliver(it.Channel, it.Payload)
		}
	case KindHist:
		if opts, ok := b.HistoryOf(it.Channel); ok && b.Wanted(it.Channel) {
			s.Live(ctx, it.Channel, broker.Publication{Position: it.Pos, Payload: it.Payload}, opts)
		}
	case KindStart:
		s.Start(it.Channel, it.Pos)
	case KindCatchUp:
		if opts, ok := b.HistoryOf(it.Channel); ok && b.Wanted(it.Channel) {
			s.CatchUp(ctx, it.Channel, opts)
		}
	case KindForget:
		s.Forget(it.Channel)
	case KindRetry:
		s.Retry(ctx, b.HistoryOf)
	}
	return s != nil && s.Stale()
}

// StartPositions reads the current position of each history channel among
// channels (h's History says which) and queues it on q as the channel's
// starting point (KindStart), before the broker subscribes them: whatever
// is published after the read is delivered.
func StartPositions(ctx context.Context, h broker.HistoryHandler, read Reader, q *dqueue.Queue, channels []string) error {
	if h == nil {
		return nil
	}
	for _, ch := range channels {
		opts, ok := h.History(ch)
		if !ok {
			continue
		}
		res, err := read(ctx, ch, broker.HistoryQuery{}, opts)
		if err != nil {
			return err
		}
		if !q.PushMarker(ctx, dqueue.Item{Channel: ch, Kind: KindStart, Pos: res.Top}) {
			return ctx.Err()
		}
	}
	return nil
}
