package sccbroker

import (
	"log/slog"
	"sync"
	"time"
)

// logLimiter logs a kind of problem at most once per logEvery, with the
// number of occurrences since the last line, so that a flapping cluster
// does not flood the log.
type logLimiter struct {
	l  *slog.Logger
	mu sync.Mutex
	by map[string]*limitState
}

type limitState struct {
	last       time.Time
	suppressed int
}

const logEvery = 10 * time.Second

func newLogLimiter(l *slog.Logger) *logLimiter {
	return &logLimiter{l: l, by: map[string]*limitState{}}
}

func (ll *logLimiter) warn(kind, msg string, args ...any) {
	ll.mu.Lock()
	st := ll.by[kind]
	if st == nil {
		st = &limitState{}
		ll.by[kind] = st
	}
	now := time.Now()
	if !st.last.IsZero() && now.Sub(st.last) < logEvery {
		st.suppressed++
		ll.mu.Unlock()
		return
	}
	n := st.suppressed
	st.last, st.suppressed = now, 0
	ll.mu.Unlock()
	if n > 0 {
		args = append(args, "suppressed", n)
	}
	ll.l.Warn(msg, args...)
}
