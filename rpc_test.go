package socketcluster_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	sc "github.com/socketcluster-go/socketcluster"
	"github.com/socketcluster-go/socketcluster/internal/sctest"
	"github.com/socketcluster-go/socketcluster/protocol"
	"github.com/socketcluster-go/socketcluster/stream"
)

type invokeResult struct {
	data sc.Data
	err  error
}

func invokeAsync(s *sc.Socket, event string, data any) <-chan invokeResult {
	ch := make(chan invokeResult, 1)
	go func() {
		d, err := s.Invoke(context.Background(), event, data)
		ch <- invokeResult{d, err}
	}()
	return ch
}

func result(t *testing.T, ch <-chan invokeResult) invokeResult {
	t.Helper()
	select {
	case r := <-ch:
		return r
	case <-time.After(wait):
		t.Fatal("Invoke did not return")
	}
	return invokeResult{}
}

// docs/protocol.md §14.5: the server invokes the client.
func TestServerInvokesClient(t *testing.T) {
	// Not parallel: a 300 ms ack timeout.
	ts := newServer(t, sc.Options{AckTimeout: 300 * time.Millisecond})
	c, s := ts.connect(t, nil)

	t.Run("answer", func(t *testing.T) {
		ch := invokeAsync(s, "clientProc", 5)
		m := c.ExpectMatch(`\{"event":"clientProc","cid":(\d+),"data":5\}`)
		c.SendText(`{"rid":` + m[1] + `,"data":10}`)
		r := result(t, ch)
		if r.err != nil || string(r.data) != "10" {
			t.Fatalf("got %s, %v", r.data, r.err)
		}
	})
	t.Run("answer without data", func(t *testing.T) {
		ch := invokeAsync(s, "clientProcTimeout", sc.Undefined)
		m := c.ExpectMatch(`\{"event":"clientProcTimeout","cid":(\d+)\}`)
		c.SendText(`{"rid":` + m[1] + `}`)
		r := result(t, ch)
		if r.err != nil || r.data != nil {
			t.Fatalf("got %q (nil %v), %v", r.data, r.data == nil, r.err)
		}
	})
	t.Run("answer null and error null", func(t *testing.T) {
		ch := invokeAsync(s, "n", nil)
		m := c.ExpectMatch(`\{"event":"n","cid":(\d+),"data":null\}`)
		c.SendText(`{"rid":` + m[1] + `,"data":null,"error":null}`)
		r := result(t, ch)
		if r.err != nil || string(r.data) != "null" {
			t.Fatalf("got %q, %v", r.data, r.err)
		}
	})
	t.Run("error with name and fields", func(t *testing.T) {
		ch := invokeAsync(s, "clientFail", 5)
		m := c.ExpectMatch(`\{"event":"clientFail","cid":(\d+),"data":5\}`)
		c.SendText(`{"rid":` + m[1] + `,"error":{"message":"client says no","name":"ClientNo","custom":true,"extra":{"a":[1,"b"]}}}`)
		r := result(t, ch)
		e := asError(t, r.err, "ClientNo")
		if e.Message != "client says no" {
			t.Fatalf("message %q", e.Message)
		}
		if v, ok := e.Field("custom"); !ok || v != true {
			t.Fatalf("custom field %v %v", v, ok)
		}
		if v, _ := e.Field("extra"); fmt.Sprint(v) != "map[a:[1 b]]" {
			t.Fatalf("extra field %#v", v)
		}
		if !errors.Is(r.err, &sc.Error{Name: "ClientNo"}) {
			t.Fatal("errors.Is by name")
		}
	})
	t.Run("error without name", func(t *testing.T) {
		ch := invokeAsync(s, "plain", 1)
		m := c.ExpectMatch(`\{"event":"plain","cid":(\d+),"data":1\}`)
		c.SendText(`{"rid":` + m[1] + `,"error":{"message":5}}`)
		e := asError(t, result(t, ch).err, "")
		if e.Message != "Invalid error message format" {
			t.Fatalf("message %q", e.Message)
		}
	})
	t.Run("string error", func(t *testing.T) {
		ch := invokeAsync(s, "str", 1)
		m := c.ExpectMatch(`\{"event":"str","cid":(\d+),"data":1\}`)
		c.SendText(`{"rid":` + m[1] + `,"error":"nope"}`)
		var ve *protocol.ValueError
		if err := result(t, ch).err; !errors.As(err, &ve) || string(ve.Value) != `"nope"` {
			t.Fatalf("got %T %v", err, err)
		}
	})
	t.Run("unknown rid ignored", func(t *testing.T) {
		c.SendText(`{"rid":987654,"data":1}`)
		c.SendText(`{"rid":1.5,"data":1}`)
		c.SendText(`{"rid":-3}`)
		barrier(t, c)
	})
	t.Run("no answer times out", func(t *testing.T) {
		ch := invokeAsync(s, "noHandler", 5)
		c.ExpectMatch(`\{"event":"noHandler","cid":\d+,"data":5\}`)
		e := asError(t, result(t, ch).err, "TimeoutError")
		if e.Message != "Event response for noHandler event timed out" {
			t.Fatalf("message %q", e.Message)
		}
	})
	t.Run("per call ack timeout", func(t *testing.T) {
		start := time.Now()
		_, err := s.InvokeTimeout(context.Background(), "quick", 1, 50*time.Millisecond)
		asError(t, err, "TimeoutError")
		if time.Since(start) > 5*time.Second {
			t.Fatal("InvokeTimeout ignored its timeout")
		}
		c.ExpectMatch(`\{"event":"quick","cid":\d+,"data":1\}`)
	})
	t.Run("context cancelled", func(t *testing.T) {
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		if _, err := s.Invoke(ctx, "cancelled", 1); !errors.Is(err, context.Canceled) {
			t.Fatalf("got %v", err)
		}
		c.ExpectMatch(`\{"event":"cancelled","cid":\d+,"data":1\}`)
	})
	t.Run("late answer after timeout is ignored", func(t *testing.T) {
		ch := invokeAsync(s, "late", 1)
		m := c.ExpectMatch(`\{"event":"late","cid":(\d+),"data":1\}`)
		asError(t, result(t, ch).err, "TimeoutError")
		c.SendText(`{"rid":` + m[1] + `,"data":"too late"}`)
		barrier(t, c)
	})
}

// Pending invokes are rejected with BadConnectionError when the socket
// closes, and invokes on a closed socket fail at once.
func TestServerInvokeSocketClosing(t *testing.T) {
	t.Parallel()
	ts := newServer(t, sc.Options{})
	c, s := ts.connect(t, nil)
	ch := invokeAsync(s, "pending", 1)
	c.ExpectMatch(`\{"event":"pending","cid":\d+,"data":1\}`)
	if err := c.SendClose(4100, "bye"); err != nil {
		t.Fatal(err)
	}
	e := asError(t, result(t, ch).err, "BadConnectionError")
	if e.Message != "Event pending was aborted due to a bad connection" {
		t.Fatalf("message %q", e.Message)
	}
	if typ, _ := e.Field("type"); typ != "disconnect" {
		t.Fatalf("type %v", typ)
	}
	if code, _ := e.Field("code"); fmt.Sprint(code) != "4100" {
		t.Fatalf("code %v", code)
	}
	<-s.Done()
	_, err := s.Invoke(context.Background(), "after", 1)
	asError(t, err, "BadConnectionError")
	err = s.Transmit("after", 1)
	e = asError(t, err, "BadConnectionError")
	if e.Message != "Socket transmit after event was aborted due to a bad connection" {
		t.Fatalf("transmit message %q", e.Message)
	}
}

// Request.End and Request.Error: the exact response frames of docs/protocol.md
// §3.1 and §2.6, and only one answer per request.
func TestRequestAnswers(t *testing.T) {
	t.Parallel()
	type payload struct {
		Name string          `json:"name"`
		Bin  protocol.Binary `json:"bin"`
	}
	answers := map[string]func(r *sc.Request) error{
		"undef":  func(r *sc.Request) error { return r.End(sc.Undefined) },
		"null":   func(r *sc.Request) error { return r.End(nil) },
		"raw":    func(r *sc.Request) error { return r.End(sc.Data(`{"name":"Ann"}`)) },
		"rawmsg": func(r *sc.Request) error { return r.End(json.RawMessage(`[1, 2]`)) },
		"string": func(r *sc.Request) error { return r.End("ok </script>&") },
		"number": func(r *sc.Request) error { return r.End(15.5) },
		"struct": func(r *sc.Request) error { return r.End(payload{Name: "Ann", Bin: protocol.Binary{1, 2, 3}}) },
		"bytes":  func(r *sc.Request) error { return r.End([]byte("hello")) },
		"binary": func(r *sc.Request) error { return r.End(protocol.Binary{1, 2, 3}) },
		"failerr": func(r *sc.Request) error {
			return r.Error(sc.NewError("FailError", "it failed").With("extra", map[string]any{"a": 1}))
		},
		"plainerr":  func(r *sc.Request) error { return r.Error(errors.New("plain")) },
		"stringerr": func(r *sc.Request) error { return r.Error(protocol.StringError("just a string")) },
		"nilerr":    func(r *sc.Request) error { return r.Error(nil) },
		"wrapped":   func(r *sc.Request) error { return r.Error(fmt.Errorf("ctx: %w", sc.NewError("Inner", "in"))) },
		"fields": func(r *sc.Request) error {
			return r.Error(sc.NewError("F", "m").With("stack", "hidden").With("message", "dup").With("n", nil).With("code", 99))
		},
		"unencodable": func(r *sc.Request) error {
			if err := r.End(make(chan int)); err == nil {
				return errors.New("encoding a channel succeeded")
			}
			return r.End("recovered")
		},
	}
	second := make(chan error, 64)
	ts := newServer(t, sc.Options{}, func(srv *sc.Server) {
		for name, fn := range answers {
			srv.HandleProcedure(name, func(r *sc.Request) {
				if err := fn(r); err != nil {
					second <- fmt.Errorf("first answer of %s: %w", name, err)
					return
				}
				if !r.Sent() {
					second <- fmt.Errorf("%s: Sent() false after answering", name)
				}
				second <- r.End("again")
				second <- r.Error(errors.New("again"))
			})
		}
	})
	c, _ := ts.connect(t, nil)
	for _, tc := range []struct{ name, want string }{
		{"undef", `{"rid":%d}`},
		{"null", `{"rid":%d,"data":null}`},
		{"raw", `{"rid":%d,"data":{"name":"Ann"}}`},
		{"rawmsg", `{"rid":%d,"data":[1, 2]}`},
		{"string", `{"rid":%d,"data":"ok </script>&"}`},
		{"number", `{"rid":%d,"data":15.5}`},
		{"struct", `{"rid":%d,"data":{"name":"Ann","bin":{"base64":true,"data":"AQID"}}}`},
		{"bytes", `{"rid":%d,"data":{"base64":true,"data":"aGVsbG8="}}`},
		{"binary", `{"rid":%d,"data":{"base64":true,"data":"AQID"}}`},
		{"failerr", `{"rid":%d,"error":{"message":"it failed","name":"FailError","extra":{"a":1}}}`},
		{"plainerr", `{"rid":%d,"error":{"message":"plain"}}`},
		{"stringerr", `{"rid":%d,"error":"just a string"}`},
		{"nilerr", `{"rid":%d}`},
		{"wrapped", `{"rid":%d,"error":{"message":"in","name":"Inner"}}`},
		{"fields", `{"rid":%d,"error":{"message":"m","name":"F","n":null,"code":99}}`},
		{"unencodable", `{"rid":%d,"data":"recovered"}`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cid := c.NextCid()
			c.SendText(sctest.EventPacket(tc.name, 1, cid))
			c.Expect(fmt.Sprintf(tc.want, int(cid)))
			for range 2 {
				var err error
				select {
				case err = <-second:
				case <-time.After(wait):
					t.Fatal("handler did not report")
				}
				e := asError(t, err, "InvalidActionError")
				if want := fmt.Sprintf("Response to request %d has already been sent", int(cid)); e.Message != want {
					t.Fatalf("second answer: %q, want %q", e.Message, want)
				}
			}
		})
	}
	// Nothing more was sent for the second answers.
	barrier(t, c)
}

// The request of a procedure stream carries what the client sent.
func TestProcedureStream(t *testing.T) {
	t.Parallel()
	ts := newServer(t, sc.Options{})
	c, s := ts.connect(t, nil)
	ctx := ctxT(t)
	got := make(chan *sc.Request, 8)
	done := make(chan struct{})
	cons := s.Procedure("add").Consumer()
	go func() {
		defer close(done)
		n := 0
		for req := range cons.All(ctx) {
			got <- req
			var xs []float64
			if err := req.Data.Decode(&xs); err != nil {
				_ = req.Error(sc.NewError("BadArgs", err.Error()))
			} else {
				_ = req.End(xs[0] + xs[1])
			}
			if n++; n == 2 {
				break // the consumer goes away with the loop
			}
		}
	}()
	c.SendText(`{"event":"add","data":[1,2],"cid":15.5}`)
	c.Expect(`{"rid":15.5,"data":3}`)
	req := <-got
	if req.Procedure != "add" || req.ID != 15.5 || string(req.Data) != "[1,2]" || req.Socket != s {
		t.Fatalf("request %+v", req)
	}
	r := c.Invoke("add", "x")
	if !strings.Contains(r.Raw, `"name":"BadArgs"`) {
		t.Fatalf("bad args: %s", r.Raw)
	}
	<-done
	if st := s.ProcedureConsumerStats("add"); len(st) != 0 {
		t.Fatalf("consumer still registered after break: %+v", st)
	}
	// Nobody consumes "add" now: the invoke is never answered.
	c.SendText(sctest.EventPacket("add", []int{1, 1}, c.NextCid()))
	barrier(t, c)
	c.ExpectNothing(50 * time.Millisecond)
}

func TestHandleProcedureAndReceiver(t *testing.T) {
	t.Parallel()
	notes := make(chan string, 8)
	ts := newServer(t, sc.Options{}, func(srv *sc.Server) {
		srv.HandleProcedure("upper", func(r *sc.Request) {
			var s string
			_ = r.Data.Decode(&s)
			_ = r.End(strings.ToUpper(s))
		})
		srv.HandleReceiver("note", func(s *sc.Socket, d sc.Data) {
			notes <- s.ID() + " " + string(d)
		})
		srv.HandleProcedure("panics", func(r *sc.Request) { panic("boom") })
	})
	errs := sc.Listen[sc.ErrorEvent](ts).Consumer()
	defer errs.Stop()
	c, s := ts.connect(t, nil)

	if r := c.Invoke("upper", "abc"); r.Raw != fmt.Sprintf(`{"rid":%d,"data":"ABC"}`, 2) {
		t.Fatalf("upper: %s", r.Raw)
	}
	c.Transmit("note", map[string]int{"n": 1})
	c.Transmit("note", sctest.Absent)
	if got := <-notes; got != s.ID()+` {"n":1}` {
		t.Fatalf("note: %q", got)
	}
	if got := <-notes; got != s.ID()+" " {
		t.Fatalf("note without data: %q", got)
	}

	// Stream consumers of the same name get the request too; the first
	// answer wins.
	cons := s.Procedure("upper").Consumer()
	defer cons.Stop()
	r := c.Invoke("upper", "x")
	if string(r.Data) != `"X"` {
		t.Fatalf("%s", r.Raw)
	}
	req := next(t, cons)
	if !req.Sent() {
		t.Fatal("the stream's copy of an answered request must report Sent")
	}
	if err := req.End("late"); err == nil {
		t.Fatal("second answer accepted")
	}

	// A panicking handler does not take the server down.
	c.SendText(sctest.EventPacket("panics", 1, c.NextCid()))
	ev := next(t, errs)
	if e := asError(t, ev.Error, "HandlerPanicError"); !strings.Contains(e.Message, "boom") {
		t.Fatalf("panic error %q", e.Message)
	}
	barrier(t, c)

	// Removing a handler: the stream's consumer still gets the request,
	// and nothing has answered it.
	ts.HandleProcedure("upper", nil)
	c.SendText(sctest.EventPacket("upper", "y", c.NextCid()))
	if req := next(t, cons); req.Sent() {
		t.Fatal("a removed handler answered")
	}
	barrier(t, c)
}

// A consumer stats list, its ids, and backpressure on receivers; close
// drains, kill drops (docs/protocol.md §11).
func TestReceiverCloseKillAndBackpressure(t *testing.T) {
	t.Parallel()
	ts := newServer(t, sc.Options{})
	c, s := ts.connect(t, nil)
	ctx := ctxT(t)

	first := s.Receiver("r").Consumer()
	if first.ID() != 1 {
		t.Fatalf("first receiver consumer id %d", first.ID())
	}
	other := s.Receiver("other").Consumer()
	if other.ID() != 2 {
		t.Fatalf("second receiver consumer id %d", other.ID())
	}
	other.Stop()
	if p := s.Procedure("p").Consumer(); p.ID() != 1 {
		t.Fatalf("procedures number their consumers separately: id %d", p.ID())
	} else {
		p.Stop()
	}
	for i := range 5 {
		c.Transmit("r", i)
	}
	c.Transmit("r", sctest.Absent)
	barrier(t, c)
	if bp := first.Backpressure(); bp != 6 {
		t.Fatalf("consumer backpressure %d, want 6", bp)
	}
	if bp := s.ReceiverBackpressure("r"); bp != 6 {
		t.Fatalf("receiver backpressure %d", bp)
	}
	if bp := s.AllReceiversBackpressure(); bp != 6 {
		t.Fatalf("all receivers backpressure %d", bp)
	}
	if bp := s.ReceiverConsumerBackpressure(first.ID()); bp != 6 {
		t.Fatalf("ReceiverConsumerBackpressure %d", bp)
	}
	if s.Backpressure() < 6 {
		t.Fatalf("socket backpressure %d", s.Backpressure())
	}
	st := s.ReceiverConsumerStats("r")
	if b, _ := json.Marshal(st); string(b) != `[{"id":1,"backpressure":6,"stream":"r"}]` {
		t.Fatalf("stats %s", b)
	}
	if !s.HasReceiverConsumer("r", 1) || s.HasReceiverConsumer("other", 1) || !s.HasAnyReceiverConsumer(1) || s.HasAnyReceiverConsumer(99) {
		t.Fatal("HasReceiverConsumer")
	}
	if len(s.AllReceiversConsumerStats()) != 1 {
		t.Fatalf("all stats %+v", s.AllReceiversConsumerStats())
	}

	// Close: the backlog is delivered, then the consumer ends.
	s.CloseReceiver("r")
	var got []string
	for v := range first.All(ctx) {
		got = append(got, string(v))
	}
	if fmt.Sprint(got) != "[0 1 2 3 4 ]" {
		t.Fatalf("after close got %q", got)
	}
	if _, err := first.Next(ctx); !errors.Is(err, stream.ErrEnded) {
		t.Fatalf("Next after close: %v", err)
	}

	// Kill: the backlog is dropped at once.
	second := s.Receiver("r").Consumer()
	if second.ID() != 3 {
		t.Fatalf("ids keep counting: %d", second.ID())
	}
	c.Transmit("r", "a")
	c.Transmit("r", "b")
	barrier(t, c)
	if second.Backpressure() != 2 {
		t.Fatalf("backpressure %d", second.Backpressure())
	}
	s.KillReceiver("r")
	if _, err := second.Next(ctx); !errors.Is(err, stream.ErrEnded) {
		t.Fatalf("Next after kill: %v", err)
	}
	if second.Backpressure() != 0 || s.ReceiverBackpressure("r") != 0 {
		t.Fatalf("backpressure after kill %d", second.Backpressure())
	}

	// A new consumer sees only new items.
	third := s.Receiver("r").Consumer()
	defer third.Stop()
	c.Transmit("r", "new")
	if v := next(t, third); string(v) != `"new"` {
		t.Fatalf("third got %s", v)
	}

	// KillReceiverConsumer ends one consumer only.
	fourth := s.Receiver("r").Consumer()
	s.KillReceiverConsumer(fourth.ID())
	if _, err := fourth.Next(ctx); !errors.Is(err, stream.ErrEnded) {
		t.Fatalf("killed consumer: %v", err)
	}
	c.Transmit("r", "still")
	if v := next(t, third); string(v) != `"still"` {
		t.Fatalf("third got %s", v)
	}

	// A consumer with a timeout.
	timed := s.Receiver("quiet").ConsumerWithTimeout(20 * time.Millisecond)
	defer timed.Stop()
	if _, err := timed.Next(ctx); !errors.Is(err, stream.ErrTimeout) || err.Error() != "Stream consumer iteration timed out" {
		t.Fatalf("timeout: %v", err)
	}
}

// Procedures: close lets a loop answer its backlog; kill drops it (the
// dropped invokes are never answered).
func TestProcedureCloseAndKill(t *testing.T) {
	t.Parallel()
	ts := newServer(t, sc.Options{})
	c, s := ts.connect(t, nil)
	ctx := ctxT(t)
	cons := s.Procedure("p").Consumer()
	for i := range 3 {
		c.SendText(sctest.EventPacket("p", i, float64(100+i)))
	}
	barrier(t, c)
	if bp := s.ProcedureBackpressure("p"); bp != 3 {
		t.Fatalf("procedure backpressure %d", bp)
	}
	s.CloseProcedure("p")
	n := 0
	for req := range cons.All(ctx) {
		_ = req.End(req.Data)
		n++
	}
	if n != 3 {
		t.Fatalf("answered %d after close", n)
	}
	for i := range 3 {
		c.Expect(fmt.Sprintf(`{"rid":%d,"data":%d}`, 100+i, i))
	}

	cons = s.Procedure("p").Consumer()
	c.SendText(sctest.EventPacket("p", 9, 200))
	barrier(t, c)
	s.KillProcedure("p")
	if _, err := cons.Next(ctx); !errors.Is(err, stream.ErrEnded) {
		t.Fatalf("after kill: %v", err)
	}
	c.ExpectNothing(50 * time.Millisecond)
}

// Once waits for the next item.
func TestStreamOnce(t *testing.T) {
	t.Parallel()
	ts := newServer(t, sc.Options{})
	c, s := ts.connect(t, nil)
	got := make(chan sc.Data, 1)
	ready := make(chan struct{})
	go func() {
		close(ready)
		d, err := s.Receiver("once").Once(context.Background())
		if err != nil {
			t.Error(err)
		}
		got <- d
	}()
	<-ready
	// Once registers its consumer inside the goroutine: send until it sees
	// one.
	deadline := time.Now().Add(wait)
	for {
		c.Transmit("once", "x")
		barrier(t, c)
		select {
		case d := <-got:
			if string(d) != `"x"` {
				t.Fatalf("Once got %s", d)
			}
			return
		case <-time.After(10 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			t.Fatal("Once never returned")
		}
	}
}
