package socketcluster

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
)

// The SocketCluster 14 event API: scServer.on(event, handler),
// socket.on(event, handler), socket.emit(event, data, callback) and off.
// It is kept so that v14 apps can be ported line by line; new code uses
// Listener / Listen for events, Procedure and Receiver (or
// Server.HandleProcedure and Server.HandleReceiver) for client messages,
// and Invoke / Transmit to call the client. The version 14 middleware is
// in middleware_v14.go.
//
// Handlers registered here cost no goroutine: they are called directly by
// the code that emits the event or handles the client's message, in order,
// as Node's EventEmitter calls v14 handlers. A handler that blocks delays
// what comes after it on that socket (for server events: on the socket the
// event is about); start a goroutine for slow work. Server handlers are
// called from many sockets at once. A handler that panics is recovered and
// reported as a server "error" event with a HandlerPanicError.

// v14Handlers holds the v14 handlers of a Server or a Socket. Its maps are
// guarded by mu; a Server's or Socket's pointer to it is made by the first
// registration (compare-and-swap) and never changes after.
type v14Handlers struct {
	mu     sync.RWMutex
	events map[string][]func(Event)                        // own events (Server.On, Socket.OnEvent)
	client map[string][]func(Data, func(err error, v any)) // client messages (Socket.On)
}

func (h *v14Handlers) addEvent(name string, fn func(Event)) {
	h.mu.Lock()
	if h.events == nil {
		h.events = make(map[string][]func(Event))
	}
	h.events[name] = append(h.events[name], fn)
	h.mu.Unlock()
}

func (h *v14Handlers) eventHandlers(name string) []func(Event) {
	h.mu.RLock()
	defer h.mu.RUnlock()
	return h.events[name]
}

func (h *v14Handlers) clientHandlers(name string) []func(Data, func(error, any)) {
	h.mu.RLock()
	defer h.mu.RUnlock()
	return h.client[name]
}

// off removes the handlers of name, or all of them for "".
func (h *v14Handlers) off(name string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if name == "" {
		h.events, h.client = nil, nil
		return
	}
	delete(h.events, name)
	delete(h.client, name)
}

// Event names of the Server and of a Socket, from the event types.
var (
	serverEventNames = eventNames(HandshakeEvent{}, ConnectionEvent{}, ConnectionAbortEvent{}, DisconnectionEvent{},
		ClosureEvent{}, SubscriptionEvent{}, UnsubscriptionEvent{}, AuthenticationEvent{}, DeauthenticationEvent{},
		AuthenticationStateChangeEvent{}, BadSocketAuthTokenEvent{}, ReadyEvent{}, WarningEvent{}, ErrorEvent{},
		SlowConsumerEvent{}, BrokerOutageEvent{})
	socketEventNames = eventNames(ConnectEvent{}, ConnectAbortEvent{}, DisconnectEvent{}, CloseEvent{}, EndEvent{},
		SubscribeEvent{}, UnsubscribeEvent{}, AuthenticateEvent{}, DeauthenticateEvent{}, AuthStateChangeEvent{},
		AuthTokenSignedEvent{}, BadAuthTokenEvent{}, MessageEvent{}, RawEvent{}, ErrorEvent{}, SlowConsumerEvent{})
)

func eventNames(evs ...Event) map[string]bool {
	m := make(map[string]bool, len(evs))
	for _, e := range evs {
		m[e.EventName()] = true
	}
	return m
}

func nameList(m map[string]bool) string {
	names := make([]string, 0, len(m))
	for n := range m {
		names = append(names, n)
	}
	sort.Strings(names)
	return strings.Join(names, ", ")
}

// hasEventHandlers reports whether p holds handlers of the event name.
func hasEventHandlers(p *atomic.Pointer[v14Handlers], name string) bool {
	h := p.Load()
	return h != nil && len(h.eventHandlers(name)) > 0
}

// callEvent calls the handlers of e's name, if any.
func (srv *Server) callEvent(p *atomic.Pointer[v14Handlers], e Event) {
	h := p.Load()
	if h == nil {
		return
	}
	for _, fn := range h.eventHandlers(e.EventName()) {
		if _, isErr := e.(ErrorEvent); isErr {
			// A panic here is only logged: reporting it as an error event
			// would call this handler again.
			func() {
				defer func() {
					if r := recover(); r != nil {
						srv.opts.Logger.Error("socketcluster: error event handler panicked", "panic", fmt.Sprint(r))
					}
				}()
				fn(e)
			}()
			continue
		}
		srv.safeCall(func() { fn(e) })
	}
}

// ---- Server ----

// On is the SocketCluster 14 scServer.on(event, handler): handler is called
// with each server event of that name (a ConnectionEvent for
// "connection"…; see the event types for the names), without a goroutine
// of its own (see above). An unknown name is refused with an
// InvalidArgumentsError listing the names.
//
// The reference emits "ready" after its constructor returned; New emits it
// before returning, when nobody can listen yet. So On("ready", handler) on
// a server that is ready (every server New returned) calls handler at
// once; IsReady says the same.
//
// Deprecated: use Listener or Listen, e.g.
// for ev := range Listen[ConnectionEvent](srv).All(ctx). On is kept for
// porting SocketCluster 14 apps.
func (srv *Server) On(event string, handler func(Event)) error {
	if !serverEventNames[event] {
		return NewError("InvalidArgumentsError", "Server.On: "+quote(event)+" is not a server event; use one of "+nameList(serverEventNames))
	}
	if handler == nil {
		return NewError("InvalidArgumentsError", "Server.On: the handler is nil")
	}
	srv.v14handlers().addEvent(event, handler)
	if event == (ReadyEvent{}).EventName() && srv.IsReady() {
		srv.safeCall(func() { handler(ReadyEvent{}) })
	}
	return nil
}

// Off removes the handlers added with On for event ("" for all).
//
// Deprecated: stop the consumer (or break out of the loop) that reads the
// listener instead. Off is kept for porting SocketCluster 14 apps.
func (srv *Server) Off(event string) {
	if h := srv.v14h.Load(); h != nil {
		h.off(event)
	}
}

func (srv *Server) v14handlers() *v14Handlers {
	if h := srv.v14h.Load(); h != nil {
		return h
	}
	srv.v14h.CompareAndSwap(nil, &v14Handlers{})
	return srv.v14h.Load()
}

// ---- Socket ----

func (s *Socket) v14handlers() *v14Handlers {
	if h := s.v14h.Load(); h != nil {
		return h
	}
	s.v14h.CompareAndSwap(nil, &v14Handlers{})
	return s.v14h.Load()
}

// On is the SocketCluster 14 socket.on(event, handler) for messages from
// the client: handler gets the client's transmits of that name (respond is
// then a no-op) and its invokes (v14 emit with a callback: respond answers
// once, a non-nil err as an error, else data). It is called from the
// socket's inbound processing, without a goroutine of its own (see above);
// stream consumers and Server.HandleProcedure / HandleReceiver of the same
// name get the message too.
//
// The socket's own events ("disconnect", "error", "authenticate"…, see the
// event types) are never sent by a client: On refuses their names with an
// InvalidArgumentsError that points to OnEvent, instead of registering a
// handler that would wait for a client message of that name forever.
//
// Deprecated: use Procedure and Receiver (for ... range
// s.Procedure(name).All(ctx)) or Server.HandleProcedure and
// HandleReceiver. On is kept for porting SocketCluster 14 apps.
func (s *Socket) On(event string, handler func(data Data, respond func(err error, data any))) error {
	if socketEventNames[event] {
		return NewError("InvalidArgumentsError", "Socket.On: "+quote(event)+" is an event of the socket, not a message from the client; use Socket.OnEvent or Socket.Listener for it")
	}
	if handler == nil {
		return NewError("InvalidArgumentsError", "Socket.On: the handler is nil")
	}
	h := s.v14handlers()
	h.mu.Lock()
	if h.client == nil {
		h.client = make(map[string][]func(Data, func(error, any)))
	}
	h.client[event] = append(h.client[event], handler)
	h.mu.Unlock()
	return nil
}

// OnEvent is the SocketCluster 14 socket.on(event, handler) for the
// socket's own events: handler is called with each event of that name (a
// DisconnectEvent for "disconnect"…), without a goroutine of its own (see
// above). An unknown name is refused with an InvalidArgumentsError listing
// the names. The handlers are removed when the socket ends, after its
// "end" event.
//
// Deprecated: use Listener or Listen, e.g.
// for ev := range Listen[DisconnectEvent](s).All(ctx). OnEvent is kept for
// porting SocketCluster 14 apps.
func (s *Socket) OnEvent(event string, handler func(Event)) error {
	if !socketEventNames[event] {
		return NewError("InvalidArgumentsError", "Socket.OnEvent: "+quote(event)+" is not a socket event; use one of "+nameList(socketEventNames)+" (Socket.On handles messages from the client)")
	}
	if handler == nil {
		return NewError("InvalidArgumentsError", "Socket.OnEvent: the handler is nil")
	}
	s.v14handlers().addEvent(event, handler)
	return nil
}

// Off removes the handlers added with On and OnEvent for event ("" for
// all).
//
// Deprecated: stop the consumers of the procedure, receiver or listener
// instead. Off is kept for porting SocketCluster 14 apps.
func (s *Socket) Off(event string) {
	if h := s.v14h.Load(); h != nil {
		h.off(event)
	}
}

// Emit is the SocketCluster 14 socket.emit(event, data, callback): without
// a callback it transmits; with one it invokes and calls back with the
// answer (from a goroutine that lives until the answer or the ack
// timeout).
//
// Deprecated: use Transmit, or Invoke (which waits and takes a context).
// Emit is kept for porting SocketCluster 14 apps.
func (s *Socket) Emit(event string, data any, callback func(err error, data Data)) {
	if callback == nil {
		_ = s.Transmit(event, data)
		return
	}
	go func() {
		d, err := s.Invoke(context.Background(), event, data)
		callback(err, d)
	}()
}

// callClientHandlers hands a client's transmit (req nil) or invoke to the
// handlers added with On.
func (s *Socket) callClientHandlers(event string, data Data, req *Request) {
	h := s.v14h.Load()
	if h == nil {
		return
	}
	fns := h.clientHandlers(event)
	if len(fns) == 0 {
		return
	}
	respond := func(error, any) {}
	if req != nil {
		respond = func(err error, v any) {
			if err != nil {
				_ = req.Error(err)
			} else {
				_ = req.End(v)
			}
		}
	}
	for _, fn := range fns {
		s.server.safeCall(func() { fn(data, respond) })
	}
}

func quote(s string) string { return `"` + s + `"` }
