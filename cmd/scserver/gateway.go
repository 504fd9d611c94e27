package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"os"
	"path"
	"strconv"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/socketcluster-go/socketcluster/gateway"
	"github.com/socketcluster-go/socketcluster/gateway/api"
	"github.com/socketcluster-go/socketcluster/gateway/proxy"
	"github.com/socketcluster-go/socketcluster/gateway/store"
)

// The gateway (docs/gateway.md): the server API over HTTP, events proxied
// to a backend, presence. Every part is off until its flag is set; the
// app calls installGateway once the server exists, and the closers it
// registers after the server is closed.

// gatewayConfig is the gateway's part of config.
type gatewayConfig struct {
	APIKey            string
	APIAddr           string
	APIMaxBody        int
	IdempotencyWindow time.Duration
	Store             string
	StorePrefix       string
	Instance          string
	Presence          string
	PresenceTTL       time.Duration
	ProxyConnect      string
	ProxySubscribe    string
	ProxySubChannels  string
	ProxyPublish      string
	ProxyPubChannels  string
	ProxyRPC          string
	ProxyRPCNames     string
	ProxyRefresh      string
	ProxyTimeout      time.Duration
	ProxyConcurrency  int
	ProxyHeaders      string
}

func gw(f func(g *gatewayConfig) *string) func(*config, string) error {
	return strSetter(func(c *config) *string { return f(&c.gateway) })
}

func gwDuration(f func(g *gatewayConfig) *time.Duration) func(*config, string) error {
	return durationSetter(func(c *config) *time.Duration { return f(&c.gateway) })
}

func gwInt(f func(g *gatewayConfig) *int) func(*config, string) error {
	return intSetter(func(c *config) *int { return f(&c.gateway) })
}

func init() {
	specs = append(specs,
		spec{"api-key", "SC_API_KEY", "turn the HTTP server API on (/api/…), with this key", gw(func(g *gatewayConfig) *string { return &g.APIKey }), ""},
		spec{"api-addr", "SC_API_ADDR", "serve the API on this address of its own instead of -addr", gw(func(g *gatewayConfig) *string { return &g.APIAddr }), ""},
		spec{"api-max-body", "SC_API_MAX_BODY", "largest API request body in bytes (413 above it)", gwInt(func(g *gatewayConfig) *int { return &g.APIMaxBody }), strconv.Itoa(1 << 20)},
		spec{"idempotency-window", "SC_IDEMPOTENCY_WINDOW", "how long an API publish's idempotencyKey is remembered, cluster-wide", gwDuration(func(g *gatewayConfig) *time.Duration { return &g.IdempotencyWindow }), "5m"},
		spec{"gateway-store", "SC_GATEWAY_STORE", "where instances share presence and reports: broker (the -broker's server), memory, redis://…, nats://…", gw(func(g *gatewayConfig) *string { return &g.Store }), "broker"},
		spec{"gateway-store-prefix", "SC_GATEWAY_STORE_PREFIX", "prefix of the store's Redis keys or NATS buckets (letters, digits, - and _)", gw(func(g *gatewayConfig) *string { return &g.StorePrefix }), "scgw"},
		spec{"instance-id", "SC_INSTANCE_ID", "this instance's name in presence and reports (default: host name and a random suffix)", gw(func(g *gatewayConfig) *string { return &g.Instance }), ""},
		spec{"presence", "SC_PRESENCE", "track presence on these channels (comma-separated patterns, e.g. \"room/*,lobby\")", gw(func(g *gatewayConfig) *string { return &g.Presence }), ""},
		spec{"presence-ttl", "SC_PRESENCE_TTL", "how long presence entries live without refresh: the entries of a dead instance vanish within it", gwDuration(func(g *gatewayConfig) *time.Duration { return &g.PresenceTTL }), "30s"},
		spec{"proxy-connect-url", "SC_PROXY_CONNECT_URL", "backend URL deciding each connection (and giving the user's identity)", gw(func(g *gatewayConfig) *string { return &g.ProxyConnect }), ""},
		spec{"proxy-subscribe-url", "SC_PROXY_SUBSCRIBE_URL", "backend URL deciding subscriptions", gw(func(g *gatewayConfig) *string { return &g.ProxySubscribe }), ""},
		spec{"proxy-subscribe-channels", "SC_PROXY_SUBSCRIBE_CHANNELS", "channels whose subscriptions go to the backend (comma-separated patterns; default all)", gw(func(g *gatewayConfig) *string { return &g.ProxySubChannels }), ""},
		spec{"proxy-publish-url", "SC_PROXY_PUBLISH_URL", "backend URL deciding (and possibly rewriting) client publishes", gw(func(g *gatewayConfig) *string { return &g.ProxyPublish }), ""},
		spec{"proxy-publish-channels", "SC_PROXY_PUBLISH_CHANNELS", "channels whose client publishes go to the backend (comma-separated patterns; default all)", gw(func(g *gatewayConfig) *string { return &g.ProxyPubChannels }), ""},
		spec{"proxy-rpc-url", "SC_PROXY_RPC_URL", "backend URL answering the procedures of -proxy-rpc-procedures", gw(func(g *gatewayConfig) *string { return &g.ProxyRPC }), ""},
		spec{"proxy-rpc-procedures", "SC_PROXY_RPC_PROCEDURES", "procedure names answered by the backend (comma-separated)", gw(func(g *gatewayConfig) *string { return &g.ProxyRPCNames }), ""},
		spec{"proxy-refresh-url", "SC_PROXY_REFRESH_URL", "backend URL renewing tokens whose connect result had expireIn", gw(func(g *gatewayConfig) *string { return &g.ProxyRefresh }), ""},
		spec{"proxy-timeout", "SC_PROXY_TIMEOUT", "deadline of each backend request", gwDuration(func(g *gatewayConfig) *time.Duration { return &g.ProxyTimeout }), "4s"},
		spec{"proxy-max-concurrent", "SC_PROXY_MAX_CONCURRENT", "backend requests in flight at once (more wait up to 1s, then fail with BackendBusyError)", gwInt(func(g *gatewayConfig) *int { return &g.ProxyConcurrency }), "64"},
		spec{"proxy-headers", "SC_PROXY_HEADERS", "upgrade request headers passed to the backend (comma-separated, e.g. Cookie,Authorization)", gw(func(g *gatewayConfig) *string { return &g.ProxyHeaders }), ""},
	)
}

// list splits a comma-separated setting.
func list(s string) []string {
	var out []string
	for _, p := range strings.Split(s, ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}

// validate reports the gateway settings that cannot work.
func (g *gatewayConfig) validate(c *config) error {
	var errs []error
	add := func(err error) {
		if err != nil {
			errs = append(errs, err)
		}
	}
	if g.APIAddr != "" {
		if g.APIKey == "" {
			add(flagsError([]string{"api-addr", "api-key"}, "an API address without a key: set -api-key to turn the API on"))
		}
		add(checkAddr("api-addr", g.APIAddr))
		if g.APIAddr == c.Addr && !strings.HasSuffix(c.Addr, ":0") {
			add(flagsError([]string{"api-addr", "addr"}, "the same address %q; leave -api-addr empty to serve the API on -addr", c.Addr))
		}
	}
	if g.APIKey != "" && len(g.APIKey) < 16 {
		add(flagError("api-key", "shorter than 16 characters: use a long random key"))
	}
	if g.APIMaxBody < 1024 {
		add(flagError("api-max-body", "%d: must be at least 1024", g.APIMaxBody))
	}
	if g.IdempotencyWindow < time.Second {
		add(flagError("idempotency-window", "%v: must be at least 1s", g.IdempotencyWindow))
	}
	switch st := g.Store; {
	case st == "broker" || st == "memory":
	case strings.HasPrefix(st, "redis://") || strings.HasPrefix(st, "rediss://") || strings.HasPrefix(st, "unix://") || strings.HasPrefix(st, "nats://") || strings.HasPrefix(st, "tls://"):
	default:
		add(flagError("gateway-store", "%q: use broker, memory, redis://host:port or nats://host:port", st))
	}
	if g.StorePrefix == "" || strings.IndexFunc(g.StorePrefix, func(r rune) bool {
		return !(r == '-' || r == '_' || r >= '0' && r <= '9' || r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z')
	}) >= 0 {
		add(flagError("gateway-store-prefix", "%q: use letters, digits, - and _", g.StorePrefix))
	}
	for _, p := range []struct{ flag, v string }{{"presence", g.Presence}, {"proxy-subscribe-channels", g.ProxySubChannels}, {"proxy-publish-channels", g.ProxyPubChannels}} {
		for _, pat := range list(p.v) {
			if _, err := path.Match(pat, ""); err != nil {
				add(flagError(p.flag, "pattern %q: %v", pat, err))
			}
		}
	}
	if g.PresenceTTL < time.Second {
		add(flagError("presence-ttl", "%v: must be at least 1s", g.PresenceTTL))
	}
	for _, u := range []struct{ flag, v string }{
		{"proxy-connect-url", g.ProxyConnect}, {"proxy-subscribe-url", g.ProxySubscribe}, {"proxy-publish-url", g.ProxyPublish},
		{"proxy-rpc-url", g.ProxyRPC}, {"proxy-refresh-url", g.ProxyRefresh},
	} {
		if u.v == "" {
			continue
		}
		pu, err := url.Parse(u.v)
		if err != nil || (pu.Scheme != "http" && pu.Scheme != "https") || pu.Host == "" {
			add(flagError(u.flag, "%q: want an http:// or https:// URL", u.v))
		}
	}
	if (g.ProxyRPC == "") != (len(list(g.ProxyRPCNames)) == 0) {
		add(flagsError([]string{"proxy-rpc-url", "proxy-rpc-procedures"}, "set both or neither: the procedures answered by the backend, and where"))
	}
	if g.ProxyRefresh != "" && g.ProxyConnect == "" {
		add(flagsError([]string{"proxy-refresh-url", "proxy-connect-url"}, "refresh renews tokens given at connect: set -proxy-connect-url"))
	}
	if g.ProxyTimeout <= 0 {
		add(flagError("proxy-timeout", "%v: must be positive", g.ProxyTimeout))
	} else if g.ProxyTimeout+time.Second >= 10*time.Second {
		add(flagError("proxy-timeout", "%v: with the 1s wait for a free slot it must stay under the 10s middleware deadline", g.ProxyTimeout))
	}
	if g.ProxyConcurrency < 1 {
		add(flagError("proxy-max-concurrent", "%d: must be at least 1", g.ProxyConcurrency))
	}
	return errors.Join(errs...)
}

func (g *gatewayConfig) proxyOn() bool {
	return g.ProxyConnect != "" || g.ProxySubscribe != "" || g.ProxyPublish != "" || g.ProxyRPC != ""
}

// on reports whether any part of the gateway is configured.
func (g *gatewayConfig) on() bool { return g.APIKey != "" || g.Presence != "" || g.proxyOn() }

// openStore opens the store of -gateway-store.
func (a *app) openStore(ctx context.Context) (store.Store, error) {
	g := &a.cfg.gateway
	u := g.Store
	if u == "broker" {
		u = a.cfg.Broker
	}
	switch {
	case u == "memory" || u == "":
		if a.cfg.Broker != "memory" && g.Presence != "" {
			a.logger.Warn("scserver: -gateway-store memory with a -broker: presence and cluster-wide counts are those of this instance only")
		}
		return store.NewMemory(), nil
	case strings.HasPrefix(u, "nats://") || strings.HasPrefix(u, "tls://"):
		return store.NewNATS(ctx, u, store.NATSOptions{Prefix: g.StorePrefix})
	default:
		return store.NewRedis(u, store.RedisOptions{Prefix: g.StorePrefix + ":"})
	}
}

// installGateway sets the gateway up on a.srv from the flags: nothing when
// none of its flags is set. Errors are settings errors (exit 2) or
// run-time failures (the store unreachable, the API address in use).
func (a *app) installGateway() (settingsErr, runtimeErr error) {
	g := &a.cfg.gateway
	if err := g.validate(a.cfg); err != nil {
		return err, nil
	}
	if !g.on() {
		return nil, nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	st, err := a.openStore(ctx)
	if err != nil {
		return nil, fmt.Errorf("-gateway-store: %w", err)
	}
	inst := g.Instance
	if inst == "" {
		host, _ := os.Hostname()
		var b [4]byte
		_, _ = rand.Read(b[:])
		inst = strings.Trim(host+"-"+hex.EncodeToString(b[:]), "-")
	}
	o := gateway.Options{
		Store: st, Instance: inst, ControlChannel: gateway.ReservedPrefix + "control/" + g.StorePrefix,
		APIKey: g.APIKey, APIMaxBodyBytes: int64(g.APIMaxBody), IdempotencyWindow: g.IdempotencyWindow,
		PresenceChannels: list(g.Presence), PresenceTTL: g.PresenceTTL,
		Logger: a.logger,
	}
	if g.proxyOn() {
		o.Proxy = &proxy.Options{
			ConnectURL: g.ProxyConnect, SubscribeURL: g.ProxySubscribe, SubscribeChannels: list(g.ProxySubChannels),
			PublishURL: g.ProxyPublish, PublishChannels: list(g.ProxyPubChannels),
			RPCURL: g.ProxyRPC, RPCProcedures: list(g.ProxyRPCNames), RefreshURL: g.ProxyRefresh,
			Timeout: g.ProxyTimeout, MaxConcurrent: g.ProxyConcurrency, Headers: list(g.ProxyHeaders),
		}
	}
	gwy, err := gateway.New(a.srv, o)
	if err != nil {
		_ = st.Close()
		return nil, err
	}
	a.onClose = append(a.onClose, func() {
		gwy.Close()
		_ = st.Close()
	})
	a.registerGatewayMetrics(gwy)
	if h := gwy.API(); h != nil {
		if g.APIAddr == "" {
			a.mux.Handle("/api/", h)
		} else if err := a.serveAPI(h); err != nil {
			return nil, err
		}
	}
	a.logger.Info("scserver: gateway on", "instance", inst, "api", g.APIKey != "", "presence", g.Presence, "proxy", g.proxyOn())
	return nil, nil
}

// serveAPI serves the API on -api-addr until the app closes.
func (a *app) serveAPI(h http.Handler) error {
	l, err := net.Listen("tcp", a.cfg.gateway.APIAddr)
	if err != nil {
		return fmt.Errorf("-api-addr %s: %w", a.cfg.gateway.APIAddr, err)
	}
	mux := http.NewServeMux()
	mux.Handle("/api/", h)
	hs := a.srv.HTTPServer(mux)
	hs.ErrorLog = slog.NewLogLogger(a.logger.Handler(), slog.LevelDebug)
	done := make(chan struct{})
	go func() {
		defer close(done)
		if err := hs.Serve(l); !errors.Is(err, http.ErrServerClosed) {
			a.logger.Error("scserver: API listener failed", "error", err.Error())
		}
	}()
	a.logger.Info("scserver: API on", "addr", l.Addr().String())
	a.onClose = append([]func(){func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		if hs.Shutdown(ctx) != nil {
			_ = hs.Close()
		}
		<-done
	}}, a.onClose...)
	return nil
}

// registerGatewayMetrics exports the gateway's counters.
func (a *app) registerGatewayMetrics(g *gateway.Gateway) {
	if a.reg == nil {
		return
	}
	counter := func(name, help string, labels prometheus.Labels, f func() int64) {
		a.reg.MustRegister(prometheus.NewCounterFunc(prometheus.CounterOpts{
			Namespace: "socketcluster", Subsystem: "gateway", Name: name, Help: help, ConstLabels: labels,
		}, func() float64 { return float64(f()) }))
	}
	if h, ok := g.API().(*api.Handler); ok && h != nil {
		for outcome, f := range map[string]func(api.Stats) int64{
			"ok": func(s api.Stats) int64 { return s.OK }, "unauthorized": func(s api.Stats) int64 { return s.Unauthorized },
			"bad_request": func(s api.Stats) int64 { return s.BadRequests }, "failure": func(s api.Stats) int64 { return s.Failures },
		} {
			counter("api_requests_total", "Server API calls by outcome.", prometheus.Labels{"outcome": outcome}, func() int64 { return f(h.Stats()) })
		}
	}
	if p := g.Proxy(); p != nil {
		for outcome, f := range map[string]func(proxy.Stats) int64{
			"ok": func(s proxy.Stats) int64 { return s.OK }, "refused": func(s proxy.Stats) int64 { return s.Refused },
			"timeout": func(s proxy.Stats) int64 { return s.Timeouts }, "unavailable": func(s proxy.Stats) int64 { return s.Unavailable },
			"busy": func(s proxy.Stats) int64 { return s.Busy },
		} {
			counter("proxy_requests_total", "Requests to the backend by outcome.", prometheus.Labels{"outcome": outcome}, func() int64 { return f(p.Stats()) })
		}
	}
	if t := g.Tracker(); t != nil {
		counter("presence_store_errors_total", "Failed presence store operations.", nil, t.StoreErrors)
	}
}
