package store

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/redis/rueidis"
)

// Redis is a Store on a Redis server (5.0 or later; 7 recommended).
//
// Layout, under the prefix (default "scgw:"):
//
//	<prefix>presence:<channel>  hash: socket id → Entry as JSON
//	<prefix>instances           hash: instance id → Instance as JSON
//	<prefix>idem:<key>          string set with NX and an expiry (Claim)
//
// Hash fields cannot expire on their own before Redis 7.4, so each value
// carries its expiry: readers skip expired fields and delete them; the
// hash itself expires when its newest entry does (PEXPIREAT … GT), so a
// channel whose every instance died leaves nothing behind.
type Redis struct {
	c      rueidis.Client
	prefix string
}

var _ Store = (*Redis)(nil)

// RedisOptions configures NewRedis.
type RedisOptions struct {
	// Prefix starts every key (default "scgw:").
	Prefix string
}

// NewRedis connects to the Redis at url ("redis://host:port[/db]",
// "rediss://…", "unix://…").
func NewRedis(url string, o RedisOptions) (*Redis, error) {
	if o.Prefix == "" {
		o.Prefix = "scgw:"
	}
	opt, err := rueidis.ParseURL(url)
	if err != nil {
		return nil, fmt.Errorf("store: redis URL %q: %w", url, err)
	}
	opt.DisableCache = true
	opt.Dialer.Timeout = 5 * time.Second
	c, err := rueidis.NewClient(opt)
	if err != nil {
		return nil, fmt.Errorf("store: connect to redis %s: %w", opt.InitAddress, err)
	}
	return &Redis{c: c, prefix: o.Prefix}, nil
}

func (r *Redis) presenceKey(channel string) string { return r.prefix + "presence:" + channel }
func (r *Redis) instancesKey() string              { return r.prefix + "instances" }

// setExpiring writes field=v in the hash key and makes the hash live at
// least until expires.
func (r *Redis) setExpiring(ctx context.Context, key, field string, v any, expires int64) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	res := r.c.DoMulti(ctx,
		r.c.B().Hset().Key(key).FieldValue().FieldValue(field, string(b)).Build(),
		r.c.B().Pexpireat().Key(key).MillisecondsTimestamp(expires+1000).Gt().Build(),
		// GT never sets an expiry on a key that has none: a new hash.
		r.c.B().Pexpireat().Key(key).MillisecondsTimestamp(expires+1000).Nx().Build(),
	)
	for _, x := range res {
		if err := x.Error(); err != nil {
			return fmt.Errorf("store: redis: %w", err)
		}
	}
	return nil
}

// readExpiring returns the live values of hash key, deleting expired ones.
func readExpiring[T any](ctx context.Context, r *Redis, key string, expiresOf func(*T) int64) ([]T, error) {
	m, err := r.c.Do(ctx, r.c.B().Hgetall().Key(key).Build()).AsStrMap()
	if err != nil {
		return nil, fmt.Errorf("store: redis: %w", err)
	}
	out := make([]T, 0, len(m))
	var stale []string
	for f, v := range m {
		var x T
		if json.Unmarshal([]byte(v), &x) != nil || !live(expiresOf(&x)) {
			stale = append(stale, f)
			continue
		}
		out = append(out, x)
	}
	if len(stale) > 0 {
		_ = r.c.Do(ctx, r.c.B().Hdel().Key(key).Field(stale...).Build()).Error()
	}
	return out, nil
}

// SetPresence implements Store.
func (r *Redis) SetPresence(ctx context.Context, channel string, e Entry) error {
	return r.setExpiring(ctx, r.presenceKey(channel), e.SocketID, e, e.Expires)
}

// RemovePresence implements Store.
func (r *Redis) RemovePresence(ctx context.Context, channel, socketID string) error {
	if err := r.c.Do(ctx, r.c.B().Hdel().Key(r.presenceKey(channel)).Field(socketID).Build()).Error(); err != nil {
		return fmt.Errorf("store: redis: %w", err)
	}
	return nil
}

// Presence implements Store.
func (r *Redis) Presence(ctx context.Context, channel string) ([]Entry, error) {
	return readExpiring(ctx, r, r.presenceKey(channel), func(e *Entry) int64 { return e.Expires })
}

// SetInstance implements Store.
func (r *Redis) SetInstance(ctx context.Context, in Instance) error {
	return r.setExpiring(ctx, r.instancesKey(), in.ID, in, in.Expires)
}

// RemoveInstance implements Store.
func (r *Redis) RemoveInstance(ctx context.Context, id string) error {
	if err := r.c.Do(ctx, r.c.B().Hdel().Key(r.instancesKey()).Field(id).Build()).Error(); err != nil {
		return fmt.Errorf("store: redis: %w", err)
	}
	return nil
}

// Instances implements Store.
func (r *Redis) Instances(ctx context.Context) ([]Instance, error) {
	return readExpiring(ctx, r, r.instancesKey(), func(in *Instance) int64 { return in.Expires })
}

// Claim implements Store with SET key 1 NX PX window.
func (r *Redis) Claim(ctx context.Context, key string, window time.Duration) (bool, error) {
	ms := window.Milliseconds()
	if ms < 1 {
		ms = 1
	}
	err := r.c.Do(ctx, r.c.B().Set().Key(r.prefix+"idem:"+key).Value("1").Nx().PxMilliseconds(ms).Build()).Error()
	if rueidis.IsRedisNil(err) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("store: redis: %w", err)
	}
	return true, nil
}

// Release implements Store.
func (r *Redis) Release(ctx context.Context, key string) error {
	if err := r.c.Do(ctx, r.c.B().Del().Key(r.prefix+"idem:"+key).Build()).Error(); err != nil {
		return fmt.Errorf("store: redis: %w", err)
	}
	return nil
}

// Close implements Store.
func (r *Redis) Close() error {
	r.c.Close()
	return nil
}
