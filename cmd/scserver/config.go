package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"math"
	"os"
	"strconv"
	"strings"
	"time"

	sc "github.com/socketcluster-go/socketcluster"
	"github.com/socketcluster-go/socketcluster/broker"
	"github.com/socketcluster-go/socketcluster/broker/brokerurl"
	"github.com/socketcluster-go/socketcluster/history"
)

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
	BrokerTimeout      time.Duration
	History            string
	HistorySize        int
	HistoryTTL         time.Duration
	ProtocolVersion    int
	PerMessageDeflate  bool
	CoalescePackets    bool
	IOUring            bool
	OwnDescriptors     bool
	TrimIdleMemory     bool
	DeflateThreshold   int
	DeflateLevel       int
	DrainTimeout       time.Duration
	DrainDelay         time.Duration
	ClientJS           string
	Demo               bool
	LogLevel           string
	MetricsAddr        string
	AdminAddr          string // admin.go
	AdminPassword      string // admin.go
	MaxHeaderBytes     int
	AllowRandomAuthKey bool
	TLSCert            string
	TLSKey             string

	// Limits (Options fields of the same names).
	MaxConnections           int
	MaxConnectionsPerAddress int
	ClientAddressHeader      string
	MaxHandshakesPerSecond   int
	InboundMessageRate       float64
	InboundMessageBurst      int
	InboundByteRate          float64
	InboundByteBurst         int

	gateway gatewayConfig // gateway.go
}

// spec is one setting: its flag name (also its key in the -config file),
// its environment variable, and how a text value is parsed into config.
type spec struct {
	name, env, help string
	set             func(c *config, v string) error
	def             string
}

// isBool reports whether the flag may be given without a value (-demo
// means -demo=true): the boolean settings, whose defaults are true or
// false.
func (s spec) isBool() bool { return s.def == "true" || s.def == "false" }

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

func floatSetter(f func(c *config) *float64) func(*config, string) error {
	return func(c *config, v string) error {
		x, err := strconv.ParseFloat(v, 64)
		if err != nil || math.IsNaN(x) || math.IsInf(x, 0) {
			return fmt.Errorf("want a number")
		}
		*f(c) = x
		return nil
	}
}

func boolSetter(f func(c *config) *bool) func(*config, string) error {
	return func(c *config, v string) error {
		b, err := strconv.ParseBool(v)
		if err != nil {
			return fmt.Errorf("want true or false")
		}
		*f(c) = b
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
	{"broker", "SC_BROKER", "broker: memory, redis://host:port[/db], nats://host:port, scc://scc-state-host:7777?authKey=… (docs/scc-migration.md)", strSetter(func(c *config) *string { return &c.Broker }), "memory"},
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
	{"allow-client-publish", "SC_ALLOW_CLIENT_PUBLISH", "allow clients to publish", boolSetter(func(c *config) *bool { return &c.AllowClientPublish }), "true"},
	{"protocol-version", "SC_PROTOCOL_VERSION", "ping protocol version: 2, or 1 for socketcluster-client 14 apps", func(c *config, v string) error {
		n, err := strconv.Atoi(v)
		if err != nil || (n != 1 && n != 2) {
			return fmt.Errorf("want 1 or 2 (1 for socketcluster-client 14)")
		}
		c.ProtocolVersion = n
		return nil
	}, "2"},
	{"max-payload", "SC_MAX_PAYLOAD", "largest inbound message in bytes", func(c *config, v string) error {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil || n <= 0 {
			return fmt.Errorf("want a positive number of bytes")
		}
		c.MaxPayload = n
		return nil
	}, strconv.Itoa(100 << 20)},
	{"outbound-queue-limit", "SC_OUTBOUND_QUEUE_LIMIT", "bytes queued per socket before it is dropped as a slow consumer (close 4100)", intSetter(func(c *config) *int { return &c.OutboundQueueLimit }), strconv.Itoa(defaultOutboundQueueLimit)},
	{"broker-timeout", "SC_BROKER_TIMEOUT", "deadline of each broker call; a publish the broker has not confirmed by then is answered with ClusterPublishError (delivered on this instance only)", func(c *config, v string) error {
		d, err := time.ParseDuration(v)
		if err != nil || d <= 0 {
			return fmt.Errorf("want a positive duration such as 5s")
		}
		c.BrokerTimeout = d
		return nil
	}, "5s"},
	{"history", "SC_HISTORY", "comma-separated channel name patterns (* matches anything) whose channels keep a history: positions, client recovery, acknowledged publishes never lost (docs/recovery.md)", strSetter(func(c *config) *string { return &c.History }), ""},
	{"history-size", "SC_HISTORY_SIZE", "publications kept per -history channel", func(c *config, v string) error {
		n, err := strconv.Atoi(v)
		if err != nil || n <= 0 || n > 100000 {
			return fmt.Errorf("want a number of publications from 1 to 100000")
		}
		c.HistorySize = n
		return nil
	}, "100"},
	{"history-ttl", "SC_HISTORY_TTL", "how long a -history channel keeps a publication", func(c *config, v string) error {
		d, err := time.ParseDuration(v)
		if err != nil || d <= 0 {
			return fmt.Errorf("want a positive duration such as 5m")
		}
		c.HistoryTTL = d
		return nil
	}, "5m"},
	{"drain-delay", "SC_DRAIN_DELAY", "on SIGTERM, how long /readyz answers 503 before clients are closed (a second signal skips it)", durationSetter(func(c *config) *time.Duration { return &c.DrainDelay }), "5s"},
	{"drain-timeout", "SC_DRAIN_TIMEOUT", "how long a shutdown then waits for clients", durationSetter(func(c *config) *time.Duration { return &c.DrainTimeout }), "10s"},
	{"io-uring", "SC_IO_URING", "send each publication to its idle subscribers with one io_uring submission per 256 (Linux; falls back to a write per delivery where io_uring is unavailable)", boolSetter(func(c *config) *bool { return &c.IOUring }), "true"},
	{"own-descriptors", "SC_OWN_DESCRIPTORS", "TCP sockets (TLS ones under their crypto/tls state) keep only their descriptor, not Go's net.TCPConn: about 1 KiB less memory per idle connection, and calls answered sooner under a given offered load (Linux; false keeps the net.TCPConn)", boolSetter(func(c *config) *bool { return &c.OwnDescriptors }), "true"},
	{"trim-idle-memory", "SC_TRIM_IDLE_MEMORY", "once the process has gone quiet (at most 1 MiB allocated in a second) and a collection would free at least 16 MiB and a quarter of the live heap, collect and give the free heap back to the system; again only after a busy second or a collection of the runtime's own, and at most every 30 s: an idle server holds about its live memory instead of twice it", boolSetter(func(c *config) *bool { return &c.TrimIdleMemory }), "true"},
	{"coalesce-packets", "SC_COALESCE_PACKETS", "send the packets queued together for a socket as one JSON array frame (fewer frames to write and decode; every supported client reads arrays, but the wire then differs from the reference's one frame per packet)", boolSetter(func(c *config) *bool { return &c.CoalescePackets }), "false"},
	{"per-message-deflate", "SC_PER_MESSAGE_DEFLATE", "permessage-deflate compression with clients that offer it", boolSetter(func(c *config) *bool { return &c.PerMessageDeflate }), "false"},
	{"deflate-threshold", "SC_DEFLATE_THRESHOLD", "with -per-message-deflate: messages under this many bytes are sent uncompressed (negative: try every message)", intSetter(func(c *config) *int { return &c.DeflateThreshold }), "1024"},
	{"deflate-level", "SC_DEFLATE_LEVEL", "with -per-message-deflate: compression level, 1 (fastest) to 9", intSetter(func(c *config) *int { return &c.DeflateLevel }), "1"},
	{"demo", "SC_DEMO", "serve the demo page at / and its echo procedure", boolSetter(func(c *config) *bool { return &c.Demo }), "true"},
	{"client-js", "SC_CLIENT_JS", "serve this socketcluster-client.min.js to the demo page instead of the embedded one", strSetter(func(c *config) *string { return &c.ClientJS }), ""},
	{"log-level", "SC_LOG_LEVEL", "debug (also each connection, disconnection and refusal), info, warn or error", strSetter(func(c *config) *string { return &c.LogLevel }), "info"},
	{"metrics-addr", "SC_METRICS_ADDR", "serve /metrics on this separate (internal) address instead of -addr", strSetter(func(c *config) *string { return &c.MetricsAddr }), ""},
	{"max-header-bytes", "SC_MAX_HEADER_BYTES", "largest HTTP request header in bytes (431 above it), at least 4096", intSetter(func(c *config) *int { return &c.MaxHeaderBytes }), strconv.Itoa(16 << 10)},
	{"allow-random-auth-key", "SC_ALLOW_RANDOM_AUTH_KEY", "start with a -broker and no -auth-key (each instance then has its own random key: tokens fail on other instances)", boolSetter(func(c *config) *bool { return &c.AllowRandomAuthKey }), "false"},
	{"tls-cert", "SC_TLS_CERT", "PEM certificate (chain) file: serve HTTPS and wss:// (reloaded on SIGHUP and when the file changes)", strSetter(func(c *config) *string { return &c.TLSCert }), ""},
	{"tls-key", "SC_TLS_KEY", "PEM private key file of -tls-cert", strSetter(func(c *config) *string { return &c.TLSKey }), ""},
	{"max-connections", "SC_MAX_CONNECTIONS", "WebSockets open at once (503 above it; 0: no limit)", intSetter(func(c *config) *int { return &c.MaxConnections }), "0"},
	{"max-connections-per-address", "SC_MAX_CONNECTIONS_PER_ADDRESS", "WebSockets open at once from one client address (429 above it; 0: no limit)", intSetter(func(c *config) *int { return &c.MaxConnectionsPerAddress }), "0"},
	{"client-address-header", "SC_CLIENT_ADDRESS_HEADER", "trust this header for the client address (e.g. X-Forwarded-For; only behind a proxy that sets it)", strSetter(func(c *config) *string { return &c.ClientAddressHeader }), ""},
	{"max-handshakes-per-second", "SC_MAX_HANDSHAKES_PER_SECOND", "WebSocket upgrades accepted per second (503 above it; 0: no limit)", intSetter(func(c *config) *int { return &c.MaxHandshakesPerSecond }), "0"},
	{"inbound-message-rate", "SC_INBOUND_MESSAGE_RATE", "messages per second per socket (close 4101 above it; 0: no limit)", floatSetter(func(c *config) *float64 { return &c.InboundMessageRate }), "0"},
	{"inbound-message-burst", "SC_INBOUND_MESSAGE_BURST", "messages a socket may send at once (0: one second's worth)", intSetter(func(c *config) *int { return &c.InboundMessageBurst }), "0"},
	{"inbound-byte-rate", "SC_INBOUND_BYTE_RATE", "message bytes per second per socket (close 4101 above it; 0: no limit)", floatSetter(func(c *config) *float64 { return &c.InboundByteRate }), "0"},
	{"inbound-byte-burst", "SC_INBOUND_BYTE_BURST", "message bytes a socket may send at once (0: one second's worth)", intSetter(func(c *config) *int { return &c.InboundByteBurst }), "0"},
}

// defaultOutboundQueueLimit is the binary's -outbound-queue-limit, far
// below the library's 64 MiB: see "A production configuration" in the
// README for the measurement behind it.
const defaultOutboundQueueLimit = 2 << 20

// flagValue is a setting's flag: text kept for parse to apply in order of
// precedence; a boolean setting may be given without a value.
type flagValue struct {
	v      string
	isBool bool
}

func (f *flagValue) String() string     { return f.v }
func (f *flagValue) Set(v string) error { f.v = v; return nil }
func (f *flagValue) IsBoolFlag() bool   { return f.isBool }

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
	flagVals := map[string]*flagValue{}
	for _, s := range specs {
		v := &flagValue{isBool: s.isBool()}
		flagVals[s.name] = v
		fs.Var(v, s.name, fmt.Sprintf("%s [%s] (default %q)", s.help, s.env, s.def))
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
				if err := s.set(c, flagVals[s.name].v); err != nil {
					ferr = fmt.Errorf("flag -%s=%q: %v", s.name, flagVals[s.name].v, err)
				}
			}
		}
	})
	return c, ferr
}

// options returns the library's Options for c, without the broker (see
// openBroker). Errors name the flag.
func (c *config) options(logger *slog.Logger) (sc.Options, error) {
	o := sc.Options{
		Path:                     c.Path,
		Origins:                  c.Origins,
		AuthAlgorithm:            c.AuthAlgorithm,
		AuthDefaultExpiry:        c.AuthDefaultExpiry,
		PingInterval:             c.PingInterval,
		PingTimeout:              c.PingTimeout,
		HandshakeTimeout:         c.HandshakeTimeout,
		AckTimeout:               c.AckTimeout,
		SocketChannelLimit:       c.ChannelLimit,
		DisableClientPublish:     !c.AllowClientPublish,
		MaxPayload:               c.MaxPayload,
		OutboundQueueLimit:       c.OutboundQueueLimit,
		DisableIOUring:           !c.IOUring,
		OwnDescriptors:           c.OwnDescriptors,
		CoalescePackets:          c.CoalescePackets,
		BrokerTimeout:            c.BrokerTimeout,
		ProtocolVersion:          c.ProtocolVersion,
		MaxHeaderBytes:           c.MaxHeaderBytes,
		MaxConnections:           c.MaxConnections,
		MaxConnectionsPerAddress: c.MaxConnectionsPerAddress,
		ClientAddressHeader:      c.ClientAddressHeader,
		MaxHandshakesPerSecond:   c.MaxHandshakesPerSecond,
		InboundMessageRate:       c.InboundMessageRate,
		InboundMessageBurst:      c.InboundMessageBurst,
		InboundByteRate:          c.InboundByteRate,
		InboundByteBurst:         c.InboundByteBurst,
		Logger:                   logger,
	}
	if c.AuthKey != "" {
		o.AuthKey = []byte(c.AuthKey)
	}
	if c.History != "" {
		var patterns []string
		for _, p := range strings.Split(c.History, ",") {
			if p = strings.TrimSpace(p); p != "" {
				patterns = append(patterns, p)
			}
		}
		if len(patterns) == 0 {
			return o, flagError("history", "no channel pattern in %q", c.History)
		}
		o.History = []history.Rule{{Patterns: patterns, Size: c.HistorySize, TTL: c.HistoryTTL}}
	}
	if c.PerMessageDeflate {
		o.PerMessageDeflate = &sc.DeflateOptions{Threshold: c.DeflateThreshold, Level: c.DeflateLevel}
		if c.DeflateThreshold == 0 {
			o.PerMessageDeflate.Threshold = -1 // 0 bytes: every message
		}
	}
	for _, kf := range []struct {
		flag, path string
		dst        *[]byte
	}{{"auth-private-key-file", c.AuthPrivateKeyFile, &o.AuthPrivateKey}, {"auth-public-key-file", c.AuthPublicKeyFile, &o.AuthPublicKey}} {
		if kf.path == "" {
			continue
		}
		b, err := os.ReadFile(kf.path)
		if err != nil {
			return o, flagError(kf.flag, "%v", err)
		}
		*kf.dst = b
	}
	return o, nil
}

// openBroker opens the broker of -broker (it connects when the server
// starts). An scc:// broker without instancePort reports the port of -addr.
func (c *config) openBroker() (broker.Broker, error) {
	b, err := brokerurl.OpenListening(c.Broker, c.Addr)
	if err != nil {
		return nil, flagError("broker", "%v", err)
	}
	return b, nil
}
