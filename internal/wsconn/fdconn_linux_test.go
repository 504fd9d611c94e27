//go:build linux && !scnoepoll

package wsconn_test

import (
	"math"
	"testing"
	"time"

	"github.com/socketcluster-go/socketcluster/internal/wsconn"
)

// A write timeout so long that its deadline is past what UnixNano counts
// (year 2262) is no deadline: writes, waiting ones included, complete.
func TestOwnDescriptorHugeWriteTimeout(t *testing.T) {
	t.Parallel()
	c, cc := ownedPair(t, time.Duration(math.MaxInt64))
	checkWaitsForSlowReader(t, c, cc)
}

// With no descriptor to spare for the waiting write (a process at its
// limit of open files), a write that finds the send buffer full waits by
// polling: it completes for a slow reader, fails at the write timeout for
// a reader that never reads, and ends at Close.
func TestOwnDescriptorOutOfDescriptors(t *testing.T) {
	defer wsconn.NoSpareDescriptors()()

	t.Run("slow reader", func(t *testing.T) {
		c, cc := ownedPair(t, time.Minute)
		checkWaitsForSlowReader(t, c, cc)
	})
	t.Run("write timeout", func(t *testing.T) {
		c, _ := ownedPair(t, 200*time.Millisecond)
		checkWriteTimesOut(t, c)
	})
	t.Run("close", func(t *testing.T) {
		c, cc := ownedPair(t, 0)
		checkCloseEndsWaitingWrite(t, c, cc)
	})
}

// An idle watched connection holds a Conn, its evReader and, with an owned
// descriptor, an fdConn: each fits the size class given here (the next one
// up costs every idle connection 16 bytes or more). What only a busy
// connection needs is made or borrowed when needed: the read state from a
// pool, the waiting write's state on the first write that waits.
func TestIdleSizes(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		name      string
		size, max uintptr
	}{
		{"Conn", wsconn.ConnSize, 80},
		{"evReader", wsconn.EvReaderSize, 80},
		{"fdConn", wsconn.FdConnSize, 64},
	} {
		if c.size > c.max {
			t.Errorf("%s is %d bytes, more than %d", c.name, c.size, c.max)
		}
	}
}
