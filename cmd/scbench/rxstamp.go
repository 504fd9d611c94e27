//go:build linux

package main

import (
	"syscall"
	"unsafe"

	"golang.org/x/sys/unix"
)

// Receive timestamps. A latency measured when the generator reads a
// delivery includes the time the delivery waited in the generator's socket
// for the generator to get round to it: when one publish reaches 1 000
// subscribers at once, the last of them is read a millisecond or more after
// it arrived, whatever the server did. With SO_TIMESTAMPNS the kernel
// stamps each packet as it reaches the receiving socket (on loopback: as
// the server's write hands it over), and a read returns the stamp of the
// newest packet it took. A delivery's latency then ends at its arrival,
// which is the server's doing, not at its reading, which is the
// generator's. A read that takes several frames gives them all the stamp of
// the newest, so a latency is never shortened, only at most lengthened by
// the time between those frames' arrivals.

// enableRxStamps asks the kernel to stamp what fd receives.
func enableRxStamps(fd int) error {
	return syscall.SetsockoptInt(fd, syscall.SOL_SOCKET, syscall.SO_TIMESTAMPNS, 1)
}

// stampedReader reads with recvmsg(2) and returns the receive stamp of what
// it read. Its message header and control buffer are reused: a read
// allocates nothing. One belongs to each poller.
type stampedReader struct {
	// wallOff is the wall clock minus nanotime(), set by the poller each
	// round: a stamp minus wallOff is on the generator's clock.
	wallOff int64

	msg syscall.Msghdr
	iov syscall.Iovec
	oob [64]byte
}

// read reads into p from fd. at is the receive stamp (CLOCK_REALTIME, in
// nanoseconds since the Unix epoch) of the newest packet read, or 0 when the
// kernel gave none.
func (r *stampedReader) read(fd int, p []byte) (n int, at int64, err error) {
	if len(p) == 0 {
		return 0, 0, nil
	}
	r.iov.Base = &p[0]
	r.iov.SetLen(len(p))
	r.msg.Iov = &r.iov
	r.msg.Iovlen = 1
	r.msg.Control = &r.oob[0]
	r.msg.SetControllen(len(r.oob))
	r.msg.Flags = 0
	// unix's number: linux/386 has recvmsg(2) itself too (not only
	// socketcall), but package syscall does not name it.
	m, _, errno := syscall.Syscall(unix.SYS_RECVMSG, uintptr(fd), uintptr(unsafe.Pointer(&r.msg)), 0)
	if errno != 0 {
		return -1, 0, errno
	}
	return int(m), parseRxStamp(r.oob[:r.msg.Controllen]), nil
}

// parseRxStamp returns the SCM_TIMESTAMPNS stamp in the control messages
// oob, in nanoseconds since the Unix epoch, or 0 if there is none.
func parseRxStamp(oob []byte) int64 {
	for len(oob) >= syscall.SizeofCmsghdr {
		h := (*syscall.Cmsghdr)(unsafe.Pointer(&oob[0]))
		l := int(h.Len)
		if l < syscall.SizeofCmsghdr || l > len(oob) {
			return 0
		}
		if h.Level == syscall.SOL_SOCKET && h.Type == syscall.SCM_TIMESTAMPNS &&
			l >= syscall.CmsgLen(int(unsafe.Sizeof(syscall.Timespec{}))) {
			ts := (*syscall.Timespec)(unsafe.Pointer(&oob[syscall.CmsgLen(0)]))
			return ts.Nano()
		}
		if s := syscall.CmsgSpace(l - syscall.CmsgLen(0)); s < len(oob) {
			oob = oob[s:]
		} else {
			return 0
		}
	}
	return 0
}
