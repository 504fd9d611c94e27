package client

import (
	"fmt"
	"testing"
	"time"

	sc "github.com/socketcluster-go/socketcluster"
	"github.com/socketcluster-go/socketcluster/history"
)

func historyServer(t *testing.T, size int) *testServer {
	return newServer(t, sc.Options{History: []history.Rule{{Patterns: []string{"h.*"}, Size: size, TTL: time.Minute}}})
}

func TestRecoverAfterReconnect(t *testing.T) {
	t.Parallel()
	ts := historyServer(t, 100)
	conns := sc.Listen[sc.ConnectionEvent](ts).Consumer()
	defer conns.Stop()
	c := ts.dial(t, &Options{AutoReconnect: true})
	first := nextConnection(t, conns)
	ctx := ctxT(t)
	recs := Listen[RecoveryEvent](c).Consumer()
	defer recs.Stop()
	ch, err := c.Subscribe(ctx, "h.c", Recover())
	if err != nil {
		t.Fatal(err)
	}
	if ev := next(t, recs); ev.Recovered != nil || ev.Position.Offset != 0 {
		t.Fatalf("first recovery event: %+v", ev)
	}
	data := ch.Consumer()
	defer data.Stop()
	for i := 1; i <= 3; i++ {
		if err := ts.Exchange().InvokePublish(ctx, "h.c", i); err != nil {
			t.Fatal(err)
		}
	}
	for i := 1; i <= 3; i++ {
		if d := next(t, data); string(d) != fmt.Sprint(i) {
			t.Fatalf("got %s, want %d", d, i)
		}
	}
	eventually(t, "the position of the 3rd publication", func() bool { p, ok := ch.Position(); return ok && p.Offset == 3 })
	_ = first.Socket.Disconnect(4000, "")
	// Published while the client is away (or reconnecting).
	for i := 4; i <= 8; i++ {
		if err := ts.Exchange().InvokePublish(ctx, "h.c", i); err != nil {
			t.Fatal(err)
		}
	}
	ev := next(t, recs)
	if ev.Recovered == nil || !*ev.Recovered {
		t.Fatalf("recovery event after the reconnect: %+v", ev)
	}
	for i := 4; i <= 8; i++ {
		if d := next(t, data); string(d) != fmt.Sprint(i) {
			t.Fatalf("got %s, want %d (exactly the missed publications, in order)", d, i)
		}
	}
	if p, _ := ch.Position(); p.Offset != 8 {
		t.Fatalf("position %+v", p)
	}
}

func TestRecoverFromTooOld(t *testing.T) {
	t.Parallel()
	ts := historyServer(t, 3)
	c := ts.dial(t, nil)
	ctx := ctxT(t)
	for i := range 6 {
		if err := ts.Exchange().InvokePublish(ctx, "h.old", i); err != nil {
			t.Fatal(err)
		}
	}
	page, err := c.History(ctx, "h.old", -1, nil)
	if err != nil || len(page.Publications) != 3 || page.Top.Offset != 6 || string(page.Publications[0].Data) != "3" {
		t.Fatalf("History: %+v, %v", page, err)
	}
	recs := Listen[RecoveryEvent](c).Consumer()
	defer recs.Stop()
	if _, err := c.Subscribe(ctx, "h.old", RecoverFrom(Position{Offset: 1, Epoch: page.Top.Epoch})); err != nil {
		t.Fatal(err)
	}
	if ev := next(t, recs); ev.Recovered == nil || *ev.Recovered || ev.Position != page.Top {
		t.Fatalf("recovery from a position older than the history: %+v", ev)
	}
	since := page.Publications[0].Position
	page, err = c.History(ctx, "h.old", 3, &since)
	if err != nil || len(page.Publications) != 2 || !page.Recovered {
		t.Fatalf("History since: %+v, %v", page, err)
	}
	if _, err := c.Subscribe(ctx, "h.x", Recover(), WithData("not an object")); err == nil {
		t.Fatal("Recover with non-object data accepted")
	}
	if _, err := c.Subscribe(ctx, "plain", RecoverFrom(Position{Offset: 1, Epoch: "e"})); err == nil {
		t.Fatal("recovery on a channel without history accepted")
	}
}
