package client

import (
	"context"
	"errors"
	"strconv"

	"github.com/socketcluster-go/socketcluster/internal/wire"
	"github.com/socketcluster-go/socketcluster/protocol"
)

// Channel history and recovery (the server's Options.History; the wire
// convention is in docs/recovery.md).
//
// On a history channel every publication carries its position. A channel
// subscribed with Recover remembers the position of the last publication
// it delivered and, when the client reconnects, subscribes again with it:
// the server then sends exactly what was missed, in order, before the live
// publications. Whether that worked is reported by a RecoveryEvent.

// Position is the place of a publication in its channel's history: an
// offset (1, 2, 3... without gaps) within an epoch, which changes when the
// server lost the history.
type Position struct {
	Offset uint64 `json:"offset"`
	Epoch  string `json:"epoch"`
}

// Recover makes the channel resubscribe, after a reconnection, from the
// position of the last publication it received, so that nothing published
// meanwhile is missed (on a history channel; subscribing to a channel
// without history fails).
func Recover() SubscribeOption { return func(o *subscribeOptions) { o.recover = true } }

// RecoverFrom is Recover starting from pos (saved from an earlier
// session): the first subscription already asks for what followed pos.
func RecoverFrom(pos Position) SubscribeOption {
	return func(o *subscribeOptions) { o.recover, o.from = true, &pos }
}

// RecoveryEvent reports the start of a subscription to a history channel
// (EventName "recovery"): Position is where the stream of publications
// delivered next starts. Recovered is nil for a plain subscription; with
// Recover it tells whether every publication missed since the channel's
// last position was delivered (false: the history no longer had them, or
// it was lost on the server side; the application should reload its
// state). The server also sends one with Recovered false when it lost
// publications of the channel itself.
type RecoveryEvent struct {
	Channel   string
	Position  Position
	Recovered *bool
	Missed    int // publications recovered
}

// EventName implements Event.
func (RecoveryEvent) EventName() string { return "recovery" }

// Position returns, for a channel subscribed with Recover, the position of
// the last publication it received (or where its subscription started);
// ok is false before any.
func (ch *Channel) Position() (pos Position, ok bool) {
	ch.c.mu.Lock()
	defer ch.c.mu.Unlock()
	return ch.pos, ch.hasPos
}

// subscribeData is the data of the channel's #subscribe: the
// application's, with "recover" added when the channel recovers and has a
// position. c.mu held.
func (ch *Channel) subscribeData() []byte {
	if !ch.recover || !ch.hasPos {
		return ch.data
	}
	rec := []byte(`{"recover":{"offset":`)
	rec = strconv.AppendUint(rec, ch.pos.Offset, 10)
	rec = append(rec, `,"epoch":`...)
	rec = wire.AppendString(rec, ch.pos.Epoch)
	rec = append(rec, '}')
	if len(ch.data) > 2 { // an object with members: {"recover":…, members}
		return append(append(rec, ','), ch.data[1:]...)
	}
	return append(rec, '}')
}

// errRecoverData is returned by Subscribe for Recover with data that is
// not a JSON object (the position travels in it).
var errRecoverData = errors.New("client: Recover needs the subscription data (WithData) to be a JSON object or absent")

// notePosition records the position of a #publish packet's data. c.mu
// held.
func (ch *Channel) notePosition(data protocol.Data) {
	var pos Position
	var hasOff, hasEpoch bool
	wire.Object(data, func(k string, v []byte) {
		switch k {
		case "offset":
			if n, err := strconv.ParseUint(string(v), 10, 64); err == nil {
				pos.Offset, hasOff = n, true
			}
		case "epoch":
			pos.Epoch, hasEpoch = wire.Unquote(v)
		}
	})
	if hasOff && hasEpoch {
		ch.pos, ch.hasPos = pos, true
	}
}

// handleRecovery handles an sc.recovery event.
func (c *Client) handleRecovery(data protocol.Data) {
	var ev struct {
		Channel   string `json:"channel"`
		Offset    uint64 `json:"offset"`
		Epoch     string `json:"epoch"`
		Recovered *bool  `json:"recovered"`
		Missed    int    `json:"missed"`
	}
	if data.Decode(&ev) != nil {
		return
	}
	c.mu.Lock()
	if ch := c.channels[ev.Channel]; ch != nil {
		ch.pos, ch.hasPos = Position{Offset: ev.Offset, Epoch: ev.Epoch}, true
	}
	c.mu.Unlock()
	c.emit(RecoveryEvent{Channel: ev.Channel, Position: Position{Offset: ev.Offset, Epoch: ev.Epoch}, Recovered: ev.Recovered, Missed: ev.Missed})
}

// HistoryPublication is one publication read with History.
type HistoryPublication struct {
	Position
	Data protocol.Data
}

// HistoryPage is the answer of History.
type HistoryPage struct {
	Publications []HistoryPublication // oldest first
	Top          Position             // the channel's latest position
	Recovered    bool                 // with since: nothing after it is missing
}

// History reads a history channel's publications with the server's
// sc.history procedure: with since nil the newest limit (limit < 0: as
// many as the channel keeps), else the oldest limit after since. The
// server allows it where it would allow subscribing.
func (c *Client) History(ctx context.Context, channel string, limit int, since *Position) (HistoryPage, error) {
	req := map[string]any{"channel": channel}
	if limit >= 0 {
		req["limit"] = limit
	}
	if since != nil {
		req["since"] = map[string]any{"offset": since.Offset, "epoch": since.Epoch}
	}
	res, err := c.Invoke(ctx, "sc.history", req)
	if err != nil {
		return HistoryPage{}, err
	}
	var ans struct {
		Offset       uint64 `json:"offset"`
		Epoch        string `json:"epoch"`
		Recovered    *bool  `json:"recovered"`
		Publications []struct {
			Offset uint64        `json:"offset"`
			Epoch  string        `json:"epoch"`
			Data   protocol.Data `json:"data"`
		} `json:"publications"`
	}
	if err := res.Decode(&ans); err != nil {
		return HistoryPage{}, err
	}
	page := HistoryPage{Top: Position{Offset: ans.Offset, Epoch: ans.Epoch}, Recovered: ans.Recovered == nil || *ans.Recovered}
	for _, p := range ans.Publications {
		page.Publications = append(page.Publications, HistoryPublication{Position: Position{Offset: p.Offset, Epoch: p.Epoch}, Data: p.Data})
	}
	return page, nil
}
