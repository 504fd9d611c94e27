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
	"os"
)

func main() { os.Exit(run(context.Background(), os.Args[1:], os.Getenv, os.Stdout, os.Stderr)) }
