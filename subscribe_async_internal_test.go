package socketcluster

import (
	"context"
	"testing"
)

// TestSubscribeFastPathAllocs: a subscribe of a channel that this
// instance already has (another local socket is in it) needs no broker
// round-trip; it completes in the caller and stays allocation-light. The
// bound is generous: it catches a goroutine or a growing queue per
// subscribe, not a single extra allocation. Serial: testing.AllocsPerRun
// refuses to run in a parallel test (it counts the whole process).
func TestSubscribeFastPathAllocs(t *testing.T) {
	srv, err := New(Options{Logger: discardLogger})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = srv.Close(context.Background()) })
	join(t, dummySocket(srv), "c")
	s := dummySocket(srv)
	answered := 0
	reply := func(err error) {
		if err != nil {
			t.Fatal(err)
		}
		answered++
	}
	allocs := testing.AllocsPerRun(200, func() {
		s.subscribeAsync("c", nil, reply)
		if !s.leave("c") {
			t.Fatal("leave: not subscribed")
		}
	})
	if answered != 201 {
		t.Fatalf("answered %d subscribes synchronously, want 201", answered)
	}
	if allocs > 20 {
		t.Errorf("%.1f allocations per fast-path subscribe and leave, want at most 20", allocs)
	}
	t.Logf("%.1f allocations per fast-path subscribe and leave", allocs)
}
