// Package state is an scc-state server: the coordinator of a
// SocketCluster cluster (SCC), wire-compatible with the Node scc-state
// (SocketCluster/scc-state 9.x), so that Node and Go scc-broker instances
// and workers can join it.
//
// What it does, as the Node one:
//
//   - Every component connects with the query instanceType (scc-broker
//     or scc-worker), instancePort, version and authKey. With an AuthKey,
//     an upgrade request without it is refused (BadClusterAuthError); a
//     version whose major is not accepted is refused (CompatibilityError).
//     An instanceType other than those two is refused too (the Node server
//     lets it in). The Node server accepts only its own major; this one accepts every
//     major of Options.AcceptMajors (default 9 and 10: scc-broker 9.x and
//     10.x and scc-broker-client 9.x and 10.x speak the same protocol).
//   - A broker invokes sccBrokerJoinCluster {instanceId, instanceIp,
//     instanceIpFamily, instanceSecure}; ScaleOutDelay later (debounced:
//     only the latest change counts) every worker is invoked with
//     sccBrokerJoinCluster {sccBrokerURIs, time, sccSourceWorkerURI}. A
//     broker that leaves (sccBrokerLeaveCluster or disconnection) is
//     announced ScaleBackDelay later with sccBrokerLeaveCluster.
//   - A worker invokes sccWorkerJoinCluster {instanceId, instanceIp,
//     instanceIpFamily} and gets {sccBrokerURIs, sccWorkerURIs, time,
//     sccSourceWorkerURI}; during StartupDelay after start it is refused
//     ("The server is waiting for initial broker connections") and
//     retries. The other workers hear of it ScaleOutDelay later
//     (sccWorkerJoinCluster), and of a worker that leaves ScaleBackDelay
//     later (sccWorkerLeaveCluster).
//   - An invoke a component does not acknowledge is retried every
//     RetryDelay while its socket is open.
//   - GET /health-check answers 200 OK; other plain HTTP requests 404.
//
// Instance URIs are ws[s]://ip:port (wss when instanceSecure), with the
// address in brackets unless the component gave instanceIp with
// instanceIpFamily "IPv4". Without instanceIp the connection's address is
// used (or the first address of ForwardedForHeader); an IPv4 address is
// then written as an IPv4-mapped IPv6 address, ws://[::ffff:10.0.0.5]:8888,
// which is what the Node server reports on its dual-stack listener, so
// that every worker computes the same URIs and the same mapping.
package state

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	sc "github.com/socketcluster-go/socketcluster"
)

// Options configure a Server. Start from DefaultOptions: zero delays are
// taken literally (no delay), as SCC_STATE_SERVER_*_DELAY=0 does.
type Options struct {
	AuthKey            string
	ScaleOutDelay      time.Duration // default 5s
	ScaleBackDelay     time.Duration // default 1s
	StartupDelay       time.Duration // default 5s
	RetryDelay         time.Duration // default 2s
	ForwardedForHeader string        // e.g. "x-forwarded-for"; empty: not used
	AcceptMajors       []int         // default 9 and 10
	Logger             *slog.Logger  // default slog.Default()
	// Server adjusts the options of the SocketCluster server underneath
	// (ping interval, origins...), if not nil.
	Server func(*sc.Options)
}

// DefaultOptions returns the Node scc-state's defaults.
func DefaultOptions() Options {
	return Options{
		ScaleOutDelay:  5 * time.Second,
		ScaleBackDelay: time.Second,
		StartupDelay:   5 * time.Second,
		RetryDelay:     2 * time.Second,
		AcceptMajors:   []int{9, 10},
	}
}

// Instance types, as the query's instanceType.
const (
	TypeBroker = "scc-broker"
	TypeWorker = "scc-worker"
)

// Stats are the counters of a Server.
type Stats struct {
	Brokers, Workers  int    // instances in the cluster now
	AuthRejected      uint64 // upgrades refused for a wrong authKey
	VersionRejected   uint64 // handshakes refused for an unaccepted version
	TypeRejected      uint64 // handshakes refused for an unknown instanceType
	EarlyWorkerJoins  uint64 // worker joins refused during the start-up delay
	Joins, Leaves     uint64
	Broadcasts        uint64 // invokes of cluster updates sent
	BroadcastFailures uint64 // of which failed (retried while the socket is open)
}

// Server is an scc-state server; it is an http.Handler.
type Server struct {
	opts    Options
	sc      *sc.Server
	mux     *http.ServeMux
	log     *slog.Logger
	started time.Time
	ctx     context.Context
	cancel  context.CancelFunc
	wg      sync.WaitGroup

	authRejected, versionRejected, typeRejected, early, joins, leaves, broadcasts, bfail atomic.Uint64

	mu          sync.Mutex
	brokers     map[*sc.Socket]*instance
	workers     map[*sc.Socket]*instance
	brokerTimer *time.Timer
	workerTimer *time.Timer
	lastTime    int64
	seq         uint64
	closed      bool
}

type instance struct {
	id     any // instanceId as sent
	uri    string
	socket *sc.Socket
	seq    uint64 // order of the first join, the order of the lists
}

// New returns a Server; the start-up delay counts from now.
func New(o Options) (*Server, error) {
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	if o.AcceptMajors == nil {
		o.AcceptMajors = []int{9, 10}
	}
	for _, d := range []time.Duration{o.ScaleOutDelay, o.ScaleBackDelay, o.StartupDelay, o.RetryDelay} {
		if d < 0 {
			return nil, errors.New("scc-state: negative delay")
		}
	}
	if o.RetryDelay == 0 {
		o.RetryDelay = 2 * time.Second
	}
	so := sc.Options{Logger: o.Logger, SocketChannelLimit: 0}
	if o.Server != nil {
		o.Server(&so)
	}
	srv, err := sc.New(so)
	if err != nil {
		return nil, fmt.Errorf("scc-state: %w", err)
	}
	s := &Server{
		opts: o, sc: srv, log: o.Logger, started: time.Now(),
		brokers: map[*sc.Socket]*instance{}, workers: map[*sc.Socket]*instance{},
	}
	s.ctx, s.cancel = context.WithCancel(context.Background())
	if err := srv.SetMiddleware(sc.MiddlewareHandshake, s.handshake); err != nil {
		return nil, err
	}
	srv.HandleProcedure("sccBrokerJoinCluster", s.brokerJoin)
	srv.HandleProcedure("sccBrokerLeaveCluster", func(r *sc.Request) { s.brokerLeave(r.Socket); _ = r.End(sc.Undefined) })
	srv.HandleProcedure("sccWorkerJoinCluster", s.workerJoin)
	srv.HandleProcedure("sccWorkerLeaveCluster", func(r *sc.Request) { s.workerLeave(r.Socket); _ = r.End(sc.Undefined) })
	s.mux = http.NewServeMux()
	s.mux.HandleFunc("/health-check", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/html")
		_, _ = w.Write([]byte("OK"))
	})
	s.mux.Handle(srv.Path(), srv)
	s.mux.HandleFunc("/", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/html")
		w.WriteHeader(http.StatusNotFound)
		_, _ = w.Write([]byte("Not found"))
	})
	if o.StartupDelay > 0 {
		s.log.Info("scc-state: waiting for initial scc-broker instances before allowing scc-worker instances to join", "delay", o.StartupDelay.String())
	}
	return s, nil
}

// ServeHTTP implements http.Handler.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) { s.mux.ServeHTTP(w, r) }

// HTTPServer wraps the server in an http.Server with the SocketCluster
// server's header limits.
func (s *Server) HTTPServer() *http.Server { return s.sc.HTTPServer(s.mux) }

// SC returns the SocketCluster server underneath.
func (s *Server) SC() *sc.Server { return s.sc }

// Close disconnects every component and stops the timers and retries.
func (s *Server) Close(ctx context.Context) error {
	s.mu.Lock()
	s.closed = true
	for _, t := range []*time.Timer{s.brokerTimer, s.workerTimer} {
		if t != nil {
			t.Stop()
		}
	}
	s.mu.Unlock()
	s.cancel()
	err := s.sc.Close(ctx)
	s.wg.Wait()
	return err
}

// Stats returns the counters.
func (s *Server) Stats() Stats {
	s.mu.Lock()
	st := Stats{Brokers: len(s.brokers), Workers: len(s.workers)}
	s.mu.Unlock()
	st.AuthRejected, st.VersionRejected, st.EarlyWorkerJoins = s.authRejected.Load(), s.versionRejected.Load(), s.early.Load()
	st.TypeRejected = s.typeRejected.Load()
	st.Joins, st.Leaves, st.Broadcasts, st.BroadcastFailures = s.joins.Load(), s.leaves.Load(), s.broadcasts.Load(), s.bfail.Load()
	return st
}

// Brokers returns the broker URIs of the cluster now.
func (s *Server) Brokers() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return uris(s.brokers)
}

// Workers returns the worker URIs of the cluster now.
func (s *Server) Workers() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return uris(s.workers)
}

// uris lists the distinct URIs of a set, in join order of the first
// instance of each (as the Node server's object keys).
func uris(m map[*sc.Socket]*instance) []string {
	list := make([]*instance, 0, len(m))
	for _, in := range m {
		list = append(list, in)
	}
	slices.SortFunc(list, func(a, b *instance) int { return cmp.Compare(a.seq, b.seq) })
	out := []string{}
	for _, in := range list {
		if !slices.Contains(out, in.uri) {
			out = append(out, in.uri)
		}
	}
	return out
}

var semverRe = regexp.MustCompile(`\d+\.\d+\.\d+`)

// majorOf is the Node server's getMajorSemver: -1 for NaN.
func majorOf(version string) int {
	if !semverRe.MatchString(version) {
		return -1
	}
	first := strings.TrimLeft(strings.SplitN(version, ".", 2)[0], " \t\n\r\v\f")
	end := 0
	if end < len(first) && (first[end] == '+' || first[end] == '-') {
		end++
	}
	digits := end
	for end < len(first) && first[end] >= '0' && first[end] <= '9' {
		end++
	}
	if end == digits {
		return -1
	}
	n, err := strconv.Atoi(first[:end])
	if err != nil || n < 0 {
		return -1
	}
	return n
}

func (s *Server) handshake(_ context.Context, a *sc.Action) error {
	switch a.Type {
	case sc.ActionHandshakeWS:
		if s.opts.AuthKey != "" && a.Request.URL.Query().Get("authKey") != s.opts.AuthKey {
			s.authRejected.Add(1)
			return sc.NewError("BadClusterAuthError", "Cannot connect to the scc-state instance without providing a valid authKey as a URL query argument.")
		}
	case sc.ActionHandshakeSC:
		q := a.Socket.Request().URL.Query()
		version, typ, port := q.Get("version"), q.Get("instanceType"), q.Get("instancePort")
		if typ != "" && typ != TypeBroker && typ != TypeWorker {
			s.typeRejected.Add(1)
			msg := fmt.Sprintf("Unknown instanceType %q at address %s: use %s or %s", typ, a.Socket.RemoteAddress(), TypeBroker, TypeWorker)
			s.log.Warn("scc-state: refused a component", "reason", msg)
			return sc.NewError("CompatibilityError", msg)
		}
		major := majorOf(version)
		if !slices.Contains(s.opts.AcceptMajors, major) {
			s.versionRejected.Add(1)
			var msg string
			switch {
			case typ == "" || major < 0:
				msg = fmt.Sprintf("An obsolete SCC component at address %s is incompatible with this scc-state, which accepts the major versions %v. Please, update the SCC component.", a.Socket.RemoteAddress(), s.opts.AcceptMajors)
			default:
				msg = fmt.Sprintf("The %s@%s at address %s:%s is incompatible with this scc-state, which accepts the major versions %v.", typ, version, a.Socket.RemoteAddress(), port, s.opts.AcceptMajors)
			}
			s.log.Warn("scc-state: refused a component", "reason", msg)
			return sc.NewError("CompatibilityError", msg)
		}
	}
	return nil
}

// joinData is what brokers and workers send with their join.
type joinData struct {
	InstanceID       any `json:"instanceId"`
	InstanceIP       any `json:"instanceIp"`
	InstanceIPFamily any `json:"instanceIpFamily"`
	InstanceSecure   any `json:"instanceSecure"`
}

func truthy(v any) bool {
	switch x := v.(type) {
	case nil:
		return false
	case bool:
		return x
	case string:
		return x != ""
	case float64:
		return x != 0
	}
	return true
}

// instanceURI is the Node server's getInstanceURI after getRemoteIp.
func (s *Server) instanceURI(sock *sc.Socket, d joinData, secure bool) string {
	proto := "ws"
	if secure {
		proto = "wss"
	}
	var ip string
	family := ""
	if truthy(d.InstanceIP) {
		ip = fmt.Sprint(d.InstanceIP)
		if f, ok := d.InstanceIPFamily.(string); ok {
			family = f
		}
	} else {
		if s.opts.ForwardedForHeader != "" {
			ip = strings.TrimSpace(strings.Split(sock.Request().Header.Get(s.opts.ForwardedForHeader), ",")[0])
		}
		if ip == "" {
			ip = sock.RemoteAddress()
		}
		if a := net.ParseIP(ip); a != nil && a.To4() != nil && !strings.Contains(ip, ":") {
			ip = "::ffff:" + ip // as Node's dual-stack listener reports it
		}
	}
	if family != "IPv4" {
		ip = "[" + ip + "]"
	}
	port := sock.Request().URL.Query().Get("instancePort")
	if !sock.Request().URL.Query().Has("instancePort") {
		port = "undefined"
	}
	return proto + "://" + ip + ":" + port
}

func decodeJoin(r *sc.Request) joinData {
	var d joinData
	if r.Data != nil {
		_ = json.Unmarshal(r.Data, &d) // anything else is {} as in `req.data || {}`
	}
	return d
}

func (s *Server) brokerJoin(r *sc.Request) {
	d := decodeJoin(r)
	in := &instance{id: d.InstanceID, uri: s.instanceURI(r.Socket, d, truthy(d.InstanceSecure)), socket: r.Socket}
	s.mu.Lock()
	old, again := s.brokers[r.Socket]
	in.seq = s.seqLocked(old)
	s.brokers[r.Socket] = in
	s.scheduleLocked(&s.brokerTimer, s.opts.ScaleOutDelay, func() { s.broadcastBrokers("sccBrokerJoinCluster") })
	s.mu.Unlock()
	if !again {
		s.watch(r.Socket)
	}
	s.joins.Add(1)
	_ = r.End(sc.Undefined)
	s.log.Info("scc-state: scc-broker joined the cluster", "instanceId", d.InstanceID, "uri", in.uri, "socket", r.Socket.ID())
}

func (s *Server) workerJoin(r *sc.Request) {
	d := decodeJoin(r)
	in := &instance{id: d.InstanceID, uri: s.instanceURI(r.Socket, d, false), socket: r.Socket}
	if s.opts.StartupDelay > 0 && time.Since(s.started) < s.opts.StartupDelay {
		s.early.Add(1)
		s.log.Warn("scc-state: scc-worker not allowed to join yet: waiting for initial brokers", "instanceId", d.InstanceID, "socket", r.Socket.ID())
		_ = r.Error(sc.NewError("Error", "The server is waiting for initial broker connections")) // as the Node server's new Error(…)
		return
	}
	joiner := r.Socket
	s.mu.Lock()
	old, again := s.workers[joiner]
	in.seq = s.seqLocked(old)
	s.workers[joiner] = in
	s.scheduleLocked(&s.workerTimer, s.opts.ScaleOutDelay, func() { s.broadcastWorkers("sccWorkerJoinCluster", joiner) })
	t := s.nextTimeLocked()
	ans := map[string]any{
		"sccWorkerURIs":      uris(s.workers),
		"sccBrokerURIs":      uris(s.brokers),
		"time":               t,
		"sccSourceWorkerURI": in.uri,
	}
	s.mu.Unlock()
	if !again {
		s.watch(joiner)
	}
	s.joins.Add(1)
	_ = r.End(ans)
	s.log.Info("scc-state: scc-worker joined the cluster", "instanceId", d.InstanceID, "uri", in.uri, "socket", joiner.ID())
}

func (s *Server) seqLocked(old *instance) uint64 {
	if old != nil {
		return old.seq
	}
	s.seq++
	return s.seq
}

// watch makes the socket's end a leave.
func (s *Server) watch(sock *sc.Socket) {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return
	}
	s.wg.Add(1)
	s.mu.Unlock()
	go func() {
		defer s.wg.Done()
		select {
		case <-sock.Done():
		case <-s.ctx.Done():
			return
		}
		s.brokerLeave(sock)
		s.workerLeave(sock)
	}()
}

func (s *Server) brokerLeave(sock *sc.Socket) {
	s.mu.Lock()
	in, ok := s.brokers[sock]
	if ok {
		delete(s.brokers, sock)
		s.scheduleLocked(&s.brokerTimer, s.opts.ScaleBackDelay, func() { s.broadcastBrokers("sccBrokerLeaveCluster") })
	}
	s.mu.Unlock()
	if ok {
		s.leaves.Add(1)
		s.log.Info("scc-state: scc-broker left the cluster", "instanceId", in.id, "uri", in.uri, "socket", sock.ID())
	}
}

func (s *Server) workerLeave(sock *sc.Socket) {
	s.mu.Lock()
	in, ok := s.workers[sock]
	if ok {
		delete(s.workers, sock)
		s.scheduleLocked(&s.workerTimer, s.opts.ScaleBackDelay, func() { s.broadcastWorkers("sccWorkerLeaveCluster", nil) })
	}
	s.mu.Unlock()
	if ok {
		s.leaves.Add(1)
		s.log.Info("scc-state: scc-worker left the cluster", "instanceId", in.id, "uri", in.uri, "socket", sock.ID())
	}
}

// scheduleLocked replaces the pending announcement of *t: only the
// latest change counts.
func (s *Server) scheduleLocked(t **time.Timer, d time.Duration, f func()) {
	if s.closed {
		return
	}
	if *t != nil {
		(*t).Stop()
	}
	*t = time.AfterFunc(d, f)
}

// nextTimeLocked is Date.now(), kept strictly increasing so that no
// snapshot is ignored as old by a worker.
func (s *Server) nextTimeLocked() int64 {
	t := time.Now().UnixMilli()
	if t <= s.lastTime {
		t = s.lastTime + 1
	}
	s.lastTime = t
	return t
}

func (s *Server) broadcastBrokers(procedure string) {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return
	}
	list, t := uris(s.brokers), s.nextTimeLocked()
	targets := make([]*instance, 0, len(s.workers))
	for _, in := range s.workers {
		targets = append(targets, in)
	}
	s.wg.Add(len(targets))
	s.mu.Unlock()
	for _, in := range targets {
		s.invoke(in, procedure, map[string]any{"sccBrokerURIs": list, "time": t, "sccSourceWorkerURI": in.uri})
	}
}

func (s *Server) broadcastWorkers(procedure string, except *sc.Socket) {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return
	}
	list, t := uris(s.workers), s.nextTimeLocked()
	targets := make([]*instance, 0, len(s.workers))
	for sock, in := range s.workers {
		if sock != except {
			targets = append(targets, in)
		}
	}
	s.wg.Add(len(targets))
	s.mu.Unlock()
	for _, in := range targets {
		s.invoke(in, procedure, map[string]any{"sccWorkerURIs": list, "time": t, "sccSourceWorkerURI": in.uri})
	}
}

// invoke calls a component, retrying every RetryDelay while its socket
// is open; the caller did s.wg.Add(1) under s.mu.
func (s *Server) invoke(in *instance, procedure string, data map[string]any) {
	go func() {
		defer s.wg.Done()
		for {
			s.broadcasts.Add(1)
			_, err := in.socket.Invoke(s.ctx, procedure, data)
			if err == nil || s.ctx.Err() != nil {
				return
			}
			s.bfail.Add(1)
			s.log.Warn("scc-state: a component did not acknowledge an update; retrying", "procedure", procedure, "uri", in.uri, "error", err.Error())
			if in.socket.State() != sc.StateOpen {
				return
			}
			select {
			case <-time.After(s.opts.RetryDelay):
			case <-s.ctx.Done():
				return
			case <-in.socket.Done():
				return
			}
		}
	}()
}
