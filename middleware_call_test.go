package socketcluster

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"testing"
	"time"
)

func newDecideServer(t *testing.T, timeout time.Duration, fn Middleware) *Server {
	t.Helper()
	srv, err := New(Options{MiddlewareTimeout: timeout})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = srv.Close(context.Background()) })
	if err := srv.SetMiddleware(MiddlewareInbound, fn); err != nil {
		t.Fatal(err)
	}
	return srv
}

// The context a middleware gets has the decision's deadline and is
// cancelled once the decision is made, as context.WithTimeout's would be.
func TestDecideContextCancelledAfterAnswer(t *testing.T) {
	t.Parallel()
	var got context.Context
	var done <-chan struct{}
	srv := newDecideServer(t, time.Minute, func(ctx context.Context, a *Action) error {
		got, done = ctx, ctx.Done()
		if ctx.Err() != nil {
			return errors.New("context already ended while deciding")
		}
		return a.SetData("changed")
	})
	before := time.Now()
	a := &Action{Type: ActionInvoke, Procedure: "p"}
	if err := srv.runInbound(nil, a); err != nil {
		t.Fatal(err)
	}
	if string(a.Data) != `"changed"` {
		t.Fatalf("data %s, want the middleware's", a.Data)
	}
	if dl, ok := got.Deadline(); !ok || dl.Before(before.Add(time.Minute)) || dl.After(time.Now().Add(time.Minute)) {
		t.Fatalf("deadline %v %v, want a minute from the call", dl, ok)
	}
	if !errors.Is(got.Err(), context.Canceled) {
		t.Fatalf("Err after the answer = %v, want Canceled", got.Err())
	}
	select {
	case <-done:
	default:
		t.Fatal("Done not closed after the answer")
	}
	select {
	case <-got.Done(): // asked only after the end: closed at once
	default:
		t.Fatal("Done asked after the end is not closed")
	}
	if got.Value("k") != nil {
		t.Fatal("Value not nil")
	}
}

// At the deadline the context ends with DeadlineExceeded, the action is
// blocked with a MiddlewareTimeoutError, and what the function does to its
// copy of the action afterwards does not reach the caller's.
func TestDecideExpires(t *testing.T) {
	t.Parallel()
	ctxErr := make(chan error, 1)
	late := make(chan struct{})
	srv := newDecideServer(t, 50*time.Millisecond, func(ctx context.Context, a *Action) error {
		<-ctx.Done()
		ctxErr <- ctx.Err()
		<-late
		a.Procedure = "late"
		return a.SetData("late")
	})
	a := &Action{Type: ActionInvoke, Procedure: "p", Data: Data(`1`)}
	err := srv.runInbound(nil, a)
	var e *Error
	if !errors.As(err, &e) || e.Name != "MiddlewareTimeoutError" {
		t.Fatalf("err %v, want a MiddlewareTimeoutError", err)
	}
	if got := <-ctxErr; !errors.Is(got, context.DeadlineExceeded) {
		t.Fatalf("ctx.Err %v, want DeadlineExceeded", got)
	}
	close(late)
	time.Sleep(20 * time.Millisecond) // let the late function write its copy
	if a.Procedure != "p" || string(a.Data) != "1" {
		t.Fatalf("caller's action changed by a late middleware: %+v", a)
	}
}

// Decisions recycle their parts: under concurrency, with answers in time
// and expiries mixed, every caller gets its own answer and never another's
// (run with -race).
func TestDecideRecycledCallsKeepTheirAnswers(t *testing.T) {
	t.Parallel()
	srv := newDecideServer(t, 20*time.Millisecond, func(ctx context.Context, a *Action) error {
		i, _ := strconv.Atoi(a.Procedure)
		switch i % 3 {
		case 0: // expires (unless the machine is too busy to run the timer), then returns late
			time.Sleep(60 * time.Millisecond)
			return a.SetData("late " + a.Procedure)
		case 1:
			return NewError("Blocked", a.Procedure)
		default:
			return a.SetData("ok " + a.Procedure)
		}
	})
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	for w := range 8 {
		wg.Go(func() {
			for j := range 45 {
				i := w*1000 + j
				name := strconv.Itoa(i)
				a := &Action{Type: ActionInvoke, Procedure: name, Data: Data(`0`)}
				err := srv.runInbound(nil, a)
				var e *Error
				timedOut := errors.As(err, &e) && e.Name == "MiddlewareTimeoutError"
				switch {
				case timedOut && string(a.Data) == "0" && a.Procedure == name:
					// allowed for any call on a loaded machine
				case i%3 == 0 && (err != nil || string(a.Data) != `"late `+name+`"`):
					// Meant to expire; on a loaded machine the timer can fire
					// after the late answer, which then counts, but it must
					// be this call's own.
					errs <- fmt.Errorf("call %s: %v, data %s: want a timeout or its own late answer", name, err, a.Data)
					return
				case i%3 == 1 && (!errors.As(err, &e) || e.Name != "Blocked" || e.Message != name):
					errs <- fmt.Errorf("call %s: error %v, want its own Blocked error", name, err)
					return
				case i%3 == 2 && (err != nil || string(a.Data) != `"ok `+name+`"`):
					errs <- fmt.Errorf("call %s: %v, data %s, want its own data", name, err, a.Data)
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}

// An immediate middleware runs in the caller with no deadline, decides as
// any other (allow, change data, block), and a panic in it blocks the
// action with a MiddlewareError; with a stacked function on the line the
// decision goes back to a goroutine with the deadline.
func TestImmediateMiddleware(t *testing.T) {
	t.Parallel()
	srv, err := New(Options{MiddlewareTimeout: time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = srv.Close(context.Background()) })
	var hasDeadline bool
	if err := srv.SetImmediateMiddleware(MiddlewareInbound, func(ctx context.Context, a *Action) error {
		_, hasDeadline = ctx.Deadline()
		switch a.Procedure {
		case "blocked":
			return NewError("BlockedError", "no")
		case "panic":
			panic("boom")
		}
		return a.SetData("seen")
	}); err != nil {
		t.Fatal(err)
	}
	if err := srv.SetMiddleware(MiddlewareInbound, func(context.Context, *Action) error { return nil }); err == nil {
		t.Fatal("a second function on the line was accepted")
	}
	a := &Action{Type: ActionInvoke, Procedure: "p"}
	if err := srv.runInbound(nil, a); err != nil || string(a.Data) != `"seen"` || hasDeadline {
		t.Fatalf("allow: err %v, data %s, deadline %v", err, a.Data, hasDeadline)
	}
	var e *Error
	if err := srv.runInbound(nil, &Action{Type: ActionInvoke, Procedure: "blocked"}); !errors.As(err, &e) || e.Name != "BlockedError" {
		t.Fatalf("block: %v", err)
	}
	if err := srv.runInbound(nil, &Action{Type: ActionInvoke, Procedure: "panic"}); !errors.As(err, &e) || e.Name != "MiddlewareError" {
		t.Fatalf("panic: %v", err)
	}
	remove, err := srv.UseMiddleware(MiddlewareInbound, func(context.Context, *Action) error { return nil })
	if err != nil {
		t.Fatal(err)
	}
	if err := srv.runInbound(nil, &Action{Type: ActionInvoke, Procedure: "p"}); err != nil || !hasDeadline {
		t.Fatalf("with a stacked function: err %v, deadline %v (want one)", err, hasDeadline)
	}
	remove()
}

// RemoveAllMiddleware14 takes AddMiddleware's "publish" alias, and the
// count that lets servers without v14 middleware skip its lock follows
// additions and removals exactly.
func TestV14MiddlewareCount(t *testing.T) {
	t.Parallel()
	srv, err := New(Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = srv.Close(context.Background()) })
	fn := func(*V14Request, func(error)) {}
	remove, err := srv.AddMiddleware(V14MiddlewareEmit, fn)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := srv.AddMiddleware("publish", fn); err != nil {
		t.Fatal(err)
	}
	if _, err := srv.AddMiddleware(V14MiddlewarePublishIn, fn); err != nil {
		t.Fatal(err)
	}
	if n := srv.v14.used.Load(); n != 3 || !srv.v14.hasLine(MiddlewareInbound) {
		t.Fatalf("after 3 additions: count %d, inbound line %v", n, srv.v14.hasLine(MiddlewareInbound))
	}
	srv.RemoveAllMiddleware14("publish")
	remove()
	remove() // a second call removes nothing
	if n := srv.v14.used.Load(); n != 0 || srv.v14.hasLine(MiddlewareInbound) || len(srv.v14.chain(V14MiddlewarePublishIn)) != 0 {
		t.Fatalf("after removing all: count %d, inbound line %v", n, srv.v14.hasLine(MiddlewareInbound))
	}
}
