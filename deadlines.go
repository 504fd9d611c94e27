package socketcluster

import (
	"sync"
	"time"
)

// deadlines is a server's schedule of socket deadlines (socket_timer.go):
// a min-heap of sockets by their next deadline and one timer for all of
// them, armed at the earliest. A socket costs it two integers instead of a
// timer of its own. When deadlines pass, each due socket's onTimer runs in
// a goroutine of its own, as a time.AfterFunc callback would, so a socket
// that takes long to close never delays another's ping.
//
// mu is a leaf: nothing else is locked while it is held (a socket's mu may
// be held when it is taken).
type deadlines struct {
	mu    sync.Mutex
	heap  []*Socket // by Socket.due; Socket.slot is the index
	timer *time.Timer
	at    int64 // when timer fires, monotonic ns; 0 when stopped
}

// schedule sets s's next deadline (monotonic ns, see monoNow), adding s to
// the schedule or moving it.
func (d *deadlines) schedule(s *Socket, due int64) {
	d.mu.Lock()
	s.due = due
	if s.slot < 0 {
		s.slot = int32(len(d.heap)) // 2^31 sockets would take terabytes
		d.heap = append(d.heap, s)
		d.up(int(s.slot))
	} else if !d.up(int(s.slot)) {
		d.down(int(s.slot))
	}
	d.armLocked(monoNow())
	d.mu.Unlock()
}

// cancel removes s from the schedule.
func (d *deadlines) cancel(s *Socket) {
	d.mu.Lock()
	if i := int(s.slot); i >= 0 {
		last := len(d.heap) - 1
		d.swap(i, last)
		d.heap[last] = nil
		d.heap = d.heap[:last]
		s.slot = -1
		if i < last && !d.up(i) {
			d.down(i)
		}
	}
	d.mu.Unlock()
}

// fire hands every socket whose deadline passed to its onTimer, which
// schedules it again if it has a deadline left.
func (d *deadlines) fire() {
	d.mu.Lock()
	now := monoNow()
	d.at = 0
	for len(d.heap) > 0 && d.heap[0].due <= now {
		s := d.heap[0]
		last := len(d.heap) - 1
		d.swap(0, last)
		d.heap[last] = nil
		d.heap = d.heap[:last]
		s.slot = -1
		d.down(0)
		go s.onTimer()
	}
	d.armLocked(now)
	d.mu.Unlock()
}

// armLocked makes the timer fire at the earliest deadline.
func (d *deadlines) armLocked(now int64) {
	if len(d.heap) == 0 {
		return // a timer that fires early finds nothing due: harmless
	}
	next := d.heap[0].due
	if d.at != 0 && d.at <= next {
		return
	}
	d.at = next
	if d.timer == nil {
		d.timer = time.AfterFunc(time.Duration(next-now), d.fire)
	} else {
		d.timer.Reset(time.Duration(next - now))
	}
}

func (d *deadlines) swap(i, j int) {
	d.heap[i], d.heap[j] = d.heap[j], d.heap[i]
	d.heap[i].slot, d.heap[j].slot = int32(i), int32(j)
}

// up moves the element at i towards the root; it reports whether it moved.
func (d *deadlines) up(i int) bool {
	moved := false
	for i > 0 {
		p := (i - 1) / 2
		if d.heap[p].due <= d.heap[i].due {
			break
		}
		d.swap(i, p)
		i, moved = p, true
	}
	return moved
}

func (d *deadlines) down(i int) {
	n := len(d.heap)
	for {
		c := 2*i + 1
		if c >= n {
			return
		}
		if c+1 < n && d.heap[c+1].due < d.heap[c].due {
			c++
		}
		if d.heap[i].due <= d.heap[c].due {
			return
		}
		d.swap(i, c)
		i = c
	}
}
