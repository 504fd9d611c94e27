package natsbroker_test

import (
	"context"
	"fmt"
	"os"
	"sync/atomic"
	"testing"
	"time"

	"github.com/socketcluster-go/socketcluster/broker/brokertest"
	"github.com/socketcluster-go/socketcluster/broker/natsbroker"
)

// requireNATS returns the URL of the shared test server, or skips.
func requireNATS(t testing.TB) string {
	t.Helper()
	return brokertest.URL(t, "nats")
}

var prefixSeq atomic.Int64

// uniquePrefix namespaces a test's subjects on the shared server.
func uniquePrefix() string {
	return fmt.Sprintf("sctest.p%d_%d_%d", os.Getpid(), time.Now().UnixNano(), prefixSeq.Add(1))
}

// startNATSServer starts a nats-server of the test's own.
func startNATSServer(t testing.TB) *brokertest.Process {
	t.Helper()
	return brokertest.StartProcess(t, "nats")
}

// handler records what a broker reports.
type handler = brokertest.Recorder

func newHandler(channels ...string) *handler { return brokertest.NewRecorder(channels...) }

func waitUntil(t testing.TB, d time.Duration, what string, cond func() bool) {
	t.Helper()
	brokertest.WaitUntil(t, d, what, cond)
}

func start(t testing.TB, url string, opts natsbroker.Options, h *handler) *natsbroker.Broker {
	t.Helper()
	b, err := natsbroker.New(url, opts)
	if err != nil {
		t.Fatal(err)
	}
	brokertest.Start(t, b, h)
	return b
}

func ctx(t testing.TB) context.Context {
	c, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	t.Cleanup(cancel)
	return c
}
