package relay

import (
	"context"

	"github.com/socketcluster-go/socketcluster/broker"
)

// standalone is the broker of a relay: none. A relay is one instance on
// its own (the workers are what spread channels over relays), so its
// publishes need no bus; the default in-process broker would only hand
// each publish back to the relay to be dropped.
type standalone struct{}

var _ broker.Broker = standalone{}

func (standalone) Start(context.Context, broker.Handler) error   { return nil }
func (standalone) Subscribe(context.Context, []string) error     { return nil }
func (standalone) Unsubscribe(context.Context, []string) error   { return nil }
func (standalone) Publish(context.Context, string, []byte) error { return nil }
func (standalone) Close() error                                  { return nil }
