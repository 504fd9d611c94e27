// Package fastaccept accepts TCP connections for an http.Server and serves
// their WebSocket upgrade requests without net/http.
//
// net/http gives every connection a goroutine, which grows its stack
// while it reads the request and runs the handler, and the net package
// registers every connection with the runtime's poller; a server that
// then reads the upgraded connection with netpoll and owns its descriptor
// (wsconn.OwnDescriptor) duplicates the descriptor and undoes the
// registration. Here the listener's connections are accepted with
// accept4(2) directly and owned from the start (wsconn.Accepted). The
// listening socket defers accepts (TCP_DEFER_ACCEPT) until a
// connection's first data has come, so each accepted connection's head is
// read at once by a netpoll handler (netpoll.Desc.StartReadable) without
// a goroutine of its own or an event; a connection whose head is not all
// there yet is registered with netpoll (edge-triggered, as the upgraded
// connection's reader will be) and read as the rest comes. A connection
// that sends nothing is accepted after about a second all the same, and
// its header timeout starts then. Then:
//
//   - a plain WebSocket upgrade (GET, HTTP/1.1, one Host, Upgrade and
//     Connection: upgrade, no body, the configured path) is served at once
//     by the handler, in the netpoll worker, with a ResponseWriter that
//     can be hijacked; the upgraded connection's reader is registered
//     then, or, when the head needed events, takes the head's
//     registration over as it is, without a system call
//     (netpoll.Desc.StartAfter);
//   - anything else (another path, a malformed or unusual request, a head
//     longer than the limit) is handed to the http.Server unchanged: its
//     Accept returns the connection, no longer watched by netpoll, as a
//     *net.TCPConn whose first reads replay the bytes read so far, so
//     net/http answers it exactly as it would have;
//   - a head not complete within the header timeout is dropped, as
//     net/http drops it, and reported to Config.Dropped, as is a
//     connection that sent part of a head and closed.
//
// A taken request is served as net/http would serve it (a panic of the
// handler is logged to the http.Server's ErrorLog and the connection
// closed; a response that is not an upgrade is written with Connection:
// close), but the http.Server's ConnState, ConnContext and BaseContext
// hooks do not see it, and its context is never cancelled. A handler
// other than wsconn's upgrade may hijack it too: it gets a working
// net.Conn.
//
// It works on Linux with event-driven reads (netpoll.Available); Wrap
// reports false elsewhere, and the listener is then used as it is.
package fastaccept
