package socketcluster

import (
	"errors"
	"io"
	"net"
	"strings"
	"sync"
	"unicode/utf8"

	"github.com/socketcluster-go/socketcluster/internal/wire"
	"github.com/socketcluster-go/socketcluster/internal/wsconn"
	"github.com/socketcluster-go/socketcluster/protocol"
)

// The inbound path. A socket's messages are read and processed one at a
// time, each completely — middleware waits included — before the next, so
// they are handled strictly in order (docs/protocol.md §0 item 6) and a slow
// socket only delays itself (TCP flow control pushes back on its client).
// Procedures and receivers are streams: handing a request to a procedure
// never waits for its answer, so a procedure may answer a later request
// before an earlier one.
//
// Two readers implement this (see CONCURRENCY.md):
//
//   - event-driven (TCP on Linux, the default; TLS too when accepted
//     through ServeTLS or NewTLSListener): the connection is
//     watched by internal/netpoll and holds no goroutine and no read buffer
//     while idle; when it is readable, readReady runs in a poller worker,
//     never twice at once for one socket, and processes every message that
//     is complete;
//   - readLoop, a goroutine of the socket's own blocked in ReadMessage: for
//     other connections (TLS from tls.NewListener, tests on net.Pipe), on
//     other systems, or with Options.DisableEventReads.

// startReading starts reading the socket with the event-driven reader if
// it can, else with readLoop. Reading ends (endReading) after readFailed.
func (s *Socket) startReading() {
	if !s.server.opts.DisableEventReads && s.conn.Watch((*eventReader)(s)) {
		return
	}
	go s.readLoop()
}

// eventReader is the Socket as the event-driven reader's handler: a
// pointer in an interface, where the method value s.readReady would cost
// each idle socket 16 bytes (a Ready method on Socket would be public).
type eventReader Socket

func (r *eventReader) Ready() bool { return (*Socket)(r).readReady() }

func (s *Socket) readLoop() {
	limit := s.server.opts.MaxPayload
	var scratch inboundScratch
	for {
		isBinary, msg, err := s.conn.ReadMessage(limit)
		if err != nil {
			s.readFailed(err)
			s.endReading()
			return
		}
		scratch.now = 0 // the read may have waited: read the clock again
		s.processInbound(isBinary, msg, &scratch)
	}
}

// readReady is the event-driven reader's handler: it processes the
// messages available now, and reports false once the connection has
// ended.
func (s *Socket) readReady() bool {
	limit := s.server.opts.MaxPayload
	var sc *inboundScratch
	for n := 0; ; n++ {
		isBinary, msg, err := s.conn.NextMessage(limit)
		if err != nil {
			if sc != nil {
				sc.release()
			}
			if err == wsconn.ErrWouldBlock {
				return true
			}
			s.readFailed(err)
			s.endReading()
			return false
		}
		if sc == nil {
			sc = scratchPool.Get().(*inboundScratch) // now is 0 (release)
		} else if n%32 == 0 {
			sc.now = 0 // a long round reads the clock again now and then
		}
		s.processInbound(isBinary, msg, sc)
	}
}

// endReading closes the connection once reading has failed.
func (s *Socket) endReading() {
	_ = s.conn.Close()
	s.server.releaseLease(s.lease)
	s.server.release()
}

// scratchPool lends inboundScratch to the event-driven reader, which has no
// goroutine of its own to keep one in.
var scratchPool = sync.Pool{New: func() any { return new(inboundScratch) }}

// release clears the scratch (it must not keep messages alive) and returns
// it to scratchPool.
func (sc *inboundScratch) release() {
	clear(sc.packets[:cap(sc.packets)])
	sc.packets = sc.packets[:0]
	sc.oks = sc.oks[:0]
	sc.now = 0
	scratchPool.Put(sc)
}

// inboundScratch holds slices reused from one message to the next by the
// goroutine that processes a socket's messages.
type inboundScratch struct {
	packets []wire.Packet
	oks     []bool
	// now is the monotonic clock (monoNow) read for the first message of
	// the current read round (and again every 32 messages), or 0 before
	// it. The round's messages other than pongs share it for touch: such
	// a message only ever moves the pong deadline later, so a reading
	// made a little earlier (middleware may have waited meanwhile) only
	// moves it less. A pong reads the clock itself.
	now int64
}

// processInbound runs the steps of docs/protocol.md §2.3 for one message: count
// it, restart the pong timer, the raw middleware, the message event, then
// decode and handle it. Whoever reads the socket calls it for each
// message, one at a time.
func (s *Socket) processInbound(isBinary bool, msg []byte, sc *inboundScratch) {
	if s.State() == StateClosed {
		// Closing: wait for the peer's close frame, ignore the rest.
		return
	}
	s.inboundReceived.Add(1)
	s.server.counters.bytesIn.Add(int64(len(msg)))
	defer s.inboundProcessed.Add(1)
	if s.rate != nil && !s.allowInbound(len(msg)) {
		return
	}
	if !isBinary && !utf8.Valid(msg) {
		// As the reference's ws engine: a text frame must be UTF-8.
		s.emitError(NewError("RangeError", "Invalid WebSocket frame: invalid UTF-8 sequence"))
		s.closeWith(protocol.CloseInvalidPayload, "", true)
		return
	}
	pong := ""
	if s.server.opts.ProtocolVersion == 1 {
		pong = "#2"
	}
	isPong := !isBinary && string(msg) == pong
	if isPong {
		s.touch(true, monoNow())
	} else {
		if sc.now == 0 {
			sc.now = monoNow()
		}
		s.touch(false, sc.now)
	}
	if s.server.HasMiddleware(MiddlewareInboundRaw) {
		a := &Action{Type: ActionMessage, Socket: s, Data: Data(msg)}
		if err := s.server.decide(MiddlewareInboundRaw, a, true); err != nil {
			s.server.blockError(err, a, MiddlewareInboundRaw)
			return
		}
		if a.dataChanged {
			// allow({data: X}): X (a JSON value) replaces the message; a
			// string value is used as the message text.
			if str, ok := wire.Unquote(a.Data); ok {
				msg = []byte(str)
			} else {
				msg = a.Data
			}
			isPong = !isBinary && string(msg) == pong
		}
	}
	if s.Listeners.d.HasConsumers("message") {
		s.emit(MessageEvent{Message: msg, Binary: isBinary})
	}
	sc.packets, sc.oks = s.handleMessage(isBinary, msg, isPong, sc.packets[:0], sc.oks[:0])
}

func (s *Socket) readFailed(err error) {
	if err == io.EOF {
		// The common end (the peer closed TCP): no error to inspect.
		s.closeWith(protocol.CloseAbnormal, "", false)
		return
	}
	var ce *wsconn.CloseError
	switch {
	case errors.As(err, &ce):
		s.closeWith(protocol.CloseCode(ce.Code), ce.Reason, false)
	case errors.Is(err, wsconn.ErrTooBig):
		s.emitError(NewError("RangeError", "Max payload size exceeded"))
		s.conn.WriteClose(int(protocol.CloseMessageTooBig), "")
		s.closeWith(protocol.CloseMessageTooBig, "", false)
	case errors.Is(err, wsconn.ErrProtocol):
		s.conn.WriteClose(int(protocol.CloseProtocolError), "")
		s.closeWith(protocol.CloseProtocolError, "", false)
	case errors.Is(err, wsconn.ErrBadDeflate):
		// permessage-deflate data that does not inflate: 1007, as the
		// reference's ws engine.
		s.emitError(NewError("Error", "Invalid WebSocket frame: "+strings.TrimPrefix(err.Error(), "wsconn: ")))
		s.conn.WriteClose(int(protocol.CloseInvalidPayload), "")
		s.closeWith(protocol.CloseInvalidPayload, "", false)
	case errors.Is(err, wsconn.ErrInvalidUTF8):
		s.emitError(NewError("RangeError", "Invalid WebSocket frame: invalid UTF-8 sequence"))
		s.conn.WriteClose(int(protocol.CloseInvalidPayload), "")
		s.closeWith(protocol.CloseInvalidPayload, "", false)
	default:
		reason := ""
		var ne net.Error
		if !errors.Is(err, io.EOF) && !errors.Is(err, net.ErrClosed) && !(errors.As(err, &ne) && ne.Timeout()) {
			reason = err.Error()
		}
		s.closeWith(protocol.CloseAbnormal, reason, false)
	}
}

func (s *Socket) strictConnecting() bool {
	return !s.server.opts.DisableStrictHandshake && s.State() == StateConnecting
}

// handleMessage processes one inbound message (docs/protocol.md §2.3 steps 6–9).
func (s *Socket) handleMessage(isBinary bool, msg []byte, isPong bool, packets []wire.Packet, oks []bool) ([]wire.Packet, []bool) {
	if isPong {
		if s.strictConnecting() {
			s.closeWith(protocol.CloseBeforeHandshake, "", true)
		} else if s.State() == StateOpen {
			s.checkTokenExpiry()
		}
		return packets, oks
	}
	var kind wire.Kind
	if c := s.server.codec; c != nil {
		var err error
		packets, oks, kind, err = decodeCodec(c, msg, isBinary, packets, oks)
		if err != nil {
			var e *Error
			if !errors.As(err, &e) {
				e = NewError("InvalidMessageError", err.Error())
			}
			s.emitError(e)
			if s.strictConnecting() {
				s.closeWith(protocol.CloseBeforeHandshake, "", true)
			}
			return packets, oks
		}
	} else {
		packets, oks, kind = wire.Parse(msg, packets, oks)
	}
	if kind == wire.Raw {
		if s.strictConnecting() {
			s.closeWith(protocol.CloseBeforeHandshake, "", true)
			return packets, oks
		}
		s.emit(RawEvent{Message: msg, Binary: isBinary})
		return packets, oks
	}
	for i := range packets {
		if s.State() == StateClosed {
			break
		}
		if !oks[i] {
			if s.strictConnecting() {
				s.closeWith(protocol.CloseBeforeHandshake, "", true)
				break
			}
			s.emit(RawEvent{Message: msg, Binary: isBinary})
			continue
		}
		s.handlePacket(&packets[i])
	}
	return packets, oks
}

// handlePacket dispatches one packet (docs/protocol.md §3).
func (s *Socket) handlePacket(p *wire.Packet) {
	if !p.HasEvent {
		// A response to a server invoke.
		if s.strictConnecting() {
			s.closeWith(protocol.CloseBeforeHandshake, "", true)
			return
		}
		s.resolveCall(p)
		return
	}
	if p.Event == protocol.EventHandshake {
		s.handleHandshake(p)
		return
	}
	if s.strictConnecting() {
		s.closeWith(protocol.CloseBeforeHandshake, "", true)
		return
	}
	switch p.Event {
	case protocol.EventAuthenticate:
		s.handleAuthenticate(p)
		return
	case protocol.EventRemoveAuthToken:
		s.handleRemoveAuthToken(p)
		return
	case protocol.EventSubscribe:
		s.handleSubscribe(p)
		return
	case protocol.EventUnsubscribe:
		s.handleUnsubscribe(p)
		return
	case protocol.EventPublish:
		s.handlePublish(p)
		return
	case "sc.history":
		if p.HasCid && s.server.hub.hist != nil {
			s.handleHistory(p) // history.go
			return
		}
	}
	expired := s.checkTokenExpiry()
	// The Action is made only for inbound middleware: a call or transmit
	// without any costs no allocation for it.
	inbound := s.server.HasMiddleware(MiddlewareInbound)
	if p.HasCid {
		data := Data(p.Data)
		if inbound {
			a := &Action{Type: ActionInvoke, Socket: s, Procedure: p.Event, Data: data, AuthTokenExpiredError: expired}
			if !s.inboundAllowed(a, p) {
				return
			}
			data = a.Data
		}
		req := &Request{Procedure: p.Event, Data: data, Socket: s, ID: p.Cid}
		s.Procedures.d.Write(p.Event, req)
		if h := s.server.procedureHandler(p.Event); h != nil {
			s.server.safeCall(func() { h(req) })
		}
		s.callClientHandlers(p.Event, req.Data, req)
		return
	}
	data := Data(p.Data)
	if inbound {
		a := &Action{Type: ActionTransmit, Socket: s, Receiver: p.Event, Data: data, AuthTokenExpiredError: expired}
		if !s.inboundAllowed(a, p) {
			return
		}
		data = a.Data
	}
	s.Receivers.d.Write(p.Event, data)
	if h := s.server.receiverHandler(p.Event); h != nil {
		s.server.safeCall(func() { h(s, data) })
	}
	s.callClientHandlers(p.Event, data, nil)
}

// inboundAllowed decides a client's inbound action a, made for packet p,
// and reports whether it goes on. When the middleware blocks it, the
// failure is emitted (blockError) and p's cid, if it has one, is answered
// with the blocking error.
func (s *Socket) inboundAllowed(a *Action, p *wire.Packet) bool {
	err := s.server.runInbound(s, a)
	if err == nil {
		return true
	}
	raw := s.server.blockError(err, a, MiddlewareInbound)
	if p.HasCid {
		s.sendResponse(p.Cid, nil, raw)
	}
	return false
}

// resolveCall hands a client's response to the waiting Invoke.
func (s *Socket) resolveCall(p *wire.Packet) {
	if p.Rid < 0 || p.Rid != float64(uint64(p.Rid)) {
		return
	}
	cid := uint64(p.Rid)
	var c *call
	s.mu.Lock()
	if s.more != nil {
		c = s.more.calls[cid]
		delete(s.more.calls, cid)
	}
	s.mu.Unlock()
	if c == nil {
		return // unknown rid: ignored, as the reference
	}
	var r callResult
	if p.Error != nil && string(p.Error) != "null" {
		r.err = protocol.UnmarshalError(p.Error)
	} else {
		r.data = Data(p.Data)
	}
	c.ch <- r
}

// closeWith closes the socket once and runs the close sequence of
// docs/protocol.md §9.4. With send, a close frame with code and reason is queued
// after everything already queued.
func (s *Socket) closeWith(code protocol.CloseCode, reason string, send bool) {
	s.mu.Lock()
	if s.stateCode() == stClosed {
		s.mu.Unlock()
		return
	}
	prev := s.stateCode().State()
	s.state.Store(uint32(stClosed))
	m := s.moreLocked()
	m.closeCode = code
	s.server.deadlines.cancel(s)
	if m.batchTimer != nil {
		m.batchTimer.Stop()
	}
	calls := m.calls
	m.calls = nil
	m.batch = nil
	m.batching, m.manualBatch = false, false
	s.batchChangedLocked()
	s.mu.Unlock()

	if send && code.Valid() {
		s.queueClose(code, reason)
	} else {
		s.outMu.Lock()
		s.outClosed = true
		s.dropQueueLocked()
		s.outMu.Unlock()
		if send {
			_ = s.conn.Close()
		}
	}

	evReason := reason
	if evReason == "" {
		evReason = code.Text()
	}
	typ := "disconnect"
	if prev == StateConnecting {
		typ = "connectAbort"
	}
	for _, c := range calls {
		c.ch <- callResult{err: errBadConnection("Event "+c.event+" was aborted due to a bad connection", typ, code, evReason)}
	}
	srv := s.server
	// Each event is built only when someone listens: boxing it costs an
	// allocation per event and connection.
	if prev == StateConnecting {
		if s.wants(ConnectAbortEvent{}.EventName()) {
			s.emit(ConnectAbortEvent{Code: code, Reason: evReason})
		}
		if srv.wants(ConnectionAbortEvent{}.EventName()) {
			srv.emit(ConnectionAbortEvent{Socket: s, Code: code, Reason: evReason})
		}
	} else {
		if s.wants(DisconnectEvent{}.EventName()) {
			s.emit(DisconnectEvent{Code: code, Reason: evReason})
		}
		if srv.wants(DisconnectionEvent{}.EventName()) {
			srv.emit(DisconnectionEvent{Socket: s, Code: code, Reason: evReason})
		}
	}
	if s.wants(CloseEvent{}.EventName()) {
		s.emit(CloseEvent{Code: code, Reason: evReason})
	}
	if srv.wants(ClosureEvent{}.EventName()) {
		srv.emit(ClosureEvent{Socket: s, Code: code, Reason: evReason})
	}
	if code != protocol.CloseNormal && code != protocol.CloseGoingAway {
		s.emitError(errSocketProtocol(code, reason))
	}
	srv.removeSocket(s)
	srv.counters.disconnections.Add(1)
	s.unsubscribeAll()
	s.emit(EndEvent{})
	switch srv.opts.SocketStreamCleanupMode {
	case "kill":
		s.Receivers.d.KillAll()
		s.Procedures.d.KillAll()
		// Listeners are closed, not killed, so that every consumer still
		// gets the close events emitted just above, end included.
		s.Listeners.d.CloseAll()
	case "close":
		s.Receivers.d.CloseAll()
		s.Procedures.d.CloseAll()
		s.Listeners.d.CloseAll()
	}
	s.Off("")
	s.mu.Lock()
	m = s.moreLocked()
	m.hasEnded = true
	if m.ended != nil {
		close(m.ended)
	}
	s.mu.Unlock()
}
