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
	"os"
	"os/signal"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	sc "github.com/socketcluster-go/socketcluster"
	"github.com/socketcluster-go/socketcluster/internal/admin"
	"github.com/socketcluster-go/socketcluster/internal/memtrim"
)

// app is one running scserver: the library's Server and what the binary
// adds around it. Parts of the binary hook in through it: they mount
// handlers on mux (the public address) or internal (the -metrics-addr
// address, or the public one when it is not set), and register collectors
// on reg.
type app struct {
	cfg      *config
	logger   *slog.Logger
	srv      *sc.Server
	reg      *prometheus.Registry
	mux      *http.ServeMux // the public listen address (-addr)
	internal *http.ServeMux // /metrics and other operator endpoints
	draining atomic.Bool    // set when a shutdown began: /readyz answers 503
	certs    *certReloader  // nil without -tls-cert
	onClose  []func()       // run in order after the server closed (gateway.go)
	admin    *admin.Admin   // nil without -admin-password

	stdout, stderr io.Writer
}

// Exit codes of run.
const (
	exitOK       = 0
	exitRuntime  = 1 // failed while starting or serving: address in use, broker unreachable…
	exitSettings = 2 // a setting cannot work (flag, environment or -config file)
)

// run is main with its dependencies passed in; it returns the exit code.
func run(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) int {
	fail := func(code int, err error) int {
		for _, line := range strings.Split(err.Error(), "\n") {
			fmt.Fprintln(stderr, "scserver:", line)
		}
		return code
	}
	c, err := parse(args, getenv, stderr)
	if err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return exitOK
		}
		return fail(exitSettings, err)
	}
	if err := c.validate(); err != nil {
		return fail(exitSettings, err)
	}
	var level slog.Level
	_ = level.UnmarshalText([]byte(c.LogLevel)) // checked by validate
	logger := newLogger(stderr, level)
	opts, err := c.options(logger)
	if err != nil {
		return fail(exitSettings, err)
	}
	if err := opts.Validate(); err != nil { // validate should have caught it
		return fail(exitSettings, fmt.Errorf("settings: %w", err))
	}
	if opts.Broker, err = c.openBroker(); err != nil {
		return fail(exitSettings, err)
	}
	if c.AllowRandomAuthKey && c.Broker != "memory" && c.AuthKey == "" && c.AuthPrivateKeyFile == "" {
		logger.Warn("scserver: each instance signs tokens with a random key of its own (-allow-random-auth-key): clients that reconnect to another instance lose their login; set -auth-key on every instance")
	}
	a := &app{cfg: c, logger: logger, mux: http.NewServeMux(), stdout: stdout, stderr: stderr}
	if c.TLSCert != "" {
		if a.certs, err = newCertReloader(c.TLSCert, c.TLSKey, logger); err != nil {
			return fail(exitSettings, err)
		}
	}
	srv, err := sc.New(opts)
	if err != nil {
		return fail(exitRuntime, err)
	}
	a.srv = srv
	a.internal = a.mux
	if c.MetricsAddr != "" {
		a.internal = http.NewServeMux()
	}
	a.routes()
	if serr, rerr := a.installGateway(); serr != nil || rerr != nil {
		_ = srv.Close(context.Background())
		if serr != nil {
			return fail(exitSettings, serr)
		}
		return fail(exitRuntime, rerr)
	}
	defer func() {
		for _, f := range a.onClose {
			f()
		}
	}()
	return a.serve(ctx)
}

// listenSpec is one listen address of the binary.
type listenSpec struct {
	flag, addr string
	what       string // how its address is announced on stdout
	h          http.Handler
}

// serve listens, serves until ctx is done or SIGTERM/SIGINT, then drains:
// /readyz turns 503 at once and stays served, clients are closed with 1001
// after -drain-delay (a second signal skips the delay), and the process
// returns once they are gone or -drain-timeout has passed.
func (a *app) serve(ctx context.Context) int {
	c := a.cfg
	ctx, cancel := context.WithCancel(ctx) // ends the helper goroutines below
	listeners := []listenSpec{{"addr", c.Addr, "listening on", a.mux}}
	if c.MetricsAddr != "" {
		listeners = append(listeners, listenSpec{"metrics-addr", c.MetricsAddr, "metrics on", a.internal})
	}
	listeners = append(listeners, a.adminListeners()...)
	var servers []*http.Server
	served := make(chan error, len(listeners))
	var wg sync.WaitGroup
	defer func() { cancel(); wg.Wait() }()
	if a.certs != nil {
		hup := notifyHUP()
		defer signal.Stop(hup)
		wg.Add(1)
		go func() { defer wg.Done(); a.certs.watch(ctx, hup) }()
	} else {
		a.ignoreHUP(ctx, &wg) // systemctl reload must not end the process
	}
	// Signals and event logs are set up before the process says it
	// listens: a SIGTERM then always drains.
	sigs := make(chan os.Signal, 2)
	signal.Notify(sigs, syscall.SIGTERM, syscall.SIGINT)
	defer signal.Stop(sigs)
	a.logEvents(ctx, &wg)
	if c.TrimIdleMemory {
		wg.Add(1)
		go func() {
			defer wg.Done()
			memtrim.Run(ctx, memtrim.Config{Trimmed: func(n uint64) {
				a.logger.Debug("scserver: idle: heap given back to the system", "bytes", n)
			}})
		}()
	}
	a.runAdmin(ctx, &wg)
	for i, ln := range listeners {
		// The sockets' listener has no TCP keep-alive probes (the pings
		// find dead peers); the metrics and admin listeners keep them.
		listen := a.srv.ListenTCP
		if i > 0 {
			listen = func(addr string) (net.Listener, error) { return net.Listen("tcp", addr) }
		}
		l, err := listen(ln.addr)
		if err != nil {
			fmt.Fprintf(a.stderr, "scserver: -%s %s: %v\n", ln.flag, ln.addr, err)
			for _, hs := range servers {
				_ = hs.Close()
			}
			_ = a.srv.Close(context.Background())
			return exitRuntime
		}
		hs := a.srv.HTTPServer(ln.h) // header cap (431), header timeout, refusals counted
		// net/http's own lines (TLS handshake errors from scanners…) are
		// per connection: debug level.
		hs.ErrorLog = slog.NewLogLogger(a.logger.Handler(), slog.LevelDebug)
		tlsOn := i == 0 && a.certs != nil
		if tlsOn {
			// HTTP/2 for the HTTP endpoints (as ServeTLS would offer it);
			// served through sc.NewTLSListener so that the sockets are
			// read without a goroutine each.
			hs.TLSConfig = a.certs.tlsConfig()
			hs.TLSConfig.NextProtos = []string{"h2", "http/1.1"}
			l = sc.NewTLSListener(l, hs.TLSConfig)
		} else if i == 0 {
			// Upgrades accepted without net/http (with -own-descriptors).
			l = a.srv.UpgradeListener(l, hs)
		}
		servers = append(servers, hs)
		scheme := "http"
		if tlsOn {
			scheme = "https"
		}
		a.logger.Info("scserver: "+ln.what, "addr", l.Addr().String(), "scheme", scheme, "path", c.Path, "broker", c.Broker)
		fmt.Fprintf(a.stdout, "%s %s\n", ln.what, l.Addr())
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := hs.Serve(l); !errors.Is(err, http.ErrServerClosed) {
				served <- err
			}
		}()
	}
	code := exitOK
	select {
	case <-ctx.Done():
	case <-sigs:
	case err := <-served:
		fmt.Fprintln(a.stderr, "scserver:", err)
		code = exitRuntime
	}
	a.draining.Store(true)
	if d := c.DrainDelay; d > 0 && code == exitOK {
		a.logger.Info("scserver: draining: /readyz answers 503; clients are closed after -drain-delay (signal again to skip)", "delay", d.String())
		t := time.NewTimer(d)
		select {
		case <-t.C:
		case <-sigs:
			t.Stop()
		}
	}
	a.logger.Info("scserver: closing clients", "timeout", c.DrainTimeout.String())
	dctx, dcancel := context.WithTimeout(context.Background(), c.DrainTimeout)
	defer dcancel()
	if err := a.srv.Close(dctx); err != nil {
		a.logger.Warn("scserver: drain timed out; remaining sockets were cut", "error", err.Error())
	}
	// /readyz was served (503) until here.
	sctx, scancel := context.WithTimeout(context.Background(), time.Second)
	defer scancel()
	for _, hs := range servers {
		if hs.Shutdown(sctx) != nil {
			_ = hs.Close()
		}
	}
	return code
}
