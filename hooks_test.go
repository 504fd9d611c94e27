package socketcluster_test

import (
	"context"
	"testing"

	sc "github.com/socketcluster-go/socketcluster"
)

// Socket.Subscribe joins a channel from the server side: the client gets
// its publishes without having asked, and the counts and events follow.
func TestServerSideSubscribe(t *testing.T) {
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
