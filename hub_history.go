package socketcluster

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"sync/atomic"

	"github.com/socketcluster-go/socketcluster/broker"
	"github.com/socketcluster-go/socketcluster/history"
	"github.com/socketcluster-go/socketcluster/internal/wire"
	"github.com/socketcluster-go/socketcluster/internal/wsconn"
)

// Channel history in the hub (docs/recovery.md).
//
// A publish on a history channel is not delivered here at once: it goes,
// in order, through a second outbox to broker.History.PublishHistory, and
// is answered once the broker has stored it. Every instance, this one
// included, gets it back from the broker with its position
// (DeliverHistory), in offset order and exactly once, also after broker
// outages (the broker catches up from the stored history). The #publish
// packets of history channels carry the position ("offset", "epoch").
//
// A socket subscribing to a history channel is first put in recovery: the
// live publications for it are held in a buffer while the hub reads what
// it must get first (what it missed since the position it asked to recover
// from, or what was published since its subscription started); then it
// gets an sc.recovery event, those publications, the buffered ones not
// already sent, and from then on the live stream.

// historyState is the hub's history part; nil when no channel keeps
// history.
type historyState struct {
	rules []history.Rule
	b     broker.History
	out   *outbox // history publishes, in order

	mu         sync.Mutex
	recovering map[string]map[*Socket]*recovery // channel → sockets in recovery
	nrec       atomic.Int32                     // len of all the sets: fast path when 0

	counters historyCounters
}

type historyCounters struct {
	publishes        atomic.Int64
	publishFailures  atomic.Int64
	recoveries       atomic.Int64
	recoveryFailures atomic.Int64
	lost             atomic.Int64
	outages          atomic.Int64
}

// HistoryStats returns the history counters.
func (srv *Server) HistoryStats() history.Stats {
	var c *historyCounters
	if h := srv.hub.hist; h != nil {
		c = &h.counters
	} else {
		c = &srv.hub.noHistCounters
	}
	return history.Stats{
		Publishes:        c.publishes.Load(),
		PublishFailures:  c.publishFailures.Load(),
		Recoveries:       c.recoveries.Load(),
		RecoveryFailures: c.recoveryFailures.Load(),
		Lost:             c.lost.Load(),
		BrokerOutages:    c.outages.Load(),
	}
}

// recovery is a socket's subscription being recovered: live publications
// wait in buf.
type recovery struct {
	buf      []broker.Publication
	overflow bool // more than the history size arrived meanwhile
}

// initHistory sets the history part up when Options.History is set.
func (h *hub) initHistory() error {
	rules := h.srv.opts.History
	if len(rules) == 0 {
		return nil
	}
	hb, ok := h.broker.(broker.History)
	if !ok {
		return errors.New("socketcluster: Options.History is set but the broker (" + brokerName(h.broker) + ") does not store history (broker.History)")
	}
	h.hist = &historyState{rules: rules, b: hb, recovering: make(map[string]map[*Socket]*recovery)}
	h.hist.out = newOutbox(historyPublisher{Broker: hb, h: h}, h.srv.opts.BrokerTimeout, h.srv.opts.BrokerQueueLimit, func(n int) {
		h.srv.counters.brokerErrors.Add(int64(n))
		h.hist.counters.publishFailures.Add(int64(n))
	})
	return nil
}

func brokerName(b broker.Broker) string { return fmt.Sprintf("%T", b) }

// historyOf returns channel's history limits; ok is false when it keeps
// none. The first rule with a matching pattern wins.
func (h *hub) historyOf(channel string) (broker.HistoryOptions, bool) {
	if h.hist == nil {
		return broker.HistoryOptions{}, false
	}
	return history.Match(h.hist.rules, channel)
}

// History implements broker.HistoryHandler.
func (h *hub) History(channel string) (broker.HistoryOptions, bool) { return h.historyOf(channel) }

// historyPublisher is the broker seen by the history outbox: Publish
// stores with history.
type historyPublisher struct {
	broker.Broker
	h *hub
}

// InProcess lets the outbox call an in-process history broker (Memory)
// from each publisher directly, as for plain publishes.
func (p historyPublisher) InProcess() bool {
	ip, ok := p.Broker.(broker.InProcess)
	return ok && ip.InProcess()
}

// PublishBatch stores msgs in order, in one round trip when the broker can
// (broker.HistoryBatchPublisher).
func (p historyPublisher) PublishBatch(ctx context.Context, msgs []broker.Message) []error {
	hist := make([]broker.HistoryMessage, len(msgs))
	for i, m := range msgs {
		opts, _ := p.h.historyOf(m.Channel)
		hist[i] = broker.HistoryMessage{Channel: m.Channel, Payload: m.Payload, Options: opts}
	}
	var errs []error
	if bp, ok := p.h.hist.b.(broker.HistoryBatchPublisher); ok {
		_, errs = bp.PublishHistoryBatch(ctx, hist)
	} else {
		for i, m := range hist {
			if _, err := p.h.hist.b.PublishHistory(ctx, m.Channel, m.Payload, m.Options); err != nil {
				if errs == nil {
					errs = make([]error, len(msgs))
				}
				errs[i] = err
			}
		}
	}
	ok := len(msgs)
	for _, err := range errs {
		if err != nil {
			ok--
		}
	}
	p.h.hist.counters.publishes.Add(int64(ok))
	return errs
}

func (p historyPublisher) Publish(ctx context.Context, channel string, payload []byte) error {
	opts, ok := p.h.historyOf(channel)
	if !ok {
		return errors.New("channel has no history")
	}
	if _, err := p.h.hist.b.PublishHistory(ctx, channel, payload, opts); err != nil {
		return err
	}
	p.h.hist.counters.publishes.Add(1)
	return nil
}

// publishHistory queues a publish on a history channel. done (never nil)
// gets nil once the broker stored it, else an error saying it may or may
// not have been stored; nobody here got it before it was stored.
func (h *hub) publishHistory(channel string, data []byte, done func(error)) {
	h.hist.out.push(channel, data, func(err error) {
		var cpe *ClusterPublishError
		if errors.As(err, &cpe) {
			cause := "unknown"
			switch {
			case errors.Is(cpe.Err, context.DeadlineExceeded):
				cause = "the broker did not answer in time"
			case cpe.Err != nil:
				cause = cpe.Err.Error()
			}
			err = errors.New("not confirmed stored in the channel's history (it may or may not have been, and been delivered) - " + cause)
		}
		done(err)
	})
}

// DeliverHistory implements broker.HistoryHandler: a publication of a
// history channel, in offset order.
func (h *hub) DeliverHistory(channel string, pub broker.Publication) {
	h.srv.counters.publishes.Add(1)
	c := h.lookup(channel)
	if c == nil {
		return
	}
	data := pub.Payload
	if len(data) == 0 {
		data = nil
	}
	var held map[*Socket]struct{}
	if h.hist.nrec.Load() > 0 {
		h.hist.mu.Lock()
		set := h.hist.recovering[channel]
		if len(set) > 0 {
			held = make(map[*Socket]struct{}, len(set))
			opts, _ := h.historyOf(channel)
			for s, r := range set {
				held[s] = struct{}{}
				if len(r.buf) >= opts.Size {
					r.overflow = true
					continue
				}
				r.buf = append(r.buf, pub)
			}
		}
		h.hist.mu.Unlock()
	}
	var p *publication
	var rb *ringBatch
	n := 0
	slots := c.subs.view()
	for i := range slots {
		s := slots[i].Load()
		if s == nil {
			continue
		}
		if _, wait := held[s]; wait {
			continue
		}
		if p == nil {
			var err error
			if p, err = h.encodeAt(channel, data, pub.Position); err != nil {
				h.srv.emitWarning(err)
				return
			}
			p.outbound = h.srv.HasMiddleware(MiddlewareOutbound)
			rb = h.srv.ringBatchFor(c, p, len(slots))
		}
		s.deliverPublish(p, rb)
		n++
	}
	if p != nil {
		h.srv.endFanout(c, rb)
	}
	h.srv.counters.deliveries.Add(int64(n))
	if c.exch.Load() {
		h.srv.exchange.deliver(channel, Data(data))
	}
}

// encodeAt is encode for a publication with a position.
func (h *hub) encodeAt(channel string, data []byte, pos broker.Position) (*publication, error) {
	buf := newPacketBuf(len(channel) + len(data) + len(pos.Epoch) + 80)
	buf = appendPublishAt(buf, channel, data, pos)
	payload, bin, err := h.srv.packetPayload(buf)
	if err != nil {
		return nil, err
	}
	frame := h.srv.plainFrame(buf, payload, bin)
	return &publication{channel: channel, data: data, packet: buf[wsconn.MaxHeader:], payload: payload, binary: bin, frame: frame, pos: &pos}, nil
}

// appendPublishAt appends a #publish packet carrying the position:
// {"event":"#publish","data":{"channel":c,"data":d,"offset":n,"epoch":e}}.
func appendPublishAt(dst []byte, channel string, data []byte, pos broker.Position) []byte {
	dst = append(dst, `{"event":"#publish","data":{"channel":`...)
	dst = wire.AppendString(dst, channel)
	if data != nil {
		dst = append(dst, `,"data":`...)
		dst = append(dst, data...)
	}
	dst = append(dst, `,"offset":`...)
	dst = strconv.AppendUint(dst, pos.Offset, 10)
	dst = append(dst, `,"epoch":`...)
	dst = wire.AppendString(dst, pos.Epoch)
	return append(dst, "}}"...)
}

// HistoryLost implements broker.HistoryHandler: this instance missed
// publications of channel that are no longer stored. Reported as a
// warning, a log line and a metric; the sockets subscribed here get an
// sc.recovery event with recovered false.
func (h *hub) HistoryLost(channel string, last broker.Position, err error) {
	h.hist.counters.lost.Add(1)
	h.srv.emitWarning(NewError("HistoryLostError", "Publications of the "+channel+" channel after offset "+strconv.FormatUint(last.Offset, 10)+" of epoch "+last.Epoch+" were missed by this instance and are no longer in the history - "+err.Error()))
	h.srv.opts.Logger.Warn("socketcluster: channel history lost", "channel", channel, "offset", last.Offset, "epoch", last.Epoch, "error", err.Error())
	c := h.lookup(channel)
	if c == nil {
		return
	}
	ev := recoveryEvent(channel, last, false, true, 0)
	slots := c.subs.view()
	for i := range slots {
		if s := slots[i].Load(); s != nil {
			s.sendEvent("sc.recovery", ev)
		}
	}
}

// outage is called by Status for a broker connection loss.
func (h *hub) outage(err error) {
	c := &h.noHistCounters
	if h.hist != nil {
		c = &h.hist.counters
	}
	c.outages.Add(1)
	h.srv.emit(BrokerOutageEvent{Error: err})
}

// BrokerOutageEvent is emitted by the server when its broker connection is
// lost, or the broker dropped messages it could not deliver in time
// (Error says which). Publications on channels without history made
// meanwhile on other instances are lost for this one (at most once);
// history channels are caught up once the broker is back.
type BrokerOutageEvent struct {
	Error error
}

// EventName implements Event.
func (BrokerOutageEvent) EventName() string { return "brokerOutage" }

// recoveryEvent is the data of an sc.recovery event.
func recoveryEvent(channel string, pos broker.Position, recovered, asked bool, missed int) []byte {
	b := append([]byte(`{"channel":`), wire.AppendString(nil, channel)...)
	b = append(b, `,"offset":`...)
	b = strconv.AppendUint(b, pos.Offset, 10)
	b = append(b, `,"epoch":`...)
	b = wire.AppendString(b, pos.Epoch)
	if asked {
		b = append(b, `,"recovered":`...)
		b = strconv.AppendBool(b, recovered)
		b = append(b, `,"missed":`...)
		b = strconv.AppendInt(b, int64(missed), 10)
	}
	return append(b, '}')
}

// beginRecovery puts s in recovery on channel: live publications for it
// are held until endRecovery.
func (h *hub) beginRecovery(s *Socket, channel string) {
	h.hist.mu.Lock()
	set := h.hist.recovering[channel]
	if set == nil {
		set = make(map[*Socket]*recovery)
		h.hist.recovering[channel] = set
	}
	if _, ok := set[s]; !ok {
		set[s] = &recovery{}
		h.hist.nrec.Add(1)
	}
	h.hist.mu.Unlock()
}

// endRecovery takes s out of recovery on channel and returns what was held.
func (h *hub) endRecovery(s *Socket, channel string) *recovery {
	h.hist.mu.Lock()
	defer h.hist.mu.Unlock()
	set := h.hist.recovering[channel]
	r := set[s]
	if r != nil {
		delete(set, s)
		h.hist.nrec.Add(-1)
		if len(set) == 0 {
			delete(h.hist.recovering, channel)
		}
	}
	return r
}

// errNoHistory is the error for a recovery or history request on a
// channel without history.
func errNoHistory(channel string) error {
	return NewError("HistoryError", "The "+channel+" channel keeps no history")
}

// parseRecover reads the "recover" member of a #subscribe packet's data:
// {"recover":{"offset":n,"epoch":"e"}}. It returns nil when there is none.
func parseRecover(subData []byte) (*broker.Position, error) {
	if len(subData) == 0 || subData[0] != '{' {
		return nil, nil
	}
	var raw []byte
	wire.Object(subData, func(k string, v []byte) {
		if k == "recover" {
			raw = v
		}
	})
	if raw == nil || string(raw) == "null" {
		return nil, nil
	}
	return parsePosition(raw, "recover")
}

// maxSafeOffset is the largest offset a JavaScript number holds exactly.
const maxSafeOffset = 1<<53 - 1

// parsePosition reads {"offset":n,"epoch":"e"}.
func parsePosition(raw []byte, what string) (*broker.Position, error) {
	bad := func(why string) error {
		return NewError("InvalidArgumentsError", "Invalid "+what+" position: "+why+`; want {"offset":<integer 0..2^53-1>,"epoch":"<string>"}`)
	}
	var pos broker.Position
	var hasOff, hasEpoch bool
	var ferr error
	ok := wire.Object(raw, func(k string, v []byte) {
		switch k {
		case "offset":
			n, err := strconv.ParseUint(string(v), 10, 64)
			if err != nil || n > maxSafeOffset {
				ferr = bad("offset " + strconv.Quote(short(string(v))) + " is not an integer in range")
				return
			}
			pos.Offset, hasOff = n, true
		case "epoch":
			e, ok := wire.Unquote(v)
			if !ok || len(e) > 64 {
				ferr = bad("epoch is not a string of at most 64 characters")
				return
			}
			pos.Epoch, hasEpoch = e, true
		}
	})
	switch {
	case !ok:
		return nil, bad("not an object")
	case ferr != nil:
		return nil, ferr
	case !hasOff || !hasEpoch:
		return nil, bad("offset or epoch missing")
	}
	return &pos, nil
}

func short(s string) string {
	if len(s) > 40 {
		return s[:40] + "…"
	}
	return s
}

// historyCtx bounds a history read made for a client.
func (h *hub) historyCtx() (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.Background(), h.srv.opts.BrokerTimeout)
}

// startPosition reads channel's current position, the start of a
// subscription without recovery.
func (h *hub) startPosition(channel string, opts broker.HistoryOptions) (broker.Position, error) {
	ctx, cancel := h.historyCtx()
	defer cancel()
	res, err := h.hist.b.ReadHistory(ctx, channel, broker.HistoryQuery{}, opts)
	return res.Top, err
}

// readRecovery reads what s must get first on channel, where it is
// subscribed and in recovery: the publications after since (the client's
// position, or the start of the subscription). On an error (a future
// position, a broker failure) the recovery is ended; the caller
// unsubscribes s and answers with the error.
func (h *hub) readRecovery(s *Socket, channel string, since broker.Position, opts broker.HistoryOptions) (broker.HistoryResult, error) {
	ctx, cancel := h.historyCtx()
	res, err := h.hist.b.ReadHistory(ctx, channel, broker.HistoryQuery{Since: &since, Limit: opts.Size}, opts)
	cancel()
	if err != nil {
		h.endRecovery(s, channel)
		if errors.Is(err, broker.ErrFuturePosition) {
			return res, NewError("InvalidArgumentsError", "Invalid recover position: offset "+strconv.FormatUint(since.Offset, 10)+" is ahead of the "+channel+" channel's history (epoch "+since.Epoch+")")
		}
		return res, NewError("BrokerError", "Failed to read the history of the "+channel+" channel - "+err.Error())
	}
	return res, nil
}

// finishRecovery sends s an sc.recovery event, the publications res holds
// (when recovered), then what was held meanwhile, and ends the recovery.
// asked tells whether the client asked to recover.
func (h *hub) finishRecovery(s *Socket, channel string, since broker.Position, asked bool, res broker.HistoryResult, opts broker.HistoryOptions) {
	var send []broker.Publication
	start := since
	if res.Recovered {
		send = res.Publications
	} else {
		start = res.Top // failed: the client starts over from now
	}
	if asked {
		if res.Recovered {
			h.hist.counters.recoveries.Add(1)
		} else {
			h.hist.counters.recoveryFailures.Add(1)
		}
	} else if !res.Recovered {
		h.hist.counters.lost.Add(1)
	}
	s.sendEvent("sc.recovery", recoveryEvent(channel, start, res.Recovered, asked || !res.Recovered, len(send)))
	last := start
	for _, p := range send {
		h.sendAt(s, channel, p)
		last = p.Position
	}
	// Drain what was held; more may arrive while sending, so loop until
	// the recovery ends with an empty buffer.
	for {
		h.hist.mu.Lock()
		r := h.hist.recovering[channel][s]
		var held []broker.Publication
		overflow := false
		if r != nil {
			held, r.buf = r.buf, nil
			overflow = r.overflow
			r.overflow = false
			if len(held) == 0 && !overflow {
				delete(h.hist.recovering[channel], s)
				if len(h.hist.recovering[channel]) == 0 {
					delete(h.hist.recovering, channel)
				}
				h.hist.nrec.Add(-1)
			}
		}
		h.hist.mu.Unlock()
		if r == nil {
			return // unsubscribed meanwhile
		}
		for _, p := range held {
			if p.Epoch == last.Epoch && p.Offset <= last.Offset {
				continue // sent from the history
			}
			h.sendAt(s, channel, p)
			last = p.Position
		}
		if overflow {
			// More arrived than the buffer holds: read them back.
			ctx, cancel := h.historyCtx()
			res, err := h.hist.b.ReadHistory(ctx, channel, broker.HistoryQuery{Since: &last, Limit: opts.Size}, opts)
			cancel()
			if err != nil || !res.Recovered {
				h.hist.counters.lost.Add(1)
				s.sendEvent("sc.recovery", recoveryEvent(channel, res.Top, false, true, 0))
				last = res.Top
			} else {
				for _, p := range res.Publications {
					h.sendAt(s, channel, p)
					last = p.Position
				}
			}
			continue
		}
		if len(held) == 0 {
			return
		}
	}
}

// sendAt sends one publication to s.
func (h *hub) sendAt(s *Socket, channel string, p broker.Publication) {
	data := p.Payload
	if len(data) == 0 {
		data = nil
	}
	pub, err := h.encodeAt(channel, data, p.Position)
	if err != nil {
		s.emitError(err)
		return
	}
	pub.outbound = h.srv.HasMiddleware(MiddlewareOutbound)
	h.srv.counters.deliveries.Add(1)
	s.deliverPublish(pub, nil)
}
