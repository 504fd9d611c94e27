// Package sccmd holds what cmd/scc-state and cmd/scc-broker share:
// settings from flags or the Node programs' environment variables, the
// log level and serving until a signal.
package sccmd

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// Env returns the flag's value when it was set, else the environment
// variable's, else def.
func Env(flagVal string, set bool, getenv func(string) string, name, def string) string {
	if set {
		return flagVal
	}
	if v := getenv(name); v != "" {
		return v
	}
	return def
}

// Duration reads a Go duration or a bare number of milliseconds (the
// Node programs' environment variables are milliseconds); 0 is allowed.
func Duration(name, v string) (time.Duration, error) {
	if d, err := time.ParseDuration(v); err == nil && d >= 0 {
		return d, nil
	}
	if n, err := strconv.ParseFloat(v, 64); err == nil && n >= 0 {
		return time.Duration(n * float64(time.Millisecond)), nil
	}
	return 0, fmt.Errorf("%s=%q: want a duration such as 5s or a number of milliseconds", name, v)
}

// Logger maps a log level, a name (debug, info, warn, error) or the Node
// programs' numbers (0 nothing, 1 errors, 2 warnings, 3 everything), to
// a text logger.
func Logger(level string, w interface{ Write([]byte) (int, error) }) (*slog.Logger, error) {
	var l slog.Level
	switch strings.TrimSpace(level) {
	case "0":
		l = slog.LevelError + 4
	case "1":
		l = slog.LevelError
	case "2":
		l = slog.LevelWarn
	case "3":
		l = slog.LevelInfo
	default:
		if err := l.UnmarshalText([]byte(level)); err != nil {
			return nil, fmt.Errorf("log level %q: use debug, info, warn, error or 0-3", level)
		}
	}
	return slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: l})), nil
}

// Serve serves h on l until ctx ends, then shuts the HTTP server down
// and calls stop.
func Serve(ctx context.Context, hs *http.Server, l net.Listener, stop func(context.Context) error) error {
	served := make(chan error, 1)
	go func() { served <- hs.Serve(l) }()
	select {
	case <-ctx.Done():
	case err := <-served:
		if !errors.Is(err, http.ErrServerClosed) {
			return err
		}
	}
	sctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_ = hs.Shutdown(sctx)
	return stop(sctx)
}
