package socketcluster_test

import (
	"context"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	sc "github.com/socketcluster-go/socketcluster"
	"github.com/socketcluster-go/socketcluster/internal/sctest"
)

func startV14(t *testing.T, o sc.Options) (*sc.Server, string) {
	t.Helper()
	return sctest.StartServer(t, o)
}

// connected waits for the socket of the next connection.
func connected(t *testing.T, srv *sc.Server, dial func()) *sc.Socket {
	t.Helper()
	c := sc.Listen[sc.ConnectionEvent](srv).Consumer()
	defer c.Stop()
	dial()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	ev, err := c.Next(ctx)
	if err != nil {
		t.Fatal(err)
	}
	return ev.Socket
}

func TestV14OnAndEmit(t *testing.T) {
	srv, addr := startV14(t, sc.Options{})
	var cl *sctest.Client
	sock := connected(t, srv, func() {
		cl = sctest.Dial(t, addr, &sctest.Options{AutoPong: true})
		cl.Handshake(nil)
	})

	var transmits atomic.Int32
	sock.On("greet", func(data sc.Data, respond func(error, any)) {
		if data.IsAbsent() {
			transmits.Add(1)
			respond(nil, "ignored for transmits")
			return
		}
		var name string
		_ = data.Decode(&name)
		if name == "bad" {
			respond(sc.NewError("GreetError", "no"), nil)
			return
		}
		respond(nil, "hello "+name)
	})
	r := cl.Invoke("greet", "ann")
	if string(r.Data) != `"hello ann"` {
		t.Fatalf("invoke through On: %s", r.Raw)
	}
	r = cl.Invoke("greet", "bad")
	if !strings.Contains(string(r.Error), `"name":"GreetError"`) {
		t.Fatalf("error through On: %s", r.Raw)
	}
	cl.SendText(`{"event":"greet"}`)
	deadline := time.Now().Add(5 * time.Second)
	for transmits.Load() != 1 && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	if transmits.Load() != 1 {
		t.Fatalf("transmit through On not handled")
	}

	// Off: the next invoke is not answered.
	sock.Off("greet")
	cid := cl.NextCid()
	cl.SendText(sctest.EventPacket("greet", "late", cid))
	cl.ExpectNothing(300 * time.Millisecond)

	// Emit with a callback is an invoke; the client's answer comes back.
	got := make(chan string, 1)
	sock.Emit("ask", map[string]int{"q": 1}, func(err error, data sc.Data) {
		if err != nil {
			got <- "error: " + err.Error()
			return
		}
		got <- string(data)
	})
	f := cl.NextText()
	p, ok := sctest.ParsePacket(f)
	if !ok || p.Event == nil || *p.Event != "ask" || p.Cid == nil {
		t.Fatalf("emit sent %s", f)
	}
	cl.SendText(`{"rid":` + strconv.FormatFloat(*p.Cid, 'f', -1, 64) + `,"data":"answer"}`)
	select {
	case v := <-got:
		if v != `"answer"` {
			t.Fatalf("emit callback got %s", v)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("emit callback not called")
	}
	// Emit without a callback is a transmit.
	sock.Emit("note", "x", nil)
	cl.Expect(`{"event":"note","data":"x"}`)
}

func TestV14AddMiddleware(t *testing.T) {
	srv, addr := startV14(t, sc.Options{})
	var (
		mu    sync.Mutex
		order []string
	)
	record := func(s string) { mu.Lock(); order = append(order, s); mu.Unlock() }
	rm1, err := srv.AddMiddleware(sc.MiddlewareEmit, func(req *sc.V14Request, next func(error)) {
		record("first:" + req.Event)
		if req.Event == "secret" {
			next(sc.NewError("EmitBlocked", "not you").With("code", 7))
			return
		}
		next(nil)
	})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := srv.AddMiddleware(sc.MiddlewareEmit, func(req *sc.V14Request, next func(error)) {
		record("second:" + req.Event)
		go next(nil) // next may be called from another goroutine
	}); err != nil {
		t.Fatal(err)
	}
	if _, err := srv.AddMiddleware(sc.MiddlewarePublishIn, func(req *sc.V14Request, next func(error)) {
		req.Data = sc.Data(`"rewritten"`)
		next(nil)
	}); err != nil {
		t.Fatal(err)
	}
	if _, err := srv.AddMiddleware(sc.MiddlewareHandshakeSC, func(req *sc.V14Request, next func(error)) {
		if strings.Contains(req.Request.URL.RawQuery, "no=1") {
			next(sc.NewError("GoAway", "go away").With("statusCode", 4501))
			return
		}
		next(nil)
	}); err != nil {
		t.Fatal(err)
	}
	if _, err := srv.AddMiddleware("nope", func(*sc.V14Request, func(error)) {}); err == nil {
		t.Fatal("unknown type accepted")
	}
	srv.HandleProcedure("open", func(r *sc.Request) { _ = r.End("yes") })

	cl := sctest.Dial(t, addr, &sctest.Options{AutoPong: true})
	cl.Handshake(nil)
	if r := cl.Invoke("open", nil); string(r.Data) != `"yes"` {
		t.Fatalf("allowed emit: %s", r.Raw)
	}
	r := cl.Invoke("secret", nil)
	if !strings.Contains(r.Raw, `"name":"EmitBlocked"`) || !strings.Contains(r.Raw, `"code":7`) {
		t.Fatalf("blocked emit: %s", r.Raw)
	}
	mu.Lock()
	got := strings.Join(order, ",")
	mu.Unlock()
	if got != "first:open,second:open,first:secret" {
		t.Fatalf("chain order %v", got)
	}

	cl.Subscribe("room")
	if r := cl.Invoke("#publish", map[string]any{"channel": "room", "data": "orig"}); r.Error != nil {
		t.Fatalf("publish: %s", r.Raw)
	}
	cl.ExpectSet(`{"event":"#publish","data":{"channel":"room","data":"rewritten"}}`)

	// Removing the first function lets "secret" through.
	rm1()
	srv.HandleProcedure("secret", func(r *sc.Request) { _ = r.End("ok") })
	if r := cl.Invoke("secret", nil); string(r.Data) != `"ok"` {
		t.Fatalf("after remove: %s", r.Raw)
	}

	// handshakeSC with a status code closes with it.
	bad := sctest.Dial(t, addr, &sctest.Options{Query: "no=1"})
	bad.SendText(`{"event":"#handshake","data":{},"cid":1}`)
	resp := bad.NextText()
	if !strings.Contains(resp, `"statusCode":4501`) || !strings.Contains(resp, `"name":"GoAway"`) {
		t.Fatalf("rejected handshake: %s", resp)
	}
	if code, _, _ := bad.ExpectClose(); code != 4501 {
		t.Fatalf("close code %d", code)
	}
}
