package socketcluster_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	sc "github.com/socketcluster-go/socketcluster"
	"github.com/socketcluster-go/socketcluster/internal/sctest"
	"github.com/socketcluster-go/socketcluster/protocol"
)

func TestSetMiddlewareRules(t *testing.T) {
	t.Parallel()
	srv, err := sc.New(sc.Options{Logger: quietLogger})
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close(context.Background())
	allow := func(context.Context, *sc.Action) error { return nil }
	if srv.HasMiddleware(sc.MiddlewareInbound) {
		t.Fatal("HasMiddleware on a new server")
	}
	if err := srv.SetMiddleware(sc.MiddlewareInbound, allow); err != nil {
		t.Fatal(err)
	}
	if !srv.HasMiddleware(sc.MiddlewareInbound) {
		t.Fatal("HasMiddleware false after SetMiddleware")
	}
	e := asError(t, srv.SetMiddleware(sc.MiddlewareInbound, allow), "InvalidActionError")
	if e.Message != "Middleware inbound type has already been set" {
		t.Fatalf("message %q", e.Message)
	}
	e = asError(t, srv.SetMiddleware("bogus", allow), "InvalidArgumentsError")
	if e.Message != "Middleware bogus type is not supported" {
		t.Fatalf("message %q", e.Message)
	}
	asError(t, srv.SetMiddleware(sc.MiddlewareOutbound, nil), "InvalidArgumentsError")
	srv.RemoveMiddleware(sc.MiddlewareInbound)
	if srv.HasMiddleware(sc.MiddlewareInbound) {
		t.Fatal("RemoveMiddleware")
	}
	if err := srv.SetMiddleware(sc.MiddlewareInbound, allow); err != nil {
		t.Fatalf("set after remove: %v", err)
	}
}

// Inbound middleware: what it sees, and what the client gets when it
// blocks (docs/protocol.md §8.2–8.4).
func TestInboundMiddleware(t *testing.T) {
	// Not parallel: a 150 ms middleware timeout.
	actions := make(chan sc.Action, 64)
	release := make(chan struct{})
	ts := newServer(t, sc.Options{MiddlewareTimeout: 150 * time.Millisecond}, func(srv *sc.Server) {
		err := srv.SetMiddleware(sc.MiddlewareInbound, func(ctx context.Context, a *sc.Action) error {
			if a.Type != sc.ActionAuthenticate {
				actions <- *a
			}
			name := a.Procedure + a.Receiver + a.Channel
			switch {
			case name == "blockedProc":
				return sc.NewError("BlockedError", "blocked proc").With("code", 99)
			case name == "silentProc":
				return sc.ErrBlocked
			case name == "silentWrapped":
				return sc.Silent(sc.NewError("Secret", "server only"))
			case name == "silentField":
				return sc.NewError("Secret", "server only").With("silent", true)
			case name == "stringProc":
				return protocol.StringError("a string")
			case name == "plainProc":
				return errors.New("plain")
			case name == "panics":
				panic("boom")
			case name == "hangs":
				<-release // ignores ctx: never returns within the test
				return nil
			case name == "waitsForCtx":
				<-ctx.Done()
				return ctx.Err()
			case strings.HasPrefix(name, "rewrite"):
				return a.SetData(map[string]string{"rewritten": string(a.Data)})
			case strings.HasPrefix(name, "forbidden"):
				return sc.NewError("ForbiddenError", "forbidden channel")
			case strings.HasPrefix(name, "nopub") && a.Type == sc.ActionPublishIn:
				return sc.NewError("ReadOnlyError", "read-only channel")
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	})
	t.Cleanup(func() { close(release) }) // runs before the server's close
	notes := make(chan string, 8)
	ts.HandleReceiver("note", func(_ *sc.Socket, d sc.Data) { notes <- string(d) })
	ts.HandleReceiver("rewriteNote", func(_ *sc.Socket, d sc.Data) { notes <- string(d) })
	ts.HandleReceiver("blockedProc", func(_ *sc.Socket, d sc.Data) { notes <- "blocked transmit reached " + string(d) })
	c, s := ts.connect(t, nil)
	errs := sc.Listen[sc.ErrorEvent](s).Consumer()
	defer errs.Stop()
	action := func() sc.Action {
		t.Helper()
		select {
		case a := <-actions:
			return a
		case <-time.After(wait):
			t.Fatal("no action")
		}
		return sc.Action{}
	}

	t.Run("invoke allowed", func(t *testing.T) {
		r := c.Invoke("echo", map[string]int{"a": 1})
		if string(r.Data) != `{"a":1}` {
			t.Fatalf("%s", r.Raw)
		}
		a := action()
		if a.Type != sc.ActionInvoke || a.Procedure != "echo" || string(a.Data) != `{"a":1}` || a.Socket != s || a.AuthTokenExpiredError != nil {
			t.Fatalf("action %+v", a)
		}
	})
	t.Run("transmit allowed, absent data", func(t *testing.T) {
		c.Transmit("note", sctest.Absent)
		if got := <-notes; got != "" {
			t.Fatalf("note %q", got)
		}
		if a := action(); a.Type != sc.ActionTransmit || a.Receiver != "note" || a.Data != nil {
			t.Fatalf("action %+v (data nil %v)", a, a.Data == nil)
		}
	})
	for _, tc := range []struct{ proc, want string }{
		{"blockedProc", `{"message":"blocked proc","name":"BlockedError","code":99}`},
		{"silentProc", `{"message":"The invoke AGAction was blocked by inbound middleware","name":"SilentMiddlewareBlockedError","type":"inbound"}`},
		{"silentWrapped", `{"message":"The invoke AGAction was blocked by inbound middleware","name":"SilentMiddlewareBlockedError","type":"inbound"}`},
		{"silentField", `{"message":"The invoke AGAction was blocked by inbound middleware","name":"SilentMiddlewareBlockedError","type":"inbound"}`},
		{"stringProc", `"a string"`},
		{"plainProc", `{"message":"plain"}`},
		{"panics", `{"message":"inbound middleware panicked: boom","name":"MiddlewareError"}`},
		{"hangs", `{"message":"The invoke AGAction was not decided by middleware within 150ms","name":"MiddlewareTimeoutError"}`},
		{"waitsForCtx", `{"message":"The invoke AGAction was not decided by middleware within 150ms","name":"MiddlewareTimeoutError"}`},
	} {
		t.Run("invoke "+tc.proc, func(t *testing.T) {
			r := c.Invoke(tc.proc, 1)
			if string(r.Error) != tc.want || r.Data != nil {
				t.Fatalf("got %s\nwant error %s", r.Raw, tc.want)
			}
			action()
			ev := next(t, errs)
			switch tc.proc {
			case "silentWrapped", "silentField":
				// The server's event keeps the original error.
				asError(t, ev.Error, "Secret")
			case "silentProc":
				asError(t, ev.Error, "SilentMiddlewareBlockedError")
			}
			// The socket keeps working.
			barrier(t, c)
			action()
		})
	}
	t.Run("transmit blocked", func(t *testing.T) {
		c.Transmit("blockedProc", "x")
		barrier(t, c)
		action()
		action()
		select {
		case n := <-notes:
			t.Fatalf("receiver reached: %s", n)
		default:
		}
		asError(t, next(t, errs).Error, "BlockedError")
	})
	t.Run("data rewritten", func(t *testing.T) {
		ts.HandleProcedure("rewriteEcho", func(r *sc.Request) { _ = r.End(r.Data) })
		r := c.Invoke("rewriteEcho", 5)
		if string(r.Data) != `{"rewritten":"5"}` {
			t.Fatalf("%s", r.Raw)
		}
		action()
		c.Transmit("rewriteNote", "x")
		if got := <-notes; got != `{"rewritten":"\"x\""}` {
			t.Fatalf("note %s", got)
		}
		action()
	})
	t.Run("subscribe", func(t *testing.T) {
		subs := sc.Listen[sc.SubscribeEvent](s).Consumer()
		defer subs.Stop()
		c.SendText(`{"event":"#subscribe","data":{"channel":"forbidden/x"},"cid":500}`)
		c.Expect(`{"rid":500,"error":{"message":"forbidden channel","name":"ForbiddenError"}}`)
		if a := action(); a.Type != sc.ActionSubscribe || a.Channel != "forbidden/x" {
			t.Fatalf("action %+v", a)
		}
		next(t, errs)
		if s.IsSubscribed("forbidden/x") {
			t.Fatal("subscribed despite the block")
		}
		c.SendText(`{"event":"#subscribe","data":{"channel":"rewrite/ch","data":{"d":1},"waitForAuth":true},"cid":501}`)
		c.Expect(`{"rid":501}`)
		a := action()
		if a.Channel != "rewrite/ch" || string(a.Data) != `{"d":1}` || !a.WaitForAuth {
			t.Fatalf("subscribe action %+v", a)
		}
		ev := next(t, subs)
		jsonEq(t, string(ev.SubscriptionOptions), `{"waitForAuth":true,"data":{"rewritten":"{\"d\":1}"}}`)
	})
	t.Run("publish", func(t *testing.T) {
		other, _ := ts.connect(t, nil)
		other.Subscribe("nopub/x")
		other.Subscribe("rewrite/pub")
		action()
		action()
		c.SendText(`{"event":"#publish","data":{"channel":"nopub/x","data":1},"cid":600}`)
		c.Expect(`{"rid":600,"error":{"message":"read-only channel","name":"ReadOnlyError"}}`)
		if a := action(); a.Type != sc.ActionPublishIn || a.Channel != "nopub/x" || string(a.Data) != "1" {
			t.Fatalf("action %+v", a)
		}
		next(t, errs)
		c.SendText(`{"event":"#publish","data":{"channel":"nopub/x","data":2}}`) // no cid: silence
		barrier(t, c)
		action()
		action()
		next(t, errs)
		c.SendText(`{"event":"#publish","data":{"channel":"rewrite/pub","data":"x"},"cid":601}`)
		c.Expect(`{"rid":601}`)
		action()
		other.Expect(`{"event":"#publish","data":{"channel":"rewrite/pub","data":{"rewritten":"\"x\""}}}`)
		barrier(t, other)
		other.ExpectNothing(20 * time.Millisecond)
	})
}

// With SuppressMiddlewareFailures, blocks are not emitted as socket errors.
func TestSuppressMiddlewareFailures(t *testing.T) {
	t.Parallel()
	ts := newServer(t, sc.Options{SuppressMiddlewareFailures: true}, func(srv *sc.Server) {
		_ = srv.SetMiddleware(sc.MiddlewareInbound, func(_ context.Context, a *sc.Action) error {
			if a.Procedure == "no" {
				return sc.NewError("No", "no")
			}
			return nil
		})
	})
	c, s := ts.connect(t, nil)
	errs := sc.Listen[sc.ErrorEvent](s).Consumer()
	defer errs.Stop()
	if r := c.Invoke("no", 1); !strings.Contains(r.Raw, `"name":"No"`) {
		t.Fatalf("%s", r.Raw)
	}
	barrier(t, c)
	if errs.Backpressure() != 0 {
		t.Fatal("a blocked action was emitted as a socket error")
	}
}

// The HANDSHAKE_SC action carries the token verification result.
func TestHandshakeActionData(t *testing.T) {
	t.Parallel()
	got := make(chan sc.Action, 2)
	ts := newServer(t, sc.Options{}, func(srv *sc.Server) {
		_ = srv.SetMiddleware(sc.MiddlewareHandshake, func(_ context.Context, a *sc.Action) error {
			got <- *a
			return nil
		})
	})
	c := ts.dial(t, &sctest.Options{Query: "a=1&b=2"})
	ws := <-got
	if ws.Type != sc.ActionHandshakeWS || ws.Request.URL.RawQuery != "a=1&b=2" || ws.Socket != nil {
		t.Fatalf("handshakeWS action %+v", ws)
	}
	c.Handshake(nil)
	a := <-got
	if a.Type != sc.ActionHandshakeSC || a.Socket == nil || a.Request == nil {
		t.Fatalf("handshakeSC action %+v", a)
	}
	jsonEq(t, string(a.Data), `{"signedAuthToken":null,"authTokenError":{"message":"jwt must be provided","name":"AuthTokenInvalidError","isBadToken":true},"authToken":null,"authState":"unauthenticated"}`)
}

// MIDDLEWARE_INBOUND_RAW sees every message, pongs included; a block drops
// the message, allow with data replaces it (docs/protocol.md §2.3 step 3).
func TestInboundRawMiddleware(t *testing.T) {
	t.Parallel()
	seen := make(chan string, 16)
	ts := newServer(t, sc.Options{}, func(srv *sc.Server) {
		_ = srv.SetMiddleware(sc.MiddlewareInboundRaw, func(_ context.Context, a *sc.Action) error {
			if a.Type != sc.ActionMessage || a.Socket == nil {
				return fmt.Errorf("unexpected action %+v", a)
			}
			seen <- string(a.Data)
			switch {
			case strings.Contains(string(a.Data), "drop me"):
				return sc.ErrBlocked
			case strings.Contains(string(a.Data), "replace me"):
				return a.SetData(`{"event":"echo","data":"replaced","cid":77}`)
			}
			return nil
		})
	})
	c, s := ts.connect(t, nil)
	<-seen // the handshake
	msgs := sc.Listen[sc.MessageEvent](s).Consumer()
	defer msgs.Stop()
	c.SendText(`{"event":"echo","data":"drop me","cid":10}`)
	c.SendText(`{"event":"echo","data":"replace me","cid":11}`)
	c.Expect(`{"rid":77,"data":"replaced"}`)
	c.Pong()
	barrier(t, c)
	var got []string
	for range 4 {
		got = append(got, <-seen)
	}
	want := []string{`{"event":"echo","data":"drop me","cid":10}`, `{"event":"echo","data":"replace me","cid":11}`, ``, `{"event":"echo","data":"barrier","cid":2}`}
	if fmt.Sprintf("%q", got) != fmt.Sprintf("%q", want) {
		t.Fatalf("raw middleware saw %q\nwant %q", got, want)
	}
	// The message event comes after the raw middleware: the dropped
	// message is not in it, the replaced one is replaced.
	var events []string
	for range 3 {
		events = append(events, string(next(t, msgs).Message))
	}
	if want := []string{`{"event":"echo","data":"replaced","cid":77}`, ``, `{"event":"echo","data":"barrier","cid":2}`}; fmt.Sprintf("%q", events) != fmt.Sprintf("%q", want) {
		t.Fatalf("message events %q\nwant %q", events, want)
	}
}

// A middleware that is slow for one socket does not delay another.
func TestSlowMiddlewareDelaysOnlyItsSocket(t *testing.T) {
	t.Parallel()
	release := make(chan struct{})
	ts := newServer(t, sc.Options{}, func(srv *sc.Server) {
		_ = srv.SetMiddleware(sc.MiddlewareInbound, func(ctx context.Context, a *sc.Action) error {
			if a.Procedure == "slow" {
				select {
				case <-release:
				case <-ctx.Done():
				}
			}
			return nil
		})
	})
	slow, _ := ts.connect(t, nil)
	fast, _ := ts.connect(t, nil)
	slowCid := slow.NextCid()
	slow.SendText(sctest.EventPacket("slow", 1, slowCid))
	slow.SendText(sctest.EventPacket("echo", "after", slow.NextCid()))
	barrier(t, fast)
	// The slow socket's later message waits behind its middleware.
	slow.ExpectNothing(30 * time.Millisecond)
	close(release)
	// "slow" has no handler: only "after" answers, once the middleware let go.
	if got := slow.NextText(); got != fmt.Sprintf(`{"rid":%d,"data":"after"}`, int(slowCid)+1) {
		t.Fatalf("got %s", got)
	}
}
