package dial

import (
	"context"
	"errors"
	"testing"
	"time"
)

type conn struct{ closed chan struct{} }

func (c *conn) Close() { close(c.closed) }

func TestWithContext(t *testing.T) {
	c := &conn{closed: make(chan struct{})}
	got, err := WithContext(context.Background(), func() (*conn, error) { return c, nil })
	if got != c || err != nil {
		t.Fatalf("got %v, %v", got, err)
	}

	// ctx ends first: WithContext returns at once, and closes the
	// connection that comes later.
	ctx, cancel := context.WithCancel(context.Background())
	release := make(chan struct{})
	late := &conn{closed: make(chan struct{})}
	cancel()
	got, err = WithContext(ctx, func() (*conn, error) { <-release; return late, nil })
	if got != nil || !errors.Is(err, context.Canceled) {
		t.Fatalf("got %v, %v", got, err)
	}
	close(release)
	select {
	case <-late.closed:
	case <-time.After(10 * time.Second):
		t.Fatal("the late connection was not closed")
	}
}
