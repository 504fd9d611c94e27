// Package wsconn is the WebSocket engine seam: it upgrades an HTTP request,
// reads whole messages (answering WebSocket control frames itself) and
// writes pre-encoded server frames with one writev per batch. Nothing above
// this package knows how frames are parsed or which library did the
// handshake (gobwas/ws), so the engine and its goroutine model can be
// replaced without touching the public API.
//
// Reading works in one of two ways, with the same frame parser:
//
//   - Blocking: one goroutine calls ReadMessage in a loop. It owns a 4 KiB
//     read buffer. This works on any net.Conn (other TLS connections,
//     net.Pipe in tests).
//   - Event-driven (Watch, Linux, plain TCP or TLS from NewTLSListener, see
//     tls.go): the connection is registered
//     with internal/netpoll and holds neither a goroutine nor a read buffer
//     while idle. When it is readable, its handler runs in a worker and
//     calls NextMessage until ErrWouldBlock; the bytes are read into a
//     pooled buffer that goes back to the pool before the handler returns.
//     Between reads the parser keeps only a split header, its position in
//     the current frame and the message being reassembled.
//
// Either way, the HTTP server's hijack buffers are dropped after the
// upgrade; bytes the client sent right behind its upgrade request are kept
// (a small copy) and parsed first.
//
// Concurrency: one goroutine at a time reads (ReadMessage, or the Watch
// handler); any goroutine may write (writes are serialised by an internal
// mutex), set the read deadline or close. Close frames are sent at most
// once.
package wsconn

import (
	"bufio"
	"crypto/tls"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
	"unicode/utf8"

	"github.com/gobwas/ws"

	"github.com/socketcluster-go/socketcluster/internal/netpoll"
)

// MaxHeader is the largest server frame header (no mask).
const MaxHeader = 10

// ErrTooBig is returned by ReadMessage for a message over the size limit.
var ErrTooBig = errors.New("wsconn: message too big")

// ErrProtocol is returned by ReadMessage for a frame that breaks RFC 6455
// (the connection is to be failed with 1002).
var ErrProtocol = errors.New("wsconn: protocol error")

// ErrInvalidUTF8 is returned by ReadMessage for a close frame whose reason
// is not UTF-8 (the connection is to be failed with 1007).
var ErrInvalidUTF8 = errors.New("wsconn: invalid UTF-8 in close reason")

// ErrWouldBlock is returned by NextMessage when no complete message is
// available without waiting.
var ErrWouldBlock = netpoll.ErrWouldBlock

// CloseError is returned by ReadMessage when the peer sent a close frame.
type CloseError struct {
	Code   int // 1005 when the frame carried no code
	Reason string
}

func (e *CloseError) Error() string {
	return fmt.Sprintf("websocket closed by peer: %d %q", e.Code, e.Reason)
}

// ownedConn is a connection whose descriptor the Conn owns
// (OwnDescriptor; fdconn_linux.go): read by Watch through rawConn, written
// with writeBuffers.
type ownedConn interface {
	net.Conn
	rawConn() syscall.RawConn
	descriptor() int32
	writeBuffers(bufs [][]byte) (int64, error)
}

// Conn is a server-side WebSocket connection.
type Conn struct {
	nc net.Conn

	// pending holds what the Conn is handed with its connection, until
	// its first read or Watch: bytes that arrived with the upgrade request
	// (parsed before anything read from nc) and the registration of an
	// accepted connection (Accepted). Nil when there is neither, as is
	// usual: a pointer, so that the Conn does not carry them.
	pending *handover

	blk *blockingReader          // ReadMessage's state, from its first call
	ev  atomic.Pointer[evReader] // event-driven reads, set by Watch

	wmu       sync.Mutex
	closeSent atomic.Bool
	// fd is the socket's descriptor for batched sends (BeginRingSend):
	// set by Watch for a plain TCP connection, -1 otherwise.
	fd       int32
	wtimeout time.Duration

	// AbortWrites' state, guarded by dmu: dataWrite is set while
	// WriteFrames writes, so that AbortWrites cuts that write short and
	// never a control frame's. closing is set by Close before the
	// descriptor is closed; a batched send holds dmu from BeginRingSend
	// to EndRingSend, so the descriptor stays open meanwhile.
	dmu       sync.Mutex
	aborted   bool
	dataWrite bool
	closing   bool

	// deflate: permessage-deflate was negotiated. Set before the first
	// read, then only read.
	deflate bool
}

// blockingReader is the state of ReadMessage.
type blockingReader struct {
	fr   frameReader
	buf  []byte
	data []byte // unparsed part of buf
	rerr error  // read error kept while the data read with it is parsed
}

// evReader is the state of event-driven reading. It is all an idle watched
// connection holds besides the Conn: the parser state is borrowed from a
// pool while a message is incomplete or a handler runs.
type evReader struct {
	desc netpoll.Desc

	rs *readState // owned by the handler; nil between rounds unless a message is incomplete

	deadline atomic.Int64 // read deadline, monotonic (sinceEpoch), 0 for none
	timer    *time.Timer  // fires at the deadline; guarded by Conn.wmu
}

// readState is what a handler's round of NextMessage calls needs, lent by
// a pool: the frame parser (kept while a message is incomplete) and,
// during the round, the read buffer.
type readState struct {
	fr      frameReader
	data    []byte  // unparsed part of pooled (or of the bytes that came with the upgrade)
	pooled  *[]byte // the pooled buffer, only between a read and ErrWouldBlock
	drained bool    // the last read did not fill the buffer (and netpoll.Desc.ReadToEnd was false): skip the read that would say EAGAIN
}

var readStates = sync.Pool{New: func() any { return new(readState) }}

// epoch is the origin of the monotonic clock of read deadlines: a wall
// clock step must not move them.
var epoch = time.Now()

func sinceEpoch() int64 { return int64(time.Since(epoch)) }

// writeTimeouter is a connection that sets a write deadline from a
// timeout with one reading of the clock (an owned descriptor, fdConn).
type writeTimeouter interface{ setWriteTimeout(d time.Duration) }

// maxDeadline: a deadline further ahead is no deadline (a century; past
// about 292 years the monotonic arithmetic would overflow).
const maxDeadline = 100 * 365 * 24 * time.Hour

// monoDeadline turns a deadline into the monotonic clock of sinceEpoch (a
// wall clock step does not move it), with the time left until it; 0 for
// none: the zero time, or one too far ahead to count (maxDeadline).
func monoDeadline(t time.Time) (mono int64, left time.Duration) {
	left = time.Until(t)
	if t.IsZero() || left >= maxDeadline {
		return 0, 0
	}
	return max(sinceEpoch()+int64(left), 1), left
}

// readBufSize is the size of the pooled buffers of event-driven reads.
const readBufSize = 16 << 10

var readBufs = sync.Pool{New: func() any { b := make([]byte, readBufSize); return &b }}

// blockingBufSize is the read buffer of a connection read by ReadMessage.
const blockingBufSize = 4 << 10

// UpgradeOptions configures Upgrade.
type UpgradeOptions struct {
	// Protocol chooses a subprotocol among those offered; nil picks the
	// first one offered (as the reference's ws engine does).
	Protocol func(offered []string) string
	// WriteTimeout bounds every write (0: none).
	WriteTimeout time.Duration
	// Extensions is the response's Sec-WebSocket-Extensions header, from
	// NegotiateDeflate: when set, permessage-deflate is on for the
	// connection.
	Extensions string
}

// Upgrade completes the WebSocket handshake on an HTTP request whose headers
// have already been checked by the caller.
func Upgrade(w http.ResponseWriter, r *http.Request, o UpgradeOptions) (*Conn, error) {
	var chosen string
	if offered := r.Header.Values("Sec-WebSocket-Protocol"); len(offered) > 0 {
		var list []string
		for _, v := range offered {
			list = append(list, splitComma(v)...)
		}
		if o.Protocol != nil {
			chosen = o.Protocol(list)
		} else if len(list) > 0 {
			chosen = list[0]
		}
	}
	u := ws.HTTPUpgrader{Timeout: 10 * time.Second}
	if chosen != "" {
		u.Protocol = func(p string) bool { return p == chosen }
	}
	if o.Extensions != "" {
		u.Header = http.Header{"Sec-Websocket-Extensions": {o.Extensions}}
	}
	nc, rw, _, err := u.Upgrade(r, w)
	if err != nil {
		if nc != nil {
			// Hijacked, and refused (or the answer could not be
			// written): no one else has the connection.
			_ = nc.Close()
		}
		return nil, err
	}
	c := New(nc, rw.Reader, o.WriteTimeout)
	c.deflate = o.Extensions != ""
	return c, nil
}

// New wraps an already upgraded connection (tests, custom listeners). br,
// if not nil, is a reader over nc that may hold bytes already read from
// it: those are parsed first, then nc is read directly (br is not kept).
func New(nc net.Conn, br *bufio.Reader, writeTimeout time.Duration) *Conn {
	c := &Conn{nc: nc, wtimeout: writeTimeout, fd: -1}
	var h handover
	if a, ok := nc.(acceptedConn); ok {
		c.nc, h.reg = a.unwrapAccepted()
	}
	if br != nil && br.Buffered() > 0 {
		b, _ := br.Peek(br.Buffered())
		h.data = append([]byte(nil), b...)
	}
	if h.data != nil || h.reg != nil {
		c.pending = &h
	}
	return c
}

// handover is Conn.pending.
type handover struct {
	data []byte
	reg  *netpoll.Desc // the registration Watch takes over (Accepted)
}

// acceptedConn is an Accepted connection: New unwraps it into the
// connection to use and the registration its reader has.
type acceptedConn interface {
	unwrapAccepted() (net.Conn, *netpoll.Desc)
}

func splitComma(s string) []string {
	var out []string
	start := 0
	for i := 0; i <= len(s); i++ {
		if i == len(s) || s[i] == ',' {
			p := s[start:i]
			for len(p) > 0 && (p[0] == ' ' || p[0] == '\t') {
				p = p[1:]
			}
			for len(p) > 0 && (p[len(p)-1] == ' ' || p[len(p)-1] == '\t') {
				p = p[:len(p)-1]
			}
			if p != "" {
				out = append(out, p)
			}
			start = i + 1
		}
	}
	return out
}

// EnableDeflate turns permessage-deflate on for a connection made with
// New whose handshake negotiated it (NegotiateDeflate). Call it before
// the first read.
func (c *Conn) EnableDeflate() { c.deflate = true }

// Deflate reports whether permessage-deflate is on: the peer may send
// compressed messages, and frames from a Compressor may be written.
func (c *Conn) Deflate() bool { return c.deflate }

// TLSState returns the state of a TLS connection, nil for another.
func (c *Conn) TLSState() *tls.ConnectionState {
	if t, ok := c.nc.(*tls.Conn); ok {
		st := t.ConnectionState()
		return &st
	}
	return nil
}

// IsTLS reports whether the connection is a TLS connection.
func (c *Conn) IsTLS() bool {
	_, ok := c.nc.(*tls.Conn)
	return ok
}

// RemoteAddr returns the peer's address.
func (c *Conn) RemoteAddr() net.Addr { return c.nc.RemoteAddr() }

// SetReadDeadline sets the deadline for reads: past it, ReadMessage or
// NextMessage fails with a timeout error (a net.Error). On a watched
// connection the handler is triggered at the deadline to see it. Event-driven
// reads see only deadlines set after Watch: set one before and it bounds
// ReadMessage alone.
func (c *Conn) SetReadDeadline(t time.Time) error {
	err := c.nc.SetReadDeadline(t)
	if e := c.ev.Load(); e != nil {
		c.wmu.Lock()
		if e.timer != nil {
			e.timer.Stop()
			e.timer = nil
		}
		mono, left := monoDeadline(t)
		e.deadline.Store(mono)
		if mono != 0 {
			e.timer = time.AfterFunc(left, e.desc.Trigger)
		}
		c.wmu.Unlock()
	}
	return err
}

// ReadMessage waits for the next text or binary message, reassembling
// fragments. Pings are answered, pongs ignored. A close frame from the peer
// is answered (once) and returned as *CloseError. The payload is a new slice
// owned by the caller. It must not be used on a watched connection.
func (c *Conn) ReadMessage(limit int64) (isBinary bool, payload []byte, err error) {
	b := c.blk
	if b == nil {
		b = &blockingReader{}
		c.blk = b
	}
	for {
		if len(b.data) > 0 {
			n, isBinary, msg, ok, err := c.parse(&b.fr, b.data, limit)
			b.data = b.data[n:]
			if err != nil || ok {
				return isBinary, msg, err
			}
		}
		if c.pending != nil {
			b.data, c.pending = c.pending.data, nil
			continue
		}
		if b.rerr != nil {
			if b.rerr == io.EOF {
				return false, nil, b.fr.eof()
			}
			return false, nil, b.rerr
		}
		if b.buf == nil {
			b.buf = make([]byte, blockingBufSize)
		}
		n, err := c.nc.Read(b.buf)
		b.data, b.rerr = b.buf[:n], err
	}
}

// OwnsDescriptor reports whether OwnDescriptor took the connection's
// descriptor (plain TCP, or the TCP connection under TLS).
func (c *Conn) OwnsDescriptor() bool {
	switch nc := c.nc.(type) {
	case ownedConn:
		return true
	case *tls.Conn:
		p, ok := nc.NetConn().(*PollConn)
		return ok && p.owned != nil
	}
	return false
}

// Handler is what Watch calls when a message may be available: a
// netpoll.Handler (HandlerFunc makes one of a function).
type Handler = netpoll.Handler

// HandlerFunc is a function as a Handler.
type HandlerFunc = netpoll.HandlerFunc

// Watch switches the connection to event-driven reading when this build
// and the connection (plain TCP, or TLS over a PollConn from
// NewTLSListener) allow it, and reports whether it did;
// otherwise read with ReadMessage. handler.Ready is then called in a worker
// goroutine, never twice at once, whenever a message may be available, the
// read deadline passed or the connection was closed; it must call
// NextMessage until that returns an error, and return true when the error
// was ErrWouldBlock, false when it is finished with the connection (it must
// have closed it): it is not called again after that. A Conn made of an
// Accepted connection takes over the registration its request was read
// through, or registers anew when that Desc was never registered
// (netpoll.Desc.StartAfter): Watch must then be called while that Desc's
// handler runs (it runs the HTTP handler that upgraded).
func (c *Conn) Watch(handler Handler) bool {
	if c.blk != nil || !netpoll.Available() {
		return false
	}
	var tc *net.TCPConn
	var pc *PollConn
	var rc syscall.RawConn
	switch nc := c.nc.(type) {
	case ownedConn:
		rc = nc.rawConn()
		c.fd = nc.descriptor()
	case *net.TCPConn:
		tc = nc
	case *tls.Conn:
		p, ok := nc.NetConn().(*PollConn)
		if !ok {
			return false
		}
		if p.owned != nil {
			rc = p.owned.rawConn()
		} else {
			tc = p.TCPConn
		}
		pc = p
	default:
		return false
	}
	if rc == nil {
		var err error
		if rc, err = tc.SyscallConn(); err != nil {
			return false
		}
	}
	e := &evReader{}
	// The handler reads until NextMessage says ErrWouldBlock, which it
	// says only once a read came back empty, or short while the Desc does
	// not ask to read to the end, and closes the connection before it
	// returns false: edge-triggered suits it.
	e.desc.InitEdge(rc, handler)
	if pc != nil {
		pc.desc = &e.desc
	} else if tc != nil {
		_ = rc.Control(func(fd uintptr) { c.fd = int32(fd) })
	}
	var reg *netpoll.Desc
	if h := c.pending; h != nil {
		c.pending, reg = nil, h.reg
		if h.data != nil {
			e.rs = readStates.Get().(*readState)
			e.rs.data = h.data
		}
	}
	// A tls.Conn may hold records it read ahead of the upgrade request:
	// no readiness event would announce them.
	buffered := e.rs != nil || pc != nil
	c.ev.Store(e)
	if reg != nil {
		e.desc.StartAfter(reg)
	} else {
		e.desc.Start()
	}
	if buffered {
		e.desc.Trigger()
	}
	return true
}

// Watched reports whether the connection is read event-driven (Watch
// returned true): a TCP socket, or TLS over one.
func (c *Conn) Watched() bool { return c.ev.Load() != nil }

// NextMessage returns the next message of a watched connection (see Watch)
// if it is complete with what can be read without waiting, and otherwise
// ErrWouldBlock. Control frames are handled and errors reported as
// ReadMessage does. Only the handler may call it.
func (c *Conn) NextMessage(limit int64) (isBinary bool, msg []byte, err error) {
	e := c.ev.Load()
	if e.rs == nil {
		e.rs = readStates.Get().(*readState)
	}
	rs := e.rs
	for {
		if len(rs.data) > 0 {
			n, isBinary, msg, ok, err := c.parse(&rs.fr, rs.data, limit)
			rs.data = rs.data[n:]
			if err != nil {
				e.release()
				return false, nil, err
			}
			if ok {
				return isBinary, msg, nil
			}
		}
		if rs.drained {
			e.release()
			return false, nil, ErrWouldBlock
		}
		if d := e.deadline.Load(); d != 0 && sinceEpoch() >= d {
			e.release()
			return false, nil, c.opError(os.ErrDeadlineExceeded)
		}
		if rs.pooled == nil {
			rs.pooled = readBufs.Get().(*[]byte)
		}
		buf := *rs.pooled
		var n int
		var err error
		if t, ok := c.nc.(*tls.Conn); ok {
			// Records already read may wait inside the tls.Conn: read
			// until it says there is nothing, never skip that read.
			n, err = readTLS(t, buf)
		} else {
			n, err = e.desc.Read(buf)
			rs.drained = n < len(buf) && !e.desc.ReadToEnd()
		}
		if err != nil {
			var se *os.SyscallError
			switch {
			case err == ErrWouldBlock:
			case err == io.EOF:
				err = rs.fr.eof()
			case errors.As(err, &se):
				err = c.opError(se)
			}
			e.release()
			return false, nil, err
		}
		rs.data = buf[:n]
	}
}

// opError wraps a read error as net.Conn.Read does.
func (c *Conn) opError(err error) error {
	return &net.OpError{Op: "read", Net: c.nc.LocalAddr().Network(), Source: c.nc.LocalAddr(), Addr: c.nc.RemoteAddr(), Err: err}
}

// release gives the read buffer back to the pool at the end of a round,
// and the whole readState when no frame is under way.
func (e *evReader) release() {
	rs := e.rs
	if rs.pooled != nil {
		readBufs.Put(rs.pooled)
		rs.pooled = nil
	}
	rs.data = nil
	rs.drained = false
	if rs.fr.atBoundary() {
		readStates.Put(rs)
		e.rs = nil
	}
}

// parse runs the frame parser over data until a message is complete (ok),
// answering control frames on the way; it consumes all of data when no
// message completes.
func (c *Conn) parse(fr *frameReader, data []byte, limit int64) (n int, isBinary bool, msg []byte, ok bool, err error) {
	fr.deflate = c.deflate
	for {
		m, ev, body, err := fr.parse(data[n:], limit)
		n += m
		if err != nil {
			return n, false, nil, false, err
		}
		switch ev {
		case evNone:
			return n, false, nil, false, nil
		case evMessage:
			isBinary, msg, compressed := fr.takeMessage()
			if compressed {
				if msg, err = inflate(msg, limit); err != nil {
					return n, false, nil, false, err
				}
			}
			return n, isBinary, msg, true, nil
		case evPing:
			_ = c.writeControl(ws.OpPong, body)
		case evClose:
			code, reason, err := closeBody(body)
			if err != nil {
				return n, false, nil, false, err
			}
			// The reply repeats the peer's code and reason, as the
			// reference's ws engine does.
			c.sendCloseOnce(body)
			return n, false, nil, false, &CloseError{Code: code, Reason: reason}
		}
	}
}

// closeBody checks the payload of a peer's close frame (RFC 6455 §5.5.1,
// §7.4): empty (code 1005), or a code a peer may send followed by a UTF-8
// reason. A one-byte body or a code that must not appear on the wire
// (999, 1004–1006, 1015, 1016–2999, 5000 and up) is ErrProtocol, an
// invalid reason ErrInvalidUTF8: the connection is then failed with 1002
// or 1007, as the reference's ws engine does.
func closeBody(body []byte) (code int, reason string, err error) {
	switch len(body) {
	case 0:
		return 1005, "", nil
	case 1:
		return 0, "", ErrProtocol
	}
	code = int(binary.BigEndian.Uint16(body))
	if !ValidCloseCode(code) {
		return 0, "", ErrProtocol
	}
	if !utf8.Valid(body[2:]) {
		return 0, "", ErrInvalidUTF8
	}
	return code, string(body[2:]), nil
}

// ValidCloseCode reports whether code may appear in a close frame (RFC
// 6455 §7.4): 1000–1003, 1007–1014 and 3000–4999.
func ValidCloseCode(code int) bool {
	return (code >= 1000 && code <= 1003) || (code >= 1007 && code <= 1014) || (code >= 3000 && code <= 4999)
}

// PutHeader writes the header of a final server frame with the given
// payload length so that it ends at buf[MaxHeader] and returns its start.
// buf must have MaxHeader bytes reserved in front of the payload.
func PutHeader(buf []byte, binaryFrame bool, n int) int {
	b0 := byte(0x80 | byte(ws.OpText))
	if binaryFrame {
		b0 = 0x80 | byte(ws.OpBinary)
	}
	switch {
	case n < 126:
		buf[MaxHeader-2] = b0
		buf[MaxHeader-1] = byte(n)
		return MaxHeader - 2
	case n <= 0xffff:
		buf[MaxHeader-4] = b0
		buf[MaxHeader-3] = 126
		binary.BigEndian.PutUint16(buf[MaxHeader-2:], uint16(n))
		return MaxHeader - 4
	default:
		buf[0] = b0
		buf[1] = 127
		binary.BigEndian.PutUint64(buf[2:], uint64(n))
		return 0
	}
}

// Frame returns a complete server frame holding payload (one copy).
func Frame(binaryFrame bool, payload []byte) []byte {
	buf := make([]byte, MaxHeader+len(payload))
	copy(buf[MaxHeader:], payload)
	start := PutHeader(buf, binaryFrame, len(payload))
	return buf[start:]
}

// ErrAborted is returned by WriteFrames once AbortWrites was called.
var ErrAborted = errors.New("wsconn: data writes aborted")

// WriteFrames writes complete frames with one vectored write. After
// AbortWrites it writes nothing and returns ErrAborted; a call that
// AbortWrites interrupts finishes the frame it was in (so that the stream
// stays valid), drops the rest and returns ErrAborted.
func (c *Conn) WriteFrames(frames [][]byte) error {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	if c.closeSent.Load() {
		return net.ErrClosed
	}
	c.dmu.Lock()
	if c.aborted {
		c.dmu.Unlock()
		return ErrAborted
	}
	c.dataWrite = true
	if c.wtimeout > 0 {
		if f, ok := c.nc.(writeTimeouter); ok {
			f.setWriteTimeout(c.wtimeout)
		} else {
			_ = c.nc.SetWriteDeadline(time.Now().Add(c.wtimeout))
		}
	} else {
		_ = c.nc.SetWriteDeadline(time.Time{})
	}
	c.dmu.Unlock()
	var n int64
	var err error
	if len(frames) == 1 {
		// A plain write: writev would make the descriptor keep an iovec
		// array for as long as the connection lives.
		var m int
		m, err = c.nc.Write(frames[0])
		n = int64(m)
	} else if oc, ok := c.nc.(ownedConn); ok {
		n, err = oc.writeBuffers(frames)
	} else {
		// WriteTo consumes its receiver, elements included (it re-slices
		// and clears them in place): write from a copy, so that frames
		// stay intact for finishFrame.
		bufs := append(net.Buffers(nil), frames...)
		n, err = bufs.WriteTo(c.nc)
	}
	c.dmu.Lock()
	c.dataWrite = false
	aborted := c.aborted
	c.dmu.Unlock()
	if err != nil && aborted && errors.Is(err, os.ErrDeadlineExceeded) {
		return c.finishFrame(frames, n)
	}
	return err
}

// finishFrame writes the rest of the frame that an aborted write left
// after n bytes of frames, and returns ErrAborted, or the write error.
func (c *Conn) finishFrame(frames [][]byte, n int64) error {
	for _, f := range frames {
		if n < int64(len(f)) {
			if n > 0 {
				if err := c.writeRest(f[n:]); err != nil {
					return err
				}
			}
			break
		}
		n -= int64(len(f))
	}
	return ErrAborted
}

// AbortWrites drops data: a WriteFrames under way stops at the end of the
// frame it is writing, later ones write nothing (both return ErrAborted),
// so that a close frame (WriteClose) can follow at once instead of after
// everything queued. A slow reader then finds the close frame right after
// the bytes already on their way.
func (c *Conn) AbortWrites() {
	c.dmu.Lock()
	defer c.dmu.Unlock()
	if c.aborted {
		return
	}
	c.aborted = true
	if c.dataWrite {
		_ = c.nc.SetWriteDeadline(time.Now())
	}
}

func (c *Conn) writeControl(op ws.OpCode, body []byte) error {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	if c.closeSent.Load() {
		return net.ErrClosed
	}
	return c.writeControlLocked(op, body, 5*time.Second)
}

// closeTimeout bounds the write of a close frame and of the end of a frame
// cut by AbortWrites: the write timeout (a slow reader may have megabytes
// to read before it), at least 5s.
func (c *Conn) closeTimeout() time.Duration { return max(c.wtimeout, 5*time.Second) }

func (c *Conn) writeControlLocked(op ws.OpCode, body []byte, timeout time.Duration) error {
	var hdr [2 + 125]byte
	hdr[0] = 0x80 | byte(op)
	hdr[1] = byte(len(body))
	n := copy(hdr[2:], body)
	_ = c.nc.SetWriteDeadline(time.Now().Add(timeout))
	_, err := c.nc.Write(hdr[:2+n])
	return err
}

func (c *Conn) sendCloseOnce(body []byte) bool {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	if c.closeSent.Swap(true) {
		return false
	}
	_ = c.writeControlLocked(ws.OpClose, body, c.closeTimeout())
	return true
}

// WriteClose sends a close frame with code and reason (truncated to 123
// bytes). Later writes fail. It reports whether this call sent it.
func (c *Conn) WriteClose(code int, reason string) bool {
	if len(reason) > 123 {
		reason = reason[:123]
	}
	body := make([]byte, 2+len(reason))
	binary.BigEndian.PutUint16(body, uint16(code))
	copy(body[2:], reason)
	return c.sendCloseOnce(body)
}

// CloseSent reports whether a close frame was sent.
func (c *Conn) CloseSent() bool { return c.closeSent.Load() }

// Close closes the TCP connection. A watched connection's handler is
// triggered to see it.
func (c *Conn) Close() error {
	c.dmu.Lock() // waits for a batched send under way (BeginRingSend)
	c.closing = true
	c.dmu.Unlock()
	err := c.nc.Close()
	if e := c.ev.Load(); e != nil {
		e.desc.Trigger()
	}
	return err
}

// PlainTextPayload returns the payload of a complete, final, uncompressed
// server text frame (as built by PutHeader or Frame), and false for any
// other frame (binary, compressed, control, fragmented).
func PlainTextPayload(frame []byte) ([]byte, bool) {
	if len(frame) < 2 || frame[0] != 0x80|byte(ws.OpText) {
		return nil, false
	}
	n, h := int(frame[1]), 2
	switch n {
	case 126:
		if len(frame) < 4 {
			return nil, false
		}
		n, h = int(binary.BigEndian.Uint16(frame[2:])), 4
	case 127:
		if len(frame) < 10 {
			return nil, false
		}
		u := binary.BigEndian.Uint64(frame[2:])
		if u > uint64(len(frame)) {
			return nil, false
		}
		n, h = int(u), 10
	}
	if len(frame)-h != n {
		return nil, false
	}
	return frame[h:], true
}

// BeginRingSend prepares a batched send of data frames made outside this
// package (internal/uring): when the connection is plain TCP read by
// Watch, open, not aborted and no other write is under way, it returns the
// socket's descriptor and true, and then holds the connection's write
// locks, so that nothing else writes to the socket or closes it, until
// EndRingSend. It never waits: it reports false instead. The send must not
// wait either (non-blocking), and must not outlast EndRingSend.
func (c *Conn) BeginRingSend() (fd int32, ok bool) {
	if c.fd < 0 || !c.wmu.TryLock() {
		return -1, false
	}
	if c.closeSent.Load() || !c.dmu.TryLock() {
		c.wmu.Unlock()
		return -1, false
	}
	if c.aborted || c.closing {
		c.dmu.Unlock()
		c.wmu.Unlock()
		return -1, false
	}
	return c.fd, true
}

// CanRingSend reports whether BeginRingSend may succeed: the connection is
// plain TCP read by Watch and its close frame was not sent.
func (c *Conn) CanRingSend() bool { return c.fd >= 0 && !c.closeSent.Load() }

// EndRingSend ends what BeginRingSend began. rest is what the batched send
// left unsent of the frame it was sending (nil when it sent all of it or
// nothing): it is written first, before anything else can be written, and
// like the end of a frame cut by AbortWrites it is written even after
// AbortWrites, within the close timeout. EndRingSend then waits for that
// write like any other; the descriptor can be closed meanwhile (the write
// then fails).
func (c *Conn) EndRingSend(rest []byte) error {
	c.dmu.Unlock()
	defer c.wmu.Unlock()
	if len(rest) == 0 {
		return nil
	}
	return c.writeRest(rest)
}

// writeRest writes the end of a frame whose start is already out, within
// the close timeout; the write mutex must be held.
func (c *Conn) writeRest(rest []byte) error {
	_ = c.nc.SetWriteDeadline(time.Now().Add(c.closeTimeout()))
	_, err := c.nc.Write(rest)
	return err
}
