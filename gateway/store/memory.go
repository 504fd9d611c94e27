package store

import (
	"context"
	"sync"
	"time"
)

// Memory is a Store in the memory of one process. Several servers in one
// process (tests, an embedded cluster on the memory broker) share state by
// sharing one Memory.
type Memory struct {
	mu        sync.Mutex
	closed    bool
	presence  map[string]map[string]Entry // channel → socket id → entry
	instances map[string]Instance
	claims    map[string]int64 // key → end of window (Unix ms)
}

// NewMemory returns an empty Memory store.
func NewMemory() *Memory {
	return &Memory{
		presence:  make(map[string]map[string]Entry),
		instances: make(map[string]Instance),
		claims:    make(map[string]int64),
	}
}

var _ Store = (*Memory)(nil)

// SetPresence implements Store.
func (m *Memory) SetPresence(_ context.Context, channel string, e Entry) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed {
		return ErrClosed
	}
	ch := m.presence[channel]
	if ch == nil {
		ch = make(map[string]Entry)
		m.presence[channel] = ch
	}
	ch[e.SocketID] = e
	return nil
}

// RemovePresence implements Store.
func (m *Memory) RemovePresence(_ context.Context, channel, socketID string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed {
		return ErrClosed
	}
	if ch := m.presence[channel]; ch != nil {
		delete(ch, socketID)
		if len(ch) == 0 {
			delete(m.presence, channel)
		}
	}
	return nil
}

// Presence implements Store. Expired entries are dropped as they are met.
func (m *Memory) Presence(_ context.Context, channel string) ([]Entry, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed {
		return nil, ErrClosed
	}
	ch := m.presence[channel]
	out := make([]Entry, 0, len(ch))
	for id, e := range ch {
		if !live(e.Expires) {
			delete(ch, id)
			continue
		}
		out = append(out, e)
	}
	if ch != nil && len(ch) == 0 {
		delete(m.presence, channel)
	}
	return out, nil
}

// SetInstance implements Store.
func (m *Memory) SetInstance(_ context.Context, in Instance) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed {
		return ErrClosed
	}
	m.instances[in.ID] = in
	return nil
}

// RemoveInstance implements Store.
func (m *Memory) RemoveInstance(_ context.Context, id string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed {
		return ErrClosed
	}
	delete(m.instances, id)
	return nil
}

// Instances implements Store.
func (m *Memory) Instances(context.Context) ([]Instance, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed {
		return nil, ErrClosed
	}
	out := make([]Instance, 0, len(m.instances))
	for id, in := range m.instances {
		if !live(in.Expires) {
			delete(m.instances, id)
			continue
		}
		out = append(out, in)
	}
	return out, nil
}

// Claim implements Store.
func (m *Memory) Claim(_ context.Context, key string, window time.Duration) (bool, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed {
		return false, ErrClosed
	}
	now := nowMs()
	if len(m.claims) > 1024 {
		for k, end := range m.claims {
			if end <= now {
				delete(m.claims, k)
			}
		}
	}
	if end, ok := m.claims[key]; ok && end > now {
		return false, nil
	}
	m.claims[key] = now + window.Milliseconds()
	return true, nil
}

// Release implements Store.
func (m *Memory) Release(_ context.Context, key string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed {
		return ErrClosed
	}
	delete(m.claims, key)
	return nil
}

// Close implements Store; a closed Memory refuses every call.
func (m *Memory) Close() error {
	m.mu.Lock()
	m.closed = true
	m.mu.Unlock()
	return nil
}
