// Command interop-fixture is the interop fixture server of
// docs/interop-fixture.md: a small SocketCluster server with fixed flags,
// procedures, receivers and middleware, so that any test suite can drive
// it with the official JavaScript client.
//
//	interop-fixture -addr 127.0.0.1:0     # prints READY <port>
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
	"strconv"
	"strings"
	"syscall"
	"time"

	sc "github.com/socketcluster-go/socketcluster"
	"github.com/socketcluster-go/socketcluster/codec/minbin"
	"github.com/socketcluster-go/socketcluster/history"
	"github.com/socketcluster-go/socketcluster/internal/fixture"
)

func main() {
	os.Exit(run(os.Args[1:], os.Getenv, os.Stdout, os.Stderr))
}

type config struct {
	addr               string
	authKey            string
	ackTimeout         int
	pingInterval       int
	pingTimeout        int
	handshakeTimeout   int
	channelLimit       int
	allowClientPublish bool
	protocolVersion    int
	broker             string
}

func parse(args []string, getenv func(string) string, stderr io.Writer) (*config, error) {
	c := &config{}
	fs := flag.NewFlagSet("interop-fixture", flag.ContinueOnError)
	fs.SetOutput(stderr)
	envStr := func(name, def string) string {
		if v := getenv(name); v != "" {
			return v
		}
		return def
	}
	var envErr error
	envInt := func(name string, def int) int {
		if v := getenv(name); v != "" {
			n, err := strconv.Atoi(strings.TrimSpace(v))
			if err != nil {
				envErr = fmt.Errorf("invalid value %q for environment variable %s: want an integer", v, name)
				return def
			}
			return n
		}
		return def
	}
	envBool := func(name string, def bool) bool {
		if v := getenv(name); v != "" {
			b, err := strconv.ParseBool(strings.TrimSpace(strings.ToLower(v)))
			if err != nil {
				switch strings.ToLower(strings.TrimSpace(v)) {
				case "yes", "on":
					return true
				case "no", "off":
					return false
				}
				envErr = fmt.Errorf("invalid value %q for environment variable %s: want true or false", v, name)
				return def
			}
			return b
		}
		return def
	}
	fs.StringVar(&c.addr, "addr", "127.0.0.1:8000", "listen address host:port (port 0 picks a free one)")
	fs.StringVar(&c.authKey, "auth-key", envStr("SC_AUTH_KEY", "interop-secret"), "HS256 auth key [SC_AUTH_KEY]")
	fs.IntVar(&c.ackTimeout, "ack-timeout", envInt("SC_ACK_TIMEOUT", 10000), "ack timeout in ms [SC_ACK_TIMEOUT]")
	fs.IntVar(&c.pingInterval, "ping-interval", envInt("SC_PING_INTERVAL", 8000), "ping interval in ms [SC_PING_INTERVAL]")
	fs.IntVar(&c.pingTimeout, "ping-timeout", envInt("SC_PING_TIMEOUT", 20000), "ping timeout in ms [SC_PING_TIMEOUT]")
	fs.IntVar(&c.handshakeTimeout, "handshake-timeout", envInt("SC_HANDSHAKE_TIMEOUT", 10000), "handshake timeout in ms [SC_HANDSHAKE_TIMEOUT]")
	fs.IntVar(&c.channelLimit, "channel-limit", envInt("SC_CHANNEL_LIMIT", 1000), "channels per socket [SC_CHANNEL_LIMIT]")
	fs.BoolVar(&c.allowClientPublish, "allow-client-publish", envBool("SC_ALLOW_CLIENT_PUBLISH", true), "allow client publishes [SC_ALLOW_CLIENT_PUBLISH]")
	fs.IntVar(&c.protocolVersion, "protocol-version", envInt("SC_PROTOCOL_VERSION", 2), "ping protocol version: 2, or 1 for socketcluster-client 14 apps [SC_PROTOCOL_VERSION]")
	fs.StringVar(&c.broker, "broker", envStr("SC_BROKER", "memory"), "broker: memory, redis://…, nats://… [SC_BROKER]")
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	if envErr != nil {
		return nil, envErr
	}
	if fs.NArg() > 0 {
		return nil, fmt.Errorf("unexpected argument %q", fs.Arg(0))
	}
	if c.protocolVersion != 1 && c.protocolVersion != 2 {
		return nil, fmt.Errorf("-protocol-version %d: use 1 or 2 (1 for socketcluster-client 14)", c.protocolVersion)
	}
	return c, nil
}

func ms(n int) time.Duration { return time.Duration(n) * time.Millisecond }

func run(args []string, getenv func(string) string, stdout, stderr io.Writer) int {
	c, err := parse(args, getenv, stderr)
	if err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		fmt.Fprintln(stderr, "interop-fixture:", err)
		return 2
	}
	b, err := fixture.Broker(c.broker)
	if err != nil {
		fmt.Fprintln(stderr, "interop-fixture:", err)
		return 2
	}
	opts, err := extraOptions(getenv)
	if err != nil {
		fmt.Fprintln(stderr, "interop-fixture:", err)
		return 2
	}
	logger := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	srv, err := sc.New(sc.Options{
		AuthKey:              []byte(c.authKey),
		AuthAlgorithm:        opts.AuthAlgorithm,
		AuthPrivateKey:       opts.AuthPrivateKey,
		AuthPublicKey:        opts.AuthPublicKey,
		Codec:                opts.Codec,
		OutboundQueueLimit:   opts.OutboundQueueLimit,
		CoalescePackets:      opts.CoalescePackets,
		OwnDescriptors:       opts.OwnDescriptors,
		History:              opts.History,
		PerMessageDeflate:    opts.PerMessageDeflate,
		AckTimeout:           ms(c.ackTimeout),
		PingInterval:         ms(c.pingInterval),
		PingTimeout:          ms(c.pingTimeout),
		HandshakeTimeout:     ms(c.handshakeTimeout),
		SocketChannelLimit:   c.channelLimit,
		ProtocolVersion:      c.protocolVersion,
		DisableClientPublish: !c.allowClientPublish,
		Broker:               b,
		Logger:               logger,
		HTTPHandler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			http.Error(w, "Not found", http.StatusNotFound)
		}),
	})
	if err != nil {
		fmt.Fprintln(stderr, "interop-fixture:", err)
		return 1
	}
	fixture.Install(srv)

	l, err := srv.ListenTCP(c.addr)
	if err != nil {
		fmt.Fprintln(stderr, "interop-fixture:", err)
		return 1
	}
	fmt.Fprintf(stdout, "READY %d\n", l.Addr().(*net.TCPAddr).Port)

	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, syscall.SIGTERM, syscall.SIGINT)
	served := make(chan error, 1)
	go func() { served <- srv.Serve(l) }()
	select {
	case <-sigs:
	case err := <-served:
		fmt.Fprintln(stderr, "interop-fixture:", err)
		return 1
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	_ = srv.Close(ctx)
	return 0
}

// extraOptions reads settings beyond the fixture contract
// (docs/interop-fixture.md, "Extensions"), for tests of
// features the reference fixture does not expose: SC_AUTH_ALGORITHM with
// SC_AUTH_PRIVATE_KEY_FILE and SC_AUTH_PUBLIC_KEY_FILE (PEM; the key pair
// then replaces -auth-key), SC_CODEC=minbin (the sc-codec-min-bin
// compatible codec), SC_OUTBOUND_QUEUE_LIMIT (bytes),
// SC_PER_MESSAGE_DEFLATE=true (permessage-deflate; SC_DEFLATE_THRESHOLD
// sets its threshold in bytes), and channel history: SC_HISTORY
// (comma-separated channel patterns, none by default), SC_HISTORY_SIZE
// (default 100) and SC_HISTORY_TTL (default 5m).
func extraOptions(getenv func(string) string) (sc.Options, error) {
	o := sc.Options{AuthAlgorithm: "HS256"}
	if alg := getenv("SC_AUTH_ALGORITHM"); alg != "" {
		o.AuthAlgorithm = alg
	}
	priv, pub := getenv("SC_AUTH_PRIVATE_KEY_FILE"), getenv("SC_AUTH_PUBLIC_KEY_FILE")
	if (priv == "") != (pub == "") {
		return o, errors.New("set both SC_AUTH_PRIVATE_KEY_FILE and SC_AUTH_PUBLIC_KEY_FILE, or neither")
	}
	if priv != "" {
		var err error
		if o.AuthPrivateKey, err = os.ReadFile(priv); err != nil {
			return o, err
		}
		if o.AuthPublicKey, err = os.ReadFile(pub); err != nil {
			return o, err
		}
	}
	if v := getenv("SC_OUTBOUND_QUEUE_LIMIT"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n <= 0 {
			return o, fmt.Errorf("SC_OUTBOUND_QUEUE_LIMIT=%q: want a positive number of bytes", v)
		}
		o.OutboundQueueLimit = n
	}
	// SC_COALESCE=1 turns on Options.CoalescePackets (array frames for
	// packets queued together), for running the client suite with it.
	o.CoalescePackets = getenv("SC_COALESCE") == "1"
	// Sockets own their descriptors, as scserver's do (no difference on
	// the wire; less memory per idle socket); SC_OWN_DESCRIPTORS=false
	// keeps Go's net.TCPConn, the library's default.
	o.OwnDescriptors = true
	if v := getenv("SC_OWN_DESCRIPTORS"); v != "" {
		on, err := strconv.ParseBool(v)
		if err != nil {
			return o, fmt.Errorf("SC_OWN_DESCRIPTORS=%q: want true or false", v)
		}
		o.OwnDescriptors = on
	}
	if v := getenv("SC_HISTORY"); v != "" {
		h := history.Rule{Size: 100, TTL: 5 * time.Minute}
		for _, p := range strings.Split(v, ",") {
			if p = strings.TrimSpace(p); p != "" {
				h.Patterns = append(h.Patterns, p)
			}
		}
		if s := getenv("SC_HISTORY_SIZE"); s != "" {
			n, err := strconv.Atoi(s)
			if err != nil || n <= 0 {
				return o, fmt.Errorf("SC_HISTORY_SIZE=%q: want a positive number of publications", s)
			}
			h.Size = n
		}
		if s := getenv("SC_HISTORY_TTL"); s != "" {
			d, err := time.ParseDuration(s)
			if err != nil || d <= 0 {
				return o, fmt.Errorf("SC_HISTORY_TTL=%q: want a positive duration such as 5m", s)
			}
			h.TTL = d
		}
		o.History = []history.Rule{h}
	}
	if v := getenv("SC_PER_MESSAGE_DEFLATE"); v != "" {
		on, err := strconv.ParseBool(v)
		if err != nil {
			return o, fmt.Errorf("SC_PER_MESSAGE_DEFLATE=%q: want true or false", v)
		}
		if on {
			o.PerMessageDeflate = &sc.DeflateOptions{}
		}
	}
	if v := getenv("SC_DEFLATE_THRESHOLD"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || o.PerMessageDeflate == nil {
			return o, fmt.Errorf("SC_DEFLATE_THRESHOLD=%q: want a number of bytes, with SC_PER_MESSAGE_DEFLATE=true", v)
		}
		o.PerMessageDeflate.Threshold = n
	}
	switch getenv("SC_CODEC") {
	case "", "json":
	case "minbin":
		o.Codec = minbin.New()
	default:
		return o, fmt.Errorf("SC_CODEC=%q: use json or minbin", getenv("SC_CODEC"))
	}
	return o, nil
}
