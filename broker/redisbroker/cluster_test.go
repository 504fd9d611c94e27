package redisbroker_test

import (
	"fmt"
	"net"
	"os/exec"
	"slices"
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
		nodes = append(nodes, startRedisServer(t,
			"--cluster-enabled", "yes",
			"--cluster-config-file", fmt.Sprintf("nodes-%d.conf", i),
			"--cluster-node-timeout", "2000",
			"--dir", dir))
		addrs = append(addrs, nodes[i].Addr())
	}
	args := append([]string{"--cluster", "create"}, addrs...)
	args = append(args, "--cluster-replicas", "0", "--cluster-yes")
	if out, err := exec.Command("redis-cli", args...).CombinedOutput(); err != nil {
		t.Fatalf("redis-cli --cluster create: %v\n%s", err, out)
	}
	for _, n := range nodes {
		waitUntil(t, 30*time.Second, "cluster_state:ok on "+n.Addr(), func() bool {
			info, err := command(n.Addr(), "CLUSTER", "INFO")
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
	t.Parallel()
	if testing.Short() {
		t.Skip("starts a Redis Cluster")
	}
	nodes := startCluster(t)
	url := nodes[0].URL()
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
			// History on a cluster: the stream and its meta key share a
			// hash slot; sharded mode publishes after the script.
			hprefix := uniquePrefix()
			t.Run("History", func(t *testing.T) {
				brokertest.RunHistory(t, func(t *testing.T) broker.History {
					b, err := redisbroker.New(url, redisbroker.Options{Prefix: hprefix, Sharded: sharded})
					if err != nil {
						t.Fatal(err)
					}
					return b
				})
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
	sub := start(t, nodes[0].URL(), opts, h)
	pub := start(t, nodes[1].URL(), opts, newHandler())
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
			if !has(h, ch, tag) {
				_ = pub.Publish(ctx(t), ch, []byte(tag)) // may hit a slot in migration
			}
		}
	}
	publishAll("before")
	waitUntil(t, 30*time.Second, "deliveries before resharding", func() bool { return hasAll(h, chans, "before") })

	from, to := nodeID(t, nodes[0]), nodeID(t, nodes[1])
	out, err := exec.Command("redis-cli", "--cluster", "reshard", nodes[0].Addr(),
		"--cluster-from", from, "--cluster-to", to, "--cluster-slots", "3000", "--cluster-yes").CombinedOutput()
	if err != nil {
		t.Fatalf("reshard: %v\n%s", err, out)
	}
	// Delivery resumes on every channel (re-publishing what did not arrive:
	// delivery is at most once while a slot moves).
	waitUntil(t, 60*time.Second, "deliveries after resharding", func() bool {
		publishAll("after")
		time.Sleep(100 * time.Millisecond)
		return hasAll(h, chans, "after")
	})
}

func nodeID(t *testing.T, n *redisServer) string {
	t.Helper()
	out, err := command(n.Addr(), "CLUSTER", "MYID")
	if err != nil {
		t.Fatal(err)
	}
	id := strings.TrimSpace(out)
	if len(id) != 40 {
		t.Fatalf("CLUSTER MYID: %q", out)
	}
	return id
}

// has reports whether h got payload on ch.
func has(h *handler, ch, payload string) bool { return slices.Contains(h.Got(ch), payload) }

func hasAll(h *handler, chans []string, payload string) bool {
	for _, ch := range chans {
		if !has(h, ch, payload) {
			return false
		}
	}
	return true
}
