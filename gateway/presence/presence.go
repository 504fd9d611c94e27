// Package presence tracks who is subscribed to chosen channels, across
// every server instance, through a shared store.Store.
//
// For a tracked channel C (Options.Channels, glob patterns):
//
//   - each socket subscribed to C on this instance has a store entry
//     (socket id, user identity, the connection info the application
//     chooses, instance id) that this instance refreshes every TTL/3;
//   - joins and leaves are published on the companion channel
//     "#presence:C" as {"type":"join"|"leave","channel":C,"socketId",
//     "user","info"}; clients subscribe to it like any channel, guarded by
//     the subscribe middleware of C, and may not publish to it;
//   - Presence and Stats read the store (cluster-wide); a client reads them
//     with the procedure Options.Procedure ("presence" by default), also
//     guarded by the subscribe middleware of C (Server.CheckSubscribe).
//
// Entries of an instance that dies without saying so (SIGKILL, lost
// network) stop being reported once their TTL has passed since their last
// refresh: at most TTL after the death. No leave event is published for
// them.
package presence

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"path"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	sc "github.com/socketcluster-go/socketcluster"
	"github.com/socketcluster-go/socketcluster/gateway/store"
)

// Prefix starts the companion channel of a tracked channel.
const Prefix = "#presence:"

// Options configures a Tracker.
type Options struct {
	// Store holds the entries; required.
	Store store.Store
	// Channels lists the tracked channels as path.Match patterns ("*"
	// for every channel, "room/*"…). Companion channels are never tracked.
	Channels []string
	// Instance identifies this server instance in entries; required.
	Instance string
	// TTL is how long an entry counts without a refresh (default 30s);
	// the tracker refreshes its entries every TTL/3.
	TTL time.Duration
	// User returns a socket's user identity. Default: the auth token's
	// "sub" claim, else its "username" claim, as text; "" if none.
	User func(*sc.Socket) string
	// Info returns the connection info published for a socket (raw JSON;
	// nil for none). Default: the auth token's "info" claim.
	Info func(*sc.Socket) json.RawMessage
	// Procedure is the name of the client procedure; "-" for none.
	// Default "presence".
	Procedure string
	// OpTimeout bounds each store call (default 5s).
	OpTimeout time.Duration
	// Logger receives store failures (default: the server's).
	Logger *slog.Logger
}

// Stats are the counts of a channel.
type Stats struct {
	Clients int `json:"clients"` // sockets
	Users   int `json:"users"`   // distinct non-empty users
}

// Event is what the companion channel carries.
type Event struct {
	Type     string          `json:"type"` // "join" or "leave"
	Channel  string          `json:"channel"`
	SocketID string          `json:"socketId"`
	User     string          `json:"user,omitempty"`
	Info     json.RawMessage `json:"info,omitempty"`
}

// Tracker keeps this instance's presence entries in the store. Create it
// with New, before clients connect; Close it before the server.
type Tracker struct {
	srv  *sc.Server
	o    Options
	log  *slog.Logger
	stop context.CancelFunc
	wg   sync.WaitGroup

	removeMiddleware []func()

	// mu serialises the reconciliation of local state with the store.
	mu     sync.Mutex
	local  map[string]map[*sc.Socket]store.Entry // channel → socket → entry
	closed bool

	storeErrors atomic.Int64
}

// New starts tracking on srv.
func New(srv *sc.Server, o Options) (*Tracker, error) {
	if o.Store == nil || o.Instance == "" {
		return nil, errors.New("presence: Options.Store and Options.Instance are required")
	}
	for _, p := range o.Channels {
		if _, err := path.Match(p, ""); err != nil {
			return nil, fmt.Errorf("presence: channel pattern %q: %w", p, err)
		}
	}
	if o.TTL <= 0 {
		o.TTL = 30 * time.Second
	}
	if o.OpTimeout <= 0 {
		o.OpTimeout = 5 * time.Second
	}
	if o.User == nil {
		o.User = TokenUser
	}
	if o.Info == nil {
		o.Info = func(s *sc.Socket) json.RawMessage {
			if v, ok := s.AuthToken()["info"]; ok {
				b, err := json.Marshal(v)
				if err == nil {
					return b
				}
			}
			return nil
		}
	}
	if o.Procedure == "" {
		o.Procedure = "presence"
	}
	if o.Logger == nil {
		o.Logger = srv.Options().Logger
	}
	t := &Tracker{srv: srv, o: o, log: o.Logger, local: make(map[string]map[*sc.Socket]store.Entry)}

	rm, err := srv.UseMiddleware(sc.MiddlewareInbound, t.guard)
	if err != nil {
		return nil, err
	}
	t.removeMiddleware = append(t.removeMiddleware, rm)
	if o.Procedure != "-" {
		srv.HandleProcedure(o.Procedure, t.serveProcedure)
	}

	ctx, cancel := context.WithCancel(context.Background())
	t.stop = cancel
	subs := sc.Listen[sc.SubscriptionEvent](srv).Consumer()
	unsubs := sc.Listen[sc.UnsubscriptionEvent](srv).Consumer()
	t.wg.Add(3)
	go func() {
		defer t.wg.Done()
		defer subs.Stop()
		for {
			ev, err := subs.Next(ctx)
			if err != nil {
				return
			}
			t.reconcile(ev.Socket, ev.Channel)
		}
	}()
	go func() {
		defer t.wg.Done()
		defer unsubs.Stop()
		for {
			ev, err := unsubs.Next(ctx)
			if err != nil {
				return
			}
			t.reconcile(ev.Socket, ev.Channel)
		}
	}()
	go func() {
		defer t.wg.Done()
		tick := time.NewTicker(o.TTL / 3)
		defer tick.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-tick.C:
				t.refresh()
			}
		}
	}()
	return t, nil
}

// TokenUser is the default Options.User: the auth token's "sub" claim,
// else "username", as text.
func TokenUser(s *sc.Socket) string {
	tok := s.AuthToken()
	for _, k := range []string{"sub", "username"} {
		switch v := tok[k].(type) {
		case string:
			return v
		case nil:
		default:
			b, _ := json.Marshal(v)
			return string(b)
		}
	}
	return ""
}

// Tracked reports whether channel is tracked.
func (t *Tracker) Tracked(channel string) bool {
	if strings.HasPrefix(channel, Prefix) {
		return false
	}
	for _, p := range t.o.Channels {
		if ok, _ := path.Match(p, channel); ok {
			return true
		}
	}
	return false
}

// StoreErrors counts failed store operations.
func (t *Tracker) StoreErrors() int64 { return t.storeErrors.Load() }

func (t *Tracker) opCtx() (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.Background(), t.o.OpTimeout)
}

func (t *Tracker) storeFailed(op, channel string, err error) {
	t.storeErrors.Add(1)
	t.log.Warn("presence: store operation failed", "op", op, "channel", channel, "error", err.Error())
}

// reconcile brings the entry of (s, channel) in line with whether s is
// subscribed now. Events arrive on two streams in any order; deciding on
// the socket's present state makes the order irrelevant.
func (t *Tracker) reconcile(s *sc.Socket, channel string) {
	if s == nil || !t.Tracked(channel) {
		return
	}
	want := s.State() == sc.StateOpen && s.IsSubscribed(channel)
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.closed {
		return
	}
	_, have := t.local[channel][s]
	switch {
	case want && !have:
		e := store.Entry{SocketID: s.ID(), User: t.o.User(s), Info: t.o.Info(s), Instance: t.o.Instance, Expires: store.Expiry(t.o.TTL)}
		m := t.local[channel]
		if m == nil {
			m = make(map[*sc.Socket]store.Entry)
			t.local[channel] = m
		}
		m[s] = e
		ctx, cancel := t.opCtx()
		if err := t.o.Store.SetPresence(ctx, channel, e); err != nil {
			t.storeFailed("set", channel, err) // the next refresh writes it again
		}
		cancel()
		t.announce("join", channel, e)
	case !want && have:
		e := t.local[channel][s]
		delete(t.local[channel], s)
		if len(t.local[channel]) == 0 {
			delete(t.local, channel)
		}
		ctx, cancel := t.opCtx()
		if err := t.o.Store.RemovePresence(ctx, channel, e.SocketID); err != nil {
			t.storeFailed("remove", channel, err) // it expires after TTL
		}
		cancel()
		t.announce("leave", channel, e)
	}
}

func (t *Tracker) announce(typ, channel string, e store.Entry) {
	ev := Event{Type: typ, Channel: channel, SocketID: e.SocketID, User: e.User, Info: e.Info}
	if err := t.srv.Exchange().TransmitPublish(Prefix+channel, ev); err != nil {
		t.log.Warn("presence: publish failed", "channel", Prefix+channel, "error", err.Error())
	}
}

// refresh writes every local entry again with a new expiry.
func (t *Tracker) refresh() {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.closed {
		return
	}
	exp := store.Expiry(t.o.TTL)
	for channel, m := range t.local {
		for s, e := range m {
			e.Expires = exp
			m[s] = e
			ctx, cancel := t.opCtx()
			err := t.o.Store.SetPresence(ctx, channel, e)
			cancel()
			if err != nil {
				t.storeFailed("refresh", channel, err)
			}
		}
	}
}

// Presence returns the sockets present in channel on every instance.
func (t *Tracker) Presence(ctx context.Context, channel string) ([]store.Entry, error) {
	if !t.Tracked(channel) {
		return nil, fmt.Errorf("presence: channel %q is not tracked", channel)
	}
	return t.o.Store.Presence(ctx, channel)
}

// Stats returns the counts of channel on every instance.
func (t *Tracker) Stats(ctx context.Context, channel string) (Stats, error) {
	es, err := t.Presence(ctx, channel)
	if err != nil {
		return Stats{}, err
	}
	return StatsOf(es), nil
}

// StatsOf counts entries.
func StatsOf(es []store.Entry) Stats {
	users := map[string]struct{}{}
	for _, e := range es {
		if e.User != "" {
			users[e.User] = struct{}{}
		}
	}
	return Stats{Clients: len(es), Users: len(users)}
}

// guard is the tracker's inbound middleware: a subscription to
// #presence:C is decided by the subscribe middleware of C (and refused for
// an untracked C); companion channels are published to by the server
// only.
func (t *Tracker) guard(_ context.Context, a *sc.Action) error {
	ch, ok := strings.CutPrefix(a.Channel, Prefix)
	if !ok {
		return nil
	}
	switch a.Type {
	case sc.ActionSubscribe:
		if !t.Tracked(ch) {
			return sc.NewError("PresenceError", "Presence is not tracked on channel "+ch)
		}
		return t.srv.CheckSubscribe(a.Socket, ch)
	case sc.ActionPublishIn:
		return sc.NewError("PresenceError", "Only the server publishes to "+Prefix+" channels")
	}
	return nil
}

// Answer is the presence of a channel as the client procedure and the
// HTTP API give it.
type Answer struct {
	Channel string        `json:"channel"`
	Clients []store.Entry `json:"clients"`
	Count   int           `json:"count"` // len(Clients)
	Users   int           `json:"users"` // distinct non-empty users
}

// AnswerOf builds the Answer of channel from its entries.
func AnswerOf(channel string, es []store.Entry) Answer {
	if es == nil {
		es = []store.Entry{}
	}
	st := StatsOf(es)
	return Answer{Channel: channel, Clients: es, Count: st.Clients, Users: st.Users}
}

// serveProcedure answers {"channel": C} (or "C") with the presence of C.
func (t *Tracker) serveProcedure(req *sc.Request) {
	var channel string
	if err := json.Unmarshal(req.Data, &channel); err != nil {
		var arg struct {
			Channel string `json:"channel"`
		}
		_ = json.Unmarshal(req.Data, &arg)
		channel = arg.Channel
	}
	if channel == "" {
		_ = req.Error(sc.NewError("InvalidArgumentsError", `presence expects {"channel": name}`))
		return
	}
	if !t.Tracked(channel) {
		_ = req.Error(sc.NewError("PresenceError", "Presence is not tracked on channel "+channel))
		return
	}
	go func() {
		if err := t.srv.CheckSubscribe(req.Socket, channel); err != nil {
			_ = req.Error(err)
			return
		}
		ctx, cancel := t.opCtx()
		defer cancel()
		es, err := t.o.Store.Presence(ctx, channel)
		if err != nil {
			t.storeFailed("read", channel, err)
			_ = req.Error(sc.NewError("PresenceError", "Presence is unavailable: the store did not answer"))
			return
		}
		_ = req.End(AnswerOf(channel, es))
	}()
}

// Close stops tracking: it removes the middleware and procedure, and this
// instance's entries from the store (best effort: what it cannot remove
// expires after TTL).
func (t *Tracker) Close() {
	t.stop()
	t.wg.Wait()
	for _, rm := range t.removeMiddleware {
		rm()
	}
	if t.o.Procedure != "-" {
		t.srv.HandleProcedure(t.o.Procedure, nil)
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.closed {
		return
	}
	t.closed = true
	for channel, m := range t.local {
		for _, e := range m {
			ctx, cancel := t.opCtx()
			if err := t.o.Store.RemovePresence(ctx, channel, e.SocketID); err != nil {
				t.storeFailed("remove", channel, err)
			}
			cancel()
		}
	}
	t.local = nil
}
