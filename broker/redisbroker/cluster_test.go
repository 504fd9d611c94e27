package redisbroker_test

import (
	"fmt"
	"net"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/socketcluster-go/socketcluster/broker"
	"github.com/socketcluster-go/socketcluster/broker/brokertest"
	"github.com/socketcluster-go/socketcluster/broker/redisbroker"
)

// startCluster starts a 3-master Redis Cluster on loopback (its own
// processes, stopped by PID at the end of the test).
func startCluster(t *testing.T) []*redisServer {
	t.Helper()
	requireBinary(t, "redis-server")
	requireBinary(t, "redis-cli")
	dir := t.TempDir()
	var nodes []*redisServer
	var addrs []string
	for i := range 3 {
		port := freePort(t)
		nodes = append(nodes, startRedisServer(t, port,
			"--cluster-enabled", "yes",
			"--cluster-config-file", fmt.Sprintf("nodes-%d.conf", i),
			"--cluster-node-timeout", "2000",
			"--dir", dir))
		addrs = append(addrs, nodes[i].addr())
	}
	args := append([]string{"--cluster", "create"}, addrs...)
	args = append(args, "--cluster-replicas", "0", "--cluster-yes")
	if out, err := exec.Command("redis-cli", args...).CombinedOutput(); err != nil {
		t.Fatalf("redis-cli --cluster create: %v\n%s", err, out)
	}
	for _, n := range nodes {
		waitUntil(t, 30*time.Second, "cluster_state:ok on "+n.addr(), func() bool {
			info, err := command(n.addr(), "CLUSTER", "INFO")
			return err == nil && strings.Contains(info, "cluster_state:ok")
		})
	}
	return nodes
}

// command runs one command on addr with redis-cli and returns its output.
func command(addr string, args ...string) (string, error) {
	host, port, _ := net.SplitHostPort(addr)
	out, err := exec.Command("redis-cli", append([]string{"-h", host, "-p", port}, args...)...).CombinedOutput()
	return string(out), err
}

func TestCluster(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a Redis Cluster")
	}
	nodes := startCluster(t)
	url := nodes[0].url()
	for _, sharded := range []bool{true, false} {
		t.Run(fmt.Sprintf("sharded=%v", sharded), func(t *testing.T) {
			prefix := uniquePrefix()
			brokertest.Run(t, func(t *testing.T) broker.Broker {
				b, err := redisbroker.New(url, redisbroker.Options{Prefix: prefix, Sharded: sharded})
				if err != nil {
					t.Fatal(err)
				}
				return b
			})
		})
	}
	t.Run("Reshard", func(t *testing.T) { testReshard(t, nodes) })
}

// testReshard moves slots between masters while channels are subscribed:
// Redis unsubscribes the sharded channels of a moved slot, and the broker
// must subscribe them again on their new node.
func testReshard(t *testing.T, nodes []*redisServer) {
	opts := redisbroker.Options{Prefix: uniquePrefix(), Sharded: true}
	h := newHandler()
	sub := start(t, nodes[0].url(), opts, h)
	pub := start(t, nodes[1].url(), opts, newHandler())
	var chans []string
	for i := range 300 {
		chans = append(chans, fmt.Sprintf("ch-%d", i))
	}
	if err := sub.Subscribe(ctx(t), chans); err != nil {
		t.Fatal(err)
	}
	publishAll := func(tag string) {
		t.Helper()
		for _, ch := range chans {
			if !h.has(ch, tag) {
				_ = pub.Publish(ctx(t), ch, []byte(tag)) // may hit a slot in migration
			}
		}
	}
	publishAll("before")
	waitUntil(t, 30*time.Second, "deliveries before resharding", func() bool { return h.hasAll(chans, "before") })

	from, to := nodeID(t, nodes[0]), nodeID(t, nodes[1])
	out, err := exec.Command("redis-cli", "--cluster", "reshard", nodes[0].addr(),
		"--cluster-from", from, "--cluster-to", to, "--cluster-slots", "3000", "--cluster-yes").CombinedOutput()
	if err != nil {
		t.Fatalf("reshard: %v\n%s", err, out)
	}
	// Delivery resumes on every channel (re-publishing what did not arrive:
	// delivery is at most once while a slot moves).
	waitUntil(t, 60*time.Second, "deliveries after resharding", func() bool {
		publishAll("after")
		time.Sleep(100 * time.Millisecond)
		return h.hasAll(chans, "after")
	})
}

func nodeID(t *testing.T, n *redisServer) string {
	t.Helper()
	out, err := command(n.addr(), "CLUSTER", "MYID")
	if err != nil {
		t.Fatal(err)
	}
	id := strings.TrimSpace(out)
	if len(id) != 40 {
		t.Fatalf("CLUSTER MYID: %q", out)
	}
	return id
}

func (h *handler) has(ch, payload string) bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	for _, p := range h.msgs[ch] {
		if p == payload {
			return true
		}
	}
	return false
}

func (h *handler) hasAll(chans []string, payload string) bool {
	for _, ch := range chans {
		if !h.has(ch, payload) {
			return false
		}
	}
	return true
}
