package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/socketcluster-go/socketcluster/broker/brokertest"
	"github.com/socketcluster-go/socketcluster/client"
	"github.com/socketcluster-go/socketcluster/gateway/api"
	"github.com/socketcluster-go/socketcluster/gateway/proxy"
	"github.com/socketcluster-go/socketcluster/internal/sctest"
)

const testAPIKey = "a-long-test-api-key-0123456789"

// startPythonBackend runs examples/python-backend/backend.py until the end
// of the test and returns its base URL.
func startPythonBackend(t *testing.T, apiURL string) (string, *exec.Cmd) {
	t.Helper()
	py, err := exec.LookPath("python3")
	if err != nil {
		if os.Getenv("SC_REQUIRE_BROKERS") == "1" {
			t.Fatal("python3 not found (SC_REQUIRE_BROKERS=1)")
		}
		t.Skip("!!! SKIPPED: python3 not found: the example backend cannot run")
	}
	cmd := exec.Command(py, filepath.Join("..", "..", "examples", "python-backend", "backend.py"), "--port", "0")
	cmd.Env = append(os.Environ(), "SC_API_URL="+apiURL, "SC_API_KEY="+testAPIKey)
	cmd.Stderr = os.Stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	line, err := bufio.NewReader(out).ReadString('\n')
	if err != nil || !strings.HasPrefix(line, "READY ") {
		t.Fatalf("backend did not start: %q %v", line, err)
	}
	return "http://127.0.0.1:" + strings.TrimSpace(strings.TrimPrefix(line, "READY ")), cmd
}

func dialAs(t *testing.T, addr, user, password string) (*client.Client, error) {
	c, err := client.Dial(sctest.Context(t), "ws://"+addr+"/socketcluster/", &client.Options{Query: url.Values{"user": {user}, "password": {password}}})
	if c != nil {
		t.Cleanup(func() { _ = c.Close(1000, "") })
	}
	return c, err
}

// The walk-through of docs/gateway.md: scserver in front of the Python
// example backend.
func TestPythonBackend(t *testing.T) {
	t.Parallel()
	port := brokertest.FreePort(t)
	addr := "127.0.0.1:" + strconv.Itoa(port)
	be, cmd := startPythonBackend(t, "http://"+addr)
	proc := start(t, "-addr", addr, "-log-level", "debug", "-api-key", testAPIKey, "-presence", "chat/*",
		"-proxy-connect-url", be+"/connect", "-proxy-subscribe-url", be+"/subscribe",
		"-proxy-publish-url", be+"/publish", "-proxy-rpc-url", be+"/rpc", "-proxy-rpc-procedures", "whoami,add,announce")
	ctx := sctest.Context(t)

	_, err := dialAs(t, addr, "alice", "wrong")
	sctest.AsError(t, err, "LoginError")
	alice, err := dialAs(t, addr, "alice", "wonderland")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("scserver's log:\n%s", proc.stderr)
		}
	})
	eventually(t, "alice's token", func() bool { return alice.AuthToken()["sub"] == "alice" })
	if d, err := alice.Invoke(ctx, "whoami", nil); err != nil || !strings.Contains(string(d), `"user": "alice"`) && !strings.Contains(string(d), `"user":"alice"`) {
		t.Fatalf("whoami: %s %v", d, err)
	}
	if d, err := alice.Invoke(ctx, "add", []int{20, 22}); err != nil || string(d) != "42" {
		t.Fatalf("add: %s %v", d, err)
	}
	_, err = alice.Invoke(ctx, "add", "nope")
	sctest.AsError(t, err, "InvalidArgumentsError")
	_, err = alice.Subscribe(ctx, "private/bob")
	sctest.AsError(t, err, "ForbiddenError")
	if _, err := alice.Subscribe(ctx, "private/alice"); err != nil {
		t.Fatal(err)
	}
	lobby, err := alice.Subscribe(ctx, "chat/lobby")
	if err != nil {
		t.Fatal(err)
	}
	msgs := lobby.Consumer()
	defer msgs.Stop()
	next := func() map[string]any {
		t.Helper()
		d, err := msgs.Next(ctx)
		if err != nil {
			t.Fatal(err)
		}
		var m map[string]any
		if err := json.Unmarshal(d, &m); err != nil {
			t.Fatalf("%s: %v", d, err)
		}
		return m
	}
	// The backend attributes messages: nobody speaks for someone else.
	if err := alice.InvokePublish(ctx, "chat/lobby", map[string]any{"text": "hi", "from": "bob"}); err != nil {
		t.Fatal(err)
	}
	if m := next(); m["from"] != "alice" || m["text"] != "hi" {
		t.Fatalf("published %v", m)
	}
	err = alice.InvokePublish(ctx, "news", "x")
	sctest.AsError(t, err, "ForbiddenError")
	// The backend calls the API back.
	if _, err := alice.Invoke(ctx, "announce", nil); err != nil {
		t.Fatal(err)
	}
	if m := next(); m["from"] != "backend" || m["text"] != "alice says hello" {
		t.Fatalf("announced %v", m)
	}
	// Presence with the backend's identity and info.
	cli := &api.Client{BaseURL: "http://" + addr, Key: testAPIKey}
	bob, err := dialAs(t, addr, "bob", "builder")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := bob.Subscribe(ctx, "chat/lobby"); err != nil {
		t.Fatal(err)
	}
	eventually(t, "presence in chat/lobby", func() bool {
		p, err := cli.Presence(ctx, "chat/lobby")
		return err == nil && p.Count == 2 && p.Users == 2
	})
	p, _ := cli.Presence(ctx, "chat/lobby")
	for _, e := range p.Clients {
		if e.User == "alice" && string(e.Info) != `{"name":"Alice"}` && string(e.Info) != `{"name": "Alice"}` {
			t.Fatalf("alice's info %s", e.Info)
		}
	}
	// The API disconnects every socket of a user.
	closed := client.Listen[client.CloseEvent](bob).Consumer()
	defer closed.Stop()
	if res, err := cli.Disconnect(ctx, api.Target{User: "bob"}, 4444, "bye"); err != nil || res.Local != 1 {
		t.Fatalf("disconnect bob: %+v %v", res, err)
	}
	if ev, err := closed.Next(ctx); err != nil || ev.Code != 4444 {
		t.Fatalf("bob's close: %+v %v", ev, err)
	}
	// A backend that is down refuses everyone, clearly.
	_ = cmd.Process.Kill()
	_ = cmd.Wait()
	_, err = dialAs(t, addr, "alice", "wonderland")
	sctest.AsError(t, err, proxy.ErrNameUnavailable)
	_, err = alice.Invoke(ctx, "add", []int{1, 2})
	sctest.AsError(t, err, proxy.ErrNameUnavailable)
}

func TestGatewaySettingsThatCannotWork(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"-api-key", "short"}, "-api-key"},
		{[]string{"-api-addr", "127.0.0.1:0"}, "-api-addr"},
		{[]string{"-proxy-connect-url", "ftp://x"}, "-proxy-connect-url"},
		{[]string{"-proxy-rpc-url", "http://127.0.0.1:1/rpc"}, "-proxy-rpc-procedures"},
		{[]string{"-proxy-refresh-url", "http://127.0.0.1:1/r"}, "-proxy-connect-url"},
		{[]string{"-presence", "room/["}, "-presence"},
		{[]string{"-gateway-store", "mysql://x"}, "-gateway-store"},
		{[]string{"-proxy-timeout", "20s", "-proxy-connect-url", "http://127.0.0.1:1/c"}, "-proxy-timeout"},
	} {
		var stderr syncBuffer
		code := run(context.Background(), append([]string{"-addr", "127.0.0.1:0"}, tc.args...), env(nil), &syncBuffer{}, &stderr)
		if code != exitSettings || !strings.Contains(stderr.String(), tc.want) {
			t.Errorf("%v: exit %d, stderr %q; want exit 2 naming %s", tc.args, code, stderr.String(), tc.want)
		}
	}
}

// -api-addr serves the API on an address of its own, not on -addr.
func TestAPIAddr(t *testing.T) {
	t.Parallel()
	apiPort := brokertest.FreePort(t)
	apiAddr := "127.0.0.1:" + strconv.Itoa(apiPort)
	p := start(t, "-api-key", testAPIKey, "-api-addr", apiAddr)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	cli := &api.Client{BaseURL: "http://" + apiAddr, Key: testAPIKey}
	info, err := cli.Info(ctx)
	if err != nil || info.Instance == "" {
		t.Fatalf("info on -api-addr: %+v %v", info, err)
	}
	if code, _ := mustGet(t, "http://"+p.addr+"/api/info"); code == 200 || code == 401 || code == 405 {
		t.Fatalf("the API is also served on -addr (status %d)", code)
	}
}

// The API's history method on channels of -history.
func TestAPIHistoryFlag(t *testing.T) {
	t.Parallel()
	p := start(t, "-api-key", testAPIKey, "-history", "news*", "-history-size", "2")
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	cli := &api.Client{BaseURL: "http://" + p.addr, Key: testAPIKey}
	for _, d := range []string{"a", "b", "c"} {
		if _, err := cli.Publish(ctx, "news", d); err != nil {
			t.Fatal(err)
		}
	}
	res, err := cli.History(ctx, api.HistoryRequest{Channel: "news"})
	if err != nil || len(res.Publications) != 2 || string(res.Publications[0].Data) != `"b"` || string(res.Publications[1].Data) != `"c"` {
		t.Fatalf("history: %+v %v", res, err)
	}
	var ce *api.CallError
	if _, err := cli.History(ctx, api.HistoryRequest{Channel: "other"}); !errors.As(err, &ce) || ce.Status != 404 {
		t.Fatalf("a channel without history: %v", err)
	}
}
