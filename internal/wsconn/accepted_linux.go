//go:build linux && !scnoepoll

package wsconn

import (
	"net"
	"net/netip"
	"os"
	"syscall"

	"golang.org/x/sys/unix"

	"github.com/socketcluster-go/socketcluster/internal/netpoll"
)

// Accepted is a TCP socket accepted with accept4(2) directly, without the
// net package: the descriptor is the Conn's from the start (as after
// OwnDescriptor), so the runtime's poller never registers it and no
// descriptor is duplicated. Whoever reads its HTTP request registers it
// with netpoll through RawConn and records the registration
// (SetRegistration): a Conn made from it (New, Upgrade after a Hijack that
// returned it) takes that registration over in Watch. It implements
// net.Conn for writing, like an owned descriptor; Read fails.
type Accepted struct {
	*fdConn
	reg   *netpoll.Desc
	taken bool // a Conn was made of it (New)
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
	return a.fdConn, a.reg
}

// TCPConn hands the socket to the net package: it returns a *net.TCPConn
// on the same socket (a duplicate descriptor, watched by the runtime's
// poller) and closes a. For connections that turn out not to be
// WebSocket upgrades, to be served by net/http.
func (a *Accepted) TCPConn() (*net.TCPConn, error) {
	var dup int
	var derr error
	if err := a.rawConn().Control(func(fd uintptr) {
		dup, derr = unix.FcntlInt(fd, unix.F_DUPFD_CLOEXEC, 0)
	}); err != nil {
		return nil, err
	}
	_ = a.Close()
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
