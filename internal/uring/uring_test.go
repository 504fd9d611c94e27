package uring_test

import (
	"bytes"
	"io"
	"net"
	"syscall"
	"testing"
	"time"

	"github.com/socketcluster-go/socketcluster/internal/testnet"
	"github.com/socketcluster-go/socketcluster/internal/uring"
)

// newRing returns a ring, or skips the test where io_uring is not
// available (other systems, kernel.io_uring_disabled, seccomp).
func newRing(t *testing.T, entries uint32) *uring.Ring {
	t.Helper()
	r, err := uring.New(entries)
	if err != nil {
		t.Skipf("io_uring is not available here: %v", err)
	}
	t.Cleanup(r.Close)
	return r
}

// pairs returns n connected loopback TCP pairs: the descriptors of the
// server ends (to send on) and the client ends (to read from).
func pairs(t *testing.T, n int) (fds []int32, servers, clients []*net.TCPConn) {
	t.Helper()
	servers, clients = testnet.Pairs(t, n)
	for _, s := range servers {
		rc, err := s.SyscallConn()
		if err != nil {
			t.Fatal(err)
		}
		_ = rc.Control(func(fd uintptr) { fds = append(fds, int32(fd)) })
	}
	return fds, servers, clients
}

func TestSendToMany(t *testing.T) {
	t.Parallel()
	// More sockets than the ring has entries: several submissions.
	r := newRing(t, 4)
	fds, _, clients := pairs(t, 11)
	bufs := make([][]byte, len(fds))
	for i := range bufs {
		bufs[i] = bytes.Repeat([]byte{byte('a' + i)}, 100+i)
	}
	res := make([]int32, len(fds))
	if err := r.Send(fds, bufs, res); err != nil {
		t.Fatal(err)
	}
	for i, c := range clients {
		if int(res[i]) != len(bufs[i]) {
			t.Fatalf("socket %d: result %d, want %d", i, res[i], len(bufs[i]))
		}
		got := make([]byte, len(bufs[i]))
		_ = c.SetReadDeadline(time.Now().Add(10 * time.Second))
		if _, err := io.ReadFull(c, got); err != nil || !bytes.Equal(got, bufs[i]) {
			t.Fatalf("socket %d received %q, %v; want %q", i, got, err, bufs[i])
		}
	}
	// The ring is reusable.
	if err := r.Send(fds[:1], [][]byte{[]byte("again")}, res); err != nil || res[0] != 5 {
		t.Fatalf("second Send: %d, %v", res[0], err)
	}
}

func TestSendNeverWaits(t *testing.T) {
	t.Parallel()
	// A peer that reads nothing: its socket's buffers fill, and the sends
	// come back short, then with EAGAIN, instead of waiting.
	r := newRing(t, 8)
	fds, servers, _ := pairs(t, 1)
	_ = servers[0].SetWriteBuffer(4096)
	chunk := make([]byte, 64<<10)
	res := make([]int32, 1)
	total := 0
	for i := 0; ; i++ {
		if i == 10_000 {
			t.Fatalf("%d bytes sent to a peer that reads nothing, and no EAGAIN", total)
		}
		if err := r.Send(fds, [][]byte{chunk}, res); err != nil {
			t.Fatal(err)
		}
		if res[0] == -int32(syscall.EAGAIN) {
			break
		}
		if res[0] <= 0 {
			t.Fatalf("result %d, want bytes sent or -EAGAIN", res[0])
		}
		total += int(res[0])
	}
	t.Logf("%d bytes sent before EAGAIN", total)
}

func TestSendErrors(t *testing.T) {
	t.Parallel()
	r := newRing(t, 8)
	fds, _, clients := pairs(t, 2)
	// The first peer is gone (reset): its send fails; the second is
	// unaffected.
	_ = clients[0].SetLinger(0)
	_ = clients[0].Close()
	time.Sleep(50 * time.Millisecond) // the reset reaches the server end
	res := make([]int32, 2)
	bufs := [][]byte{[]byte("lost"), []byte("fine")}
	if err := r.Send(fds, bufs, res); err != nil {
		t.Fatal(err)
	}
	if res[0] >= 0 {
		t.Fatalf("send to a reset peer: %d, want a negative errno", res[0])
	}
	if res[1] != 4 {
		t.Fatalf("send to the other peer: %d, want 4", res[1])
	}
	if err := r.Send(fds, bufs[:1], res); err == nil {
		t.Fatal("Send accepted fewer buffers than descriptors")
	}
	if err := r.Send([]int32{-1}, [][]byte{[]byte("x")}, res); err != nil || res[0] != -int32(syscall.EBADF) {
		t.Fatalf("send to descriptor -1: %d, %v; want -EBADF", res[0], err)
	}
}
