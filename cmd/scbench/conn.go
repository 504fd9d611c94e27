//go:build linux

package main

import (
	"bufio"
	"context"
	"crypto/tls"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/gobwas/ws"
)

// Handler receives what a connection's poller finds. Calls for one
// connection come from one goroutine at a time, in arrival order; they must
// not block, since the poller serves many connections.
type Handler interface {
	// OnResponse is called for every {"rid":N} response after set-up.
	OnResponse(c *Conn, rid int64, isErr bool, now int64)
	// OnDelivery is called for every #publish delivery carrying a
	// generator sequence number.
	OnDelivery(c *Conn, seq, ts, now int64)
}

// connStats are counters shared by all connections of one run.
type connStats struct {
	pings     atomic.Int64 // "" pings answered with ""
	others    atomic.Int64 // packets that were neither responses nor tracked deliveries
	closed    atomic.Int64 // connections that ended while the run still wanted them
	closeLogs atomic.Int64
}

// Conn is one client connection speaking SocketCluster protocol version 2
// over a WebSocket. Set-up (dial, upgrade, #handshake, #subscribe) runs
// synchronously on a net.Conn; after that the socket is handed to a poller
// (poller.go), which parses incoming frames in place and calls the handler.
// Output is coalesced: frames queued while nothing is being written leave in
// one write(2) at the next flush.
type Conn struct {
	ID    int
	pr    *protocol
	h     Handler
	stats *connStats
	log   func(format string, args ...any)
	mask  [4]byte

	// set-up phase
	nc      net.Conn
	br      *bufio.Reader
	hdr     [ws.MaxHeaderSize - 2]byte
	discard int    // bytes peeked for the last payload, still in br
	big     []byte // payloads larger than br's buffer
	scratch []byte

	// poller phase; fields below mu are guarded by it, the others belong to
	// the poller goroutine
	poller *poller
	slot   int32
	rbuf   []byte // bytes of an incomplete frame carried to the next read
	frag   []byte // a fragmented message being assembled
	inFrag bool
	fragZ  bool // it is compressed

	mu      sync.Mutex
	fd      int    // the socket once set up; -1 after it was closed
	pend    []byte // frames waiting to be written
	spare   []byte
	busy    bool // a goroutine is in write(2)
	waitOut bool // the socket is full: the poller writes when it drains
	werr    error

	// held: a wss:// connection read by its own goroutine (holdTLS), not
	// by a poller; nc stays its connection.
	held bool

	closing atomic.Bool
	done    chan struct{}
	err     error // why the connection ended; read after done is closed
}

// appendFrame appends one final WebSocket frame. A client passes its mask
// (RFC 6455 requires masked client frames); a server passes nil.
func appendFrame(dst []byte, op ws.OpCode, payload []byte, mask *[4]byte) []byte {
	var mbit byte
	if mask != nil {
		mbit = 0x80
	}
	n := len(payload)
	switch {
	case n < 126:
		dst = append(dst, 0x80|byte(op), mbit|byte(n))
	case n <= 0xffff:
		dst = append(dst, 0x80|byte(op), mbit|126, byte(n>>8), byte(n))
	default:
		dst = append(dst, 0x80|byte(op), mbit|127)
		dst = binary.BigEndian.AppendUint64(dst, uint64(n))
	}
	if mask == nil {
		return append(dst, payload...)
	}
	dst = append(dst, mask[:]...)
	start := len(dst)
	dst = append(dst, payload...)
	ws.Cipher(dst[start:], *mask, 0)
	return dst
}

// parseHeader decodes a frame header at the start of b. ok is false when b
// does not hold the whole header yet.
func parseHeader(b []byte) (h ws.Header, n int, ok bool) {
	if len(b) < 2 {
		return h, 0, false
	}
	h.Fin = b[0]&0x80 != 0
	h.Rsv = (b[0] & 0x70) >> 4
	h.OpCode = ws.OpCode(b[0] & 0x0f)
	h.Masked = b[1]&0x80 != 0
	n = 2
	switch l := b[1] & 0x7f; l {
	case 126:
		if len(b) < 4 {
			return h, 0, false
		}
		h.Length = int64(binary.BigEndian.Uint16(b[2:]))
		n = 4
	case 127:
		if len(b) < 10 {
			return h, 0, false
		}
		h.Length = int64(binary.BigEndian.Uint64(b[2:]) & (1<<63 - 1))
		n = 10
	default:
		h.Length = int64(l)
	}
	if h.Masked {
		if len(b) < n+4 {
			return h, 0, false
		}
		copy(h.Mask[:], b[n:])
		n += 4
	}
	return h, n, true
}

// maxMessage bounds one inbound message.
const maxMessage = 64 << 20

var errNoHandshake = errors.New("connection ended during set-up")

// closeError is a close frame received from the server.
type closeError struct {
	code   int
	reason string
}

func (e *closeError) Error() string {
	return fmt.Sprintf("closed by server: code %d %q", e.code, e.reason)
}

// dial opens connection number id: TCP, WebSocket upgrade, #handshake and,
// if channel is not empty, #subscribe. Then it starts reading with
// handler h on one of the pollers of ps.
func (t *Target) dial(ctx context.Context, ps *pollSet, id int, channel string, h Handler, stats *connStats) (*Conn, error) {
	ctx, cancel := context.WithTimeout(ctx, t.Timeout)
	defer cancel()
	d := net.Dialer{LocalAddr: t.localAddr(id)}
	nc, err := d.DialContext(ctx, "tcp", t.dialAddr)
	if err != nil {
		return nil, err
	}
	if tc, ok := nc.(*net.TCPConn); ok {
		tc.SetNoDelay(true)
	}
	deadline, _ := ctx.Deadline()
	nc.SetDeadline(deadline)
	stop := context.AfterFunc(ctx, func() { nc.SetDeadline(time.Unix(1, 0)) })
	defer stop()
	if t.tls != nil {
		tc := tls.Client(nc, t.tls)
		if err := tc.HandshakeContext(ctx); err != nil {
			nc.Close()
			return nil, fmt.Errorf("TLS handshake: %w", err)
		}
		nc = tc
	}

	dialer := ws.Dialer{ReadBufferSize: t.ReadBuffer}
	if t.Deflate {
		dialer.Extensions = deflateOffer()
	}
	br, hs, err := dialer.Upgrade(nc, t.u)
	if err != nil {
		nc.Close()
		return nil, fmt.Errorf("upgrade: %w", err)
	}
	if t.Deflate {
		if err := checkDeflateAnswer(hs.Extensions); err != nil {
			nc.Close()
			return nil, err
		}
	}
	if br == nil {
		br = bufio.NewReaderSize(nc, t.ReadBuffer)
	}
	c := &Conn{
		ID:    id,
		pr:    t.proto,
		h:     h,
		nc:    nc,
		br:    br,
		fd:    -1,
		mask:  ws.NewMask(),
		stats: stats,
		log:   t.progress,
		done:  make(chan struct{}),
	}
	if err := c.call(t.proto.handshake, 1); err != nil {
		nc.Close()
		return nil, fmt.Errorf("handshake: %w", err)
	}
	if channel != "" {
		if err := c.call(t.proto.subscribe(channel), 2); err != nil {
			nc.Close()
			return nil, fmt.Errorf("#subscribe %q: %w", channel, err)
		}
	}
	if t.tls != nil {
		nc.SetDeadline(time.Time{})
		c.holdTLS()
		return c, nil
	}
	if err := c.handOver(ps); err != nil {
		return nil, err
	}
	return c, nil
}

// holdTLS keeps a wss:// connection after set-up: its own goroutine reads
// it through crypto/tls (no descriptor to hand to a poller), answers pings
// and counts what else comes, until the connection ends.
func (c *Conn) holdTLS() {
	c.held = true
	go func() {
		defer close(c.done)
		for {
			p, err := c.next()
			if err != nil {
				if !c.closing.Load() {
					c.err = err
					c.stats.closed.Add(1)
				}
				return
			}
			c.pr.each(p, func(e []byte) {
				if c.pr.isPing(e) {
					// Counted once written: a close meanwhile fails it.
					if _, err := c.nc.Write(appendFrame(nil, ws.OpText, c.pr.ping, &c.mask)); err == nil {
						c.stats.pings.Add(1)
					}
					return
				}
				c.stats.others.Add(1)
			})
		}
	}()
}

// handOver moves the socket from the net.Conn to a poller: the descriptor
// is duplicated (the net.Conn and Go's netpoller let go of theirs), bytes
// already buffered are processed, and the poller takes over.
func (c *Conn) handOver(ps *pollSet) error {
	if c.discard > 0 {
		c.br.Discard(c.discard)
		c.discard = 0
	}
	if n := c.br.Buffered(); n > 0 {
		b, _ := c.br.Peek(n)
		c.rbuf = append([]byte(nil), b...)
	}
	c.br, c.big, c.scratch = nil, nil, nil
	sc, ok := c.nc.(syscall.Conn)
	if !ok {
		c.nc.Close()
		return errors.New("connection has no file descriptor")
	}
	raw, err := sc.SyscallConn()
	if err != nil {
		c.nc.Close()
		return err
	}
	fd, derr := -1, error(nil)
	if err := raw.Control(func(s uintptr) {
		fd, derr = syscall.Dup(int(s))
		if derr == nil {
			syscall.CloseOnExec(fd)
			derr = syscall.SetNonblock(fd, true)
		}
	}); err != nil {
		derr = err
	}
	c.nc.Close()
	c.nc = nil
	if derr != nil {
		if fd >= 0 {
			syscall.Close(fd)
		}
		return derr
	}
	c.fd = fd
	// Frames that arrived with the last set-up read: handle them before the
	// poller can run (nothing else touches c yet).
	if len(c.rbuf) > 0 {
		n, err := c.process(c.rbuf, nanotime())
		if err != nil {
			syscall.Close(fd)
			return err
		}
		c.rbuf = append(c.rbuf[:0], c.rbuf[n:]...)
	}
	if err := ps.add(c); err != nil {
		syscall.Close(fd)
		return err
	}
	c.flush()
	return nil
}

// call sends one invoke during set-up and waits for its response, answering
// pings meanwhile.
func (c *Conn) call(frame []byte, cid int64) error {
	b := appendFrame(nil, ws.OpText, frame, &c.mask)
	if _, err := c.nc.Write(b); err != nil {
		return err
	}
	for {
		p, err := c.next()
		if err != nil {
			if err == io.EOF {
				return errNoHandshake
			}
			return err
		}
		var found error
		var answered bool
		c.pr.each(p, func(e []byte) {
			switch s := c.pr.scan(e); {
			case answered:
			case c.pr.isPing(e):
				c.stats.pings.Add(1)
				if _, err := c.nc.Write(appendFrame(nil, ws.OpText, c.pr.ping, &c.mask)); err != nil {
					found, answered = err, true
				}
			case s.kind == kindResponse && s.rid == cid:
				found, answered = setupResult(s, e), true
			}
		})
		if answered {
			return found
		}
	}
}

func setupResult(s scanned, p []byte) error {
	if s.isErr {
		const limit = 300
		if len(p) > limit {
			p = p[:limit]
		}
		return fmt.Errorf("server answered %s", p)
	}
	return nil
}

// next returns the next text or binary message during set-up. The slice is
// valid until the following call. Pings are answered, a close frame ends the
// connection.
func (c *Conn) next() ([]byte, error) {
	for {
		if c.discard > 0 {
			c.br.Discard(c.discard)
			c.discard = 0
		}
		h, err := ws.ReadHeaderBuffer(c.br, c.hdr[:])
		if err != nil {
			return nil, err
		}
		if h.Length > maxMessage || h.Length < 0 {
			return nil, fmt.Errorf("message of %d bytes is too large", h.Length)
		}
		n := int(h.Length)
		var p []byte
		if n <= c.br.Size() {
			if p, err = c.br.Peek(n); err != nil {
				return nil, err
			}
			c.discard = n
		} else {
			if cap(c.big) < n {
				c.big = make([]byte, n)
			}
			p = c.big[:n]
			if _, err := io.ReadFull(c.br, p); err != nil {
				return nil, err
			}
		}
		if h.Masked {
			ws.Cipher(p, h.Mask, 0)
		}
		switch h.OpCode {
		case ws.OpText, ws.OpBinary:
			c.fragZ = h.Rsv1()
			if h.Fin {
				return c.setupMessage(p)
			}
			c.scratch = append(c.scratch[:0], p...)
		case ws.OpContinuation:
			c.scratch = append(c.scratch, p...)
			if h.Fin {
				return c.setupMessage(c.scratch)
			}
		case ws.OpPing:
			if _, err := c.nc.Write(appendFrame(nil, ws.OpPong, p, &c.mask)); err != nil {
				return nil, err
			}
		case ws.OpPong:
		case ws.OpClose:
			return nil, closeFrameError(p)
		default:
			return nil, fmt.Errorf("unknown opcode %d", h.OpCode)
		}
	}
}

// setupMessage returns a set-up message, inflated when it came
// compressed.
func (c *Conn) setupMessage(p []byte) ([]byte, error) {
	if !c.fragZ {
		return p, nil
	}
	var out []byte
	err := withInflated(p, func(m []byte) { out = append(c.big[:0:0], m...) })
	return out, err
}

func closeFrameError(p []byte) *closeError {
	ce := &closeError{code: 1005}
	if len(p) >= 2 {
		ce.code = int(binary.BigEndian.Uint16(p))
		ce.reason = string(p[2:])
	}
	return ce
}

// readable is called by the poller when the socket has input (or hung up).
// It reads once into the poller's buffer, after the bytes left over from the
// previous read, handles every complete frame and writes what the handlers
// queued.
//
// now is the poller's clock reading for this round. With receive stamps
// (rx not nil), the frames completed by this read count as arrived at the
// stamp of the newest packet read instead (rxstamp.go).
func (c *Conn) readable(buf []byte, now int64, rx *stampedReader) {
	var data []byte
	if len(c.rbuf) <= len(buf)/2 {
		k := copy(buf, c.rbuf)
		n, err := c.read(buf[k:], rx, &now)
		if n <= 0 {
			c.readErr(n, err)
			return
		}
		data = buf[:k+n]
	} else {
		// A large frame is being assembled: read straight into rbuf.
		if cap(c.rbuf)-len(c.rbuf) < len(buf)/2 {
			c.rbuf = append(c.rbuf, make([]byte, len(buf))...)[:len(c.rbuf)]
		}
		n, err := c.read(c.rbuf[len(c.rbuf):cap(c.rbuf)], rx, &now)
		if n <= 0 {
			c.readErr(n, err)
			return
		}
		data = c.rbuf[:len(c.rbuf)+n]
	}
	used, err := c.process(data, now)
	if err != nil {
		c.end(err)
		return
	}
	// Keep the incomplete tail. It may lie in the poller's buffer or in
	// rbuf itself (append copies with memmove, overlap is fine).
	c.rbuf = append(c.rbuf[:0], data[used:]...)
	c.flush()
}

// read reads once from the socket. With rx it also moves *now back to the
// receive stamp of what it read, when the kernel gave one that is not in
// the future.
func (c *Conn) read(p []byte, rx *stampedReader, now *int64) (int, error) {
	if rx == nil {
		return syscall.Read(c.fd, p)
	}
	n, at, err := rx.read(c.fd, p)
	if at != 0 {
		if t := at - rx.wallOff; t < *now {
			*now = t
		}
	}
	return n, err
}

func (c *Conn) readErr(n int, err error) {
	if n == 0 && err == nil {
		c.end(io.EOF)
		return
	}
	if err == syscall.EAGAIN || err == syscall.EINTR {
		return
	}
	c.end(err)
}

// process handles the complete frames at the start of data and returns how
// many bytes they took.
func (c *Conn) process(data []byte, now int64) (int, error) {
	i := 0
	for {
		h, hl, ok := parseHeader(data[i:])
		if !ok {
			return i, nil
		}
		if h.Length > maxMessage {
			return i, fmt.Errorf("message of %d bytes is too large", h.Length)
		}
		n := int(h.Length)
		if len(data)-i-hl < n {
			return i, nil
		}
		p := data[i+hl : i+hl+n]
		i += hl + n
		if h.Masked {
			ws.Cipher(p, h.Mask, 0)
		}
		switch h.OpCode {
		case ws.OpText, ws.OpBinary:
			if h.Fin {
				if err := c.compressedMessage(h.Rsv1(), p, now); err != nil {
					return i, err
				}
			} else {
				c.frag = append(c.frag[:0], p...)
				c.inFrag = true
				c.fragZ = h.Rsv1()
			}
		case ws.OpContinuation:
			if !c.inFrag {
				return i, errors.New("continuation frame without a start")
			}
			c.frag = append(c.frag, p...)
			if len(c.frag) > maxMessage {
				return i, errors.New("fragmented message too large")
			}
			if h.Fin {
				c.inFrag = false
				if err := c.compressedMessage(c.fragZ, c.frag, now); err != nil {
					return i, err
				}
			}
		case ws.OpPing:
			c.queueFrame(ws.OpPong, p)
		case ws.OpPong:
		case ws.OpClose:
			ce := closeFrameError(p)
			if !c.closing.Load() {
				c.queueFrame(ws.OpClose, p[:min(len(p), 2)])
				c.flush()
			}
			return i, ce
		default:
			return i, fmt.Errorf("unknown opcode %d", h.OpCode)
		}
	}
}

// compressedMessage handles a message that may have come compressed.
func (c *Conn) compressedMessage(compressed bool, p []byte, now int64) error {
	if !compressed {
		c.message(p, now)
		return nil
	}
	return withInflated(p, func(m []byte) { c.message(m, now) })
}

// message handles one text message: a ping, a packet or a batch (the
// protocol's each splits it).
func (c *Conn) message(p []byte, now int64) {
	c.pr.each(p, func(e []byte) { c.packet(e, now) })
}

func (c *Conn) packet(p []byte, now int64) {
	if c.pr.isPing(p) {
		c.stats.pings.Add(1)
		c.queueFrame(ws.OpText, c.pr.ping)
		return
	}
	s := c.pr.scan(p)
	switch s.kind {
	case kindResponse:
		c.h.OnResponse(c, s.rid, s.isErr, now)
	case kindDelivery:
		c.h.OnDelivery(c, s.seq, s.ts, now)
	default:
		c.stats.others.Add(1)
	}
}

// end is called by the poller when the connection is over: it closes the
// socket and reports.
func (c *Conn) end(err error) {
	c.mu.Lock()
	if c.fd < 0 {
		c.mu.Unlock()
		return
	}
	syscall.EpollCtl(c.poller.epfd, syscall.EPOLL_CTL_DEL, c.fd, nil)
	syscall.Close(c.fd)
	c.fd = -1
	c.werr = net.ErrClosed
	c.mu.Unlock()
	c.poller.slots[c.slot].Store(nil)
	c.err = err
	if !c.closing.Load() {
		c.stats.closed.Add(1)
		if c.stats.closeLogs.Add(1) <= 5 {
			c.log("connection %d ended: %v", c.ID, err)
		}
	}
	close(c.done)
}

// queueFrame adds a frame to the pending output.
func (c *Conn) queueFrame(op ws.OpCode, payload []byte) {
	c.mu.Lock()
	c.pend = appendFrame(c.pend, op, payload, &c.mask)
	c.mu.Unlock()
}

// queue adds a text frame to the pending output; it leaves at the next flush.
func (c *Conn) queue(payload []byte) { c.queueFrame(ws.OpText, payload) }

// send queues a text frame and flushes.
func (c *Conn) send(payload []byte) error {
	c.queueFrame(ws.OpText, payload)
	return c.flush()
}

// flush writes the pending output unless another goroutine is writing (it
// will take these frames along) or the socket is full (the poller writes
// when it drains).
func (c *Conn) flush() error {
	c.mu.Lock()
	if c.busy || c.waitOut || len(c.pend) == 0 || c.werr != nil {
		err := c.werr
		c.mu.Unlock()
		return err
	}
	c.busy = true
	for len(c.pend) > 0 && c.werr == nil && !c.waitOut {
		b := c.pend
		c.pend, c.spare = c.spare[:0], nil
		fd := c.fd
		c.mu.Unlock()
		n, err := writeSome(fd, b)
		c.mu.Lock()
		switch {
		case err != nil:
			c.werr = err
		case n < len(b):
			// The socket is full: keep the rest in front of what was queued
			// meanwhile and let the poller resume when it drains.
			rest := make([]byte, 0, len(b)-n+len(c.pend))
			rest = append(append(rest, b[n:]...), c.pend...)
			c.pend = rest
			c.waitOut = true
			c.poller.setEvents(c, true)
		default:
			c.spare = b[:0]
		}
	}
	c.busy = false
	err := c.werr
	c.mu.Unlock()
	return err
}

// writable is called by the poller when a full socket drained.
func (c *Conn) writable() {
	c.mu.Lock()
	if !c.waitOut {
		c.mu.Unlock()
		return
	}
	c.waitOut = false
	if c.fd >= 0 {
		c.poller.setEvents(c, false)
	}
	c.mu.Unlock()
	c.flush()
}

// writeSome writes b to the non-blocking socket fd until it is written or
// the socket is full.
func writeSome(fd int, b []byte) (int, error) {
	if fd < 0 {
		return 0, net.ErrClosed
	}
	done := 0
	for done < len(b) {
		n, err := syscall.Write(fd, b[done:])
		if n > 0 {
			done += n
		}
		switch {
		case err == syscall.EINTR:
		case err == syscall.EAGAIN:
			return done, nil
		case err != nil:
			return done, err
		}
	}
	return done, nil
}

// close ends the connection: a close frame (1000), then a shutdown that the
// poller notices and completes. With wait it waits for that.
func (c *Conn) close(wait bool) {
	if c.closing.Swap(true) {
		if wait {
			<-c.done
		}
		return
	}
	if c.held {
		// crypto/tls serialises this write with the reader's pong.
		_, _ = c.nc.Write(appendFrame(nil, ws.OpClose, []byte{0x03, 0xe8}, &c.mask))
		c.nc.Close()
		if wait {
			<-c.done
		}
		return
	}
	c.queueFrame(ws.OpClose, []byte{0x03, 0xe8})
	c.flush()
	c.mu.Lock()
	if c.fd >= 0 {
		syscall.Shutdown(c.fd, syscall.SHUT_RDWR)
	}
	c.mu.Unlock()
	if wait {
		<-c.done
	}
}
