package natsbroker_test

import (
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

var (
	newHandler = brokertest.NewRecorder
	waitUntil  = brokertest.WaitUntil // polls cond for up to d
	ctx        = brokertest.Context
)

func start(t testing.TB, url string, opts natsbroker.Options, h *handler) *natsbroker.Broker {
	t.Helper()
	b, err := natsbroker.New(url, opts)
	if err != nil {
		t.Fatal(err)
	}
	brokertest.Start(t, b, h)
	return b
}
