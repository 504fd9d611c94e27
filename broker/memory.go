package broker

import (
	"context"
	"errors"
	"sync"
)

// ErrClosed is returned by a broker's methods after Close.
var ErrClosed = errors.New("broker: closed")

// Bus is an in-process message bus. Every Memory broker created on the same
// Bus sees the others' publishes, which makes several servers in one process
// behave as instances of one cluster (useful in tests). A server given no
// broker gets a Memory broker on a Bus of its own.
type Bus struct {
	mu   sync.RWMutex
	subs map[string]map[*Memory]struct{} // channel → brokers subscribed

	hist busHistory // channel histories (memory_history.go)
}

// NewBus returns an empty bus.
func NewBus() *Bus { return &Bus{subs: make(map[string]map[*Memory]struct{})} }

// Memory is a Broker on a Bus. Deliveries run synchronously in the
// publisher's goroutine, in publish order.
type Memory struct {
	bus *Bus

	mu      sync.RWMutex
	h       Handler
	closed  bool
	channel map[string]struct{}
}

// NewMemory returns a broker on bus; a nil bus means a new private bus.
func NewMemory(bus *Bus) *Memory {
	if bus == nil {
		bus = NewBus()
	}
	return &Memory{bus: bus, channel: make(map[string]struct{})}
}

// Start implements Broker.
func (m *Memory) Start(_ context.Context, h Handler) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed {
		return ErrClosed
	}
	m.h = h
	return nil
}

// Subscribe implements Broker.
func (m *Memory) Subscribe(_ context.Context, channels []string) error {
	m.mu.Lock()
	if m.closed {
		m.mu.Unlock()
		return ErrClosed
	}
	for _, ch := range channels {
		m.channel[ch] = struct{}{}
	}
	m.mu.Unlock()
	m.bus.mu.Lock()
	for _, ch := range channels {
		set := m.bus.subs[ch]
		if set == nil {
			set = make(map[*Memory]struct{})
			m.bus.subs[ch] = set
		}
		set[m] = struct{}{}
	}
	m.bus.mu.Unlock()
	return nil
}

// Unsubscribe implements Broker.
func (m *Memory) Unsubscribe(_ context.Context, channels []string) error {
	m.mu.Lock()
	for _, ch := range channels {
		delete(m.channel, ch)
	}
	m.mu.Unlock()
	m.bus.remove(m, channels)
	return nil
}

// remove unsubscribes m from channels on the bus.
func (bus *Bus) remove(m *Memory, channels []string) {
	bus.mu.Lock()
	defer bus.mu.Unlock()
	for _, ch := range channels {
		if set := bus.subs[ch]; set != nil {
			delete(set, m)
			if len(set) == 0 {
				delete(bus.subs, ch)
			}
		}
	}
}

// Publish implements Broker. With a private bus (the default) it costs one
// map look-up: the hub has already delivered to its local subscribers and
// drops its own echo.
func (m *Memory) Publish(_ context.Context, channel string, payload []byte) error {
	m.mu.RLock()
	closed := m.closed
	m.mu.RUnlock()
	if closed {
		return ErrClosed
	}
	m.bus.mu.RLock()
	set := m.bus.subs[channel]
	targets := make([]*Memory, 0, len(set))
	for b := range set {
		if b != m { // the hub would drop its own echo anyway
			targets = append(targets, b)
		}
	}
	m.bus.mu.RUnlock()
	for _, b := range targets {
		// Holding the read lock across Deliver makes Close wait for
		// deliveries in flight: nothing is delivered after Close returns.
		b.mu.RLock()
		if b.h != nil && !b.closed {
			b.h.Deliver(channel, payload)
		}
		b.mu.RUnlock()
	}
	return nil
}

// InProcess implements InProcess: Publish only queues to the handlers of
// the brokers on the bus.
func (m *Memory) InProcess() bool { return true }

// PublishBatch implements BatchPublisher: Publish for each message, in
// order.
func (m *Memory) PublishBatch(ctx context.Context, msgs []Message) []error {
	var errs []error
	for i, msg := range msgs {
		if err := m.Publish(ctx, msg.Channel, msg.Payload); err != nil {
			if errs == nil {
				errs = make([]error, len(msgs))
			}
			errs[i] = err
		}
	}
	return errs
}

// Close implements Broker.
func (m *Memory) Close() error {
	m.mu.Lock()
	if m.closed {
		m.mu.Unlock()
		return nil
	}
	m.closed = true
	chans := make([]string, 0, len(m.channel))
	for ch := range m.channel {
		chans = append(chans, ch)
	}
	m.mu.Unlock()
	m.bus.remove(m, chans)
	return nil
}

var (
	_ Broker         = (*Memory)(nil)
	_ BatchPublisher = (*Memory)(nil)
	_ InProcess      = (*Memory)(nil)
)
