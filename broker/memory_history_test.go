package broker

import (
	"context"
	"strconv"
	"testing"
	"time"
)

// Many channels whose history expired are forgotten: memory stays bounded.
func TestMemoryHistoryBounded(t *testing.T) {
	m := NewMemory(nil)
	opts := HistoryOptions{Size: 10, TTL: time.Second}
	ctx := context.Background()
	for i := range 5000 {
		for range 20 {
			if _, err := m.PublishHistory(ctx, "c"+strconv.Itoa(i), []byte("x"), opts); err != nil {
				t.Fatal(err)
			}
		}
	}
	count := func() (chans, entries, most int) {
		m.bus.hist.mu.Lock()
		defer m.bus.hist.mu.Unlock()
		for _, h := range m.bus.hist.chans {
			h.mu.Lock()
			entries += len(h.entries)
			most = max(most, len(h.entries))
			h.mu.Unlock()
		}
		return len(m.bus.hist.chans), entries, most
	}
	if c, e, most := count(); c > 5000 || most > 10 {
		t.Fatalf("%d channels, %d entries, at most %d per channel; the size limit is 10", c, e, most)
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		time.Sleep(1200 * time.Millisecond) // past the TTL and the sweep interval
		if _, err := m.PublishHistory(ctx, "other", []byte("x"), opts); err != nil {
			t.Fatal(err)
		}
		if c, _, _ := count(); c <= 1 {
			return
		}
		if time.Now().After(deadline) {
			c, e, _ := count()
			t.Fatalf("expired channels kept: %d channels, %d entries", c, e)
		}
	}
}
