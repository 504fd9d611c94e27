package sccbroker_test

import (
	"context"
	"slices"
	"sync/atomic"
	"testing"
	"time"

	sc "github.com/socketcluster-go/socketcluster"
	"github.com/socketcluster-go/socketcluster/broker/sccbroker"
)

// orderFixture is a worker joined to a fake scc-state whose join handler
// is the test's, and two bare brokers.
type orderFixture struct {
	b        *sccbroker.Broker
	a, bb    string // broker URLs
	stateSck atomic.Pointer[sc.Socket]
}

func newOrderFixture(t *testing.T, onJoin func(f *orderFixture, r *sc.Request)) *orderFixture {
	t.Helper()
	f := &orderFixture{}
	f.a, _ = fakeServer(t, func(*sc.Server) {})
	f.bb, _ = fakeServer(t, func(*sc.Server) {})
	stateURL, _ := fakeServer(t, func(srv *sc.Server) {
		srv.HandleProcedure("sccWorkerJoinCluster", func(r *sc.Request) {
			f.stateSck.Store(r.Socket)
			// Not in the socket's reader: the handler waits for the
			// worker's acknowledgement, which that reader reads.
			go onJoin(f, r)
		})
	})
	b, err := sccbroker.New(stateURL, sccbroker.Options{RetryDelay: 100 * time.Millisecond, Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	f.b = b
	w, err := sc.New(sc.Options{Broker: b, Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = w.Close(context.Background()) })
	eventually(t, "joined", func() bool { return b.Stats().Joined })
	return f
}

// push sends a broker list update from scc-state and waits for the
// worker's acknowledgement (sent once the list is handled).
func (f *orderFixture) push(t *testing.T, s *sc.Socket, procedure string, list []string, time float64) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	if _, err := s.Invoke(ctx, procedure, map[string]any{"sccBrokerURIs": list, "time": time}); err != nil {
		t.Error(err)
	}
}

func (f *orderFixture) requireList(t *testing.T, what string, want []string) {
	t.Helper()
	if got := f.b.Brokers(); !slices.Equal(got, want) {
		t.Fatalf("%s: broker list %v, want %v", what, got, want)
	}
}

// scc-state answers a worker's join with the broker list of time 1, but
// a newer list (time 2) reaches the worker first: the update and the join
// answer are handled by different goroutines, so a list scc-state sent
// after the answer can be handled before it. The worker keeps the newer
// list; the older answer does not overwrite it. Older updates that come
// afterwards are ignored, newer ones applied.
func TestJoinAnswerThenNewerListKeepsTheNewer(t *testing.T) {
	t.Parallel()
	var l1, l2 []string
	f := newOrderFixture(t, func(f *orderFixture, r *sc.Request) {
		l1, l2 = []string{f.a}, []string{f.a, f.bb}
		f.push(t, r.Socket, "sccBrokerJoinCluster", l2, 2)
		_ = r.End(map[string]any{"sccBrokerURIs": l1, "sccWorkerURIs": []string{}, "time": 1})
	})
	f.requireList(t, "after the join", l2)
	if s := f.b.Stats(); s.Brokers != 2 || s.BrokerUpdates != 1 {
		t.Fatalf("stats %+v: want the newer list applied once and the join answer not applied", s)
	}
	sock := f.stateSck.Load()
	f.push(t, sock, "sccBrokerLeaveCluster", l1, 1.5) // older than the list applied
	f.requireList(t, "after an older update", l2)
	f.push(t, sock, "sccBrokerLeaveCluster", l1, 3)
	f.requireList(t, "after a newer update", l1)
}

// The reverse: the join answer (time 5) is handled first, then an update
// made before it (time 4) comes: it is older than the list applied and is
// ignored (the worker used to start again from -1 after a join and
// applied any update that followed).
func TestOlderListAfterJoinAnswerIgnored(t *testing.T) {
	t.Parallel()
	var l1, l2 []string
	f := newOrderFixture(t, func(f *orderFixture, r *sc.Request) {
		l1, l2 = []string{f.a}, []string{f.a, f.bb}
		_ = r.End(map[string]any{"sccBrokerURIs": l2, "sccWorkerURIs": []string{}, "time": 5})
	})
	f.requireList(t, "after the join", l2)
	sock := f.stateSck.Load()
	f.push(t, sock, "sccBrokerLeaveCluster", l1, 4)
	f.requireList(t, "after an update older than the join answer", l2)
	// An update of the join answer's own time was made after it (scc-state
	// answers a join before it sends that millisecond's updates).
	f.push(t, sock, "sccBrokerLeaveCluster", l1, 5)
	f.requireList(t, "after an update of the join answer's time", l1)
}

// sccBrokerJoinCluster and sccBrokerLeaveCluster are handled by two
// goroutines: lists sent at once, alternating the two, must end with
// the newest applied, whatever order they are handled in (each is checked against the applied
// list and applied under one lock, listMu).
func TestAlternatingUpdatesEndWithTheNewest(t *testing.T) {
	t.Parallel()
	f := newOrderFixture(t, func(f *orderFixture, r *sc.Request) {
		_ = r.End(map[string]any{"sccBrokerURIs": []string{f.a}, "sccWorkerURIs": []string{}, "time": 1})
	})
	sock := f.stateSck.Load()
	lists := [][]string{{f.a}, {f.a, f.bb}}
	for round := range 20 {
		const n = 10
		done := make(chan struct{}, n)
		base := float64(10 + round*n)
		for k := range n {
			procedure := "sccBrokerJoinCluster"
			if k%2 == 1 {
				procedure = "sccBrokerLeaveCluster"
			}
			go func() { // sent and handled in any order
				defer func() { done <- struct{}{} }()
				f.push(t, sock, procedure, lists[k%2], base+float64(k))
			}()
		}
		for range n {
			<-done
		}
		f.requireList(t, "after alternating updates", lists[(n-1)%2])
	}
}
