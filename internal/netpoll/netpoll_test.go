//go:build linux && !scnoepoll

package netpoll

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"runtime"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"go.uber.org/goleak"
	"golang.org/x/sys/unix"

	"github.com/socketcluster-go/socketcluster/internal/testnet"
)

// TestMain fails the run when a poller or worker goroutine is left behind
// once every connection is released.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

const wait = 10 * time.Second

// pairs returns n connected TCP pairs (server side, client side).
func pairs(t testing.TB, n int) (servers, clients []*net.TCPConn) {
	t.Helper()
	return testnet.Pairs(t, n)
}

// conn is a watched server connection whose handler collects the bytes.
type conn struct {
	d      Desc
	nc     *net.TCPConn
	mu     sync.Mutex
	got    bytes.Buffer
	active atomic.Int32
	runs   atomic.Int32
	err    error
	ended  chan struct{}
	block  chan struct{} // when set, the handler waits on it first
}

// edgeMode makes watch and the tests that set up a Desc themselves use
// InitEdge instead of Init (TestEdgeTriggered runs them so).
var edgeMode bool

// initDesc is Init, or InitEdge under edgeMode.
func initDesc(d *Desc, rc syscall.RawConn, h Handler) {
	if edgeMode {
		d.InitEdge(rc, h)
	} else {
		d.Init(rc, h)
	}
}

// rawConn returns nc's syscall.RawConn.
func rawConn(t testing.TB, nc *net.TCPConn) syscall.RawConn {
	t.Helper()
	rc, err := nc.SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	return rc
}

func watch(t testing.TB, nc *net.TCPConn, block chan struct{}) *conn {
	t.Helper()
	rc := rawConn(t, nc)
	c := &conn{nc: nc, ended: make(chan struct{}), block: block}
	initDesc(&c.d, rc, c.handler(t))
	c.d.Start()
	return c
}

// handler returns the handler of c.d: it checks it never runs twice at
// once, counts its runs, waits on c.block if set, then reads until the
// socket would block, collecting the bytes; at the end of the stream (or
// an error) it records the error, closes the connection and ended.
func (c *conn) handler(t testing.TB) HandlerFunc {
	buf := make([]byte, 512)
	return func() bool {
		if c.active.Add(1) != 1 {
			t.Error("handler running twice at once")
		}
		defer c.active.Add(-1)
		c.runs.Add(1)
		if c.block != nil {
			<-c.block
		}
		for {
			n, err := c.d.Read(buf)
			if err == ErrWouldBlock {
				return true
			}
			if err != nil {
				c.err = err
				_ = c.nc.Close()
				close(c.ended)
				return false
			}
			c.mu.Lock()
			c.got.Write(buf[:n])
			c.mu.Unlock()
		}
	}
}

func (c *conn) bytes() []byte {
	c.mu.Lock()
	defer c.mu.Unlock()
	return bytes.Clone(c.got.Bytes())
}

// closeAndWaitEnd closes the client end of a watched connection and
// waits for its handler to see the end (ended closed).
func closeAndWaitEnd(t testing.TB, client net.Conn, ended <-chan struct{}) {
	t.Helper()
	_ = client.Close()
	select {
	case <-ended:
	case <-time.After(wait):
		t.Fatal("the handler never saw the connection end")
	}
}

func waitFor(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(wait)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(time.Millisecond)
	}
}

func registered() int {
	reg.mu.Lock()
	defer reg.mu.Unlock()
	return reg.total
}

func TestAvailable(t *testing.T) {
	if !Available() {
		t.Fatal("epoll not available on Linux")
	}
}

// TestManyConnections writes numbered records to hundreds of connections
// from several goroutines each and checks that every connection got each
// writer's records in order, its handler never running twice at once.
func TestManyConnections(t *testing.T) {
	const conns, writers, records = 300, 3, 50
	servers, clients := pairs(t, conns)
	cs := make([]*conn, conns)
	for i := range servers {
		cs[i] = watch(t, servers[i], nil)
	}
	var wg sync.WaitGroup
	for i := range clients {
		var mu sync.Mutex // whole records on the wire
		for w := range writers {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for r := range records {
					var rec [8]byte
					binary.BigEndian.PutUint32(rec[:4], uint32(w))
					binary.BigEndian.PutUint32(rec[4:], uint32(r))
					mu.Lock()
					_, err := clients[i].Write(rec[:])
					mu.Unlock()
					if err != nil {
						t.Error(err)
						return
					}
				}
			}()
		}
	}
	wg.Wait()
	for i, c := range cs {
		waitFor(t, "all records", func() bool { return len(c.bytes()) == 8*writers*records })
		b := c.bytes()
		var next [writers]uint32
		for k := 0; k < len(b); k += 8 {
			w, r := binary.BigEndian.Uint32(b[k:]), binary.BigEndian.Uint32(b[k+4:])
			if w >= writers || r != next[w] {
				t.Fatalf("conn %d: record %d is writer %d's #%d", i, k/8, w, r)
			}
			next[w]++
		}
	}
	for _, cl := range clients {
		_ = cl.Close()
	}
	for i, c := range cs {
		select {
		case <-c.ended:
		case <-time.After(wait):
			t.Fatalf("conn %d: handler did not see EOF", i)
		}
		if c.err != io.EOF {
			t.Fatalf("conn %d: %v, want io.EOF", i, c.err)
		}
	}
	waitFor(t, "all released", func() bool { return registered() == 0 })
}

// TestCloseWhileReadable closes connections from another goroutine while
// they have unread data and while their handler runs: the handler must see
// the close, end, and the Desc be released.
func TestCloseWhileReadable(t *testing.T) {
	const conns = 100
	servers, clients := pairs(t, conns)
	cs := make([]*conn, conns)
	for i := range servers {
		cs[i] = watch(t, servers[i], nil)
	}
	for i := range clients {
		_, _ = clients[i].Write(bytes.Repeat([]byte{byte(i)}, 4096))
	}
	for i, c := range cs {
		if i%2 == 0 {
			_ = c.nc.Close()
			c.d.Trigger()
		} else {
			go func() {
				_ = c.nc.Close()
				c.d.Trigger()
			}()
		}
	}
	for i, c := range cs {
		select {
		case <-c.ended:
		case <-time.After(wait):
			t.Fatalf("conn %d: handler did not end", i)
		}
		if !errors.Is(c.err, net.ErrClosed) && c.err != io.EOF {
			t.Fatalf("conn %d: %v, want net.ErrClosed", i, c.err)
		}
	}
	waitFor(t, "all released", func() bool { return registered() == 0 })
	// Triggering a finished Desc does nothing.
	cs[0].d.Trigger()
	time.Sleep(10 * time.Millisecond)
	if n := cs[0].runs.Load(); n > 3 {
		t.Fatalf("finished handler ran %d times", n)
	}
}

// TestBlockedHandlerHoldsOnlyItsConnection blocks one handler and checks
// that other connections are still served.
func TestBlockedHandlerHoldsOnlyItsConnection(t *testing.T) {
	servers, clients := pairs(t, 20)
	block := make(chan struct{})
	blocked := watch(t, servers[0], block)
	var cs []*conn
	for _, s := range servers[1:] {
		cs = append(cs, watch(t, s, nil))
	}
	_, _ = clients[0].Write([]byte("stuck"))
	waitFor(t, "the blocked handler", func() bool { return blocked.runs.Load() == 1 })
	for round := range 5 {
		for i, c := range cs {
			_, _ = clients[i+1].Write([]byte{byte(round)})
			waitFor(t, "a byte", func() bool { return len(c.bytes()) == round+1 })
		}
	}
	// More data for the blocked connection runs its handler once more,
	// after it returns, never concurrently.
	_, _ = clients[0].Write([]byte("more"))
	close(block)
	waitFor(t, "the blocked connection's bytes", func() bool { return string(blocked.bytes()) == "stuckmore" })
	for _, cl := range clients {
		_ = cl.Close()
	}
	waitFor(t, "all released", func() bool { return registered() == 0 })
}

func TestTriggerBeforeStart(t *testing.T) {
	servers, clients := pairs(t, 1)
	rc := rawConn(t, servers[0])
	var runs atomic.Int32
	var d Desc
	done := make(chan struct{})
	initDesc(&d, rc, HandlerFunc(func() bool {
		runs.Add(1)
		var b [16]byte
		for {
			_, err := d.Read(b[:])
			if err == ErrWouldBlock {
				return true
			}
			if err != nil {
				_ = servers[0].Close()
				close(done)
				return false
			}
		}
	}))
	d.Trigger()
	if runs.Load() != 0 {
		t.Fatal("handler ran before Start")
	}
	d.Start()
	waitFor(t, "the triggered run", func() bool { return runs.Load() == 1 })
	closeAndWaitEnd(t, clients[0], done)
	waitFor(t, "all released", func() bool { return registered() == 0 })
}

func TestStartOnClosedConnection(t *testing.T) {
	servers, _ := pairs(t, 1)
	rc := rawConn(t, servers[0])
	_ = servers[0].Close()
	var d Desc
	errc := make(chan error, 1)
	initDesc(&d, rc, HandlerFunc(func() bool {
		var b [16]byte
		_, err := d.Read(b[:])
		if err == ErrWouldBlock {
			return true
		}
		errc <- err
		return false
	}))
	d.Start()
	select {
	case err := <-errc:
		if !errors.Is(err, net.ErrClosed) {
			t.Fatalf("Read: %v, want net.ErrClosed", err)
		}
	case <-time.After(wait):
		t.Fatal("handler did not run")
	}
	waitFor(t, "all released", func() bool { return registered() == 0 })
}

// BenchmarkReadableToHandler measures one round trip through the poller:
// a byte written to a connection until its handler has read it.
func BenchmarkReadableToHandler(b *testing.B) {
	servers, clients := pairs(b, 1)
	rc := rawConn(b, servers[0])
	got := make(chan struct{}, 1)
	var d Desc
	buf := make([]byte, 64)
	initDesc(&d, rc, HandlerFunc(func() bool {
		for {
			n, err := d.Read(buf)
			if err == ErrWouldBlock {
				return true
			}
			if err != nil {
				_ = servers[0].Close()
				return false
			}
			for range n {
				got <- struct{}{}
			}
		}
	}))
	d.Start()
	b.ReportAllocs()
	for b.Loop() {
		_, _ = clients[0].Write([]byte{1})
		<-got
	}
	_ = clients[0].Close()
	waitFor(b, "released", func() bool { return registered() == 0 })
}

// BenchmarkLend measures a function lent to a poller that waits in
// epoll_wait, until it has run, with 1, 1 000 and 4 000 idle connections
// registered: its cost must not grow with them (the park Lend replaced
// registered a copy of the epoll descriptor with the runtime's poller,
// which the kernel checks by walking every registered connection).
func BenchmarkLend(b *testing.B) {
	for _, n := range []int{1, 1000, 4000} {
		b.Run(fmt.Sprintf("conns=%d", n), func(b *testing.B) {
			servers, clients := pairs(b, n)
			cs := make([]*conn, n)
			for i, s := range servers {
				cs[i] = watch(b, s, nil)
			}
			p := cs[0].d.p
			done := make(chan struct{}, 1)
			fn := func() { done <- struct{}{} }
			b.ReportAllocs()
			for b.Loop() {
				for !p.inWait.Load() {
					runtime.Gosched()
				}
				if !Lend(fn) {
					b.Fatal("Lend found no poller")
				}
				<-done
			}
			for i, c := range cs {
				closeAndWaitEnd(b, clients[i], c.ended)
			}
			waitFor(b, "released", func() bool { return registered() == 0 })
		})
	}
}

// TestIdleWorkersExit: workers left idle after a burst are told to exit
// (reapIdle) while connections stay registered, so an idle server holds
// no pool of waiting goroutines.
func TestIdleWorkersExit(t *testing.T) {
	const n = 20
	servers, clients := pairs(t, n)
	block := make(chan struct{})
	cs := make([]*conn, n)
	for i, s := range servers {
		cs[i] = watch(t, s, block)
		_, _ = clients[i].Write([]byte("x"))
	}
	// Every handler blocks at once: n workers exist together.
	waitFor(t, "every handler running", func() bool {
		for _, c := range cs {
			if c.runs.Load() == 0 {
				return false
			}
		}
		return true
	})
	// Released, they go idle (with quit open, a worker can only exit when
	// told to) and then away.
	before := reaped.Load()
	close(block)
	waitFor(t, "the idle workers gone", func() bool {
		return reaped.Load()-before >= n && idleWorkers.Load() == 0
	})
	if registered() != n {
		t.Fatalf("registered %d, want %d", registered(), n)
	}
	// Work still gets done after the pool emptied.
	_, _ = clients[0].Write([]byte("y"))
	waitFor(t, "a byte after the reaping", func() bool { return string(cs[0].bytes()) == "xy" })
	for _, cl := range clients {
		_ = cl.Close()
	}
	waitFor(t, "all released", func() bool { return registered() == 0 })
}

// TestStartAfter hands a connection from one handler to another in the
// middle of its data: the first handler reads a head line, starts the
// second Desc on the same registration and returns false; the rest of the
// data, and data written later, reach only the second handler.
func TestStartAfter(t *testing.T) {
	servers, clients := pairs(t, 1)
	nc := servers[0]
	rc := rawConn(t, nc)
	var first Desc
	second := &conn{nc: nc, ended: make(chan struct{})}
	var head []byte
	var firstRuns atomic.Int32
	handedOver := make(chan struct{})
	buf := make([]byte, 1)
	initDesc(&first, rc, HandlerFunc(func() bool {
		firstRuns.Add(1)
		for {
			// One byte at a time, so that what follows the line stays
			// in the socket for the second handler.
			_, err := first.Read(buf)
			if err == ErrWouldBlock {
				return true
			}
			if err != nil {
				t.Errorf("first handler: %v", err)
				return false
			}
			head = append(head, buf[0])
			if buf[0] == '\n' {
				initDesc(&second.d, rc, second.handler(t))
				second.d.StartAfter(&first)
				close(handedOver)
				return false
			}
		}
	}))
	first.Start()
	if _, err := clients[0].Write([]byte("HEAD\nrest")); err != nil {
		t.Fatal(err)
	}
	<-handedOver
	waitFor(t, "the rest", func() bool { return string(second.bytes()) == "rest" })
	if _, err := clients[0].Write([]byte(" and more")); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "later data", func() bool { return string(second.bytes()) == "rest and more" })
	if string(head) != "HEAD\n" {
		t.Fatalf("first handler read %q", head)
	}
	if edgeMode && (second.d.slot != first.slot || second.d.gen != first.gen) {
		// Edge-triggered on both sides: the registration is taken over
		// as it is, with no epoll_ctl.
		t.Errorf("second Desc at slot %d gen %d, want the first's %d %d", second.d.slot, second.d.gen, first.slot, first.gen)
	}
	runs := firstRuns.Load()
	first.Trigger() // done: never runs again
	_ = clients[0].Close()
	<-second.ended
	if firstRuns.Load() != runs {
		t.Fatal("the first handler ran after it returned false")
	}
	waitFor(t, "release", func() bool { return registered() == 0 })
}

// TestStartAfterEdge: an edge-triggered registration taken over without a
// system call. The first handler's last read is short (it read the socket
// empty), so the second does not run at once; an event the first was
// marked with while it handed over (pending) reaches the second, as does
// a dispatch to the first after it returned false (an event the poller
// took before the hand-over); data sent later reaches the second only.
func TestStartAfterEdge(t *testing.T) {
	servers, clients := pairs(t, 1)
	nc := servers[0]
	rc := rawConn(t, nc)
	var first Desc
	second := &conn{nc: nc, ended: make(chan struct{})}
	handedOver := make(chan struct{})
	buf := make([]byte, 512)
	var head []byte
	first.InitEdge(rc, HandlerFunc(func() bool {
		for {
			n, err := first.Read(buf)
			if err == ErrWouldBlock {
				return true
			}
			if err != nil {
				t.Errorf("first handler: %v", err)
				return false
			}
			head = append(head, buf[:n]...)
			if bytes.HasSuffix(head, []byte("\n")) {
				second.d.InitEdge(rc, second.handler(t))
				second.d.StartAfter(&first)
				if second.runs.Load() != 0 || second.d.state.Load() != stIdle {
					t.Error("the second handler was started although the first read the socket empty")
				}
				// An event for the first while it still runs: it is
				// pending when the first returns.
				first.Trigger()
				close(handedOver)
				return false
			}
		}
	}))
	first.Start()
	if _, err := clients[0].Write([]byte("HEAD\n")); err != nil {
		t.Fatal(err)
	}
	<-handedOver
	waitFor(t, "the pending event to run the second handler", func() bool { return second.runs.Load() == 1 })
	waitFor(t, "the second handler to return", func() bool { return second.d.state.Load() == stIdle })
	waitFor(t, "the first to be done", func() bool { return first.state.Load() == stDone })
	first.Trigger()
	waitFor(t, "a dispatch to the first to run the second", func() bool { return second.runs.Load() == 2 })
	if _, err := clients[0].Write([]byte("later")); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "later data", func() bool { return string(second.bytes()) == "later" })
	if string(head) != "HEAD\n" {
		t.Fatalf("first handler read %q", head)
	}
	reg.mu.Lock()
	total := reg.total
	reg.mu.Unlock()
	if total != 1 {
		t.Fatalf("%d registrations, want 1", total)
	}
	closeAndWaitEnd(t, clients[0], second.ended)
	waitFor(t, "release", func() bool { return registered() == 0 })
}

// TestStartAfterDone: StartAfter called after prev's handler returned
// false (not from inside it) does not take prev's released slot: the new
// Desc gets one of its own, and the registrations are counted right.
func TestStartAfterDone(t *testing.T) {
	servers, clients := pairs(t, 1)
	nc := servers[0]
	rc := rawConn(t, nc)
	var first Desc
	done := make(chan struct{})
	first.InitEdge(rc, HandlerFunc(func() bool {
		close(done) // returns false with the connection open, unread
		return false
	}))
	first.Start()
	if _, err := clients[0].Write([]byte("one")); err != nil {
		t.Fatal(err)
	}
	<-done
	waitFor(t, "the first to be released", func() bool { return registered() == 0 })
	c := &conn{nc: nc, ended: make(chan struct{})}
	c.d.InitEdge(rc, c.handler(t))
	c.d.StartAfter(&first)
	if registered() != 1 {
		t.Fatalf("%d registrations, want 1", registered())
	}
	if _, err := clients[0].Write([]byte(" two")); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the data", func() bool { return string(c.bytes()) == "one two" })
	closeAndWaitEnd(t, clients[0], c.ended)
	waitFor(t, "release", func() bool { return registered() == 0 })
}

// TestUnwatch: a connection whose handler handed it on is removed from
// the poller's epoll set.
func TestUnwatch(t *testing.T) {
	servers, clients := pairs(t, 1)
	nc := servers[0]
	rc := rawConn(t, nc)
	var fd int
	_ = rc.Control(func(f uintptr) { fd = int(f) })
	var d Desc
	done := make(chan struct{})
	d.InitEdge(rc, HandlerFunc(func() bool {
		close(done) // handed on, unread
		return false
	}))
	d.Start()
	watched := func() bool {
		b, err := os.ReadFile(fmt.Sprintf("/proc/self/fdinfo/%d", d.p.epfd))
		if err != nil {
			t.Fatal(err)
		}
		return bytes.Contains(b, fmt.Appendf(nil, "tfd: %8d ", fd))
	}
	if !watched() {
		t.Fatal("the connection is not in the epoll set after Start")
	}
	if _, err := clients[0].Write([]byte("x")); err != nil {
		t.Fatal(err)
	}
	<-done
	d.Unwatch()
	if watched() {
		t.Fatal("the connection is still in the epoll set after Unwatch")
	}
	// Once more, as a connection moved to the net package after its
	// handler unwatched it does: nothing to remove, and the connection
	// keeps working.
	d.Unwatch()
	if _, err := clients[0].Write([]byte("y")); err != nil {
		t.Fatal(err)
	}
	_ = nc.SetReadDeadline(time.Now().Add(wait))
	got := make([]byte, 2)
	if _, err := io.ReadFull(nc, got); err != nil || string(got) != "xy" {
		t.Fatalf("read %q, %v after a second Unwatch", got, err)
	}
	waitFor(t, "release", func() bool { return registered() == 0 })
}

// TestLend: Lend runs a function on the goroutine of the poller, which a
// poller waiting in epoll_wait is woken for: while it runs, the poller
// hands no events on, and data that comes meanwhile reaches the handler
// once it returns, whole and in order. With no poller running, Lend
// refuses.
func TestLend(t *testing.T) {
	servers, clients := pairs(t, 1)
	c := watch(t, servers[0], nil)
	p := c.d.p
	lends := p.lends.Load()
	var want bytes.Buffer
	for round := range 3 {
		// The handler done with the last round's records, so that only
		// the poller can hand it this round's.
		waitFor(t, "the poller to wait in epoll_wait and the handler to be done", func() bool {
			return p.inWait.Load() && c.d.state.Load() == stIdle
		})
		ran, release := make(chan struct{}), make(chan struct{})
		if !Lend(func() { close(ran); <-release }) {
			t.Fatal("Lend found no poller")
		}
		select {
		case <-ran:
		case <-time.After(wait):
			t.Fatal("the lent function never ran")
		}
		if Pollers() != 1 {
			t.Fatalf("Pollers = %d while the poller runs a lent function, want 1", Pollers())
		}
		before := len(c.bytes())
		for i := range 50 {
			rec := binary.BigEndian.AppendUint32(nil, uint32(round*50+i))
			want.Write(rec)
			if _, err := clients[0].Write(rec); err != nil {
				t.Fatal(err)
			}
		}
		time.Sleep(20 * time.Millisecond)
		if n := len(c.bytes()); n != before {
			t.Fatalf("the handler read %d bytes while the poller ran a lent function", n-before)
		}
		close(release)
		waitFor(t, "the records", func() bool { return len(c.bytes()) >= want.Len() })
	}
	if !bytes.Equal(c.bytes(), want.Bytes()) {
		t.Fatal("records arrived changed or out of order")
	}
	if n := p.lends.Load() - lends; n != 3 {
		t.Fatalf("the poller ran %d lent functions, want 3", n)
	}
	closeAndWaitEnd(t, clients[0], c.ended)
	waitFor(t, "the poller to exit", func() bool {
		if registered() != 0 {
			return false
		}
		for _, p := range reg.pollers {
			if p.live.Load() {
				return false
			}
		}
		return true
	})
	if Lend(func() { t.Error("a function lent to no poller ran") }) {
		t.Fatal("Lend gave a function to a poller that is not running")
	}
}

// TestLendWhileExiting: functions lent while pollers start and exit (their
// connections come and go) each run exactly once when Lend took them, and
// never when it refused; while a connection is registered, Lend finds its
// poller (once the function lent before is run).
func TestLendWhileExiting(t *testing.T) {
	var taken, ran atomic.Int64
	lend := func() bool {
		if Lend(func() { ran.Add(1) }) {
			taken.Add(1)
			return true
		}
		return false
	}
	stop := make(chan struct{})
	lenderDone := make(chan struct{})
	go func() {
		defer close(lenderDone)
		for {
			select {
			case <-stop:
				return
			default:
			}
			lend()
			runtime.Gosched()
		}
	}()
	for range 100 {
		servers, clients := pairs(t, 1)
		c := watch(t, servers[0], nil)
		// The poller may hold the background lender's function a moment.
		waitFor(t, "Lend to find the poller while a connection is registered", lend)
		closeAndWaitEnd(t, clients[0], c.ended)
		waitFor(t, "release", func() bool { return registered() == 0 })
	}
	close(stop)
	<-lenderDone
	waitFor(t, "every function Lend took to run", func() bool { return ran.Load() == taken.Load() })
}

// endWithoutEvent ends c's registration without an epoll event: its
// descriptor is closed (which drops it from epoll silently) and its
// handler triggered, so that only the release's eventfd wakes the poller.
func endWithoutEvent(t *testing.T, c *conn) {
	t.Helper()
	_ = c.nc.Close()
	c.d.Trigger()
	select {
	case <-c.ended:
	case <-time.After(wait):
		t.Fatal("the handler never saw the connection end")
	}
}

// TestLendRunAtExit: a function stored just before the poller's last
// connection goes, and before Lend wakes it, is run by the exiting
// poller, and Lend reports it taken.
func TestLendRunAtExit(t *testing.T) {
	servers, _ := pairs(t, 1)
	c := watch(t, servers[0], nil)
	p := c.d.p
	waitFor(t, "the poller to wait in epoll_wait", func() bool { return p.inWait.Load() && c.d.state.Load() == stIdle })
	exits := p.exits.Load()
	lendHook = func(q *poller, lent bool) {
		if lent && q == p {
			endWithoutEvent(t, c)
			waitFor(t, "the poller to exit", func() bool { return p.exits.Load() > exits })
		}
	}
	defer func() { lendHook = nil }()
	var ran atomic.Int32
	if !Lend(func() { ran.Add(1) }) {
		t.Fatal("Lend took back a function the exiting poller had to run")
	}
	if n := ran.Load(); n != 1 {
		t.Fatalf("the function ran %d times, want 1", n)
	}
}

// TestLendTakeBack: a function stored after the poller has exited (Lend
// having seen it running) is taken back: Lend refuses it and it never
// runs, nor is it left for the next loop.
func TestLendTakeBack(t *testing.T) {
	servers, _ := pairs(t, 1)
	c := watch(t, servers[0], nil)
	p := c.d.p
	waitFor(t, "the poller to wait in epoll_wait", func() bool { return p.inWait.Load() && c.d.state.Load() == stIdle })
	exits := p.exits.Load()
	lendHook = func(q *poller, lent bool) {
		if !lent && q == p {
			endWithoutEvent(t, c)
			waitFor(t, "the poller to exit", func() bool { return p.exits.Load() > exits })
		}
	}
	defer func() { lendHook = nil }()
	var ran atomic.Int32
	if Lend(func() { ran.Add(1) }) {
		t.Fatal("Lend gave a function to a poller that had exited")
	}
	if p.lent.Load() != nil {
		t.Fatal("a refused function was left for the poller's next loop")
	}
	if n := ran.Load(); n != 0 {
		t.Fatalf("a refused function ran %d times", n)
	}
}

// TestDataDuringRun: data that comes after the handler read the socket
// empty but before it returned still reaches it: Init re-arms the
// registration, which then reports the data; InitEdge's registration
// reports the arrival while the handler runs, and the handler runs again.
func TestDataDuringRun(t *testing.T) {
	servers, clients := pairs(t, 1)
	nc := servers[0]
	rc := rawConn(t, nc)
	var d Desc
	var mu sync.Mutex
	var got bytes.Buffer
	emptied := make(chan struct{}, 1)
	proceed := make(chan struct{}, 1)
	ended := make(chan struct{})
	var first atomic.Bool
	first.Store(true)
	buf := make([]byte, 64)
	initDesc(&d, rc, HandlerFunc(func() bool {
		for {
			n, err := d.Read(buf)
			if err == ErrWouldBlock {
				if first.Swap(false) {
					emptied <- struct{}{}
					<-proceed
				}
				return true
			}
			if err != nil {
				_ = nc.Close()
				close(ended)
				return false
			}
			mu.Lock()
			got.Write(buf[:n])
			mu.Unlock()
		}
	}))
	d.Start()
	if _, err := clients[0].Write([]byte("one")); err != nil {
		t.Fatal(err)
	}
	select {
	case <-emptied:
	case <-time.After(wait):
		t.Fatal("the handler never read the first write")
	}
	// The handler has read everything and not returned yet.
	if _, err := clients[0].Write([]byte("two")); err != nil {
		t.Fatal(err)
	}
	proceed <- struct{}{}
	waitFor(t, "the second write", func() bool {
		mu.Lock()
		defer mu.Unlock()
		return got.String() == "onetwo"
	})
	closeAndWaitEnd(t, clients[0], ended)
	waitFor(t, "release", func() bool { return registered() == 0 })
}

// TestEdgeTriggered runs the tests of a Desc's life with InitEdge.
func TestEdgeTriggered(t *testing.T) {
	edgeMode = true
	defer func() { edgeMode = false }()
	for _, tc := range []struct {
		name string
		f    func(*testing.T)
	}{
		{"ManyConnections", TestManyConnections},
		{"CloseWhileReadable", TestCloseWhileReadable},
		{"BlockedHandlerHoldsOnlyItsConnection", TestBlockedHandlerHoldsOnlyItsConnection},
		{"TriggerBeforeStart", TestTriggerBeforeStart},
		{"StartOnClosedConnection", TestStartOnClosedConnection},
		{"StartAfter", TestStartAfter},
		{"DataDuringRun", TestDataDuringRun},
		{"Lend", TestLend},
		{"StartReadable", TestStartReadable},
	} {
		t.Run(tc.name, tc.f)
	}
}

// TestReadToEnd: events that only say "readable" leave ReadToEnd false;
// the event of the peer's close sets it before the handler runs for it.
func TestReadToEnd(t *testing.T) {
	defer func() { edgeMode = false }()
	for _, edge := range []bool{false, true} {
		edgeMode = edge
		servers, clients := pairs(t, 1)
		c := watch(t, servers[0], nil)
		if _, err := clients[0].Write([]byte("data")); err != nil {
			t.Fatal(err)
		}
		waitFor(t, "the data", func() bool { return string(c.bytes()) == "data" })
		// Once the handler has returned, only an event runs it again.
		waitFor(t, "the handler to return", func() bool { return c.d.state.Load() == stIdle })
		if c.d.ReadToEnd() {
			t.Fatalf("edge %v: ReadToEnd after data alone", edge)
		}
		closeAndWaitEnd(t, clients[0], c.ended)
		if !c.d.ReadToEnd() {
			t.Fatalf("edge %v: ReadToEnd false after the peer closed", edge)
		}
		waitFor(t, "release", func() bool { return registered() == 0 })
	}
}

// TestStartReadable: the handler runs at once, without an event, and the
// connection is watched only once a run returned true; a run that ends
// the connection, or hands it over, leaves no registration behind it
// (StartAfter registers the successor anew, and the kernel reports data
// that was there already).
func TestStartReadable(t *testing.T) {
	t.Run("watched after its first run", func(t *testing.T) {
		servers, clients := pairs(t, 1)
		if _, err := clients[0].Write([]byte("one")); err != nil {
			t.Fatal(err)
		}
		waitReadable(t, servers[0], unix.POLLIN)
		block := make(chan struct{})
		c := &conn{nc: servers[0], ended: make(chan struct{}), block: block}
		initDesc(&c.d, rawConn(t, servers[0]), c.handler(t))
		c.d.StartReadable()
		waitFor(t, "the first run", func() bool { return c.runs.Load() == 1 })
		if n := registered(); n != 0 {
			t.Fatalf("%d registrations during the first run, want 0", n)
		}
		// A Trigger during the first run is honoured once it is watched.
		c.d.Trigger()
		close(block)
		waitFor(t, "the triggered run", func() bool { return c.runs.Load() == 2 })
		waitFor(t, "the bytes", func() bool { return string(c.bytes()) == "one" })
		if n := registered(); n != 1 {
			t.Fatalf("%d registrations, want 1", n)
		}
		if _, err := clients[0].Write([]byte(" two")); err != nil {
			t.Fatal(err)
		}
		waitFor(t, "data announced by an event", func() bool { return string(c.bytes()) == "one two" })
		closeAndWaitEnd(t, clients[0], c.ended)
		waitFor(t, "release", func() bool { return registered() == 0 })
	})
	t.Run("done in its first run", func(t *testing.T) {
		servers, clients := pairs(t, 1)
		_ = clients[0].Close()
		waitReadable(t, servers[0], unix.POLLRDHUP)
		c := &conn{nc: servers[0], ended: make(chan struct{})}
		initDesc(&c.d, rawConn(t, servers[0]), c.handler(t))
		c.d.StartReadable()
		<-c.ended
		waitFor(t, "done", func() bool { return c.d.state.Load() == stDone })
		if n := registered(); n != 0 {
			t.Fatalf("%d registrations, want 0", n)
		}
		c.d.Trigger()
		time.Sleep(20 * time.Millisecond)
		if n := c.runs.Load(); n != 1 {
			t.Fatalf("%d runs after the end, want 1", n)
		}
	})
	t.Run("handed over in its first run", func(t *testing.T) {
		servers, clients := pairs(t, 1)
		nc := servers[0]
		rc := rawConn(t, nc)
		if _, err := clients[0].Write([]byte("HEAD\nrest")); err != nil {
			t.Fatal(err)
		}
		waitReadable(t, nc, unix.POLLIN)
		var first Desc
		second := &conn{nc: nc, ended: make(chan struct{})}
		var head []byte
		handed := make(chan struct{})
		first.InitEdge(rc, HandlerFunc(func() bool {
			// Five bytes: the read fills the buffer and leaves "rest"
			// in the socket, which no new event announces.
			buf := make([]byte, 5)
			n, err := first.Read(buf)
			if err != nil {
				t.Errorf("first handler: %v", err)
				return false
			}
			head = buf[:n]
			second.d.InitEdge(rc, second.handler(t))
			second.d.StartAfter(&first)
			close(handed)
			return false
		}))
		first.StartReadable()
		<-handed
		waitFor(t, "the rest, read by the successor", func() bool { return string(second.bytes()) == "rest" })
		if string(head) != "HEAD\n" {
			t.Fatalf("first handler read %q", head)
		}
		waitFor(t, "the first to be done", func() bool { return first.state.Load() == stDone })
		if n := registered(); n != 1 {
			t.Fatalf("%d registrations, want 1", n)
		}
		if _, err := clients[0].Write([]byte(" later")); err != nil {
			t.Fatal(err)
		}
		waitFor(t, "later data", func() bool { return string(second.bytes()) == "rest later" })
		closeAndWaitEnd(t, clients[0], second.ended)
		waitFor(t, "release", func() bool { return registered() == 0 })
	})
}

// waitReadable waits until nc's socket reports events (poll(2)): what the
// peer sent has arrived, so a run that does not wait for an event finds
// it (a loopback write usually arrives before it returns, but the kernel
// may finish it later under load).
func waitReadable(t *testing.T, nc *net.TCPConn, events int16) {
	t.Helper()
	rc := rawConn(t, nc)
	waitFor(t, "the peer's data", func() bool {
		ready := false
		_ = rc.Control(func(fd uintptr) {
			fds := []unix.PollFd{{Fd: int32(fd), Events: events}}
			n, err := unix.Poll(fds, 0)
			ready = err == nil && n == 1 && fds[0].Revents&events != 0
		})
		return ready
	})
}
