package socketcluster_test

import (
	"encoding/json"
	"testing"

	sc "github.com/socketcluster-go/socketcluster"
	"github.com/socketcluster-go/socketcluster/internal/sctest"
)

// readBurst reads frames until n publications arrived and returns their
// data in arrival order and how many frames were arrays.
func readBurst(t *testing.T, next func() string, n int) (got []int, arrays int) {
	t.Helper()
	type pub struct {
		Event string `json:"event"`
		Data  struct {
			Data int `json:"data"`
		} `json:"data"`
	}
	for len(got) < n {
		f := next()
		var pubs []pub
		if f[0] == '[' {
			arrays++
			if err := json.Unmarshal([]byte(f), &pubs); err != nil {
				t.Fatalf("array frame %s: %v", f, err)
			}
		} else {
			var p pub
			if err := json.Unmarshal([]byte(f), &p); err != nil {
				t.Fatalf("frame %s: %v", f, err)
			}
			pubs = append(pubs, p)
		}
		for _, p := range pubs {
			if p.Event != "#publish" {
				t.Fatalf("unexpected packet in %s", f)
			}
			got = append(got, p.Data.Data)
		}
	}
	return got, arrays
}

func publishBurst(t *testing.T, ts *testServer, n int) {
	t.Helper()
	for i := range n {
		if err := ts.Exchange().TransmitPublish("ch", i); err != nil {
			t.Fatal(err)
		}
	}
}

func TestCoalescePacketsBurstInOrder(t *testing.T) {
	t.Parallel()
	ts := newServer(t, sc.Options{CoalescePackets: true})
	c, _ := ts.connect(t, nil)
	c.Subscribe("ch")
	const n = 2000
	publishBurst(t, ts, n)
	got, arrays := readBurst(t, c.NextText, n)
	for i, v := range got {
		if v != i {
			t.Fatalf("packet %d carries %d: out of order", i, v)
		}
	}
	t.Logf("%d publications, %d array frames", n, arrays)
	// A single packet afterwards is a plain frame.
	if err := ts.Exchange().InvokePublish(ctxT(t), "ch", "last"); err != nil {
		t.Fatal(err)
	}
	c.Expect(`{"event":"#publish","data":{"channel":"ch","data":"last"}}`)
}

// TestCoalescePacketsSharedBuffers: the array frames' buffers are pooled
// and reused by every socket's flushes; bursts to several subscribers,
// flushed side by side, each arrive whole and in order, round after
// round. A buffer given back before its write is caught here mostly by
// the race detector (CI runs the suite with -race): the flush that takes
// it next seldom writes into it before the first write is done.
func TestCoalescePacketsSharedBuffers(t *testing.T) {
	t.Parallel()
	// Without io_uring, so that every delivery goes through the queues
	// (a batched send takes an idle subscriber's frame directly).
	ts := newServer(t, sc.Options{CoalescePackets: true, DisableIOUring: true})
	const subs, rounds, n = 4, 5, 300
	clients := make([]*sctest.Client, subs)
	for i := range clients {
		clients[i], _ = ts.connect(t, nil)
		clients[i].Subscribe("ch")
	}
	arrays := 0
	for r := range rounds {
		publishBurst(t, ts, n)
		for k, c := range clients {
			got, a := readBurst(t, c.NextText, n)
			arrays += a
			for i, v := range got {
				if v != i {
					t.Fatalf("round %d, client %d: packet %d carries %d", r, k, i, v)
				}
			}
		}
	}
	if arrays == 0 {
		t.Fatal("no array frame: nothing was coalesced")
	}
}

func TestCoalescePacketsOffByDefault(t *testing.T) {
	t.Parallel()
	ts := newServer(t, sc.Options{})
	c, _ := ts.connect(t, nil)
	c.Subscribe("ch")
	const n = 2000
	publishBurst(t, ts, n)
	got, arrays := readBurst(t, c.NextText, n)
	if arrays != 0 {
		t.Fatalf("%d array frames without CoalescePackets", arrays)
	}
	for i, v := range got {
		if v != i {
			t.Fatalf("packet %d carries %d: out of order", i, v)
		}
	}
}
