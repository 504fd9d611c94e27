package client

import (
	"context"
	"strconv"
	"sync"
	"testing"
	"time"

	sc "github.com/socketcluster-go/socketcluster"
)

// OnPublish sees every publish of the client's channels, in order, and
// none of other channels; InvokePublishAsync returns before the
// acknowledgement and reports it, or the server's refusal, to done.
func TestOnPublishAndInvokePublishAsync(t *testing.T) {
	t.Parallel()
	ts := newServer(t, sc.Options{}, func(srv *sc.Server) {
		_ = srv.SetMiddleware(sc.MiddlewareInbound, func(_ context.Context, a *sc.Action) error {
			if a.Type == sc.ActionPublishIn && a.Channel == "closed" {
				return sc.NewError("ClosedError", "no publishing here")
			}
			return nil
		})
	})
	type pub struct {
		ch   string
		data string
	}
	got := make(chan pub, 200)
	c := ts.dial(t, &Options{OnPublish: func(ch string, d sc.Data) { got <- pub{ch, string(d)} }})
	ctx := ctxT(t)
	if _, err := c.Subscribe(ctx, "a"); err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var errs []error
	var wg sync.WaitGroup
	const n = 100
	for i := range n {
		wg.Add(1)
		if err := c.InvokePublishAsync("a", i, func(err error) {
			mu.Lock()
			errs = append(errs, err)
			mu.Unlock()
			wg.Done()
		}); err != nil {
			t.Fatal(err)
		}
	}
	wg.Add(1)
	if err := c.InvokePublishAsync("not-mine", "x", func(err error) { mu.Lock(); errs = append(errs, err); mu.Unlock(); wg.Done() }); err != nil {
		t.Fatal(err)
	}
	refused := make(chan error, 1)
	if err := c.InvokePublishAsync("closed", 1, func(err error) { refused <- err }); err != nil {
		t.Fatal(err)
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			t.Fatalf("ack: %v", err)
		}
	}
	select {
	case err := <-refused:
		asError(t, err, "ClosedError")
	case <-time.After(wait):
		t.Fatal("no answer to a refused publish")
	}
	for i := range n {
		select {
		case p := <-got:
			if p.ch != "a" || p.data != strconv.Itoa(i) {
				t.Fatalf("publish %d: got %+v", i, p)
			}
		case <-time.After(wait):
			t.Fatalf("publish %d not seen", i)
		}
	}
	barrier(t, c)
	select {
	case p := <-got:
		t.Fatalf("unexpected %+v", p)
	default:
	}
	// On a closed client the call fails at once.
	_ = c.Close(1000, "")
	if err := c.InvokePublishAsync("a", 1, nil); err != ErrClosed {
		t.Fatalf("after Close: %v", err)
	}
}

// An unanswered publish times out after AckTimeout and done hears it.
func TestInvokePublishAsyncTimeout(t *testing.T) {
	t.Parallel()
	ts := newServer(t, sc.Options{}, func(srv *sc.Server) {
		_ = srv.SetMiddleware(sc.MiddlewareInbound, func(ctx context.Context, a *sc.Action) error {
			if a.Type == sc.ActionPublishIn {
				select { // decides long after the client's AckTimeout
				case <-ctx.Done():
				case <-time.After(2 * time.Second):
				}
			}
			return nil
		})
	})
	c := ts.dial(t, &Options{AckTimeout: 200 * time.Millisecond})
	res := make(chan error, 1)
	if err := c.InvokePublishAsync("a", 1, func(err error) { res <- err }); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-res:
		asError(t, err, "TimeoutError")
	case <-time.After(wait):
		t.Fatal("no timeout")
	}
}
