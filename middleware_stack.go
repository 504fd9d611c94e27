package socketcluster

import (
	"sync"
	"sync/atomic"
)

// Stacked middleware: components that each guard part of the traffic
// (a gateway's proxy, presence…) add functions to a line without taking
// the line's single SetMiddleware function from the application.

type stackEntry struct {
	id int
	fn Middleware
}

type middlewareStack struct {
	mu     sync.RWMutex
	nextID int
	lines  map[MiddlewareLine][]stackEntry
	// used counts the functions in lines (written under mu), so that a
	// server without stacked middleware decides without taking mu.
	used atomic.Int32
}

// UseMiddleware adds fn to a middleware line, after the line's
// SetMiddleware function and the functions added before it: an action is
// allowed when every one of them allows it, in that order (each sees the
// data as the previous one left it). The returned func removes fn. An
// unknown line or a nil fn is an InvalidArgumentsError.
func (srv *Server) UseMiddleware(line MiddlewareLine, fn Middleware) (remove func(), err error) {
	if srv.middleware.line(line) == nil {
		return nil, NewError("InvalidArgumentsError", "Middleware "+string(line)+" type is not supported")
	}
	if fn == nil {
		return nil, NewError("InvalidArgumentsError", "Middleware function is nil")
	}
	st := &srv.stack
	st.mu.Lock()
	if st.lines == nil {
		st.lines = make(map[MiddlewareLine][]stackEntry)
	}
	st.nextID++
	id := st.nextID
	st.lines[line] = append(st.lines[line], stackEntry{id, fn})
	st.used.Add(1)
	st.mu.Unlock()
	return func() {
		st.mu.Lock()
		defer st.mu.Unlock()
		for i, e := range st.lines[line] {
			if e.id == id {
				st.lines[line] = append(st.lines[line][:i:i], st.lines[line][i+1:]...)
				st.used.Add(-1)
				return
			}
		}
	}, nil
}

func (st *middlewareStack) get(line MiddlewareLine) []stackEntry {
	if st.used.Load() == 0 {
		return nil
	}
	st.mu.RLock()
	defer st.mu.RUnlock()
	return st.lines[line]
}
