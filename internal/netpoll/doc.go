// Package netpoll reads many idle connections without a goroutine or a
// buffer per connection.
//
// A connection is registered as a Desc with a handler. A small, fixed
// number of pollers (one goroutine each, blocked in epoll_wait; see Lend)
// watch the registered connections. When one becomes readable its handler
// runs in a worker goroutine: it reads everything available without
// waiting (Desc.Read) and returns. A connection's handler never runs twice
// at once (an event that comes while it runs marks the Desc pending, and
// the handler runs again after), so its data is processed strictly in
// order by one goroutine at a time, while different connections are
// handled in parallel.
//
// A Desc set up with Init is registered with EPOLLONESHOT: the first event
// disarms it, and it is re-armed (one epoll_ctl) after each handler run,
// so a handler may leave data unread or hand its open connection on. One
// set up with InitEdge is registered edge-triggered and armed once, for a
// handler that always reads the socket empty and closes the connection
// when it is done with it: no system call per run besides the reads. A
// short read counts as empty until an event said the peer hung up or sent
// urgent data (Desc.ReadToEnd).
//
// A connection known to be readable already (its data came before it
// was accepted) starts with StartReadable: its handler runs at once, and
// the connection is registered only if that run returns true.
//
// A handler may hand its open connection over to another Desc
// (StartAfter): the new Desc takes the registration over. Between two
// edge-triggered Descs that costs no system call: the new one takes the
// old one's place, an event the old one had not handled yet is passed
// on, and the new handler runs at once if the old one's last Read filled
// its buffer. Otherwise one epoll_ctl changes the registration, or makes
// it when the old one was never registered. A
// connection handed on to be read elsewhere leaves the poller with
// Unwatch.
//
// Workers come from a pool that can never deadlock: a readable connection
// is handed to an idle worker when there is one, and to a new goroutine
// otherwise, so a handler that blocks (a slow middleware, say) holds up
// only its own connection. A worker that finished waits for more work;
// one goroutine, while any connection is registered, tells the workers
// that stayed idle through a whole 100 ms period to exit. Pollers and
// idle workers exit when no connection is registered, and start again
// with the next one.
//
// Trigger runs a connection's handler as if it were readable; it is how a
// closed connection or an expired read deadline reaches the handler, which
// then sees the error from Read and ends the registration by returning
// false. Each state change of a Desc is one atomic operation:
//
//	idle --readable/Trigger--> running --handler returns true (Init: re-armed)--> idle
//	running --readable/Trigger--> pending (the handler runs again after)
//	running --handler returns false--> done (never runs again)
//	running --handler handed over (StartAfter) and returns false--> done; a
//	        pending event, or a later Trigger, goes to the new Desc
//	        (unless the old one was never registered: see below)
//
// A Desc started with StartReadable begins running, unregistered: when
// its handler returns true it is registered and idle (or runs again, if
// Trigger was called meanwhile); when it returns false it is done, and
// when it handed over, a Trigger it got during that run is dropped (its
// successor registers anew, and the kernel announces what is waiting).
//
// Writes are not this package's business: connections keep writing through
// net.Conn (the Go runtime's own poller), and reads go through the
// connection's syscall.RawConn, so a concurrent Close can never make a read
// or a re-arm touch a reused file descriptor.
//
// Event-driven reading exists on Linux only (epoll). Elsewhere, or when the
// module is built with the tag scnoepoll, Available reports false and
// callers keep a goroutine per connection.
package netpoll

import "errors"

// ErrWouldBlock is returned by Desc.Read when nothing is available now.
var ErrWouldBlock = errors.New("netpoll: no data available")

// Handler is what a Desc calls when its connection may be readable (see
// Desc.Init). An interface rather than a function, so that a connection's
// owner can pass itself (a pointer in an interface) and not a method
// value, which would cost each idle connection an allocation.
type Handler interface {
	Ready() bool
}

// HandlerFunc is a function as a Handler.
type HandlerFunc func() bool

// Ready calls f.
func (f HandlerFunc) Ready() bool { return f() }
