//go:build linux && !scnoepoll

package wsconn_test

import (
	"math"
	"net"
	"strconv"
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

// An IPv4 client of a dual-stack listener: the addresses read as they do
// through the *net.TCPConn, "127.0.0.1:port" (the IP is IPv4-mapped in
// both, and printed as IPv4).
func TestOwnDescriptorDualStackAddresses(t *testing.T) {
	t.Parallel()
	l, err := net.Listen("tcp", "[::]:0")
	if err != nil {
		t.Skipf("no dual-stack listener here: %v", err)
	}
	defer l.Close()
	port := l.Addr().(*net.TCPAddr).Port
	accepted := make(chan net.Conn, 1)
	go func() {
		c, _ := l.Accept()
		accepted <- c
	}()
	cc, err := net.Dial("tcp4", net.JoinHostPort("127.0.0.1", strconv.Itoa(port)))
	if err != nil {
		t.Skipf("no IPv4 to a dual-stack listener here: %v", err)
	}
	defer cc.Close()
	sc := <-accepted
	if sc == nil {
		t.Fatal("accept failed")
	}
	want, wantLocal := sc.RemoteAddr().String(), sc.LocalAddr().String()
	c := wsconn.New(sc, nil, 0)
	if !c.OwnDescriptor() {
		t.Skip("no owned descriptors on this build")
	}
	defer c.Close()
	if got := c.RemoteAddr().String(); got != want || got != cc.LocalAddr().String() {
		t.Fatalf("RemoteAddr %s, want %s (the client's %s)", got, want, cc.LocalAddr())
	}
	if got := wsconn.LocalAddrOf(c).String(); got != wantLocal {
		t.Fatalf("LocalAddr %s, want %s", got, wantLocal)
	}
}
