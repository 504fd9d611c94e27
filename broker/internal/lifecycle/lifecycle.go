// Package lifecycle is the start and close state machine the Redis and
// NATS brokers share: New → Starting → Running → Closed, where Close may
// come at any time, also while Start is connecting, and Start runs once.
package lifecycle

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"

	"github.com/socketcluster-go/socketcluster/broker"
)

// State is a broker's place in its lifecycle.
type State int32

const (
	New      State = iota // created, Start not called
	Starting              // Start is connecting
	Running               // started; its goroutines run
	Closed                // Close was called, or Start failed
)

// Machine holds a broker's state. Transitions are made under the broker's
// own mutex (Steps.Mu), the one that guards its subscription state, so they
// are ordered with Subscribe and Unsubscribe; Load needs no lock.
type Machine struct{ s atomic.Int32 }

// Load returns the current state.
func (m *Machine) Load() State { return State(m.s.Load()) }

// Steps are the broker-specific parts of Start and Close.
type Steps struct {
	Name   string             // package name, for messages ("redisbroker")
	Mu     sync.Locker        // the broker's mutex
	Done   context.Context    // the broker's context, cancelled by Close
	Cancel context.CancelFunc // cancels Done

	// Begin runs under Mu when Start moves New → Starting (keep the
	// handler). Connect then runs without the lock, with a context that
	// ends when Start's does or Close is called. On success Run runs under
	// Mu as the state becomes Running (start the goroutines). When Connect
	// failed, or Close came meanwhile, Abort releases what Connect made.
	Begin   func()
	Connect func(ctx context.Context) error
	Run     func()
	Abort   func()

	// Closing runs under Mu when Close moves the state to Closed (take
	// what waits for the broker). Stop runs after Done was cancelled,
	// unless Start was still connecting (Start then cleans up): close the
	// connections and wait for the goroutines.
	Closing func()
	Stop    func()
}

// ErrStartedTwice is returned by a second Start.
var ErrStartedTwice = errors.New("Start called twice")

// Start runs the broker's Start. It returns broker.ErrClosed when the
// broker was closed before or during Start, and Connect's error otherwise;
// after a failure the broker is Closed.
func (m *Machine) Start(ctx context.Context, s *Steps) error {
	s.Mu.Lock()
	switch m.Load() {
	case Closed:
		s.Mu.Unlock()
		return broker.ErrClosed
	case New:
	default:
		s.Mu.Unlock()
		return errors.New(s.Name + ": " + ErrStartedTwice.Error())
	}
	if s.Begin != nil {
		s.Begin()
	}
	m.s.Store(int32(Starting))
	s.Mu.Unlock()

	ctx, stop := context.WithCancel(ctx)
	defer stop()
	defer context.AfterFunc(s.Done, stop)() // Close aborts Start
	err := s.Connect(ctx)
	if err == nil {
		s.Mu.Lock()
		if m.Load() == Starting {
			m.s.Store(int32(Running))
			if s.Run != nil {
				s.Run()
			}
			s.Mu.Unlock()
			return nil
		}
		s.Mu.Unlock()
		err = broker.ErrClosed // Close raced with Start
	}
	if s.Abort != nil {
		s.Abort()
	}
	s.Mu.Lock()
	m.s.Store(int32(Closed))
	s.Mu.Unlock()
	s.Cancel()
	return err
}

// Close runs the broker's Close; closing twice does nothing.
func (m *Machine) Close(s *Steps) {
	s.Mu.Lock()
	prev := m.Load()
	if prev == Closed {
		s.Mu.Unlock()
		return
	}
	m.s.Store(int32(Closed))
	if s.Closing != nil {
		s.Closing()
	}
	s.Mu.Unlock()
	s.Cancel()
	if prev == Starting {
		return // Start sees the state and cleans up
	}
	if s.Stop != nil {
		s.Stop()
	}
}
