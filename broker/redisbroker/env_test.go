package redisbroker_test

import (
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

var (
	newHandler = brokertest.NewRecorder
	waitUntil  = brokertest.WaitUntil // polls cond for up to d
	ctx        = brokertest.Context
)

func start(t testing.TB, url string, opts redisbroker.Options, h *handler) *redisbroker.Broker {
	t.Helper()
	b, err := redisbroker.New(url, opts)
	if err != nil {
		t.Fatal(err)
	}
	brokertest.Start(t, b, h)
	return b
}
