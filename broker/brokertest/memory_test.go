package brokertest_test

import (
	"testing"

	"github.com/socketcluster-go/socketcluster/broker"
	"github.com/socketcluster-go/socketcluster/broker/brokertest"
)

// The in-process broker is the reference implementation of the contract.
func TestMemory(t *testing.T) {
	t.Parallel()
	bus := broker.NewBus()
	brokertest.Run(t, func(*testing.T) broker.Broker { return broker.NewMemory(bus) })
}

func BenchmarkMemory(b *testing.B) {
	bus := broker.NewBus()
	brokertest.Bench(b, func(*testing.B) broker.Broker { return broker.NewMemory(bus) })
}

func TestMemoryHistory(t *testing.T) {
	t.Parallel()
	bus := broker.NewBus()
	brokertest.RunHistory(t, func(*testing.T) broker.History { return broker.NewMemory(bus) })
}
