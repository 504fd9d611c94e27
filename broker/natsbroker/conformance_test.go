package natsbroker_test

import (
	"testing"

	"github.com/socketcluster-go/socketcluster/broker"
	"github.com/socketcluster-go/socketcluster/broker/brokertest"
	"github.com/socketcluster-go/socketcluster/broker/natsbroker"
)

func TestConformance(t *testing.T) {
	t.Parallel()
	url := requireNATS(t)
	prefix := uniquePrefix()
	brokertest.Run(t, func(t *testing.T) broker.Broker {
		b, err := natsbroker.New(url, natsbroker.Options{Prefix: prefix})
		if err != nil {
			t.Fatal(err)
		}
		return b
	})
}

func BenchmarkNATS(b *testing.B) {
	url := requireNATS(b)
	prefix := uniquePrefix()
	brokertest.Bench(b, func(b *testing.B) broker.Broker {
		br, err := natsbroker.New(url, natsbroker.Options{Prefix: prefix})
		if err != nil {
			b.Fatal(err)
		}
		return br
	})
}

func TestHistoryConformance(t *testing.T) {
	t.Parallel()
	url := requireNATS(t)
	prefix := uniquePrefix()
	cleanupStreams(t, url, prefix)
	brokertest.RunHistory(t, func(t *testing.T) broker.History {
		b, err := natsbroker.New(url, natsbroker.Options{Prefix: prefix})
		if err != nil {
			t.Fatal(err)
		}
		return b
	})
}
