//go:build linux

package main

import (
	"bufio"
	"bytes"
	"io"
	"net"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/gobwas/ws"

	"github.com/socketcluster-go/socketcluster/internal/uring"
)

// miniServer is a tiny SocketCluster server: #handshake, "" pings, echo,
// #subscribe and #publish with fan-out, and nothing else (no middleware, no
// validation beyond what it needs to route). It serves the end-to-end tests
// and `scbench floor` (floor.go). Packets are taken apart with the scanner of
// scan.go; a publish is encoded once. With coalesce the frame is appended to
// every subscriber's output, which is flushed when the publisher's input is
// drained (the generator's ceiling); without it, every delivery is its own
// write(2), the floor any server that writes one frame per delivery pays.
type miniServer struct {
	pingEvery time.Duration
	coalesce  bool

	// ring, when set (floor -uring), sends a publication to all of its
	// idle subscribers with one io_uring_enter instead of a write(2)
	// each; ringMu serialises its use, ringFds and ringRes are its
	// scratch.
	ring     *uring.Ring
	ringMu   sync.Mutex
	ringFds  []int32
	ringBufs [][]byte
	ringRes  []int32
	ringSub  []*miniConn

	mu    sync.RWMutex
	chans map[string][]*miniConn // copy on write
	conns map[*miniConn]struct{}

	nextID     atomic.Int64
	handshakes atomic.Int64
	pings      atomic.Int64
	pongs      atomic.Int64
	publishes  atomic.Int64
	delivered  atomic.Int64
	calls      atomic.Int64

	stop chan struct{}
	once sync.Once
}

type miniConn struct {
	s  *miniServer
	nc net.Conn
	br *bufio.Reader
	fd int32 // the socket's descriptor, for the io_uring ring; -1 when unknown

	mu    sync.Mutex
	out   []byte
	spare []byte
	busy  bool
	err   error

	scratch []byte
	touched []string // channels published to since the last flush
}

func newMiniServer(pingEvery time.Duration, coalesce bool) *miniServer {
	s := &miniServer{
		pingEvery: pingEvery,
		coalesce:  coalesce,
		chans:     map[string][]*miniConn{},
		conns:     map[*miniConn]struct{}{},
		stop:      make(chan struct{}),
	}
	if pingEvery > 0 {
		go s.pinger()
	}
	return s
}

func (s *miniServer) close() {
	s.once.Do(func() {
		close(s.stop)
		s.mu.Lock()
		for c := range s.conns {
			c.nc.Close()
		}
		s.mu.Unlock()
	})
}

func (s *miniServer) pinger() {
	t := time.NewTicker(s.pingEvery)
	defer t.Stop()
	for {
		select {
		case <-s.stop:
			return
		case <-t.C:
		}
		s.mu.RLock()
		for c := range s.conns {
			c.queue(nil)
			s.pings.Add(1)
			go c.flush()
		}
		s.mu.RUnlock()
	}
}

func (s *miniServer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.URL.Path != "/socketcluster/" {
		http.Error(w, "Bad Request", http.StatusBadRequest)
		return
	}
	nc, rw, _, err := ws.UpgradeHTTP(r, w)
	if err != nil {
		return
	}
	c := &miniConn{s: s, nc: nc, br: rw.Reader, fd: -1}
	if tc, ok := nc.(*net.TCPConn); ok && s.ring != nil {
		if rc, err := tc.SyscallConn(); err == nil {
			_ = rc.Control(func(fd uintptr) { c.fd = int32(fd) })
		}
	}
	if c.br == nil {
		c.br = bufio.NewReader(nc)
	}
	s.mu.Lock()
	s.conns[c] = struct{}{}
	s.mu.Unlock()
	c.serve()
	s.mu.Lock()
	delete(s.conns, c)
	for ch, subs := range s.chans {
		if i := indexConn(subs, c); i >= 0 {
			s.chans[ch] = append(subs[:i:i], subs[i+1:]...)
		}
	}
	s.mu.Unlock()
	nc.Close()
}

func indexConn(subs []*miniConn, c *miniConn) int {
	for i, x := range subs {
		if x == c {
			return i
		}
	}
	return -1
}

func (c *miniConn) queue(payload []byte) {
	c.mu.Lock()
	c.out = appendFrame(c.out, ws.OpText, payload, nil)
	c.mu.Unlock()
}

func (c *miniConn) queueFrame(frame []byte) {
	c.mu.Lock()
	c.out = append(c.out, frame...)
	c.mu.Unlock()
}

func (c *miniConn) flush() {
	c.mu.Lock()
	if c.busy || c.err != nil {
		c.mu.Unlock()
		return
	}
	c.busy = true
	for len(c.out) > 0 && c.err == nil {
		b := c.out
		c.out, c.spare = c.spare[:0], nil
		c.mu.Unlock()
		_, err := c.nc.Write(b)
		c.mu.Lock()
		c.spare = b[:0]
		c.err = err
	}
	c.busy = false
	c.mu.Unlock()
}

func (c *miniConn) serve() {
	var hdr [ws.MaxHeaderSize - 2]byte
	var big []byte
	for {
		h, err := ws.ReadHeaderBuffer(c.br, hdr[:])
		if err != nil {
			return
		}
		n := int(h.Length)
		var p []byte
		peeked := false
		if n <= c.br.Size() {
			if p, err = c.br.Peek(n); err != nil {
				return
			}
			peeked = true
		} else {
			if cap(big) < n {
				big = make([]byte, n)
			}
			p = big[:n]
			if _, err := io.ReadFull(c.br, p); err != nil {
				return
			}
		}
		if h.Masked {
			ws.Cipher(p, h.Mask, 0)
		}
		switch h.OpCode {
		case ws.OpText, ws.OpBinary:
			c.message(p)
		case ws.OpClose:
			c.mu.Lock()
			c.out = appendFrame(c.out, ws.OpClose, p[:min(len(p), 2)], nil)
			c.mu.Unlock()
			c.flush()
			return
		case ws.OpPing:
			c.mu.Lock()
			c.out = appendFrame(c.out, ws.OpPong, p, nil)
			c.mu.Unlock()
		}
		if peeked {
			c.br.Discard(n)
		}
		if c.br.Buffered() == 0 {
			c.flushAll()
		}
	}
}

// flushAll writes this connection's output and that of the subscribers of
// the channels it published to.
func (c *miniConn) flushAll() {
	c.flush()
	if len(c.touched) == 0 {
		return
	}
	c.s.mu.RLock()
	for _, ch := range c.touched {
		for _, sub := range c.s.chans[ch] {
			sub.flush()
		}
	}
	c.s.mu.RUnlock()
	c.touched = c.touched[:0]
}

func (c *miniConn) message(p []byte) {
	if len(p) == 0 {
		c.s.pongs.Add(1)
		return
	}
	if p[0] == '[' {
		for i := 1; ; {
			e, next, ok := nextElement(p, i)
			if !ok {
				return
			}
			i = next
			c.packet(e)
		}
	}
	c.packet(p)
}

// objectField returns the raw JSON value of key in the object text p.
func objectField(p []byte, key string) []byte {
	i := skipSpace(p, 0)
	if i >= len(p) || p[i] != '{' {
		return nil
	}
	i++
	for {
		i = skipSpace(p, i)
		if i >= len(p) || p[i] != '"' {
			return nil
		}
		kend := skipValue(p, i)
		if kend <= i {
			return nil
		}
		k := p[i+1 : kend-1]
		i = skipSpace(p, kend)
		if i >= len(p) || p[i] != ':' {
			return nil
		}
		i = skipSpace(p, i+1)
		vend := skipValue(p, i)
		if vend <= i {
			return nil
		}
		if string(k) == key {
			return bytes.TrimRight(p[i:vend], " \t\r\n")
		}
		i = skipSpace(p, vend)
		if i < len(p) && p[i] == ',' {
			i++
		}
	}
}

func (c *miniConn) reply(cid, data []byte) {
	b := append(c.scratch[:0], `{"rid":`...)
	b = append(b, cid...)
	if data != nil {
		b = append(b, `,"data":`...)
		b = append(b, data...)
	}
	b = append(b, '}')
	c.scratch = b
	c.queue(b)
}

func (c *miniConn) packet(p []byte) {
	event := objectField(p, "event")
	cid := objectField(p, "cid")
	data := objectField(p, "data")
	if len(event) < 2 || event[0] != '"' {
		return // responses and raw messages: nothing to do here
	}
	switch string(event[1 : len(event)-1]) {
	case "#handshake":
		c.s.handshakes.Add(1)
		id := c.s.nextID.Add(1)
		c.reply(cid, []byte(`{"id":"mini-`+strconv.FormatInt(id, 10)+`","pingTimeout":20000,"isAuthenticated":false}`))
	case "#subscribe":
		ch, err := strconv.Unquote(string(objectField(data, "channel")))
		if err != nil {
			c.reply(cid, nil) // malformed; a real server answers with an error
			return
		}
		c.s.mu.Lock()
		subs := c.s.chans[ch]
		if indexConn(subs, c) < 0 {
			c.s.chans[ch] = append(subs[:len(subs):len(subs)], c)
		}
		c.s.mu.Unlock()
		if cid != nil {
			c.reply(cid, nil)
		}
	case "#publish":
		chRaw := objectField(data, "channel")
		ch, err := strconv.Unquote(string(chRaw))
		if err != nil {
			return
		}
		c.s.publishes.Add(1)
		b := append(c.scratch[:0], `{"event":"#publish","data":{"channel":`...)
		b = append(b, chRaw...)
		if d := objectField(data, "data"); d != nil {
			b = append(b, `,"data":`...)
			b = append(b, d...)
		}
		b = append(b, "}}"...)
		frame := appendFrame(nil, ws.OpText, b, nil)
		c.scratch = b
		c.s.mu.RLock()
		subs := c.s.chans[ch]
		c.s.mu.RUnlock()
		if c.s.ring != nil && !c.s.coalesce {
			c.s.sendRing(subs, frame)
		} else {
			for _, sub := range subs {
				sub.queueFrame(frame)
				if !c.s.coalesce {
					sub.flush()
				}
			}
		}
		c.s.delivered.Add(int64(len(subs)))
		if c.s.coalesce && (len(c.touched) == 0 || c.touched[len(c.touched)-1] != ch) {
			c.touched = append(c.touched, ch)
		}
		if cid != nil {
			c.reply(cid, nil)
		}
	case "echo":
		c.s.calls.Add(1)
		c.reply(cid, data)
	default:
		if cid != nil {
			b := append(c.scratch[:0], `{"rid":`...)
			b = append(b, cid...)
			b = append(b, `,"error":{"message":"no such procedure","name":"UnknownProcedure"}}`...)
			c.scratch = b
			c.queue(b)
		}
	}
}

// sendRing delivers frame to subs: the idle ones (nothing queued, no
// write under way) through one io_uring batch, the others as flush does.
// A subscriber is marked busy for the batch, so that a ping's flush cannot
// interleave its bytes; a short send queues the rest of the frame.
func (s *miniServer) sendRing(subs []*miniConn, frame []byte) {
	s.ringMu.Lock()
	defer s.ringMu.Unlock()
	s.ringFds, s.ringBufs, s.ringSub = s.ringFds[:0], s.ringBufs[:0], s.ringSub[:0]
	for _, sub := range subs {
		sub.mu.Lock()
		if sub.busy || len(sub.out) > 0 || sub.err != nil || sub.fd < 0 {
			sub.out = append(sub.out, frame...)
			sub.mu.Unlock()
			sub.flush()
			continue
		}
		sub.busy = true
		sub.mu.Unlock()
		s.ringFds = append(s.ringFds, sub.fd)
		s.ringBufs = append(s.ringBufs, frame)
		s.ringSub = append(s.ringSub, sub)
	}
	if cap(s.ringRes) < len(s.ringFds) {
		s.ringRes = make([]int32, len(s.ringFds))
	}
	res := s.ringRes[:len(s.ringFds)]
	err := s.ring.Send(s.ringFds, s.ringBufs, res)
	for i, sub := range s.ringSub {
		sub.mu.Lock()
		sent := int(res[i])
		switch {
		case err != nil:
			sub.err = err
		case sent == -int(syscall.EAGAIN):
			sub.out = append(sub.out, frame...)
		case sent < 0:
			sub.err = syscall.Errno(-sent)
		case sent < len(frame):
			sub.out = append(sub.out, frame[sent:]...)
		}
		sub.busy = false
		pending := len(sub.out) > 0
		sub.mu.Unlock()
		if pending {
			sub.flush()
		}
	}
}
