package admin

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	sc "github.com/socketcluster-go/socketcluster"
	"github.com/socketcluster-go/socketcluster/broker"
	"github.com/socketcluster-go/socketcluster/internal/sctest"
)

const password = "correct horse battery"

// syncBuffer collects log output written from handler goroutines.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

type fixture struct {
	srv   *sc.Server
	addr  string // the SocketCluster server
	admin *Admin
	web   *httptest.Server
	log   *syncBuffer
}

// start runs a SocketCluster server with a "login" procedure that sets
// the token {"username": data}, and its admin page.
func start(t *testing.T, opts sc.Options) *fixture {
	t.Helper()
	if opts.AuthKey == nil {
		opts.AuthKey = []byte("a-secret-auth-key-0123456789")
	}
	srv, addr := sctest.StartServer(t, opts, func(srv *sc.Server) {
		srv.HandleProcedure("login", func(r *sc.Request) {
			var name string
			_ = r.Data.Decode(&name)
			if err := r.Socket.SetAuthToken(context.Background(), sc.AuthToken{"username": name}, nil); err != nil {
				_ = r.Error(err)
				return
			}
			_ = r.End("ok")
		})
	})
	logs := &syncBuffer{}
	a, err := New(Config{Server: srv, Password: password, Instance: "node-a",
		Logger: slog.New(slog.NewTextHandler(logs, nil)), ShareInterval: 50 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	web := httptest.NewServer(a)
	t.Cleanup(web.Close)
	return &fixture{srv: srv, addr: addr, admin: a, web: web, log: logs}
}

// browser is an HTTP client with a cookie jar, as a browser would be.
func browser(t *testing.T) *http.Client {
	jar, err := cookiejar.New(nil)
	if err != nil {
		t.Fatal(err)
	}
	return &http.Client{Jar: jar, Timeout: 10 * time.Second}
}

func call(t *testing.T, c *http.Client, method, url string, body any, page bool) (int, string) {
	t.Helper()
	var r io.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		r = bytes.NewReader(b)
	}
	req, err := http.NewRequest(method, url, r)
	if err != nil {
		t.Fatal(err)
	}
	if page {
		req.Header.Set("X-SC-Admin", "1")
	}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func login(t *testing.T, f *fixture) *http.Client {
	t.Helper()
	c := browser(t)
	if code, body := call(t, c, "POST", f.web.URL+"/api/login", map[string]string{"password": password}, true); code != 200 {
		t.Fatalf("log-in: %d %s", code, body)
	}
	return c
}

func TestNewRefusesShortPassword(t *testing.T) {
	srv, _ := sctest.StartServer(t, sc.Options{})
	if _, err := New(Config{Server: srv, Password: "short"}); err == nil || !strings.Contains(err.Error(), "at least 12") {
		t.Fatalf("New with a 5-character password: %v", err)
	}
}

// Without a session the API answers 401; the page itself loads (it shows
// the log-in form) and holds no secret.
func TestRequestsWithoutSessionAreRefused(t *testing.T) {
	f := start(t, sc.Options{})
	c := browser(t)
	for _, p := range []struct{ method, path string }{
		{"GET", "/api/stats"}, {"GET", "/api/sockets?q=x"}, {"POST", "/api/disconnect"}, {"POST", "/api/logout"},
	} {
		if code, body := call(t, c, p.method, f.web.URL+p.path, map[string]string{"id": "x"}, true); code != 401 {
			t.Errorf("%s %s without a session: %d %s", p.method, p.path, code, body)
		}
	}
	// A forged cookie is no session either.
	req, _ := http.NewRequest("GET", f.web.URL+"/api/stats", nil)
	req.AddCookie(&http.Cookie{Name: cookieName, Value: strings.Repeat("ab", 32)})
	if resp, err := http.DefaultClient.Do(req); err != nil || resp.StatusCode != 401 {
		t.Errorf("forged cookie: %v %v", resp.StatusCode, err)
	}
	for _, path := range []string{"/", "/admin.js", "/admin.css"} {
		code, body := call(t, c, "GET", f.web.URL+path, nil, false)
		if code != 200 || strings.Contains(body, password) || strings.Contains(body, "a-secret-auth-key") {
			t.Errorf("GET %s: %d, or it holds a secret", path, code)
		}
		if strings.Contains(body, "http://") || strings.Contains(body, "https://") {
			t.Errorf("GET %s loads something from elsewhere (no CDN allowed)", path)
		}
	}
	if code, _ := call(t, c, "GET", f.web.URL+"/nope", nil, false); code != 404 {
		t.Errorf("unknown path: %d", code)
	}
	if code, _ := call(t, c, "GET", f.web.URL+"/api/login", nil, false); code != 405 {
		t.Errorf("GET /api/login: %d", code)
	}
}

// Wrong passwords are refused and logged; after five from one address
// even the right one is refused (429) until the window passes.
func TestWrongPasswordIsRateLimitedAndLogged(t *testing.T) {
	f := start(t, sc.Options{})
	c := browser(t)
	for i := range 5 {
		code, body := call(t, c, "POST", f.web.URL+"/api/login", map[string]string{"password": "guess " + string(rune('a'+i))}, true)
		if code != 401 || !strings.Contains(body, "Wrong password") {
			t.Fatalf("wrong password %d: %d %s", i, code, body)
		}
	}
	code, body := call(t, c, "POST", f.web.URL+"/api/login", map[string]string{"password": password}, true)
	if code != 429 {
		t.Fatalf("6th attempt (right password) after 5 failures: %d %s", code, body)
	}
	if n := strings.Count(f.log.String(), "admin: wrong password"); n != 5 {
		t.Errorf("%d wrong passwords logged, want 5:\n%s", n, f.log.String())
	}
	if !strings.Contains(f.log.String(), "too many failed attempts") {
		t.Error("the refusal was not logged")
	}
	if strings.Contains(f.log.String(), "guess") || strings.Contains(f.log.String(), password) {
		t.Error("a password attempt was written to the log")
	}
	// Without the page's header, a log-in is refused (a cross-site form
	// cannot send it).
	if code, _ := call(t, browser(t), "POST", f.web.URL+"/api/login", map[string]string{"password": password}, false); code != 403 {
		t.Errorf("log-in without X-SC-Admin: %d", code)
	}
	if code, _ := call(t, browser(t), "POST", f.web.URL+"/api/login", "not an object", true); code == 200 {
		t.Error("a malformed log-in body was accepted")
	}
}

func TestLimiterWindow(t *testing.T) {
	l := newLimiter(2, time.Minute, 3)
	now := time.Unix(1000, 0)
	for _, a := range []string{"x", "x"} {
		if _, ok := l.allow(a, now); !ok {
			t.Fatal("refused before the limit")
		}
		l.fail(a, now)
	}
	if wait, ok := l.allow("x", now.Add(10*time.Second)); ok || wait != 50*time.Second {
		t.Fatalf("third attempt of x: ok=%v wait=%v", ok, wait)
	}
	l.fail("y", now)
	if _, ok := l.allow("z", now); ok {
		t.Fatal("the global limit (3 failures) did not hold for a new address")
	}
	if _, ok := l.allow("x", now.Add(time.Minute)); !ok {
		t.Fatal("still refused after the window")
	}
}

// Logged in: figures, busiest channels, a socket found by id and by user,
// disconnected (the client gets 4500), then gone. No response carries a
// token or the password.
func TestStatsLookupDisconnect(t *testing.T) {
	f := start(t, sc.Options{})
	c := login(t, f)

	alice := sctest.Dial(t, f.addr, nil)
	alice.Handshake(nil)
	if r := alice.Invoke("login", "alice"); r.Error != nil {
		t.Fatalf("login: %s", r.Raw)
	}
	alice.Subscribe("news")
	bob := sctest.Dial(t, f.addr, nil)
	bob.Handshake(nil)
	bob.Subscribe("news")
	bob.Subscribe("sport")

	var st statsResponse
	sctest.Eventually(t, "two clients in the figures", func() bool {
		_, body := call(t, c, "GET", f.web.URL+"/api/stats", nil, false)
		return json.Unmarshal([]byte(body), &st) == nil && st.Self.Clients == 2
	})
	if st.Self.Instance != "node-a" || st.Self.Handshakes != 2 || !st.Self.Ready || !st.Self.BrokerConnected || st.Self.Goroutines == 0 || st.Self.HeapBytes == 0 {
		t.Errorf("figures: %+v", st.Self)
	}
	if len(st.Channels) != 2 || st.Channels[0] != (channelResponse{"news", 2}) || st.Channels[1] != (channelResponse{"sport", 1}) {
		t.Errorf("busiest channels: %+v", st.Channels)
	}
	if len(st.Cluster) != 1 || st.Cluster[0].Instance != "node-a" {
		t.Errorf("cluster of one: %+v", st.Cluster)
	}

	find := func(q string) []socketInfo {
		code, body := call(t, c, "GET", f.web.URL+"/api/sockets?q="+q, nil, false)
		if code != 200 {
			t.Fatalf("lookup %q: %d %s", q, code, body)
		}
		if strings.Contains(body, "eyJ") || strings.Contains(body, password) {
			t.Fatalf("lookup %q shows a token or the password: %s", q, body)
		}
		var r struct{ Sockets []socketInfo }
		_ = json.Unmarshal([]byte(body), &r)
		return r.Sockets
	}
	byUser := find("alice")
	if len(byUser) != 1 || byUser[0].ID != alice.ID || byUser[0].User != "alice" || !byUser[0].Authenticated || byUser[0].ChannelCount != 1 {
		t.Fatalf("lookup by user: %+v", byUser)
	}
	if byID := find(bob.ID); len(byID) != 1 || byID[0].Authenticated || len(byID[0].Channels) != 2 {
		t.Fatalf("lookup by id: %+v", byID)
	}
	if none := find("nobody"); len(none) != 0 {
		t.Fatalf("lookup of nobody: %+v", none)
	}
	if code, _ := call(t, c, "GET", f.web.URL+"/api/sockets?q=", nil, false); code != 400 {
		t.Errorf("empty lookup: %d", code)
	}

	// Disconnect needs the page's header.
	if code, _ := call(t, c, "POST", f.web.URL+"/api/disconnect", map[string]string{"id": alice.ID}, false); code != 403 {
		t.Errorf("disconnect without X-SC-Admin: %d", code)
	}
	if code, body := call(t, c, "POST", f.web.URL+"/api/disconnect", map[string]any{"id": alice.ID, "code": 1006}, true); code != 400 {
		t.Errorf("disconnect with 1006: %d %s", code, body)
	}
	if code, _ := call(t, c, "POST", f.web.URL+"/api/disconnect", map[string]string{"id": "no-such-socket"}, true); code != 404 {
		t.Errorf("disconnect of an unknown socket: %d", code)
	}
	if code, body := call(t, c, "POST", f.web.URL+"/api/disconnect", map[string]string{"id": alice.ID}, true); code != 200 {
		t.Fatalf("disconnect: %d %s", code, body)
	}
	if code, reason, _ := alice.ExpectClose(); code != 4500 || reason != "Disconnected by an administrator" {
		t.Errorf("alice closed with %d %q", code, reason)
	}
	sctest.Eventually(t, "alice gone", func() bool { return len(find(alice.ID)) == 0 && len(find("alice")) == 0 })
	if !strings.Contains(f.log.String(), "admin: disconnected a socket") {
		t.Error("the disconnection was not logged")
	}

	// After log-out the session is gone.
	if code, _ := call(t, c, "POST", f.web.URL+"/api/logout", nil, true); code != 200 {
		t.Fatal("log-out failed")
	}
	if code, _ := call(t, c, "GET", f.web.URL+"/api/stats", nil, false); code != 401 {
		t.Errorf("stats after log-out: %d", code)
	}
}

// Instances sharing a broker see each other's figures when they share the
// admin password, and not otherwise; a client subscribed to the channel
// sees only sealed messages.
func TestClusterFiguresThroughTheBroker(t *testing.T) {
	bus := broker.NewBus()
	mk := func(name, pw string) (*Admin, *sc.Server, string) {
		srv, addr := sctest.StartServer(t, sc.Options{Broker: broker.NewMemory(bus)})
		a, err := New(Config{Server: srv, Password: pw, Instance: name, ShareInterval: 50 * time.Millisecond,
			Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan struct{})
		go func() { defer close(done); _ = a.Run(ctx) }()
		t.Cleanup(func() { cancel(); <-done })
		return a, srv, addr
	}
	a, _, addrA := mk("node-a", password)
	mk("node-b", password)
	mk("node-other", "another admin password")

	spy := sctest.Dial(t, addrA, nil)
	spy.Handshake(nil)
	spy.Subscribe(ClusterChannel)

	sctest.Eventually(t, "node-b in node-a's view", func() bool {
		list := a.peers.list(time.Now(), a.id)
		return len(list) == 1 && list[0].Instance == "node-b"
	})
	time.Sleep(300 * time.Millisecond) // several rounds: node-other is still not there
	list := a.peers.list(time.Now(), a.id)
	if len(list) != 1 || list[0].Instance != "node-b" {
		t.Fatalf("node-a sees %+v", list)
	}
	for range 3 {
		fr := spy.NextFrame()
		if fr.IsPing() {
			continue
		}
		if !strings.Contains(fr.Text(), ClusterChannel) || strings.Contains(fr.Text(), "node-") || strings.Contains(fr.Text(), "clients") {
			t.Fatalf("a subscribed client sees %s", fr.Text())
		}
	}
}
