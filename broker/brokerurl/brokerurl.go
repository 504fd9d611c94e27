// Package brokerurl opens a broker from a URL, for command-line flags:
// "memory" (or ""), "redis://…", "rediss://…", "nats://…".
package brokerurl

import (
	"fmt"
	"strings"

	"github.com/socketcluster-go/socketcluster/broker"
	"github.com/socketcluster-go/socketcluster/broker/natsbroker"
	"github.com/socketcluster-go/socketcluster/broker/redisbroker"
)

// Open returns the broker named by spec. The connection itself is made when
// the server starts the broker; a wrong URL fails here with an error that
// names it.
func Open(spec string) (broker.Broker, error) {
	switch {
	case spec == "" || spec == "memory":
		return broker.NewMemory(nil), nil
	case strings.HasPrefix(spec, "redis://") || strings.HasPrefix(spec, "rediss://") || strings.HasPrefix(spec, "unix://"):
		return redisbroker.New(spec, redisbroker.Options{})
	case strings.HasPrefix(spec, "nats://") || strings.HasPrefix(spec, "tls://"):
		return natsbroker.New(spec, natsbroker.Options{})
	}
	return nil, fmt.Errorf("broker %q: unknown kind; use memory, redis://host:port or nats://host:port", spec)
}
