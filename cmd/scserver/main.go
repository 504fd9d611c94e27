// Command scserver is a SocketCluster server: the socketcluster-go library
// with the batteries an operator expects. Every flag also reads an SC_…
// environment variable and a key of the -config JSON file; precedence is
// flag, then environment, then file, then default.
//
//	scserver -addr :8000 -broker redis://127.0.0.1:6379
//
// Endpoints: /socketcluster/ (WebSocket), /healthz (liveness), /readyz
// (readiness: 503 while draining or before the broker is ready), /metrics
// (Prometheus), / (a demo page using the official browser client).
//
// SIGTERM or SIGINT drains: /readyz turns 503, then every client gets a
// close frame with code 1001, and the process exits once they are gone or
// -drain-timeout has passed.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strconv"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus/promhttp"

	sc "github.com/socketcluster-go/socketcluster"
	"github.com/socketcluster-go/socketcluster/broker/brokerurl"
	"github.com/socketcluster-go/socketcluster/prommetrics"
)

func main() { os.Exit(run(context.Background(), os.Args[1:], os.Getenv, os.Stdout, os.Stderr)) }

// config is every setting of the binary.
type config struct {
	Addr               string
	Path               string
	Origins            string
	Broker             string
	AuthKey            string
	AuthPrivateKeyFile string
	AuthPublicKeyFile  string
	AuthAlgorithm      string
	AuthDefaultExpiry  time.Duration
	PingInterval       time.Duration
	PingTimeout        time.Duration
	HandshakeTimeout   time.Duration
	AckTimeout         time.Duration
	ChannelLimit       int
	AllowClientPublish bool
	MaxPayload         int64
	OutboundQueueLimit int
	DrainTimeout       time.Duration
	ClientJS           string
	LogLevel           string
}

type spec struct {
	name, env, help string
	set             func(c *config, v string) error
	def             string
}

func durationSetter(f func(c *config) *time.Duration) func(*config, string) error {
	return func(c *config, v string) error {
		d, err := time.ParseDuration(v)
		if err != nil {
			if n, nerr := strconv.Atoi(v); nerr == nil { // bare numbers are milliseconds
				d, err = time.Duration(n)*time.Millisecond, nil
			}
		}
		if err != nil {
			return fmt.Errorf("want a duration such as 10s or 500ms")
		}
		*f(c) = d
		return nil
	}
}

func intSetter(f func(c *config) *int) func(*config, string) error {
	return func(c *config, v string) error {
		n, err := strconv.Atoi(v)
		if err != nil {
			return fmt.Errorf("want an integer")
		}
		*f(c) = n
		return nil
	}
}

func strSetter(f func(c *config) *string) func(*config, string) error {
	return func(c *config, v string) error { *f(c) = v; return nil }
}

var specs = []spec{
	{"addr", "SC_ADDR", "listen address", strSetter(func(c *config) *string { return &c.Addr }), ":8000"},
	{"path", "SC_PATH", "WebSocket endpoint path", strSetter(func(c *config) *string { return &c.Path }), "/socketcluster/"},
	{"origins", "SC_ORIGINS", "allowed origins, e.g. \"example.com:* *:443\"", strSetter(func(c *config) *string { return &c.Origins }), "*:*"},
	{"broker", "SC_BROKER", "broker: memory, redis://host:port[/db], nats://host:port", strSetter(func(c *config) *string { return &c.Broker }), "memory"},
	{"auth-key", "SC_AUTH_KEY", "HMAC key for tokens (default: random at start)", strSetter(func(c *config) *string { return &c.AuthKey }), ""},
	{"auth-private-key-file", "SC_AUTH_PRIVATE_KEY_FILE", "PEM private key (RSA/EC) to sign tokens", strSetter(func(c *config) *string { return &c.AuthPrivateKeyFile }), ""},
	{"auth-public-key-file", "SC_AUTH_PUBLIC_KEY_FILE", "PEM public key to verify tokens", strSetter(func(c *config) *string { return &c.AuthPublicKeyFile }), ""},
	{"auth-algorithm", "SC_AUTH_ALGORITHM", "token algorithm (HS256, RS256, ES256, …)", strSetter(func(c *config) *string { return &c.AuthAlgorithm }), ""},
	{"auth-default-expiry", "SC_AUTH_DEFAULT_EXPIRY", "default token lifetime", durationSetter(func(c *config) *time.Duration { return &c.AuthDefaultExpiry }), "24h"},
	{"ping-interval", "SC_PING_INTERVAL", "ping period", durationSetter(func(c *config) *time.Duration { return &c.PingInterval }), "8s"},
	{"ping-timeout", "SC_PING_TIMEOUT", "pong deadline", durationSetter(func(c *config) *time.Duration { return &c.PingTimeout }), "30s"},
	{"handshake-timeout", "SC_HANDSHAKE_TIMEOUT", "deadline for #handshake", durationSetter(func(c *config) *time.Duration { return &c.HandshakeTimeout }), "10s"},
	{"ack-timeout", "SC_ACK_TIMEOUT", "deadline for server→client invokes", durationSetter(func(c *config) *time.Duration { return &c.AckTimeout }), "10s"},
	{"channel-limit", "SC_CHANNEL_LIMIT", "channels per socket (0: no limit)", intSetter(func(c *config) *int { return &c.ChannelLimit }), "0"},
	{"allow-client-publish", "SC_ALLOW_CLIENT_PUBLISH", "allow clients to publish", func(c *config, v string) error {
		b, err := strconv.ParseBool(v)
		if err != nil {
			return fmt.Errorf("want true or false")
		}
		c.AllowClientPublish = b
		return nil
	}, "true"},
	{"max-payload", "SC_MAX_PAYLOAD", "largest inbound message in bytes", func(c *config, v string) error {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil || n <= 0 {
			return fmt.Errorf("want a positive number of bytes")
		}
		c.MaxPayload = n
		return nil
	}, strconv.Itoa(100 << 20)},
	{"outbound-queue-limit", "SC_OUTBOUND_QUEUE_LIMIT", "bytes queued per socket before it is dropped as a slow consumer", intSetter(func(c *config) *int { return &c.OutboundQueueLimit }), strconv.Itoa(64 << 20)},
	{"drain-timeout", "SC_DRAIN_TIMEOUT", "how long a shutdown waits for clients", durationSetter(func(c *config) *time.Duration { return &c.DrainTimeout }), "10s"},
	{"client-js", "SC_CLIENT_JS", "path of socketcluster-client.min.js for the demo page", strSetter(func(c *config) *string { return &c.ClientJS }), ""},
	{"log-level", "SC_LOG_LEVEL", "debug, info, warn or error", strSetter(func(c *config) *string { return &c.LogLevel }), "info"},
}

// parse builds the configuration: defaults, then the -config file, then
// the environment, then flags.
func parse(args []string, getenv func(string) string, stderr io.Writer) (*config, error) {
	c := &config{}
	for _, s := range specs {
		if err := s.set(c, s.def); err != nil {
			panic(s.name + ": " + err.Error())
		}
	}
	fs := flag.NewFlagSet("scserver", flag.ContinueOnError)
	fs.SetOutput(stderr)
	configFile := fs.String("config", getenv("SC_CONFIG"), "JSON file of settings, keys as the flag names [SC_CONFIG]")
	flagVals := map[string]*string{}
	for _, s := range specs {
		v := new(string)
		flagVals[s.name] = v
		fs.StringVar(v, s.name, "", fmt.Sprintf("%s [%s] (default %q)", s.help, s.env, s.def))
	}
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	if fs.NArg() > 0 {
		return nil, fmt.Errorf("unexpected argument %q", fs.Arg(0))
	}
	if *configFile != "" {
		b, err := os.ReadFile(*configFile)
		if err != nil {
			return nil, fmt.Errorf("config file: %w", err)
		}
		var m map[string]any
		if err := json.Unmarshal(b, &m); err != nil {
			return nil, fmt.Errorf("config file %s: %w", *configFile, err)
		}
		for _, s := range specs {
			if v, ok := m[s.name]; ok {
				str := fmt.Sprint(v)
				if f, ok := v.(float64); ok {
					str = strconv.FormatFloat(f, 'f', -1, 64)
				}
				if err := s.set(c, str); err != nil {
					return nil, fmt.Errorf("config file %s: %q: %v", *configFile, s.name, err)
				}
				delete(m, s.name)
			}
		}
		for k := range m {
			return nil, fmt.Errorf("config file %s: unknown key %q (keys are the flag names)", *configFile, k)
		}
	}
	for _, s := range specs {
		if v := getenv(s.env); v != "" {
			if err := s.set(c, v); err != nil {
				return nil, fmt.Errorf("environment variable %s=%q: %v", s.env, v, err)
			}
		}
	}
	var ferr error
	fs.Visit(func(f *flag.Flag) {
		for _, s := range specs {
			if s.name == f.Name && ferr == nil {
				if err := s.set(c, *flagVals[s.name]); err != nil {
					ferr = fmt.Errorf("flag -%s=%q: %v", s.name, *flagVals[s.name], err)
				}
			}
		}
	})
	return c, ferr
}

func (c *config) options(logger *slog.Logger) (sc.Options, error) {
	o := sc.Options{
		Path:                 c.Path,
		Origins:              c.Origins,
		AuthAlgorithm:        c.AuthAlgorithm,
		AuthDefaultExpiry:    c.AuthDefaultExpiry,
		PingInterval:         c.PingInterval,
		PingTimeout:          c.PingTimeout,
		HandshakeTimeout:     c.HandshakeTimeout,
		AckTimeout:           c.AckTimeout,
		SocketChannelLimit:   c.ChannelLimit,
		DisableClientPublish: !c.AllowClientPublish,
		MaxPayload:           c.MaxPayload,
		OutboundQueueLimit:   c.OutboundQueueLimit,
		Logger:               logger,
	}
	if c.AuthKey != "" {
		o.AuthKey = []byte(c.AuthKey)
	}
	for _, kf := range []struct {
		path string
		dst  *[]byte
	}{{c.AuthPrivateKeyFile, &o.AuthPrivateKey}, {c.AuthPublicKeyFile, &o.AuthPublicKey}} {
		if kf.path == "" {
			continue
		}
		b, err := os.ReadFile(kf.path)
		if err != nil {
			return o, fmt.Errorf("auth key file: %w", err)
		}
		*kf.dst = b
	}
	b, err := brokerurl.Open(c.Broker)
	if err != nil {
		return o, err
	}
	o.Broker = b
	return o, nil
}

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
	logger := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: level}))
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

	var draining atomic.Bool
	reg := prommetrics.NewRegistry(srv, "socketcluster")
	mux := http.NewServeMux()
	mux.Handle(c.Path, srv)
	mux.HandleFunc("/healthz", func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "ok\n") })
	mux.HandleFunc("/readyz", func(w http.ResponseWriter, r *http.Request) {
		if draining.Load() || !srv.Stats().Ready {
			http.Error(w, "not ready", http.StatusServiceUnavailable)
			return
		}
		io.WriteString(w, "ready\n")
	})
	mux.Handle("/metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	mux.Handle("/", demoHandler(c.ClientJS, c.Path))
	installDemo(srv)

	l, err := net.Listen("tcp", c.Addr)
	if err != nil {
		fmt.Fprintln(stderr, "scserver:", err)
		return 1
	}
	hs := srv.HTTPServer(mux) // header cap (431), header timeout, refusals counted
	logger.Info("scserver: listening", "addr", l.Addr().String(), "path", c.Path, "broker", c.Broker)
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
	logger.Info("scserver: draining", "timeout", c.DrainTimeout.String())
	draining.Store(true)
	dctx, cancel := context.WithTimeout(context.Background(), c.DrainTimeout)
	defer cancel()
	// Sockets first: while they drain, the HTTP server still answers
	// /readyz (503), /healthz and /metrics, and new upgrades get 503.
	if err := srv.Close(dctx); err != nil {
		logger.Warn("scserver: drain timed out; remaining sockets were cut", "error", err.Error())
	}
	_ = hs.Shutdown(dctx)
	return 0
}

// installDemo serves what the demo page uses: an echo procedure.
func installDemo(srv *sc.Server) {
	srv.HandleProcedure("echo", func(r *sc.Request) { _ = r.End(r.Data) })
}
