package client

import (
	"bufio"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	sc "github.com/socketcluster-go/socketcluster"
)

// TestReference runs the client against the Node reference server
// (socketcluster-server 20.x, testdata/reference-server.js). It needs node
// and the interop suite's npm packages (cd interop && npm ci), so it runs
// only with SC_REFERENCE=1.
func TestReference(t *testing.T) {
	t.Parallel()
	if os.Getenv("SC_REFERENCE") != "1" {
		t.Skip("set SC_REFERENCE=1 to run against the Node reference server (needs node and interop/node_modules)")
	}
	modules, _ := filepath.Abs("../interop/node_modules")
	cmd := exec.Command("node", "testdata/reference-server.js")
	cmd.Env = append(os.Environ(), "NODE_PATH="+modules)
	cmd.Stderr = os.Stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
	})
	port, err := bufio.NewReader(out).ReadString('\n')
	if err != nil {
		t.Fatalf("reference server: %v", err)
	}
	url := "ws://127.0.0.1:" + strings.TrimSpace(port) + "/socketcluster/"
	ctx := ctxT(t)

	c, err := Dial(ctx, url, &Options{AutoReconnect: true})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close(1000, "")
	if c.PingTimeout() != time.Second {
		t.Fatalf("pingTimeout %v", c.PingTimeout())
	}

	// RPC.
	if d, err := c.Invoke(ctx, "echo", map[string]any{"a": 1}); err != nil || string(d) != `{"a":1}` {
		t.Fatalf("echo: %s %v", d, err)
	}
	if d, err := c.Invoke(ctx, "undef", nil); err != nil || d != nil {
		t.Fatalf("undef: %q %v", d, err)
	}
	if d, err := c.Invoke(ctx, "null", nil); err != nil || !d.IsNull() {
		t.Fatalf("null: %q %v", d, err)
	}
	_, err = c.Invoke(ctx, "fail", nil)
	if e := asError(t, err, "FailError"); e.Message != "it failed" {
		t.Fatalf("fail: %#v", e)
	} else if v, _ := e.Field("extra"); v.(map[string]any)["a"] != float64(1) {
		t.Fatalf("fail field: %#v", e)
	}

	// Transmits both ways.
	back := c.Receiver("back").Consumer()
	defer back.Stop()
	if err := c.Transmit("tx", "round trip"); err != nil {
		t.Fatal(err)
	}
	if d := next(t, back); string(d) != `"round trip"` {
		t.Fatalf("back: %s", d)
	}

	// The server invokes the client.
	doubles := c.Procedure("double").Consumer()
	nopes := c.Procedure("nope").Consumer()
	go func() {
		for req := range doubles.All(ctx) {
			var n float64
			_ = req.Data.Decode(&n)
			_ = req.End(n * 2)
		}
	}()
	go func() {
		for req := range nopes.All(ctx) {
			_ = req.Error(sc.NewError("ClientNo", "client says no").With("custom", true))
		}
	}()
	if d, err := c.Invoke(ctx, "callme", 21); err != nil || string(d) != "42" {
		t.Fatalf("callme: %s %v", d, err)
	}
	if d, err := c.Invoke(ctx, "callfail", 1); err != nil || string(d) != `{"name":"ClientNo","message":"client says no","custom":true}` {
		t.Fatalf("callfail: %s %v", d, err)
	}

	// Pub/sub.
	ch, err := c.Subscribe(ctx, "news")
	if err != nil {
		t.Fatal(err)
	}
	data := ch.Consumer()
	if err := c.InvokePublish(ctx, "news", "one"); err != nil {
		t.Fatal(err)
	}
	if d := next(t, data); string(d) != `"one"` {
		t.Fatalf("publish: %s", d)
	}

	// Login, then a reconnect with the token.
	auths := Listen[AuthenticateEvent](c).Consumer()
	defer auths.Stop()
	if _, err := c.Invoke(ctx, "login", "alice"); err != nil {
		t.Fatal(err)
	}
	if ev := next(t, auths); ev.AuthToken["username"] != "alice" {
		t.Fatalf("authenticate %+v", ev)
	}
	connects := Listen[ConnectEvent](c).Consumer()
	defer connects.Stop()
	firstID := c.ID()
	if _, err := c.Invoke(ctx, "drop", 4000); err != nil {
		t.Fatal(err)
	}
	if ev := next(t, connects); !ev.IsAuthenticated || ev.ID == firstID {
		t.Fatalf("reconnect %+v", ev)
	}
	if d, err := c.Invoke(ctx, "whoami", nil); err != nil || string(d) != `"alice"` {
		t.Fatalf("whoami after reconnect: %s %v", d, err)
	}
	eventually(t, "the resubscription", func() bool { return ch.State() == ChannelSubscribed })
	if _, err := c.Invoke(ctx, "publish", map[string]any{"channel": "news", "data": "two"}); err != nil {
		t.Fatal(err)
	}
	if d := next(t, data); string(d) != `"two"` {
		t.Fatalf("publish after reconnect: %s", d)
	}
	if d, err := c.Invoke(ctx, "loginConfirmed", "bob"); err != nil || string(d) != `"confirmed"` {
		t.Fatalf("confirmed setAuthToken: %s %v", d, err)
	}

	// Pings keep the connection: the reference pings every 200 ms with a
	// 1 s pingTimeout; staying connected for 1.5 s means pongs went back.
	id := c.ID()
	time.Sleep(1500 * time.Millisecond)
	if d, err := c.Invoke(ctx, "whoami", nil); err != nil || string(d) != `"bob"` || c.ID() != id {
		t.Fatalf("after pings: %s %v (id %s → %s)", d, err, id, c.ID())
	}

	// Kick-out.
	kicks := Listen[KickOutEvent](c).Consumer()
	defer kicks.Stop()
	if _, err := c.Invoke(ctx, "kick", "news"); err != nil {
		t.Fatal(err)
	}
	if ev := next(t, kicks); ev.Channel != "news" || string(ev.Message) != `"bye"` {
		t.Fatalf("kickOut %+v", ev)
	}

	// Deauthenticate, then a mid-session #authenticate with a bad token.
	if err := c.Deauthenticate(); err != nil {
		t.Fatal(err)
	}
	if d, err := c.Invoke(ctx, "whoami", nil); err != nil || string(d) != "null" {
		t.Fatalf("whoami after deauthenticate: %s %v", d, err)
	}
	if err := c.Authenticate(ctx, "garbage"); err == nil {
		t.Fatal("authenticated with garbage")
	} else {
		asError(t, err, "AuthTokenInvalidError")
	}

	// 4500: no reconnect.
	closes := Listen[CloseEvent](c).Consumer()
	defer closes.Stop()
	if _, err := c.Invoke(ctx, "drop", 4500); err != nil {
		t.Fatal(err)
	}
	if ev := next(t, closes); ev.Code != 4500 {
		t.Fatalf("close %+v", ev)
	}
	if c.State() != StateClosed {
		t.Fatalf("state %s", c.State())
	}
}
