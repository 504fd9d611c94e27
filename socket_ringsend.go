package socketcluster

import (
	"errors"
	"runtime"
	"sync"
	"sync/atomic"
	"syscall"

	"github.com/socketcluster-go/socketcluster/internal/netpoll"
	"github.com/socketcluster-go/socketcluster/internal/uring"
)

// Batched sends of a publication (docs/performance.md, "io_uring
// submission batching").
//
// A publication to N subscribers used to be N frames queued and, on each
// idle socket, a flusher goroutine started to write it: N wake-ups and N
// write(2) calls. When io_uring is available, deliverLocal instead takes
// the idle subscribers (nothing queued, no write under way) itself and
// sends the shared frame to up to ringBatchMax of them with one
// io_uring_enter, each send non-blocking. From the moment it takes a
// socket the batch is that socket's writer: its queue is marked flushing,
// so what others queue meanwhile waits behind the publication. For the
// length of the send only (no application code runs then), the
// connection's write locks are held too (wsconn.Conn.BeginRingSend), so
// no other write and no close can come between. A socket whose send
// buffer is full, a short send, an error, or a socket whose write locks
// were busy puts the unsent rest at the head of the queue and starts the
// flusher, which writes it as before (with its write deadline, slow
// consumer rule and error handling). Sockets that are busy, TLS or
// closing take the queue as before.

// When the batch is worth it: a batched send is made by the publishing
// goroutine itself, one socket after the other (with at most one helper
// goroutine per other P for the full batches of a large fan-out:
// sendFull), where flushers write in parallel and, under load, several
// publications per write(2) each (docs/performance.md: saturated fan-out
// to 1 000 fell from 1.68 M to 198 k deliveries/s when every publication
// was sent in a batch). So a publication is batched only when, on moving
// averages of the last eight or so on its channel, both
//
//   - publications come more than ringGapPerSub per subscriber apart (8 ms
//     for 1 000 subscribers: 100 publications/s are batched, a flood is
//     not), and
//   - its publishers are not backlogged: the time from the end of one
//     delivery to the start of the next is more than a 32nd of what a
//     batched delivery takes (subscribers times the measured time per
//     socket of batched sends, ringPool.cost). A backlogged publisher
//     has next to no idle time; a moderate one has milliseconds, even
//     when the machine is busy and batches take longer than they should
//     (an eighth was too strict on a 2-core machine shared with the load
//     generator: 100 publications/s were batched only in part).
//
// The second rule keeps a flood from holding itself in batches by being
// slowed down by them, where batches cost more per socket than the first
// rule allows for (measured: the first rule alone with 4 µs per
// subscriber kept saturated fan-out to 1 000 in batches, at 140 k
// deliveries/s); neither alone did well (docs/performance.md).
const (
	ringGapPerSub   = 8000 // ns
	ringCostInitial = 4000 // ns per socket, until measured
)

// ringDue (monoNow: socket_timer.go) reports whether a publication to subs
// subscribers of c is to be sent in batches, a batched send costing cost
// ns per socket; delivered records the end of its delivery.
func (c *hubChannel) ringDue(subs int, cost int64) bool {
	now := monoNow()
	pub := ewma(&c.pubGap, now-c.lastPub.Swap(now))
	idle := ewma(&c.idleGap, now-c.lastDone.Load())
	n := int64(subs)
	return subs > 1 && pub > n*ringGapPerSub && 32*idle > n*cost
}

func (c *hubChannel) delivered() { c.lastDone.Store(monoNow()) }

// ewma folds sample into the moving average avg (weight 1/8) and returns it.
func ewma(avg *atomic.Int64, sample int64) int64 {
	a := avg.Load()
	a += (sample - a) / 8
	avg.Store(a)
	return a
}

// ringBatchMax bounds a batch: the sockets of one io_uring_enter, and so
// how long their write locks are held.
const ringBatchMax = 256

// ringBatch collects one publication's deliveries to idle sockets.
type ringBatch struct {
	socks []*Socket
	bufs  [][]byte
	res   []int // per socket: bytes sent, a negative errno, 0 for not sent

	// The submission: the sockets whose write locks were had.
	sub   []int // index in socks
	fds   []int32
	sbufs [][]byte
	sres  []int32
}

var ringBatches = sync.Pool{New: func() any {
	return &ringBatch{
		socks: make([]*Socket, 0, ringBatchMax),
		bufs:  make([][]byte, 0, ringBatchMax),
		res:   make([]int, ringBatchMax),
		sub:   make([]int, 0, ringBatchMax),
		fds:   make([]int32, 0, ringBatchMax),
		sbufs: make([][]byte, 0, ringBatchMax),
		sres:  make([]int32, ringBatchMax),
	}
}}

// ringPool lends io_uring rings to publishers: at most one per P, made on
// first use, kept until the server closes. When a ring cannot be made
// (no io_uring here, or it is forbidden), broken is set and publications
// use the queue from then on.
type ringPool struct {
	broken atomic.Bool
	// cost is the moving average of a batched send's time per socket, ns
	// (ringCostInitial until the first batch).
	cost atomic.Int64
	// helpers counts the goroutines sending a full batch for a fan-out
	// that goes on collecting (ringBatch.sendFull); helped counts the
	// batches ever handed to one.
	helpers atomic.Int32
	helped  atomic.Int64
	// helpersSet, when not negative, is how many helper goroutines may
	// run at once, whatever Ps are free; helpersLent: one helper, lent to
	// a poller (tests).
	helpersSet atomic.Int32

	mu     sync.Mutex
	free   []*uring.Ring
	made   int  // rings in existence
	worked bool // a ring was made once: a later failure is not "unavailable"
	closed bool
}

// helperRoom reports where the nth helper sending a full batch at once
// can run: on a P of its own (room), on a netpoll poller's (lend), or
// nowhere. The Ps free for helper goroutines are GOMAXPROCS less the
// publisher's own and those the netpoll pollers keep while they wait in
// epoll_wait (netpoll.Pollers). A helper started with no P free runs only
// once the publisher has sent every other batch itself: on two cores
// with one poller, perf showed each helper's batch go out after the
// publisher's last, on the same thread. So the one after the free Ps are
// taken is lent to a poller, which runs it on the P it keeps
// (netpoll.Lend): docs/performance.md, "The poller's P".
func (p *ringPool) helperRoom(n int32) (room, lend bool) {
	switch k := p.helpersSet.Load(); {
	case k == helpersLent:
		return false, n == 1
	case k >= 0:
		return n <= k, false
	}
	free := int32(runtime.GOMAXPROCS(0) - 1 - netpoll.Pollers())
	return n <= free, n == free+1
}

// helpersLent is the helpersSet of a server whose one helper is always
// lent to a poller (tests).
const helpersLent = -2

// ringEntries is each ring's size: one batch per submission.
const ringEntries = ringBatchMax

// take returns a ring, or nil when none can be had now.
func (p *ringPool) take(srv *Server) *uring.Ring {
	p.mu.Lock()
	if n := len(p.free); n > 0 {
		r := p.free[n-1]
		p.free = p.free[:n-1]
		p.mu.Unlock()
		return r
	}
	if p.closed || p.made >= runtime.GOMAXPROCS(0) {
		p.mu.Unlock()
		return nil
	}
	p.made++
	p.mu.Unlock()
	r, err := uring.New(ringEntries)
	p.mu.Lock()
	if err != nil {
		p.made--
		worked := p.worked
		p.mu.Unlock()
		if !worked {
			// Never had one: not allowed here (or not supported).
			p.disable(srv, "io_uring is not available", err)
		}
		return nil // this batch is written the usual way
	}
	p.worked = true
	p.mu.Unlock()
	return r
}

// measured folds the time per socket of one batch into cost.
func (p *ringPool) measured(perSocket int64) { ewma(&p.cost, perSocket) }

// disable turns batched sends off for good, saying why once.
func (p *ringPool) disable(srv *Server, why string, err error) {
	if !p.broken.Swap(true) {
		srv.opts.Logger.Info("socketcluster: "+why+": publications are written with one write(2) per subscriber", "error", err)
	}
}

// discard drops a ring whose io_uring_enter failed (its state is unknown).
func (p *ringPool) discard(r *uring.Ring) {
	p.mu.Lock()
	p.made--
	p.mu.Unlock()
	r.Close()
}

func (p *ringPool) put(r *uring.Ring) {
	p.mu.Lock()
	if p.closed {
		p.made--
		p.mu.Unlock()
		r.Close()
		return
	}
	p.free = append(p.free, r)
	p.mu.Unlock()
}

// close releases the idle rings; rings in use are released when put back.
func (p *ringPool) close() {
	p.mu.Lock()
	free := p.free
	p.free, p.closed = nil, true
	p.made -= len(free)
	p.mu.Unlock()
	for _, r := range free {
		r.Close()
	}
}

// ringBatchFor returns a batch for the fan-out of p to subs subscribers
// of c, or nil when p is to be queued: batched sends are off, p's channel
// does not call for them (ringDue), or outbound middleware is set
// (application code runs per delivery, and must not hold up the sockets
// already taken by the batch). endFanout ends the fan-out.
func (srv *Server) ringBatchFor(c *hubChannel, p *publication, subs int) *ringBatch {
	if srv.opts.DisableIOUring || srv.rings.broken.Load() {
		return nil
	}
	if !c.ringDue(subs, srv.rings.cost.Load()) || p.outbound {
		return nil
	}
	return ringBatches.Get().(*ringBatch)
}

// endFanout sends what rb (nil: none) still holds and records the end of
// a publication's delivery on c.
func (srv *Server) endFanout(c *hubChannel, rb *ringBatch) {
	if rb != nil {
		rb.release(srv)
	}
	c.delivered()
}

// add takes frame for s when s is idle and can be sent to directly; it
// reports false when the caller must queue the frame instead.
func (b *ringBatch) add(srv *Server, s *Socket, frame []byte) bool {
	if !s.conn.CanRingSend() {
		return false
	}
	s.outMu.Lock()
	if s.outClosed || s.flushing || len(s.outQ) > 0 {
		s.outMu.Unlock()
		return false
	}
	s.flushing = true // the batch is the socket's writer until afterRingSend
	s.outboundPrepared.Add(1)
	s.outMu.Unlock()
	b.socks = append(b.socks, s)
	b.bufs = append(b.bufs, frame)
	if len(b.socks) == ringBatchMax {
		b.sendFull(srv)
	}
	return true
}

// sendFull sends a full batch. While a P is free for one more helper
// (ringPool.helperRoom), it hands the batch to a new goroutine, or lends
// it to a netpoll poller, and goes on collecting the next one, so that
// the sends of one large fan-out run on several cores. Else it sends the
// batch itself. The fan-out's end (endFanout, hubChannel.delivered) is
// recorded without waiting for its helpers, so ringDue's idle gap
// includes their sends. Order is kept either way: a socket taken by a
// batch is marked flushing, and what is queued for it meanwhile waits
// until the batch's send is done (afterRingSend).
func (b *ringBatch) sendFull(srv *Server) {
	h := &srv.rings.helpers
	room, lend := srv.rings.helperRoom(h.Add(1))
	if !room && !lend {
		h.Add(-1)
		b.send(srv)
		return
	}
	full := ringBatches.Get().(*ringBatch)
	*b, *full = *full, *b // b gets the new batch's empty slices
	help := func() {
		defer h.Add(-1)
		full.release(srv)
	}
	switch {
	case room:
		go help()
	case !netpoll.Lend(help):
		help() // no poller took it
		return
	}
	srv.rings.helped.Add(1)
}

// handedOff marks, in ringBatch.res, a socket whose cut frame
// finishRingSend finishes: outside the range of send results (bytes sent,
// a negative errno, uring.Unknown), also where int is 32 bits.
const handedOff = uring.Unknown + 1

// errSendUnknown ends a socket whose batched send's outcome is unknown: its
// stream may hold part of a frame.
var errSendUnknown = errors.New("socketcluster: batched send failed with an unknown outcome")

// send sends the batch and hands every socket back to its queue.
func (b *ringBatch) send(srv *Server) {
	if len(b.socks) == 0 {
		return
	}
	res := b.res[:len(b.socks)]
	clear(res) // 0: not sent, the flusher writes the frame
	var enterErr error
	unsupported := false
	// The ring first: making one may log, and nothing outside this file
	// may run while the write locks below are held.
	if r := srv.rings.take(srv); r != nil {
		for i, s := range b.socks {
			if fd, ok := s.conn.BeginRingSend(); ok {
				b.sub = append(b.sub, i)
				b.fds = append(b.fds, fd)
				b.sbufs = append(b.sbufs, b.bufs[i])
			}
		}
		if len(b.sub) > 0 {
			sres := b.sres[:len(b.sub)]
			start := monoNow()
			enterErr = r.Send(b.fds, b.sbufs, sres)
			srv.rings.measured((monoNow() - start) / int64(len(b.sub)))
			for k, i := range b.sub {
				res[i] = int(sres[k])
				unsupported = unsupported || sres[k] == -int32(syscall.EINVAL)
			}
		}
		if enterErr != nil {
			srv.rings.discard(r)
		} else {
			srv.rings.put(r)
		}
		for _, i := range b.sub {
			s, frame := b.socks[i], b.bufs[i]
			if n := res[i]; n > 0 && n < len(frame) {
				// Part of the frame is out: its rest must follow before
				// any other byte. The write locks go with it to a
				// goroutine of the socket's, as a flusher's write.
				res[i] = handedOff
				go s.finishRingSend(frame[n:], n)
				continue
			}
			_ = s.conn.EndRingSend(nil)
		}
	}
	for i, s := range b.socks {
		switch res[i] {
		case handedOff:
		case uring.Unknown:
			// In a goroutine: closing runs the application's handlers,
			// and a batch may be sent by a netpoll poller (sendFull).
			go s.writeFailed(errSendUnknown)
		default:
			s.afterRingSend(b.bufs[i], res[i])
		}
	}
	if enterErr != nil {
		srv.opts.Logger.Warn("socketcluster: io_uring_enter failed; the sockets of the batch whose send may have gone out in part were closed (1006)", "error", enterErr)
	}
	if unsupported {
		srv.rings.disable(srv, "io_uring sends are refused (EINVAL)", syscall.EINVAL)
	}
	clear(b.socks)
	clear(b.bufs)
	clear(b.sbufs)
	b.socks, b.bufs = b.socks[:0], b.bufs[:0]
	b.sub, b.fds, b.sbufs = b.sub[:0], b.fds[:0], b.sbufs[:0]
}

// release sends what is left and returns the batch to its pool.
func (b *ringBatch) release(srv *Server) {
	b.send(srv)
	ringBatches.Put(b)
}

// finishRingSend writes the rest of a frame that a batched send cut short
// (sent bytes of it went out), then carries on as the socket's flusher.
func (s *Socket) finishRingSend(rest []byte, sent int) {
	err := s.conn.EndRingSend(rest)
	s.outboundSent.Add(1)
	if err != nil {
		s.server.counters.bytesOut.Add(int64(sent))
		s.writeFailed(err)
		return
	}
	s.server.counters.bytesOut.Add(int64(sent + len(rest)))
	s.server.counters.batched.Add(1)
	s.flush()
}

// afterRingSend ends a batched send of frame to s whose result was res:
// the whole frame sent (counted), or nothing (0 or a negative errno:
// -EAGAIN when the send buffer was full; after another error the
// flusher's own write meets it and ends the socket as usual). An unsent
// frame goes to the head of the queue. The flusher is started when
// anything waits.
func (s *Socket) afterRingSend(frame []byte, res int) {
	if res == len(frame) {
		s.outboundSent.Add(1)
		s.server.counters.batched.Add(1)
		s.server.counters.bytesOut.Add(int64(res))
		s.outMu.Lock()
		if len(s.outQ) == 0 && s.closeReq == nil {
			s.flushing = false
			s.outMu.Unlock()
			return
		}
		s.outMu.Unlock()
		go s.flush()
		return
	}
	packet := s.server.coalesces()
	s.outMu.Lock()
	s.outQ = append(append(make([][]byte, 0, len(s.outQ)+1), frame), s.outQ...)
	if packet {
		f := s.packetFlagsLocked()
		f.q = append(append(make([]bool, 0, len(f.q)+1), packet), f.q...)
	}
	s.outBytes += len(frame)
	s.outMu.Unlock()
	go s.flush()
}
