package sctest

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"testing"
	"time"

	sc "github.com/socketcluster-go/socketcluster"
)

// Helpers shared by the tests of the server (package socketcluster_test)
// and of the client package. This file imports the server package, so
// only external tests of the server may use it: the server package itself
// must not import sctest.

// QuietLogger discards everything: the Logger of the servers StartServer
// starts when none is given.
var QuietLogger = slog.New(slog.NewTextHandler(io.Discard, nil))

// StartServer starts a server with opts on a loopback listener
// (ListenTCP on 127.0.0.1:0, served by Serve: with OwnDescriptors the
// upgrades are accepted without net/http) and returns it with its address (host:port). The Logger is
// QuietLogger unless opts has one. It registers an "echo" procedure first,
// answering with the invoke's data, so that tests can use an echo as a
// barrier: the server handles a socket's messages in order, so once the
// echo's answer is back every earlier message was processed. setup runs
// before the server accepts connections.
//
// The server is closed when the test ends (after what the test registered
// with Cleanup later, such as its clients); the test fails if Close fails
// or Serve does not then return http.ErrServerClosed within
// DefaultTimeout.
func StartServer(tb testing.TB, opts sc.Options, setup ...func(*sc.Server)) (*sc.Server, string) {
	tb.Helper()
	if opts.Logger == nil {
		opts.Logger = QuietLogger
	}
	srv, err := sc.New(opts)
	if err != nil {
		tb.Fatalf("socketcluster.New: %v", err)
	}
	srv.HandleProcedure("echo", func(r *sc.Request) { _ = r.End(r.Data) })
	for _, f := range setup {
		f(srv)
	}
	// As ListenAndServe and scserver listen: with OwnDescriptors, the
	// upgrades are then accepted without net/http (Server.UpgradeListener).
	l, err := srv.ListenTCP("127.0.0.1:0")
	if err != nil {
		tb.Fatalf("listen: %v", err)
	}
	served := make(chan error, 1)
	go func() { served <- srv.Serve(l) }()
	tb.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), DefaultTimeout)
		defer cancel()
		if err := srv.Close(ctx); err != nil {
			tb.Errorf("server Close: %v", err)
		}
		select {
		case err := <-served:
			if !errors.Is(err, http.ErrServerClosed) {
				tb.Errorf("Serve returned %v", err)
			}
		case <-time.After(DefaultTimeout):
			tb.Errorf("Serve did not return after Close")
		}
	})
	return srv, l.Addr().String()
}

// Next reads one item from a consumer (of the server or of the client:
// they are the same type), waiting up to DefaultTimeout, or fails the
// test.
func Next[T any](tb testing.TB, c *sc.Consumer[T]) T {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), DefaultTimeout)
	defer cancel()
	v, err := c.Next(ctx)
	if err != nil {
		var zero T
		tb.Fatalf("waiting for %T: %v", zero, err)
	}
	return v
}

// Eventually polls cond every 2ms until it holds, or fails the test after
// DefaultTimeout.
func Eventually(tb testing.TB, what string, cond func() bool) {
	tb.Helper()
	deadline := time.Now().Add(DefaultTimeout)
	for !cond() {
		if time.Now().After(deadline) {
			tb.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

// AsError requires err to be an *socketcluster.Error with the given name,
// and returns it.
func AsError(tb testing.TB, err error, name string) *sc.Error {
	tb.Helper()
	var e *sc.Error
	if !errors.As(err, &e) {
		tb.Fatalf("want *Error %s, got %T %v", name, err, err)
	}
	if e.Name != name {
		tb.Fatalf("want error name %s, got %q (%v)", name, e.Name, e)
	}
	return e
}

// Context returns a context that ends after DefaultTimeout, or when the
// test ends.
func Context(tb testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), DefaultTimeout)
	tb.Cleanup(cancel)
	return ctx
}
