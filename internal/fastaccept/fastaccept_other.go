//go:build !linux || scnoepoll

package fastaccept

import "net"

// Wrap reports false on this build: serve l as it is.
func Wrap(l net.Listener, cfg Config) (net.Listener, bool) { return l, false }
