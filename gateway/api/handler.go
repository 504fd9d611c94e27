package api

import (
	"bytes"
	"context"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"path"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"unicode"
	"unicode/utf8"
)

// Service does the work behind the API; the gateway implements it.
// Errors of kind *Error choose the status; any other error is a 503.
type Service interface {
	Publish(ctx context.Context, channels []string, data json.RawMessage, idempotencyKey string) (PublishResult, error)
	Disconnect(ctx context.Context, r DisconnectRequest) (CommandResult, error)
	Kick(ctx context.Context, r KickRequest) (CommandResult, error)
	Channels(ctx context.Context, cluster bool, pattern string) (map[string]int, error)
	Presence(ctx context.Context, channel string) (PresenceResult, error)
	History(ctx context.Context, r HistoryRequest) (HistoryResult, error)
	Info(ctx context.Context) (InfoResult, error)
}

// Error is a failure with an HTTP status.
type Error struct {
	Status  int
	Code    string
	Message string
}

func (e *Error) Error() string { return e.Code + ": " + e.Message }

// Errors a Service returns.
func ErrInvalid(msg string) *Error { return &Error{http.StatusBadRequest, "invalid_request", msg} }

// ErrNotFound is a 404.
func ErrNotFound(msg string) *Error { return &Error{http.StatusNotFound, "not_found", msg} }

// ErrNotImplemented is a 501 (a feature that is not enabled).
func ErrNotImplemented(msg string) *Error {
	return &Error{http.StatusNotImplemented, "not_enabled", msg}
}

// Options configures a Handler.
type Options struct {
	// Key is the API key; required (the API is off without one).
	Key string
	// MaxBodyBytes bounds a request body (default 1 MiB).
	MaxBodyBytes int64
	// Timeout bounds each call (default 10s).
	Timeout time.Duration
	// MaxChannelLength bounds channel names (default 1024 bytes).
	MaxChannelLength int
	// ReservedPrefixes are channel prefixes the API refuses (the gateway's
	// internal channels).
	ReservedPrefixes []string
	// Logger receives refused and failed calls (default slog.Default()),
	// at most one line a second.
	Logger *slog.Logger
}

// Stats count the calls by outcome.
type Stats struct {
	OK           int64 `json:"ok"`
	Unauthorized int64 `json:"unauthorized"`
	BadRequests  int64 `json:"badRequests"` // 400, 404, 405, 413
	Failures     int64 `json:"failures"`    // 5xx
}

// Handler serves the API under /api/. Create it with NewHandler.
type Handler struct {
	svc Service
	o   Options
	key []byte

	ok, unauthorized, bad, failed atomic.Int64

	logMu   sync.Mutex
	lastLog time.Time
}

// NewHandler returns the API handler.
func NewHandler(svc Service, o Options) (*Handler, error) {
	if o.Key == "" {
		return nil, errors.New("api: Options.Key is required: the API is not served without a key")
	}
	if o.MaxBodyBytes <= 0 {
		o.MaxBodyBytes = 1 << 20
	}
	if o.Timeout <= 0 {
		o.Timeout = 10 * time.Second
	}
	if o.MaxChannelLength <= 0 {
		o.MaxChannelLength = 1024
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	return &Handler{svc: svc, o: o, key: []byte(o.Key)}, nil
}

// Stats returns the counts of calls.
func (h *Handler) Stats() Stats {
	return Stats{OK: h.ok.Load(), Unauthorized: h.unauthorized.Load(), BadRequests: h.bad.Load(), Failures: h.failed.Load()}
}

// Methods lists the API's methods, as served under /api/.
var Methods = []string{"publish", "broadcast", "disconnect", "kick", "channels", "presence", "presenceStats", "history", "info"}

func (h *Handler) authorized(r *http.Request) bool {
	got := r.Header.Get("X-API-Key")
	if got == "" {
		a := r.Header.Get("Authorization")
		scheme, v, ok := strings.Cut(a, " ")
		if !ok || !strings.EqualFold(scheme, "apikey") {
			return false
		}
		got = strings.TrimSpace(v)
	}
	return subtle.ConstantTimeCompare([]byte(got), h.key) == 1
}

// ServeHTTP implements http.Handler.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	method, ok := strings.CutPrefix(r.URL.Path, "/api/")
	if !ok {
		h.fail(w, r, &Error{http.StatusNotFound, "not_found", "API methods are under /api/"})
		return
	}
	if method == "openapi.yaml" && r.Method == http.MethodGet {
		// The description is public: it holds no data.
		w.Header().Set("Content-Type", "application/yaml")
		_, _ = w.Write(OpenAPI)
		return
	}
	if !h.authorized(r) {
		// Checked first: without the key, nothing is revealed.
		h.unauthorized.Add(1)
		h.log(r, http.StatusUnauthorized, "missing or wrong API key")
		w.Header().Set("WWW-Authenticate", `apikey realm="socketcluster gateway"`)
		writeJSON(w, http.StatusUnauthorized, map[string]any{"error": ErrorBody{"unauthorized", `missing or wrong API key: send "Authorization: apikey <key>" or "X-API-Key: <key>"`}})
		return
	}
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		h.fail(w, r, &Error{http.StatusMethodNotAllowed, "method_not_allowed", "use POST"})
		return
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, h.o.MaxBodyBytes))
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			h.fail(w, r, &Error{http.StatusRequestEntityTooLarge, "too_large", fmt.Sprintf("request body over %d bytes", h.o.MaxBodyBytes)})
			return
		}
		h.fail(w, r, ErrInvalid("cannot read the body: "+err.Error()))
		return
	}
	if len(bytes.TrimSpace(body)) == 0 {
		body = []byte("{}")
	}
	ctx, cancel := context.WithTimeout(r.Context(), h.o.Timeout)
	defer cancel()
	res, err := h.call(ctx, method, body)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	h.ok.Add(1)
	writeJSON(w, http.StatusOK, map[string]any{"result": res})
}

func decode(body []byte, v any) error {
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return ErrInvalid("bad JSON body: " + err.Error())
	}
	if dec.More() {
		return ErrInvalid("bad JSON body: data after the object")
	}
	return nil
}

func (h *Handler) call(ctx context.Context, method string, body []byte) (any, error) {
	switch method {
	case "publish", "broadcast":
		var r PublishRequest
		if err := decode(body, &r); err != nil {
			return nil, err
		}
		if method == "broadcast" && (r.Channel != "" || len(r.Channels) == 0) {
			return nil, ErrInvalid(`broadcast takes "channels" (a list); publish takes "channel"`)
		}
		chs := r.Channels
		if r.Channel != "" {
			if len(chs) > 0 {
				return nil, ErrInvalid(`give "channel" or "channels", not both`)
			}
			chs = []string{r.Channel}
		}
		if len(chs) == 0 {
			return nil, ErrInvalid(`"channel" or "channels" is required`)
		}
		for _, ch := range chs {
			if err := h.checkChannel(ch); err != nil {
				return nil, err
			}
		}
		if r.Data == nil {
			return nil, ErrInvalid(`"data" is required (null is allowed)`)
		}
		if len(r.IdempotencyKey) > 256 {
			return nil, ErrInvalid(`"idempotencyKey" is longer than 256 bytes`)
		}
		return h.svc.Publish(ctx, chs, r.Data, r.IdempotencyKey)
	case "disconnect":
		var r DisconnectRequest
		if err := decode(body, &r); err != nil {
			return nil, err
		}
		if err := checkTarget(r.Target); err != nil {
			return nil, err
		}
		if r.Code == 0 {
			r.Code = 4000
			if r.Reason == "" {
				r.Reason = "Disconnected by the server"
			}
		}
		if r.Code < 4000 || r.Code > 4999 {
			return nil, ErrInvalid(`"code" must be an application close code, 4000-4999`)
		}
		if len(r.Reason) > 123 {
			return nil, ErrInvalid(`"reason" is longer than 123 bytes (a close frame's limit)`)
		}
		return h.svc.Disconnect(ctx, r)
	case "kick":
		var r KickRequest
		if err := decode(body, &r); err != nil {
			return nil, err
		}
		if err := checkTarget(r.Target); err != nil {
			return nil, err
		}
		if err := h.checkChannel(r.Channel); err != nil {
			return nil, err
		}
		return h.svc.Kick(ctx, r)
	case "channels":
		var r ChannelsRequest
		if err := decode(body, &r); err != nil {
			return nil, err
		}
		if r.Scope == "" {
			r.Scope = "cluster"
		}
		if r.Scope != "local" && r.Scope != "cluster" {
			return nil, ErrInvalid(`"scope" is "local" or "cluster"`)
		}
		if r.Pattern != "" {
			if _, err := path.Match(r.Pattern, ""); err != nil {
				return nil, ErrInvalid(`"pattern": ` + err.Error())
			}
		}
		chs, err := h.svc.Channels(ctx, r.Scope == "cluster", r.Pattern)
		if err != nil {
			return nil, err
		}
		return ChannelsResult{Channels: chs}, nil
	case "history":
		var r HistoryRequest
		if err := decode(body, &r); err != nil {
			return nil, err
		}
		if err := h.checkChannel(r.Channel); err != nil {
			return nil, err
		}
		if r.Limit != nil && *r.Limit < 0 {
			return nil, ErrInvalid(`"limit" must not be negative`)
		}
		return h.svc.History(ctx, r)
	case "presence", "presenceStats":
		var r ChannelRequest
		if err := decode(body, &r); err != nil {
			return nil, err
		}
		if err := h.checkChannel(r.Channel); err != nil {
			return nil, err
		}
		if method == "presence" {
			return h.svc.Presence(ctx, r.Channel)
		}
		p, err := h.svc.Presence(ctx, r.Channel)
		if err != nil {
			return nil, err
		}
		return PresenceStatsResult{Channel: p.Channel, Count: p.Count, Users: p.Users}, nil
	case "info":
		var r struct{}
		if err := decode(body, &r); err != nil {
			return nil, err
		}
		return h.svc.Info(ctx)
	}
	return nil, ErrNotFound(fmt.Sprintf("unknown method %q; methods: %s", method, strings.Join(Methods, ", ")))
}

func checkTarget(t Target) error {
	if (t.SocketID == "") == (t.User == "") {
		return ErrInvalid(`give exactly one of "socketId" and "user"`)
	}
	return nil
}

// checkChannel refuses names that no client could use.
func (h *Handler) checkChannel(ch string) error {
	switch {
	case ch == "":
		return ErrInvalid("channel name is empty")
	case len(ch) > h.o.MaxChannelLength:
		return ErrInvalid(fmt.Sprintf("channel name is longer than %d bytes", h.o.MaxChannelLength))
	case !utf8.ValidString(ch):
		return ErrInvalid("channel name is not valid UTF-8")
	case strings.IndexFunc(ch, unicode.IsControl) >= 0:
		return ErrInvalid("channel name contains control characters")
	}
	for _, p := range h.o.ReservedPrefixes {
		if strings.HasPrefix(ch, p) {
			return ErrInvalid(fmt.Sprintf("channel names starting with %q are reserved", p))
		}
	}
	return nil
}

func (h *Handler) fail(w http.ResponseWriter, r *http.Request, err error) {
	var e *Error
	if !errors.As(err, &e) {
		e = &Error{http.StatusServiceUnavailable, "unavailable", err.Error()}
	}
	if e.Status >= 500 {
		h.failed.Add(1)
	} else {
		h.bad.Add(1)
	}
	h.log(r, e.Status, e.Message)
	writeJSON(w, e.Status, map[string]any{"error": ErrorBody{e.Code, e.Message}})
}

func (h *Handler) log(r *http.Request, status int, msg string) {
	h.logMu.Lock()
	if time.Since(h.lastLog) < time.Second {
		h.logMu.Unlock()
		return
	}
	h.lastLog = time.Now()
	h.logMu.Unlock()
	lvl := slog.LevelInfo
	if status >= 500 {
		lvl = slog.LevelWarn
	}
	h.o.Logger.Log(context.Background(), lvl, "api: call refused or failed", "path", r.URL.Path, "remote", r.RemoteAddr, "status", status, "error", msg)
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		status = http.StatusInternalServerError
		b = []byte(`{"error":{"code":"internal","message":"cannot encode the answer"}}`)
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_, _ = w.Write(append(b, '\n'))
}
