//go:build !linux || scnoepoll

package wsconn

// OwnDescriptor keeps the connection as it is where event-driven reads are
// not available (see fdconn_linux.go): it reports false.
func (c *Conn) OwnDescriptor() bool { return false }
