package presence_test

import (
	"context"
	"encoding/json"
	"sort"
	"strings"
	"testing"
	"time"

	sc "github.com/socketcluster-go/socketcluster"
	"github.com/socketcluster-go/socketcluster/auth"
	"github.com/socketcluster-go/socketcluster/broker"
	"github.com/socketcluster-go/socketcluster/client"
	"github.com/socketcluster-go/socketcluster/gateway/presence"
	"github.com/socketcluster-go/socketcluster/gateway/store"
	"github.com/socketcluster-go/socketcluster/internal/sctest"
)

var key = []byte("presence-test-key")

// instance is one server with a tracker.
type instance struct {
	srv  *sc.Server
	addr string
	tr   *presence.Tracker
}

func start(t *testing.T, bus *broker.Bus, st store.Store, id string) *instance {
	t.Helper()
	in := &instance{}
	in.srv, in.addr = sctest.StartServer(t, sc.Options{AuthKey: key, Broker: broker.NewMemory(bus)}, func(srv *sc.Server) {
		_ = srv.SetMiddleware(sc.MiddlewareInbound, func(_ context.Context, a *sc.Action) error {
			if a.Type == sc.ActionSubscribe && strings.HasPrefix(a.Channel, "secret") {
				return sc.NewError("ForbiddenError", "not for you")
			}
			return nil
		})
		tr, err := presence.New(srv, presence.Options{Store: st, Instance: id, Channels: []string{"room*", "secret*"}, TTL: 3 * time.Second})
		if err != nil {
			t.Fatal(err)
		}
		in.tr = tr
	})
	t.Cleanup(in.tr.Close) // runs before the server's Close
	return in
}

func token(t *testing.T, claims map[string]any) string {
	j, err := auth.New(auth.Options{Key: key})
	if err != nil {
		t.Fatal(err)
	}
	tok, _, err := j.Sign(context.Background(), claims, nil)
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

func dial(t *testing.T, in *instance, claims map[string]any) *client.Client {
	t.Helper()
	var o client.Options
	if claims != nil {
		o.AuthToken = token(t, claims)
	}
	c, err := client.Dial(sctest.Context(t), "ws://"+in.addr+"/socketcluster/", &o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close(1000, "") })
	return c
}

func nextEvent(t *testing.T, cons *client.Consumer[sc.Data]) presence.Event {
	t.Helper()
	d, err := cons.Next(sctest.Context(t))
	if err != nil {
		t.Fatal(err)
	}
	var ev presence.Event
	if err := json.Unmarshal(d, &ev); err != nil {
		t.Fatalf("%s: %v", d, err)
	}
	return ev
}

func TestPresenceAcrossInstances(t *testing.T) {
	t.Parallel()
	bus, st := broker.NewBus(), store.NewMemory()
	one, two := start(t, bus, st, "one"), start(t, bus, st, "two")
	ctx := sctest.Context(t)

	watcher := dial(t, two, nil)
	comp, err := watcher.Subscribe(ctx, "#presence:room1")
	if err != nil {
		t.Fatal(err)
	}
	events := comp.Consumer()
	defer events.Stop()

	alice := dial(t, one, map[string]any{"sub": "alice", "info": map[string]any{"device": "phone"}})
	ch, err := alice.Subscribe(ctx, "room1")
	if err != nil {
		t.Fatal(err)
	}
	ev := nextEvent(t, events)
	if ev.Type != "join" || ev.Channel != "room1" || ev.User != "alice" || ev.SocketID != alice.ID() || string(ev.Info) != `{"device":"phone"}` {
		t.Fatalf("join event %+v", ev)
	}
	bob := dial(t, two, map[string]any{"username": "bob"})
	if _, err := bob.Subscribe(ctx, "room1"); err != nil {
		t.Fatal(err)
	}
	if ev := nextEvent(t, events); ev.Type != "join" || ev.User != "bob" {
		t.Fatalf("join event %+v", ev)
	}

	// Both instances see both entries: Go API, and the client procedure.
	for _, in := range []*instance{one, two} {
		es, err := in.tr.Presence(ctx, "room1")
		if err != nil {
			t.Fatal(err)
		}
		sort.Slice(es, func(i, j int) bool { return es[i].User < es[j].User })
		if len(es) != 2 || es[0].User != "alice" || es[0].Instance != "one" || es[1].User != "bob" || es[1].Instance != "two" {
			t.Fatalf("presence on %s: %+v", in.addr, es)
		}
	}
	raw, err := watcher.Invoke(ctx, "presence", map[string]any{"channel": "room1"})
	if err != nil {
		t.Fatal(err)
	}
	var ans presence.Answer
	if err := json.Unmarshal(raw, &ans); err != nil || ans.Channel != "room1" || len(ans.Clients) != 2 || ans.Count != 2 || ans.Users != 2 {
		t.Fatalf("procedure answer %s (%v)", raw, err)
	}

	// Leaving, by unsubscribing or disconnecting.
	if err := ch.Unsubscribe(); err != nil {
		t.Fatal(err)
	}
	if ev := nextEvent(t, events); ev.Type != "leave" || ev.User != "alice" {
		t.Fatalf("leave event %+v", ev)
	}
	_ = bob.Close(1000, "")
	if ev := nextEvent(t, events); ev.Type != "leave" || ev.User != "bob" {
		t.Fatalf("leave event %+v", ev)
	}
	if s, err := one.tr.Stats(ctx, "room1"); err != nil || s != (presence.Stats{}) {
		t.Fatalf("stats after leaving: %+v %v", s, err)
	}
}

func TestPresenceGuards(t *testing.T) {
	t.Parallel()
	in := start(t, broker.NewBus(), store.NewMemory(), "solo")
	ctx := sctest.Context(t)
	c := dial(t, in, nil)
	// The companion of a forbidden channel is forbidden too.
	_, err := c.Subscribe(ctx, "#presence:secret1")
	sctest.AsError(t, err, "ForbiddenError")
	_, err = c.Invoke(ctx, "presence", "secret1")
	sctest.AsError(t, err, "ForbiddenError")
	// Untracked channels have no presence.
	_, err = c.Subscribe(ctx, "#presence:other")
	sctest.AsError(t, err, "PresenceError")
	_, err = c.Invoke(ctx, "presence", "other")
	sctest.AsError(t, err, "PresenceError")
	_, err = c.Invoke(ctx, "presence", 42)
	sctest.AsError(t, err, "InvalidArgumentsError")
	// Nobody but the server publishes join and leave events.
	err = c.InvokePublish(ctx, "#presence:room1", map[string]any{"type": "join", "user": "mallory"})
	sctest.AsError(t, err, "PresenceError")
	// The companion is not itself tracked.
	if _, err := c.Subscribe(ctx, "#presence:room1"); err != nil {
		t.Fatal(err)
	}
	if in.tr.Tracked("#presence:room1") {
		t.Fatal("companion channel tracked")
	}
}

// A dead instance's entries expire after the TTL: the instance is gone
// without a word (its tracker never removes anything).
func TestPresenceExpiresWithoutRefresh(t *testing.T) {
	t.Parallel()
	st := store.NewMemory()
	ctx := sctest.Context(t)
	if err := st.SetPresence(ctx, "room9", store.Entry{SocketID: "ghost", Instance: "dead", Expires: store.Expiry(time.Second)}); err != nil {
		t.Fatal(err)
	}
	in := start(t, broker.NewBus(), st, "live")
	c := dial(t, in, nil)
	if _, err := c.Subscribe(ctx, "room9"); err != nil {
		t.Fatal(err)
	}
	sctest.Eventually(t, "the ghost entry to expire", func() bool {
		es, err := in.tr.Presence(ctx, "room9")
		return err == nil && len(es) == 1 && es[0].SocketID == c.ID()
	})
	// The live entry is refreshed past its TTL (3s).
	time.Sleep(4 * time.Second)
	if es, _ := in.tr.Presence(ctx, "room9"); len(es) != 1 {
		t.Fatalf("live entry lost: %+v", es)
	}
}
