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
	f, err := c.(*net.TCPConn).File() // a blocking duplicate
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	fd := int(f.Fd())
	if err := enableRxStamps(fd); err != nil {
		t.Fatal(err)
	}
	before := time.Now().UnixNano()
	if _, err := s.Write([]byte("hello")); err != nil {
		t.Fatal(err)
	}
	// Wait until the bytes are there, then some more before reading them.
	pfd := []pollFd{{fd: int32(fd), events: 1}} // POLLIN
	if _, _, errno := syscall.Syscall(syscall.SYS_POLL, uintptr(unsafe.Pointer(&pfd[0])), 1, 10_000); errno != 0 {
		t.Fatal(errno)
	}
	arrived := time.Now().UnixNano()
	time.Sleep(100 * time.Millisecond)
	var r stampedReader
	buf := make([]byte, 64)
	n, at, err := r.read(fd, buf)
	if err != nil || string(buf[:n]) != "hello" {
		t.Fatalf("read %q, %v", buf[:n], err)
	}
	if at < before || at > arrived {
		t.Fatalf("stamp %d is not between the write (%d) and the moment the data was seen (%d)", at, before, arrived)
	}
}

type pollFd struct {
	fd      int32
	events  int16
	revents int16
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
