package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/cookiejar"
	"os"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/socketcluster-go/socketcluster/internal/sctest"
)

const adminPW = "an admin password"

func TestAdminSettings(t *testing.T) {
	t.Parallel()
	c, err := parse(nil, env(nil), io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if c.AdminPassword != "" || c.AdminAddr != "127.0.0.1:9200" {
		t.Fatalf("defaults: password set=%v addr %q", c.AdminPassword != "", c.AdminAddr)
	}
	if (&app{cfg: c}).adminListeners() != nil {
		t.Fatal("the admin page is on without a password")
	}
	for _, bad := range []struct {
		env  map[string]string
		want string
	}{
		{map[string]string{"SC_ADMIN_PASSWORD": "short"}, "-admin-password (SC_ADMIN_PASSWORD): too short"},
		{map[string]string{"SC_ADMIN_PASSWORD": adminPW, "SC_ADMIN_ADDR": "nowhere"}, "-admin-addr (SC_ADMIN_ADDR)"},
		{map[string]string{"SC_ADMIN_PASSWORD": adminPW, "SC_ADMIN_ADDR": ":8000"}, "the admin page needs an address of its own"},
	} {
		c, err := parse(nil, env(bad.env), io.Discard)
		if err != nil {
			t.Fatal(err)
		}
		if err := c.validate(); err == nil || !strings.Contains(err.Error(), bad.want) {
			t.Errorf("%v: %v, want %q", bad.env, err, bad.want)
		}
	}
	var stderr bytes.Buffer
	if code := run(context.Background(), []string{"-admin-password", "short"}, env(nil), io.Discard, &stderr); code != exitSettings {
		t.Errorf("a short password: exit %d\n%s", code, stderr.String())
	}
	if strings.Contains(stderr.String(), "short\"") {
		t.Errorf("the password was echoed: %s", stderr.String())
	}
}

// With -admin-password, the page is served on -admin-addr only: log in,
// see a client counted, disconnect it.
func TestAdminServed(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithCancel(context.Background())
	pr, pw := io.Pipe()
	stderr := &syncBuffer{}
	exited := make(chan int, 1)
	go func() {
		exited <- run(ctx, []string{"-addr", "127.0.0.1:0", "-admin-addr", "127.0.0.1:0"}, env(map[string]string{"SC_ADMIN_PASSWORD": adminPW}), pw, stderr)
		_ = pw.Close()
	}()
	t.Cleanup(func() {
		cancel()
		select {
		case <-exited:
		case <-time.After(20 * time.Second):
			t.Error("scserver did not stop")
		}
	})
	var addr, adminAddr string
	lines := bufio.NewReader(pr)
	for addr == "" || adminAddr == "" {
		line, err := lines.ReadString('\n')
		if err != nil {
			t.Fatalf("scserver did not start: %v\n%s", err, stderr)
		}
		f := strings.Fields(line)
		switch {
		case strings.HasPrefix(line, "listening on "):
			addr = f[len(f)-1]
		case strings.HasPrefix(line, "admin on "):
			adminAddr = f[len(f)-1]
		}
	}
	go func() { _, _ = io.Copy(io.Discard, pr) }()

	if code, body := mustGet(t, "http://"+addr+"/api/stats"); code == 200 && strings.Contains(body, `"self"`) {
		t.Fatal("the admin API is served on the public address")
	}
	if code, _ := mustGet(t, "http://"+adminAddr+"/api/stats"); code != 401 {
		t.Fatalf("admin API without a session: %d", code)
	}
	jar, _ := cookiejar.New(nil)
	hc := &http.Client{Jar: jar, Timeout: 10 * time.Second}
	post := func(path, body string) int {
		req, _ := http.NewRequest("POST", "http://"+adminAddr+path, strings.NewReader(body))
		req.Header.Set("X-SC-Admin", "1")
		resp, err := hc.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	if code := post("/api/login", `{"password":"`+adminPW+`"}`); code != 200 {
		t.Fatalf("log-in: %d", code)
	}
	cl := sctest.Dial(t, addr, nil)
	cl.Handshake(nil)
	eventually(t, "the client in the admin figures", func() bool {
		resp, err := hc.Get("http://" + adminAddr + "/api/stats")
		if err != nil {
			return false
		}
		defer resp.Body.Close()
		var st struct{ Self struct{ Clients int } }
		return json.NewDecoder(resp.Body).Decode(&st) == nil && st.Self.Clients == 1
	})
	if code := post("/api/disconnect", `{"id":"`+cl.ID+`"}`); code != 200 {
		t.Fatalf("disconnect: %d", code)
	}
	if code, _, _ := cl.ExpectClose(); code != 4500 {
		t.Errorf("closed with %d", code)
	}
	if strings.Contains(stderr.String(), adminPW) {
		t.Error("the admin password is in the log")
	}
}

// Without -tls-cert, SIGHUP (systemctl reload, deploy/systemd) is logged
// and ignored instead of ending the process.
func TestSIGHUPWithoutTLSIsIgnored(t *testing.T) {
	// Not parallel: it sends SIGHUP to the whole test process.
	p := start(t)
	if err := syscall.Kill(os.Getpid(), syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	eventually(t, "the SIGHUP logged", func() bool { return strings.Contains(p.stderr.String(), "SIGHUP: nothing to reload") })
	if code, _ := mustGet(t, "http://"+p.addr+"/healthz"); code != 200 {
		t.Fatalf("healthz after SIGHUP: %d", code)
	}
}
