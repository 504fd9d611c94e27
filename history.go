package socketcluster

import (
	"context"
	"errors"
	"fmt"
	"strconv"

	"github.com/socketcluster-go/socketcluster/broker"
	"github.com/socketcluster-go/socketcluster/history"
	"github.com/socketcluster-go/socketcluster/internal/wire"
)

// History reads channel's history: with since nil, its newest limit
// publications; else the oldest limit publications after since. limit is
// at most the channel's history Size; a negative limit means Size. It
// fails for a channel without history (a HistoryError) and for a position
// ahead of the history.
func (srv *Server) History(ctx context.Context, channel string, limit int, since *history.Position) (history.Page, error) {
	h := srv.hub
	opts, ok := h.historyOf(channel)
	if !ok {
		return history.Page{}, errNoHistory(channel)
	}
	if limit < 0 {
		limit = opts.Size
	}
	if limit < 0 || limit > opts.Size {
		return history.Page{}, NewError("InvalidArgumentsError", fmt.Sprintf("History limit %d out of range: the %s channel keeps at most %d publications", limit, channel, opts.Size))
	}
	res, err := h.hist.b.ReadHistory(ctx, channel, broker.HistoryQuery{Since: since, Limit: limit}, opts)
	if err != nil {
		if errors.Is(err, broker.ErrFuturePosition) {
			return history.Page{}, NewError("InvalidArgumentsError", fmt.Sprintf("Invalid position: offset %d is ahead of the %s channel's history", since.Offset, channel))
		}
		return history.Page{}, NewError("BrokerError", "Failed to read the history of the "+channel+" channel - "+err.Error())
	}
	page := history.Page{Top: res.Top, Recovered: res.Recovered, Publications: make([]history.Publication, len(res.Publications))}
	for i, p := range res.Publications {
		d := Data(p.Payload)
		if len(d) == 0 {
			d = nil
		}
		page.Publications[i] = history.Publication{Position: p.Position, Data: d}
	}
	return page, nil
}

// handleHistory answers the sc.history procedure:
//
//	{"channel":c, "limit":n, "since":{"offset":o,"epoch":e}}   (limit, since optional)
//
// with {"channel":c,"offset":top,"epoch":e,"publications":[{"offset":o,"epoch":e,"data":d}...]}
// (and "recovered" when since was given). It is allowed only where a
// subscription to c would be: the request goes through the subscribe
// middleware as a subscribe action.
func (s *Socket) handleHistory(p *wire.Packet) {
	var (
		channel    string
		hasChannel bool
		limit      = -1
		since      *broker.Position
		perr       error
	)
	isObj := wire.Object(p.Data, func(k string, v []byte) {
		switch k {
		case "channel":
			channel, hasChannel = wire.Unquote(v)
		case "limit":
			n, err := strconv.Atoi(string(v))
			if err != nil || n < 0 {
				perr = NewError("InvalidArgumentsError", "sc.history: limit must be a non-negative integer")
				return
			}
			limit = n
		case "since":
			if string(v) != "null" {
				since, perr = parsePosition(v, "since")
			}
		}
	})
	if !isObj || !hasChannel {
		s.sendResponse(p.Cid, nil, mustError(NewError("InvalidArgumentsError", `sc.history wants {"channel":"<name>","limit":<n>,"since":{"offset":<n>,"epoch":"<e>"}}`)))
		return
	}
	if perr != nil {
		s.sendResponse(p.Cid, nil, mustError(perr))
		return
	}
	opts, ok := s.server.hub.historyOf(channel)
	if !ok {
		s.sendResponse(p.Cid, nil, mustError(errNoHistory(channel)))
		return
	}
	if limit < 0 {
		limit = opts.Size
	}
	a := &Action{Type: ActionSubscribe, Socket: s, Channel: channel, AuthTokenExpiredError: s.checkTokenExpiry()}
	if !s.inboundAllowed(a, p) {
		return
	}
	ctx, cancel := s.server.hub.historyCtx()
	page, err := s.server.History(ctx, channel, limit, since)
	cancel()
	if err != nil {
		s.sendResponse(p.Cid, nil, mustError(err))
		return
	}
	b := append([]byte(`{"channel":`), wire.AppendString(nil, channel)...)
	b = append(b, `,"offset":`...)
	b = strconv.AppendUint(b, page.Top.Offset, 10)
	b = append(b, `,"epoch":`...)
	b = wire.AppendString(b, page.Top.Epoch)
	if since != nil {
		b = append(b, `,"recovered":`...)
		b = strconv.AppendBool(b, page.Recovered)
	}
	b = append(b, `,"publications":[`...)
	for i, pub := range page.Publications {
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, `{"offset":`...)
		b = strconv.AppendUint(b, pub.Offset, 10)
		b = append(b, `,"epoch":`...)
		b = wire.AppendString(b, pub.Epoch)
		if pub.Data != nil {
			b = append(b, `,"data":`...)
			b = append(b, pub.Data...)
		}
		b = append(b, '}')
	}
	b = append(b, "]}"...)
	s.sendResponse(p.Cid, b, nil)
}
