package redisbroker_test

import (
	"testing"

	"github.com/socketcluster-go/socketcluster/broker"
	"github.com/socketcluster-go/socketcluster/broker/brokertest"
	"github.com/socketcluster-go/socketcluster/broker/redisbroker"
)

func TestConformance(t *testing.T) {
	t.Parallel()
	url := requireRedis(t)
	for _, mode := range []struct {
		name    string
		sharded bool
	}{{"Classic", false}, {"Sharded", true}} {
		t.Run(mode.name, func(t *testing.T) {
			prefix := uniquePrefix()
			brokertest.Run(t, func(t *testing.T) broker.Broker {
				b, err := redisbroker.New(url, redisbroker.Options{Prefix: prefix, Sharded: mode.sharded})
				if err != nil {
					t.Fatal(err)
				}
				return b
			})
		})
	}
}

func benchRedis(b *testing.B, sharded bool) {
	url := requireRedis(b)
	prefix := uniquePrefix()
	brokertest.Bench(b, func(b *testing.B) broker.Broker {
		br, err := redisbroker.New(url, redisbroker.Options{Prefix: prefix, Sharded: sharded})
		if err != nil {
			b.Fatal(err)
		}
		return br
	})
}

func BenchmarkRedis(b *testing.B)        { benchRedis(b, false) }
func BenchmarkRedisSharded(b *testing.B) { benchRedis(b, true) }

func TestHistoryConformance(t *testing.T) {
	t.Parallel()
	url := requireRedis(t)
	for _, mode := range []struct {
		name    string
		sharded bool
	}{{"Classic", false}, {"Sharded", true}} {
		t.Run(mode.name, func(t *testing.T) {
			prefix := uniquePrefix()
			brokertest.RunHistory(t, func(t *testing.T) broker.History {
				b, err := redisbroker.New(url, redisbroker.Options{Prefix: prefix, Sharded: mode.sharded})
				if err != nil {
					t.Fatal(err)
				}
				return b
			})
		})
	}
}
