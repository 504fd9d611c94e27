//go:build linux

package main

import (
	"encoding/binary"
	"net"
	"syscall"
	"testing"
	"time"
	"unsafe"
)

// TestRxStamp: a read returns the time the data reached the socket, not
// the time it was read.
func TestRxStamp(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	c, err := net.Dial("tcp", l.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	s, err := l.Accept()
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	rc, err := c.(*net.TCPConn).SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	var serr error
	if err := rc.Control(func(fd uintptr) { serr = enableRxStamps(int(fd)) }); err != nil || serr != nil {
		t.Fatal(err, serr)
	}
	var r stampedReader
	buf := make([]byte, 64)
	// The kernel turns stamping on for the machine asynchronously when the
	// first socket asks for it: the first packets may come without a stamp.
	// Warm up until one has one.
	for i := 0; ; i++ {
		if i == 200 {
			t.Fatal("no receive stamp after 200 packets")
		}
		if _, err := s.Write([]byte("w")); err != nil {
			t.Fatal(err)
		}
		var at int64
		var rerr error
		if err := rc.Read(func(fd uintptr) bool {
			_, at, rerr = r.read(int(fd), buf)
			return rerr != syscall.EAGAIN
		}); err != nil || rerr != nil {
			t.Fatal(err, rerr)
		}
		if at != 0 {
			break
		}
		time.Sleep(5 * time.Millisecond)
	}
	before := time.Now().UnixNano()
	if _, err := s.Write([]byte("hello")); err != nil {
		t.Fatal(err)
	}
	// Wait until the bytes are there (peeking), then some more before
	// reading them.
	peek := make([]byte, 1)
	if err := rc.Read(func(fd uintptr) bool {
		_, _, err := syscall.Recvfrom(int(fd), peek, syscall.MSG_PEEK|syscall.MSG_DONTWAIT)
		return err != syscall.EAGAIN
	}); err != nil {
		t.Fatal(err)
	}
	arrived := time.Now().UnixNano()
	time.Sleep(100 * time.Millisecond)
	var n int
	var at int64
	if err := rc.Read(func(fd uintptr) bool {
		n, at, err = r.read(int(fd), buf)
		return err != syscall.EAGAIN
	}); err != nil || string(buf[:n]) != "hello" {
		t.Fatalf("read %q, %v", buf[:max(n, 0)], err)
	}
	if at < before || at > arrived {
		t.Fatalf("stamp %d is not between the write (%d) and the moment the data was seen (%d)", at, before, arrived)
	}
}

// TestParseRxStamp: the stamp is found among other control messages, and
// a malformed control buffer gives none.
func TestParseRxStamp(t *testing.T) {
	cmsg := func(level, typ int32, data []byte) []byte {
		b := make([]byte, syscall.CmsgSpace(len(data)))
		h := (*syscall.Cmsghdr)(unsafe.Pointer(&b[0]))
		h.Level, h.Type = level, typ
		h.SetLen(syscall.CmsgLen(len(data)))
		copy(b[syscall.CmsgLen(0):], data)
		return b
	}
	ts := syscall.NsecToTimespec(1_700_000_000_123_456_789)
	tsb := unsafe.Slice((*byte)(unsafe.Pointer(&ts)), unsafe.Sizeof(ts))
	other := cmsg(syscall.SOL_SOCKET, syscall.SCM_RIGHTS, binary.NativeEndian.AppendUint32(nil, 7))
	stamp := cmsg(syscall.SOL_SOCKET, syscall.SCM_TIMESTAMPNS, tsb)
	for _, c := range []struct {
		name string
		oob  []byte
		want int64
	}{
		{"alone", stamp, 1_700_000_000_123_456_789},
		{"after another", append(append([]byte(nil), other...), stamp...), 1_700_000_000_123_456_789},
		{"none", other, 0},
		{"empty", nil, 0},
		{"cut", stamp[:len(stamp)-4], 0},
		{"short header", stamp[:syscall.SizeofCmsghdr-1], 0},
	} {
		if got := parseRxStamp(c.oob); got != c.want {
			t.Errorf("%s: %d, want %d", c.name, got, c.want)
		}
	}
}
