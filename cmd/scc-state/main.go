// Command scc-state is the coordinator of a SocketCluster cluster (SCC),
// a drop-in replacement for the Node scc-state: it reads the same
// environment variables (or flags), speaks the same protocol and accepts
// scc-broker and scc-broker-client of major versions 9 and 10.
//
//	scc-state -port 7777 -auth-key secret
//
// Endpoints: /socketcluster/ (the components' WebSocket), /health-check,
// /metrics (Prometheus).
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/socketcluster-go/socketcluster/internal/sccmd"
	"github.com/socketcluster-go/socketcluster/prommetrics"
	"github.com/socketcluster-go/socketcluster/scc/state"
)

func main() { os.Exit(run(context.Background(), os.Args[1:], os.Getenv, os.Stdout, os.Stderr)) }

func run(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("scc-state", flag.ContinueOnError)
	fs.SetOutput(stderr)
	type setting struct {
		flag, env, def, help string
		val                  *string
	}
	settings := []*setting{
		{"host", "SCC_STATE_SERVER_HOST_BIND", "", "address to listen on (default all)", nil},
		{"port", "SCC_STATE_SERVER_PORT", "7777", "port", nil},
		{"auth-key", "SCC_AUTH_KEY", "", "the cluster's shared secret", nil},
		{"forwarded-for-header", "FORWARDED_FOR_HEADER", "", "header giving a component's address (e.g. x-forwarded-for)", nil},
		{"retry-delay", "SCC_STATE_SERVER_RETRY_DELAY", "2000", "delay between retries of an unacknowledged update (ms or duration)", nil},
		{"scale-out-delay", "SCC_STATE_SERVER_SCALE_OUT_DELAY", "5000", "delay before announcing a joining instance", nil},
		{"scale-back-delay", "SCC_STATE_SERVER_SCALE_BACK_DELAY", "1000", "delay before announcing a leaving instance", nil},
		{"startup-delay", "SCC_STATE_SERVER_STARTUP_DELAY", "5000", "time for brokers to join before workers may", nil},
		{"accept-majors", "SCC_STATE_ACCEPT_MAJORS", "9,10", "major versions of components to accept", nil},
		{"log-level", "SCC_STATE_LOG_LEVEL", "3", "0 nothing, 1 errors, 2 warnings, 3 everything (or debug/info/warn/error)", nil},
	}
	for _, s := range settings {
		s.val = fs.String(s.flag, "", fmt.Sprintf("%s [%s] (default %q)", s.help, s.env, s.def))
	}
	if err := fs.Parse(args); err != nil {
		if err == flag.ErrHelp {
			return 0
		}
		return 2
	}
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	v := map[string]string{}
	for _, s := range settings {
		v[s.flag] = sccmd.Env(*s.val, set[s.flag], getenv, s.env, s.def)
	}
	fail := func(err error) int { fmt.Fprintln(stderr, "scc-state:", err); return 2 }
	logger, err := sccmd.Logger(v["log-level"], stderr)
	if err != nil {
		return fail(err)
	}
	o := state.DefaultOptions()
	o.AuthKey, o.ForwardedForHeader, o.Logger = v["auth-key"], strings.ToLower(v["forwarded-for-header"]), logger
	if o.RetryDelay, err = sccmd.Duration("retry-delay", v["retry-delay"]); err != nil {
		return fail(err)
	}
	if o.ScaleOutDelay, err = sccmd.Duration("scale-out-delay", v["scale-out-delay"]); err != nil {
		return fail(err)
	}
	if o.ScaleBackDelay, err = sccmd.Duration("scale-back-delay", v["scale-back-delay"]); err != nil {
		return fail(err)
	}
	if o.StartupDelay, err = sccmd.Duration("startup-delay", v["startup-delay"]); err != nil {
		return fail(err)
	}
	o.AcceptMajors = nil
	for _, f := range strings.Split(v["accept-majors"], ",") {
		n, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil || n < 0 {
			return fail(fmt.Errorf("accept-majors %q: want numbers such as 9,10", v["accept-majors"]))
		}
		o.AcceptMajors = append(o.AcceptMajors, n)
	}
	s, err := state.New(o)
	if err != nil {
		return fail(err)
	}
	reg := prometheus.NewRegistry()
	reg.MustRegister(prommetrics.NewCollector(s.SC(), "scc_state"), prommetrics.NewStateCollector(s, "scc_state"),
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	mux := http.NewServeMux()
	mux.Handle("/metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	mux.Handle("/", s)
	l, err := net.Listen("tcp", net.JoinHostPort(v["host"], v["port"]))
	if err != nil {
		fmt.Fprintln(stderr, "scc-state:", err)
		return 1
	}
	logger.Info("scc-state: listening", "addr", l.Addr().String())
	fmt.Fprintf(stdout, "listening on %s\n", l.Addr())
	ctx, stop := signal.NotifyContext(ctx, syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	if err := sccmd.Serve(ctx, s.SC().HTTPServer(mux), l, s.Close); err != nil {
		fmt.Fprintln(stderr, "scc-state:", err)
		return 1
	}
	return 0
}
