package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os/signal"
	"sync/atomic"
	"syscall"

	"github.com/prometheus/client_golang/prometheus"

	sc "github.com/socketcluster-go/socketcluster"
)

// app is one running scserver: the library's Server and what the binary
// adds around it. Parts of the binary hook in through it: they mount
// handlers on mux (the public address) or internal (the address of
// /metrics), and register collectors on reg.
type app struct {
	cfg      *config
	logger   *slog.Logger
	srv      *sc.Server
	reg      *prometheus.Registry
	mux      *http.ServeMux // the public listen address (-addr)
	internal *http.ServeMux // /metrics and other operator endpoints
	draining atomic.Bool    // set when a shutdown began: /readyz answers 503
}

// run is main with its dependencies passed in; it returns the exit code:
// 0 after a drain, 2 for settings that cannot work, 1 for failures at run
// time (address in use, broker unreachable…).
func run(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) int {
	c, err := parse(args, getenv, stderr)
	if err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		fmt.Fprintln(stderr, "scserver:", err)
		return 2
	}
	var level slog.Level
	if err := level.UnmarshalText([]byte(c.LogLevel)); err != nil {
		fmt.Fprintf(stderr, "scserver: -log-level %q: use debug, info, warn or error\n", c.LogLevel)
		return 2
	}
	logger := newLogger(stderr, level)
	opts, err := c.options(logger)
	if err != nil {
		fmt.Fprintln(stderr, "scserver:", err)
		return 2
	}
	srv, err := sc.New(opts)
	if err != nil {
		fmt.Fprintln(stderr, "scserver:", err)
		return 1
	}
	a := &app{cfg: c, logger: logger, srv: srv, reg: prometheus.NewRegistry(), mux: http.NewServeMux()}
	a.internal = a.mux
	a.routes()
	return a.serve(ctx, stdout, stderr)
}

// serve listens, serves until ctx is done or SIGTERM/SIGINT, then drains.
func (a *app) serve(ctx context.Context, stdout, stderr io.Writer) int {
	c := a.cfg
	l, err := net.Listen("tcp", c.Addr)
	if err != nil {
		fmt.Fprintln(stderr, "scserver:", err)
		_ = a.srv.Close(context.Background())
		return 1
	}
	hs := a.srv.HTTPServer(a.mux) // header cap (431), header timeout, refusals counted
	a.logger.Info("scserver: listening", "addr", l.Addr().String(), "path", c.Path, "broker", c.Broker)
	fmt.Fprintf(stdout, "listening on %s\n", l.Addr())

	ctx, stop := signal.NotifyContext(ctx, syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	served := make(chan error, 1)
	go func() { served <- hs.Serve(l) }()
	select {
	case <-ctx.Done():
	case err := <-served:
		fmt.Fprintln(stderr, "scserver:", err)
		return 1
	}
	a.logger.Info("scserver: draining", "timeout", c.DrainTimeout.String())
	a.draining.Store(true)
	dctx, cancel := context.WithTimeout(context.Background(), c.DrainTimeout)
	defer cancel()
	_ = hs.Shutdown(dctx)
	if err := a.srv.Close(dctx); err != nil {
		a.logger.Warn("scserver: drain timed out; remaining sockets were cut", "error", err.Error())
	}
	return 0
}
