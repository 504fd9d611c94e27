//go:build linux && !scnoepoll

package wsconn

import (
	"crypto/tls"
	"errors"
	"net"
	"net/netip"
	"os"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"

	"github.com/socketcluster-go/socketcluster/internal/netpoll"
)

// Owned descriptors (OwnDescriptor).
//
// An idle *net.TCPConn costs about 1 KiB of resident memory besides the
// server's own state: the net package's netFD, two TCPAddr and the
// sockaddrs their IPs point into, the runtime's pollDesc with its two
// deadline timers, and the garbage collector's headroom for all of it. A
// watched connection needs none of that to be read (the event-driven
// reader has its own epoll registration), only to be written. fdConn keeps
// a duplicate of the socket's descriptor and the peer's address, and the
// *net.TCPConn is closed: writes are non-blocking write(2)/writev(2) on the
// descriptor, and only a write that finds the send buffer full (a slow
// reader) waits, through a short-lived *net.TCPConn on another duplicate
// that the Go runtime's poller watches, with the write deadline (or, in a
// process with no descriptor to spare, by asking poll(2) between short
// sleeps).

// fdConn is a plain TCP connection whose descriptor the Conn owns. It
// implements net.Conn for writing; it is read by Watch (through rawFD),
// never by Read. Reads, writes and Close meet on atomics, as they do in
// the net package's descriptors.
type fdConn struct {
	remote netip.AddrPort
	fd     int32

	// state counts the system calls under way on fd (and a waiting
	// write), with fdClosing set by Close: the call that brings it to
	// fdClosing alone closes the descriptor.
	state atomic.Int64
	wdl   atomic.Int64 // write deadline, monotonic (sinceEpoch); 0 for none

	// wait is made by the first write that waits (slowWrite) and kept:
	// most connections never need it. SetWriteDeadline and Close look at
	// it only when it is set.
	wait atomic.Pointer[fdWait]
}

// fdWait is the state of an fdConn's waiting write.
type fdWait struct {
	mu   sync.Mutex
	conn net.Conn // the waiting write's connection, nil between writes
}

// An fdConn has no finalizer: the Conn that owns it must be closed (the
// server closes every socket it accepted), as its descriptor would
// otherwise stay open.

// fdClosing is the bit of fdConn.state that Close sets.
const fdClosing = int64(1) << 62

// OwnDescriptor makes c write to and read (Watch) its TCP socket through a
// duplicate of its descriptor, and closes the *net.TCPConn it was made
// with, so that an idle connection holds none of the net package's and the
// runtime poller's state. A TLS connection over a PollConn (NewTLSListener)
// keeps its *tls.Conn: the PollConn under it gets the owned descriptor in
// place of its TCPConn. It reports whether it did: only on such a
// connection, where event-driven reads are available, before the Conn read
// or wrote anything (a TLS connection has its handshake behind it). Call it
// before the Conn is shared with other goroutines; afterwards the
// connection must be read with Watch (ReadMessage fails).
func (c *Conn) OwnDescriptor() bool {
	if c.blk != nil || c.ev.Load() != nil || !netpoll.Available() {
		return false
	}
	switch nc := c.nc.(type) {
	case *net.TCPConn:
		f := ownTCP(nc)
		if f == nil {
			return false
		}
		c.nc = f
	case *tls.Conn:
		pc, ok := nc.NetConn().(*PollConn)
		if !ok || pc.desc != nil || pc.owned != nil {
			return false
		}
		f := ownTCP(pc.TCPConn)
		if f == nil {
			return false
		}
		pc.owned, pc.TCPConn = f, noTCPConn
	default:
		return false
	}
	return true
}

// ownTCP duplicates tc's descriptor into an fdConn and closes tc; nil when
// it cannot (tc is left as it was).
func ownTCP(tc *net.TCPConn) *fdConn {
	ra, ok := tc.RemoteAddr().(*net.TCPAddr)
	if !ok {
		return nil
	}
	rc, err := tc.SyscallConn()
	if err != nil {
		return nil
	}
	nfd := -1
	if rc.Control(func(fd uintptr) {
		nfd, err = unix.FcntlInt(fd, unix.F_DUPFD_CLOEXEC, 0)
	}) != nil || err != nil || nfd < 0 {
		return nil
	}
	// The socket stays open through nfd: closing the TCPConn releases the
	// runtime's registration and the original descriptor only.
	_ = tc.Close()
	return &fdConn{remote: ra.AddrPort(), fd: int32(nfd)}
}

// incref starts a system call on the descriptor; false once closing.
func (f *fdConn) incref() bool {
	for {
		st := f.state.Load()
		if st&fdClosing != 0 {
			return false
		}
		if f.state.CompareAndSwap(st, st+1) {
			return true
		}
	}
}

// closing reports whether Close was called.
func (f *fdConn) closing() bool { return f.state.Load()&fdClosing != 0 }

// decref ends one; the last one after Close closes the descriptor.
func (f *fdConn) decref() {
	if f.state.Add(-1) == fdClosing {
		_ = unix.Close(int(f.fd))
	}
}

// Close closes the descriptor once no system call is under way on it (a
// waiting write is interrupted first).
func (f *fdConn) Close() error {
	for {
		st := f.state.Load()
		if st&fdClosing != 0 {
			return net.ErrClosed
		}
		if !f.state.CompareAndSwap(st, st|fdClosing) {
			continue
		}
		if w := f.wait.Load(); w != nil {
			w.mu.Lock()
			wc := w.conn
			w.mu.Unlock()
			if wc != nil {
				_ = wc.Close()
			}
		}
		if st == 0 {
			return os.NewSyscallError("close", unix.Close(int(f.fd)))
		}
		return nil
	}
}

// errNotRead: fdConn is read by Watch only.
var errNotRead = errors.New("wsconn: a connection with an owned descriptor is read by Watch only")

func (f *fdConn) Read([]byte) (int, error) { return 0, errNotRead }

func (f *fdConn) Write(p []byte) (int, error) {
	bufs := [1][]byte{p}
	n, err := f.writeBuffers(bufs[:])
	return int(n), err
}

// writeBuffers writes every byte of bufs (which it does not modify):
// writev(2) while the send buffer takes them, then, when it is full, a
// waiting write bounded by the write deadline.
func (f *fdConn) writeBuffers(bufs [][]byte) (int64, error) {
	if !f.incref() {
		return 0, f.opError("write", net.ErrClosed)
	}
	defer f.decref()
	iovp := iovecs.Get().(*[maxIovecs]unix.Iovec)
	iov, used := iovp[:], 0
	defer func() {
		clear(iov[:used]) // no pointers into written frames kept in the pool
		iovecs.Put(iovp)
	}()
	var total int64
	i, off := 0, 0 // the next byte: bufs[i][off]
	for i < len(bufs) {
		if f.deadlinePassed() {
			return total, f.opError("write", os.ErrDeadlineExceeded)
		}
		n := 0
		for j := i; j < len(bufs) && n < len(iov); j++ {
			b := bufs[j]
			if j == i {
				b = b[off:]
			}
			if len(b) == 0 {
				continue
			}
			iov[n].Base = unsafe.SliceData(b)
			iov[n].SetLen(len(b))
			n++
		}
		if n == 0 {
			break
		}
		used = max(used, n)
		r, _, e := syscall.Syscall(unix.SYS_WRITEV, uintptr(f.fd), uintptr(unsafe.Pointer(&iov[0])), uintptr(n))
		if e == unix.EINTR {
			continue
		}
		if e == unix.EAGAIN {
			rest := make(net.Buffers, 0, len(bufs)-i)
			rest = append(rest, bufs[i][off:])
			rest = append(rest, bufs[i+1:]...)
			m, err := f.slowWrite(rest)
			if err != errNoDescriptor {
				return total + m, err
			}
			// No descriptor to spare for the waiting write: wait for
			// room here, a slice at a time, seeing Close and the
			// deadline between slices.
			if err := f.pollWritable(); err != nil {
				return total, err
			}
			continue
		}
		if e != 0 {
			return total, f.opError("write", os.NewSyscallError("writev", e))
		}
		total += int64(r)
		for left := int(r); left > 0; {
			if k := len(bufs[i]) - off; left < k {
				off += left
				break
			} else {
				left -= k
				i, off = i+1, 0
			}
		}
		for i < len(bufs) && len(bufs[i]) == off {
			i, off = i+1, 0
		}
	}
	return total, nil
}

// maxIovecs is the most buffers one writev(2) takes here.
const maxIovecs = 64

// iovecs lends writeBuffers its system call's array: on a goroutine's
// stack it would grow every new flusher's stack.
var iovecs = sync.Pool{New: func() any { return new([maxIovecs]unix.Iovec) }}

// deadlinePassed reports whether the write deadline is set and past.
func (f *fdConn) deadlinePassed() bool {
	d := f.wdl.Load()
	return d != 0 && sinceEpoch() >= d
}

// errNoDescriptor: slowWrite found no descriptor to spare (the process or
// the system at its limit of open files).
var errNoDescriptor = errors.New("wsconn: no descriptor for a waiting write")

// pollSlice bounds each wait of pollWritable, so that it sees Close and a
// changed deadline soon; pollWritable is the fallback of a process out of
// descriptors, where a write waiting a little late does no harm.
const pollSlice = 20 * time.Millisecond

// pollWritable returns once the socket may take more bytes, or after
// sleeping up to pollSlice (the goroutine sleeps, not its thread: many
// writers may wait at once); it fails once the connection is closing or
// the write deadline passed. The caller holds a reference.
func (f *fdConn) pollWritable() error {
	if f.closing() {
		return f.opError("write", net.ErrClosed)
	}
	if f.deadlinePassed() {
		return f.opError("write", os.ErrDeadlineExceeded)
	}
	fds := [1]unix.PollFd{{Fd: f.fd, Events: unix.POLLOUT}}
	n, err := unix.Poll(fds[:], 0) // asks, never waits
	if err != nil && err != unix.EINTR {
		return f.opError("write", os.NewSyscallError("poll", err))
	}
	if n > 0 {
		return nil
	}
	wait := pollSlice
	if d := f.wdl.Load(); d != 0 {
		wait = min(wait, time.Duration(d-sinceEpoch()))
	}
	time.Sleep(wait)
	return nil
}

// dupForWait duplicates the descriptor for slowWrite; tests replace it to
// play a process out of descriptors (NoSpareDescriptors).
var dupForWait atomic.Pointer[func(fd int32) (int, error)]

func init() {
	dup := func(fd int32) (int, error) {
		return unix.FcntlInt(uintptr(fd), unix.F_DUPFD_CLOEXEC, 0)
	}
	dupForWait.Store(&dup)
}

// wallDeadline turns a monotonic write deadline back into a time.Time.
func wallDeadline(d int64) time.Time {
	if d == 0 {
		return time.Time{}
	}
	return time.Now().Add(time.Duration(d - sinceEpoch()))
}

// slowWrite writes bufs through a *net.TCPConn on a duplicate of the
// descriptor, which the runtime's poller watches: the write waits for
// room in the send buffer, until the write deadline (SetWriteDeadline and
// Close reach it meanwhile). It needs two descriptors for a moment (the
// duplicate, and net.FileConn's own); when the process has none to spare
// it returns errNoDescriptor, having written nothing. The caller holds a
// reference.
func (f *fdConn) slowWrite(bufs net.Buffers) (int64, error) {
	if f.closing() {
		return 0, f.opError("write", net.ErrClosed)
	}
	nfd, err := (*dupForWait.Load())(f.fd)
	if err == unix.EMFILE || err == unix.ENFILE {
		return 0, errNoDescriptor
	}
	if err != nil {
		return 0, f.opError("write", os.NewSyscallError("fcntl", err))
	}
	file := os.NewFile(uintptr(nfd), "")
	nc, err := net.FileConn(file)
	_ = file.Close()
	if errors.Is(err, unix.EMFILE) || errors.Is(err, unix.ENFILE) {
		return 0, errNoDescriptor
	}
	if err != nil {
		return 0, f.opError("write", err)
	}
	// wait is set before the deadline and closing are read: a
	// SetWriteDeadline or Close that this misses sees it and takes its mu
	// after.
	w := f.wait.Load()
	if w == nil {
		w = new(fdWait)
		if !f.wait.CompareAndSwap(nil, w) {
			w = f.wait.Load()
		}
	}
	w.mu.Lock()
	w.conn = nc
	_ = nc.SetWriteDeadline(wallDeadline(f.wdl.Load()))
	closing := f.closing()
	w.mu.Unlock()
	var n int64
	if closing {
		err = f.opError("write", net.ErrClosed)
	} else {
		n, err = bufs.WriteTo(nc)
	}
	w.mu.Lock()
	w.conn = nil
	w.mu.Unlock()
	_ = nc.Close()
	return n, err
}

// SetWriteDeadline keeps the deadline on the monotonic clock of read
// deadlines (monoDeadline).
func (f *fdConn) SetWriteDeadline(t time.Time) error {
	mono, _ := monoDeadline(t)
	f.setWriteDeadline(mono)
	return nil
}

// setWriteTimeout sets the write deadline d from now, reading the clock
// once: the write path's SetWriteDeadline(time.Now().Add(d)) reads it four
// times (Now's wall and monotonic clocks, then monoDeadline's two), once
// per write of a flusher.
func (f *fdConn) setWriteTimeout(d time.Duration) {
	if d <= 0 || d >= maxDeadline {
		f.setWriteDeadline(0)
		return
	}
	f.setWriteDeadline(sinceEpoch() + int64(d))
}

// setWriteDeadline stores mono (monoDeadline's clock, 0 for none) as the
// write deadline, and gives it to a write waiting for room.
func (f *fdConn) setWriteDeadline(mono int64) {
	f.wdl.Store(mono)
	if w := f.wait.Load(); w != nil {
		w.mu.Lock()
		if w.conn != nil {
			_ = w.conn.SetWriteDeadline(wallDeadline(f.wdl.Load()))
		}
		w.mu.Unlock()
	}
}

func (f *fdConn) SetReadDeadline(time.Time) error { return nil }

func (f *fdConn) SetDeadline(t time.Time) error { return f.SetWriteDeadline(t) }

func (f *fdConn) RemoteAddr() net.Addr { return net.TCPAddrFromAddrPort(f.remote) }

// LocalAddr asks the socket (getsockname): it is only needed for errors.
func (f *fdConn) LocalAddr() net.Addr {
	a := &net.TCPAddr{}
	if !f.incref() {
		return a
	}
	defer f.decref()
	sa, err := unix.Getsockname(int(f.fd))
	if err != nil {
		return a
	}
	switch sa := sa.(type) {
	case *unix.SockaddrInet4:
		return net.TCPAddrFromAddrPort(netip.AddrPortFrom(netip.AddrFrom4(sa.Addr), uint16(sa.Port)))
	case *unix.SockaddrInet6:
		return net.TCPAddrFromAddrPort(netip.AddrPortFrom(netip.AddrFrom16(sa.Addr), uint16(sa.Port)))
	}
	return a
}

func (f *fdConn) opError(op string, err error) error {
	return &net.OpError{Op: op, Net: "tcp", Source: f.LocalAddr(), Addr: f.RemoteAddr(), Err: err}
}

// rawFD is the fdConn as the syscall.RawConn the event-driven reader reads
// through: each call holds a reference, so that a concurrent Close never
// lets it touch a reused descriptor number.
type rawFD fdConn

func (r *rawFD) Control(fn func(fd uintptr)) error {
	f := (*fdConn)(r)
	if !f.incref() {
		return net.ErrClosed
	}
	defer f.decref()
	fn(uintptr(f.fd))
	return nil
}

// Read calls fn once: the reader's reads never wait.
func (r *rawFD) Read(fn func(fd uintptr) bool) error {
	return r.Control(func(fd uintptr) { fn(fd) })
}

// Write calls fn once; nothing writes through it.
func (r *rawFD) Write(fn func(fd uintptr) bool) error {
	return r.Read(fn)
}

// rawConn and descriptor make fdConn an ownedConn (conn.go).
func (f *fdConn) rawConn() syscall.RawConn { return (*rawFD)(f) }
func (f *fdConn) descriptor() int32        { return f.fd }
