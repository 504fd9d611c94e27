package main

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/socketcluster-go/socketcluster/auth"
)

// settingError is a setting that cannot work, named by its flag (and its
// environment variable, since the value may come from either or from the
// -config file).
type settingError struct {
	flags []string
	msg   string
}

func (e *settingError) Error() string {
	names := make([]string, len(e.flags))
	for i, f := range e.flags {
		names[i] = "-" + f
		if s, ok := findSpec(f); ok {
			names[i] += " (" + s.env + ")"
		}
	}
	return strings.Join(names, ", ") + ": " + e.msg
}

// flagError is a settingError about one flag.
func flagError(flag, format string, args ...any) error {
	return &settingError{flags: []string{flag}, msg: fmt.Sprintf(format, args...)}
}

// flagsError is a settingError about flags that do not work together.
func flagsError(flags []string, format string, args ...any) error {
	return &settingError{flags: flags, msg: fmt.Sprintf(format, args...)}
}

func findSpec(name string) (spec, bool) {
	for _, s := range specs {
		if s.name == name {
			return s, true
		}
	}
	return spec{}, false
}

// validate reports every setting that cannot work, each naming its flag,
// so that scserver refuses to start (exit 2) instead of starting and then
// failing every client. It reads the key and certificate files named.
func (c *config) validate() error {
	var errs []error
	add := func(err error) {
		if err != nil {
			errs = append(errs, err)
		}
	}
	var level slog.Level
	if err := level.UnmarshalText([]byte(c.LogLevel)); err != nil {
		add(flagError("log-level", "%q: use debug, info, warn or error", c.LogLevel))
	}
	add(checkAddr("addr", c.Addr))
	if c.MetricsAddr != "" {
		add(checkAddr("metrics-addr", c.MetricsAddr))
		if c.MetricsAddr == c.Addr && !strings.HasSuffix(c.Addr, ":0") {
			add(flagsError([]string{"metrics-addr", "addr"}, "the same address %q; leave -metrics-addr empty to serve /metrics on -addr", c.Addr))
		}
	}
	if !strings.HasPrefix(c.Path, "/") {
		add(flagError("path", "%q must start with /", c.Path))
	}
	add(checkOrigins(c.Origins))
	add(c.validateAdmin())

	for _, d := range []struct {
		flag string
		v    time.Duration
		min  time.Duration // smallest value allowed
	}{
		{"auth-default-expiry", c.AuthDefaultExpiry, time.Second},
		{"ping-interval", c.PingInterval, time.Millisecond},
		{"ping-timeout", c.PingTimeout, time.Millisecond},
		{"handshake-timeout", c.HandshakeTimeout, time.Millisecond},
		{"ack-timeout", c.AckTimeout, time.Millisecond},
		{"drain-timeout", c.DrainTimeout, time.Millisecond},
		{"drain-delay", c.DrainDelay, 0},
	} {
		if d.v < d.min {
			if d.min == 0 {
				add(flagError(d.flag, "%v is negative; use 0 for none", d.v))
			} else {
				add(flagError(d.flag, "%v: must be at least %v", d.v, d.min))
			}
		}
	}
	if c.PingInterval > 0 && c.PingTimeout > 0 && c.PingTimeout <= c.PingInterval {
		add(flagsError([]string{"ping-timeout", "ping-interval"}, "the pong deadline %v is not longer than the ping period %v: every client would time out", c.PingTimeout, c.PingInterval))
	}

	for _, n := range []struct {
		flag string
		v    int
		min  int
	}{
		{"channel-limit", c.ChannelLimit, 0},
		{"outbound-queue-limit", c.OutboundQueueLimit, 64 << 10},
		{"max-header-bytes", c.MaxHeaderBytes, 4 << 10},
		{"max-connections", c.MaxConnections, 0},
		{"max-connections-per-address", c.MaxConnectionsPerAddress, 0},
		{"max-handshakes-per-second", c.MaxHandshakesPerSecond, 0},
		{"inbound-message-burst", c.InboundMessageBurst, 0},
		{"inbound-byte-burst", c.InboundByteBurst, 0},
	} {
		if n.v < n.min {
			if n.min == 0 {
				add(flagError(n.flag, "%d is negative; use 0 for no limit", n.v))
			} else {
				add(flagError(n.flag, "%d: must be at least %d", n.v, n.min))
			}
		}
	}
	for _, r := range []struct {
		flag string
		v    float64
	}{{"inbound-message-rate", c.InboundMessageRate}, {"inbound-byte-rate", c.InboundByteRate}} {
		if r.v < 0 {
			add(flagError(r.flag, "%v is negative; use 0 for no limit", r.v))
		}
	}
	if h := c.ClientAddressHeader; h != "" && strings.ContainsAny(h, " :\t\r\n") {
		add(flagError("client-address-header", "%q is not a header name (e.g. X-Forwarded-For)", h))
	}

	add(c.checkAuth())
	if c.Broker != "" && c.Broker != "memory" && c.AuthKey == "" && c.AuthPrivateKeyFile == "" && !c.AllowRandomAuthKey {
		add(flagsError([]string{"auth-key", "broker"}, "a broker is set but no auth key: each instance would sign tokens with a random key of its own, "+
			"and a client that reconnects to another instance loses its login. Give every instance the same -auth-key "+
			"(or -auth-private-key-file and -auth-public-key-file), or set -allow-random-auth-key to accept that"))
	}
	add(checkTLS(c.TLSCert, c.TLSKey))
	if c.ClientJS != "" {
		if _, err := os.Stat(c.ClientJS); err != nil {
			add(flagError("client-js", "%v", err))
		}
	}
	return errors.Join(errs...)
}

// checkAddr checks a listen address ("host:port", ":port").
func checkAddr(flag, addr string) error {
	_, port, err := net.SplitHostPort(addr)
	if err != nil {
		return flagError(flag, "%q is not host:port (e.g. :8000 or 127.0.0.1:8000)", addr)
	}
	if n, err := strconv.Atoi(port); err != nil || n < 0 || n > 65535 {
		if _, err := net.LookupPort("tcp", port); err != nil {
			return flagError(flag, "%q: port %q is not a port number", addr, port)
		}
	}
	return nil
}

// checkOrigins checks the reference's origins syntax: space-separated
// host:port entries, either part * for any.
func checkOrigins(origins string) error {
	fields := strings.Fields(origins)
	if len(fields) == 0 {
		return flagError("origins", "empty: use *:* for any origin, or entries such as \"example.com:443 *.example.com:*\"")
	}
	for _, f := range fields {
		i := strings.LastIndexByte(f, ':')
		if i <= 0 || strings.Contains(f, "://") {
			return flagError("origins", "%q is not host:port (use example.com:443, example.com:* or *:*)", f)
		}
		port := f[i+1:]
		if n, err := strconv.Atoi(port); port != "*" && (err != nil || n < 1 || n > 65535) {
			return flagError("origins", "%q: port %q is not a number or *", f, port)
		}
	}
	return nil
}

// asymmetric reports whether a JWT algorithm needs a key pair.
func asymmetric(alg string) bool {
	return strings.HasPrefix(alg, "RS") || strings.HasPrefix(alg, "PS") || strings.HasPrefix(alg, "ES")
}

var jwtAlgorithms = []string{"HS256", "HS384", "HS512", "RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512"}

// checkAuth checks that the token settings can sign and verify a token.
func (c *config) checkAuth() error {
	alg := c.AuthAlgorithm
	if alg != "" && !slices.Contains(jwtAlgorithms, alg) {
		return flagError("auth-algorithm", "%q: use one of %s", alg, strings.Join(jwtAlgorithms, ", "))
	}
	pair := c.AuthPrivateKeyFile != "" || c.AuthPublicKeyFile != ""
	switch {
	case c.AuthPrivateKeyFile == "" && c.AuthPublicKeyFile != "" || c.AuthPrivateKeyFile != "" && c.AuthPublicKeyFile == "":
		return flagsError([]string{"auth-private-key-file", "auth-public-key-file"}, "give both or neither")
	case pair && c.AuthKey != "":
		return flagsError([]string{"auth-key", "auth-private-key-file"}, "give an HMAC key or a key pair, not both")
	case asymmetric(alg) && !pair:
		return flagsError([]string{"auth-algorithm", "auth-private-key-file", "auth-public-key-file"},
			"%s signs with a key pair: give -auth-private-key-file and -auth-public-key-file (-auth-key is for HS256, HS384 and HS512)", alg)
	case pair && alg == "":
		return flagsError([]string{"auth-algorithm", "auth-private-key-file"}, "with a key pair, say which algorithm signs tokens (RS256, ES256…)")
	case pair && !asymmetric(alg):
		return flagsError([]string{"auth-algorithm", "auth-private-key-file"}, "%s is an HMAC algorithm: it cannot use a key pair; use RS256, PS256 or ES256…", alg)
	}
	o := auth.Options{Key: []byte(c.AuthKey), Algorithm: alg, DefaultExpiry: c.AuthDefaultExpiry}
	if pair {
		var err error
		if o.PrivateKeyPEM, err = os.ReadFile(c.AuthPrivateKeyFile); err != nil {
			return flagError("auth-private-key-file", "%v", err)
		}
		if o.PublicKeyPEM, err = os.ReadFile(c.AuthPublicKeyFile); err != nil {
			return flagError("auth-public-key-file", "%v", err)
		}
	}
	keyFlags := []string{"auth-key"}
	if pair {
		keyFlags = []string{"auth-private-key-file", "auth-public-key-file", "auth-algorithm"}
	}
	j, err := auth.New(o)
	if err != nil {
		return flagsError(keyFlags, "%v", err)
	}
	// The settings must be able to sign a token and verify it again.
	ctx := context.Background()
	token, _, err := j.Sign(ctx, map[string]any{"scserver": "start-up check"}, nil)
	if err != nil {
		return flagsError(keyFlags, "cannot sign a token: %v", err)
	}
	if _, err := j.Verify(ctx, token, time.Now()); err != nil {
		return flagsError(keyFlags, "a token signed with these settings does not verify (do the keys belong together?): %v", err)
	}
	return nil
}

// checkTLS checks that the certificate and key load together.
func checkTLS(cert, key string) error {
	switch {
	case cert == "" && key == "":
		return nil
	case cert == "" || key == "":
		return flagsError([]string{"tls-cert", "tls-key"}, "give both or neither")
	}
	if _, err := tls.LoadX509KeyPair(cert, key); err != nil {
		return flagsError([]string{"tls-cert", "tls-key"}, "%v", err)
	}
	return nil
}
