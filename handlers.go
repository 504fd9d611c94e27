package socketcluster

import (
	"fmt"
	"maps"
	"sync"
	"sync/atomic"
)

// Handlers are the callback alternative to procedure and receiver streams:
// a handler registered on the server serves a name for every socket, is
// called directly from the socket's inbound loop (no queue, no goroutine
// switch) and costs nothing per connection. A handler that waits delays the
// later messages of that socket only; start a goroutine for slow work.
// Stream consumers of the same name, if any, get the request too.

// handlers holds the registered handlers as maps that are never changed
// once published: a lookup (every invoke and transmit) is one atomic load,
// with no lock whose counter the workers of every core would write;
// registering (rare) copies the map under mu.
type handlers struct {
	mu         sync.Mutex // serialises registrations
	procedures atomic.Pointer[map[string]func(*Request)]
	receivers  atomic.Pointer[map[string]func(*Socket, Data)]
}

// HandleProcedure serves invokes of name from every socket with fn, which
// answers with req.End or req.Error.
func (srv *Server) HandleProcedure(name string, fn func(req *Request)) {
	srv.handlers.mu.Lock()
	defer srv.handlers.mu.Unlock()
	srv.handlers.procedures.Store(withHandler(srv.handlers.procedures.Load(), name, fn, fn == nil))
}

// HandleReceiver serves transmits to name from every socket with fn.
func (srv *Server) HandleReceiver(name string, fn func(s *Socket, data Data)) {
	srv.handlers.mu.Lock()
	defer srv.handlers.mu.Unlock()
	srv.handlers.receivers.Store(withHandler(srv.handlers.receivers.Load(), name, fn, fn == nil))
}

// withHandler returns a copy of *old (nil: none) with name set to fn, or
// deleted (remove: fn is nil).
func withHandler[F any](old *map[string]F, name string, fn F, remove bool) *map[string]F {
	m := make(map[string]F)
	if old != nil {
		maps.Copy(m, *old)
	}
	if remove {
		delete(m, name)
	} else {
		m[name] = fn
	}
	return &m
}

func (srv *Server) procedureHandler(name string) func(*Request) {
	if m := srv.handlers.procedures.Load(); m != nil {
		return (*m)[name]
	}
	return nil
}

func (srv *Server) receiverHandler(name string) func(*Socket, Data) {
	if m := srv.handlers.receivers.Load(); m != nil {
		return (*m)[name]
	}
	return nil
}

// safeCall runs application code, turning a panic into a server error
// event instead of a crashed process.
func (srv *Server) safeCall(fn func()) {
	defer func() {
		if r := recover(); r != nil {
			srv.EmitError(NewError("HandlerPanicError", fmt.Sprint(r)))
			srv.opts.Logger.Error("socketcluster: handler panicked", "panic", fmt.Sprint(r))
		}
	}()
	fn()
}
