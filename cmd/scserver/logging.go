package main

import (
	"bufio"
	"context"
	"io"
	"log/slog"
	"net"
	"net/http"
	"sync"

	sc "github.com/socketcluster-go/socketcluster"
)

// newLogger returns the binary's logger: text lines on w from level up.
func newLogger(w io.Writer, level slog.Level) *slog.Logger {
	return slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: level}))
}

// debug reports whether debug lines are logged.
func (a *app) debug() bool { return a.logger.Enabled(context.Background(), slog.LevelDebug) }

// logEvents logs, at debug level, each connection and each socket's end
// with its close code (the library itself logs refusals by limits and slow
// consumers as warnings, once per burst). Its goroutines end with ctx.
func (a *app) logEvents(ctx context.Context, wg *sync.WaitGroup) {
	if !a.debug() {
		return
	}
	// Registered now, so that no event is missed.
	conns := sc.Listen[sc.ConnectionEvent](a.srv).Consumer()
	closures := sc.Listen[sc.ClosureEvent](a.srv).Consumer()
	warnings := sc.Listen[sc.WarningEvent](a.srv).Consumer()
	wg.Add(3)
	go func() {
		defer wg.Done()
		for ev := range conns.All(ctx) {
			a.logger.Debug("scserver: connected", "socket", ev.ID, "remoteAddress", ev.Socket.RemoteAddress(), "authenticated", ev.IsAuthenticated)
		}
	}()
	go func() {
		defer wg.Done()
		for ev := range closures.All(ctx) {
			a.logger.Debug("scserver: disconnected", "socket", ev.Socket.ID(), "remoteAddress", ev.Socket.RemoteAddress(), "code", ev.Code, "reason", ev.Reason)
		}
	}()
	go func() {
		defer wg.Done()
		for ev := range warnings.All(ctx) {
			a.logger.Debug("scserver: warning", "error", ev.Warning.Error())
		}
	}()
}

// wsHandler is the WebSocket endpoint: the Server, wrapped at debug level
// to log each refused upgrade (origin, limits, shutdown, bad request) with
// its status.
func (a *app) wsHandler() http.Handler {
	if !a.debug() {
		return a.srv
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rec := &statusRecorder{ResponseWriter: w}
		a.srv.ServeHTTP(rec, r)
		if rec.status != 0 && rec.status != http.StatusSwitchingProtocols && !rec.hijacked {
			a.logger.Debug("scserver: upgrade refused", "status", rec.status, "remoteAddress", r.RemoteAddr, "origin", r.Header.Get("Origin"), "path", r.URL.Path)
		}
	})
}

// statusRecorder notes the status written, and passes hijacking on (the
// WebSocket upgrade).
type statusRecorder struct {
	http.ResponseWriter
	status   int
	hijacked bool
}

func (s *statusRecorder) WriteHeader(code int) {
	if s.status == 0 {
		s.status = code
	}
	s.ResponseWriter.WriteHeader(code)
}

func (s *statusRecorder) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	s.hijacked = true
	return http.NewResponseController(s.ResponseWriter).Hijack()
}

func (s *statusRecorder) Unwrap() http.ResponseWriter { return s.ResponseWriter }
