// Package testnet holds network helpers for the tests of the internal
// packages; it imports nothing of this module, so any package's own tests
// can use it.
package testnet

import (
	"net"
	"testing"
)

// Pairs returns n connected loopback TCP pairs, the accepted (server)
// ends and the dialled (client) ends, closed when the test ends.
func Pairs(tb testing.TB, n int) (servers, clients []*net.TCPConn) {
	tb.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	defer l.Close()
	for range n {
		c, err := net.Dial("tcp", l.Addr().String())
		if err != nil {
			tb.Fatal(err)
		}
		s, err := l.Accept()
		if err != nil {
			_ = c.Close()
			tb.Fatal(err)
		}
		servers = append(servers, s.(*net.TCPConn))
		clients = append(clients, c.(*net.TCPConn))
	}
	tb.Cleanup(func() {
		for i := range servers {
			_ = servers[i].Close()
			_ = clients[i].Close()
		}
	})
	return servers, clients
}
