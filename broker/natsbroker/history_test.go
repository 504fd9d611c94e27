package natsbroker_test

import (
	"context"
	"strconv"
	"testing"
	"time"

	"github.com/socketcluster-go/socketcluster/broker"
	"github.com/socketcluster-go/socketcluster/broker/brokertest"
	"github.com/socketcluster-go/socketcluster/broker/natsbroker"
)

// A nats-server with JetStream on file storage killed with SIGKILL and
// restarted: no acknowledged publish is lost, every subscriber gets them
// once, in order.
func TestHistoryNATSRestart(t *testing.T) {
	t.Parallel()
	srv := brokertest.StartProcess(t, "nats", "-js", "-sd", t.TempDir())
	opts := natsbroker.Options{Prefix: uniquePrefix(), ReconnectWait: 200 * time.Millisecond}
	h := brokertest.NewHistoryRecorder()
	ch := "restart"
	h.AddChannels(ch)
	sub := startHistNATS(t, srv.URL(), opts, h)
	if err := sub.Subscribe(ctx(t), []string{ch}); err != nil {
		t.Fatal(err)
	}
	pub := startHistNATS(t, srv.URL(), opts, brokertest.NewHistoryRecorder())
	var acked []string
	fails := 0
	done := make(chan struct{})
	go func() {
		defer close(done)
		for i := range 600 {
			c, cancel := context.WithTimeout(context.Background(), 3*time.Second)
			_, err := pub.PublishHistory(c, ch, []byte(strconv.Itoa(i)), brokertest.HistoryOptionsFor(ch))
			cancel()
			if err == nil {
				acked = append(acked, strconv.Itoa(i))
			} else {
				fails++
			}
			time.Sleep(2 * time.Millisecond)
		}
	}()
	time.Sleep(300 * time.Millisecond)
	srv.Stop() // SIGKILL
	time.Sleep(time.Second)
	srv.Start()
	<-done
	waitUntil(t, 60*time.Second, "the last acknowledged publication", func() bool {
		got := h.Got(ch)
		return len(got) > 0 && len(acked) > 0 && string(got[len(got)-1].Payload) == acked[len(acked)-1]
	})
	time.Sleep(300 * time.Millisecond)
	got := h.Got(ch)
	if d := checkAcked(got, acked); d != "" {
		t.Fatal(d)
	}
	if n := h.Lost(ch); n != 0 {
		t.Fatalf("%d losses reported", n)
	}
	t.Logf("%d acknowledged, %d failed during the outage, %d delivered", len(acked), fails, len(got))
}

func startHistNATS(t *testing.T, url string, opts natsbroker.Options, h broker.Handler) *natsbroker.Broker {
	t.Helper()
	b, err := natsbroker.New(url, opts)
	if err != nil {
		t.Fatal(err)
	}
	brokertest.Start(t, b, h)
	return b
}

// checkAcked checks that got is gap-free, in order, without duplicates,
// and holds every acknowledged publish in order.
func checkAcked(got []broker.Publication, acked []string) string {
	seen := map[string]int{}
	for i, p := range got {
		if _, dup := seen[string(p.Payload)]; dup {
			return "delivered twice: " + string(p.Payload)
		}
		seen[string(p.Payload)] = i
		if i > 0 && (p.Epoch != got[i-1].Epoch || p.Offset != got[i-1].Offset+1) {
			return "gap or new epoch at delivery " + strconv.Itoa(i)
		}
	}
	prev := -1
	for _, a := range acked {
		i, ok := seen[a]
		if !ok {
			return "acknowledged publish " + a + " never delivered"
		}
		if i < prev {
			return "acknowledged publish " + a + " out of order"
		}
		prev = i
	}
	return ""
}
