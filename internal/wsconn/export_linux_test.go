//go:build linux && !scnoepoll

package wsconn

import (
	"net"
	"unsafe"

	"golang.org/x/sys/unix"
)

// NoSpareDescriptors makes every waiting write of an owned descriptor find
// the process out of descriptors until the returned function is called.
func NoSpareDescriptors() (restore func()) {
	none := func(int32) (int, error) { return -1, unix.EMFILE }
	old := dupForWait.Swap(&none)
	return func() { dupForWait.Store(old) }
}

// The sizes of what an idle watched connection holds.
const (
	ConnSize     = unsafe.Sizeof(Conn{})
	EvReaderSize = unsafe.Sizeof(evReader{})
	FdConnSize   = unsafe.Sizeof(fdConn{})
)

// LocalAddrOf is the local address of c's connection (shown in errors).
func LocalAddrOf(c *Conn) net.Addr { return c.nc.LocalAddr() }
