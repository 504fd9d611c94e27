//go:build linux

package uring

import (
	"errors"
	"fmt"
	"os"
	"runtime"
	"sync/atomic"
	"syscall"
	"unsafe"

	"golang.org/x/sys/unix"
)

const (
	sysIOUringSetup = 425
	sysIOUringEnter = 426

	ioringOffSQRing = 0
	ioringOffCQRing = 0x8000000
	ioringOffSQEs   = 0x10000000

	ioringFeatSingleMmap = 1
	ioringEnterGetEvents = 1
	ioringOpSend         = 26
)

type sqringOffsets struct {
	head, tail, ringMask, ringEntries, flags, dropped, array, resv1 uint32
	userAddr                                                        uint64
}

type cqringOffsets struct {
	head, tail, ringMask, ringEntries, overflow, cqes, flags, resv1 uint32
	userAddr                                                        uint64
}

type uringParams struct {
	sqEntries, cqEntries, flags, sqThreadCPU, sqThreadIdle, features, wqFd uint32
	resv                                                                   [3]uint32
	sqOff                                                                  sqringOffsets
	cqOff                                                                  cqringOffsets
}

type uringSQE struct {
	opcode      uint8
	flags       uint8
	ioprio      uint16
	fd          int32
	off         uint64
	addr        uint64
	len         uint32
	msgFlags    uint32
	userData    uint64
	bufIndex    uint16
	personality uint16
	spliceFdIn  int32
	addr3       uint64
	pad         uint64
}

type uringCQE struct {
	userData uint64
	res      int32
	flags    uint32
}

// Ring is one io_uring set up for batched sends. Its methods must not be
// called concurrently.
type Ring struct {
	fd      int
	entries uint32
	failed  bool // an io_uring_enter failed: the ring's state is unknown

	sqTail, sqHead *uint32
	sqMask         uint32
	sqArray        []uint32
	sqes           []uringSQE

	cqHead, cqTail *uint32
	cqMask         uint32
	cqes           []uringCQE

	mmaps [][]byte
}

// New sets up a ring of at least entries submission slots (the kernel
// rounds up to a power of two); a Send of more sockets is made in several
// submissions.
func New(entries uint32) (*Ring, error) {
	var p uringParams
	fd, _, errno := syscall.Syscall(sysIOUringSetup, uintptr(entries), uintptr(unsafe.Pointer(&p)), 0)
	if errno != 0 {
		return nil, fmt.Errorf("io_uring_setup: %w", errno)
	}
	r := &Ring{fd: int(fd), entries: p.sqEntries}
	sqSize := int(p.sqOff.array) + int(p.sqEntries)*4
	cqSize := int(p.cqOff.cqes) + int(p.cqEntries)*int(unsafe.Sizeof(uringCQE{}))
	if p.features&ioringFeatSingleMmap != 0 {
		sqSize = max(sqSize, cqSize)
	}
	sq, err := unix.Mmap(r.fd, ioringOffSQRing, sqSize, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_SHARED|unix.MAP_POPULATE)
	if err != nil {
		r.Close()
		return nil, fmt.Errorf("mmap SQ ring: %w", err)
	}
	r.mmaps = append(r.mmaps, sq)
	cq := sq
	if p.features&ioringFeatSingleMmap == 0 {
		if cq, err = unix.Mmap(r.fd, ioringOffCQRing, cqSize, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_SHARED|unix.MAP_POPULATE); err != nil {
			r.Close()
			return nil, fmt.Errorf("mmap CQ ring: %w", err)
		}
		r.mmaps = append(r.mmaps, cq)
	}
	sqeBytes, err := unix.Mmap(r.fd, ioringOffSQEs, int(p.sqEntries)*int(unsafe.Sizeof(uringSQE{})), unix.PROT_READ|unix.PROT_WRITE, unix.MAP_SHARED|unix.MAP_POPULATE)
	if err != nil {
		r.Close()
		return nil, fmt.Errorf("mmap SQEs: %w", err)
	}
	r.mmaps = append(r.mmaps, sqeBytes)

	r.sqHead = (*uint32)(unsafe.Pointer(&sq[p.sqOff.head]))
	r.sqTail = (*uint32)(unsafe.Pointer(&sq[p.sqOff.tail]))
	r.sqMask = *(*uint32)(unsafe.Pointer(&sq[p.sqOff.ringMask]))
	r.sqArray = unsafe.Slice((*uint32)(unsafe.Pointer(&sq[p.sqOff.array])), p.sqEntries)
	r.sqes = unsafe.Slice((*uringSQE)(unsafe.Pointer(&sqeBytes[0])), p.sqEntries)
	r.cqHead = (*uint32)(unsafe.Pointer(&cq[p.cqOff.head]))
	r.cqTail = (*uint32)(unsafe.Pointer(&cq[p.cqOff.tail]))
	r.cqMask = *(*uint32)(unsafe.Pointer(&cq[p.cqOff.ringMask]))
	r.cqes = unsafe.Slice((*uringCQE)(unsafe.Pointer(&cq[p.cqOff.cqes])), p.cqEntries)
	return r, nil
}

// Close releases the ring.
func (r *Ring) Close() {
	for _, m := range r.mmaps {
		_ = unix.Munmap(m)
	}
	r.mmaps = nil
	_ = unix.Close(r.fd)
}

// Send sends bufs[i] to the socket fds[i], for every i, with as few
// io_uring_enter calls as the ring's size allows, and returns once every
// send completed. res[i] is the outcome: the bytes sent (possibly fewer
// than len(bufs[i])), or a negative errno (-EAGAIN: the socket's send
// buffer is full). When io_uring_enter fails, Send returns its error at
// once: the sends not reported keep res[i] = Unknown (they may or may not
// have gone out), and the ring must not be used again (Close it). The
// caller must keep every fd open and every buffer unchanged until Send
// returns.
func (r *Ring) Send(fds []int32, bufs [][]byte, res []int32) error {
	if len(bufs) != len(fds) || len(res) < len(fds) {
		return errors.New("uring: Send needs one buffer and one result slot per descriptor")
	}
	if r.failed {
		return errors.New("uring: Send on a ring whose io_uring_enter failed")
	}
	for i := range fds {
		res[i] = Unknown
	}
	for start := 0; start < len(fds); {
		n := min(len(fds)-start, int(r.entries))
		tail := atomic.LoadUint32(r.sqTail)
		for i := 0; i < n; i++ {
			idx := (tail + uint32(i)) & r.sqMask
			b := bufs[start+i]
			r.sqes[idx] = uringSQE{
				opcode:   ioringOpSend,
				fd:       fds[start+i],
				addr:     uint64(uintptr(unsafe.Pointer(unsafe.SliceData(b)))),
				len:      uint32(len(b)),
				msgFlags: unix.MSG_DONTWAIT | unix.MSG_NOSIGNAL,
				userData: uint64(start + i),
			}
			r.sqArray[idx] = idx
		}
		atomic.StoreUint32(r.sqTail, tail+uint32(n))
		toSubmit := n
		for done := 0; done < n; {
			submitted, _, errno := syscall.Syscall6(sysIOUringEnter, uintptr(r.fd), uintptr(toSubmit), uintptr(n-done), ioringEnterGetEvents, 0, 0)
			if errno != 0 && errno != syscall.EINTR {
				// Entries may be left submitted or not, completions
				// unread: the ring's state is no longer known.
				r.failed = true
				runtime.KeepAlive(bufs)
				return os.NewSyscallError("io_uring_enter", errno)
			}
			if errno == 0 {
				toSubmit -= int(submitted)
			}
			head := atomic.LoadUint32(r.cqHead)
			ctail := atomic.LoadUint32(r.cqTail)
			for ; head != ctail; head++ {
				c := r.cqes[head&r.cqMask]
				if c.userData < uint64(len(fds)) {
					res[c.userData] = c.res
				}
				done++
			}
			atomic.StoreUint32(r.cqHead, head)
		}
		start += n
	}
	// The buffers were only referred to by address in the ring.
	runtime.KeepAlive(bufs)
	return nil
}
