// Package store keeps the state that the gateway shares between server
// instances: presence entries (who is subscribed to a channel, on which
// instance), instance records (each instance's channel counts and stats)
// and publish idempotency keys.
//
// Three implementations share one contract (see the conformance tests):
// Memory (one process; instances in that process share it), Redis and NATS
// JetStream key-value. Nothing is authoritative forever: every presence
// entry and instance record carries an expiry and the instance that wrote
// it refreshes it; entries of an instance that died silently (SIGKILL, lost
// network) stop being reported once their expiry passes.
package store

import (
	"context"
	"encoding/json"
	"errors"
	"time"
)

// Entry is one socket present in a channel.
type Entry struct {
	SocketID string          `json:"socketId"`
	User     string          `json:"user,omitempty"` // from the socket's auth token; "" if anonymous
	Info     json.RawMessage `json:"info,omitempty"` // connection info chosen by the application
	Instance string          `json:"instance"`       // id of the instance holding the socket
	// Expires is when the entry stops counting, in Unix milliseconds,
	// unless it is written again.
	Expires int64 `json:"expires"`
}

// Instance is what one server instance says about itself.
type Instance struct {
	ID string `json:"id"`
	// Data is the instance's report (the gateway writes its channel
	// counts and stats there).
	Data json.RawMessage `json:"data"`
	// Expires is when the record stops counting, in Unix milliseconds.
	Expires int64 `json:"expires"`
}

// Store is the shared state. Every method is safe for concurrent use; the
// context bounds the network round trips of the Redis and NATS stores.
type Store interface {
	// SetPresence adds or refreshes e in channel (keyed by e.SocketID).
	SetPresence(ctx context.Context, channel string, e Entry) error
	// RemovePresence removes a socket from channel; removing an absent
	// entry is not an error.
	RemovePresence(ctx context.Context, channel, socketID string) error
	// Presence returns the unexpired entries of channel, in no order.
	Presence(ctx context.Context, channel string) ([]Entry, error)
	// SetInstance writes or refreshes an instance record.
	SetInstance(ctx context.Context, in Instance) error
	// RemoveInstance removes an instance record (at shutdown).
	RemoveInstance(ctx context.Context, id string) error
	// Instances returns the unexpired instance records, in no order.
	Instances(ctx context.Context) ([]Instance, error)
	// Claim reserves key for window: it reports true for the first claim
	// of key, false while an earlier claim is within its window.
	Claim(ctx context.Context, key string, window time.Duration) (bool, error)
	// Release ends the window of a claimed key at once (the claimed work
	// failed and may be retried).
	Release(ctx context.Context, key string) error
	// Close releases the store's connections.
	Close() error
}

// ErrClosed is returned by a store used after Close.
var ErrClosed = errors.New("store: closed")

// nowMs is the clock of expiries, replaceable in tests.
var nowMs = func() int64 { return time.Now().UnixMilli() }

// Expiry returns the expiry, in Unix milliseconds, of an entry written
// now that lives for ttl.
func Expiry(ttl time.Duration) int64 { return nowMs() + ttl.Milliseconds() }

func live(expires int64) bool { return expires > nowMs() }
