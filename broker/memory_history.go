package broker

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"sync"
	"time"
)

// History of the memory broker: kept in the Bus, shared by every Memory
// broker on it, so several servers in one process see one history.

// memHistory is one channel's history.
type memHistory struct {
	mu      sync.Mutex
	epoch   string
	top     uint64    // offset of the latest publication
	entries []memPub  // oldest first
	touched time.Time // last publish or read
	opts    HistoryOptions
}

type memPub struct {
	pub Publication
	at  time.Time
}

// busHistory is the history part of a Bus.
type busHistory struct {
	mu        sync.Mutex
	chans     map[string]*memHistory
	lastSweep time.Time
}

// NewEpoch returns a new random epoch (16 hex digits).
func NewEpoch() string {
	var b [8]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// channel returns channel's history, created when create is set.
func (bh *busHistory) channel(name string, create bool, opts HistoryOptions) *memHistory {
	bh.mu.Lock()
	defer bh.mu.Unlock()
	now := time.Now()
	if now.Sub(bh.lastSweep) > time.Second {
		bh.lastSweep = now
		bh.sweepLocked(now)
	}
	if bh.chans == nil {
		bh.chans = make(map[string]*memHistory)
	}
	h := bh.chans[name]
	if h == nil && create {
		h = &memHistory{epoch: NewEpoch()}
		bh.chans[name] = h
	}
	if h != nil {
		h.mu.Lock()
		h.touched, h.opts = now, opts
		h.mu.Unlock()
	}
	return h
}

// sweepLocked forgets the channels whose publications all expired, so that
// memory stays bounded with many channels. bh.mu held.
func (bh *busHistory) sweepLocked(now time.Time) {
	for name, h := range bh.chans {
		h.mu.Lock()
		h.trim(now, h.opts)
		empty := len(h.entries) == 0 && now.Sub(h.touched) > h.opts.TTL
		h.mu.Unlock()
		if empty {
			delete(bh.chans, name)
		}
	}
}

// trim drops what is beyond the limits. h.mu held.
func (h *memHistory) trim(now time.Time, opts HistoryOptions) {
	drop := 0
	if n := len(h.entries) - opts.Size; n > 0 {
		drop = n
	}
	for drop < len(h.entries) && now.Sub(h.entries[drop].at) > opts.TTL {
		drop++
	}
	if drop > 0 {
		clear(h.entries[:drop])
		h.entries = h.entries[drop:]
	}
}

// PublishHistory implements History. Deliveries run synchronously in the
// publisher's goroutine, under the channel's history lock, so they are in
// offset order on every instance.
func (m *Memory) PublishHistory(_ context.Context, channel string, payload []byte, opts HistoryOptions) (Position, error) {
	if err := opts.Valid(); err != nil {
		return Position{}, err
	}
	m.mu.RLock()
	closed := m.closed
	m.mu.RUnlock()
	if closed {
		return Position{}, ErrClosed
	}
	h := m.bus.hist.channel(channel, true, opts)
	h.mu.Lock()
	defer h.mu.Unlock()
	now := time.Now()
	h.trim(now, opts)
	if len(h.entries) == 0 && h.top > 0 {
		// Everything expired: the history is lost, a new epoch starts.
		h.epoch, h.top = NewEpoch(), 0
	}
	h.top++
	pub := Publication{Position: Position{Offset: h.top, Epoch: h.epoch}, Payload: payload}
	h.entries = append(h.entries, memPub{pub: pub, at: now})
	h.trim(now, opts)

	m.bus.mu.RLock()
	set := m.bus.subs[channel]
	targets := make([]*Memory, 0, len(set))
	for b := range set {
		targets = append(targets, b)
	}
	m.bus.mu.RUnlock()
	for _, b := range targets {
		b.mu.RLock()
		if b.h != nil && !b.closed {
			if hh, ok := b.h.(HistoryHandler); ok {
				hh.DeliverHistory(channel, pub)
			} else {
				b.h.Deliver(channel, payload)
			}
		}
		b.mu.RUnlock()
	}
	return pub.Position, nil
}

// ReadHistory implements History.
func (m *Memory) ReadHistory(_ context.Context, channel string, q HistoryQuery, opts HistoryOptions) (HistoryResult, error) {
	if err := opts.Valid(); err != nil {
		return HistoryResult{}, err
	}
	m.mu.RLock()
	closed := m.closed
	m.mu.RUnlock()
	if closed {
		return HistoryResult{}, ErrClosed
	}
	h := m.bus.hist.channel(channel, true, opts)
	h.mu.Lock()
	defer h.mu.Unlock()
	h.trim(time.Now(), opts)
	if len(h.entries) == 0 && h.top > 0 {
		h.epoch, h.top = NewEpoch(), 0
	}
	pubs := make([]Publication, len(h.entries))
	for i, e := range h.entries {
		pubs[i] = e.pub
	}
	return Select(pubs, Position{Offset: h.top, Epoch: h.epoch}, q)
}

// Select answers q from pubs, every stored publication of a channel
// (oldest first, contiguous offsets ending at top). It is shared by the
// broker implementations.
func Select(pubs []Publication, top Position, q HistoryQuery) (HistoryResult, error) {
	res := HistoryResult{Top: top, Recovered: true}
	limit := max(q.Limit, 0)
	if q.Since == nil {
		if len(pubs) > limit {
			pubs = pubs[len(pubs)-limit:]
		}
		res.Publications = pubs
		return res, nil
	}
	since := *q.Since
	if since.Offset == 0 && since.Epoch == "" {
		// Before anything: the position of a channel that had no history
		// on a broker that gives such channels no epoch.
		since.Epoch = top.Epoch
	}
	if since.Epoch == top.Epoch && since.Offset > top.Offset {
		return HistoryResult{}, ErrFuturePosition
	}
	first := 0
	if since.Epoch == top.Epoch {
		for first < len(pubs) && pubs[first].Offset <= since.Offset {
			first++
		}
		// Recovered when nothing between since and the oldest kept one
		// was dropped.
		oldest := top.Offset + 1 // nothing stored: the next one
		if len(pubs) > 0 {
			oldest = pubs[0].Offset
		}
		res.Recovered = since.Offset+1 >= oldest
	} else {
		res.Recovered = false
	}
	pubs = pubs[first:]
	if len(pubs) > limit {
		pubs = pubs[:limit]
	}
	res.Publications = pubs
	return res, nil
}

var _ History = (*Memory)(nil)

// PublishHistoryBatch implements HistoryBatchPublisher.
func (m *Memory) PublishHistoryBatch(ctx context.Context, msgs []HistoryMessage) ([]Position, []error) {
	pos := make([]Position, len(msgs))
	var errs []error
	for i, msg := range msgs {
		var err error
		if pos[i], err = m.PublishHistory(ctx, msg.Channel, msg.Payload, msg.Options); err != nil {
			if errs == nil {
				errs = make([]error, len(msgs))
			}
			errs[i] = err
		}
	}
	return pos, errs
}

var _ HistoryBatchPublisher = (*Memory)(nil)
