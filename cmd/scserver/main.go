// Command scserver is a SocketCluster server: the socketcluster-go library
// with the batteries an operator expects. Every flag also reads an SC_…
// environment variable and a key of the -config JSON file; precedence is
// flag, then environment, then file, then default. Settings that cannot
// work (a key pair missing for -auth-algorithm RS256, -origins that are
// not host:port, negative durations…) are all reported at start, each
// naming its flag, and scserver exits with code 2; failures at run time
// (address in use, broker unreachable) exit with 1.
//
//	scserver -addr :8000 -broker redis://127.0.0.1:6379 -auth-key "$KEY"
//
// Endpoints: /socketcluster/ (WebSocket), /healthz (liveness), /readyz
// (readiness: 503 while draining or before the broker is ready), /metrics
// (Prometheus; on -metrics-addr when set), / (a demo page using the
// official browser client, embedded; -demo=false turns it and its echo
// procedure off). With -admin-password (SC_ADMIN_PASSWORD) an admin page
// on -admin-addr (default 127.0.0.1:9200): live figures, busiest
// channels, socket lookup and disconnect, the cluster's instances
// (internal/admin).
//
// HTTPS and wss:// with -tls-cert and -tls-key (PEM; TLS 1.2 or later),
// reloaded on SIGHUP and when the files change. Limits: -max-connections,
// -max-connections-per-address (with -client-address-header behind a
// proxy), -max-handshakes-per-second, -inbound-message-rate and
// -inbound-byte-rate (close 4101).
//
// SIGTERM or SIGINT drains: /readyz turns 503 at once and stays served;
// after -drain-delay (a second signal skips it) every client gets a close
// frame with code 1001, and the process exits once they are gone or
// -drain-timeout has passed.
//
// The code: config.go (settings), validate.go (start-up checks), serve.go
// (the app: listeners and drain), endpoints.go (routes), demo.go (the demo
// page and the embedded client), logging.go, tls.go (certificate reload).
package main

import (
	"context"
	"os"
)

func main() { os.Exit(run(context.Background(), os.Args[1:], os.Getenv, os.Stdout, os.Stderr)) }
