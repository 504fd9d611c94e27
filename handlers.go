package socketcluster

import (
	"fmt"
	"sync"
)

// Handlers are the callback alternative to procedure and receiver streams:
// a handler registered on the server serves a name for every socket, is
// called directly from the socket's inbound loop (no queue, no goroutine
// switch) and costs nothing per connection. A handler that waits delays the
// later messages of that socket only; start a goroutine for slow work.
// Stream consumers of the same name, if any, get the request too.

type handlers struct {
	mu         sync.RWMutex
	procedures map[string]func(*Request)
	receivers  map[string]func(*Socket, Data)
}

// HandleProcedure serves invokes of name from every socket with fn, which
// answers with req.End or req.Error.
func (srv *Server) HandleProcedure(name string, fn func(req *Request)) {
	srv.handlers.mu.Lock()
	defer srv.handlers.mu.Unlock()
	if srv.handlers.procedures == nil {
		srv.handlers.procedures = make(map[string]func(*Request))
	}
	if fn == nil {
		delete(srv.handlers.procedures, name)
		return
	}
	srv.handlers.procedures[name] = fn
}

// HandleReceiver serves transmits to name from every socket with fn.
func (srv *Server) HandleReceiver(name string, fn func(s *Socket, data Data)) {
	srv.handlers.mu.Lock()
	defer srv.handlers.mu.Unlock()
	if srv.handlers.receivers == nil {
		srv.handlers.receivers = make(map[string]func(*Socket, Data))
	}
	if fn == nil {
		delete(srv.handlers.receivers, name)
		return
	}
	srv.handlers.receivers[name] = fn
}

func (srv *Server) procedureHandler(name string) func(*Request) {
	srv.handlers.mu.RLock()
	defer srv.handlers.mu.RUnlock()
	return srv.handlers.procedures[name]
}

func (srv *Server) receiverHandler(name string) func(*Socket, Data) {
	srv.handlers.mu.RLock()
	defer srv.handlers.mu.RUnlock()
	return srv.handlers.receivers[name]
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
