package gateway_test

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	sc "github.com/socketcluster-go/socketcluster"
	"github.com/socketcluster-go/socketcluster/auth"
	"github.com/socketcluster-go/socketcluster/broker"
	"github.com/socketcluster-go/socketcluster/client"
	"github.com/socketcluster-go/socketcluster/gateway"
	"github.com/socketcluster-go/socketcluster/gateway/api"
	"github.com/socketcluster-go/socketcluster/gateway/store"
	"github.com/socketcluster-go/socketcluster/history"
	"github.com/socketcluster-go/socketcluster/internal/sctest"
)

const apiKey = "test-api-key"

var tokenKey = []byte("gateway-test-key")

type node struct {
	srv  *sc.Server
	addr string
	gw   *gateway.Gateway
	api  *httptest.Server
	cli  *api.Client
}

func startNode(t *testing.T, bus *broker.Bus, st store.Store, id string, mod func(*gateway.Options)) *node {
	t.Helper()
	n := &node{}
	n.srv, n.addr = sctest.StartServer(t, sc.Options{AuthKey: tokenKey, Broker: broker.NewMemory(bus)}, func(srv *sc.Server) {
		o := gateway.Options{Store: st, Instance: id, APIKey: apiKey, PresenceChannels: []string{"room*"}, ReportInterval: 200 * time.Millisecond}
		if mod != nil {
			mod(&o)
		}
		gw, err := gateway.New(srv, o)
		if err != nil {
			t.Fatal(err)
		}
		n.gw = gw
	})
	t.Cleanup(n.gw.Close)
	n.api = httptest.NewServer(n.gw.API())
	t.Cleanup(n.api.Close)
	n.cli = &api.Client{BaseURL: n.api.URL, Key: apiKey}
	return n
}

func dial(t *testing.T, n *node, claims map[string]any) *client.Client {
	t.Helper()
	var o client.Options
	if claims != nil {
		j, err := auth.New(auth.Options{Key: tokenKey})
		if err != nil {
			t.Fatal(err)
		}
		if o.AuthToken, _, err = j.Sign(context.Background(), claims, nil); err != nil {
			t.Fatal(err)
		}
	}
	c, err := client.Dial(sctest.Context(t), "ws://"+n.addr+"/socketcluster/", &o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close(1000, "") })
	return c
}

// post sends a raw API request.
func post(t *testing.T, n *node, method, path, key, body string) (int, string) {
	t.Helper()
	req, err := http.NewRequest(method, n.api.URL+path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if key != "" {
		req.Header.Set("X-API-Key", key)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func TestAPIAuthAndBadInput(t *testing.T) {
	t.Parallel()
	n := startNode(t, broker.NewBus(), store.NewMemory(), "one", nil)
	ok := `{"channel":"news","data":1}`
	cases := []struct {
		name, method, path, key, body string
		status                        int
		code                          string
	}{
		{"no key", "POST", "/api/publish", "", ok, 401, "unauthorized"},
		{"wrong key", "POST", "/api/publish", "nope", ok, 401, "unauthorized"},
		{"no key, unknown method", "POST", "/api/nothing", "", "{}", 401, "unauthorized"},
		{"GET", "GET", "/api/info", apiKey, "", 405, "method_not_allowed"},
		{"unknown method", "POST", "/api/nothing", apiKey, "{}", 404, "not_found"},
		{"bad JSON", "POST", "/api/publish", apiKey, `{"channel":`, 400, "invalid_request"},
		{"not an object", "POST", "/api/publish", apiKey, `[1,2]`, 400, "invalid_request"},
		{"unknown field", "POST", "/api/publish", apiKey, `{"channel":"a","data":1,"chanel":"b"}`, 400, "invalid_request"},
		{"trailing data", "POST", "/api/info", apiKey, `{} {}`, 400, "invalid_request"},
		{"huge body", "POST", "/api/publish", apiKey, `{"channel":"a","data":"` + strings.Repeat("x", 2<<20) + `"}`, 413, "too_large"},
		{"no channel", "POST", "/api/publish", apiKey, `{"data":1}`, 400, "invalid_request"},
		{"no data", "POST", "/api/publish", apiKey, `{"channel":"a"}`, 400, "invalid_request"},
		{"both channel forms", "POST", "/api/publish", apiKey, `{"channel":"a","channels":["b"],"data":1}`, 400, "invalid_request"},
		{"broadcast to one channel", "POST", "/api/broadcast", apiKey, `{"channel":"a","data":1}`, 400, "invalid_request"},
		{"empty channel", "POST", "/api/publish", apiKey, `{"channels":[""],"data":1}`, 400, "invalid_request"},
		{"control character", "POST", "/api/publish", apiKey, `{"channel":"a\u0000b","data":1}`, 400, "invalid_request"},
		{"long channel", "POST", "/api/publish", apiKey, `{"channel":"` + strings.Repeat("c", 1025) + `","data":1}`, 400, "invalid_request"},
		{"reserved channel", "POST", "/api/publish", apiKey, `{"channel":"#gateway/control","data":1}`, 400, "invalid_request"},
		{"no target", "POST", "/api/disconnect", apiKey, `{}`, 400, "invalid_request"},
		{"two targets", "POST", "/api/disconnect", apiKey, `{"socketId":"a","user":"b"}`, 400, "invalid_request"},
		{"bad close code", "POST", "/api/disconnect", apiKey, `{"user":"b","code":1000}`, 400, "invalid_request"},
		{"bad scope", "POST", "/api/channels", apiKey, `{"scope":"galaxy"}`, 400, "invalid_request"},
		{"bad pattern", "POST", "/api/channels", apiKey, `{"pattern":"["}`, 400, "invalid_request"},
		{"untracked presence", "POST", "/api/presence", apiKey, `{"channel":"news"}`, 404, "not_found"},
		{"history off", "POST", "/api/history", apiKey, `{"channel":"news"}`, 501, "not_enabled"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			status, body := post(t, n, tc.method, tc.path, tc.key, tc.body)
			var env struct{ Error api.ErrorBody }
			if status != tc.status || json.Unmarshal([]byte(body), &env) != nil || env.Error.Code != tc.code || env.Error.Message == "" {
				t.Fatalf("%s %s: %d %s, want %d %s", tc.method, tc.path, status, body, tc.status, tc.code)
			}
		})
	}
	// Both header forms carry the key.
	req, _ := http.NewRequest("POST", n.api.URL+"/api/info", nil)
	req.Header.Set("Authorization", "apikey "+apiKey)
	resp, err := http.DefaultClient.Do(req)
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("Authorization: apikey: %v %v", resp, err)
	}
	resp.Body.Close()
	if st := n.gw.API().(*api.Handler).Stats(); st.Unauthorized != 3 || st.OK != 1 || st.BadRequests != int64(len(cases)-4) || st.Failures != 1 {
		t.Fatalf("stats %+v", st)
	}
}

func TestAPIPublishAcrossInstances(t *testing.T) {
	t.Parallel()
	bus, st := broker.NewBus(), store.NewMemory()
	one, two := startNode(t, bus, st, "one", nil), startNode(t, bus, st, "two", nil)
	ctx := sctest.Context(t)
	c := dial(t, two, nil)
	a, err := c.Subscribe(ctx, "a")
	if err != nil {
		t.Fatal(err)
	}
	b, err := c.Subscribe(ctx, "b")
	if err != nil {
		t.Fatal(err)
	}
	onA, onB := a.Consumer(), b.Consumer()
	defer onA.Stop()
	defer onB.Stop()

	if res, err := one.cli.Publish(ctx, "a", map[string]any{"n": 1}); err != nil || res.Duplicate || len(res.Channels) != 1 {
		t.Fatalf("publish: %+v %v", res, err)
	}
	if d, err := onA.Next(ctx); err != nil || string(d) != `{"n":1}` {
		t.Fatalf("on a: %s %v", d, err)
	}
	// Many channels, and an idempotency key honoured on every instance.
	res, err := one.cli.PublishMany(ctx, []string{"a", "b"}, "twice?", "key-1")
	if err != nil || res.Duplicate {
		t.Fatalf("first: %+v %v", res, err)
	}
	for _, cl := range []*api.Client{one.cli, two.cli} {
		if res, err := cl.PublishMany(ctx, []string{"a", "b"}, "twice?", "key-1"); err != nil || !res.Duplicate {
			t.Fatalf("retry: %+v %v", res, err)
		}
	}
	if _, err := one.cli.Broadcast(ctx, []string{"a"}, "after"); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{`"twice?"`, `"after"`} {
		if d, err := onA.Next(ctx); err != nil || string(d) != want {
			t.Fatalf("on a: %s %v, want %s", d, err, want)
		}
	}
	if d, err := onB.Next(ctx); err != nil || string(d) != `"twice?"` {
		t.Fatalf("on b: %s %v", d, err)
	}
}

func TestAPIDisconnectAndKick(t *testing.T) {
	t.Parallel()
	bus, st := broker.NewBus(), store.NewMemory()
	one, two := startNode(t, bus, st, "one", nil), startNode(t, bus, st, "two", nil)
	ctx := sctest.Context(t)
	alice1 := dial(t, one, map[string]any{"sub": "alice"})
	alice2 := dial(t, two, map[string]any{"sub": "alice"})
	bob := dial(t, two, map[string]any{"sub": "bob"})
	if _, err := bob.Subscribe(ctx, "room1"); err != nil {
		t.Fatal(err)
	}
	kicked := client.Listen[client.KickOutEvent](bob).Consumer()
	defer kicked.Stop()

	if res, err := one.cli.Kick(ctx, api.Target{User: "bob"}, "room1", "behave"); err != nil || res.Local != 0 {
		t.Fatalf("kick: %+v %v", res, err)
	}
	if ev, err := kicked.Next(ctx); err != nil || ev.Channel != "room1" {
		t.Fatalf("kick event %+v %v", ev, err)
	}
	sctest.Eventually(t, "bob out of room1", func() bool { return len(two.srv.ChannelCounts()) == 0 })

	closes := make(chan int, 2)
	for _, c := range []*client.Client{alice1, alice2} {
		cons := client.Listen[client.CloseEvent](c).Consumer()
		go func() {
			defer cons.Stop()
			if ev, err := cons.Next(ctx); err == nil {
				closes <- int(ev.Code)
			}
		}()
	}
	if res, err := one.cli.Disconnect(ctx, api.Target{User: "alice"}, 4321, "go away"); err != nil || res.Local != 1 {
		t.Fatalf("disconnect: %+v %v", res, err)
	}
	for i := 0; i < 2; i++ {
		select {
		case code := <-closes:
			if code != 4321 {
				t.Fatalf("close code %d", code)
			}
		case <-ctx.Done():
			t.Fatal("alice not disconnected everywhere")
		}
	}
	if bob.State() != client.StateOpen {
		t.Fatal("bob was disconnected too")
	}
	if res, err := two.cli.Disconnect(ctx, api.Target{SocketID: bob.ID()}, 0, ""); err != nil || res.Local != 1 {
		t.Fatalf("disconnect by id: %+v %v", res, err)
	}
}

func TestAPIChannelsPresenceInfo(t *testing.T) {
	t.Parallel()
	bus, st := broker.NewBus(), store.NewMemory()
	one, two := startNode(t, bus, st, "one", nil), startNode(t, bus, st, "two", nil)
	ctx := sctest.Context(t)
	for _, n := range []*node{one, two, two} {
		c := dial(t, n, map[string]any{"sub": "user-" + n.gw.Instance()})
		if _, err := c.Subscribe(ctx, "room1"); err != nil {
			t.Fatal(err)
		}
	}
	local, err := one.cli.Channels(ctx, false, "")
	if err != nil || len(local) != 1 || local["room1"] != 1 {
		t.Fatalf("local channels %v %v", local, err)
	}
	sctest.Eventually(t, "cluster-wide counts", func() bool {
		all, err := one.cli.Channels(ctx, true, "room*")
		return err == nil && len(all) == 1 && all["room1"] == 3
	})
	if none, err := one.cli.Channels(ctx, true, "other*"); err != nil || len(none) != 0 {
		t.Fatalf("filtered: %v %v", none, err)
	}
	sctest.Eventually(t, "presence of room1", func() bool {
		p, err := one.cli.Presence(ctx, "room1")
		return err == nil && p.Count == 3 && p.Users == 2 && len(p.Clients) == 3
	})
	if ps, err := two.cli.PresenceStats(ctx, "room1"); err != nil || ps.Count != 3 || ps.Users != 2 {
		t.Fatalf("presence stats %+v %v", ps, err)
	}
	info, err := one.cli.Info(ctx)
	if err != nil || info.Instance != "one" || len(info.Instances) != 2 {
		t.Fatalf("info %+v %v", info, err)
	}
	var local1 struct {
		Stats sc.Stats `json:"stats"`
	}
	if err := json.Unmarshal(info.Local, &local1); err != nil || local1.Stats.Clients != 1 {
		t.Fatalf("local report %s %v", info.Local, err)
	}
	_, err = one.cli.History(ctx, api.HistoryRequest{Channel: "room1"})
	var ce *api.CallError
	if !errors.As(err, &ce) || ce.Status != 501 {
		t.Fatalf("history: %v", err)
	}
}

// Clients cannot use the gateway's internal channels.
func TestReservedChannels(t *testing.T) {
	t.Parallel()
	n := startNode(t, broker.NewBus(), store.NewMemory(), "one", nil)
	c := dial(t, n, nil)
	ctx := sctest.Context(t)
	_, err := c.Subscribe(ctx, gateway.ControlChannel)
	sctest.AsError(t, err, "InvalidActionError")
	err = c.InvokePublish(ctx, gateway.ControlChannel, map[string]any{"op": "disconnect", "target": map[string]any{"user": "x"}})
	sctest.AsError(t, err, "InvalidActionError")
}

func TestAPIHistory(t *testing.T) {
	t.Parallel()
	var gw *gateway.Gateway
	sctest.StartServer(t, sc.Options{History: []history.Rule{{Patterns: []string{"h.*"}, Size: 3, TTL: time.Minute}}}, func(srv *sc.Server) {
		var err error
		if gw, err = gateway.New(srv, gateway.Options{APIKey: apiKey}); err != nil {
			t.Fatal(err)
		}
	})
	t.Cleanup(gw.Close)
	hs := httptest.NewServer(gw.API())
	t.Cleanup(hs.Close)
	cli := &api.Client{BaseURL: hs.URL, Key: apiKey}
	ctx := sctest.Context(t)
	for i := 1; i <= 4; i++ {
		if _, err := cli.Publish(ctx, "h.a", i); err != nil {
			t.Fatal(err)
		}
	}
	res, err := cli.History(ctx, api.HistoryRequest{Channel: "h.a"})
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Publications) != 3 || string(res.Publications[0].Data) != "2" || string(res.Publications[2].Data) != "4" || res.Offset != res.Publications[2].Offset || res.Recovered != nil {
		t.Fatalf("history %+v", res)
	}
	one := 1
	since := res.Publications[0].Position
	res2, err := cli.History(ctx, api.HistoryRequest{Channel: "h.a", Limit: &one, Since: &since})
	if err != nil || len(res2.Publications) != 1 || string(res2.Publications[0].Data) != "3" || res2.Recovered == nil || !*res2.Recovered {
		t.Fatalf("history since %+v: %+v %v", since, res2, err)
	}
	var ce *api.CallError
	if _, err := cli.History(ctx, api.HistoryRequest{Channel: "nohistory"}); !errors.As(err, &ce) || ce.Status != 404 {
		t.Fatalf("channel without history: %v", err)
	}
	big := 1000
	if _, err := cli.History(ctx, api.HistoryRequest{Channel: "h.a", Limit: &big}); !errors.As(err, &ce) || ce.Status != 400 {
		t.Fatalf("limit over the size: %v", err)
	}
}
