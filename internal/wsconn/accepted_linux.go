//go:build linux && !scnoepoll

package wsconn

import (
	"net"
	"net/netip"
	"os"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/socketcluster-go/socketcluster/internal/netpoll"
)

// Accepted is a TCP socket accepted with accept4(2) directly, without the
// net package: the descriptor is owned from the start (as after
// OwnDescriptor), so the runtime's poller never registers it and no
// descriptor is duplicated. Whoever reads its HTTP request registers it
// with netpoll through RawConn and records the Desc it read through
// (SetRegistration): a Conn made from it (New, as Upgrade does after a
// Hijack that returned it) takes the descriptor and that Desc's
// registration over (Watch), or registers anew when the Desc was never
// registered (the head was read at once, netpoll.Desc.StartReadable).
//
// It is also a full net.Conn for anyone else who hijacks it: its first
// Read (or Plain) moves the socket to a *net.TCPConn of the net package
// (TCPConn), through which every later call goes; until then it writes
// through the owned descriptor.
type Accepted struct {
	*fdConn
	reg   *netpoll.Desc
	taken bool // a Conn was made of it (New)

	mu     sync.Mutex
	plain  atomic.Pointer[net.TCPConn] // set by the first Read
	closed bool                        // guarded by mu
	rdl    time.Time                   // read deadline for the net.TCPConn to come; guarded by mu
	wdl    time.Time                   // write deadline, the same
}

// NewAccepted takes ownership of fd, a connected, non-blocking TCP socket
// whose peer is remote.
func NewAccepted(fd int, remote netip.AddrPort) *Accepted {
	return &Accepted{fdConn: &fdConn{remote: remote, fd: int32(fd)}}
}

// RawConn is the socket as a syscall.RawConn, for netpoll: each call
// holds the descriptor open, so a concurrent Close cannot make it touch a
// reused number.
func (a *Accepted) RawConn() syscall.RawConn { return a.rawConn() }

// SetRegistration records the Desc that watches the socket now; a Conn
// made from a takes it over (netpoll.Desc.StartAfter) when watched.
func (a *Accepted) SetRegistration(d *netpoll.Desc) { a.reg = d }

// Taken reports whether a Conn was made of a (New): the Conn then owns
// the socket. It must be asked in the goroutine that made it, or after.
func (a *Accepted) Taken() bool { return a.taken }

func (a *Accepted) unwrapAccepted() (net.Conn, *netpoll.Desc) {
	a.taken = true
	if tc := a.plain.Load(); tc != nil {
		return tc, nil // read as a plain connection already
	}
	return a.fdConn, a.reg
}

// Plain returns the socket as a *net.TCPConn, moving it there on the
// first call (TCPConn); every call on a goes to it from then on.
func (a *Accepted) Plain() (*net.TCPConn, error) {
	if tc := a.plain.Load(); tc != nil {
		return tc, nil
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	if tc := a.plain.Load(); tc != nil {
		return tc, nil
	}
	if a.closed {
		return nil, a.opError("read", net.ErrClosed)
	}
	tc, err := a.TCPConn()
	if err != nil {
		a.closed = true
		return nil, err
	}
	_ = tc.SetReadDeadline(a.rdl)
	_ = tc.SetWriteDeadline(a.wdl)
	a.plain.Store(tc)
	return tc, nil
}

func (a *Accepted) Read(p []byte) (int, error) {
	tc, err := a.Plain()
	if err != nil {
		return 0, err
	}
	return tc.Read(p)
}

func (a *Accepted) Write(p []byte) (int, error) {
	if tc := a.plain.Load(); tc != nil {
		return tc.Write(p)
	}
	return a.fdConn.Write(p)
}

func (a *Accepted) Close() error {
	a.mu.Lock()
	defer a.mu.Unlock()
	if tc := a.plain.Load(); tc != nil {
		return tc.Close()
	}
	if a.closed {
		return net.ErrClosed
	}
	a.closed = true
	return a.fdConn.Close()
}

func (a *Accepted) SetDeadline(t time.Time) error {
	a.mu.Lock()
	defer a.mu.Unlock()
	if tc := a.plain.Load(); tc != nil {
		return tc.SetDeadline(t)
	}
	a.rdl, a.wdl = t, t
	return a.fdConn.SetWriteDeadline(t)
}

func (a *Accepted) SetReadDeadline(t time.Time) error {
	a.mu.Lock()
	defer a.mu.Unlock()
	if tc := a.plain.Load(); tc != nil {
		return tc.SetReadDeadline(t)
	}
	a.rdl = t
	return nil
}

func (a *Accepted) SetWriteDeadline(t time.Time) error {
	a.mu.Lock()
	defer a.mu.Unlock()
	if tc := a.plain.Load(); tc != nil {
		return tc.SetWriteDeadline(t)
	}
	a.wdl = t
	return a.fdConn.SetWriteDeadline(t)
}

func (a *Accepted) LocalAddr() net.Addr {
	if tc := a.plain.Load(); tc != nil {
		return tc.LocalAddr()
	}
	return a.fdConn.LocalAddr()
}

// TCPConn hands the socket to the net package: it returns a *net.TCPConn
// on the same socket (a duplicate descriptor, watched by the runtime's
// poller) and closes the owned descriptor. For connections that turn out
// not to be WebSocket upgrades, to be served by net/http (Plain, for a
// hijacker, does the same and keeps a working).
func (a *Accepted) TCPConn() (*net.TCPConn, error) {
	if a.reg != nil {
		// The request's registration, edge-triggered, would outlive the
		// owned descriptor through the duplicate.
		a.reg.Unwatch()
	}
	dup := -1
	var derr error
	if err := a.rawConn().Control(func(fd uintptr) {
		dup, derr = unix.FcntlInt(fd, unix.F_DUPFD_CLOEXEC, 0)
	}); err != nil {
		return nil, err
	}
	_ = a.fdConn.Close()
	if derr != nil {
		return nil, os.NewSyscallError("fcntl", derr)
	}
	f := os.NewFile(uintptr(dup), "")
	nc, err := net.FileConn(f) // a duplicate of its own
	_ = f.Close()
	if err != nil {
		return nil, err
	}
	tc, ok := nc.(*net.TCPConn)
	if !ok {
		_ = nc.Close()
		return nil, &net.OpError{Op: "accept", Net: "tcp", Err: syscall.EPROTOTYPE}
	}
	return tc, nil
}
