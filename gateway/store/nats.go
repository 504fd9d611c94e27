package store

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// NATS is a Store on NATS JetStream key-value buckets (nats-server 2.9 or
// later, JetStream enabled).
//
// Buckets, named from the prefix (default "scgw"):
//
//	<prefix>_state  keys p.<channel>.<socket id> (Entry) and i.<id> (Instance)
//	<prefix>_idem   keys of Claim
//
// Channel names are base64url-encoded in keys (key-value keys allow a
// narrow alphabet). Values carry their expiry, as with Redis; the buckets'
// MaxAge removes what nobody refreshes any more.
type NATS struct {
	nc       *nats.Conn
	state    jetstream.KeyValue
	idem     jetstream.KeyValue
	maxClaim time.Duration
}

var _ Store = (*NATS)(nil)

// NATSOptions configures NewNATS.
type NATSOptions struct {
	// Prefix names the buckets (default "scgw"); letters, digits, - and _.
	Prefix string
	// MaxAge is the age after which the state bucket drops a value that
	// was not written again (default 10 minutes). It must exceed the
	// presence and instance lifetimes.
	MaxAge time.Duration
	// MaxClaimWindow is the longest window Claim honours (default 24h).
	MaxClaimWindow time.Duration
}

// NewNATS connects to the NATS server(s) at url and creates or updates
// the buckets.
func NewNATS(ctx context.Context, url string, o NATSOptions) (*NATS, error) {
	if o.Prefix == "" {
		o.Prefix = "scgw"
	}
	if o.MaxAge <= 0 {
		o.MaxAge = 10 * time.Minute
	}
	if o.MaxClaimWindow <= 0 {
		o.MaxClaimWindow = 24 * time.Hour
	}
	nc, err := nats.Connect(url, nats.Timeout(5*time.Second), nats.MaxReconnects(-1), nats.Name("socketcluster gateway store"))
	if err != nil {
		return nil, fmt.Errorf("store: connect to nats %s: %w", url, err)
	}
	js, err := jetstream.New(nc)
	if err != nil {
		nc.Close()
		return nil, fmt.Errorf("store: nats jetstream: %w", err)
	}
	state, err := js.CreateOrUpdateKeyValue(ctx, jetstream.KeyValueConfig{Bucket: o.Prefix + "_state", TTL: o.MaxAge, History: 1})
	if err != nil {
		nc.Close()
		return nil, fmt.Errorf("store: nats bucket %s_state (is JetStream enabled?): %w", o.Prefix, err)
	}
	idem, err := js.CreateOrUpdateKeyValue(ctx, jetstream.KeyValueConfig{Bucket: o.Prefix + "_idem", TTL: o.MaxClaimWindow, History: 1})
	if err != nil {
		nc.Close()
		return nil, fmt.Errorf("store: nats bucket %s_idem: %w", o.Prefix, err)
	}
	return &NATS{nc: nc, state: state, idem: idem, maxClaim: o.MaxClaimWindow}, nil
}

func encodeToken(s string) string {
	if s == "" {
		return "="
	}
	return base64.RawURLEncoding.EncodeToString([]byte(s))
}

func presenceKey(channel, socketID string) string {
	return "p." + encodeToken(channel) + "." + encodeToken(socketID)
}

func (n *NATS) put(ctx context.Context, key string, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	if _, err := n.state.Put(ctx, key, b); err != nil {
		return fmt.Errorf("store: nats: %w", err)
	}
	return nil
}

func (n *NATS) del(ctx context.Context, key string) error {
	if err := n.state.Delete(ctx, key); err != nil && !errors.Is(err, jetstream.ErrKeyNotFound) {
		return fmt.Errorf("store: nats: %w", err)
	}
	return nil
}

// scan returns the live values under the key filter.
func scan[T any](ctx context.Context, n *NATS, filter string, expiresOf func(*T) int64) ([]T, error) {
	w, err := n.state.WatchFiltered(ctx, []string{filter}, jetstream.IgnoreDeletes())
	if err != nil {
		return nil, fmt.Errorf("store: nats: %w", err)
	}
	defer func() { _ = w.Stop() }()
	var out []T
	for {
		select {
		case e, ok := <-w.Updates():
			if !ok {
				return nil, fmt.Errorf("store: nats: watcher ended early")
			}
			if e == nil { // initial values done
				return out, nil
			}
			var x T
			if json.Unmarshal(e.Value(), &x) == nil && live(expiresOf(&x)) {
				out = append(out, x)
			}
		case <-ctx.Done():
			return nil, fmt.Errorf("store: nats: %w", ctx.Err())
		}
	}
}

// SetPresence implements Store.
func (n *NATS) SetPresence(ctx context.Context, channel string, e Entry) error {
	return n.put(ctx, presenceKey(channel, e.SocketID), e)
}

// RemovePresence implements Store.
func (n *NATS) RemovePresence(ctx context.Context, channel, socketID string) error {
	return n.del(ctx, presenceKey(channel, socketID))
}

// Presence implements Store.
func (n *NATS) Presence(ctx context.Context, channel string) ([]Entry, error) {
	return scan(ctx, n, "p."+encodeToken(channel)+".*", func(e *Entry) int64 { return e.Expires })
}

// SetInstance implements Store.
func (n *NATS) SetInstance(ctx context.Context, in Instance) error {
	return n.put(ctx, "i."+encodeToken(in.ID), in)
}

// RemoveInstance implements Store.
func (n *NATS) RemoveInstance(ctx context.Context, id string) error {
	return n.del(ctx, "i."+encodeToken(id))
}

// Instances implements Store.
func (n *NATS) Instances(ctx context.Context) ([]Instance, error) {
	return scan(ctx, n, "i.*", func(in *Instance) int64 { return in.Expires })
}

// Claim implements Store: Create succeeds for a new key; an existing key
// whose window ended is claimed again by an update at its revision, so
// that of two instances racing for it only one wins.
func (n *NATS) Claim(ctx context.Context, key string, window time.Duration) (bool, error) {
	if window > n.maxClaim {
		return false, fmt.Errorf("store: nats: claim window %v exceeds MaxClaimWindow %v", window, n.maxClaim)
	}
	k := "k." + encodeToken(key)
	end := []byte(fmt.Sprint(nowMs() + window.Milliseconds()))
	_, err := n.idem.Create(ctx, k, end)
	if err == nil {
		return true, nil
	}
	if !errors.Is(err, jetstream.ErrKeyExists) {
		return false, fmt.Errorf("store: nats: %w", err)
	}
	e, err := n.idem.Get(ctx, k)
	if err != nil {
		if errors.Is(err, jetstream.ErrKeyNotFound) {
			return false, nil // expired between the two calls: treat as claimed, err on the safe side
		}
		return false, fmt.Errorf("store: nats: %w", err)
	}
	var prev int64
	if _, err := fmt.Sscan(strings.TrimSpace(string(e.Value())), &prev); err == nil && prev > nowMs() {
		return false, nil
	}
	if _, err := n.idem.Update(ctx, k, end, e.Revision()); err != nil {
		if errors.Is(err, jetstream.ErrKeyRevisionMismatch) || errors.Is(err, jetstream.ErrKeyExists) {
			return false, nil // another instance re-claimed it first
		}
		return false, fmt.Errorf("store: nats: %w", err)
	}
	return true, nil
}

// Release implements Store.
func (n *NATS) Release(ctx context.Context, key string) error {
	if err := n.idem.Delete(ctx, "k."+encodeToken(key)); err != nil && !errors.Is(err, jetstream.ErrKeyNotFound) {
		return fmt.Errorf("store: nats: %w", err)
	}
	return nil
}

// Close implements Store.
func (n *NATS) Close() error {
	n.nc.Close()
	return nil
}
