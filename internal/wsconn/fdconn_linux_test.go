//go:build linux && !scnoepoll

package wsconn_test

import (
	"errors"
	"math"
	"os"
	"testing"
	"time"

	"github.com/socketcluster-go/socketcluster/internal/sctest"
	"github.com/socketcluster-go/socketcluster/internal/wsconn"
)

// readBigFrames reads what bigFrames(n) wrote and checks every frame.
func readBigFrames(t *testing.T, c interface {
	SetReadDeadline(time.Time) error
	Read([]byte) (int, error)
}, n int) {
	t.Helper()
	_ = c.SetReadDeadline(time.Now().Add(time.Minute))
	for i := range n {
		f, err := sctest.ReadFrame(c)
		if err != nil {
			t.Fatalf("frame %d: %v", i, err)
		}
		if len(f.Payload) != 8<<20 || f.Payload[0] != byte('a'+i) || f.Payload[len(f.Payload)-1] != byte('a'+i) {
			t.Fatalf("frame %d: %d bytes of %q", i, len(f.Payload), f.Payload[:1])
		}
	}
}

// A write timeout so long that its deadline is past what UnixNano counts
// (year 2262) is no deadline: writes, waiting ones included, complete.
func TestOwnDescriptorHugeWriteTimeout(t *testing.T) {
	t.Parallel()
	c, cc := ownedPair(t, time.Duration(math.MaxInt64))
	frames := bigFrames(3)
	written := make(chan error, 1)
	go func() { written <- c.WriteFrames(frames) }()
	time.Sleep(100 * time.Millisecond) // the write fills the buffers and waits
	readBigFrames(t, cc, len(frames))
	if err := <-written; err != nil {
		t.Fatalf("WriteFrames: %v", err)
	}
}

// With no descriptor to spare for the waiting write (a process at its
// limit of open files), a write that finds the send buffer full waits by
// polling: it completes for a slow reader, fails at the write timeout for
// a reader that never reads, and ends at Close.
func TestOwnDescriptorOutOfDescriptors(t *testing.T) {
	defer wsconn.NoSpareDescriptors()()

	t.Run("slow reader", func(t *testing.T) {
		c, cc := ownedPair(t, time.Minute)
		frames := bigFrames(3)
		written := make(chan error, 1)
		go func() { written <- c.WriteFrames(frames) }()
		time.Sleep(100 * time.Millisecond)
		readBigFrames(t, cc, len(frames))
		if err := <-written; err != nil {
			t.Fatalf("WriteFrames: %v", err)
		}
	})
	t.Run("write timeout", func(t *testing.T) {
		c, _ := ownedPair(t, 200*time.Millisecond)
		written := make(chan error, 1)
		go func() { written <- c.WriteFrames(bigFrames(4)) }()
		select {
		case err := <-written:
			if !errors.Is(err, os.ErrDeadlineExceeded) {
				t.Fatalf("WriteFrames: %v, want a deadline error", err)
			}
		case <-time.After(time.Minute):
			t.Fatal("the write outlived its timeout by a minute")
		}
	})
	t.Run("close", func(t *testing.T) {
		c, _ := ownedPair(t, 0)
		written := make(chan error, 1)
		go func() { written <- c.WriteFrames(bigFrames(4)) }()
		time.Sleep(100 * time.Millisecond)
		_ = c.Close()
		select {
		case err := <-written:
			if err == nil {
				t.Fatal("the write succeeded after Close")
			}
		case <-time.After(time.Minute):
			t.Fatal("the waiting write did not end after Close")
		}
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
