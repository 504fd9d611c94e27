package hseq

import (
	"context"
	"errors"
	"strconv"
	"testing"
	"time"

	"github.com/socketcluster-go/socketcluster/broker"
)

// store is a channel history the Seq reads.
type store struct {
	pubs  []broker.Publication
	top   broker.Position
	fail  bool
	reads int
}

func (st *store) add(epoch string, n int) []broker.Publication {
	var out []broker.Publication
	for range n {
		if st.top.Epoch != epoch {
			st.top = broker.Position{Epoch: epoch}
			st.pubs = nil
		}
		st.top.Offset++
		p := broker.Publication{Position: st.top, Payload: []byte(strconv.FormatUint(st.top.Offset, 10))}
		st.pubs = append(st.pubs, p)
		out = append(out, p)
	}
	return out
}

func (st *store) read(_ context.Context, _ string, q broker.HistoryQuery, _ broker.HistoryOptions) (broker.HistoryResult, error) {
	st.reads++
	if st.fail {
		return broker.HistoryResult{}, errors.New("down")
	}
	return broker.Select(st.pubs, st.top, q)
}

type rec struct {
	got  []broker.Publication
	lost int
}

func (r *rec) Deliver(string, []byte)                       {}
func (r *rec) Channels() []string                           { return nil }
func (r *rec) Status(error)                                 {}
func (r *rec) History(string) (broker.HistoryOptions, bool) { return opts, true }
func (r *rec) DeliverHistory(_ string, p broker.Publication) {
	r.got = append(r.got, p)
}
func (r *rec) HistoryLost(string, broker.Position, error) { r.lost++ }

var opts = broker.HistoryOptions{Size: 100, TTL: time.Minute}

func offsets(ps []broker.Publication) []uint64 {
	var out []uint64
	for _, p := range ps {
		out = append(out, p.Offset)
	}
	return out
}

func TestSeq(t *testing.T) {
	st := &store{}
	r := &rec{}
	s := New(r, st.read, time.Second)
	ctx := context.Background()
	st.add("e1", 2)
	s.Start("c", st.top)  // subscribed at offset 2
	ps := st.add("e1", 5) // 3..7
	s.Live(ctx, "c", ps[0], opts)
	s.Live(ctx, "c", ps[0], opts) // duplicate
	s.Live(ctx, "c", ps[3], opts) // 6 after 3: gap filled from the store
	s.Live(ctx, "c", ps[1], opts) // late 4: already delivered
	s.Live(ctx, "c", ps[4], opts)
	if got := offsets(r.got); len(got) != 5 || got[0] != 3 || got[4] != 7 {
		t.Fatalf("delivered %v, want 3..7 once each", got)
	}
	// The store is down: a gap waits, nothing is delivered out of order.
	st.fail = true
	ps = st.add("e1", 3) // 8..10
	s.Live(ctx, "c", ps[2], opts)
	if len(r.got) != 5 || !s.Stale() {
		t.Fatalf("delivered %v while the gap could not be filled", offsets(r.got))
	}
	st.fail = false
	s.Retry(ctx, func(string) (broker.HistoryOptions, bool) { return opts, true })
	if got := offsets(r.got); len(got) != 8 || got[7] != 10 || s.Stale() {
		t.Fatalf("after the retry: %v", got)
	}
	// The history was lost (a new epoch): reported, then the new epoch.
	ps = st.add("e2", 2)
	s.Live(ctx, "c", ps[1], opts)
	if r.lost != 1 {
		t.Fatalf("losses reported: %d", r.lost)
	}
	if got := r.got[len(r.got)-2:]; got[0].Epoch != "e2" || got[0].Offset != 1 || got[1].Offset != 2 {
		t.Fatalf("after the new epoch: %+v", got)
	}
	// Catch-up after a reconnection reads what was missed.
	st.add("e2", 3)
	s.CatchUp(ctx, "c", opts)
	if got := r.got[len(r.got)-1]; got.Offset != 5 || got.Epoch != "e2" {
		t.Fatalf("after the catch-up: %+v", got)
	}
	// Forget: a new subscription starts again from its own position.
	s.Forget("c")
	s.Start("c", st.top)
	n := len(r.got)
	s.CatchUp(ctx, "c", opts)
	if len(r.got) != n {
		t.Fatal("catch-up after Forget and Start delivered old publications")
	}
}
