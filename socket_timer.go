package socketcluster

import (
	"time"

	"github.com/socketcluster-go/socketcluster/internal/wsconn"
	"github.com/socketcluster-go/socketcluster/protocol"
)

// The socket's deadlines: the handshake timeout, the next ping and the pong
// timeout (docs/protocol.md §2.3). The server's schedule (deadlines.go) holds
// each socket once, at its earliest deadline; when that passes, onTimer
// acts on what is due and schedules the socket at its next deadline.
// Traffic only moves the pong deadline (an atomic store, no lock and no
// timer reset per message): the schedule, which reaches the socket for its
// next ping before the pong deadline anyway, finds the new deadline then.

// timerEpoch is the origin of the deadlines, which are monotonic
// nanoseconds since it (0 means none).
var timerEpoch = time.Now()

func monoNow() int64 { return int64(time.Since(timerEpoch)) }

var (
	pingV2 = wsconn.Frame(false, nil)
	pingV1 = wsconn.Frame(false, []byte("#1"))
)

func (s *Socket) startTimers() {
	o := &s.server.opts
	now := monoNow()
	s.mu.Lock()
	defer s.mu.Unlock()
	s.handshakeDue = now + int64(o.HandshakeTimeout)
	next := s.handshakeDue
	if !o.PingTimeoutDisabled {
		s.pingDue = now + int64(o.PingInterval)
		s.pongDue.Store(now + int64(o.PingTimeout))
		next = min(next, s.pingDue, now+int64(o.PingTimeout))
	}
	s.server.deadlines.schedule(s, next)
}

// handshakeDone cancels the handshake deadline; s.mu is held.
func (s *Socket) handshakeDoneLocked() { s.handshakeDue = 0 }

// onTimer acts on the deadlines that passed, in their order: a ping is
// sent, a timeout closes the socket (4005 handshake, 4001 pong). It then
// schedules the socket at its next deadline.
func (s *Socket) onTimer() {
	o := &s.server.opts
	for {
		s.mu.Lock()
		if s.stateCode() == stClosed {
			s.mu.Unlock()
			return
		}
		now := monoNow()
		pong := s.pongDue.Load()
		due, what := int64(0), 0
		for i, d := range [3]int64{s.handshakeDue, pong, s.pingDue} {
			if d != 0 && d <= now && (due == 0 || d < due) {
				due, what = d, i+1
			}
		}
		switch what {
		case 0:
			next := int64(0)
			for _, d := range [3]int64{s.handshakeDue, pong, s.pingDue} {
				if d != 0 && (next == 0 || d < next) {
					next = d
				}
			}
			if next != 0 {
				s.server.deadlines.schedule(s, next)
			}
			s.mu.Unlock()
			return
		case 1:
			s.mu.Unlock()
			s.closeWith(protocol.CloseHandshakeTimeout, "", true)
			return
		case 2:
			s.mu.Unlock()
			s.closeWith(protocol.ClosePongTimeout, "", true)
			return
		}
		s.pingDue = now + int64(o.PingInterval)
		s.mu.Unlock()
		if o.ProtocolVersion == 1 {
			s.enqueue(pingV1)
		} else {
			s.enqueue(pingV2)
		}
	}
}

// touch restarts the pong deadline: always for a pong, and for any other
// message when more than a quarter of PingTimeout passed since the last
// restart (docs/protocol.md §2.3 step 2), now being the message's arrival
// on the monoNow clock. Only the socket's reader calls it.
func (s *Socket) touch(isPong bool, now int64) {
	due := s.pongDue.Load()
	if due == 0 {
		return // pings are off
	}
	timeout := int64(s.server.opts.PingTimeout)
	if isPong || now-(due-timeout) > timeout/4 {
		s.pongDue.Store(now + timeout)
	}
}
