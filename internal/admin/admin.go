// Package admin is scserver's admin page: live figures of the server with
// small plots, the busiest channels, a socket lookup with a disconnect
// button, and in a cluster every instance's figures, shared through the
// broker. It serves one HTML page, its script and style (embedded, no
// CDN) and a small JSON API, all behind a password.
//
// Access: a log-in with the password (compared in constant time; failed
// attempts are rate-limited per client address and overall, and logged)
// gives a session cookie (HttpOnly, SameSite=Strict). Requests that
// change something must also carry the header X-SC-Admin: 1, which a
// cross-site form cannot send. Nothing served contains the password, auth
// keys or tokens.
package admin

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"embed"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"github.com/socketcluster-go/socketcluster/protocol"
	"log/slog"
	"net"
	"net/http"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	sc "github.com/socketcluster-go/socketcluster"
)

// MinPasswordLength is the shortest password New accepts.
const MinPasswordLength = 12

//go:embed assets
var assets embed.FS

// Config configures an Admin.
type Config struct {
	Server   *sc.Server
	Password string       // at least MinPasswordLength characters
	Logger   *slog.Logger // default slog.Default()
	// Instance names this server in the cluster view. Default: the host
	// name.
	Instance string
	// Secure marks the session cookie Secure (the page is served over
	// HTTPS).
	Secure bool
	// ShareInterval is how often the figures are shared with the other
	// instances through the broker (Run). Default 2s.
	ShareInterval time.Duration
	// SessionTTL is how long a log-in lasts. Default 12h.
	SessionTTL time.Duration
}

// Admin serves the admin page. It is an http.Handler; Run shares the
// figures with the other instances.
type Admin struct {
	srv      *sc.Server
	pwHash   [32]byte
	logger   *slog.Logger
	instance string
	id       string // this process, in the cluster messages
	secure   bool
	interval time.Duration
	ttl      time.Duration
	started  time.Time
	mux      *http.ServeMux
	limiter  *limiter
	peers    *peers
	key      [32]byte // cluster message key, derived from the password

	mu       sync.Mutex
	sessions map[[32]byte]time.Time // SHA-256 of the session token → expiry
}

// New returns the admin page of cfg.Server.
func New(cfg Config) (*Admin, error) {
	if cfg.Server == nil {
		return nil, errors.New("admin: Config.Server is nil")
	}
	if len(cfg.Password) < MinPasswordLength {
		return nil, fmt.Errorf("admin: the password must have at least %d characters", MinPasswordLength)
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.Instance == "" {
		cfg.Instance = hostname()
	}
	if cfg.ShareInterval <= 0 {
		cfg.ShareInterval = 2 * time.Second
	}
	if cfg.SessionTTL <= 0 {
		cfg.SessionTTL = 12 * time.Hour
	}
	a := &Admin{
		srv:      cfg.Server,
		pwHash:   sha256.Sum256([]byte(cfg.Password)),
		logger:   cfg.Logger,
		instance: cfg.Instance,
		id:       randomHex(8),
		secure:   cfg.Secure,
		interval: cfg.ShareInterval,
		ttl:      cfg.SessionTTL,
		started:  time.Now(),
		limiter:  newLimiter(5, time.Minute, 30),
		sessions: map[[32]byte]time.Time{},
		key:      sha256.Sum256([]byte("socketcluster-go admin cluster v1\x00" + cfg.Password)),
	}
	a.peers = newPeers(3 * a.interval)
	a.mux = http.NewServeMux()
	a.mux.HandleFunc("GET /{$}", a.asset("assets/admin.html", "text/html; charset=utf-8"))
	a.mux.HandleFunc("GET /admin.js", a.asset("assets/admin.js", "text/javascript; charset=utf-8"))
	a.mux.HandleFunc("GET /admin.css", a.asset("assets/admin.css", "text/css; charset=utf-8"))
	a.mux.HandleFunc("POST /api/login", a.login)
	a.mux.HandleFunc("POST /api/logout", a.authed(a.logout))
	a.mux.HandleFunc("GET /api/stats", a.authed(a.stats))
	a.mux.HandleFunc("GET /api/sockets", a.authed(a.findSockets))
	a.mux.HandleFunc("POST /api/disconnect", a.authed(a.disconnect))
	return a, nil
}

func hostname() string {
	if h, err := osHostname(); err == nil && h != "" {
		return h
	}
	return "scserver"
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// ServeHTTP implements http.Handler.
func (a *Admin) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	h := w.Header()
	h.Set("Content-Security-Policy", "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; img-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'")
	h.Set("X-Frame-Options", "DENY")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Referrer-Policy", "no-referrer")
	h.Set("Cache-Control", "no-store")
	r.Body = http.MaxBytesReader(w, r.Body, 4<<10)
	a.mux.ServeHTTP(w, r)
}

func (a *Admin) asset(name, ctype string) http.HandlerFunc {
	b, err := assets.ReadFile(name)
	if err != nil {
		panic(err) // embedded at build time
	}
	return func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", ctype)
		_, _ = w.Write(b)
	}
}

// ---- Authentication ----

const cookieName = "sc_admin"

func clientIP(r *http.Request) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return r.RemoteAddr
	}
	return host
}

func (a *Admin) login(w http.ResponseWriter, r *http.Request) {
	if !a.fromPage(w, r) {
		return
	}
	ip := clientIP(r)
	if wait, ok := a.limiter.allow(ip, time.Now()); !ok {
		a.logger.Warn("admin: log-in refused: too many failed attempts", "remote", ip)
		w.Header().Set("Retry-After", strconv.Itoa(int(wait.Seconds()+1)))
		writeError(w, http.StatusTooManyRequests, "Too many failed log-in attempts; try again later")
		return
	}
	var body struct {
		Password string `json:"password"`
	}
	if err := json.NewDecoder(r.Body).Decode(&body); err != nil {
		writeError(w, http.StatusBadRequest, "Send {\"password\": \"…\"} as JSON")
		return
	}
	got := sha256.Sum256([]byte(body.Password))
	if subtle.ConstantTimeCompare(got[:], a.pwHash[:]) != 1 {
		a.limiter.fail(ip, time.Now())
		a.logger.Warn("admin: wrong password", "remote", ip)
		writeError(w, http.StatusUnauthorized, "Wrong password")
		return
	}
	a.limiter.succeed(ip)
	token := randomHex(32)
	a.mu.Lock()
	now := time.Now()
	for k, exp := range a.sessions {
		if now.After(exp) {
			delete(a.sessions, k)
		}
	}
	a.sessions[sha256.Sum256([]byte(token))] = now.Add(a.ttl)
	a.mu.Unlock()
	http.SetCookie(w, &http.Cookie{Name: cookieName, Value: token, Path: "/", HttpOnly: true, Secure: a.secure,
		SameSite: http.SameSiteStrictMode, MaxAge: int(a.ttl.Seconds())})
	a.logger.Info("admin: logged in", "remote", ip)
	writeJSON(w, map[string]any{"ok": true})
}

func (a *Admin) logout(w http.ResponseWriter, r *http.Request) {
	if c, err := r.Cookie(cookieName); err == nil {
		a.mu.Lock()
		delete(a.sessions, sha256.Sum256([]byte(c.Value)))
		a.mu.Unlock()
	}
	http.SetCookie(w, &http.Cookie{Name: cookieName, Value: "", Path: "/", HttpOnly: true, Secure: a.secure, SameSite: http.SameSiteStrictMode, MaxAge: -1})
	writeJSON(w, map[string]any{"ok": true})
}

// fromPage refuses state-changing requests that lack the page's header.
func (a *Admin) fromPage(w http.ResponseWriter, r *http.Request) bool {
	if r.Header.Get("X-SC-Admin") != "1" {
		writeError(w, http.StatusForbidden, "Missing the X-SC-Admin: 1 header")
		return false
	}
	return true
}

// authed wraps an API handler: a valid session, and for POST the page's
// header.
func (a *Admin) authed(h http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if !a.session(r) {
			writeError(w, http.StatusUnauthorized, "Log in first")
			return
		}
		if r.Method != http.MethodGet && !a.fromPage(w, r) {
			return
		}
		h(w, r)
	}
}

func (a *Admin) session(r *http.Request) bool {
	c, err := r.Cookie(cookieName)
	if err != nil || len(c.Value) != 64 {
		return false
	}
	k := sha256.Sum256([]byte(c.Value))
	a.mu.Lock()
	defer a.mu.Unlock()
	exp, ok := a.sessions[k]
	if ok && time.Now().After(exp) {
		delete(a.sessions, k)
		return false
	}
	return ok
}

// ---- API ----

// Figures are one instance's numbers at one time. Counters are totals
// since the instance started; the page turns them into rates.
type Figures struct {
	Instance        string `json:"instance"`
	Time            int64  `json:"time"`   // Unix milliseconds
	Uptime          int64  `json:"uptime"` // seconds
	Clients         int    `json:"clients"`
	PendingClients  int    `json:"pendingClients"`
	Channels        int    `json:"channels"`
	Connections     int64  `json:"connections"`
	Handshakes      int64  `json:"handshakes"`
	Disconnections  int64  `json:"disconnections"`
	Publishes       int64  `json:"publishes"`
	Deliveries      int64  `json:"deliveries"`
	BytesIn         int64  `json:"bytesIn"`
	BytesOut        int64  `json:"bytesOut"`
	SlowConsumers   int64  `json:"slowConsumers"`
	BrokerErrors    int64  `json:"brokerErrors"`
	HTTPRefusals    int64  `json:"httpRefusals"`
	Ready           bool   `json:"ready"`
	BrokerConnected bool   `json:"brokerConnected"`
	Goroutines      int    `json:"goroutines"`
	HeapBytes       uint64 `json:"heapBytes"`
	SysBytes        uint64 `json:"sysBytes"`
}

func (a *Admin) figures(now time.Time) Figures {
	s := a.srv.Stats()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return Figures{
		Instance: a.instance, Time: now.UnixMilli(), Uptime: int64(now.Sub(a.started).Seconds()),
		Clients: s.Clients, PendingClients: s.PendingClients, Channels: s.Channels,
		Connections: s.Connections, Handshakes: s.Handshakes, Disconnections: s.Disconnections,
		Publishes: s.Publishes, Deliveries: s.Deliveries, BytesIn: s.BytesIn, BytesOut: s.BytesOut,
		SlowConsumers: s.SlowConsumers, BrokerErrors: s.BrokerErrors, HTTPRefusals: s.HTTPRefusals,
		Ready: s.Ready, BrokerConnected: s.BrokerUp,
		Goroutines: runtime.NumGoroutine(), HeapBytes: ms.HeapInuse, SysBytes: ms.Sys,
	}
}

type statsResponse struct {
	Self     Figures           `json:"self"`
	Channels []channelResponse `json:"channels"`
	Cluster  []Figures         `json:"cluster"` // every instance heard from recently, this one included, by name
}

type channelResponse struct {
	Channel     string `json:"channel"`
	Subscribers int    `json:"subscribers"`
}

func (a *Admin) stats(w http.ResponseWriter, r *http.Request) {
	now := time.Now()
	self := a.figures(now)
	resp := statsResponse{Self: self, Channels: []channelResponse{}}
	for _, c := range a.srv.BusiestChannels(10) {
		resp.Channels = append(resp.Channels, channelResponse{c.Channel, c.Subscribers})
	}
	resp.Cluster = append(a.peers.list(now, a.id), self)
	sort.Slice(resp.Cluster, func(i, j int) bool { return resp.Cluster[i].Instance < resp.Cluster[j].Instance })
	writeJSON(w, resp)
}

// userClaims are the token claims a socket can be looked up by.
var userClaims = []string{"username", "user", "sub", "email", "name", "id", "userId"}

// socketInfo describes a socket; it never includes its token.
type socketInfo struct {
	ID            string   `json:"id"`
	State         string   `json:"state"`
	RemoteAddress string   `json:"remoteAddress"`
	Authenticated bool     `json:"authenticated"`
	User          string   `json:"user,omitempty"` // the first user claim of its token
	Channels      []string `json:"channels"`       // at most 20
	ChannelCount  int      `json:"channelCount"`
	MessagesIn    int64    `json:"messagesIn"`
	MessagesOut   int64    `json:"messagesOut"`
	Backpressure  int      `json:"backpressure"`
}

func userOf(tok sc.AuthToken) (string, bool) {
	for _, k := range userClaims {
		switch v := tok[k].(type) {
		case string:
			if v != "" {
				return v, true
			}
		case float64:
			return strconv.FormatFloat(v, 'f', -1, 64), true
		}
	}
	return "", false
}

func matchesUser(tok sc.AuthToken, q string) bool {
	for _, k := range userClaims {
		switch v := tok[k].(type) {
		case string:
			if v == q {
				return true
			}
		case float64:
			if strconv.FormatFloat(v, 'f', -1, 64) == q {
				return true
			}
		}
	}
	return false
}

func describe(s *sc.Socket) socketInfo {
	tok := s.AuthToken()
	user, _ := userOf(tok)
	chans := s.Subscriptions()
	sort.Strings(chans)
	n := len(chans)
	if len(chans) > 20 {
		chans = chans[:20]
	}
	return socketInfo{
		ID: s.ID(), State: string(s.State()), RemoteAddress: s.RemoteAddress(),
		Authenticated: tok != nil, User: user, Channels: chans, ChannelCount: n,
		MessagesIn: s.InboundReceivedMessageCount(), MessagesOut: s.OutboundSentMessageCount(),
		Backpressure: s.Backpressure(),
	}
}

func (a *Admin) lookup(id string) *sc.Socket {
	if s, ok := a.srv.Clients()[id]; ok {
		return s
	}
	return a.srv.PendingClients()[id]
}

func (a *Admin) findSockets(w http.ResponseWriter, r *http.Request) {
	q := strings.TrimSpace(r.URL.Query().Get("q"))
	if q == "" || len(q) > 200 {
		writeError(w, http.StatusBadRequest, "Give ?q= a socket id or a user name (up to 200 characters)")
		return
	}
	out := []socketInfo{}
	if s := a.lookup(q); s != nil {
		out = append(out, describe(s))
	} else {
		for _, s := range a.srv.Clients() {
			if tok := s.AuthToken(); tok != nil && matchesUser(tok, q) {
				out = append(out, describe(s))
				if len(out) == 50 {
					break
				}
			}
		}
		sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	}
	writeJSON(w, map[string]any{"sockets": out})
}

func (a *Admin) disconnect(w http.ResponseWriter, r *http.Request) {
	var body struct {
		ID     string `json:"id"`
		Code   int    `json:"code"`
		Reason string `json:"reason"`
	}
	if err := json.NewDecoder(r.Body).Decode(&body); err != nil || body.ID == "" {
		writeError(w, http.StatusBadRequest, "Send {\"id\": \"<socket id>\", \"code\": 4500} as JSON")
		return
	}
	if body.Code == 0 {
		body.Code = 4500 // the official client does not reconnect
	}
	if body.Reason == "" {
		body.Reason = "Disconnected by an administrator"
	}
	if !protocol.CloseCode(body.Code).Valid() {
		writeError(w, http.StatusBadRequest, fmt.Sprintf("Close code %d cannot be sent: use 1000-1003, 1007-1014 or 3000-4999", body.Code))
		return
	}
	s := a.lookup(body.ID)
	if s == nil {
		writeError(w, http.StatusNotFound, "No socket "+body.ID+" on this instance")
		return
	}
	if err := s.Disconnect(protocol.CloseCode(body.Code), body.Reason); err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	a.logger.Info("admin: disconnected a socket", "socket", body.ID, "code", body.Code, "remote", clientIP(r))
	writeJSON(w, map[string]any{"ok": true})
}

func writeJSON(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(v)
}

func writeError(w http.ResponseWriter, code int, msg string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(map[string]string{"error": msg})
}

// Run shares this instance's figures with the other instances through the
// server's broker, and collects theirs, until ctx is done. Without Run the
// cluster view shows this instance only.
func (a *Admin) Run(ctx context.Context) error {
	return a.share(ctx)
}
