//go:build linux && !scnoepoll

package netpoll

import (
	"encoding/binary"
	"io"
	"os"
	"runtime"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

// Desc states (see the package doc).
const (
	stIdle int32 = iota
	stRunning
	stPending
	stDone
)

// oneShotEvents is what a registration made by Init waits for:
// EPOLLONESHOT disarms it at the first event, and run re-arms it after
// each handler run (one epoll_ctl), so that data the handler left unread
// is announced again.
const oneShotEvents = unix.EPOLLIN | unix.EPOLLRDHUP | unix.EPOLLONESHOT

// edgeEvents is what a registration made by InitEdge waits for: armed
// once, edge-triggered. Each arrival of data is an event, also while the
// handler runs (the Desc is then marked pending and the handler runs
// again), so a handler that read the socket empty (InitEdge) misses
// nothing.
// EPOLLPRI: urgent data, which stops a read short (see ReadToEnd).
const edgeEvents = unix.EPOLLIN | unix.EPOLLRDHUP | unix.EPOLLPRI | unix.EPOLLET

// Desc.flags bits.
const (
	flagEdge      uint32 = 1 << iota // InitEdge: edge-triggered, never re-armed
	flagReadToEnd                    // an event said more than "readable" (ReadToEnd)
	flagFull                         // the handler's last Read filled its buffer: more may wait
)

// Desc is one watched connection: all a connection costs here while it is
// idle.
type Desc struct {
	p       *poller
	rc      syscall.RawConn
	handler Handler
	state   atomic.Int32
	slot    int32 // index in p.descs; with gen, the epoll event's data
	gen     int32
	flags   atomic.Uint32 // flagEdge, set before Start; flagReadToEnd, set by the poller
}

// sysCall carries the arguments and results of a system call made through
// RawConn.Read or RawConn.Control, whose callbacks only get the descriptor.
// Its callbacks are made once, so calls allocate nothing; calls borrow one
// from sysCalls.
type sysCall struct {
	buf  []byte
	n    int
	err  error
	epfd int
	op   int
	ev   unix.EpollEvent

	readFn func(fd uintptr) bool
	ctlFn  func(fd uintptr)
}

var sysCalls = sync.Pool{New: func() any {
	c := new(sysCall)
	c.readFn = c.read
	c.ctlFn = c.ctl
	return c
}}

type poller struct {
	epfd   int
	wakefd int // eventfd: wakes the loop so that it can exit or run a lent function

	// inWait is set while the loop blocks in epoll_wait (or is about to);
	// lent is a function Lend gave the loop to run.
	inWait atomic.Bool
	lent   atomic.Pointer[func()]
	live   atomic.Bool // running (the lock-free copy of running: Lend, Pollers)
	// lends counts the functions the loop ran, exits its returns (tests).
	lends, exits atomic.Int64

	// Guarded by reg.mu.
	descs   []*Desc
	free    []int32
	count   int
	running bool
}

var reg struct {
	once    sync.Once
	ok      bool
	pollers []*poller

	mu    sync.Mutex
	next  int   // round-robin poller choice
	total int   // registered descs, all pollers
	gen   int32 // last generation handed out
	// quit is closed when the last Desc is released, so that idle workers
	// exit; it is replaced at the next registration.
	quit chan struct{}
}

// Pollers returns how many poller goroutines are running. A poller waits
// in epoll_wait, and its thread keeps its P meanwhile (a blocking system
// call gives its P up only when the runtime's monitor takes it, which can
// be milliseconds later), so the Ps left for other goroutines are about
// GOMAXPROCS minus this. Lend puts a waiting poller's P to use.
func Pollers() int {
	n := 0
	for _, p := range reg.pollers {
		if p.live.Load() {
			n++
		}
	}
	return n
}

// Lend has fn run by a running poller that has no other function to run,
// on its own goroutine and so on the P it keeps while it waits in
// epoll_wait: a poller that waits is woken for it, a busy one runs it
// before it looks for events again. It reports false when no poller could
// take fn; the caller then runs it itself. A goroutine that would start
// another to work beside it (a helper of a large fan-out) lends the work
// instead when the pollers keep the P that goroutine would need
// (docs/performance.md, "The poller's P"). fn delays the poller's next
// events by as long as it runs: it must be short, and must not wait for
// anything a connection's handler does.
func Lend(fn func()) bool {
	if !Available() {
		return false
	}
	for _, p := range reg.pollers {
		if !p.live.Load() {
			continue // not running
		}
		if lendHook != nil {
			lendHook(p, false)
		}
		if !p.lent.CompareAndSwap(nil, &fn) {
			continue // lent a function already
		}
		if lendHook != nil {
			lendHook(p, true)
		}
		// A loop that exits marks itself not live, then runs what it was
		// lent: if it has exited, take fn back (unless it took it).
		if !p.live.Load() && p.lent.CompareAndSwap(&fn, nil) {
			continue
		}
		// The loop sets inWait before it looks at lent: either it sees
		// fn or this sees it waiting.
		if p.inWait.Load() {
			p.wake()
		}
		return true
	}
	return false
}

// curQuit is reg.quit for workers started without the lock.
var curQuit atomic.Pointer[chan struct{}]

var closedQuit = func() chan struct{} { c := make(chan struct{}); close(c); return c }()

func setup() {
	n := max(1, min(runtime.GOMAXPROCS(0)/8, 4))
	for range n {
		p, err := newPoller()
		if err != nil {
			for _, q := range reg.pollers {
				_ = unix.Close(q.epfd)
				_ = unix.Close(q.wakefd)
			}
			reg.pollers = nil
			return
		}
		reg.pollers = append(reg.pollers, p)
	}
	reg.ok = true
}

func newPoller() (*poller, error) {
	epfd, err := unix.EpollCreate1(unix.EPOLL_CLOEXEC)
	if err != nil {
		return nil, err
	}
	wfd, err := unix.Eventfd(0, unix.EFD_NONBLOCK|unix.EFD_CLOEXEC)
	if err != nil {
		_ = unix.Close(epfd)
		return nil, err
	}
	ev := unix.EpollEvent{Events: unix.EPOLLIN, Fd: -1}
	if err := unix.EpollCtl(epfd, unix.EPOLL_CTL_ADD, wfd, &ev); err != nil {
		_ = unix.Close(epfd)
		_ = unix.Close(wfd)
		return nil, err
	}
	return &poller{epfd: epfd, wakefd: wfd}, nil
}

// Available reports whether event-driven reading works here.
func Available() bool {
	reg.once.Do(setup)
	return reg.ok
}

// Init prepares d, a zero Desc, for the connection behind rc; Start (or
// StartReadable) watches it. handler is called, in a worker goroutine and never twice at
// once, when the connection may be readable or Trigger was called. It must
// read (Read) until ErrWouldBlock or an error, and return true to be called
// again at the next event, or false when it is finished with the
// connection (it has then closed it, typically after a read error); it is
// never called again after that. Call Available first: Init panics when it
// reports false. A Desc must not be copied.
func (d *Desc) Init(rc syscall.RawConn, handler Handler) {
	if !Available() {
		panic("netpoll: Init called while Available reports false")
	}
	d.rc, d.handler = rc, handler
	d.p = nil // not registered (StartReadable and StartAfter look)
	d.flags.Store(0)
	// Until Start, the Desc counts as running: a Trigger before Start is
	// kept as pending and honoured by Start.
	d.state.Store(stRunning)
}

// InitEdge is Init for a handler that leaves nothing unread: when it
// returns true, its last Read reported ErrWouldBlock, or returned fewer
// bytes than asked while ReadToEnd reported false, and when it returns
// false it has closed the connection. The registration is then
// edge-triggered and armed once, which saves the epoll_ctl that re-arms an
// Init registration after every handler run. A handler that may stop
// reading early must use Init: data it left would never be announced
// again. One that hands its open connection on may use InitEdge if it
// reads only through Read and hands it to another InitEdge Desc with
// StartAfter (which runs the new handler at once when the last Read
// filled its buffer), or to someone else after Unwatch.
func (d *Desc) InitEdge(rc syscall.RawConn, handler Handler) {
	d.Init(rc, handler)
	d.flags.Store(flagEdge)
}

// ReadToEnd reports whether the handler must read until Read says
// ErrWouldBlock or fails before it may return true. Until then a read that
// returned fewer bytes than asked found the socket empty, and an InitEdge
// handler may stop there; once an event said the peer closed or reset the
// connection, or sent urgent data, a short read can leave the end of the
// stream or more data behind (the kernel stops a read at a FIN, at an
// error and at the urgent mark), with no event to come for it.
func (d *Desc) ReadToEnd() bool { return d.flags.Load()&flagReadToEnd != 0 }

// Start begins watching. If the connection is closed already, or epoll
// refuses it (then the connection is shut down), the handler still runs
// once and sees the failure from Read.
func (d *Desc) Start() {
	reg.mu.Lock()
	d.start(nextPoller(), unix.EPOLL_CTL_ADD)
}

// nextPoller picks the poller a new registration goes to, round-robin
// (reg.mu held).
func nextPoller() *poller {
	p := reg.pollers[reg.next%len(reg.pollers)]
	reg.next++
	return p
}

// StartReadable is Start for a connection known to be readable now (its
// data came before it was accepted, say): the handler runs at once in a
// worker, without waiting for an event, and the connection is watched
// only once that run returns true (one epoll_ctl then, from the worker;
// a Trigger meanwhile runs the handler again after it). A run that ends
// the connection costs no registration at all, and one that hands it
// over (StartAfter) has none to hand: the successor is registered.
func (d *Desc) StartReadable() {
	submit(d)
}

// StartAfter begins watching a connection that prev watches: prev's
// handler, running now, hands the connection over to d and must return
// false (it is then done and never runs again, while the connection stays
// open). d takes over prev's epoll registration instead of making a
// second one, so that events go to d's handler from then on.
//
// When both are edge-triggered (InitEdge), d takes prev's place as it is,
// without a system call: an event that prev's run has not seen yet is
// passed on to d, and d runs at once if prev's last Read filled its
// buffer (more may wait, which no event would announce) or an event
// asked to read to the end (ReadToEnd). prev's handler must then read
// only through Desc.Read. Otherwise one EPOLL_CTL_MOD changes the
// registration to d's; when prev has none (its run came from
// StartReadable), one EPOLL_CTL_ADD makes d's, which also announces data
// that is waiting already.
func (d *Desc) StartAfter(prev *Desc) {
	reg.mu.Lock()
	p := prev.p
	if p == nil {
		// prev was never watched (StartReadable): d is registered anew.
		d.start(nextPoller(), unix.EPOLL_CTL_ADD)
		return
	}
	pf := prev.flags.Load()
	if pf&flagEdge == 0 || d.flags.Load()&flagEdge == 0 || p.descs[prev.slot] != prev {
		// Not both edge-triggered, or prev's run has ended already (a
		// caller that did not hand over from inside prev's handler):
		// d gets a slot of its own and the registration its events.
		d.start(p, unix.EPOLL_CTL_MOD)
		return
	}
	// The poller finds d in prev's slot from now on, under the same
	// generation (the event's data in the kernel stays as it is).
	d.p, d.slot, d.gen = p, prev.slot, prev.gen
	p.descs[d.slot] = d
	reg.mu.Unlock()
	d.flags.Or(pf & flagReadToEnd)
	// prev's run ends handed over (run): a dispatch to prev from then
	// on goes to d (dispatch).
	prev.handler = (*handedOver)(d)
	if pf&(flagFull|flagReadToEnd) != 0 || !d.state.CompareAndSwap(stRunning, stIdle) {
		d.state.Store(stRunning)
		submit(d)
	}
}

// handedOver is the handler of a Desc whose handler handed its connection
// over to another (StartAfter without a system call): the Desc now in its
// place.
type handedOver Desc

// Ready passes the run on to the Desc that took over. Not called: run
// and dispatch see a handedOver handler before they would call it.
func (h *handedOver) Ready() bool {
	(*Desc)(h).dispatch()
	return false
}

// Unwatch removes the connection from the poller whose Desc is d, for a
// connection handed on to be read elsewhere after d's handler returned
// false (an edge-triggered registration stays armed as long as any
// descriptor of the connection is open, a duplicate included). Errors
// are ignored: a closed connection has no registration left.
func (d *Desc) Unwatch() {
	if d.p != nil {
		_ = d.epollCtl(unix.EPOLL_CTL_DEL, 0)
	}
}

// start registers d with p (reg.mu held; start releases it) and arms it
// with op.
func (d *Desc) start(p *poller, op int) {
	d.p = p
	reg.gen++
	d.gen = reg.gen
	if n := len(p.free); n > 0 {
		d.slot = p.free[n-1]
		p.free = p.free[:n-1]
		p.descs[d.slot] = d
	} else {
		d.slot = int32(len(p.descs))
		p.descs = append(p.descs, d)
	}
	p.count++
	if !p.running {
		p.running = true
		p.live.Store(true)
		go p.loop()
	}
	reg.total++
	if reg.quit == nil {
		q := make(chan struct{})
		reg.quit = q
		curQuit.Store(&q)
		go reapIdle(q)
	}
	reg.mu.Unlock()

	if err := d.arm(op); err != nil {
		submit(d)
		return
	}
	if !d.state.CompareAndSwap(stRunning, stIdle) {
		d.state.Store(stRunning)
		submit(d)
	}
}

// Trigger runs the handler soon, as if the connection were readable. It
// may be called at any time from any goroutine; once the handler has
// returned false it does nothing, or, when the handler handed the
// connection over (StartAfter without a system call), runs the new
// Desc's handler instead.
func (d *Desc) Trigger() { d.dispatch() }

// Read reads what the connection has without waiting: (n, nil) with n > 0,
// (0, ErrWouldBlock) when nothing is there, (0, io.EOF) when the peer
// closed, or the error: the connection's (closed, read deadline passed, as
// *net.OpError) or the system's (*os.SyscallError). Only the handler may
// call it.
func (d *Desc) Read(p []byte) (int, error) {
	c := sysCalls.Get().(*sysCall)
	c.buf = p
	err := d.rc.Read(c.readFn)
	n, rerr := c.n, c.err
	c.buf, c.err = nil, nil
	sysCalls.Put(c)
	if err != nil {
		return 0, err
	}
	// Whether more may wait unannounced, for StartAfter.
	if n > 0 && n == len(p) {
		d.flags.Or(flagFull)
	} else if d.flags.Load()&flagFull != 0 {
		d.flags.And(^flagFull)
	}
	return n, rerr
}

func (c *sysCall) read(fd uintptr) bool {
	for {
		n, err := readNow(int(fd), c.buf)
		switch {
		case err == unix.EINTR:
			continue
		case err == unix.EAGAIN:
			c.n, c.err = 0, ErrWouldBlock
		case err != nil:
			c.n, c.err = 0, os.NewSyscallError("read", err)
		case n == 0:
			c.n, c.err = 0, io.EOF
		default:
			c.n, c.err = n, nil
		}
		return true
	}
}

// arm adds or re-arms the registration. The epoll call is made inside
// RawConn.Control, which holds the file descriptor open: a concurrent Close
// cannot make it hit a reused descriptor number.
func (d *Desc) arm(op int) error {
	events := uint32(oneShotEvents)
	if d.flags.Load()&flagEdge != 0 {
		events = edgeEvents
	}
	return d.epollCtl(op, events)
}

// epollCtl makes the epoll_ctl op for d's connection with d's poller,
// waiting for events.
func (d *Desc) epollCtl(op int, events uint32) error {
	c := sysCalls.Get().(*sysCall)
	c.epfd, c.op = d.p.epfd, op
	c.ev = unix.EpollEvent{Events: events, Fd: d.slot, Pad: d.gen}
	err := d.rc.Control(c.ctlFn)
	if err == nil {
		err = c.err
	}
	c.err = nil
	sysCalls.Put(c)
	return err
}

func (c *sysCall) ctl(fd uintptr) {
	if err := unix.EpollCtl(c.epfd, c.op, int(fd), &c.ev); err != nil {
		if c.op != unix.EPOLL_CTL_DEL {
			// Not expected for a TCP socket. Rather than leave the
			// connection unwatched forever, shut it down: the handler
			// then reads EOF. (A removal fails only when there was
			// nothing to remove: Unwatch after Unwatch.)
			_ = unix.Shutdown(int(fd), unix.SHUT_RDWR)
		}
		c.err = os.NewSyscallError("epoll_ctl", err)
	}
}

func (d *Desc) dispatch() {
	for {
		switch d.state.Load() {
		case stIdle:
			if d.state.CompareAndSwap(stIdle, stRunning) {
				submit(d)
				return
			}
		case stRunning:
			if d.state.CompareAndSwap(stRunning, stPending) {
				return
			}
		case stDone:
			if h, ok := d.handler.(*handedOver); ok {
				// An event the poller took before StartAfter: d's
				// successor may not have seen it.
				(*Desc)(h).dispatch()
			}
			return
		default: // pending already
			return
		}
	}
}

// run calls the handler until no event came in meanwhile; the owner of the
// running state calls it.
func (d *Desc) run() {
	for {
		if !d.handler.Ready() {
			if d.p == nil {
				// Run by StartReadable, and finished before it was
				// watched.
				d.state.Store(stDone)
				return
			}
			if h, ok := d.handler.(*handedOver); ok {
				// Handed over: the registration and the slot are the
				// successor's now; an event that came during this run
				// is its.
				if d.state.Swap(stDone) == stPending {
					(*Desc)(h).dispatch()
				}
				return
			}
			d.state.Store(stDone)
			d.p.release(d)
			return
		}
		if d.p == nil {
			// Run by StartReadable: watched from now on (idle, or run
			// again in a worker if Trigger was called meanwhile).
			d.Start()
			return
		}
		if d.flags.Load()&flagEdge == 0 {
			if err := d.arm(unix.EPOLL_CTL_MOD); err != nil {
				// Closed or shut down: the handler sees it at its next Read.
				continue
			}
		}
		if d.state.CompareAndSwap(stRunning, stIdle) {
			return
		}
		// Pending: something happened while the handler ran.
		d.state.Store(stRunning)
	}
}

func (p *poller) release(d *Desc) {
	reg.mu.Lock()
	p.descs[d.slot] = nil
	p.free = append(p.free, d.slot)
	p.count--
	if p.count == 0 {
		p.wake()
	}
	reg.total--
	if reg.total == 0 {
		close(reg.quit)
		reg.quit = nil
		curQuit.Store(nil)
	}
	reg.mu.Unlock()
}

// loop waits for events and hands the readable connections to workers. It
// returns when no connection is registered with this poller.
//
// After a batch of events it polls again without waiting (a raw system
// call: the goroutine keeps its P) and only waits once a poll found
// nothing and the workers it woke had a chance to run first (Gosched).
// Under load it therefore never sleeps, and the workers it hands
// connections to are not stuck behind a P held by a blocking system call.
//
// It waits in epoll_wait, where the kernel wakes it the moment an event
// comes (the runtime's own poller is looked at only when a P runs out of
// work, late under load). A goroutine blocked in a system call keeps its
// P, though, until the runtime's monitor takes it back, which can be
// milliseconds when the process was idle: on two cores that leaves one P
// for the burst of goroutines a lone event can start. Lend puts that P
// to use: the loop runs the function it was lent, and waits again after
// (docs/performance.md, "The poller's P").
func (p *poller) loop() {
	events := make([]unix.EpollEvent, 256)
	ready := make([]*Desc, 0, len(events))
	block := true
	var n int
	var err error
	for {
		p.runLent()
		n, err = 0, nil
		if block {
			p.inWait.Store(true)
			if p.lent.Load() != nil {
				// Lent after the run above, and Lend may have seen inWait
				// unset: nothing would wake this wait.
				p.inWait.Store(false)
				continue
			}
			n, err = unix.EpollWait(p.epfd, events, -1)
			p.inWait.Store(false)
		} else {
			n, err = epollWaitNow(p.epfd, events)
		}
		if err != nil {
			if err != unix.EINTR {
				time.Sleep(time.Millisecond) // not expected; do not spin
			}
			continue
		}
		if n == 0 {
			block = true
			runtime.Gosched()
			continue
		}
		block = false
		wake := false
		reg.mu.Lock()
		for i := range events[:n] {
			ev := &events[i]
			if ev.Fd < 0 {
				wake = true
				continue
			}
			if int(ev.Fd) < len(p.descs) {
				if d := p.descs[ev.Fd]; d != nil && d.gen == ev.Pad {
					if ev.Events&^unix.EPOLLIN != 0 && d.flags.Load()&flagReadToEnd == 0 {
						// Before the dispatch, so that the run it starts
						// (or the pending one) sees it.
						d.flags.Or(flagReadToEnd)
					}
					ready = append(ready, d)
				}
			}
		}
		if wake {
			var b [8]byte
			_, _ = unix.Read(p.wakefd, b[:])
			if p.count == 0 {
				p.running = false
				p.live.Store(false)
				reg.mu.Unlock()
				p.runLent() // lent before live was unset (Lend)
				p.exits.Add(1)
				return
			}
		}
		reg.mu.Unlock()
		for i, d := range ready {
			d.dispatch()
			ready[i] = nil
		}
		ready = ready[:0]
		// Let the workers just handed connections run before polling
		// again: by then more data has arrived and is read in fewer,
		// larger reads, as the runtime's own poller does it.
		runtime.Gosched()
	}
}

// lendHook, when set (tests), is called by Lend before (lent false) and
// after (lent true) it stores its function in p.lent.
var lendHook func(p *poller, lent bool)

// runLent runs the function the loop was lent, if any.
func (p *poller) runLent() {
	if p.lent.Load() == nil {
		return
	}
	if f := p.lent.Swap(nil); f != nil {
		(*f)()
		p.lends.Add(1)
	}
}

// wake makes the loop's wait return: the eventfd becomes readable.
func (p *poller) wake() {
	var one [8]byte
	binary.NativeEndian.PutUint64(one[:], 1)
	_, _ = unix.Write(p.wakefd, one[:])
}

// epollWaitNow is epoll_wait with a zero timeout, as a raw system call: it
// never blocks, so it need not tell the scheduler.
func epollWaitNow(epfd int, events []unix.EpollEvent) (int, error) {
	r, _, e := unix.RawSyscall6(unix.SYS_EPOLL_PWAIT, uintptr(epfd), uintptr(unsafe.Pointer(&events[0])), uintptr(len(events)), 0, 0, 0)
	if e != 0 {
		return 0, e
	}
	return int(r), nil
}

// readNow is read(2) on a non-blocking descriptor, as a raw system call.
func readNow(fd int, p []byte) (int, error) {
	r, _, e := unix.RawSyscall(unix.SYS_READ, uintptr(fd), uintptr(unsafe.Pointer(unsafe.SliceData(p))), uintptr(len(p)))
	if e != 0 {
		return 0, e
	}
	return int(r), nil
}

// ---- Workers ----

// workCh hands a Desc to an idle worker; an unbuffered send succeeds only
// when a worker is waiting. A nil Desc tells the worker that takes it to
// exit (reapIdle).
var workCh = make(chan *Desc)

// idleWorkers counts the workers waiting on workCh; idleLow is the fewest
// there were since reapIdle last looked (those stayed idle throughout).
var idleWorkers, idleLow atomic.Int32

// reaped counts the workers reapIdle ended (for tests).
var reaped atomic.Int64

// maxIdle bounds the idle workers kept for the next events. It is high on
// purpose: one poll can make hundreds of connections ready at once, each
// needing a worker, and discarding workers at the end of a round only to
// start new ones at the next cost 4% more CPU per call under RPC load
// (docs/performance.md). Idle workers still exit after one to two
// idleTimeout periods (reapIdle).
const maxIdle = 1024

// idleTimeout is how long a worker may wait for work before it is told to
// exit: short, because starting a goroutine is cheap and an idle pool
// should not hold stacks (or look like a goroutine leak) once the load is
// gone.
const idleTimeout = 100 * time.Millisecond

func submit(d *Desc) {
	select {
	case workCh <- d:
	default:
		q := closedQuit
		if p := curQuit.Load(); p != nil {
			q = *p
		}
		go worker(d, q)
	}
}

// worker runs d, then waits for the next Desc. The wait is a receive
// from two channels and no timer: a timer reset per wait showed in RPC
// profiles (docs/performance.md); reapIdle ends the workers that stay
// idle instead.
func worker(d *Desc, quit chan struct{}) {
	for {
		d.run()
		if idleWorkers.Add(1) > maxIdle {
			idleWorkers.Add(-1)
			return
		}
		select {
		case d = <-workCh:
			n := idleWorkers.Add(-1)
			lowerIdleLow(n)
			if d == nil {
				reaped.Add(1)
				return
			}
		case <-quit:
			idleWorkers.Add(-1)
			return
		}
	}
}

// reapIdle runs while any connection is registered (until quit closes):
// every idleTimeout it tells as many workers to exit as stayed idle for
// the whole period, so an idle pool shrinks to nothing within two periods
// once the load is gone.
func reapIdle(quit chan struct{}) {
	idleLow.Store(0) // nothing from an earlier run counts
	t := time.NewTicker(idleTimeout)
	defer t.Stop()
	for {
		select {
		case <-quit:
			return
		case <-t.C:
		}
		n := idleLow.Swap(idleWorkers.Load())
	reap:
		for range n {
			select {
			case workCh <- nil:
			default:
				break reap // none waits right now
			}
		}
	}
}

// lowerIdleLow records n idle workers if that is the fewest this period.
func lowerIdleLow(n int32) {
	for {
		low := idleLow.Load()
		if n >= low || idleLow.CompareAndSwap(low, n) {
			return
		}
	}
}
