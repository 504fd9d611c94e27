//go:build linux

package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/url"
	"os"
	"strconv"
	"strings"
	"time"
)

// Target says where and how to connect. The address is resolved once and
// checked: every address it names must be a loopback address unless
// AllowRemote is set, and the connections go to that resolved address (the
// Host header keeps the name given).
type Target struct {
	Addr        string        // host:port or ws://host:port/path
	AllowRemote bool          // accept non-loopback targets
	ServerPID   int           // the server process to sample (0: none)
	Timeout     time.Duration // connection set-up limit (dial, upgrade, handshake)
	Concurrency int           // connections set up in parallel
	SrcAddrs    int           // loopback source addresses to spread over (0: auto)
	ReadBuffer  int           // per-connection read buffer
	Quiet       bool          // no progress on stderr
	Log         io.Writer     // where progress goes (stderr)
	CPUProfile  string        // write the generator's CPU profile here
	Pollers     int           // event loops reading the connections (0: GOMAXPROCS/2)
	Proto       string        // protocol: sc or centrifugo
	Label       string        // copied into the result (head-to-head reports)
	Server      string        // server name, copied into the result
	Deflate     bool          // offer permessage-deflate and inflate what comes compressed
	CAFile      string        // wss://: PEM certificates to trust (default: the system's)
	Insecure    bool          // wss://: do not verify the server's certificate
	RxStamps    bool          // latency ends at the kernel's receive stamp, not at the read

	proto *protocol
	// tlsOK says the scenario can hold wss:// connections (conns only);
	// tls is their configuration once resolved.
	tlsOK bool
	tls   *tls.Config

	u        *url.URL
	dialAddr string
	srcs     []*net.TCPAddr
}

func (t *Target) addFlags(fs *flag.FlagSet) {
	fs.StringVar(&t.Addr, "addr", "127.0.0.1:8000", "server `address`: host:port or ws://host:port/path (path defaults to /socketcluster/)")
	fs.BoolVar(&t.AllowRemote, "allow-remote", false, "allow a target that is not a loopback address")
	fs.IntVar(&t.ServerPID, "server-pid", 0, "`pid` of the server process, to report its CPU time and memory from /proc")
	fs.DurationVar(&t.Timeout, "timeout", 10*time.Second, "limit for setting up one connection (dial, upgrade, #handshake, #subscribe)")
	fs.IntVar(&t.Concurrency, "concurrency", 64, "connections set up in parallel")
	fs.IntVar(&t.SrcAddrs, "src-addrs", 0, "spread connections over this many loopback source addresses 127.0.0.2, 127.0.0.3, ... (0: automatic, one per quarter of the ephemeral port range)")
	fs.IntVar(&t.ReadBuffer, "read-buffer", 4096, "read buffer per connection, `bytes`")
	fs.BoolVar(&t.Quiet, "q", false, "no progress output on stderr")
	fs.IntVar(&t.Pollers, "pollers", 0, "event loops (epoll) reading the connections (0: half of GOMAXPROCS, at least 1)")
	fs.StringVar(&t.CPUProfile, "cpuprofile", "", "write the generator's own CPU profile to this `file`")
	fs.StringVar(&t.Proto, "proto", "sc", "protocol the server speaks: sc (SocketCluster v2) or centrifugo (Centrifugo's JSON protocol; default path /connection/websocket)")
	fs.StringVar(&t.Label, "label", "", "a `label` copied into the result line (scbench report groups by it)")
	fs.BoolVar(&t.Deflate, "deflate", false, "offer permessage-deflate as browsers do (the server must accept it, without context takeover) and inflate compressed messages; the generator's own messages stay uncompressed")
	fs.StringVar(&t.Server, "server", "", "the server's `name`, copied into the result line (scbench report's columns)")
	fs.StringVar(&t.CAFile, "ca", "", "wss:// (conns only): trust the certificates in this PEM `file` (default: the system's roots)")
	fs.BoolVar(&t.RxStamps, "rx-stamps", true, "a delivery's or answer's latency ends when the kernel received it (SO_TIMESTAMPNS), not when the generator got round to reading it; false: at the read, the generator's own delay included")
	fs.BoolVar(&t.Insecure, "insecure", false, "wss:// (conns only): do not verify the server's certificate (a self-signed one on loopback)")
}

var errRemote = errors.New("target is not a loopback address (pass -allow-remote to load a remote server)")

// parseTarget turns an -addr value into a WebSocket URL; path is used when
// the address names none.
func parseTarget(addr, path string) (*url.URL, error) {
	if !strings.Contains(addr, "://") {
		addr = "ws://" + addr
	}
	u, err := url.Parse(addr)
	if err != nil {
		return nil, err
	}
	port := "80"
	switch u.Scheme {
	case "ws":
	case "http":
		u.Scheme = "ws"
	case "wss", "https":
		u.Scheme, port = "wss", "443"
	default:
		return nil, fmt.Errorf("scheme %q not supported (ws:// or wss://)", u.Scheme)
	}
	if u.Hostname() == "" {
		return nil, fmt.Errorf("address %q has no host", addr)
	}
	if strings.HasSuffix(u.Host, ":") {
		return nil, fmt.Errorf("address %q has an empty port", addr)
	}
	if u.Port() == "" {
		u.Host = net.JoinHostPort(u.Hostname(), port)
	}
	if u.Path == "" {
		u.Path = path
	}
	return u, nil
}

// resolve parses and checks the address and plans the source addresses for
// n connections. It must be called before dial.
func (t *Target) resolve(ctx context.Context, n int) error {
	if t.Proto == "" {
		t.Proto = "sc"
	}
	pr, err := protocolNamed(t.Proto)
	if err != nil {
		return err
	}
	t.proto = pr
	u, err := parseTarget(t.Addr, pr.path)
	if err != nil {
		return err
	}
	t.tls = nil
	if u.Scheme == "wss" {
		if !t.tlsOK {
			return errors.New("wss:// is supported by the conns scenario only (the others read their sockets with epoll, below TLS)")
		}
		if t.tls, err = t.tlsConfig(u.Hostname()); err != nil {
			return err
		}
	}
	var ips []net.IP
	if ip := net.ParseIP(u.Hostname()); ip != nil {
		ips = []net.IP{ip}
	} else {
		addrs, err := net.DefaultResolver.LookupIPAddr(ctx, u.Hostname())
		if err != nil {
			return err
		}
		for _, a := range addrs {
			ips = append(ips, a.IP)
		}
	}
	if len(ips) == 0 {
		return fmt.Errorf("%s: no address", u.Hostname())
	}
	if !t.AllowRemote {
		for _, ip := range ips {
			if !ip.IsLoopback() {
				return fmt.Errorf("%s (%s): %w", u.Host, ip, errRemote)
			}
		}
	}
	ip := ips[0]
	for _, c := range ips { // prefer IPv4: source spreading works on 127/8
		if c.To4() != nil {
			ip = c
			break
		}
	}
	t.u = u
	t.dialAddr = net.JoinHostPort(ip.String(), u.Port())
	t.srcs = nil
	k := t.SrcAddrs
	if k == 0 && ip.IsLoopback() && ip.To4() != nil {
		// The kernel's search for a free ephemeral port slows down sharply
		// as the range fills (measured here: 45 µs of generator CPU per
		// connection below a quarter of the range, 340 µs at 19 500
		// connections on one address), so spread long before it runs out.
		if per := ephemeralPorts() / 4; n > per {
			k = (n + per - 1) / per
		}
	}
	if k > 0 {
		if !ip.IsLoopback() || ip.To4() == nil {
			return fmt.Errorf("-src-addrs needs an IPv4 loopback target")
		}
		k = min(k, 250)
		for i := range k {
			t.srcs = append(t.srcs, &net.TCPAddr{IP: net.IPv4(127, 0, 0, byte(2+i))})
		}
	}
	return nil
}

// tlsConfig is the client configuration of wss:// connections to host.
func (t *Target) tlsConfig(host string) (*tls.Config, error) {
	cfg := &tls.Config{ServerName: host, MinVersion: tls.VersionTLS12, InsecureSkipVerify: t.Insecure} //nolint:gosec // -insecure is the user's choice, for self-signed loopback servers
	if t.CAFile != "" {
		pem, err := os.ReadFile(t.CAFile)
		if err != nil {
			return nil, fmt.Errorf("-ca: %w", err)
		}
		cfg.RootCAs = x509.NewCertPool()
		if !cfg.RootCAs.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("-ca %s: no PEM certificate in it", t.CAFile)
		}
	}
	return cfg, nil
}

// localAddr returns the source address for connection number i.
func (t *Target) localAddr(i int) net.Addr {
	if len(t.srcs) == 0 {
		return nil
	}
	return t.srcs[i%len(t.srcs)]
}

// ephemeralPorts is the size of the local port range (28232 by default).
func ephemeralPorts() int {
	b, err := os.ReadFile("/proc/sys/net/ipv4/ip_local_port_range")
	if err == nil {
		f := strings.Fields(string(b))
		if len(f) == 2 {
			lo, err1 := strconv.Atoi(f[0])
			hi, err2 := strconv.Atoi(f[1])
			if err1 == nil && err2 == nil && hi > lo {
				return hi - lo + 1
			}
		}
	}
	return 28232
}

// progress prints a line on stderr unless quiet.
func (t *Target) progress(format string, args ...any) {
	if !t.Quiet && t.Log != nil {
		fmt.Fprintf(t.Log, "scbench: "+format+"\n", args...)
	}
}
