package socketcluster

import (
	"errors"
	"fmt"
	"log/slog"
	"math"
	"net/http"
	"strings"
	"time"

	"github.com/socketcluster-go/socketcluster/auth"
	"github.com/socketcluster-go/socketcluster/broker"
	"github.com/socketcluster-go/socketcluster/history"
)

// Options configures a Server. The zero value gives the reference server's
// defaults (socketcluster-server 20.x, docs/protocol.md §10); each field
// documents its default. Options that are true by default in the reference
// are expressed as their negation here (DisableClientPublish for
// allowClientPublish…) so that the zero value stays the default.
type Options struct {
	// Path is the WebSocket endpoint. Default "/socketcluster/".
	Path string
	// Origins lists the allowed origins as the reference's single string
	// ("host:port host2:*"). Default "*:*" (any origin).
	Origins string
	// ProtocolVersion selects the ping format: 2 (default) pings with an
	// empty text frame, 1 with "#1" (for old clients).
	ProtocolVersion int
	// PingInterval is the ping period. Default 8s.
	PingInterval time.Duration
	// PingTimeout is the pong deadline, also announced in the handshake.
	// Default 30s, what the reference's code uses; its API document says
	// 20000 ms.
	PingTimeout time.Duration
	// PingTimeoutDisabled turns off pings and the pong deadline. The
	// official client then disconnects by itself after PingTimeout.
	PingTimeoutDisabled bool
	// HandshakeTimeout is the deadline for #handshake (close 4005).
	// Default 10s.
	HandshakeTimeout time.Duration
	// DisableStrictHandshake lets packets other than #handshake be
	// processed before the handshake (the reference's strictHandshake:
	// false). By default they close the socket with 4009.
	DisableStrictHandshake bool
	// AckTimeout bounds server→client invokes. Default 10s.
	AckTimeout time.Duration
	// DisableClientPublish refuses #publish from clients
	// (allowClientPublish: false).
	DisableClientPublish bool
	// SocketChannelLimit caps the channels per socket. Default 0: no
	// limit, as the reference's code (its API document says 1000).
	SocketChannelLimit int

	// AuthKey is the HMAC secret for tokens. Default: 32 random bytes as
	// hex, made at start (tokens then do not survive a restart).
	AuthKey []byte
	// AuthPrivateKey and AuthPublicKey (PEM) sign and verify with RSA or
	// ECDSA; both or neither. Set AuthAlgorithm with them (RS256, ES256…).
	AuthPrivateKey, AuthPublicKey []byte
	// AuthAlgorithm signs tokens. Default HS256.
	AuthAlgorithm string
	// AuthVerifyAlgorithms lists accepted algorithms. Default: AuthAlgorithm
	// if set, else by key type (HS256/384/512 for a secret).
	AuthVerifyAlgorithms []string
	// AuthDefaultExpiry is the lifetime of tokens whose payload has no exp.
	// Default 24h.
	AuthDefaultExpiry time.Duration

	// AuthEngine replaces the JWT engine (sign and verify). Default: an
	// auth.JWT built from the Auth* options above.
	AuthEngine auth.Engine

	// Codec replaces the JSON codec. Default nil: JSON (sc-formatter).
	Codec Codec
	// Broker carries publishes between server instances. Default: an
	// in-process broker.Memory on a bus of its own.
	Broker broker.Broker
	// BrokerTimeout bounds each broker call (publish, subscribe,
	// unsubscribe). A publish the broker has not confirmed in this time
	// fails with a *ClusterPublishError (its local subscribers have it).
	// Default 5s.
	BrokerTimeout time.Duration
	// BrokerQueueLimit caps the publishes waiting for the broker (while it
	// is slow or hung); a publish beyond it is delivered locally and fails
	// at once with a *ClusterPublishError (ErrBrokerQueueFull). Default
	// 10 000.
	BrokerQueueLimit int
	// History makes the channels matching its rules keep a history, with
	// positions, recovery and acknowledged publishes never lost (see
	// history.Rule and docs/recovery.md). Default none.
	History []history.Rule

	// MiddlewareTimeout bounds each middleware decision; an inbound or
	// handshake action not decided in time is blocked with a
	// MiddlewareTimeoutError. Default 10s.
	MiddlewareTimeout time.Duration
	// SuppressMiddlewareFailures stops blocked middleware actions from
	// being emitted as socket errors (middlewareEmitFailures: false).
	SuppressMiddlewareFailures bool

	// BatchOnHandshake batches every socket's output for
	// BatchOnHandshakeDuration (default 400ms) after its handshake, flushing
	// every BatchInterval (default 50ms).
	BatchOnHandshake         bool
	BatchOnHandshakeDuration time.Duration
	BatchInterval            time.Duration

	// SocketStreamCleanupMode says what happens to a socket's streams after
	// it ends: "kill" (default), "close", or "none".
	SocketStreamCleanupMode string

	// MaxPayload is the largest inbound message in bytes; a larger one
	// closes the socket with 1009. Default 100 MiB (the reference's ws
	// default).
	MaxPayload int64

	// OutboundQueueLimit bounds each socket's queue of unsent bytes. When a
	// socket (a slow reader) goes over it, it is disconnected with
	// [protocol.CloseSlowConsumer] (4100), a SlowConsumerEvent is emitted and the
	// socket's messages are dropped: the publisher and other subscribers
	// are never blocked. Default 64 MiB. The reference has no limit.
	// cmd/scserver uses 2 MiB (docs/performance.md has the measurement).
	OutboundQueueLimit int

	// CoalescePackets merges packets queued for one socket into one JSON
	// array frame: when several plain JSON packets (events, responses,
	// publications) wait in a socket's queue at flush time, each run of
	// them is sent as one array frame of at most 64 KiB, in order. Binary,
	// compressed, raw (Socket.Send), ping, close, handshake and already
	// batched frames are never merged. Every supported client major
	// (socketcluster-client 14 to 20, asyngular-client 6) handles such an
	// array packet by packet, but the wire then differs from the
	// reference's one frame per packet (a client's raw "message" listener
	// sees the array), so it is off by default (docs/protocol.md §2.4).
	CoalescePackets bool
	// WriteTimeout bounds each write to a socket; a socket that accepts no
	// data for this long is terminated (1006). Default 30s.
	WriteTimeout time.Duration
	// DisableEventReads gives every connection a reading goroutine of its
	// own. By default, TCP connections on Linux are read event-driven
	// (epoll): an idle connection then holds no goroutine and no read
	// buffer. That includes TLS connections accepted through ServeTLS or
	// NewTLSListener; other connections (TLS from tls.NewListener or
	// httptest, net.Pipe…) always have a reading goroutine, and so do all
	// when built with the tag scnoepoll.
	DisableEventReads bool
	// DisableIOUring writes each delivery of a publication with a write(2)
	// of its own (from the socket's flusher goroutine). By default, on
	// Linux with io_uring available, a publication is sent to its idle
	// subscribers with one io_uring_enter per 256 of them, each send
	// non-blocking; subscribers with frames queued, TLS sockets, sockets
	// not read event-driven (DisableEventReads, the tag scnoepoll) and
	// sends that do not complete at once go through the queue as before.
	// Only channels that publish at a moderate rate are batched (under a
	// flood the flushers' coalescing does better; see docs/performance.md),
	// and never while outbound middleware is set (it runs per delivery).
	// Where io_uring is missing or forbidden the server falls back by
	// itself (logged once at Info level).
	DisableIOUring bool
	// OwnDescriptors makes each TCP socket read event-driven keep only
	// its file descriptor after the upgrade, not Go's *net.TCPConn: about
	// 1 KiB less resident memory per idle connection (the net package's
	// and the runtime poller's per-connection state). TLS sockets served
	// through ServeTLS or NewTLSListener keep their *tls.Conn, over the
	// descriptor (crypto/tls writes its records through it). A write
	// that finds the socket's send buffer full waits through a
	// short-lived connection in Go's poller, with the same WriteTimeout
	// and slow-consumer handling. Measured under a given offered load,
	// calls are answered sooner at every percentile; a saturating closed
	// loop on shared cores shows a higher p99 (docs/performance.md). Off
	// by default here (scserver turns it on); no effect with
	// DisableEventReads, on TLS sockets read by a goroutine (served over
	// crypto/tls's tls.NewListener), or where event-driven reads are not
	// available.
	OwnDescriptors bool

	// MaxHeaderBytes caps an HTTP request's line and header fields, in
	// bytes, on the HTTP servers this package builds (HTTPServer, Serve,
	// ListenAndServe): a larger request gets 431 Request Header Fields Too
	// Large. Default 16 KiB, the reference's (Node's); at least 4 KiB.
	MaxHeaderBytes int
	// ReadHeaderTimeout bounds reading an HTTP request's header on those
	// servers: a client still sending it then is dropped (slowloris).
	// Default 10s. It counts from the accept: where the Server accepts
	// connections itself (UpgradeListener), one that sends nothing at all
	// is accepted about a second after it connected.
	ReadHeaderTimeout time.Duration

	// MaxConnections caps the WebSockets open at once (connecting or
	// connected); an upgrade over it gets 503 Service Unavailable. Default
	// 0: no limit. See limits.go for how refusals are counted and logged.
	MaxConnections int
	// MaxConnectionsPerAddress caps the WebSockets open at once from one
	// client address; an upgrade over it gets 429 Too Many Requests.
	// Default 0: no limit. The address is the TCP peer's IP, or the one
	// named by ClientAddressHeader.
	MaxConnectionsPerAddress int
	// ClientAddressHeader names a request header that carries the client's
	// address when the server is behind a proxy ("X-Forwarded-For",
	// "X-Real-IP"): the last address in it (the one your proxy added) is
	// the client's for MaxConnectionsPerAddress. Set it only when every
	// request comes through a proxy that sets the header: clients can send
	// any value otherwise. Default "": the TCP peer's address.
	ClientAddressHeader string
	// MaxHandshakesPerSecond caps WebSocket upgrades accepted per second,
	// over all clients (a token bucket holding one second's worth); an
	// upgrade over it gets 503 with Retry-After: 1. Default 0: no limit.
	MaxHandshakesPerSecond int
	// InboundMessageRate limits each socket's inbound messages per second
	// (a token bucket of InboundMessageBurst messages, default one
	// second's worth); a socket over it is closed with
	// [protocol.CloseInboundRateLimit] (4101) and [protocol.InboundRateLimitReason]. Default 0:
	// no limit. Pongs count as messages.
	InboundMessageRate  float64
	InboundMessageBurst int
	// InboundByteRate limits each socket's inbound message bytes per
	// second the same way (a bucket of InboundByteBurst bytes, default one
	// second's worth). A message is accepted while the bucket is not
	// empty and its size is taken from it, perhaps into debt, so a message
	// larger than the burst is not refused for its size alone. Default 0:
	// no limit.
	InboundByteRate  float64
	InboundByteBurst int
	// PerMessageDeflate turns on permessage-deflate compression (RFC 7692)
	// with the clients that offer it (browsers and the Node client's ws
	// engine do); &DeflateOptions{} gives the defaults. Default nil: off,
	// as in the reference (an offer is then ignored). Compression is
	// negotiated without context takeover both ways, so that a publish is
	// compressed once for all its subscribers and an idle connection holds
	// no compressor (see DeflateOptions and docs/performance.md).
	PerMessageDeflate *DeflateOptions

	// HandleProtocols picks a WebSocket subprotocol from those offered.
	// Default: the first one offered.
	HandleProtocols func(offered []string) string
	// HTTPHandler serves plain (non-WebSocket) HTTP requests that reach the
	// Server's ServeHTTP. Default: 501 Not Implemented, as the reference's
	// listen().
	HTTPHandler http.Handler
	// Logger receives the server's log lines. Default slog.Default().
	Logger *slog.Logger
	// CloneData has no effect: payloads are immutable raw JSON here. Kept
	// for parity with the reference's cloneData option.
	CloneData bool
}

// DeflateOptions configures permessage-deflate (Options.PerMessageDeflate).
// The zero value gives the defaults.
//
// The server always answers with server_no_context_takeover and
// client_no_context_takeover: each message is compressed on its own, so
// that one compressed frame serves every subscriber of a channel, and no
// connection keeps a compressor (1.2 MB at level 1 in compress/flate) or
// a decompressor (44 KB) between messages; both are pooled, up to
// min(4, GOMAXPROCS) of each kept for the server once first needed. The cost
// is a lower ratio on small messages, which the threshold leaves
// uncompressed anyway. An offer limiting server_max_window_bits below 15
// is declined (the connection is then uncompressed).
type DeflateOptions struct {
	// Threshold: outbound messages shorter than this many bytes are sent
	// uncompressed, and so is any message that compression does not make
	// smaller. Default 1024, the reference's ws engine's; negative: every
	// message is tried.
	Threshold int
	// Level is the compress/flate level: 1 (flate.BestSpeed, the default)
	// to 9, or -2 (flate.HuffmanOnly). Levels above 1 cost several times
	// the CPU for a few percent of size (docs/performance.md).
	Level int
}

// withDefaults returns a copy with every zero field set to its default.
func (o Options) withDefaults() Options {
	if o.Path == "" {
		o.Path = "/socketcluster/"
	}
	if o.Origins == "" {
		o.Origins = "*:*"
	}
	if o.ProtocolVersion == 0 {
		o.ProtocolVersion = 2
	}
	if o.PingInterval == 0 {
		o.PingInterval = 8 * time.Second
	}
	if o.PingTimeout == 0 {
		o.PingTimeout = 30 * time.Second
	}
	if o.HandshakeTimeout == 0 {
		o.HandshakeTimeout = 10 * time.Second
	}
	if o.AckTimeout == 0 {
		o.AckTimeout = 10 * time.Second
	}
	if o.AuthDefaultExpiry == 0 {
		o.AuthDefaultExpiry = 24 * time.Hour
	}
	if o.BatchOnHandshakeDuration == 0 {
		o.BatchOnHandshakeDuration = 400 * time.Millisecond
	}
	if o.BatchInterval == 0 {
		o.BatchInterval = 50 * time.Millisecond
	}
	if o.SocketStreamCleanupMode == "" {
		o.SocketStreamCleanupMode = "kill"
	}
	if o.MaxPayload == 0 {
		o.MaxPayload = 100 << 20
	}
	if o.OutboundQueueLimit == 0 {
		o.OutboundQueueLimit = 64 << 20
	}
	if o.WriteTimeout == 0 {
		o.WriteTimeout = 30 * time.Second
	}
	if o.MaxHeaderBytes == 0 {
		o.MaxHeaderBytes = 16 << 10
	}
	if o.ReadHeaderTimeout == 0 {
		o.ReadHeaderTimeout = 10 * time.Second
	}
	if o.BrokerTimeout == 0 {
		o.BrokerTimeout = defaultBrokerTimeout
	}
	if o.BrokerQueueLimit == 0 {
		o.BrokerQueueLimit = defaultBrokerQueueLimit
	}
	if o.InboundMessageBurst == 0 {
		o.InboundMessageBurst = max(int(o.InboundMessageRate), 1)
	}
	if o.InboundByteBurst == 0 {
		o.InboundByteBurst = max(int(o.InboundByteRate), 1)
	}
	if o.MiddlewareTimeout == 0 {
		o.MiddlewareTimeout = 10 * time.Second
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	if o.PerMessageDeflate != nil {
		d := *o.PerMessageDeflate
		if d.Threshold == 0 {
			d.Threshold = 1024
		}
		if d.Level == 0 {
			d.Level = 1
		}
		o.PerMessageDeflate = &d
	}
	return o
}

// Validate reports every option that cannot work, each saying what to do,
// joined into one error (nil when all is well). The problems are always
// listed in the same order, so the message is stable. New calls it.
func (o Options) Validate() error {
	d := o.withDefaults()
	var errs []error
	if !strings.HasPrefix(d.Path, "/") {
		errs = append(errs, fmt.Errorf("socketcluster: Options.Path %q must start with /", d.Path))
	}
	if d.ProtocolVersion != 1 && d.ProtocolVersion != 2 {
		errs = append(errs, fmt.Errorf("socketcluster: Options.ProtocolVersion is %d; use 1 or 2", d.ProtocolVersion))
	}
	for _, f := range []struct {
		name string
		v    time.Duration
	}{
		{"PingInterval", d.PingInterval}, {"PingTimeout", d.PingTimeout}, {"HandshakeTimeout", d.HandshakeTimeout},
		{"AckTimeout", d.AckTimeout}, {"BatchOnHandshakeDuration", d.BatchOnHandshakeDuration}, {"BatchInterval", d.BatchInterval},
		{"WriteTimeout", d.WriteTimeout}, {"ReadHeaderTimeout", d.ReadHeaderTimeout}, {"BrokerTimeout", d.BrokerTimeout},
	} {
		if f.v < 0 {
			errs = append(errs, fmt.Errorf("socketcluster: Options.%s is negative (%v); leave it zero for the default", f.name, f.v))
		}
	}
	if d.SocketChannelLimit < 0 {
		errs = append(errs, errors.New("socketcluster: Options.SocketChannelLimit is negative; use 0 for no limit"))
	}
	if d.MaxPayload < 0 || d.OutboundQueueLimit < 0 {
		errs = append(errs, errors.New("socketcluster: Options.MaxPayload and OutboundQueueLimit must not be negative"))
	}
	if d.BrokerQueueLimit < 0 {
		errs = append(errs, errors.New("socketcluster: Options.BrokerQueueLimit is negative; leave it zero for the default (10 000)"))
	}
	if err := history.Validate(d.History); err != nil {
		errs = append(errs, err)
	}
	if d.MaxHeaderBytes < 0 {
		errs = append(errs, errors.New("socketcluster: Options.MaxHeaderBytes is negative; leave it zero for the default (16 KiB)"))
	}
	for name, v := range map[string]int{
		"MaxConnections": d.MaxConnections, "MaxConnectionsPerAddress": d.MaxConnectionsPerAddress,
		"MaxHandshakesPerSecond": d.MaxHandshakesPerSecond, "InboundMessageBurst": d.InboundMessageBurst,
		"InboundByteBurst": d.InboundByteBurst,
	} {
		if v < 0 {
			errs = append(errs, fmt.Errorf("socketcluster: Options.%s is negative; use 0 for no limit", name))
		}
	}
	if d.InboundMessageRate < 0 || d.InboundByteRate < 0 || math.IsNaN(d.InboundMessageRate) || math.IsNaN(d.InboundByteRate) {
		errs = append(errs, errors.New("socketcluster: Options.InboundMessageRate and InboundByteRate must not be negative; use 0 for no limit"))
	}
	if strings.ContainsAny(d.ClientAddressHeader, " :\r\n") {
		errs = append(errs, fmt.Errorf("socketcluster: Options.ClientAddressHeader %q is not a header name", d.ClientAddressHeader))
	}
	if z := d.PerMessageDeflate; z != nil && (z.Level < -2 || z.Level == -1 || z.Level > 9) {
		errs = append(errs, fmt.Errorf("socketcluster: Options.PerMessageDeflate.Level is %d; use 1 (fastest) to 9 (smallest), -2 (Huffman only), or 0 for the default (1)", z.Level))
	}
	if (len(d.AuthPrivateKey) == 0) != (len(d.AuthPublicKey) == 0) {
		errs = append(errs, NewError("InvalidOptionsError", "The authPrivateKey and authPublicKey options must be set together (both PEM keys) or not at all"))
	}
	return errors.Join(errs...)
}
