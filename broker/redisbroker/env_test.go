package redisbroker_test

import (
	"context"
	"fmt"
	"os"
	"sync/atomic"
	"testing"
	"time"

	"github.com/socketcluster-go/socketcluster/broker/brokertest"
	"github.com/socketcluster-go/socketcluster/broker/redisbroker"
)

// requireRedis returns the URL of the shared test Redis, or skips.
func requireRedis(t testing.TB) string {
	t.Helper()
	return brokertest.URL(t, "redis")
}

var prefixSeq atomic.Int64

// uniquePrefix namespaces a test's channels on the shared server.
func uniquePrefix() string {
	return fmt.Sprintf("sctest:%d:%d:%d:", os.Getpid(), time.Now().UnixNano(), prefixSeq.Add(1))
}

// redisServer is a redis-server process started by a test.
type redisServer = brokertest.Process

func requireBinary(t testing.TB, name string) string {
	t.Helper()
	return brokertest.Binary(t, "redis", name)
}

// startRedisServer starts redis-server on 127.0.0.1 and a free port with
// no persistence, and stops it (by PID) when the test ends.
func startRedisServer(t testing.TB, extra ...string) *redisServer {
	t.Helper()
	return brokertest.StartProcess(t, "redis", extra...)
}

// handler records what a broker reports.
type handler = brokertest.Recorder

func newHandler(channels ...string) *handler { return brokertest.NewRecorder(channels...) }

// waitUntil polls cond for up to d.
func waitUntil(t testing.TB, d time.Duration, what string, cond func() bool) {
	t.Helper()
	brokertest.WaitUntil(t, d, what, cond)
}

func start(t testing.TB, url string, opts redisbroker.Options, h *handler) *redisbroker.Broker {
	t.Helper()
	b, err := redisbroker.New(url, opts)
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
