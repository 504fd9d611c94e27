package socketcluster_test

import (
	"context"
	"encoding/json"
	"fmt"
	"strconv"
	"testing"
	"time"

	sc "github.com/socketcluster-go/socketcluster"
	"github.com/socketcluster-go/socketcluster/broker"
	"github.com/socketcluster-go/socketcluster/broker/brokertest"
	"github.com/socketcluster-go/socketcluster/broker/natsbroker"
	"github.com/socketcluster-go/socketcluster/broker/redisbroker"
	"github.com/socketcluster-go/socketcluster/internal/sctest"
)

// The acceptance test of issue 10: instances on a broker that is killed
// with SIGKILL and restarted, and frozen with SIGSTOP/SIGCONT, while a
// client publishes with acknowledgements on a history channel. Every
// acknowledged publish reaches every subscriber, on every instance,
// exactly once and in publish order. Channels without history keep
// at-most-once delivery and the outage is reported.
func TestHistoryBrokerOutage(t *testing.T) {
	t.Parallel()
	for _, kind := range []string{"redis", "nats"} {
		t.Run(kind, func(t *testing.T) {
			brokertest.URL(t, kind) // skip or fail as for the shared services
			var proc *brokertest.Process
			var newBroker func() broker.Broker
			switch kind {
			case "redis":
				proc = brokertest.StartProcess(t, "redis", "--appendonly", "yes", "--appendfsync", "always", "--dir", t.TempDir())
				newBroker = func() broker.Broker {
					b, err := redisbroker.New(proc.URL(), redisbroker.Options{MinBackoff: 50 * time.Millisecond, MaxBackoff: 500 * time.Millisecond, OpTimeout: 2 * time.Second})
					if err != nil {
						t.Fatal(err)
					}
					return b
				}
			case "nats":
				proc = brokertest.StartProcess(t, "nats", "-js", "-sd", t.TempDir())
				newBroker = func() broker.Broker {
					b, err := natsbroker.New(proc.URL(), natsbroker.Options{ReconnectWait: 200 * time.Millisecond, OpTimeout: 2 * time.Second})
					if err != nil {
						t.Fatal(err)
					}
					return b
				}
			}
			opts := historyOptions(10000)
			opts.BrokerTimeout = 2 * time.Second
			var servers []*sc.Server
			var addrs []string
			var subs []*sctest.Client
			for range 3 {
				opts.Broker = newBroker()
				srv := newServer(t, opts)
				c := srv.dial(t, &sctest.Options{AutoPong: true})
				c.Handshake(nil)
				c.Subscribe("h.outage")
				c.Subscribe("plain.outage")
				servers = append(servers, srv.Server)
				addrs = append(addrs, srv.addr)
				subs = append(subs, c)
			}
			outages := sc.Listen[sc.BrokerOutageEvent](servers[1]).Consumer()
			defer outages.Stop()
			pub := sctest.Dial(t, addrs[0], &sctest.Options{AutoPong: true})
			pub.Handshake(nil)

			// The broker goes through a SIGKILL and restart, then a freeze.
			events := make(chan string, 4)
			go func() {
				time.Sleep(300 * time.Millisecond)
				proc.Stop()
				events <- "killed"
				time.Sleep(1500 * time.Millisecond)
				proc.Start()
				events <- "restarted"
				time.Sleep(700 * time.Millisecond)
				proc.Pause()
				events <- "paused"
				time.Sleep(1500 * time.Millisecond)
				proc.Resume()
				events <- "resumed"
			}()
			var acked []string
			failed := 0
			seen, resumedAt := 0, 0
			for i := 0; seen < 4 || i < resumedAt+30; i++ {
				select {
				case ev := <-events:
					t.Logf("broker %s after %d publishes", ev, i)
					seen++
					resumedAt = i
				default:
				}
				body := strconv.Itoa(i)
				r := pub.Invoke("#publish", map[string]any{"channel": "h.outage", "data": body})
				if r.Error == nil {
					acked = append(acked, body)
				} else {
					failed++
				}
				pub.Transmit("#publish", map[string]any{"channel": "plain.outage", "data": body})
				time.Sleep(5 * time.Millisecond)
			}
			t.Logf("%d publishes acknowledged, %d failed", len(acked), failed)
			if failed == 0 {
				t.Log("no publish failed: the outages were shorter than a round trip")
			}
			last := acked[len(acked)-1]
			for n, c := range subs {
				got := collectHistory(t, c, "h.outage", last)
				if d := checkDelivered(got, acked); d != "" {
					t.Fatalf("subscriber on instance %d: %s", n, d)
				}
			}
			// The outage was reported for the channels without history.
			c, cancel := context.WithTimeout(context.Background(), wait)
			defer cancel()
			if _, err := outages.Next(c); err != nil {
				t.Fatalf("no BrokerOutageEvent: %v", err)
			}
			if st := servers[1].HistoryStats(); st.BrokerOutages == 0 || st.Lost != 0 {
				t.Fatalf("HistoryStats of instance 1: %+v", st)
			}
		})
	}
}

// collectHistory reads the publications of channel from c until one with
// data last.
func collectHistory(t *testing.T, c *sctest.Client, channel, last string) []pubAt {
	t.Helper()
	var out []pubAt
	deadline := time.Now().Add(60 * time.Second)
	for {
		f, err := c.Next(time.Until(deadline))
		if err != nil {
			t.Fatalf("after %d publications: %v", len(out), err)
		}
		p, ok := sctest.ParsePacket(f.Text())
		if !ok || p.Event == nil || *p.Event != "#publish" {
			continue
		}
		var d pubAt
		if err := json.Unmarshal(p.Data, &d); err != nil || d.Channel != channel {
			continue
		}
		out = append(out, d)
		if string(d.Data) == strconv.Quote(last) {
			return out
		}
	}
}

// checkDelivered checks that got is gap-free, in order, without
// duplicates, and holds every acknowledged publish in order.
func checkDelivered(got []pubAt, acked []string) string {
	idx := map[string]int{}
	for i, p := range got {
		var s string
		_ = json.Unmarshal(p.Data, &s)
		if _, dup := idx[s]; dup {
			return fmt.Sprintf("%q delivered twice", s)
		}
		idx[s] = i
		if p.Offset == nil || p.Epoch == nil {
			return fmt.Sprintf("publication %d has no position", i)
		}
		if i > 0 && (*p.Epoch != *got[i-1].Epoch || *p.Offset != *got[i-1].Offset+1) {
			return fmt.Sprintf("publication %d at offset %d epoch %s follows offset %d epoch %s", i, *p.Offset, *p.Epoch, *got[i-1].Offset, *got[i-1].Epoch)
		}
	}
	prev := -1
	for _, a := range acked {
		i, ok := idx[a]
		if !ok {
			return fmt.Sprintf("acknowledged publish %s never delivered (%d acknowledged, %d delivered)", a, len(acked), len(got))
		}
		if i < prev {
			return fmt.Sprintf("acknowledged publish %s out of order", a)
		}
		prev = i
	}
	return ""
}

// Redis without persistence restarted: the history is lost, every
// subscriber is told (sc.recovery with recovered false), and the channel
// goes on in a new epoch.
func TestHistoryBrokerLostHistory(t *testing.T) {
	t.Parallel()
	brokertest.URL(t, "redis")
	proc := brokertest.StartProcess(t, "redis")
	opts := historyOptions(100)
	opts.BrokerTimeout = 2 * time.Second
	var subs []*sctest.Client
	var servers []*sc.Server
	for range 2 {
		b, err := redisbroker.New(proc.URL(), redisbroker.Options{MinBackoff: 50 * time.Millisecond, MaxBackoff: 500 * time.Millisecond})
		if err != nil {
			t.Fatal(err)
		}
		opts.Broker = b
		srv := newServer(t, opts)
		c := srv.dial(t, &sctest.Options{AutoPong: true})
		c.Handshake(nil)
		c.Subscribe("h.lost")
		nextRecovery(t, c)
		subs = append(subs, c)
		servers = append(servers, srv.Server)
	}
	pub := subs[0]
	for i := range 3 {
		publishAck(t, pub, "h.lost", i)
	}
	var before pubAt
	for _, c := range subs {
		for range 3 {
			before = nextPub(t, c)
		}
	}
	proc.Stop()
	time.Sleep(500 * time.Millisecond)
	proc.Start()
	for n, c := range subs {
		rec := nextRecovery(t, c)
		if rec.Recovered == nil || *rec.Recovered {
			t.Fatalf("subscriber %d: %+v", n, rec)
		}
	}
	sctest.Eventually(t, "a publish on the restarted Redis", func() bool {
		return pub.Invoke("#publish", map[string]any{"channel": "h.lost", "data": "after"}).Error == nil
	})
	for n, c := range subs {
		p := nextPub(t, c)
		if *p.Epoch == *before.Epoch || string(p.Data) != `"after"` {
			t.Fatalf("subscriber %d after the loss: offset %d epoch %s (before: %s)", n, *p.Offset, *p.Epoch, *before.Epoch)
		}
	}
	for n, srv := range servers {
		if st := srv.HistoryStats(); st.Lost == 0 {
			t.Fatalf("instance %d did not count the loss: %+v", n, st)
		}
	}
}
