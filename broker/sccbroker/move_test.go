package sccbroker_test

import (
	"context"
	"encoding/json"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	sc "github.com/socketcluster-go/socketcluster"
	"github.com/socketcluster-go/socketcluster/broker/sccbroker"
	"github.com/socketcluster-go/socketcluster/scc/mapping"
)

// A channel moves from broker A to broker B while A's connection is
// still busy (its loop waits for A to confirm another subscription), so
// A has not been told to unsubscribe yet. What A still sends on the
// channel must not be delivered after what B sent: the subscriber would
// see the publisher's messages out of order. It is dropped and counted.
func TestMovedChannelOldBrokerDropped(t *testing.T) {
	t.Parallel()
	release := make(chan struct{})
	held := make(chan struct{}, 1)
	var slow atomic.Pointer[string] // the channel whose subscription A holds up
	var srvA, srvB *sc.Server
	urlA, _ := fakeServer(t, func(srv *sc.Server) {
		srvA = srv
		_ = srv.SetMiddleware(sc.MiddlewareInbound, func(ctx context.Context, a *sc.Action) error {
			if x := slow.Load(); a.Type == sc.ActionSubscribe && x != nil && a.Channel == *x {
				select {
				case held <- struct{}{}:
				default:
				}
				select {
				case <-release:
				case <-ctx.Done():
				}
			}
			return nil
		})
	})
	urlB, _ := fakeServer(t, func(srv *sc.Server) { srvB = srv })
	urlC, _ := fakeServer(t, func(*sc.Server) {})

	// ch: on A, then on B. x: on C, then on A (A holds its subscription
	// up). y: on A throughout (tells when A's packets have arrived).
	m, err := mapping.New(mapping.EngineSkeletonRendezvous)
	if err != nil {
		t.Fatal(err)
	}
	l1, l2, l3 := []string{urlA, urlC}, []string{urlA}, []string{urlA, urlB}
	site := func(sites []string, ch string) string {
		m.SetSites(sites)
		s, _ := m.FindSite(ch)
		return s
	}
	var ch, x, y string
	for i := 0; i < 10000 && (ch == "" || x == "" || y == ""); i++ {
		name := fmt.Sprintf("room-%d", i)
		switch {
		case ch == "" && site(l1, name) == urlA && site(l3, name) == urlB:
			ch = name
		case x == "" && site(l1, name) == urlC && site(l3, name) == urlA:
			x = name
		case y == "" && site(l1, name) == urlA && site(l3, name) == urlA:
			y = name
		}
	}
	if ch == "" || x == "" || y == "" {
		t.Fatalf("no channel names with the placements needed (%q %q %q)", ch, x, y)
	}
	slow.Store(&x)

	var stateSock atomic.Pointer[sc.Socket]
	stateURL, _ := fakeServer(t, func(srv *sc.Server) {
		srv.HandleProcedure("sccWorkerJoinCluster", func(r *sc.Request) {
			stateSock.Store(r.Socket)
			_ = r.End(map[string]any{"sccBrokerURIs": l1, "sccWorkerURIs": []string{}, "time": 1})
		})
	})
	push := func(list []string, time int) {
		t.Helper()
		ctx, cancel := context.WithTimeout(context.Background(), wait)
		defer cancel()
		if _, err := stateSock.Load().Invoke(ctx, "sccBrokerJoinCluster", map[string]any{"sccBrokerURIs": list, "time": time}); err != nil {
			t.Fatal(err)
		}
	}

	l := listen(t)
	b, err := sccbroker.New(stateURL, sccbroker.Options{
		InstancePort: port(l), RetryDelay: 100 * time.Millisecond, BrokerAckTimeout: wait, Logger: quiet,
	})
	if err != nil {
		t.Fatal(err)
	}
	w, err := sc.New(sc.Options{Broker: b, Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	serve(t, l, w.HTTPServer(w))
	t.Cleanup(func() { _ = w.Close(context.Background()) })
	t.Cleanup(func() { close(release) }) // first: A lets go of the held subscription
	eventually(t, "joined with 2 brokers", func() bool { s := b.Stats(); return s.Joined && s.Brokers == 2 })

	col := subscribeAll(t, "ws://"+l.Addr().String()+"/socketcluster/", []string{ch, x, y})
	eventually(t, "every channel confirmed", func() bool { return b.Stats().Unconfirmed == 0 })

	push(l2, 2) // x moves to A, which holds it up: A's connection is busy
	select {
	case <-held:
	case <-time.After(wait):
		t.Fatal("A never saw the subscription of the moved channel")
	}
	push(l3, 3) // ch moves to B; A cannot unsubscribe it yet
	eventually(t, "ch confirmed on B", func() bool { s := b.Stats(); return s.Brokers == 2 && s.Unconfirmed == 1 })

	publish := func(srv *sc.Server, channel string, i int) {
		t.Helper()
		packet := json.RawMessage(fmt.Sprintf(`{"sender":"another-worker","messages":[{"p":0,"i":%d}]}`, i))
		if err := srv.Exchange().InvokePublish(context.Background(), channel, packet); err != nil {
			t.Fatal(err)
		}
	}
	has := func(channel string, i int) func() bool {
		return func() bool {
			col.mu.Lock()
			defer col.mu.Unlock()
			for _, m := range col.got[channel] {
				if m.I == i {
					return true
				}
			}
			return false
		}
	}
	publish(srvB, ch, 2)
	eventually(t, "message 2 from B", has(ch, 2))
	publish(srvA, ch, 1) // published by a worker still on the old list
	publish(srvA, y, 100)
	eventually(t, "A's later packet on another channel", has(y, 100))
	publish(srvB, ch, 3)
	eventually(t, "message 3 from B", has(ch, 3))

	col.mu.Lock()
	got := append([]msg(nil), col.got[ch]...)
	col.mu.Unlock()
	for k := 1; k < len(got); k++ {
		if got[k].I <= got[k-1].I {
			t.Fatalf("%s: %d after %d: the old broker's message was delivered after the new one's (received %v)", ch, got[k].I, got[k-1].I, got)
		}
	}
	if s := b.Stats(); s.StaleDropped != 1 {
		t.Fatalf("StaleDropped = %d, want 1 (A's message on the moved channel)", s.StaleDropped)
	}
}
