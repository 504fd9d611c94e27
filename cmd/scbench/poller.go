//go:build linux

package main

import (
	"errors"
	"fmt"
	"os"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// pollSet reads every connection of a run with a few event loops (epoll,
// level-triggered) instead of a goroutine per connection. Once set up, a
// connection's socket belongs to its poller: one read(2) per readiness
// event, frames parsed straight from the poller's buffer, and the
// connection's pending output written right after its input was handled.
// Compared with Go's netpoller (edge-triggered, one goroutine wake-up and
// one extra read returning EAGAIN per event) this roughly halves the
// generator's system calls per message and removes goroutine switches.
type pollSet struct {
	pollers []*poller
	next    atomic.Uint64
}

type poller struct {
	epfd  int
	file  *os.File // the epoll descriptor, waited on through Go's netpoller
	raw   syscall.RawConn
	slots []atomic.Pointer[Conn]
	used  atomic.Int64
	buf   []byte
	rx    *stampedReader // nil: plain read(2), no receive stamps
	done  chan struct{}
	once  sync.Once
}

const pollBuffer = 256 << 10

// newPollSet starts k pollers able to hold capacity connections together.
// With stamps, deliveries count as arrived when the kernel received them
// rather than when a poller read them (rxstamp.go).
func newPollSet(k, capacity int, stamps bool) (*pollSet, error) {
	k = max(k, 1)
	ps := &pollSet{}
	per := capacity/k + 1
	for range k {
		p, err := newPoller(per, stamps)
		if err != nil {
			ps.stop()
			return nil, err
		}
		ps.pollers = append(ps.pollers, p)
	}
	return ps, nil
}

// newPoller creates an epoll instance and its loop. The loop never blocks in
// epoll_wait: the epoll descriptor is itself registered with Go's netpoller
// (it is readable while events are pending), so an idle poller parks like
// any goroutine waiting for a socket, and a busy one collects the events of
// many connections with one epoll_wait(…, 0).
func newPoller(capacity int, stamps bool) (*poller, error) {
	epfd, err := syscall.EpollCreate1(syscall.EPOLL_CLOEXEC)
	if err != nil {
		return nil, err
	}
	if err := syscall.SetNonblock(epfd, true); err != nil {
		syscall.Close(epfd)
		return nil, err
	}
	f := os.NewFile(uintptr(epfd), "epoll")
	raw, err := f.SyscallConn()
	if err != nil {
		f.Close()
		return nil, err
	}
	p := &poller{
		epfd:  epfd,
		file:  f,
		raw:   raw,
		slots: make([]atomic.Pointer[Conn], capacity),
		buf:   make([]byte, pollBuffer),
		done:  make(chan struct{}),
	}
	if stamps {
		p.rx = new(stampedReader)
	}
	go p.loop()
	return p, nil
}

var errPollerFull = errors.New("poller full")

// add hands a set-up connection to one of the pollers.
func (ps *pollSet) add(c *Conn) error {
	p := ps.pollers[ps.next.Add(1)%uint64(len(ps.pollers))]
	slot := p.used.Add(1) - 1
	if slot >= int64(len(p.slots)) {
		return errPollerFull
	}
	if p.rx != nil {
		if err := enableRxStamps(c.fd); err != nil {
			return fmt.Errorf("SO_TIMESTAMPNS: %w", err)
		}
	}
	c.poller, c.slot = p, int32(slot)
	p.slots[slot].Store(c)
	ev := syscall.EpollEvent{Events: syscall.EPOLLIN | syscall.EPOLLRDHUP, Fd: c.slot}
	return syscall.EpollCtl(p.epfd, syscall.EPOLL_CTL_ADD, c.fd, &ev)
}

// stop ends the pollers. Connections still registered are left as they are.
func (ps *pollSet) stop() {
	for _, p := range ps.pollers {
		p.once.Do(func() {
			p.file.Close() // the loop's wait returns an error
			<-p.done
		})
	}
}

func (p *poller) loop() {
	defer close(p.done)
	events := make([]syscall.EpollEvent, 256)
	var n int
	wait := func(fd uintptr) bool {
		var err error
		n, err = syscall.EpollWait(int(fd), events, 0)
		return err == nil && n > 0
	}
	for {
		if err := p.raw.Read(wait); err != nil {
			return
		}
		t := time.Now()
		now := int64(t.Sub(base)) // nanotime()
		if p.rx != nil {
			p.rx.wallOff = t.UnixNano() - now
		}
		for i := range n {
			ev := &events[i]
			c := p.slots[ev.Fd].Load()
			if c == nil {
				continue
			}
			if ev.Events&syscall.EPOLLOUT != 0 {
				c.writable()
			}
			if ev.Events&(syscall.EPOLLIN|syscall.EPOLLRDHUP|syscall.EPOLLHUP|syscall.EPOLLERR) != 0 {
				c.readable(p.buf, now, p.rx)
			}
		}
	}
}

// setEvents changes what the poller waits for on c.
func (p *poller) setEvents(c *Conn, out bool) {
	ev := syscall.EpollEvent{Events: syscall.EPOLLIN | syscall.EPOLLRDHUP, Fd: c.slot}
	if out {
		ev.Events |= syscall.EPOLLOUT
	}
	syscall.EpollCtl(p.epfd, syscall.EPOLL_CTL_MOD, c.fd, &ev)
}
