//go:build unix

package socketcluster_test

import (
	"encoding/json"
	"fmt"
	"testing"
	"time"

	sc "github.com/socketcluster-go/socketcluster"
	"github.com/socketcluster-go/socketcluster/broker/brokerurl"
	"github.com/socketcluster-go/socketcluster/internal/sctest"
)

// TestBrokerHang: two instances on a Redis or NATS server of the test's
// own, which is then frozen with SIGSTOP (it keeps its connections and
// answers nothing, the worst kind of outage). On the publishing instance,
// local subscribers still get every message at once and in order, the
// publisher's other requests are answered at once (also after a
// #subscribe that waits for the broker), and every publish is
// answered with a ClusterPublishError after Options.BrokerTimeout (while
// the broker is still frozen). After SIGCONT cross-instance delivery
// resumes, and what the other instance receives from the publisher is in
// order.
func TestBrokerHang(t *testing.T) {
	t.Parallel()
	for _, kind := range []string{"redis", "nats"} {
		t.Run(kind, func(t *testing.T) {
			proc, u := ownBroker(t, kind)
			const timeout = 3 * time.Second
			var clients []*sctest.Client
			for i := 0; i < 2; i++ {
				b, err := brokerurl.Open(u)
				if err != nil {
					t.Fatal(err)
				}
				_, addr := sctest.StartServer(t, sc.Options{Broker: b, BrokerTimeout: timeout})
				c := sctest.Dial(t, addr, &sctest.Options{AutoPong: true, QueueSize: 4096})
				c.Handshake(nil)
				c.Subscribe("hang")
				clients = append(clients, c)
			}
			a, b := clients[0], clients[1]
			if r := a.AwaitResponse(publishCid(a, "hang", "warm")); r.Error != nil {
				t.Fatalf("publish before the hang: %s", r.Raw)
			}
			readPubsAndAcks(t, a, "hang", 1, 0)
			if got := readPubsAndAcks(t, b, "hang", 1, 0); got[0].data != `"warm"` {
				t.Fatalf("cross-instance before the hang: %+v", got)
			}

			proc.Pause()
			t.Cleanup(proc.Resume) // before the servers close
			const n = 20
			sent := make(map[float64]time.Time)
			for i := range n {
				sent[publishCid(a, "hang", i)] = time.Now()
			}
			echo := a.NextCid()
			a.SendText(sctest.EventPacket("echo", "x", echo))
			got := readPubsAndAcks(t, a, "hang", n, n+1)
			var delivered []string
			for i, f := range got {
				switch {
				case f.pub:
					delivered = append(delivered, f.data)
				case f.rid == echo:
					if i != n {
						t.Fatalf("the echo was answered after a publish (frame %d), so the socket waited for the broker: %+v", i, got)
					}
				default:
					if errName(f.error) != "ClusterPublishError" {
						t.Fatalf("answer to publish %v during the hang: %s", f.rid, f.error)
					}
					if d := time.Since(sent[f.rid]); d > timeout+10*time.Second {
						t.Fatalf("publish %v answered after %v (BrokerTimeout %v)", f.rid, d, timeout)
					}
					delete(sent, f.rid)
				}
			}
			if len(delivered) != n {
				t.Fatalf("local deliveries: %v", delivered)
			}
			for i, d := range delivered {
				if d != fmt.Sprint(i) {
					t.Fatalf("local deliveries out of order: %v", delivered)
				}
			}
			if len(sent) != 0 {
				t.Fatalf("publishes not answered: %v", sent)
			}
			// A subscribe to a channel new to this instance waits for the
			// frozen broker; the socket's next call does not wait for it.
			a.SendText(sctest.EventPacket("#subscribe", map[string]any{"channel": "hang-new"}, a.NextCid()))
			if r := a.Invoke("echo", "after-subscribe"); string(r.Data) != `"after-subscribe"` {
				t.Fatalf("echo after a subscribe during the hang: %s", r.Raw)
			}

			proc.Resume()
			// Cross-instance delivery resumes; what b gets from a is in
			// order (some of the publishes made during the hang may arrive
			// late: the broker had them and did not confirm in time).
			deadline := time.Now().Add(30 * time.Second)
			last := -1
			for i := 100; ; i++ {
				publishCid(a, "hang", i)
				f, err := b.Next(500 * time.Millisecond)
				for err == nil {
					if p, ok := sctest.ParsePacket(f.Text()); ok && p.Event != nil && *p.Event == "#publish" {
						var d struct {
							Data int `json:"data"`
						}
						if json.Unmarshal(p.Data, &d) != nil {
							t.Fatalf("unexpected delivery %s", p.Raw)
						}
						if d.Data <= last {
							t.Fatalf("out of order on the other instance: %d after %d", d.Data, last)
						}
						last = d.Data
					}
					f, err = b.Next(100 * time.Millisecond)
				}
				if last >= 100 {
					break
				}
				if time.Now().After(deadline) {
					t.Fatal("cross-instance delivery did not resume after SIGCONT")
				}
			}
		})
	}
}
