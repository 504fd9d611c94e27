//go:build linux

package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"time"

	"github.com/socketcluster-go/socketcluster/internal/uring"
)

// runFloor serves the mini server (miniserver.go) until ctx ends, printing
// "READY <port>" on stdout once it listens. It is the reference point of the
// head-to-head (bench/headtohead.sh): a server that does nothing but route,
// so "our CPU per delivery / the floor's" says how much a real server adds
// to the system calls every server must make.
func runFloor(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("scbench floor", flag.ContinueOnError)
	fs.SetOutput(stderr)
	listen := fs.String("listen", "127.0.0.1:0", "`address` to listen on (port 0: any free port, printed as READY <port>)")
	coalesce := fs.Bool("coalesce", false, "append deliveries to each subscriber's output and write it once the publisher's input is drained (the generator's ceiling) instead of one write per delivery (the floor)")
	useRing := fs.Bool("uring", false, "send each publication to its subscribers with one io_uring_enter (Linux) instead of a write(2) per delivery: measures what batching many sockets' writes per system call saves")
	ping := fs.Duration("ping", 8*time.Second, "interval between \"\" pings (0: none)")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	if fs.NArg() > 0 {
		fmt.Fprintln(stderr, "scbench floor: unexpected arguments")
		return 2
	}
	ln, err := net.Listen("tcp", *listen)
	if err != nil {
		fmt.Fprintf(stderr, "scbench floor: %v\n", err)
		return 1
	}
	s := newMiniServer(*ping, *coalesce)
	if *useRing {
		r, err := uring.New(4096)
		if err != nil {
			fmt.Fprintf(stderr, "scbench floor: -uring: %v\n", err)
			return 1
		}
		defer r.Close()
		s.ring = r
	}
	srv := &http.Server{Handler: s, ReadHeaderTimeout: 10 * time.Second}
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ln) }()
	fmt.Fprintf(stdout, "READY %d\n", ln.Addr().(*net.TCPAddr).Port)
	select {
	case <-ctx.Done():
	case err := <-done:
		fmt.Fprintf(stderr, "scbench floor: %v\n", err)
		s.close()
		return 1
	}
	srv.Close()
	s.close()
	return 0
}
