package sccbroker_test

import (
	"context"
	"net"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	sc "github.com/socketcluster-go/socketcluster"
	"github.com/socketcluster-go/socketcluster/broker/sccbroker"
)

// fakeServer serves a bare socketcluster-go server set up by setup.
func fakeServer(t *testing.T, setup func(*sc.Server)) (url string, port int) {
	t.Helper()
	srv, err := sc.New(sc.Options{Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	setup(srv)
	l := listen(t)
	serve(t, l, srv.HTTPServer(srv))
	t.Cleanup(func() { _ = srv.Close(context.Background()) })
	return "ws://" + l.Addr().String() + "/socketcluster/", port0(l.Addr().String())
}

func port0(addr string) int {
	_, p, _ := net.SplitHostPort(addr)
	n, _ := strconv.Atoi(p)
	return n
}

// A state server slower than StateAckTimeout: the join is retried
// (counted) until an answer comes in time. A broker slower than
// BrokerAckTimeout: its publishes are counted as failures, and the
// worker goes on.
func TestSlowStateAndBroker(t *testing.T) {
	t.Parallel()
	_, brokerPort := fakeServer(t, func(srv *sc.Server) {
		_ = srv.SetMiddleware(sc.MiddlewareInbound, func(ctx context.Context, a *sc.Action) error {
			if a.Type == sc.ActionPublishIn {
				select { // far slower than the worker's BrokerAckTimeout
				case <-time.After(time.Second):
				case <-ctx.Done():
				}
			}
			return nil
		})
	})
	var calls atomic.Int32
	stateURL, _ := fakeServer(t, func(srv *sc.Server) {
		srv.HandleProcedure("sccWorkerJoinCluster", func(r *sc.Request) {
			go func() {
				if calls.Add(1) <= 2 {
					time.Sleep(600 * time.Millisecond) // past StateAckTimeout
				}
				_ = r.End(map[string]any{"sccBrokerURIs": []string{"ws://127.0.0.1:" + strconv.Itoa(brokerPort)}, "time": 1})
			}()
		})
	})
	b, err := sccbroker.New(stateURL, sccbroker.Options{
		RetryDelay: 100 * time.Millisecond, StateAckTimeout: 200 * time.Millisecond,
		BrokerAckTimeout: 200 * time.Millisecond, Logger: quiet,
	})
	if err != nil {
		t.Fatal(err)
	}
	w, err := sc.New(sc.Options{Broker: b, Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = w.Close(context.Background()) })
	eventually(t, "joined after slow answers", func() bool { return b.Stats().Joined })
	if s := b.Stats(); s.JoinFailures < 2 {
		t.Fatalf("slow joins not counted: %+v", s)
	}
	eventually(t, "the broker connection", func() bool {
		_ = w.Exchange().InvokePublish(context.Background(), "x", 1)
		return b.Stats().Published > 0
	})
	eventually(t, "unacknowledged publishes counted", func() bool { return b.Stats().PublishFailures > 0 })
}
