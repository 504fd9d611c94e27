package lifecycle

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"

	"github.com/socketcluster-go/socketcluster/broker"
)

type fake struct {
	mu                           sync.Mutex
	m                            Machine
	ctx                          context.Context
	cancel                       context.CancelFunc
	began, ran, aborted, closing int
	stopped                      int
	connect                      func(ctx context.Context) error
}

func newFake(connect func(ctx context.Context) error) *fake {
	f := &fake{connect: connect}
	f.ctx, f.cancel = context.WithCancel(context.Background())
	return f
}

func (f *fake) steps() *Steps {
	return &Steps{
		Name: "fake", Mu: &f.mu, Done: f.ctx, Cancel: f.cancel,
		Begin: func() { f.began++ }, Connect: f.connect, Run: func() { f.ran++ },
		Abort: func() { f.aborted++ }, Closing: func() { f.closing++ }, Stop: func() { f.stopped++ },
	}
}

func TestStartClose(t *testing.T) {
	f := newFake(func(context.Context) error { return nil })
	if err := f.m.Start(context.Background(), f.steps()); err != nil || f.m.Load() != Running {
		t.Fatalf("Start = %v, state %v", err, f.m.Load())
	}
	if err := f.m.Start(context.Background(), f.steps()); err == nil || !strings.Contains(err.Error(), "fake: Start called twice") {
		t.Fatalf("second Start = %v", err)
	}
	f.m.Close(f.steps())
	f.m.Close(f.steps())
	if f.began != 1 || f.ran != 1 || f.aborted != 0 || f.closing != 1 || f.stopped != 1 || f.ctx.Err() == nil {
		t.Fatalf("steps: %+v", f)
	}
	if err := f.m.Start(context.Background(), f.steps()); !errors.Is(err, broker.ErrClosed) {
		t.Fatalf("Start after Close = %v", err)
	}
}

func TestConnectFails(t *testing.T) {
	boom := errors.New("boom")
	f := newFake(func(context.Context) error { return boom })
	if err := f.m.Start(context.Background(), f.steps()); err != boom || f.m.Load() != Closed {
		t.Fatalf("Start = %v, state %v", err, f.m.Load())
	}
	if f.ran != 0 || f.aborted != 1 || f.ctx.Err() == nil {
		t.Fatalf("steps: %+v", f)
	}
}

// Close during Connect cancels Connect's context; Start cleans up (Abort)
// and Close does not Stop a broker that never ran.
func TestCloseDuringStart(t *testing.T) {
	entered := make(chan struct{})
	f := newFake(func(ctx context.Context) error {
		close(entered)
		<-ctx.Done()
		return ctx.Err()
	})
	res := make(chan error, 1)
	go func() { res <- f.m.Start(context.Background(), f.steps()) }()
	<-entered
	f.m.Close(f.steps())
	if err := <-res; err == nil {
		t.Fatal("Start succeeded after Close")
	}
	if f.m.Load() != Closed || f.aborted != 1 || f.stopped != 0 || f.ran != 0 {
		t.Fatalf("state %v, steps %+v", f.m.Load(), f)
	}
}

// Connect succeeding after Close came still ends Closed, with ErrClosed.
func TestCloseRacesSuccessfulConnect(t *testing.T) {
	var f *fake
	f = newFake(func(context.Context) error {
		f.m.Close(f.steps())
		return nil
	})
	if err := f.m.Start(context.Background(), f.steps()); !errors.Is(err, broker.ErrClosed) {
		t.Fatalf("Start = %v", err)
	}
	if f.ran != 0 || f.aborted != 1 || f.m.Load() != Closed {
		t.Fatalf("state %v, steps %+v", f.m.Load(), f)
	}
}
