//go:build unix

package socketcluster_test

import (
	"context"
	"net"
	"syscall"
	"testing"

	sc "github.com/socketcluster-go/socketcluster"
)

// ListenTCP's connections have no TCP keep-alive probes while the server
// pings its sockets, and the system's default ones when it does not.
func TestListenTCPKeepAlive(t *testing.T) {
	for _, disabled := range []bool{false, true} {
		srv, err := sc.New(sc.Options{Logger: quietLogger, PingTimeoutDisabled: disabled})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = srv.Close(context.Background()) })
		l, err := srv.ListenTCP("127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		c, err := net.Dial("tcp", l.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		a, err := l.Accept()
		if err != nil {
			t.Fatal(err)
		}
		raw, err := a.(*net.TCPConn).SyscallConn()
		if err != nil {
			t.Fatal(err)
		}
		var on int
		var opErr error
		if err := raw.Control(func(fd uintptr) {
			on, opErr = syscall.GetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_KEEPALIVE)
		}); err != nil || opErr != nil {
			t.Fatal(err, opErr)
		}
		if want := disabled; (on != 0) != want {
			t.Errorf("PingTimeoutDisabled %v: SO_KEEPALIVE %d", disabled, on)
		}
		_ = a.Close()
		_ = c.Close()
		_ = l.Close()
	}
}
