package fastaccept

import (
	"net/http"
	"time"
)

// Config says which requests Wrap's listener serves itself, and how.
type Config struct {
	// Handler serves the upgrade requests taken (the http.Server's
	// handler, so that they are routed as net/http would route them).
	Handler http.Handler
	// Server is the http.Server the listener is for: the value of
	// http.ServerContextKey in the requests' contexts.
	Server *http.Server
	// Path is the only request path taken; requests for other paths go
	// to Server.
	Path string
	// MaxHeaderBytes: a head that is not complete within this many bytes
	// goes to Server (which answers 431). Default 16 KiB.
	MaxHeaderBytes int
	// ReadHeaderTimeout: a connection whose head is not complete this
	// long after it was accepted is closed (0: no limit). The listener
	// defers accepts until a connection's first data has come, or for
	// about a second (longer when the kernel's retransmitted handshake
	// packets are lost): a connection that sends nothing lives that
	// much longer.
	ReadHeaderTimeout time.Duration
	// NoDeferAccept accepts connections at once and registers each with
	// netpoll to read its head (as where TCP_DEFER_ACCEPT is refused);
	// for tests of that path.
	NoDeferAccept bool
	// Dropped, if set, is called (from any goroutine) for each connection
	// closed before a complete request: the header timeout passed, or
	// the peer sent part of a head and closed. A connection that sent
	// nothing and closed (a port probe) is not reported.
	Dropped func()
}
