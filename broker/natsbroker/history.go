package natsbroker

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/socketcluster-go/socketcluster/broker"
	"github.com/socketcluster-go/socketcluster/broker/internal/dqueue"
	"github.com/socketcluster-go/socketcluster/broker/internal/hseq"
)

// Channel history on JetStream (see the package documentation).
//
// The publications of history channels with the same limits go to one
// stream, created on first use: "<PREFIX>_H<size>_<ttl ms>" (dots of the
// prefix become underscores), file storage, capturing the subjects
// "<prefix>.H<size>_<ttl ms>.<channel>" (the channel part as in plain
// subjects), with at most size messages per subject and ttl of age. Each
// message carries its channel position in the headers Sc-Offset and
// Sc-Epoch. A publisher reads the channel's last message (cached after
// its own publishes) and publishes the next offset with
// Nats-Expected-Last-Subject-Sequence, so that two publishers never get
// the same offset: the loser of a race reads again and retries.
//
// Subscribers of a history channel subscribe its subject with core NATS
// (JetStream publishes are ordinary messages for them); gaps and
// reconnections are filled by reading the stream with an ordered
// consumer.

const (
	hdrOffset = "Sc-Offset"
	hdrEpoch  = "Sc-Epoch"
)

// maxPublishTries bounds the retries of a publish that lost a race for an
// offset.
const maxPublishTries = 50

var _ broker.History = (*Broker)(nil)

type histState struct {
	mu      sync.Mutex
	js      jetstream.JetStream
	streams map[string]bool          // stream names known to exist
	last    map[string]lastPublished // subject → last publish by this instance
}

type lastPublished struct {
	seq uint64
	pos broker.Position
}

func optsKey(o broker.HistoryOptions) string {
	return strconv.Itoa(o.Size) + "_" + strconv.FormatInt(o.TTL.Milliseconds(), 10)
}

// streamName is the stream of the channels with limits o: the prefix
// upper-cased, every character a stream name may not hold (".", "*", ">",
// path separators, whitespace...) replaced by "_".
func (b *Broker) streamName(o broker.HistoryOptions) string {
	name := strings.Map(func(r rune) rune {
		switch {
		case r >= 'a' && r <= 'z':
			return r - 'a' + 'A'
		case r >= 'A' && r <= 'Z', r >= '0' && r <= '9', r == '-', r == '_':
			return r
		}
		return '_'
	}, b.prefix)
	return name + "_H" + optsKey(o)
}

// histSubject is the subject a history channel is stored under; hashed
// as in subject.
func (b *Broker) histSubject(channel string, o broker.HistoryOptions) (string, bool) {
	subj, hashed := b.subject(channel)
	return b.prefix + ".H" + optsKey(o) + subj[len(b.prefix):], hashed
}

// liveSubject is the subject subscribers of a history channel listen on:
// a publisher sends each publication there once JetStream has stored it.
// (Core subscribers of the stored subject itself would also receive
// publishes that JetStream rejects, such as the losers of an offset race.)
func (b *Broker) liveSubject(channel string, o broker.HistoryOptions) string {
	subj, _ := b.subject(channel)
	return b.prefix + ".L" + optsKey(o) + subj[len(b.prefix):]
}

// decodeHist returns the channel of a message received on a history or
// live subject.
func (b *Broker) decodeHist(subject string, data []byte) (string, []byte, error) {
	tok, ok := strings.CutPrefix(subject, b.prefix+".")
	if !ok || tok == "" || tok[0] != 'H' && tok[0] != 'L' {
		return "", nil, errForeign
	}
	tok = tok[1:]
	_, rest, ok := strings.Cut(tok, ".")
	if !ok {
		return "", nil, errForeign
	}
	return b.decode(b.prefix+"."+rest, data)
}

func (b *Broker) jetStream() (jetstream.JetStream, error) {
	nc, err := b.conn()
	if err != nil {
		return nil, err
	}
	b.hist.mu.Lock()
	defer b.hist.mu.Unlock()
	if b.hist.js == nil {
		js, err := jetstream.New(nc)
		if err != nil {
			return nil, b.wrap("jetstream", err)
		}
		b.hist.js = js
		b.hist.streams = make(map[string]bool)
		b.hist.last = make(map[string]lastPublished)
	}
	return b.hist.js, nil
}

// stream makes sure the stream for o exists.
func (b *Broker) stream(ctx context.Context, js jetstream.JetStream, o broker.HistoryOptions) (string, error) {
	name := b.streamName(o)
	b.hist.mu.Lock()
	ok := b.hist.streams[name]
	b.hist.mu.Unlock()
	if ok {
		return name, nil
	}
	_, err := js.CreateOrUpdateStream(ctx, jetstream.StreamConfig{
		Name:              name,
		Subjects:          []string{b.prefix + ".H" + optsKey(o) + ".>"},
		Storage:           jetstream.FileStorage,
		MaxMsgsPerSubject: int64(o.Size),
		MaxAge:            o.TTL,
		Discard:           jetstream.DiscardOld,
	})
	if err != nil {
		return "", b.wrap("create stream "+name, err)
	}
	b.hist.mu.Lock()
	b.hist.streams[name] = true
	b.hist.mu.Unlock()
	return name, nil
}

func positionOf(h nats.Header) (broker.Position, bool) {
	off, err := strconv.ParseUint(h.Get(hdrOffset), 10, 64)
	if err != nil || off == 0 {
		return broker.Position{}, false
	}
	return broker.Position{Offset: off, Epoch: h.Get(hdrEpoch)}, true
}

// lastOf reads the last stored publication of subject; seq 0 when none.
func (b *Broker) lastOf(ctx context.Context, js jetstream.JetStream, stream, subject string) (lastPublished, error) {
	s, err := js.Stream(ctx, stream)
	if err != nil {
		return lastPublished{}, err
	}
	m, err := s.GetLastMsgForSubject(ctx, subject)
	if errors.Is(err, jetstream.ErrMsgNotFound) {
		return lastPublished{}, nil
	}
	if err != nil {
		return lastPublished{}, err
	}
	pos, ok := positionOf(m.Header)
	if !ok {
		return lastPublished{}, fmt.Errorf("message %d on %s has no position", m.Sequence, subject)
	}
	return lastPublished{seq: m.Sequence, pos: pos}, nil
}

// PublishHistory implements broker.History: it returns once JetStream has
// stored the publication (file storage). An error means it may or may not
// have been stored.
func (b *Broker) PublishHistory(ctx context.Context, channel string, payload []byte, opts broker.HistoryOptions) (broker.Position, error) {
	if err := opts.Valid(); err != nil {
		return broker.Position{}, err
	}
	js, err := b.jetStream()
	if err != nil {
		return broker.Position{}, err
	}
	stream, err := b.stream(ctx, js, opts)
	if err != nil {
		return broker.Position{}, err
	}
	subj, hashed := b.histSubject(channel, opts)
	data := payload
	if hashed {
		data = frame(channel, payload)
	}
	b.hist.mu.Lock()
	last, cached := b.hist.last[subj]
	b.hist.mu.Unlock()
	for try := 0; try < maxPublishTries; try++ {
		if !cached {
			if last, err = b.lastOf(ctx, js, stream, subj); err != nil {
				return broker.Position{}, b.wrap("publish with history", err)
			}
		}
		pos := broker.Position{Offset: last.pos.Offset + 1, Epoch: last.pos.Epoch}
		if last.seq == 0 {
			pos = broker.Position{Offset: 1, Epoch: broker.NewEpoch()}
		}
		m := nats.NewMsg(subj)
		m.Header.Set(hdrOffset, strconv.FormatUint(pos.Offset, 10))
		m.Header.Set(hdrEpoch, pos.Epoch)
		m.Data = data
		ack, err := js.PublishMsg(ctx, m, jetstream.WithExpectLastSequencePerSubject(last.seq))
		if err != nil {
			var apiErr *jetstream.APIError
			if errors.As(err, &apiErr) && (apiErr.ErrorCode == jetstream.JSErrCodeStreamWrongLastSequence || apiErr.ErrorCode == jetstream.JSErrCodeStreamWrongLastSequenceConstant) {
				cached = false // another publisher was first: read again
				continue
			}
			b.hist.mu.Lock()
			delete(b.hist.last, subj)
			if errors.Is(err, jetstream.ErrNoStreamResponse) || errors.Is(err, nats.ErrNoResponders) {
				delete(b.hist.streams, stream) // recreated on the next publish
			}
			b.hist.mu.Unlock()
			return broker.Position{}, b.wrap("publish with history", err)
		}
		b.hist.mu.Lock()
		b.hist.last[subj] = lastPublished{seq: ack.Sequence, pos: pos}
		b.hist.mu.Unlock()
		// Stored: tell the subscribers. Should this fail, they read it
		// from the stream with the next publication or after reconnecting.
		live := nats.NewMsg(b.liveSubject(channel, opts))
		live.Header = m.Header
		live.Data = data
		_ = b.nc.Load().PublishMsg(live)
		// NoEcho: this connection does not receive its own publish; queue
		// it for the local subscribers here.
		if b.subscribed(channel) {
			b.q.Push(dqueue.Item{Channel: channel, Kind: hseq.KindHist, Pos: pos, Payload: payload})
		}
		return pos, nil
	}
	return broker.Position{}, fmt.Errorf("natsbroker: publish with history on %s: %d publishers raced for channel %q's next offset, giving up", b.url, maxPublishTries, channel)
}

// ReadHistory implements broker.History. It reads the channel's stored
// messages (at most opts.Size) with an ordered consumer. A channel without
// stored publications has the position {0, ""}.
func (b *Broker) ReadHistory(ctx context.Context, channel string, q broker.HistoryQuery, opts broker.HistoryOptions) (broker.HistoryResult, error) {
	if err := opts.Valid(); err != nil {
		return broker.HistoryResult{}, err
	}
	js, err := b.jetStream()
	if err != nil {
		return broker.HistoryResult{}, err
	}
	stream, err := b.stream(ctx, js, opts)
	if err != nil {
		return broker.HistoryResult{}, err
	}
	subj, hashed := b.histSubject(channel, opts)
	last, err := b.lastOf(ctx, js, stream, subj)
	if err != nil {
		return broker.HistoryResult{}, b.wrap("read history", err)
	}
	top := last.pos
	need := q.Limit
	if q.Since != nil {
		need = opts.Size
		if q.Since.Epoch == top.Epoch && top.Offset >= q.Since.Offset {
			need = int(top.Offset - q.Since.Offset)
		}
	}
	var pubs []broker.Publication
	if last.seq > 0 && need > 0 {
		if pubs, err = b.readStream(ctx, js, stream, subj, hashed, last.seq); err != nil {
			return broker.HistoryResult{}, b.wrap("read history", err)
		}
	}
	// Only the current epoch's contiguous run ending at top counts.
	i := len(pubs)
	for i > 0 && pubs[i-1].Epoch == top.Epoch && (i == len(pubs) || pubs[i-1].Offset+1 == pubs[i].Offset) {
		i--
	}
	return broker.Select(pubs[i:], top, q)
}

// readStream reads every stored message of subject up to sequence upTo.
func (b *Broker) readStream(ctx context.Context, js jetstream.JetStream, stream, subj string, hashed bool, upTo uint64) ([]broker.Publication, error) {
	cons, err := js.OrderedConsumer(ctx, stream, jetstream.OrderedConsumerConfig{
		FilterSubjects:    []string{subj},
		DeliverPolicy:     jetstream.DeliverAllPolicy,
		InactiveThreshold: 5 * time.Second,
	})
	if err != nil {
		return nil, err
	}
	var pubs []broker.Publication
	for ctx.Err() == nil {
		batch, err := cons.FetchNoWait(256)
		if err != nil {
			return nil, err
		}
		n := 0
		done := false
		for m := range batch.Messages() {
			n++
			meta, err := m.Metadata()
			if err != nil {
				return nil, err
			}
			if meta.Sequence.Stream > upTo {
				done = true
				continue
			}
			pos, ok := positionOf(m.Headers())
			if !ok {
				continue
			}
			payload := m.Data()
			if hashed {
				_, p, err := b.decodeHist(subj, payload)
				if err != nil {
					continue
				}
				payload = p
			}
			pubs = append(pubs, broker.Publication{Position: pos, Payload: payload})
			if meta.Sequence.Stream == upTo {
				done = true
			}
		}
		if err := batch.Error(); err != nil && !errors.Is(err, nats.ErrTimeout) {
			return nil, err
		}
		if done || n == 0 {
			break
		}
	}
	return pubs, ctx.Err()
}

// historyOf reports whether channel keeps history.
func (b *Broker) historyOf(channel string) (broker.HistoryOptions, bool) {
	if b.hh == nil {
		return broker.HistoryOptions{}, false
	}
	return b.hh.History(channel)
}

// startPositions queues the current positions of the history channels
// among channels, before they are subscribed.
func (b *Broker) startPositions(ctx context.Context, channels []string) error {
	return hseq.StartPositions(ctx, b.hh, b.ReadHistory, b.q, channels)
}

// queueCatchUp asks the delivery goroutine to read what the subscribed
// history channels missed.
func (b *Broker) queueCatchUp(ctx context.Context) {
	if b.hh == nil {
		return
	}
	b.mu.RLock()
	var chs []string
	for ch := range b.subs {
		if _, ok := b.hh.History(ch); ok {
			chs = append(chs, ch)
		}
	}
	b.mu.RUnlock()
	for _, ch := range chs {
		b.q.PushMarker(ctx, dqueue.Item{Channel: ch, Kind: hseq.KindCatchUp})
	}
}

// handleItem runs in the delivery goroutine.
func (b *Broker) handleItem(it dqueue.Item) {
	b.seqStale.Store(hseq.Handle(b.ctx, b.seq, hseq.Target{Handler: b.h, Wanted: b.subscribed, HistoryOf: b.historyOf}, it))
}

func newSeq(b *Broker) *hseq.Seq {
	return hseq.New(b.hh, b.ReadHistory, b.opts.OpTimeout)
}
