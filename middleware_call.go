package socketcluster

import (
	"context"
	"sync"
	"sync/atomic"
	"time"
)

// An asynchronous decision (the handshake, inbound-raw and inbound lines)
// runs the middleware in a goroutine of its own, so that a function that
// ignores its context cannot hold the socket past Options.MiddlewareTimeout:
// at the deadline the action is blocked with a MiddlewareTimeoutError and
// the socket goes on, whatever the function does later.
//
// Every RPC, transmit, subscribe and publish of a server with inbound
// middleware pays for this, so a decision is made of recycled parts: a
// middlewareCall (the copy of the action the function works on, a one-slot
// result channel and an AfterFunc timer, all reused) and a small context of
// its own. The deciding goroutine waits on the result channel alone; the
// timer's function posts the expiry there. What a decision allocates is its
// context and the goroutine (BenchmarkDecideInbound).
//
// Who owns a middlewareCall: the deciding goroutine and the middleware
// goroutine each hold a reference (refs); the last to let go recycles it.
// The timer's function holds none: it only posts to the result channel,
// and a call whose timer could not be stopped is left to the collector
// rather than recycled under a timer that may still fire.

// middlewareCall is one asynchronous decision.
type middlewareCall struct {
	srv     *Server
	line    MiddlewareLine
	fn      *lineFunc
	stacked []stackEntry
	ctx     *middlewareCtx
	a       Action // the copy the function works on
	err     error  // the function's answer, set before result gets true

	state  atomic.Int32 // callRunning → callAnswered or callExpired, once
	refs   atomic.Int32
	result chan bool   // one slot: true answered, false expired
	timer  *time.Timer // AfterFunc(expire)
}

const (
	callRunning int32 = iota
	callAnswered
	callExpired
)

var callPool sync.Pool

func getCall() *middlewareCall {
	if c, ok := callPool.Get().(*middlewareCall); ok {
		return c
	}
	c := &middlewareCall{result: make(chan bool, 1)}
	c.timer = time.AfterFunc(time.Hour, c.expire)
	c.timer.Stop()
	return c
}

// decideAsync runs the middleware on a copy of *a in a goroutine and waits
// for its answer or the deadline; the copy comes back into *a only when
// the answer came in time.
func (srv *Server) decideAsync(line MiddlewareLine, p *lineFunc, stacked []stackEntry, a *Action) error {
	d := srv.opts.MiddlewareTimeout
	ctx := &middlewareCtx{deadline: time.Now().Add(d)}
	c := getCall()
	c.srv, c.line, c.fn, c.stacked, c.ctx, c.a = srv, line, p, stacked, ctx, *a
	c.state.Store(callRunning)
	c.refs.Store(2)
	c.timer.Reset(d)
	go c.run()
	if !<-c.result {
		// Expired: the function still runs on its copy; c is its now.
		ctx.cancel(context.DeadlineExceeded)
		c.release()
		return middlewareTimeoutError(a.Type, d)
	}
	ctx.cancel(context.Canceled)
	*a = c.a
	err := c.err
	if c.timer.Stop() {
		c.release()
	}
	return err
}

func (c *middlewareCall) run() {
	err := c.srv.runMiddleware(c.ctx, c.line, c.fn, c.stacked, true, &c.a)
	if c.state.CompareAndSwap(callRunning, callAnswered) {
		c.err = err
		c.result <- true
	}
	c.release()
}

// expire is the timer's function.
func (c *middlewareCall) expire() {
	if c.state.CompareAndSwap(callRunning, callExpired) {
		c.result <- false
	}
}

// release drops one reference; the last one recycles the call.
func (c *middlewareCall) release() {
	if c.refs.Add(-1) != 0 {
		return
	}
	c.srv, c.fn, c.stacked, c.ctx, c.a, c.err = nil, nil, nil, nil, Action{}, nil
	callPool.Put(c)
}

// middlewareCtx is the context an asynchronous decision's middleware gets:
// its deadline is the decision's; it is cancelled when the decision ends
// (Canceled once the function answered, DeadlineExceeded at the deadline).
// The deciding goroutine is its timer; Done's channel is made only for a
// function that asks for it. It carries no values.
type middlewareCtx struct {
	deadline time.Time

	mu   sync.Mutex
	done chan struct{} // made by Done, closed by cancel
	err  error         // set once by cancel
}

func (x *middlewareCtx) cancel(err error) {
	x.mu.Lock()
	if x.err == nil {
		x.err = err
		if x.done != nil {
			close(x.done)
		}
	}
	x.mu.Unlock()
}

// Deadline implements context.Context.
func (x *middlewareCtx) Deadline() (time.Time, bool) { return x.deadline, true }

// Done implements context.Context.
func (x *middlewareCtx) Done() <-chan struct{} {
	x.mu.Lock()
	defer x.mu.Unlock()
	if x.done == nil {
		if x.err != nil {
			return closedChan
		}
		x.done = make(chan struct{})
	}
	return x.done
}

// Err implements context.Context.
func (x *middlewareCtx) Err() error {
	x.mu.Lock()
	defer x.mu.Unlock()
	return x.err
}

// Value implements context.Context.
func (x *middlewareCtx) Value(any) any { return nil }
