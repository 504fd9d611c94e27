//lint:file-ignore SA1019 these tests exercise the deprecated SocketCluster 14 layer

package socketcluster_test

import (
	"context"
	"errors"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

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
	t.Parallel()
	srv, addr := startV14(t, sc.Options{})
	var cl *sctest.Client
	sock := connected(t, srv, func() {
		cl = sctest.Dial(t, addr, &sctest.Options{AutoPong: true})
		cl.Handshake(nil)
	})

	var transmits atomic.Int32
	_ = sock.On("greet", func(data sc.Data, respond func(error, any)) {
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
	t.Parallel()
	srv, addr := startV14(t, sc.Options{})
	var (
		mu    sync.Mutex
		order []string
	)
	record := func(s string) { mu.Lock(); order = append(order, s); mu.Unlock() }
	rm1, err := srv.AddMiddleware(sc.V14MiddlewareEmit, func(req *sc.V14Request, next func(error)) {
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
	if _, err := srv.AddMiddleware(sc.V14MiddlewareEmit, func(req *sc.V14Request, next func(error)) {
		record("second:" + req.Event)
		go next(nil) // next may be called from another goroutine
	}); err != nil {
		t.Fatal(err)
	}
	if _, err := srv.AddMiddleware(sc.V14MiddlewarePublishIn, func(req *sc.V14Request, next func(error)) {
		req.Data = sc.Data(`"rewritten"`)
		next(nil)
	}); err != nil {
		t.Fatal(err)
	}
	if _, err := srv.AddMiddleware(sc.V14MiddlewareHandshakeSC, func(req *sc.V14Request, next func(error)) {
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

func TestV14ServerOn(t *testing.T) {
	t.Parallel()
	srv, addr := startV14(t, sc.Options{})
	if err := srv.On("nope", func(sc.Event) {}); err == nil || !strings.Contains(err.Error(), "connection") {
		t.Fatalf("unknown server event: %v", err)
	}
	if err := srv.On("connect", func(sc.Event) {}); err == nil {
		t.Fatal("a socket event name accepted by Server.On")
	}
	// "ready" was emitted inside New: a late handler is called at once.
	ready := 0
	if err := srv.On("ready", func(e sc.Event) {
		if _, ok := e.(sc.ReadyEvent); ok {
			ready++
		}
	}); err != nil {
		t.Fatal(err)
	}
	if ready != 1 || !srv.IsReady() {
		t.Fatalf("ready handler called %d times", ready)
	}

	conns := make(chan sc.ConnectionEvent, 4)
	discs := make(chan sc.DisconnectionEvent, 4)
	if err := srv.On("connection", func(e sc.Event) { conns <- e.(sc.ConnectionEvent) }); err != nil {
		t.Fatal(err)
	}
	if err := srv.On("disconnection", func(e sc.Event) { discs <- e.(sc.DisconnectionEvent) }); err != nil {
		t.Fatal(err)
	}
	cl := sctest.Dial(t, addr, &sctest.Options{AutoPong: true})
	hs := cl.Handshake(nil)
	var ev sc.ConnectionEvent
	select {
	case ev = <-conns:
	case <-time.After(wait):
		t.Fatal("no connection handler call")
	}
	if ev.ID != hs.ID || ev.Socket == nil || ev.IsAuthenticated {
		t.Fatalf("connection event %+v, handshake %+v", ev, hs)
	}
	_ = cl.SendClose(4321, "bye")
	select {
	case d := <-discs:
		if d.Code != 4321 || d.Reason != "bye" || d.Socket != ev.Socket {
			t.Fatalf("disconnection event %+v", d)
		}
	case <-time.After(wait):
		t.Fatal("no disconnection handler call")
	}

	// Off: a new connection calls nothing.
	srv.Off("connection")
	cl2 := sctest.Dial(t, addr, &sctest.Options{AutoPong: true})
	cl2.Handshake(nil)
	barrier(t, cl2)
	select {
	case e := <-conns:
		t.Fatalf("handler called after Off: %+v", e)
	default:
	}

	// A panicking handler is reported as a server error, not a crash.
	errs := sc.Listen[sc.ErrorEvent](srv).Consumer()
	defer errs.Stop()
	_ = srv.On("connection", func(sc.Event) { panic("boom") })
	cl3 := sctest.Dial(t, addr, &sctest.Options{AutoPong: true})
	cl3.Handshake(nil)
	asError(t, next(t, errs).Error, "HandlerPanicError")
	barrier(t, cl3)
}

func TestV14SocketOnRoutesOwnEvents(t *testing.T) {
	t.Parallel()
	srv, addr := startV14(t, sc.Options{AuthKey: []byte("k")})
	var cl *sctest.Client
	sock := connected(t, srv, func() {
		cl = sctest.Dial(t, addr, &sctest.Options{AutoPong: true})
		cl.Handshake(nil)
	})
	// The trap of a literal port: socket.on('disconnect') is the socket's
	// event, not a client message. On refuses it and names OnEvent.
	for _, name := range []string{"disconnect", "error", "authenticate", "close", "subscribe"} {
		err := sock.On(name, func(sc.Data, func(error, any)) {})
		if err == nil || !strings.Contains(err.Error(), "OnEvent") {
			t.Fatalf("On(%q): %v", name, err)
		}
	}
	if err := sock.OnEvent("greet", func(sc.Event) {}); err == nil {
		t.Fatal("OnEvent accepted a client message name")
	}

	var (
		mu     sync.Mutex
		events []string
	)
	record := func(e sc.Event) {
		mu.Lock()
		defer mu.Unlock()
		switch e := e.(type) {
		case sc.AuthenticateEvent:
			events = append(events, "authenticate:"+e.AuthToken["user"].(string))
		case sc.SubscribeEvent:
			events = append(events, "subscribe:"+e.Channel)
		case sc.DisconnectEvent:
			events = append(events, "disconnect:"+strconv.Itoa(int(e.Code)))
		case sc.EndEvent:
			events = append(events, "end")
		}
	}
	for _, name := range []string{"authenticate", "subscribe", "disconnect", "end"} {
		if err := sock.OnEvent(name, record); err != nil {
			t.Fatal(err)
		}
	}
	if err := sock.SetAuthToken(context.Background(), sc.AuthToken{"user": "ann"}, nil); err != nil {
		t.Fatal(err)
	}
	cl.Subscribe("room")
	_ = cl.SendClose(4100, "")
	<-sock.Done()
	mu.Lock()
	got := strings.Join(events, ",")
	mu.Unlock()
	if got != "authenticate:ann,subscribe:room,disconnect:4100,end" {
		t.Fatalf("events through OnEvent: %s", got)
	}
}

// Socket.On handlers cost no goroutine: five per socket on many sockets
// leave the goroutine count where it was, and little memory per socket.
func TestV14OnNoGoroutinePerHandler(t *testing.T) {
	// Not parallel: it counts the process's goroutines and stack memory.
	const sockets, handlers = 40, 5
	srv, addr := startV14(t, sc.Options{})
	conns := sc.Listen[sc.ConnectionEvent](srv).Consumer()
	defer conns.Stop()
	clients := make([]*sctest.Client, sockets)
	socks := make([]*sc.Socket, sockets)
	for i := range clients {
		clients[i] = sctest.Dial(t, addr, &sctest.Options{AutoPong: true})
		clients[i].Handshake(nil)
		socks[i] = next(t, conns).Socket
	}
	barrier(t, clients[sockets-1])

	// Goroutines, and bytes allocated (monotonic, so no GC noise) plus
	// stack in use.
	measure := func() (int, uint64, uint64) {
		runtime.GC()
		var ms runtime.MemStats
		runtime.ReadMemStats(&ms)
		return runtime.NumGoroutine(), ms.TotalAlloc, ms.StackInuse
	}
	g0, a0, s0 := measure()
	for _, s := range socks {
		for h := 0; h < handlers; h++ {
			name := "event" + strconv.Itoa(h)
			if err := s.On(name, func(d sc.Data, respond func(error, any)) { respond(nil, name) }); err != nil {
				t.Fatal(err)
			}
		}
	}
	g1, a1, s1 := measure()
	perSocket := (int64(a1-a0) + int64(s1) - int64(s0)) / sockets
	t.Logf("%d On handlers per socket: %+d goroutines in all, %d bytes allocated per socket", handlers, g1-g0, perSocket)
	if g1-g0 > 2 {
		t.Fatalf("registering %d handlers on %d sockets started %d goroutines", handlers, sockets, g1-g0)
	}
	if perSocket > 4096 {
		t.Fatalf("%d bytes per socket for %d handlers", perSocket, handlers)
	}
	for i, c := range clients {
		if r := c.Invoke("event4", i); string(r.Data) != `"event4"` {
			t.Fatalf("handler answer %s", r.Raw)
		}
	}
}

func TestV14PublishInAckData(t *testing.T) {
	t.Parallel()
	srv, addr := startV14(t, sc.Options{})
	if _, err := srv.AddMiddleware(sc.V14MiddlewarePublishIn, func(req *sc.V14Request, next func(error)) {
		if req.Channel == "acked" {
			req.AckData = map[string]any{"seen": req.Channel, "n": 1}
		}
		next(nil)
	}); err != nil {
		t.Fatal(err)
	}
	cl := sctest.Dial(t, addr, &sctest.Options{AutoPong: true})
	cl.Handshake(nil)
	r := cl.Invoke("#publish", map[string]any{"channel": "acked", "data": 1})
	jsonEq(t, string(r.Data), `{"seen":"acked","n":1}`)
	if r.Error != nil {
		t.Fatalf("ack %s", r.Raw)
	}
	// Without AckData the ack stays {"rid":N}, as in v15+.
	r = cl.Invoke("#publish", map[string]any{"channel": "plain", "data": 1})
	if r.Data != nil || r.Error != nil || !strings.HasPrefix(r.Raw, `{"rid":`) || strings.Contains(r.Raw, "data") {
		t.Fatalf("plain ack %s", r.Raw)
	}
}

// The v14 middleware types without a test elsewhere: handshakeWS,
// authenticate, subscribe and publishOut.
func TestV14MiddlewareTypes(t *testing.T) {
	t.Parallel()
	srv, addr := startV14(t, sc.Options{AuthKey: []byte("k")})
	var authSeen atomic.Value
	add := func(typ sc.V14MiddlewareType, fn sc.V14Middleware) {
		t.Helper()
		if _, err := srv.AddMiddleware(typ, fn); err != nil {
			t.Fatal(err)
		}
	}
	add(sc.V14MiddlewareHandshakeWS, func(req *sc.V14Request, next func(error)) {
		if req.Request == nil || req.Socket != nil {
			next(errors.New("handshakeWS request without an HTTP request"))
			return
		}
		if req.Request.URL.Query().Get("ws") == "no" {
			next(sc.NewError("NoWS", "not you"))
			return
		}
		next(nil)
	})
	add(sc.V14MiddlewareAuthenticate, func(req *sc.V14Request, next func(error)) {
		authSeen.Store(req.SignedAuthToken != "" && req.AuthToken != nil && req.Socket != nil)
		if req.AuthToken["user"] == "mallory" {
			next(sc.NewError("AuthBlocked", "no mallory"))
			return
		}
		next(nil)
	})
	add(sc.V14MiddlewareSubscribe, func(req *sc.V14Request, next func(error)) {
		if strings.HasPrefix(req.Channel, "vip/") && req.Socket.AuthToken() == nil {
			next(sc.NewError("SubscribeBlocked", "vip only"))
			return
		}
		next(nil)
	})
	add(sc.V14MiddlewarePublishOut, func(req *sc.V14Request, next func(error)) {
		if req.Channel == "news" && req.Socket.AuthToken() == nil {
			next(sc.ErrBlocked) // silently not delivered to this socket
			return
		}
		if req.Channel == "news" {
			req.Data = sc.Data(`"for members: ` + strings.Trim(string(req.Data), `"`) + `"`)
		}
		next(nil)
	})

	// handshakeWS: the upgrade is refused.
	if _, err := sctest.DialErr(nil, addr, &sctest.Options{Query: "ws=no"}); err == nil {
		t.Fatal("handshakeWS middleware did not refuse the upgrade")
	}

	sign := func(user string) string {
		return sign(t, []byte("k"), jwt.MapClaims{"user": user, "exp": time.Now().Add(time.Hour).Unix()})
	}
	// authenticate: a blocked token leaves the socket unauthenticated.
	bad := sctest.Dial(t, addr, &sctest.Options{AutoPong: true})
	if hs := bad.Handshake(sign("mallory")); hs.IsAuthenticated {
		t.Fatalf("authenticate middleware did not block: %+v", hs)
	}
	if seen, _ := authSeen.Load().(bool); !seen {
		t.Fatal("authenticate request without socket, token or signed token")
	}
	member := sctest.Dial(t, addr, &sctest.Options{AutoPong: true})
	if hs := member.Handshake(sign("ann")); !hs.IsAuthenticated {
		t.Fatalf("authenticate middleware blocked ann: %+v", hs)
	}
	guest := sctest.Dial(t, addr, &sctest.Options{AutoPong: true})
	guest.Handshake(nil)

	// subscribe: vip/ needs a token.
	if r := guest.Invoke("#subscribe", map[string]any{"channel": "vip/lounge"}); !strings.Contains(r.Raw, `"name":"SubscribeBlocked"`) {
		t.Fatalf("guest subscribe: %s", r.Raw)
	}
	member.Subscribe("vip/lounge")

	// publishOut: per subscriber, blocked for the guest, rewritten for the member.
	member.Subscribe("news")
	guest.Subscribe("news")
	if err := srv.Exchange().Publish(context.Background(), "news", "hello"); err != nil {
		t.Fatal(err)
	}
	member.Expect(`{"event":"#publish","data":{"channel":"news","data":"for members: hello"}}`)
	guest.ExpectNothing(300 * time.Millisecond)
}

// Bad input to the v14 layer: nil handlers, a panicking handler, and ack
// data that cannot be encoded are refused or reported, never a crash.
func TestV14BadInput(t *testing.T) {
	t.Parallel()
	srv, addr := startV14(t, sc.Options{})
	if err := srv.On("connection", nil); err == nil {
		t.Fatal("Server.On accepted a nil handler")
	}
	if _, err := srv.AddMiddleware(sc.V14MiddlewarePublishIn, func(req *sc.V14Request, next func(error)) {
		req.AckData = func() {} // not JSON
		next(nil)
	}); err != nil {
		t.Fatal(err)
	}
	errs := sc.Listen[sc.ErrorEvent](srv).Consumer()
	defer errs.Stop()
	var cl *sctest.Client
	sock := connected(t, srv, func() {
		cl = sctest.Dial(t, addr, &sctest.Options{AutoPong: true})
		cl.Handshake(nil)
	})
	if err := sock.On("x", nil); err == nil {
		t.Fatal("Socket.On accepted a nil handler")
	}
	if err := sock.OnEvent("disconnect", nil); err == nil {
		t.Fatal("Socket.OnEvent accepted a nil handler")
	}
	if err := sock.On("explode", func(sc.Data, func(error, any)) { panic("boom") }); err != nil {
		t.Fatal(err)
	}
	cl.Transmit("explode", 1)
	asError(t, next(t, errs).Error, "HandlerPanicError")
	r := cl.Invoke("#publish", map[string]any{"channel": "c", "data": 1})
	if !strings.Contains(r.Raw, "AckData") {
		t.Fatalf("publish with unencodable AckData: %s", r.Raw)
	}
	barrier(t, cl) // the socket still works
}
