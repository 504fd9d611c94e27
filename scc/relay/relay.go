// Package relay is an scc-broker: the relay of a SocketCluster cluster
// (SCC), wire-compatible with the Node scc-broker (9.x and 10.x, which
// are the same program), so that Node and Go workers can use it.
//
// A relay is a SocketCluster server on which workers subscribe to the
// channels the mapping gives it and publish {sender, messages} packets;
// every publish is fanned out to the subscribed workers. It joins the
// cluster through scc-state as an scc-broker:
//
//   - it connects to scc-state with the query instanceType=scc-broker,
//     instancePort, version and authKey, and on every connection invokes
//     sccBrokerJoinCluster {instanceId, instanceIp, instanceIpFamily,
//     instanceSecure}, again every RetryDelay while that fails;
//   - with an AuthKey, a connection whose upgrade request has no
//     authKey=<AuthKey> query parameter is refused (BadClusterAuthError);
//   - GET /health-check answers 200 OK.
//
// Client publishes are allowed and the channels per socket unlimited, as
// the Node scc-broker sets its server.
package relay

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	sc "github.com/socketcluster-go/socketcluster"
	"github.com/socketcluster-go/socketcluster/client"
)

// Version is the scc-broker version the relay reports to scc-state by
// default: the major of the upstream scc-state (9), which refuses any
// other.
const Version = "9.3.0"

// Options configure a Relay.
type Options struct {
	// StateURL is scc-state's WebSocket URL (ws://host:7777/socketcluster/).
	StateURL string
	// Port is the port this relay serves on, reported to scc-state
	// (instancePort): workers connect to ws://<ip>:<Port>.
	Port int
	// AuthKey is the cluster's shared secret.
	AuthKey string
	// InstanceID names the relay (default: a random UUID); InstanceIP and
	// InstanceIPFamily (default "IPv4") are reported when set, Secure
	// makes scc-state announce wss://.
	InstanceID       string
	InstanceIP       string
	InstanceIPFamily string
	Secure           bool
	// Version is reported to scc-state (default Version).
	Version string
	// RetryDelay (default 2s), StateConnectTimeout (3s) and
	// StateAckTimeout (2s) as the Node scc-broker's
	// SCC_BROKER_SERVER_RETRY_DELAY, SCC_STATE_SERVER_CONNECT_TIMEOUT and
	// SCC_STATE_SERVER_ACK_TIMEOUT.
	RetryDelay          time.Duration
	StateConnectTimeout time.Duration
	StateAckTimeout     time.Duration
	Logger              *slog.Logger
	// Server adjusts the options of the SocketCluster server underneath,
	// if not nil.
	Server func(*sc.Options)
}

// Stats are the counters of a Relay.
type Stats struct {
	Joined        bool
	Joins         uint64 // successful sccBrokerJoinCluster
	JoinFailures  uint64 // failed ones (retried)
	StateFailures uint64 // failed connection attempts to scc-state (retried)
	AuthRejected  uint64 // workers refused for a wrong authKey
	Workers       int    // connected sockets
	Publishes     int64  // messages relayed
	Deliveries    int64  // publish frames sent to workers
}

// Relay is an scc-broker; it is an http.Handler.
type Relay struct {
	opts  Options
	sc    *sc.Server
	mux   *http.ServeMux
	log   *slog.Logger
	state *client.Client

	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup

	joined                                         atomic.Bool
	joins, joinFailures, stateFailures, authFailed atomic.Uint64
	started                                        atomic.Bool
}

// New returns a relay; Start joins the cluster.
func New(o Options) (*Relay, error) {
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	if o.InstanceID == "" {
		var b [16]byte
		_, _ = rand.Read(b[:])
		b[6] = b[6]&0x0f | 0x40
		b[8] = b[8]&0x3f | 0x80
		o.InstanceID = fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:16])
	}
	if o.InstanceIPFamily == "" {
		o.InstanceIPFamily = "IPv4"
	}
	if o.Version == "" {
		o.Version = Version
	}
	if o.RetryDelay <= 0 {
		o.RetryDelay = 2 * time.Second
	}
	if o.StateConnectTimeout <= 0 {
		o.StateConnectTimeout = 3 * time.Second
	}
	if o.StateAckTimeout <= 0 {
		o.StateAckTimeout = 2 * time.Second
	}
	if o.Port <= 0 || o.Port > 65535 {
		return nil, fmt.Errorf("scc-broker: port %d: the port workers connect to is required", o.Port)
	}
	if _, err := url.Parse(o.StateURL); err != nil || o.StateURL == "" {
		return nil, fmt.Errorf("scc-broker: scc-state URL %q: want ws://host:7777/socketcluster/", o.StateURL)
	}
	so := sc.Options{Logger: o.Logger, AckTimeout: 10 * time.Second, Broker: standalone{}}
	if o.Server != nil {
		o.Server(&so)
	}
	srv, err := sc.New(so)
	if err != nil {
		return nil, fmt.Errorf("scc-broker: %w", err)
	}
	r := &Relay{opts: o, sc: srv, log: o.Logger}
	r.ctx, r.cancel = context.WithCancel(context.Background())
	if o.AuthKey != "" {
		_ = srv.SetMiddleware(sc.MiddlewareHandshake, func(_ context.Context, a *sc.Action) error {
			if a.Type == sc.ActionHandshakeWS && a.Request.URL.Query().Get("authKey") != o.AuthKey {
				r.authFailed.Add(1)
				return sc.NewError("BadClusterAuthError", "Cannot connect to the cluster broker server without providing a valid authKey as a URL query argument.")
			}
			return nil
		})
	}
	r.mux = http.NewServeMux()
	r.mux.HandleFunc("/health-check", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		_, _ = w.Write([]byte("OK"))
	})
	r.mux.Handle(srv.Path(), srv)
	return r, nil
}

// ServeHTTP implements http.Handler.
func (r *Relay) ServeHTTP(w http.ResponseWriter, req *http.Request) { r.mux.ServeHTTP(w, req) }

// HTTPServer wraps the relay in an http.Server with the SocketCluster
// server's header limits.
func (r *Relay) HTTPServer() *http.Server { return r.sc.HTTPServer(r.mux) }

// SC returns the SocketCluster server underneath.
func (r *Relay) SC() *sc.Server { return r.sc }

// Stats returns the counters.
func (r *Relay) Stats() Stats {
	st := r.sc.Stats()
	return Stats{
		Joined: r.joined.Load(), Joins: r.joins.Load(), JoinFailures: r.joinFailures.Load(),
		StateFailures: r.stateFailures.Load(), AuthRejected: r.authFailed.Load(),
		Workers: st.Clients, Publishes: st.Publishes, Deliveries: st.Deliveries,
	}
}

// Start connects to scc-state and joins the cluster, in the background:
// an unreachable state server is retried every RetryDelay (logged,
// counted). Only a refusal of the first connection by scc-state (a wrong
// authKey, a version it does not accept) is returned, at once: it will
// not change by retrying. ctx bounds that first attempt.
func (r *Relay) Start(ctx context.Context) error {
	if !r.started.CompareAndSwap(false, true) {
		return errors.New("scc-broker: Start called twice")
	}
	q := url.Values{}
	q.Set("authKey", r.opts.AuthKey)
	q.Set("instancePort", strconv.Itoa(r.opts.Port))
	q.Set("instanceType", "scc-broker")
	q.Set("version", r.opts.Version)
	st, err := client.New(r.opts.StateURL, &client.Options{
		ConnectTimeout: r.opts.StateConnectTimeout,
		AckTimeout:     r.opts.StateAckTimeout,
		AutoReconnect:  true,
		Reconnect: client.ReconnectOptions{
			InitialDelay: r.opts.RetryDelay, Randomness: time.Second, Multiplier: 1,
			MaxDelay: r.opts.RetryDelay + time.Second,
		},
		Query: q,
	})
	if err != nil {
		return fmt.Errorf("scc-broker: %w", err)
	}
	r.state = st
	connects := client.Listen[client.ConnectEvent](st).Consumer()
	disconnects := client.Listen[client.DisconnectEvent](st).Consumer()
	r.wg.Add(3)
	go func() {
		defer r.wg.Done()
		for range connects.All(r.ctx) {
			r.join()
		}
	}()
	go func() {
		defer r.wg.Done()
		for ev := range disconnects.All(r.ctx) {
			r.joined.Store(false)
			r.log.Warn("scc-broker: lost the connection to scc-state; reconnecting", "state", r.opts.StateURL, "code", ev.Code, "reason", ev.Reason)
		}
	}()
	cctx, cancel := context.WithTimeout(ctx, r.opts.StateConnectTimeout)
	err = st.Connect(cctx)
	cancel()
	var scErr *sc.Error
	if err != nil && errors.As(err, &scErr) {
		r.wg.Done()
		r.cancel()
		_ = st.Close(1000, "")
		r.wg.Wait()
		return fmt.Errorf("scc-broker: scc-state %s refused this broker: %w", r.opts.StateURL, err)
	}
	go func() {
		defer r.wg.Done()
		if err == nil {
			return
		}
		for {
			r.stateFailures.Add(1)
			r.log.Warn("scc-broker: cannot reach scc-state; retrying", "state", r.opts.StateURL, "error", err.Error())
			select {
			case <-r.ctx.Done():
				return
			case <-time.After(r.opts.RetryDelay):
			}
			cctx, cancel := context.WithTimeout(r.ctx, r.opts.StateConnectTimeout)
			err = st.Connect(cctx)
			cancel()
			if err == nil || r.ctx.Err() != nil {
				return
			}
		}
	}()
	return nil
}

// join invokes sccBrokerJoinCluster until it succeeds or the connection
// to scc-state is lost (the next connection joins again).
func (r *Relay) join() {
	data := map[string]any{
		"instanceId":       r.opts.InstanceID,
		"instanceIp":       nil,
		"instanceIpFamily": r.opts.InstanceIPFamily,
		"instanceSecure":   r.opts.Secure,
	}
	if r.opts.InstanceIP != "" {
		data["instanceIp"] = r.opts.InstanceIP
	}
	for {
		_, err := r.state.Invoke(r.ctx, "sccBrokerJoinCluster", data)
		if err == nil {
			r.joins.Add(1)
			r.joined.Store(true)
			r.log.Info("scc-broker: joined the cluster", "state", r.opts.StateURL, "instanceId", r.opts.InstanceID, "port", r.opts.Port)
			return
		}
		if r.ctx.Err() != nil {
			return
		}
		r.joinFailures.Add(1)
		r.log.Warn("scc-broker: joining the cluster failed; retrying", "state", r.opts.StateURL, "error", err.Error())
		select {
		case <-r.ctx.Done():
			return
		case <-time.After(r.opts.RetryDelay):
		}
		if r.state.State() != client.StateOpen {
			return
		}
	}
}

// Close leaves the cluster (the state connection closes, so scc-state
// drops this broker) and disconnects every worker.
func (r *Relay) Close(ctx context.Context) error {
	r.cancel()
	if r.state != nil {
		_ = r.state.Close(1000, "")
	}
	err := r.sc.Close(ctx)
	r.wg.Wait()
	return err
}
