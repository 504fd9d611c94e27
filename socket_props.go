package socketcluster

import (
	"net"
	"strconv"
	"strings"
)

// Secure, Host and SourcePort describe how the client reached the server.
// The reference documents secure, host and sourcePort as properties of its
// server object, but its code never sets them; here they are read from
// each socket's connection, since one Go server may serve several
// listeners (plain and TLS, several ports). They read what this process
// saw: behind a proxy that terminates TLS, Secure is false (forwarded
// headers such as X-Forwarded-Proto are not trusted; read them from
// Request if your proxy sets them).

// Secure reports whether the connection came over TLS (wss://).
func (s *Socket) Secure() bool { return s.conn.IsTLS() }

// Host returns the host name the client connected to: the upgrade
// request's Host header without its port.
func (s *Socket) Host() string {
	host, _ := splitHostPort(s.request.host())
	return host
}

// SourcePort returns the port the client connected to: the port of the
// upgrade request's Host header, else 443 for a TLS connection and 80
// otherwise (the defaults that a client leaves out of the header).
func (s *Socket) SourcePort() int {
	_, port := splitHostPort(s.request.host())
	if n, err := strconv.Atoi(port); err == nil && n > 0 && n <= 65535 {
		return n
	}
	if s.Secure() {
		return 443
	}
	return 80
}

// splitHostPort splits "host", "host:port", "[v6]" or "[v6]:port".
func splitHostPort(hostport string) (host, port string) {
	if h, p, err := net.SplitHostPort(hostport); err == nil {
		return h, p
	}
	return strings.TrimSuffix(strings.TrimPrefix(hostport, "["), "]"), ""
}
