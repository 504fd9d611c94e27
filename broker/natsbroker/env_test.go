package natsbroker_test

import (
	"context"
	"fmt"
	"os"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

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

// cleanupStreams deletes, when the test ends, the history streams made
// with prefix on the server at url.
func cleanupStreams(t testing.TB, url, prefix string) {
	t.Helper()
	t.Cleanup(func() {
		nc, err := nats.Connect(url)
		if err != nil {
			return
		}
		defer nc.Close()
		js, err := jetstream.New(nc)
		if err != nil {
			return
		}
		c, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		want := strings.ToUpper(strings.ReplaceAll(prefix, ".", "_")) + "_H"
		names := js.StreamNames(c)
		var del []string
		for n := range names.Name() {
			if strings.HasPrefix(n, want) {
				del = append(del, n)
			}
		}
		for _, n := range del {
			_ = js.DeleteStream(c, n)
		}
	})
}
