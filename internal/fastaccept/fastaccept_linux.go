//go:build linux && !scnoepoll

package fastaccept

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"net/netip"
	"os"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"

	"github.com/socketcluster-go/socketcluster/internal/netpoll"
	"github.com/socketcluster-go/socketcluster/internal/wsconn"
)

// Wrap returns a listener for cfg.Server.Serve that accepts l's
// connections itself (see the package doc), and true; or l and false when
// it cannot: l is not a *net.TCPListener, or event-driven reads are not
// available. The returned listener's Close closes l, and the connections
// whose head it was still reading. Wrap sets TCP_NODELAY on l's socket,
// for the sockets accepted from it to inherit.
func Wrap(l net.Listener, cfg Config) (net.Listener, bool) {
	tl, ok := l.(*net.TCPListener)
	if !ok || !netpoll.Available() || cfg.Handler == nil {
		return l, false
	}
	rc, err := tl.SyscallConn()
	if err != nil {
		return l, false
	}
	if cfg.MaxHeaderBytes <= 0 {
		cfg.MaxHeaderBytes = 16 << 10
	}
	fl := &listener{
		tl:       tl,
		rc:       rc,
		cfg:      cfg,
		handed:   make(chan net.Conn),
		done:     make(chan struct{}),
		loopDone: make(chan struct{}),
		pending:  make(map[*headReader]struct{}),
	}
	fl.acceptFn = fl.acceptOne
	// Sockets accepted from a listening socket with TCP_NODELAY inherit
	// it on Linux: set here, it saves a setsockopt per connection (Ready
	// checks the first one, and sets it on each when it was not so).
	// TCP_DEFER_ACCEPT: the kernel hands a connection over once its
	// first data has come (or deferAccept later), so its head is read at
	// once (netpoll.Desc.StartReadable) instead of after an event of its
	// own.
	_ = rc.Control(func(fd uintptr) {
		if unix.SetsockoptInt(int(fd), unix.IPPROTO_TCP, unix.TCP_NODELAY, 1) != nil {
			fl.noDelay = noDelayPerConn
		}
		fl.deferred = !cfg.NoDeferAccept &&
			unix.SetsockoptInt(int(fd), unix.IPPROTO_TCP, unix.TCP_DEFER_ACCEPT, deferAccept) == nil
	})
	// Edge-triggered: Ready accepts until accept4 says EAGAIN, so the
	// registration is never re-armed.
	fl.desc.InitEdge(rc, fl)
	fl.desc.Start()
	return fl, true
}

// deferAccept is how long, in seconds, the kernel keeps a connection that
// has sent nothing (TCP_DEFER_ACCEPT) before it is accepted all the same;
// its header timeout (Config.ReadHeaderTimeout) starts then. Data
// that comes ends the wait at once: only silent connections wait, and
// they cost the kernel a request socket meanwhile, not a descriptor.
const deferAccept = 1

// How an accepted socket gets TCP_NODELAY (listener.noDelay).
const (
	noDelayUnknown   int8 = iota // (the zero value) set on the listening socket; the next accepted socket tells whether it is inherited
	noDelayInherited             // accepted sockets have it from the listening socket
	noDelayPerConn               // set on each accepted socket, as the net package does
)

type listener struct {
	tl  *net.TCPListener
	rc  syscall.RawConn
	cfg Config

	desc      netpoll.Desc  // the listening socket's; the handler is Ready
	handed    chan net.Conn // connections for net/http (Accept)
	done      chan struct{} // closed by Close
	closeOnce sync.Once
	loopDone  chan struct{} // closed when accepting has ended; then err is set
	err       error
	deferred  bool // the listening socket defers accepts (deferAccept)
	noDelay   int8 // noDelayUnknown, noDelayInherited or noDelayPerConn; owned by Ready

	// The result of the accept4 Ready makes through rc.Control: a
	// function made once (acceptFn, see Wrap) and results in the
	// listener, so that a call allocates nothing; owned by Ready.
	acceptFn func(fd uintptr)
	acc      acceptResult

	mu      sync.Mutex
	pending map[*headReader]struct{} // heads being read; nil once closed
}

// Accept returns the next connection for net/http: one whose first
// request is not an upgrade taken here.
func (l *listener) Accept() (net.Conn, error) {
	select {
	case c := <-l.handed:
		return c, nil
	case <-l.done:
		return nil, &net.OpError{Op: "accept", Net: "tcp", Addr: l.tl.Addr(), Err: net.ErrClosed}
	case <-l.loopDone:
		return nil, l.err
	}
}

// Close closes the TCP listener and the connections whose head is being
// read, and returns once accepting has ended.
func (l *listener) Close() error {
	err := net.ErrClosed
	l.closeOnce.Do(func() {
		close(l.done)
		err = l.tl.Close()
		l.mu.Lock()
		heads := l.pending
		l.pending = nil
		l.mu.Unlock()
		for h := range heads {
			h.desc.Trigger() // the handler sees done and closes
		}
		l.desc.Trigger() // Ready sees done and ends
		<-l.loopDone
	})
	return err
}

func (l *listener) Addr() net.Addr { return l.tl.Addr() }

func (l *listener) closed() bool {
	select {
	case <-l.done:
		return true
	default:
		return false
	}
}

// Ready is the listening socket's netpoll handler: it accepts every
// connection waiting, until the listener is closed or fails as
// http.Server.Serve would stop (Accept then returns the error). A
// temporary shortage of descriptors or memory is waited out, as
// http.Server.Serve does.
func (l *listener) Ready() bool {
	delay := time.Duration(0)
	for {
		if l.closed() {
			return l.end(nil)
		}
		if err := l.rc.Control(l.acceptFn); err != nil {
			return l.end(err)
		}
		nfd, peer, aerr := l.acc.fd, l.acc.peer, l.acc.err
		l.acc = acceptResult{}
		switch aerr {
		case nil:
			delay = 0
		case unix.EAGAIN:
			return true
		case unix.EINTR, unix.ECONNABORTED,
			// Errors of the network that accept(2) passes on from a
			// connection that failed before it was accepted: retry
			// (accept(2), "Error handling").
			unix.ENETDOWN, unix.EPROTO, unix.ENOPROTOOPT, unix.EHOSTDOWN, unix.ENONET,
			unix.EHOSTUNREACH, unix.EOPNOTSUPP, unix.ENETUNREACH, unix.EPERM:
			continue
		case unix.EMFILE, unix.ENFILE, unix.ENOBUFS, unix.ENOMEM:
			delay = min(max(2*delay, 5*time.Millisecond), time.Second)
			t := time.NewTimer(delay)
			select {
			case <-t.C:
			case <-l.done:
				t.Stop()
			}
			continue
		default:
			return l.end(os.NewSyscallError("accept4", aerr))
		}
		// TCP_NODELAY, as the net package sets it on the connections it
		// accepts.
		l.setNoDelay(nfd)
		l.start(wsconn.NewAccepted(nfd, peer))
	}
}

// headParser is what http.ReadRequest reads a complete head from, lent
// by headParsers: readers made per head were a third of the bytes a
// connection's set-up allocated (docs/performance.md).
type headParser struct {
	src bytes.Reader
	br  *bufio.Reader // over src; 4 KiB, as net/http's (longer lines are read in pieces)
}

var headParsers = sync.Pool{New: func() any {
	p := new(headParser)
	p.br = bufio.NewReaderSize(&p.src, 4096)
	return p
}}

// readRequest parses head, a complete request head. The request it
// returns keeps no reference to the parser: a request with a body, which
// would read it through the parser, is never taken (listener.takes) and
// is handed on as bytes.
func readRequest(head []byte) (*http.Request, error) {
	p := headParsers.Get().(*headParser)
	p.src.Reset(head)
	p.br.Reset(&p.src)
	r, err := http.ReadRequest(p.br)
	p.src.Reset(nil)
	p.br.Reset(&p.src)
	headParsers.Put(p)
	return r, err
}

// acceptResult is what one accept4 returned (listener.acc).
type acceptResult struct {
	fd   int
	peer netip.AddrPort
	err  error
}

// acceptOne accepts one connection from the listening socket fd into
// l.acc (listener.acceptFn).
func (l *listener) acceptOne(fd uintptr) {
	l.acc.fd, l.acc.peer, l.acc.err = accept(int(fd))
}

// setNoDelay makes sure the accepted socket fd has TCP_NODELAY: inherited
// from the listening socket, or set on it.
func (l *listener) setNoDelay(fd int) {
	if l.noDelay == noDelayUnknown {
		l.noDelay = noDelayPerConn
		if v, err := unix.GetsockoptInt(fd, unix.IPPROTO_TCP, unix.TCP_NODELAY); err == nil && v != 0 {
			l.noDelay = noDelayInherited
		}
	}
	if l.noDelay == noDelayPerConn {
		_ = unix.SetsockoptInt(fd, unix.IPPROTO_TCP, unix.TCP_NODELAY, 1)
	}
}

// end stops accepting: Accept then returns the closed listener's error
// (err nil), or an error that http.Server.Serve does not retry.
func (l *listener) end(err error) bool {
	if err == nil {
		l.err = &net.OpError{Op: "accept", Net: "tcp", Addr: l.tl.Addr(), Err: net.ErrClosed}
	} else {
		l.err = fmt.Errorf("fastaccept: accepting on %s stopped: %w", l.tl.Addr(), err)
	}
	close(l.loopDone)
	return false
}

// accept is accept4(2), non-blocking and close-on-exec (a raw system
// call: it never blocks), with the peer's address read from the raw
// sockaddr (unix.Accept4 asks the listening socket for its protocol, one
// more system call per connection).
func accept(fd int) (int, netip.AddrPort, error) {
	var rsa unix.RawSockaddrAny
	n := uint32(unix.SizeofSockaddrAny)
	r, _, e := unix.RawSyscall6(unix.SYS_ACCEPT4, uintptr(fd), uintptr(unsafe.Pointer(&rsa)), uintptr(unsafe.Pointer(&n)),
		unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, 0, 0)
	if e != 0 {
		return -1, netip.AddrPort{}, e
	}
	var peer netip.AddrPort
	switch rsa.Addr.Family {
	case unix.AF_INET:
		sa := (*unix.RawSockaddrInet4)(unsafe.Pointer(&rsa))
		peer = netip.AddrPortFrom(netip.AddrFrom4(sa.Addr), ntohs(sa.Port))
	case unix.AF_INET6:
		sa := (*unix.RawSockaddrInet6)(unsafe.Pointer(&rsa))
		ip := netip.AddrFrom16(sa.Addr)
		if sa.Scope_id != 0 {
			// As the net package names it: the interface's name.
			zone := strconv.Itoa(int(sa.Scope_id))
			if ifi, err := net.InterfaceByIndex(int(sa.Scope_id)); err == nil {
				zone = ifi.Name
			}
			ip = ip.WithZone(zone)
		}
		peer = netip.AddrPortFrom(ip, ntohs(sa.Port))
	}
	return int(r), peer, nil
}

// ntohs reads a port as the kernel stores it (network byte order).
func ntohs(p uint16) uint16 {
	b := (*[2]byte)(unsafe.Pointer(&p))
	return uint16(b[0])<<8 | uint16(b[1])
}

// headReader reads one connection's request head. Its handler runs in a
// netpoll worker, never twice at once: it owns every field but desc (and
// timer, when start sets it before Start).
type headReader struct {
	l     *listener
	conn  *wsconn.Accepted
	desc  netpoll.Desc
	buf   *[]byte // the head so far (len), from headBufs unless it grew
	start time.Time
	timer *time.Timer
}

// headBufs lends the buffers heads are read into; a head longer than one
// gets a buffer of its own.
var headBufs = sync.Pool{New: func() any { b := make([]byte, 0, 4096); return &b }}

func (l *listener) start(conn *wsconn.Accepted) {
	h := &headReader{l: l, conn: conn, start: time.Now()}
	// Init before h is pending: Close may trigger it from then on.
	// Edge-triggered: Ready reads until the socket is empty or the head is
	// complete, and the socket's reader then takes the registration over
	// as it is (netpoll.Desc.StartAfter; it registers anew when the head
	// was complete at accept and never watched); a connection handed on
	// is unwatched first (handOff, wsconn.Accepted.TCPConn).
	h.desc.InitEdge(conn.RawConn(), h)
	l.mu.Lock()
	if l.pending == nil { // closed
		l.mu.Unlock()
		_ = conn.Close()
		return
	}
	l.pending[h] = struct{}{}
	l.mu.Unlock()
	if l.deferred {
		// The head (or most of it) has come: read it now, and watch the
		// connection only if more is needed (Ready then sets the header
		// timer).
		h.desc.StartReadable()
		return
	}
	h.setTimer()
	h.desc.Start()
}

// setTimer has the handler run when the header timeout has passed since
// accept, unless it is set already or there is no timeout.
func (h *headReader) setTimer() {
	if t := h.l.cfg.ReadHeaderTimeout; t > 0 && h.timer == nil {
		h.timer = time.AfterFunc(t-time.Since(h.start), h.desc.Trigger)
	}
}

// Ready reads what has come of the head; when it is complete, serves or
// hands on the connection. Only netpoll calls it.
func (h *headReader) Ready() bool {
	if h.l.closed() {
		h.drop(false)
		return false
	}
	if h.buf == nil {
		h.buf = headBufs.Get().(*[]byte)
	}
	for {
		b := *h.buf
		if len(b) == cap(b) {
			nb := make([]byte, len(b), min(2*cap(b), h.l.cfg.MaxHeaderBytes+1))
			copy(nb, b)
			h.putBuf()
			b = nb
			h.buf = &b
		}
		n, err := h.desc.Read(b[len(b):cap(b)])
		if err == netpoll.ErrWouldBlock {
			if t := h.l.cfg.ReadHeaderTimeout; t > 0 && time.Since(h.start) >= t {
				h.drop(true)
				return false
			}
			h.setTimer()
			return true
		}
		if err != nil {
			// Part of a head and then the end is a refusal; nothing at
			// all is a probe.
			h.drop(len(b) > 0)
			return false
		}
		from := max(len(b)-3, 0)
		b = b[:len(b)+n]
		*h.buf = b
		end := headEnd(b, from)
		switch {
		case end > h.l.cfg.MaxHeaderBytes || (end == 0 && len(b) > h.l.cfg.MaxHeaderBytes):
			// net/http answers 431.
			return h.handOff()
		case end > 0:
			return h.complete(end)
		}
	}
}

// headEnd returns the index after the blank line that ends the head in b
// (CRLF CRLF, or bare LFs as net/http also accepts), searching from from;
// 0 when it is not there yet.
func headEnd(b []byte, from int) int {
	for {
		i := bytes.IndexByte(b[from:], '\n')
		if i < 0 {
			return 0
		}
		i += from
		switch {
		case i+1 < len(b) && b[i+1] == '\n':
			return i + 2
		case i+2 < len(b) && b[i+1] == '\r' && b[i+2] == '\n':
			return i + 3
		}
		from = i + 1
	}
}

// leave ends the head's reading: no more timer, no longer pending.
func (h *headReader) leave() {
	if h.timer != nil {
		h.timer.Stop()
	}
	h.l.mu.Lock()
	if h.l.pending != nil {
		delete(h.l.pending, h)
	}
	h.l.mu.Unlock()
}

func (h *headReader) putBuf() {
	if h.buf != nil && cap(*h.buf) == 4096 {
		*h.buf = (*h.buf)[:0]
		headBufs.Put(h.buf)
	}
	h.buf = nil
}

func (h *headReader) drop(report bool) {
	h.leave()
	h.putBuf()
	_ = h.conn.Close()
	if report && h.l.cfg.Dropped != nil {
		h.l.cfg.Dropped()
	}
}

// handOff gives the connection to net/http with the bytes read so far.
func (h *headReader) handOff() bool {
	h.leave()
	read := bytes.Clone(*h.buf)
	h.putBuf()
	h.desc.Unwatch()
	tc, err := h.conn.TCPConn()
	if err != nil {
		// Out of descriptors, say: dropped before a complete answer.
		if h.l.cfg.Dropped != nil {
			h.l.cfg.Dropped()
		}
		return false
	}
	c := &replayConn{TCPConn: tc, replay: read}
	select {
	case h.l.handed <- c:
	case <-h.l.done:
		_ = c.Close()
	}
	return false
}

// complete serves the head b[:end] when it is an upgrade the listener
// takes, and hands the connection on otherwise.
func (h *headReader) complete(end int) bool {
	b := *h.buf
	r, err := readRequest(b[:end])
	if err != nil || !h.l.takes(r) {
		return h.handOff()
	}
	h.leave()
	r.RemoteAddr = h.conn.RemoteAddr().String()
	r = r.WithContext(&requestContext{Context: context.Background(), conn: h.conn, srv: h.l.cfg.Server})
	w := &responseWriter{conn: h.conn}
	if end < len(b) {
		w.extra = bytes.Clone(b[end:])
	}
	h.putBuf()
	h.conn.SetRegistration(&h.desc)
	h.serve(w, r)
	return false
}

// serve runs the handler as net/http would: a panic is logged (but
// http.ErrAbortHandler) and the connection closed unless hijacked; a
// response is written and the connection closed; a hijacked connection
// is the hijacker's.
func (h *headReader) serve(w *responseWriter, r *http.Request) {
	defer func() {
		if v := recover(); v != nil {
			if v != http.ErrAbortHandler {
				buf := make([]byte, 64<<10)
				buf = buf[:runtime.Stack(buf, false)]
				h.l.logf("http: panic serving %v: %v\n%s", r.RemoteAddr, v, buf)
			}
			if !w.hijacked {
				_ = h.conn.Close()
			}
		}
	}()
	h.l.cfg.Handler.ServeHTTP(w, r)
	if !w.hijacked {
		w.finish()
		_ = h.conn.Close()
		return
	}
	w.release(&h.desc)
}

// logf logs as net/http does: to the server's ErrorLog, else the log
// package's standard logger.
func (l *listener) logf(format string, args ...any) {
	if s := l.cfg.Server; s != nil && s.ErrorLog != nil {
		s.ErrorLog.Printf(format, args...)
		return
	}
	log.Printf(format, args...)
}

// takes reports whether r is a plain WebSocket upgrade for the path:
// anything unusual is left to net/http, whose checks it then passes
// through exactly.
func (l *listener) takes(r *http.Request) bool {
	if r.Method != http.MethodGet || r.ProtoMajor != 1 || r.ProtoMinor != 1 ||
		r.URL.Path != l.cfg.Path || r.ContentLength != 0 || len(r.TransferEncoding) > 0 ||
		r.Header.Get("Upgrade") == "" || len(r.Header["Expect"]) > 0 {
		return false
	}
	// http.ReadRequest refuses two Host headers and moves the one to
	// r.Host (net/http's checks of it are left to net/http).
	if r.Host == "" || r.URL.Host != "" || !plainHost(r.Host) {
		return false
	}
	for _, v := range r.Header.Values("Connection") {
		for v != "" {
			var t string
			t, v, _ = strings.Cut(v, ",")
			if strings.EqualFold(strings.TrimSpace(t), "upgrade") {
				return true
			}
		}
	}
	return false
}

// plainHost reports whether host has only the bytes of a DNS name, an
// IPv4 or a bracketed IPv6 address and a port: anything else is left to
// net/http's own checks (which answer 400 to a malformed Host).
func plainHost(host string) bool {
	for i := 0; i < len(host); i++ {
		c := host[i]
		switch {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9':
		case c == '.', c == '-', c == ':', c == '[', c == ']', c == '_':
		default:
			return false
		}
	}
	return true
}

// requestContext is a taken request's context, with the values net/http
// puts in its requests' contexts; the local address is asked of the
// socket only when someone looks for it.
type requestContext struct {
	context.Context
	conn *wsconn.Accepted
	srv  *http.Server
}

func (c *requestContext) Value(key any) any {
	switch key {
	case http.ServerContextKey:
		return c.srv
	case http.LocalAddrContextKey:
		return c.conn.LocalAddr()
	}
	return c.Context.Value(key)
}

// replayConn is a handed-on connection: its first reads return what the
// head reader had read.
type replayConn struct {
	*net.TCPConn
	replay []byte
}

func (c *replayConn) Read(p []byte) (int, error) {
	if len(c.replay) > 0 {
		n := copy(p, c.replay)
		c.replay = c.replay[n:]
		return n, nil
	}
	return c.TCPConn.Read(p)
}

// WriteTo is io.WriterTo's, so that io.Copy, which prefers it, reads the
// replayed bytes first (the TCPConn's own would skip them).
func (c *replayConn) WriteTo(w io.Writer) (int64, error) {
	var n int64
	if len(c.replay) > 0 {
		m, err := w.Write(c.replay)
		n += int64(m)
		c.replay = c.replay[m:]
		if err != nil {
			return n, err
		}
	}
	m, err := c.TCPConn.WriteTo(w)
	return n + m, err
}

// responseWriter is a taken request's http.ResponseWriter: hijacked by an
// upgrade; otherwise its response is written when the handler returns,
// and the connection closed.
type responseWriter struct {
	conn     *wsconn.Accepted
	extra    []byte // bytes after the head
	header   http.Header
	status   int
	body     []byte
	hijacked bool
	bufs     *hijackBufs // lent by Hijack
}

func (w *responseWriter) Header() http.Header {
	if w.header == nil {
		w.header = make(http.Header)
	}
	return w.header
}

func (w *responseWriter) WriteHeader(code int) {
	if w.status == 0 && !w.hijacked {
		w.status = code
	}
}

func (w *responseWriter) Write(p []byte) (int, error) {
	if w.hijacked {
		return 0, http.ErrHijacked
	}
	w.WriteHeader(http.StatusOK)
	w.body = append(w.body, p...)
	return len(p), nil
}

var errHijackAfterWrite = errors.New("fastaccept: Hijack after the response was begun")

// Hijack returns the connection, the *wsconn.Accepted (which wsconn.New
// takes over as it is; for any other hijacker it is a net.Conn that moves
// to the net package at its first Read), with a reader holding the bytes
// that came after the head.
func (w *responseWriter) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	if w.hijacked {
		return nil, nil, http.ErrHijacked
	}
	if w.status != 0 {
		return nil, nil, errHijackAfterWrite
	}
	w.hijacked = true
	if len(w.extra) > hijackBufSize {
		br := bufio.NewReaderSize(bytes.NewReader(w.extra), len(w.extra))
		_, _ = br.Peek(len(w.extra))
		return w.conn, bufio.NewReadWriter(br, bufio.NewWriterSize(w.conn, 512)), nil
	}
	b := hijackBufPool.Get().(*hijackBufs)
	b.src.Reset(w.extra)
	b.br.Reset(&b.src)
	if len(w.extra) > 0 {
		_, _ = b.br.Peek(len(w.extra))
	}
	b.bw.Reset(w.conn)
	b.rw = bufio.ReadWriter{Reader: b.br, Writer: b.bw}
	w.bufs = b
	return w.conn, &b.rw, nil
}

// hijackBufs are the buffers Hijack returns, lent by hijackBufPool: a
// connection that became a wsconn.Conn (wsconn.Accepted.Taken) does not
// use them after the upgrade (the Conn copies what the reader holds), so
// serve gives them back; any other hijacker keeps them.
type hijackBufs struct {
	src bytes.Reader
	br  *bufio.Reader
	bw  *bufio.Writer
	rw  bufio.ReadWriter
}

// hijackBufSize bounds the bytes after a head that a lent reader holds.
const hijackBufSize = 4096

var hijackBufPool = sync.Pool{New: func() any {
	b := new(hijackBufs)
	b.br = bufio.NewReaderSize(&b.src, hijackBufSize)
	b.bw = bufio.NewWriterSize(io.Discard, 512)
	return b
}}

// release, after the handler returned, gives the hijacked buffers back
// once the connection is a wsconn.Conn's; a connection another hijacker
// took leaves netpoll (d, the head's registration), which would
// otherwise be woken by its every arrival until its first Read.
func (w *responseWriter) release(d *netpoll.Desc) {
	if !w.conn.Taken() {
		d.Unwatch()
		return
	}
	b := w.bufs
	if b == nil {
		return
	}
	w.bufs = nil
	b.src.Reset(nil)
	b.br.Reset(&b.src)
	b.bw.Reset(io.Discard)
	b.rw = bufio.ReadWriter{}
	hijackBufPool.Put(b)
}

// finish writes the response of a handler that did not hijack, closing
// the connection after it (as an answer to an upgrade request that was
// refused).
func (w *responseWriter) finish() {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	h := w.Header()
	if h.Get("Content-Type") == "" && len(w.body) > 0 {
		h.Set("Content-Type", http.DetectContentType(w.body))
	}
	if _, ok := h["Date"]; !ok {
		h.Set("Date", time.Now().UTC().Format(http.TimeFormat))
	}
	if h.Get("Content-Length") == "" {
		h.Set("Content-Length", strconv.Itoa(len(w.body)))
	}
	h.Set("Connection", "close")
	var out bytes.Buffer
	out.WriteString("HTTP/1.1 ")
	out.WriteString(strconv.Itoa(w.status))
	out.WriteByte(' ')
	if text := http.StatusText(w.status); text != "" {
		out.WriteString(text)
	} else {
		out.WriteString("status code " + strconv.Itoa(w.status)) // as net/http
	}
	out.WriteString("\r\n")
	_ = h.Write(&out)
	out.WriteString("\r\n")
	out.Write(w.body)
	_ = w.conn.SetWriteDeadline(time.Now().Add(10 * time.Second))
	_, _ = w.conn.Write(out.Bytes())
}
