// Package dial lets the network brokers honour Start's context with client
// libraries whose connect function takes none (nats.Connect,
// rueidis.NewClient: their dial timeout is kept for later reconnections, so
// it cannot be derived from Start's context).
package dial

import "context"

// WithContext runs connect in a goroutine and returns its result, or
// ctx.Err() as soon as ctx is done; a connection that comes after that is
// closed.
func WithContext[C interface{ Close() }](ctx context.Context, connect func() (C, error)) (C, error) {
	type result struct {
		c   C
		err error
	}
	ch := make(chan result, 1)
	go func() {
		c, err := connect()
		ch <- result{c, err}
	}()
	select {
	case r := <-ch:
		return r.c, r.err
	case <-ctx.Done():
		go func() {
			if r := <-ch; r.err == nil {
				r.c.Close()
			}
		}()
		var zero C
		return zero, ctx.Err()
	}
}
