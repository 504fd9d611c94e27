package main

import (
	"bufio"
	"context"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/socketcluster-go/socketcluster/internal/sctest"
)

func TestProtocolVersionSetting(t *testing.T) {
	t.Parallel()
	c, err := parse(nil, env(nil), io.Discard)
	if err != nil || c.ProtocolVersion != 2 {
		t.Fatalf("default: %v %+v", err, c)
	}
	c, err = parse(nil, env(map[string]string{"SC_PROTOCOL_VERSION": "1"}), io.Discard)
	if err != nil || c.ProtocolVersion != 1 {
		t.Fatalf("SC_PROTOCOL_VERSION=1: %v %+v", err, c)
	}
	c, err = parse([]string{"-protocol-version", "2"}, env(map[string]string{"SC_PROTOCOL_VERSION": "1"}), io.Discard)
	if err != nil || c.ProtocolVersion != 2 {
		t.Fatalf("flag over environment: %v %+v", err, c)
	}
	for _, bad := range []string{"0", "3", "one", "-1"} {
		_, err := parse([]string{"-protocol-version", bad}, env(nil), io.Discard)
		if err == nil || !strings.Contains(err.Error(), "-protocol-version") {
			t.Errorf("-protocol-version %s: got %v, want an error naming the flag", bad, err)
		}
	}
}

// A version 1 server pings with "#1" and takes "#2" as the pong, so a
// socketcluster-client 14 app stays connected.
func TestProtocolVersion1Served(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	pr, pw := io.Pipe()
	done := make(chan int, 1)
	go func() {
		done <- run(ctx, []string{"-addr", "127.0.0.1:0", "-protocol-version", "1", "-ping-interval", "100ms",
			"-ping-timeout", "3s", "-log-level", "warn"}, env(nil), pw, io.Discard)
		_ = pw.Close()
	}()
	line, err := bufio.NewReader(pr).ReadString('\n')
	if err != nil {
		t.Fatal(err)
	}
	go func() { _, _ = io.Copy(io.Discard, pr) }()
	addr := strings.TrimSpace(strings.TrimPrefix(line, "listening on "))

	cl := sctest.Dial(t, addr, nil)
	cl.SendText(`{"event":"#handshake","data":{},"cid":1}`)
	pings := 0
	deadline := time.Now().Add(10 * time.Second)
	for pings < 3 && time.Now().Before(deadline) {
		f, err := cl.Next(time.Until(deadline))
		if err != nil {
			t.Fatalf("after %d pings: %v", pings, err)
		}
		switch {
		case f.Text() == "#1":
			pings++
			cl.SendText("#2")
		case f.IsPing():
			t.Fatal("a version 1 server sent a version 2 ping")
		}
	}
	if pings < 3 {
		t.Fatalf("%d pings of version 1", pings)
	}
	if r := cl.Invoke("echo", "still here"); string(r.Data) != `"still here"` {
		t.Fatalf("echo after pongs: %s", r.Raw)
	}
	cancel()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("scserver did not stop")
	}
}
