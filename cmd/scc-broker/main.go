// Command scc-broker is a relay of a SocketCluster cluster (SCC), a
// drop-in replacement for the Node scc-broker: it reads the same
// environment variables (or flags) and speaks the same protocol, so that
// Node and Go workers can use it.
//
//	scc-broker -port 8888 -state-host 10.0.0.1 -auth-key secret
//
// Endpoints: /socketcluster/ (the workers' WebSocket), /health-check,
// /metrics (Prometheus).
//
// With -map it prints the scc-broker each channel maps to instead, as
// every worker computes it (scc-broker-client 9.2.0's mapping): channel
// names are read from standard input, one JSON string per line, and the
// site list comes from -sites (comma-separated URIs):
//
//	echo '"news"' | scc-broker -map -sites ws://[::ffff:10.0.0.2]:8888,ws://[::ffff:10.0.0.3]:8888
package main

import (
	"bufio"
	"context"
	"encoding/json"
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
	"github.com/socketcluster-go/socketcluster/scc/mapping"
	"github.com/socketcluster-go/socketcluster/scc/relay"
)

func main() {
	os.Exit(run(context.Background(), os.Args[1:], os.Getenv, os.Stdin, os.Stdout, os.Stderr))
}

func run(ctx context.Context, args []string, getenv func(string) string, stdin io.Reader, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("scc-broker", flag.ContinueOnError)
	fs.SetOutput(stderr)
	mapMode := fs.Bool("map", false, "print the broker of each channel read from stdin (JSON strings, one a line) and exit")
	sites := fs.String("sites", "", "with -map: the broker URIs, comma-separated")
	engine := fs.String("mapping-engine", "skeletonRendezvous", "with -map: skeletonRendezvous or simple")
	poolSize := fs.Int("pool-size", 0, "with -map: also print the pool connection index of each channel for this clientPoolSize")
	type setting struct {
		flag, env, def, help string
		val                  *string
	}
	settings := []*setting{
		{"host", "SCC_BROKER_SERVER_HOST_BIND", "", "address to listen on (default all)", nil},
		{"port", "SCC_BROKER_SERVER_PORT", "8888", "port (also reported to scc-state)", nil},
		{"state-host", "SCC_STATE_SERVER_HOST", "", "scc-state host (required)", nil},
		{"state-port", "SCC_STATE_SERVER_PORT", "7777", "scc-state port", nil},
		{"instance-ip", "SCC_INSTANCE_IP", "", "address workers should connect to (default: as scc-state sees it)", nil},
		{"instance-ip-family", "SCC_INSTANCE_IP_FAMILY", "IPv4", "IPv4 or IPv6", nil},
		{"auth-key", "SCC_AUTH_KEY", "", "the cluster's shared secret", nil},
		{"retry-delay", "SCC_BROKER_SERVER_RETRY_DELAY", "2000", "delay between join attempts (ms or duration)", nil},
		{"state-connect-timeout", "SCC_STATE_SERVER_CONNECT_TIMEOUT", "3000", "scc-state connect timeout", nil},
		{"state-ack-timeout", "SCC_STATE_SERVER_ACK_TIMEOUT", "2000", "scc-state ack timeout", nil},
		{"secure", "SCC_BROKER_SERVER_SECURE", "", "announce wss:// (TLS terminated in front of this relay)", nil},
		{"version", "SCC_BROKER_VERSION", relay.Version, "version reported to scc-state (its major must be accepted there)", nil},
		{"log-level", "SCC_BROKER_SERVER_LOG_LEVEL", "1", "0 nothing, 1 errors, 2 warnings, 3 everything (or debug/info/warn/error)", nil},
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
	fail := func(err error) int { fmt.Fprintln(stderr, "scc-broker:", err); return 2 }
	if *mapMode {
		if err := printMapping(stdin, stdout, *engine, *sites, *poolSize); err != nil {
			return fail(err)
		}
		return 0
	}
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	v := map[string]string{}
	for _, s := range settings {
		v[s.flag] = sccmd.Env(*s.val, set[s.flag], getenv, s.env, s.def)
	}
	logger, err := sccmd.Logger(v["log-level"], stderr)
	if err != nil {
		return fail(err)
	}
	if v["state-host"] == "" {
		return fail(fmt.Errorf("no scc-state host: set -state-host or SCC_STATE_SERVER_HOST"))
	}
	port, err := strconv.Atoi(v["port"])
	if err != nil || port <= 0 || port > 65535 {
		return fail(fmt.Errorf("port %q: want 1-65535", v["port"]))
	}
	o := relay.Options{
		StateURL:         "ws://" + net.JoinHostPort(v["state-host"], v["state-port"]) + "/socketcluster/",
		Port:             port,
		AuthKey:          v["auth-key"],
		InstanceIP:       v["instance-ip"],
		InstanceIPFamily: v["instance-ip-family"],
		Secure:           v["secure"] != "" && v["secure"] != "false" && v["secure"] != "0",
		Version:          v["version"],
		Logger:           logger,
	}
	if o.RetryDelay, err = sccmd.Duration("retry-delay", v["retry-delay"]); err != nil {
		return fail(err)
	}
	if o.StateConnectTimeout, err = sccmd.Duration("state-connect-timeout", v["state-connect-timeout"]); err != nil {
		return fail(err)
	}
	if o.StateAckTimeout, err = sccmd.Duration("state-ack-timeout", v["state-ack-timeout"]); err != nil {
		return fail(err)
	}
	r, err := relay.New(o)
	if err != nil {
		return fail(err)
	}
	l, err := net.Listen("tcp", net.JoinHostPort(v["host"], v["port"]))
	if err != nil {
		fmt.Fprintln(stderr, "scc-broker:", err)
		return 1
	}
	reg := prometheus.NewRegistry()
	reg.MustRegister(prommetrics.NewCollector(r.SC(), "scc_broker"), prommetrics.NewRelayCollector(r, "scc_broker"),
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	mux := http.NewServeMux()
	mux.Handle("/metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	mux.Handle("/", r)
	ctx, stop := signal.NotifyContext(ctx, syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	hs := r.SC().HTTPServer(mux)
	served := make(chan struct{})
	go func() { // serve before joining: workers connect as soon as scc-state announces us
		defer close(served)
		_ = sccmd.Serve(ctx, hs, l, r.Close)
	}()
	if err := r.Start(ctx); err != nil {
		fmt.Fprintln(stderr, "scc-broker:", err)
		stop()
		<-served
		return 1
	}
	logger.Info("scc-broker: listening", "addr", l.Addr().String(), "state", o.StateURL)
	fmt.Fprintf(stdout, "listening on %s\n", l.Addr())
	<-served
	return 0
}

// printMapping writes, for each JSON string line of in, the broker URI
// the channel maps to ("null" when none) and, with poolSize, the pool
// index, separated by a tab.
func printMapping(in io.Reader, out io.Writer, engine, sites string, poolSize int) error {
	m, err := mapping.New(engine)
	if err != nil {
		return err
	}
	var list []string
	if sites != "" {
		list = strings.Split(sites, ",")
	}
	m.SetSites(list)
	sc := bufio.NewScanner(in)
	sc.Buffer(make([]byte, 0, 64<<10), 1<<20)
	w := bufio.NewWriter(out)
	for sc.Scan() {
		var name string
		if err := json.Unmarshal(sc.Bytes(), &name); err != nil {
			return fmt.Errorf("-map: line %q: want a JSON string", sc.Text())
		}
		site, ok := m.FindSite(name)
		if !ok {
			site = "null"
		}
		w.WriteString(site)
		if poolSize > 0 {
			w.WriteString("\t" + strconv.Itoa(mapping.HashToIndex(name, poolSize)))
		}
		w.WriteByte('\n')
	}
	if err := sc.Err(); err != nil {
		return err
	}
	return w.Flush()
}
