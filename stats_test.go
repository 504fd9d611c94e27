package socketcluster_test

import (
	"context"
	"errors"
	"testing"

	sc "github.com/socketcluster-go/socketcluster"
	"github.com/socketcluster-go/socketcluster/broker"
)

// Stats counts handshakes and the bytes that cross the WebSocket both ways.
func TestStatsHandshakesAndBytes(t *testing.T) {
	t.Parallel()
	ts := newServer(t, sc.Options{})
	before := ts.Stats()
	if before.Handshakes != 0 || !before.BrokerUp {
		t.Fatalf("fresh server: %+v", before)
	}
	c, _ := ts.connect(t, nil)
	payload := string(make([]byte, 1000))
	r := c.Invoke("echo", payload)
	if r.Error != nil {
		t.Fatalf("echo: %s", r.Raw)
	}
	// The reply was read by the client, so it has been counted.
	eventually(t, "counters", func() bool {
		s := ts.Stats()
		return s.Handshakes == 1 && s.BytesIn > 1000 && s.BytesOut > 1000
	})
	s := ts.Stats()
	// The repeated handshake is answered but not counted again.
	c.Handshake(nil)
	barrier(t, c)
	if got := ts.Stats().Handshakes; got != 1 {
		t.Errorf("handshakes after a repeated handshake = %d, want 1", got)
	}
	if s.BytesIn > 10_000 || s.BytesOut > 10_000 {
		t.Errorf("bytes in/out %d/%d: far more than the messages exchanged", s.BytesIn, s.BytesOut)
	}
}

// statusBroker is an in-process broker whose outages the test reports.
type statusBroker struct {
	broker.Broker
	h broker.Handler
}

func (b *statusBroker) Start(ctx context.Context, h broker.Handler) error {
	b.h = h
	return b.Broker.Start(ctx, h)
}

// BrokerConnected follows the broker's Status reports.
func TestBrokerConnectedFollowsStatus(t *testing.T) {
	t.Parallel()
	b := &statusBroker{Broker: broker.NewMemory(nil)}
	ts := newServer(t, sc.Options{Broker: b})
	if !ts.BrokerConnected() || !ts.Stats().BrokerUp {
		t.Fatal("a started broker is not reported connected")
	}
	b.h.Status(errors.New("connection refused"))
	if ts.BrokerConnected() || ts.Stats().BrokerUp {
		t.Fatal("still connected after an outage report")
	}
	if ts.Stats().BrokerErrors != 1 {
		t.Errorf("broker errors = %d, want 1", ts.Stats().BrokerErrors)
	}
	b.h.Status(nil)
	if !ts.BrokerConnected() {
		t.Fatal("not connected after the reconnection report")
	}
}

// BusiestChannels lists the channels with the most subscribers first.
func TestBusiestChannels(t *testing.T) {
	t.Parallel()
	ts := newServer(t, sc.Options{})
	subs := map[string]int{"a": 3, "b": 1, "c": 2, "d": 2}
	for ch, n := range subs {
		for range n {
			c, _ := ts.connect(t, nil)
			if r := c.Invoke("#subscribe", map[string]any{"channel": ch}); r.Error != nil {
				t.Fatalf("subscribe %s: %s", ch, r.Raw)
			}
		}
	}
	got := ts.BusiestChannels(3)
	want := []sc.ChannelCount{{"a", 3}, {"c", 2}, {"d", 2}}
	if len(got) != len(want) {
		t.Fatalf("got %v, want %v", got, want)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("got %v, want %v", got, want)
		}
	}
	if all := ts.BusiestChannels(10); len(all) != 4 || all[3] != (sc.ChannelCount{Channel: "b", Subscribers: 1}) {
		t.Errorf("all channels: %v", all)
	}
	if ts.BusiestChannels(0) != nil {
		t.Error("n = 0 returned channels")
	}
}
