package redisbroker

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/redis/rueidis"

	"github.com/socketcluster-go/socketcluster/broker"
	"github.com/socketcluster-go/socketcluster/broker/internal/dqueue"
	"github.com/socketcluster-go/socketcluster/broker/internal/hseq"
	"github.com/socketcluster-go/socketcluster/broker/internal/lifecycle"
)

// Channel history on Redis Streams (see the package documentation).
//
// A history channel c has two keys, in one hash slot:
//
//	Prefix + "{h:" + c + "}:s"   the stream: fields o (offset), d (payload)
//	Prefix + "{h:" + c + "}:m"   a hash: e (epoch), o (latest offset)
//
// A Lua script stores a publication and publishes it on the channel's
// pub/sub channel as "<offset> <epoch> <payload>", atomically, so that
// offsets reach subscribers in order (on a cluster in sharded mode the
// SPUBLISH goes out after the script: the shard channel may live in
// another slot; the receiving side puts late messages back in order from
// the stream).

const publishScript = `
local epoch = redis.call('HGET', KEYS[2], 'e')
if not epoch then
  epoch = ARGV[4]
  redis.call('DEL', KEYS[1])
  redis.call('HSET', KEYS[2], 'e', epoch, 'o', 0)
end
local off = redis.call('HINCRBY', KEYS[2], 'o', 1)
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
redis.call('XADD', KEYS[1], 'MAXLEN', ARGV[2], '*', 'o', off, 'd', ARGV[1])
redis.call('XTRIM', KEYS[1], 'MINID', tostring(now - tonumber(ARGV[3])))
redis.call('PEXPIRE', KEYS[1], ARGV[3])
redis.call('PEXPIRE', KEYS[2], ARGV[3])
local msg = off .. ' ' .. epoch .. ' ' .. ARGV[1]
if ARGV[6] == 'p' then
  redis.call('PUBLISH', ARGV[5], msg)
elseif ARGV[6] == 's' then
  redis.call('SPUBLISH', ARGV[5], msg)
end
return {off, epoch}
`

// readScript returns {epoch, top, entries newest first}. ARGV: new epoch
// (used when the channel has none yet), ttl ms, size, limit, since set
// ("1"/"0"), since offset, since epoch.
const readScript = `
local m = redis.call('HMGET', KEYS[2], 'e', 'o')
local epoch, top = m[1], tonumber(m[2] or '0')
if not epoch then
  epoch = ARGV[1]
  redis.call('DEL', KEYS[1])
  redis.call('HSET', KEYS[2], 'e', epoch, 'o', 0)
  redis.call('PEXPIRE', KEYS[2], ARGV[2])
  return {epoch, 0, {}}
end
local size = tonumber(ARGV[3])
local n = tonumber(ARGV[4])
if ARGV[5] == '1' then
  if ARGV[7] == epoch then n = top - tonumber(ARGV[6]) else n = size end
end
if n > size then n = size end
if n <= 0 then return {epoch, top, {}} end
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local minid = now - tonumber(ARGV[2])
if minid < 0 then minid = 0 end
return {epoch, top, redis.call('XREVRANGE', KEYS[1], '+', tostring(minid), 'COUNT', n)}
`

var (
	luaPublish = rueidis.NewLuaScript(publishScript)
	luaRead    = rueidis.NewLuaScript(readScript)
)

var (
	_ broker.History               = (*Broker)(nil)
	_ broker.HistoryBatchPublisher = (*Broker)(nil)
)

func (b *Broker) historyKeys(channel string) []string {
	base := b.opts.Prefix + "{h:" + channel + "}:"
	return []string{base + "s", base + "m"}
}

// PublishHistory implements broker.History: it returns once Redis has
// stored the publication (a script adds it to the channel's stream, trims
// the stream to opts.Size entries and opts.TTL, and publishes it). An
// error means the publication may or may not have been stored: a reply
// lost with the connection is an error too.
func (b *Broker) PublishHistory(ctx context.Context, channel string, payload []byte, opts broker.HistoryOptions) (broker.Position, error) {
	pos, errs := b.PublishHistoryBatch(ctx, []broker.HistoryMessage{{Channel: channel, Payload: payload, Options: opts}})
	if errs != nil {
		return broker.Position{}, errs[0]
	}
	return pos[0], nil
}

// PublishHistoryBatch implements broker.HistoryBatchPublisher: the scripts
// of every message go in one pipeline (on a cluster, one per node), in
// order.
func (b *Broker) PublishHistoryBatch(ctx context.Context, msgs []broker.HistoryMessage) ([]broker.Position, []error) {
	pos := make([]broker.Position, len(msgs))
	var errs []error
	fail := func(i int, err error) {
		if errs == nil {
			errs = make([]error, len(msgs))
		}
		if b.state.Load() == lifecycle.Closed {
			err = broker.ErrClosed
		} else if !errors.Is(err, broker.ErrClosed) {
			err = fmt.Errorf("redisbroker: publish with history on %s: %w", b.url, err)
		}
		errs[i] = err
	}
	c, err := b.publishClient()
	if err != nil {
		for i := range msgs {
			fail(i, err)
		}
		return pos, errs
	}
	mode := "p"
	sepPublish := false
	if b.opts.Sharded {
		mode = "s"
		if b.m.cluster {
			mode, sepPublish = "n", true
		}
	}
	execs := make([]rueidis.LuaExec, 0, len(msgs))
	idx := make([]int, 0, len(msgs))
	for i, m := range msgs {
		if err := m.Options.Valid(); err != nil {
			fail(i, err)
			continue
		}
		execs = append(execs, rueidis.LuaExec{Keys: b.historyKeys(m.Channel), Args: []string{
			rueidis.BinaryString(m.Payload), strconv.Itoa(m.Options.Size), strconv.FormatInt(m.Options.TTL.Milliseconds(), 10),
			broker.NewEpoch(), b.opts.Prefix + m.Channel, mode,
		}})
		idx = append(idx, i)
	}
	if len(execs) == 0 {
		return pos, errs
	}
	var spub rueidis.Commands
	for j, r := range luaPublish.ExecMulti(ctx, c, execs...) {
		i := idx[j]
		res, err := r.ToArray()
		if err == nil && len(res) != 2 {
			err = fmt.Errorf("unexpected reply of %d elements", len(res))
		}
		if err == nil {
			var off int64
			if off, err = res[0].AsInt64(); err == nil {
				pos[i].Offset = uint64(off)
				pos[i].Epoch, err = res[1].ToString()
			}
		}
		if err != nil {
			fail(i, err)
			continue
		}
		if sepPublish {
			msg := strconv.FormatUint(pos[i].Offset, 10) + " " + pos[i].Epoch + " " + string(msgs[i].Payload)
			spub = append(spub, c.B().Spublish().Channel(b.opts.Prefix+msgs[i].Channel).Message(msg).Build())
		}
	}
	if len(spub) > 0 {
		// Stored already: should a SPUBLISH fail, subscribers get the
		// publication from the stream with the next one or their next
		// catch-up.
		c.DoMulti(ctx, spub...)
	}
	return pos, errs
}

// ReadHistory implements broker.History. It reads at most opts.Size
// entries in one script call. A channel without history gets an epoch
// (kept for opts.TTL), so that the position it returns stays valid.
func (b *Broker) ReadHistory(ctx context.Context, channel string, q broker.HistoryQuery, opts broker.HistoryOptions) (broker.HistoryResult, error) {
	if err := opts.Valid(); err != nil {
		return broker.HistoryResult{}, err
	}
	if b.state.Load() == lifecycle.Closed {
		return broker.HistoryResult{}, broker.ErrClosed
	}
	cp := b.client.Load()
	if cp == nil {
		return broker.HistoryResult{}, errors.New("redisbroker: ReadHistory before Start")
	}
	c := *cp
	since, soff, sep := "0", "0", ""
	if q.Since != nil {
		since, soff, sep = "1", strconv.FormatUint(q.Since.Offset, 10), q.Since.Epoch
	}
	res, err := luaRead.Exec(ctx, c, b.historyKeys(channel), []string{
		broker.NewEpoch(), strconv.FormatInt(opts.TTL.Milliseconds(), 10), strconv.Itoa(opts.Size),
		strconv.Itoa(max(q.Limit, 0)), since, soff, sep,
	}).ToArray()
	if err != nil {
		if b.state.Load() == lifecycle.Closed {
			return broker.HistoryResult{}, broker.ErrClosed
		}
		return broker.HistoryResult{}, fmt.Errorf("redisbroker: read history on %s: %w", b.url, err)
	}
	top, pubs, err := parseRead(res)
	if err != nil {
		return broker.HistoryResult{}, fmt.Errorf("redisbroker: read history on %s: %w", b.url, err)
	}
	return broker.Select(pubs, top, q)
}

func parseRead(res []rueidis.RedisMessage) (broker.Position, []broker.Publication, error) {
	if len(res) != 3 {
		return broker.Position{}, nil, fmt.Errorf("unexpected reply of %d elements", len(res))
	}
	var top broker.Position
	var err error
	if top.Epoch, err = res[0].ToString(); err != nil {
		return top, nil, err
	}
	t, err := res[1].AsInt64()
	if err != nil {
		return top, nil, err
	}
	top.Offset = uint64(t)
	entries, err := res[2].ToArray()
	if err != nil {
		return top, nil, err
	}
	pubs := make([]broker.Publication, len(entries))
	for i, e := range entries {
		xe, err := e.AsXRangeEntry()
		if err != nil {
			return top, nil, err
		}
		off, err := strconv.ParseUint(xe.FieldValues["o"], 10, 64)
		if err != nil {
			return top, nil, fmt.Errorf("stream entry %s: bad offset: %w", xe.ID, err)
		}
		// Newest first from XREVRANGE: store oldest first.
		pubs[len(entries)-1-i] = broker.Publication{
			Position: broker.Position{Offset: off, Epoch: top.Epoch},
			Payload:  []byte(xe.FieldValues["d"]),
		}
	}
	return top, pubs, nil
}

// parseHistoryMessage splits "<offset> <epoch> <payload>".
func parseHistoryMessage(msg string) (broker.Position, []byte, bool) {
	o, rest, ok := strings.Cut(msg, " ")
	if !ok {
		return broker.Position{}, nil, false
	}
	e, payload, ok := strings.Cut(rest, " ")
	if !ok {
		return broker.Position{}, nil, false
	}
	off, err := strconv.ParseUint(o, 10, 64)
	if err != nil || off == 0 {
		return broker.Position{}, nil, false
	}
	return broker.Position{Offset: off, Epoch: e}, []byte(payload), true
}

// historyOf reports whether channel keeps history.
func (b *Broker) historyOf(channel string) (broker.HistoryOptions, bool) {
	if b.hh == nil {
		return broker.HistoryOptions{}, false
	}
	return b.hh.History(channel)
}

// startPositions reads the current positions of the history channels among
// channels and queues them as starting points, before they are subscribed:
// whatever is published after the read is delivered (a publication made
// between the read and the subscription is read back from the stream when
// the next one arrives).
func (b *Broker) startPositions(ctx context.Context, channels []string) error {
	return hseq.StartPositions(ctx, b.hh, b.ReadHistory, b.q, channels)
}

// queueCatchUp asks the delivery goroutine to read what the history
// channels among channels missed.
func (b *Broker) queueCatchUp(ctx context.Context, channels []string) {
	if b.hh == nil {
		return
	}
	for _, ch := range channels {
		if _, ok := b.hh.History(ch); ok {
			b.q.PushMarker(ctx, dqueue.Item{Channel: ch, Kind: hseq.KindCatchUp})
		}
	}
}

// handleItem runs in the delivery goroutine.
func (b *Broker) handleItem(it dqueue.Item) {
	b.seqStale.Store(hseq.Handle(b.ctx, b.seq, hseq.Target{Handler: b.h, Wanted: b.wanted, HistoryOf: b.historyOf}, it))
}

func newSeq(b *Broker) *hseq.Seq {
	return hseq.New(b.hh, b.ReadHistory, b.opts.OpTimeout)
}
