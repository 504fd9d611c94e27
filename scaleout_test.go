package socketcluster_test

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	sc "github.com/socketcluster-go/socketcluster"
	"github.com/socketcluster-go/socketcluster/broker"
	"github.com/socketcluster-go/socketcluster/broker/brokertest"
	"github.com/socketcluster-go/socketcluster/broker/brokerurl"
	"github.com/socketcluster-go/socketcluster/internal/sctest"
)

// Scale-out tests: several server instances share channels through a real
// Redis or NATS (REDIS_URL / NATS_URL, defaulting to the local ports). An
// unreachable broker skips loudly, or fails under SC_REQUIRE_BROKERS=1.

func startInstance(t *testing.T, b broker.Broker) (*sc.Server, string) {
	t.Helper()
	srv, addr := startV14(t, sc.Options{Broker: b})
	srv.HandleProcedure("pub", func(r *sc.Request) {
		var m struct {
			Channel string  `json:"channel"`
			Data    sc.Data `json:"data"`
		}
		_ = r.Data.Decode(&m)
		if err := srv.Exchange().InvokePublish(context.Background(), m.Channel, m.Data); err != nil {
			_ = r.Error(err)
			return
		}
		_ = r.End("ok")
	})
	return srv, addr
}

type seqMsg struct {
	From int `json:"from"`
	I    int `json:"i"`
}

// collectPublishes reads n #publish frames on channel from c.
func collectPublishes(t *testing.T, c *sctest.Client, channel string, n int) []seqMsg {
	t.Helper()
	var out []seqMsg
	deadline := time.Now().Add(20 * time.Second)
	for len(out) < n {
		f, err := c.Next(time.Until(deadline))
		if err != nil {
			t.Fatalf("after %d of %d messages: %v", len(out), n, err)
		}
		p, ok := sctest.ParsePacket(f.Text())
		if !ok || p.Event == nil || *p.Event != "#publish" {
			continue
		}
		var d struct {
			Channel string `json:"channel"`
			Data    seqMsg `json:"data"`
		}
		if err := json.Unmarshal(p.Data, &d); err != nil || d.Channel != channel {
			continue
		}
		out = append(out, d.Data)
	}
	return out
}

func TestScaleOutExactlyOnce(t *testing.T) {
	t.Parallel()
	for _, kind := range []string{"redis", "nats"} {
		t.Run(kind, func(t *testing.T) {
			u := brokertest.URL(t, kind)
			const instances, perPublisher = 3, 200
			channel := fmt.Sprintf("scaleout/%s/%d", kind, time.Now().UnixNano())
			var clients []*sctest.Client
			for i := 0; i < instances; i++ {
				b, err := brokerurl.Open(u)
				if err != nil {
					t.Fatal(err)
				}
				_, addr := startInstance(t, b)
				c := sctest.Dial(t, addr, &sctest.Options{AutoPong: true, QueueSize: 8192})
				c.Handshake(nil)
				c.Subscribe(channel)
				clients = append(clients, c)
			}
			// Every instance publishes through its own client, concurrently.
			var wg sync.WaitGroup
			for i, c := range clients {
				wg.Add(1)
				go func() {
					defer wg.Done()
					for n := 0; n < perPublisher; n++ {
						c.Transmit("#publish", map[string]any{"channel": channel, "data": seqMsg{From: i, I: n}})
					}
				}()
			}
			wg.Wait()
			for ci, c := range clients {
				got := collectPublishes(t, c, channel, instances*perPublisher)
				next := make([]int, instances)
				for _, m := range got {
					if m.I != next[m.From] {
						t.Fatalf("client %d: from instance %d got #%d, want #%d (order or duplicate)", ci, m.From, m.I, next[m.From])
					}
					next[m.From]++
				}
				c.ExpectNothing(200 * time.Millisecond)
			}
		})
	}
}

// ownBroker starts a broker server of the test's own.
func ownBroker(t *testing.T, kind string) (*brokertest.Process, string) {
	t.Helper()
	brokertest.URL(t, kind) // the same skip/fail rule: the binaries come with the services
	p := brokertest.StartProcess(t, kind)
	return p, p.URL()
}

func TestScaleOutBrokerOutage(t *testing.T) {
	t.Parallel()
	for _, kind := range []string{"redis", "nats"} {
		t.Run(kind, func(t *testing.T) {
			proc, u := ownBroker(t, kind)
			var servers []*sc.Server
			var clients []*sctest.Client
			for i := 0; i < 2; i++ {
				b, err := brokerurl.Open(u)
				if err != nil {
					t.Fatal(err)
				}
				srv, addr := startInstance(t, b)
				c := sctest.Dial(t, addr, &sctest.Options{AutoPong: true})
				c.Handshake(nil)
				c.Subscribe("outage")
				servers = append(servers, srv)
				clients = append(clients, c)
			}
			warnings := sc.Listen[sc.WarningEvent](servers[0]).Consumer()
			defer warnings.Stop()

			pub := func(from, i int) {
				clients[from].Transmit("#publish", map[string]any{"channel": "outage", "data": seqMsg{From: from, I: i}})
			}
			pub(1, 0)
			if got := collectPublishes(t, clients[0], "outage", 1); got[0] != (seqMsg{1, 0}) {
				t.Fatalf("before the outage: %v", got)
			}
			collectPublishes(t, clients[1], "outage", 1)

			proc.Stop()
			// The outage is reported.
			ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
			defer cancel()
			for {
				ev, err := warnings.Next(ctx)
				if err != nil {
					t.Fatalf("no broker warning after the broker stopped: %v", err)
				}
				if strings.Contains(ev.Warning.Error(), "Broker") {
					break
				}
			}
			// Local clients are still served during the outage.
			pub(0, 1)
			if got := collectPublishes(t, clients[0], "outage", 1); got[0] != (seqMsg{0, 1}) {
				t.Fatalf("local delivery during the outage: %v", got)
			}

			proc.Start()
			// Cross-instance delivery resumes once the instance resubscribed.
			deadline := time.Now().Add(30 * time.Second)
			i := 100
			for {
				pub(1, i)
				f, err := clients[0].Next(500 * time.Millisecond)
				if err == nil && strings.Contains(f.Text(), `"from":1`) {
					break
				}
				if time.Now().After(deadline) {
					t.Fatal("cross-instance delivery did not resume after the broker came back")
				}
				i++
			}
			if servers[0].Stats().BrokerErrors == 0 {
				t.Fatal("the outage was not counted")
			}
		})
	}
}
