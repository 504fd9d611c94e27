// Package gateway makes a socketcluster Server a real-time gateway for a
// backend written in any language: the server API over HTTP (package api),
// events proxied to the backend (package proxy), and presence shared by
// every instance (package presence), over a shared store (package store).
//
// New installs it on a server; cmd/scserver does so from its flags. See
// docs/gateway.md for a walk-through.
package gateway

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"path"
	"strings"
	"sync"
	"time"

	sc "github.com/socketcluster-go/socketcluster"
	"github.com/socketcluster-go/socketcluster/gateway/api"
	"github.com/socketcluster-go/socketcluster/gateway/presence"
	"github.com/socketcluster-go/socketcluster/gateway/proxy"
	"github.com/socketcluster-go/socketcluster/gateway/store"
	"github.com/socketcluster-go/socketcluster/history"
	"github.com/socketcluster-go/socketcluster/protocol"
)

// The default ControlChannel carries disconnect and kick commands between
// instances. Clients may neither subscribe nor publish to channels under
// ReservedPrefix.
const (
	ReservedPrefix = "#gateway/"
	ControlChannel = ReservedPrefix + "control"
)

// Options configures a Gateway. Every part is off unless configured.
type Options struct {
	// Store is the state shared between instances (presence, instance
	// reports, idempotency keys). Default: a store.Memory of its own (one
	// instance only).
	Store store.Store
	// Instance identifies this instance (default: random).
	Instance string
	// ControlChannel carries commands between the instances of one
	// gateway (default ControlChannel). Gateways of different applications
	// sharing a broker need different ones; it must start with
	// ReservedPrefix.
	ControlChannel string

	// APIKey turns the HTTP API on (API returns its handler).
	APIKey string
	// APIMaxBodyBytes bounds an API request body (default 1 MiB).
	APIMaxBodyBytes int64
	// IdempotencyWindow is how long a publish's idempotency key is
	// remembered, cluster-wide (default 5 minutes).
	IdempotencyWindow time.Duration

	// PresenceChannels turns presence on for the channels matching these
	// patterns (path.Match; "*" for all).
	PresenceChannels []string
	// PresenceTTL is how long a presence entry lasts without refresh,
	// hence how late the entries of a dead instance disappear (default 30s).
	PresenceTTL time.Duration

	// Proxy, when not nil, proxies events to a backend.
	Proxy *proxy.Options

	// ReportInterval is how often the instance writes its report (channel
	// counts, stats) to the store (default 5s); a report lasts three
	// intervals, so cluster-wide counts lag by at most one.
	ReportInterval time.Duration

	// Logger (default: the server's).
	Logger *slog.Logger
}

// Gateway is installed on one Server. Close it before the server.
type Gateway struct {
	srv      *sc.Server
	o        Options
	log      *slog.Logger
	ownStore bool

	tracker *presence.Tracker
	proxy   *proxy.Proxy
	api     *api.Handler

	removeMW []func()
	stop     context.CancelFunc
	wg       sync.WaitGroup
	once     sync.Once
}

// New installs the gateway on srv, before clients connect.
func New(srv *sc.Server, o Options) (g *Gateway, err error) {
	if o.Logger == nil {
		o.Logger = srv.Options().Logger
	}
	if o.Instance == "" {
		var b [8]byte
		_, _ = rand.Read(b[:])
		o.Instance = hex.EncodeToString(b[:])
	}
	if o.IdempotencyWindow <= 0 {
		o.IdempotencyWindow = 5 * time.Minute
	}
	if o.ReportInterval <= 0 {
		o.ReportInterval = 5 * time.Second
	}
	if o.ControlChannel == "" {
		o.ControlChannel = ControlChannel
	}
	if !strings.HasPrefix(o.ControlChannel, ReservedPrefix) {
		return nil, fmt.Errorf("gateway: Options.ControlChannel %q must start with %q", o.ControlChannel, ReservedPrefix)
	}
	g = &Gateway{srv: srv, o: o, log: o.Logger}
	if g.o.Store == nil {
		g.o.Store, g.ownStore = store.NewMemory(), true
	}
	defer func() {
		if err != nil {
			g.Close()
		}
	}()
	rm, err := srv.UseMiddleware(sc.MiddlewareInbound, guardReserved)
	if err != nil {
		return nil, err
	}
	g.removeMW = append(g.removeMW, rm)
	if len(o.PresenceChannels) > 0 {
		g.tracker, err = presence.New(srv, presence.Options{
			Store: g.o.Store, Channels: o.PresenceChannels, Instance: o.Instance, TTL: o.PresenceTTL,
			User: g.userOf, Info: g.infoOf, Logger: o.Logger,
		})
		if err != nil {
			return nil, err
		}
	}
	if o.Proxy != nil {
		po := *o.Proxy
		if po.Logger == nil {
			po.Logger = o.Logger
		}
		if g.proxy, err = proxy.New(srv, po); err != nil {
			return nil, err
		}
	}
	if o.APIKey != "" {
		g.api, err = api.NewHandler(g, api.Options{Key: o.APIKey, MaxBodyBytes: o.APIMaxBodyBytes, ReservedPrefixes: []string{ReservedPrefix}, Logger: o.Logger})
		if err != nil {
			return nil, err
		}
	}
	ctx, cancel := context.WithCancel(context.Background())
	g.stop = cancel
	sctx, scancel := context.WithTimeout(ctx, 10*time.Second)
	ch, err := srv.Exchange().Subscribe(sctx, o.ControlChannel)
	scancel()
	if err != nil {
		return nil, fmt.Errorf("gateway: subscribe to the control channel: %w", err)
	}
	cons := ch.Consumer()
	g.wg.Add(2)
	go func() {
		defer g.wg.Done()
		defer cons.Stop()
		for {
			d, err := cons.Next(ctx)
			if err != nil {
				return
			}
			g.control(d)
		}
	}()
	go func() {
		defer g.wg.Done()
		g.report(ctx)
		t := time.NewTicker(o.ReportInterval)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
				g.report(ctx)
			}
		}
	}()
	return g, nil
}

// guardReserved keeps clients off the gateway's internal channels.
func guardReserved(_ context.Context, a *sc.Action) error {
	if (a.Type == sc.ActionSubscribe || a.Type == sc.ActionPublishIn) && strings.HasPrefix(a.Channel, ReservedPrefix) {
		return sc.NewError("InvalidActionError", "Channels starting with "+ReservedPrefix+" are reserved for the gateway")
	}
	return nil
}

// API returns the HTTP API handler (serving /api/…), or nil when no
// APIKey is set.
func (g *Gateway) API() http.Handler {
	if g.api == nil {
		return nil
	}
	return g.api
}

// Tracker returns the presence tracker, or nil.
func (g *Gateway) Tracker() *presence.Tracker { return g.tracker }

// Proxy returns the backend proxy, or nil.
func (g *Gateway) Proxy() *proxy.Proxy { return g.proxy }

// Instance returns this instance's id.
func (g *Gateway) Instance() string { return g.o.Instance }

// Close uninstalls the gateway: presence entries and the instance report
// are removed from the store (best effort), a store made by New is closed.
func (g *Gateway) Close() {
	g.once.Do(func() {
		if g.stop != nil {
			g.stop()
		}
		g.wg.Wait()
		g.srv.Exchange().Unsubscribe(g.o.ControlChannel)
		if g.tracker != nil {
			g.tracker.Close()
		}
		if g.proxy != nil {
			g.proxy.Close()
		}
		for _, rm := range g.removeMW {
			rm()
		}
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = g.o.Store.RemoveInstance(ctx, g.o.Instance)
		if g.ownStore {
			_ = g.o.Store.Close()
		}
	})
}

// userOf is a socket's identity: the backend's at connect, else the
// token's.
func (g *Gateway) userOf(s *sc.Socket) string {
	if g.proxy != nil {
		if u := g.proxy.User(s.ID()); u != "" {
			return u
		}
	}
	return presence.TokenUser(s)
}

// infoOf is a socket's connection info: the backend's at connect, else
// the token's "info" claim.
func (g *Gateway) infoOf(s *sc.Socket) json.RawMessage {
	if g.proxy != nil {
		if i := g.proxy.Info(s.ID()); i != nil {
			return i
		}
	}
	if v, ok := s.AuthToken()["info"]; ok {
		if b, err := json.Marshal(v); err == nil {
			return b
		}
	}
	return nil
}

// report is what an instance writes to the store.
type report struct {
	Channels map[string]int `json:"channels"`
	Stats    sc.Stats       `json:"stats"`
	Proxy    *proxy.Stats   `json:"proxy,omitempty"`
	API      *api.Stats     `json:"api,omitempty"`
	At       time.Time      `json:"at"`
}

func (g *Gateway) localReport() report {
	r := report{Channels: g.localChannels(""), Stats: g.srv.Stats(), At: time.Now().UTC()}
	if g.proxy != nil {
		st := g.proxy.Stats()
		r.Proxy = &st
	}
	if g.api != nil {
		st := g.api.Stats()
		r.API = &st
	}
	return r
}

func (g *Gateway) report(ctx context.Context) {
	b, err := json.Marshal(g.localReport())
	if err != nil {
		return
	}
	ctx, cancel := context.WithTimeout(ctx, g.o.ReportInterval)
	defer cancel()
	in := store.Instance{ID: g.o.Instance, Data: b, Expires: store.Expiry(3 * g.o.ReportInterval)}
	if err := g.o.Store.SetInstance(ctx, in); err != nil && ctx.Err() == nil {
		g.log.Warn("gateway: cannot write the instance report", "error", err.Error())
	}
}

func (g *Gateway) localChannels(pattern string) map[string]int {
	out := map[string]int{}
	for ch, n := range g.srv.ChannelCounts() {
		if strings.HasPrefix(ch, ReservedPrefix) {
			continue
		}
		if pattern != "" {
			if ok, _ := path.Match(pattern, ch); !ok {
				continue
			}
		}
		out[ch] = n
	}
	return out
}

// ---- api.Service ----

var _ api.Service = (*Gateway)(nil)

// Publish implements api.Service.
func (g *Gateway) Publish(ctx context.Context, channels []string, data json.RawMessage, key string) (api.PublishResult, error) {
	if key != "" {
		ok, err := g.o.Store.Claim(ctx, "publish:"+key, g.o.IdempotencyWindow)
		if err != nil {
			return api.PublishResult{}, err
		}
		if !ok {
			return api.PublishResult{Channels: []string{}, Duplicate: true}, nil
		}
	}
	var errs []error
	for _, ch := range channels {
		if err := g.srv.Exchange().InvokePublish(ctx, ch, sc.Data(data)); err != nil {
			errs = append(errs, err)
		}
	}
	if err := errors.Join(errs...); err != nil {
		if key != "" {
			_ = g.o.Store.Release(context.Background(), "publish:"+key)
		}
		return api.PublishResult{}, err
	}
	return api.PublishResult{Channels: channels}, nil
}

// command is a message on ControlChannel.
type command struct {
	Origin  string          `json:"origin"`
	Op      string          `json:"op"` // "disconnect" or "kick"
	Target  api.Target      `json:"target"`
	Code    int             `json:"code,omitempty"`
	Reason  string          `json:"reason,omitempty"`
	Channel string          `json:"channel,omitempty"`
	Message json.RawMessage `json:"message,omitempty"`
}

// Disconnect implements api.Service.
func (g *Gateway) Disconnect(ctx context.Context, r api.DisconnectRequest) (api.CommandResult, error) {
	c := command{Origin: g.o.Instance, Op: "disconnect", Target: r.Target, Code: r.Code, Reason: r.Reason}
	return g.broadcast(ctx, c)
}

// Kick implements api.Service.
func (g *Gateway) Kick(ctx context.Context, r api.KickRequest) (api.CommandResult, error) {
	c := command{Origin: g.o.Instance, Op: "kick", Target: r.Target, Channel: r.Channel, Message: r.Message}
	return g.broadcast(ctx, c)
}

// broadcast runs c here and sends it to the other instances.
func (g *Gateway) broadcast(ctx context.Context, c command) (api.CommandResult, error) {
	n := g.execute(c)
	if err := g.srv.Exchange().InvokePublish(ctx, g.o.ControlChannel, c); err != nil {
		return api.CommandResult{Local: n}, err
	}
	return api.CommandResult{Local: n}, nil
}

func (g *Gateway) control(d sc.Data) {
	var c command
	if err := json.Unmarshal(d, &c); err != nil {
		g.log.Warn("gateway: malformed control message", "error", err.Error())
		return
	}
	if c.Origin == g.o.Instance {
		return // run when it was sent
	}
	g.execute(c)
}

// execute runs a command on this instance's sockets.
func (g *Gateway) execute(c command) int {
	var targets []*sc.Socket
	if c.Target.SocketID != "" {
		if s := g.srv.Clients()[c.Target.SocketID]; s != nil {
			targets = append(targets, s)
		}
	} else {
		for _, s := range g.srv.Clients() {
			if g.userOf(s) == c.Target.User {
				targets = append(targets, s)
			}
		}
	}
	n := 0
	for _, s := range targets {
		switch c.Op {
		case "disconnect":
			_ = s.Disconnect(protocol.CloseCode(c.Code), c.Reason)
			n++
		case "kick":
			if !s.IsSubscribed(c.Channel) {
				continue
			}
			var msg any = sc.Undefined
			if c.Message != nil {
				msg = sc.Data(c.Message)
			}
			_ = s.KickOut([]string{c.Channel}, msg)
			n++
		}
	}
	return n
}

// Channels implements api.Service.
func (g *Gateway) Channels(ctx context.Context, cluster bool, pattern string) (map[string]int, error) {
	out := g.localChannels(pattern)
	if !cluster {
		return out, nil
	}
	ins, err := g.o.Store.Instances(ctx)
	if err != nil {
		return nil, err
	}
	for _, in := range ins {
		if in.ID == g.o.Instance {
			continue // counted live above
		}
		var r report
		if json.Unmarshal(in.Data, &r) != nil {
			continue
		}
		for ch, n := range r.Channels {
			if pattern != "" {
				if ok, _ := path.Match(pattern, ch); !ok {
					continue
				}
			}
			out[ch] += n
		}
	}
	return out, nil
}

// Presence implements api.Service.
func (g *Gateway) Presence(ctx context.Context, channel string) (api.PresenceResult, error) {
	if g.tracker == nil {
		return api.PresenceResult{}, api.ErrNotImplemented("presence is not enabled on this gateway")
	}
	if !g.tracker.Tracked(channel) {
		return api.PresenceResult{}, api.ErrNotFound("presence is not tracked on channel " + channel)
	}
	es, err := g.tracker.Presence(ctx, channel)
	if err != nil {
		return api.PresenceResult{}, err
	}
	a := presence.AnswerOf(channel, es)
	return api.PresenceResult{Channel: a.Channel, Clients: a.Clients, Count: a.Count, Users: a.Users}, nil
}

// History implements api.Service with Server.History (channels with a
// history: sc.Options.History, scserver -history).
func (g *Gateway) History(ctx context.Context, r api.HistoryRequest) (api.HistoryResult, error) {
	if len(g.srv.Options().History) == 0 {
		return api.HistoryResult{}, api.ErrNotImplemented("history is not enabled on this server (scserver -history)")
	}
	limit := -1
	if r.Limit != nil {
		limit = *r.Limit
	}
	var since *history.Position
	if r.Since != nil {
		since = &history.Position{Offset: r.Since.Offset, Epoch: r.Since.Epoch}
	}
	page, err := g.srv.History(ctx, r.Channel, limit, since)
	if err != nil {
		var e *sc.Error
		if errors.As(err, &e) {
			switch e.Name {
			case "HistoryError":
				return api.HistoryResult{}, api.ErrNotFound(e.Message)
			case "InvalidArgumentsError":
				return api.HistoryResult{}, api.ErrInvalid(e.Message)
			}
		}
		return api.HistoryResult{}, err
	}
	res := api.HistoryResult{Channel: r.Channel, Position: api.Position{Offset: page.Top.Offset, Epoch: page.Top.Epoch}, Publications: make([]api.HistoryPublication, len(page.Publications))}
	if since != nil {
		res.Recovered = &page.Recovered
	}
	for i, p := range page.Publications {
		res.Publications[i] = api.HistoryPublication{Position: api.Position{Offset: p.Offset, Epoch: p.Epoch}, Data: json.RawMessage(p.Data)}
	}
	return res, nil
}

// Info implements api.Service.
func (g *Gateway) Info(ctx context.Context) (api.InfoResult, error) {
	local, err := json.Marshal(g.localReport())
	if err != nil {
		return api.InfoResult{}, err
	}
	ins, err := g.o.Store.Instances(ctx)
	if err != nil {
		return api.InfoResult{}, err
	}
	return api.InfoResult{Instance: g.o.Instance, Local: local, Instances: ins}, nil
}
