package admin

import (
	"os"
	"sync"
	"time"
)

var osHostname = os.Hostname

// limiter bounds failed log-ins: per client address a bucket of perAddr
// attempts refilled over window, and all addresses together at most
// global failures per window (against guesses spread over many
// addresses). A success empties the address's record.
type limiter struct {
	perAddr int
	window  time.Duration
	global  int

	mu       sync.Mutex
	addrs    map[string][]time.Time // failures per address, oldest first
	failures []time.Time            // every failure, oldest first
}

func newLimiter(perAddr int, window time.Duration, global int) *limiter {
	return &limiter{perAddr: perAddr, window: window, global: global, addrs: map[string][]time.Time{}}
}

// recent drops the times older than the window.
func (l *limiter) recent(ts []time.Time, now time.Time) []time.Time {
	i := 0
	for i < len(ts) && now.Sub(ts[i]) >= l.window {
		i++
	}
	return ts[i:]
}

// allow reports whether addr may try now, and if not how long to wait.
func (l *limiter) allow(addr string, now time.Time) (time.Duration, bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.failures = l.recent(l.failures, now)
	ts := l.recent(l.addrs[addr], now)
	if len(ts) == 0 {
		delete(l.addrs, addr)
	} else {
		l.addrs[addr] = ts
	}
	switch {
	case len(ts) >= l.perAddr:
		return l.window - now.Sub(ts[0]), false
	case len(l.failures) >= l.global:
		return l.window - now.Sub(l.failures[0]), false
	}
	return 0, true
}

func (l *limiter) fail(addr string, now time.Time) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.addrs[addr] = append(l.addrs[addr], now)
	l.failures = append(l.failures, now)
	if len(l.addrs) > 10000 { // a flood of addresses: forget the idle ones
		for a, ts := range l.addrs {
			if len(l.recent(ts, now)) == 0 {
				delete(l.addrs, a)
			}
		}
	}
}

func (l *limiter) succeed(addr string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	delete(l.addrs, addr)
}
