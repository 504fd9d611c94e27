package proxy_test

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"github.com/socketcluster-go/socketcluster/protocol"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"

	sc "github.com/socketcluster-go/socketcluster"
	"github.com/socketcluster-go/socketcluster/client"
	"github.com/socketcluster-go/socketcluster/gateway/proxy"
	"github.com/socketcluster-go/socketcluster/internal/sctest"
)

// backend is a test backend: handle answers each request by event.
type backend struct {
	*httptest.Server
	mu   sync.Mutex
	reqs []proxy.Request
	// answer returns the status and body for a request.
	answer func(w http.ResponseWriter, r proxy.Request, done <-chan struct{})
}

func newBackend(t *testing.T, answer func(w http.ResponseWriter, r proxy.Request, done <-chan struct{})) *backend {
	b := &backend{answer: answer}
	b.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, hr *http.Request) {
		var r proxy.Request
		body, _ := io.ReadAll(hr.Body)
		if err := json.Unmarshal(body, &r); err != nil || hr.Method != http.MethodPost || hr.Header.Get("Content-Type") != "application/json" {
			t.Errorf("bad proxy request %s %s: %v", hr.Method, body, err)
		}
		b.mu.Lock()
		b.reqs = append(b.reqs, r)
		b.mu.Unlock()
		b.answer(w, r, hr.Context().Done())
	}))
	t.Cleanup(b.Close)
	return b
}

func (b *backend) requests(event string) []proxy.Request {
	b.mu.Lock()
	defer b.mu.Unlock()
	var out []proxy.Request
	for _, r := range b.reqs {
		if r.Event == event {
			out = append(out, r)
		}
	}
	return out
}

func reply(w http.ResponseWriter, body string) {
	w.Header().Set("Content-Type", "application/json")
	_, _ = io.WriteString(w, body)
}

func start(t *testing.T, o proxy.Options) (*sc.Server, string, *proxy.Proxy) {
	var p *proxy.Proxy
	srv, addr := sctest.StartServer(t, sc.Options{}, func(srv *sc.Server) {
		var err error
		if p, err = proxy.New(srv, o); err != nil {
			t.Fatal(err)
		}
	})
	t.Cleanup(p.Close)
	return srv, addr, p
}

func dial(t *testing.T, addr string, header http.Header) (*client.Client, error) {
	c, err := client.Dial(sctest.Context(t), "ws://"+addr+"/socketcluster/", &client.Options{Header: header})
	if c != nil {
		t.Cleanup(func() { _ = c.Close(1000, "") })
	}
	return c, err
}

func socketOf(t *testing.T, srv *sc.Server, id string) *sc.Socket {
	var s *sc.Socket
	sctest.Eventually(t, "the server-side socket", func() bool {
		s = srv.Clients()[id]
		return s != nil
	})
	return s
}

func TestConnectAccepted(t *testing.T) {
	t.Parallel()
	b := newBackend(t, func(w http.ResponseWriter, r proxy.Request, done <-chan struct{}) {
		reply(w, `{"result":{"user":"alice","authToken":{"role":"admin"},"info":{"name":"Alice"},"channels":["inbox/alice"]}}`)
	})
	srv, addr, p := start(t, proxy.Options{ConnectURL: b.URL, Headers: []string{"Cookie", "x-app"}})
	c, err := dial(t, addr, http.Header{"Cookie": {"session=42"}, "X-App": {"test"}, "X-Secret": {"no"}})
	if err != nil {
		t.Fatal(err)
	}
	s := socketOf(t, srv, c.ID())
	sctest.Eventually(t, "the token from the connect result", func() bool {
		tok := c.AuthToken()
		return tok["sub"] == "alice" && tok["role"] == "admin"
	})
	if tok := s.AuthToken(); tok["sub"] != "alice" {
		t.Fatalf("server-side token %v", tok)
	}
	sctest.Eventually(t, "the subscription of the connect result", func() bool { return s.IsSubscribed("inbox/alice") })
	if p.User(c.ID()) != "alice" || string(p.Info(c.ID())) != `{"name":"Alice"}` {
		t.Fatalf("identity %q %s", p.User(c.ID()), p.Info(c.ID()))
	}
	reqs := b.requests("connect")
	if len(reqs) != 1 {
		t.Fatalf("connect requests: %+v", reqs)
	}
	r := reqs[0]
	if r.SocketID != c.ID() || r.RemoteAddress != "127.0.0.1" || r.Headers["Cookie"] != "session=42" || r.Headers["X-App"] != "test" || len(r.Headers) != 2 {
		t.Fatalf("connect request %+v", r)
	}
	if got := p.Stats(); got.OK != 1 {
		t.Fatalf("stats %+v", got)
	}
}

// misbehaviours are the answers of the backend process of
// TestConnectRefusedOrFailed, by path.
var misbehaviours = map[string]func(w http.ResponseWriter, r *http.Request){
	"/error": func(w http.ResponseWriter, r *http.Request) {
		reply(w, `{"error":{"name":"NotLoggedInError","message":"log in first"}}`)
	},
	"/disconnect": func(w http.ResponseWriter, r *http.Request) {
		reply(w, `{"disconnect":{"code":4403,"reason":"banned"}}`)
	},
	"/status-500": func(w http.ResponseWriter, r *http.Request) { http.Error(w, "boom", 500) },
	"/redirect": func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Location", "http://127.0.0.1:1/")
		w.WriteHeader(http.StatusFound)
	},
	"/garbage":             func(w http.ResponseWriter, r *http.Request) { reply(w, `<html>hello</html>`) },
	"/two-answers":         func(w http.ResponseWriter, r *http.Request) { reply(w, `{"result":{},"error":"x"}`) },
	"/empty-object":        func(w http.ResponseWriter, r *http.Request) { reply(w, `{}`) },
	"/bad-result":          func(w http.ResponseWriter, r *http.Request) { reply(w, `{"result":{"user":42}}`) },
	"/bad-disconnect-code": func(w http.ResponseWriter, r *http.Request) { reply(w, `{"disconnect":{"code":1000}}`) },
	"/huge": func(w http.ResponseWriter, r *http.Request) {
		reply(w, `{"result":{"user":"`+strings.Repeat("a", 2<<20)+`"}}`)
	},
	"/slow": func(w http.ResponseWriter, r *http.Request) { <-r.Context().Done() },
	"/nothing": func(w http.ResponseWriter, r *http.Request) {
		hj, _ := w.(http.Hijacker)
		conn, _, _ := hj.Hijack()
		conn.Close()
	},
}

// serveMisbehaviours is the backend process: the test binary run again
// with PROXY_TEST_BACKEND=1. It exits when its standard input closes (the
// test ended or died).
func serveMisbehaviours() {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		panic(err)
	}
	go func() {
		_, _ = io.Copy(io.Discard, os.Stdin)
		os.Exit(0)
	}()
	fmt.Printf("READY %s\n", l.Addr())
	_ = http.Serve(l, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if f := misbehaviours[r.URL.Path]; f != nil {
			f(w, r)
			return
		}
		http.NotFound(w, r)
	}))
}

// startMisbehavingBackend runs the backend process until the test ends
// and returns its base URL.
func startMisbehavingBackend(t *testing.T) string {
	cmd := exec.Command(os.Args[0])
	cmd.Env = append(os.Environ(), "PROXY_TEST_BACKEND=1")
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = stdin.Close(); _ = cmd.Process.Kill(); _ = cmd.Wait() })
	line, err := bufio.NewReader(out).ReadString('\n')
	if err != nil || !strings.HasPrefix(line, "READY ") {
		t.Fatalf("backend process did not start: %q %v", line, err)
	}
	return "http://" + strings.TrimSpace(strings.TrimPrefix(line, "READY "))
}

// Every way a backend process can fail refuses the socket with a clear
// error and never admits it.
func TestConnectRefusedOrFailed(t *testing.T) {
	t.Parallel()
	backend := startMisbehavingBackend(t)
	cases := []struct {
		name     string
		wantErr  string
		wantCode protocol.CloseCode
	}{
		{"error", "NotLoggedInError", protocol.CloseHandshakeRejected},
		{"disconnect", "BackendRefusedError", 4403},
		{"status-500", proxy.ErrNameUnavailable, protocol.CloseHandshakeRejected},
		{"redirect", proxy.ErrNameUnavailable, protocol.CloseHandshakeRejected},
		{"garbage", proxy.ErrNameUnavailable, protocol.CloseHandshakeRejected},
		{"two-answers", proxy.ErrNameUnavailable, protocol.CloseHandshakeRejected},
		{"empty-object", proxy.ErrNameUnavailable, protocol.CloseHandshakeRejected},
		{"bad-result", proxy.ErrNameUnavailable, protocol.CloseHandshakeRejected},
		{"bad-disconnect-code", proxy.ErrNameUnavailable, protocol.CloseHandshakeRejected},
		{"huge", proxy.ErrNameUnavailable, protocol.CloseHandshakeRejected},
		{"slow", proxy.ErrNameTimeout, protocol.CloseHandshakeRejected},
		{"nothing", proxy.ErrNameUnavailable, protocol.CloseHandshakeRejected},
	}
	if len(cases) != len(misbehaviours) {
		t.Fatalf("%d cases for %d misbehaviours", len(cases), len(misbehaviours))
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			srv, addr, p := start(t, proxy.Options{ConnectURL: backend + "/" + tc.name, Timeout: time.Second})
			closes := make(chan protocol.CloseCode, 1)
			c, err := client.New("ws://"+addr+"/socketcluster/", nil)
			if err != nil {
				t.Fatal(err)
			}
			cons := client.Listen[client.CloseEvent](c).Consumer()
			defer cons.Stop()
			go func() {
				if ev, err := cons.Next(sctest.Context(t)); err == nil {
					closes <- ev.Code
				}
			}()
			err = c.Connect(sctest.Context(t))
			var e *sc.Error
			if !errors.As(err, &e) || e.Name != tc.wantErr {
				t.Fatalf("connect error %v, want %s", err, tc.wantErr)
			}
			select {
			case code := <-closes:
				if code != tc.wantCode {
					t.Fatalf("close code %d, want %d", code, tc.wantCode)
				}
			case <-time.After(sctest.DefaultTimeout):
				t.Fatal("no close event")
			}
			if n := srv.ClientsCount(); n != 0 {
				t.Fatalf("%d sockets admitted", n)
			}
			st := p.Stats()
			if st.OK != 0 || st.Refused+st.Unavailable+st.Timeouts != 1 {
				t.Fatalf("stats %+v", st)
			}
		})
	}
}

func TestConnectBackendDown(t *testing.T) {
	t.Parallel()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	url := "http://" + l.Addr().String() + "/connect"
	l.Close()
	srv, addr, p := start(t, proxy.Options{ConnectURL: url})
	_, err = dial(t, addr, nil)
	sctest.AsError(t, err, proxy.ErrNameUnavailable)
	if srv.ClientsCount() != 0 || p.Stats().Unavailable != 1 {
		t.Fatalf("clients %d, stats %+v", srv.ClientsCount(), p.Stats())
	}
}

func TestSubscribePublishRPC(t *testing.T) {
	t.Parallel()
	b := newBackend(t, func(w http.ResponseWriter, r proxy.Request, done <-chan struct{}) {
		switch {
		case r.Event == "subscribe" && strings.HasPrefix(r.Channel, "private/"):
			reply(w, `{"error":{"name":"ForbiddenError","message":"private"}}`)
		case r.Event == "subscribe":
			reply(w, `{"result":{}}`)
		case r.Event == "publish" && r.Channel == "shout":
			var s string
			_ = json.Unmarshal(r.Data, &s)
			b, _ := json.Marshal(map[string]any{"result": map[string]any{"data": strings.ToUpper(s)}})
			reply(w, string(b))
		case r.Event == "publish":
			reply(w, `{"result":{}}`)
		case r.Event == "rpc" && r.Procedure == "add":
			var xs []float64
			_ = json.Unmarshal(r.Data, &xs)
			b, _ := json.Marshal(map[string]any{"result": map[string]any{"data": xs[0] + xs[1]}})
			reply(w, string(b))
		case r.Event == "rpc" && r.Procedure == "fail":
			reply(w, `{"error":"no way"}`)
		case r.Event == "rpc" && r.Procedure == "kick":
			reply(w, `{"disconnect":{"code":4500,"reason":"bye"}}`)
		default:
			http.Error(w, "unexpected", 500)
		}
	})
	_, addr, _ := start(t, proxy.Options{SubscribeURL: b.URL, PublishURL: b.URL, RPCURL: b.URL, RPCProcedures: []string{"add", "fail", "kick"}})
	c, err := dial(t, addr, nil)
	if err != nil {
		t.Fatal(err)
	}
	ctx := sctest.Context(t)
	_, err = c.Subscribe(ctx, "private/x")
	sctest.AsError(t, err, "ForbiddenError")
	ch, err := c.Subscribe(ctx, "shout")
	if err != nil {
		t.Fatal(err)
	}
	data := ch.Consumer()
	defer data.Stop()
	if err := c.InvokePublish(ctx, "shout", "hello"); err != nil {
		t.Fatal(err)
	}
	if d, err := data.Next(ctx); err != nil || string(d) != `"HELLO"` {
		t.Fatalf("rewritten publish %s %v", d, err)
	}
	if sub := b.requests("subscribe"); len(sub) != 2 || sub[1].Channel != "shout" || sub[1].SocketID != c.ID() {
		t.Fatalf("subscribe requests %+v", sub)
	}
	if d, err := c.Invoke(ctx, "add", []int{2, 3}); err != nil || string(d) != "5" {
		t.Fatalf("add: %s %v", d, err)
	}
	_, err = c.Invoke(ctx, "fail", nil)
	sctest.AsError(t, err, "BackendError")
	closed := client.Listen[client.CloseEvent](c).Consumer()
	defer closed.Stop()
	_, err = c.Invoke(ctx, "kick", nil)
	sctest.AsError(t, err, "BackendRefusedError")
	if ev, err := closed.Next(ctx); err != nil || ev.Code != 4500 {
		t.Fatalf("close after a disconnect answer: %+v %v", ev, err)
	}
}

func TestConcurrencyBound(t *testing.T) {
	t.Parallel()
	release := make(chan struct{})
	b := newBackend(t, func(w http.ResponseWriter, r proxy.Request, done <-chan struct{}) {
		if r.Procedure == "slow" {
			select {
			case <-release:
			case <-done:
			}
		}
		reply(w, `{"result":{"data":"ok"}}`)
	})
	defer close(release)
	_, addr, p := start(t, proxy.Options{RPCURL: b.URL, RPCProcedures: []string{"slow", "fast"}, MaxConcurrent: 1, QueueTimeout: time.Second, Timeout: 30 * time.Second})
	c, err := dial(t, addr, nil)
	if err != nil {
		t.Fatal(err)
	}
	ctx := sctest.Context(t)
	slow := make(chan error, 1)
	go func() { _, err := c.Invoke(ctx, "slow", nil); slow <- err }()
	sctest.Eventually(t, "the slow request at the backend", func() bool { return len(b.requests("rpc")) == 1 })
	_, err = c.Invoke(ctx, "fast", nil)
	sctest.AsError(t, err, proxy.ErrNameBusy)
	release <- struct{}{}
	if err := <-slow; err != nil {
		t.Fatal(err)
	}
	if st := p.Stats(); st.Busy != 1 || st.OK != 1 {
		t.Fatalf("stats %+v", st)
	}
	// The slot is free again.
	if d, err := c.Invoke(ctx, "fast", nil); err != nil || string(d) != `"ok"` {
		t.Fatalf("after: %s %v", d, err)
	}
}

func TestTokenRefresh(t *testing.T) {
	t.Parallel()
	var mu sync.Mutex
	refreshes := 0
	b := newBackend(t, func(w http.ResponseWriter, r proxy.Request, done <-chan struct{}) {
		switch r.Event {
		case "connect":
			reply(w, `{"result":{"user":"bob","expireIn":2}}`)
		case "refresh":
			mu.Lock()
			refreshes++
			n := refreshes
			mu.Unlock()
			if n == 1 {
				reply(w, `{"result":{"expireIn":2,"authToken":{"gen":2}}}`)
			} else {
				reply(w, `{"disconnect":{"code":4401,"reason":"session ended"}}`)
			}
		}
	})
	_, addr, _ := start(t, proxy.Options{ConnectURL: b.URL, RefreshURL: b.URL})
	c, err := dial(t, addr, nil)
	if err != nil {
		t.Fatal(err)
	}
	closed := client.Listen[client.CloseEvent](c).Consumer()
	defer closed.Stop()
	sctest.Eventually(t, "the refreshed token", func() bool {
		tok := c.AuthToken()
		return tok["gen"] == float64(2) && tok["sub"] == "bob"
	})
	ev, err := closed.Next(sctest.Context(t))
	if err != nil || ev.Code != 4401 {
		t.Fatalf("close after the refused refresh: %+v %v", ev, err)
	}
	if rs := b.requests("refresh"); len(rs) != 2 || rs[0].User != "bob" {
		t.Fatalf("refresh requests %+v", rs)
	}
}
