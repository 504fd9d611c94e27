package socketcluster_test

import (
	"context"
	"sync"
	"testing"

	sc "github.com/socketcluster-go/socketcluster"
)

// Socket.Subscribe joins a channel from the server side: the client gets
// its publishes without having asked, and the counts and events follow.
func TestServerSideSubscribe(t *testing.T) {
	t.Parallel()
	ts := newServer(t, sc.Options{SocketChannelLimit: 1})
	c, s := ts.connect(t, nil)
	subs := sc.Listen[sc.SubscriptionEvent](ts).Consumer()
	defer subs.Stop()
	if err := s.Subscribe("news"); err != nil {
		t.Fatal(err)
	}
	if ev := next(t, subs); ev.Channel != "news" || ev.Socket != s {
		t.Fatalf("subscription event %+v", ev)
	}
	if err := s.Subscribe("news"); err != nil {
		t.Fatalf("subscribing twice: %v", err)
	}
	if err := s.Subscribe("other"); err == nil {
		t.Fatal("the channel limit was not applied")
	}
	if got := ts.ChannelCounts(); len(got) != 1 || got["news"] != 1 {
		t.Fatalf("ChannelCounts = %v", got)
	}
	if err := ts.Exchange().InvokePublish(context.Background(), "news", "hello"); err != nil {
		t.Fatal(err)
	}
	c.Expect(`{"event":"#publish","data":{"channel":"news","data":"hello"}}`)
}

// CheckSubscribe runs the subscribe middleware without subscribing.
func TestCheckSubscribe(t *testing.T) {
	t.Parallel()
	ts := newServer(t, sc.Options{}, func(srv *sc.Server) {
		_ = srv.SetMiddleware(sc.MiddlewareInbound, func(_ context.Context, a *sc.Action) error {
			if a.Type == sc.ActionSubscribe && a.Channel == "secret" {
				return sc.NewError("ForbiddenError", "no")
			}
			return nil
		})
	})
	_, s := ts.connect(t, nil)
	if err := ts.CheckSubscribe(s, "public"); err != nil {
		t.Fatalf("public: %v", err)
	}
	err := ts.CheckSubscribe(s, "secret")
	asError(t, err, "ForbiddenError")
	if s.IsSubscribed("public") || len(ts.ChannelCounts()) != 0 {
		t.Fatal("CheckSubscribe subscribed the socket")
	}
}

// UseMiddleware stacks functions after the line's SetMiddleware function:
// all must allow, in order, each seeing the data the previous left.
func TestUseMiddleware(t *testing.T) {
	t.Parallel()
	var mu sync.Mutex
	var order []string
	note := func(s string) { mu.Lock(); order = append(order, s); mu.Unlock() }
	var removeSecond func()
	ts := newServer(t, sc.Options{}, func(srv *sc.Server) {
		_ = srv.SetMiddleware(sc.MiddlewareInbound, func(_ context.Context, a *sc.Action) error {
			if a.Type == sc.ActionPublishIn {
				note("set")
				return a.SetData("set")
			}
			return nil
		})
		if _, err := srv.UseMiddleware(sc.MiddlewareInbound, func(_ context.Context, a *sc.Action) error {
			if a.Type == sc.ActionPublishIn {
				note("first:" + string(a.Data))
				return a.SetData("first")
			}
			return nil
		}); err != nil {
			t.Fatal(err)
		}
		var err error
		removeSecond, err = srv.UseMiddleware(sc.MiddlewareInbound, func(_ context.Context, a *sc.Action) error {
			if a.Type == sc.ActionPublishIn && a.Channel == "closed" {
				return sc.NewError("ClosedError", "no")
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := srv.UseMiddleware("nope", func(context.Context, *sc.Action) error { return nil }); err == nil {
			t.Fatal("an unknown line was accepted")
		}
	})
	c, _ := ts.connect(t, nil)
	r := c.Invoke("#subscribe", map[string]any{"channel": "open"})
	if r.Error != nil {
		t.Fatalf("subscribe: %s", r.Raw)
	}
	if r := c.Invoke("#publish", map[string]any{"channel": "open", "data": "x"}); r.Error != nil {
		t.Fatalf("publish: %s", r.Raw)
	}
	c.ExpectMatch(`\{"event":"#publish","data":\{"channel":"open","data":"first"\}\}`)
	mu.Lock()
	got := append([]string(nil), order...)
	mu.Unlock()
	if len(got) != 2 || got[0] != "set" || got[1] != `first:"set"` {
		t.Fatalf("order %v", got)
	}
	if r := c.Invoke("#publish", map[string]any{"channel": "closed", "data": 1}); r.Error == nil {
		t.Fatal("the stacked refusal was not applied")
	}
	removeSecond()
	if r := c.Invoke("#publish", map[string]any{"channel": "closed", "data": 1}); r.Error != nil {
		t.Fatalf("after remove: %s", r.Raw)
	}
}
