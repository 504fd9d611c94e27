package main

import (
	"bufio"
	"context"
	"crypto/rand"
	"encoding/hex"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/socketcluster-go/socketcluster/broker/brokertest"
	"github.com/socketcluster-go/socketcluster/client"
	"github.com/socketcluster-go/socketcluster/gateway/api"
	"github.com/socketcluster-go/socketcluster/internal/sctest"
)

// instanceProc is an scserver process of a test.
type instanceProc struct {
	cmd  *exec.Cmd
	addr string
}

func startInstance(t *testing.T, bin string, args ...string) *instanceProc {
	t.Helper()
	cmd := exec.Command(bin, append([]string{"-addr", "127.0.0.1:0", "-drain-delay", "0", "-log-level", "warn"}, args...)...)
	cmd.Stderr = os.Stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	p := &instanceProc{cmd: cmd}
	t.Cleanup(func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		done := make(chan struct{})
		go func() { _ = cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(20 * time.Second):
			_ = cmd.Process.Kill()
			<-done
		}
	})
	r := bufio.NewReader(out)
	for {
		line, err := r.ReadString('\n')
		if err != nil {
			t.Fatalf("scserver did not start: %v", err)
		}
		if strings.HasPrefix(line, "listening on ") {
			p.addr = strings.TrimSpace(strings.TrimPrefix(line, "listening on "))
			break
		}
	}
	go func() { _, _ = r.WriteTo(discard{}) }()
	return p
}

type discard struct{}

func (discard) Write(p []byte) (int, error) { return len(p), nil }

// Presence across three scserver processes on Redis and on NATS: every
// instance sees every entry; the entries of an instance killed with
// SIGKILL (no goodbye) vanish within -presence-ttl, the others stay.
func TestPresenceClusterSIGKILL(t *testing.T) {
	t.Parallel()
	if testing.Short() {
		t.Skip("builds scserver and runs three processes")
	}
	bin := filepath.Join(t.TempDir(), "scserver")
	build := exec.Command("go", "build", "-o", bin, ".")
	build.Stderr = os.Stderr
	if err := build.Run(); err != nil {
		t.Fatalf("go build: %v", err)
	}
	for _, kind := range []string{"redis", "nats"} {
		t.Run(kind, func(t *testing.T) {
			brokerURL := brokertest.URL(t, kind)
			var b [4]byte
			_, _ = rand.Read(b[:])
			prefix := "scgwtest" + hex.EncodeToString(b[:])
			if kind == "nats" {
				t.Cleanup(func() { deleteBuckets(t, brokerURL, prefix) })
			}
			args := []string{"-broker", brokerURL, "-auth-key", "cluster-test-key", "-api-key", testAPIKey,
				"-presence", "room*", "-presence-ttl", "3s", "-gateway-store-prefix", prefix}
			var procs []*instanceProc
			for i := 0; i < 3; i++ {
				procs = append(procs, startInstance(t, bin, append(args, "-instance-id", prefix+"-"+string(rune('a'+i)))...))
			}
			ctx := sctest.Context(t)
			room := "room-" + prefix
			var ids []string
			for _, p := range procs {
				c, err := client.Dial(ctx, "ws://"+p.addr+"/socketcluster/", nil)
				if err != nil {
					t.Fatal(err)
				}
				t.Cleanup(func() { _ = c.Close(1000, "") })
				if _, err := c.Subscribe(ctx, room); err != nil {
					t.Fatal(err)
				}
				ids = append(ids, c.ID())
			}
			apis := make([]*api.Client, 3)
			for i, p := range procs {
				apis[i] = &api.Client{BaseURL: "http://" + p.addr, Key: testAPIKey}
			}
			count := func(a *api.Client) int {
				p, err := a.Presence(ctx, room)
				if err != nil {
					t.Logf("presence: %v", err)
					return -1
				}
				return p.Count
			}
			for i := range procs {
				eventually(t, "three entries seen by every instance", func() bool { return count(apis[i]) == 3 })
			}
			// SIGKILL: the instance says nothing; its entry must expire.
			killed := time.Now()
			if err := procs[2].cmd.Process.Signal(syscall.SIGKILL); err != nil {
				t.Fatal(err)
			}
			deadline := killed.Add(3*time.Second + 10*time.Second) // TTL, and room for a busy machine
			for count(apis[0]) != 2 {
				if time.Now().After(deadline) {
					t.Fatalf("the killed instance's entry still counts %v after SIGKILL", time.Since(killed))
				}
				time.Sleep(100 * time.Millisecond)
			}
			t.Logf("%s: the killed instance's entry expired after %v", kind, time.Since(killed).Round(100*time.Millisecond))
			p, err := apis[1].Presence(ctx, room)
			if err != nil || p.Count != 2 {
				t.Fatalf("presence after the kill: %+v %v", p, err)
			}
			for _, e := range p.Clients {
				if e.SocketID == ids[2] {
					t.Fatalf("the killed instance's entry is still listed: %+v", p.Clients)
				}
			}
			// The live entries survive their TTL: they are refreshed.
			time.Sleep(4 * time.Second)
			if n := count(apis[1]); n != 2 {
				t.Fatalf("after another TTL: %d entries, want 2", n)
			}
		})
	}
}

func deleteBuckets(t *testing.T, url, prefix string) {
	nc, err := nats.Connect(url)
	if err != nil {
		return
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for _, b := range []string{prefix + "_state", prefix + "_idem"} {
		if err := js.DeleteKeyValue(ctx, b); err != nil {
			t.Logf("delete bucket %s: %v", b, err)
		}
	}
}
