// Package brokerurl opens a broker from a URL, for command-line flags:
// "memory" (or ""), "redis://…", "rediss://…", "nats://…", "scc://…".
package brokerurl

import (
	"fmt"
	"net"
	"net/url"
	"strings"

	"github.com/socketcluster-go/socketcluster/broker"
	"github.com/socketcluster-go/socketcluster/broker/natsbroker"
	"github.com/socketcluster-go/socketcluster/broker/redisbroker"
	"github.com/socketcluster-go/socketcluster/broker/sccbroker"
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
	case strings.HasPrefix(spec, "scc://"):
		return sccbroker.Open(spec)
	}
	return nil, fmt.Errorf("broker %q: unknown kind; use memory, redis://host:port, nats://host:port or scc://state-host:7777", spec)
}

// OpenListening is Open for a server listening on listenAddr: an scc://
// URL without instancePort gets the port of listenAddr, which scc-state
// reports to the other workers.
func OpenListening(spec, listenAddr string) (broker.Broker, error) {
	return Open(withInstancePort(spec, listenAddr))
}

func withInstancePort(spec, listenAddr string) string {
	if !strings.HasPrefix(spec, "scc://") {
		return spec
	}
	u, err := url.Parse(spec)
	if err != nil || u.Query().Has("instancePort") {
		return spec
	}
	_, port, err := net.SplitHostPort(listenAddr)
	if err != nil || port == "" || port == "0" {
		return spec
	}
	q := u.Query()
	q.Set("instancePort", port)
	u.RawQuery = q.Encode()
	return u.String()
}
