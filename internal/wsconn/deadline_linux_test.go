//go:build linux && !scnoepoll

package wsconn

import (
	"testing"
	"time"
)

// TestSetWriteTimeout: the write path's one-clock-reading deadline is the
// deadline SetWriteDeadline(time.Now().Add(d)) sets, and none for a zero
// or an out-of-range timeout.
func TestSetWriteTimeout(t *testing.T) {
	f := &fdConn{fd: -1}
	before := sinceEpoch()
	f.setWriteTimeout(time.Minute)
	after := sinceEpoch()
	if got := f.wdl.Load(); got < before+int64(time.Minute) || got > after+int64(time.Minute) {
		t.Fatalf("deadline %d, want within [%d, %d]", got, before+int64(time.Minute), after+int64(time.Minute))
	}
	for _, d := range []time.Duration{0, -time.Second, maxDeadline, time.Duration(1<<63 - 1)} {
		f.setWriteTimeout(d)
		if got := f.wdl.Load(); got != 0 {
			t.Errorf("timeout %v: deadline %d, want none", d, got)
		}
	}
}

// BenchmarkWriteDeadline: what a flusher's write spends setting its
// deadline, through SetWriteDeadline(time.Now().Add(d)) as before and
// through setWriteTimeout.
func BenchmarkWriteDeadline(b *testing.B) {
	f := &fdConn{fd: -1}
	b.Run("SetWriteDeadline", func(b *testing.B) {
		for b.Loop() {
			_ = f.SetWriteDeadline(time.Now().Add(time.Minute))
		}
	})
	b.Run("setWriteTimeout", func(b *testing.B) {
		for b.Loop() {
			f.setWriteTimeout(time.Minute)
		}
	})
}
