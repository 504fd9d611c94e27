package sccbroker

import (
	"crypto/rand"
	"fmt"
	"log/slog"
	"net"
	"net/url"
	"strconv"
	"time"

	"github.com/socketcluster-go/socketcluster/client"
	"github.com/socketcluster-go/socketcluster/scc/mapping"
)

// ClientVersion is the scc-broker-client version this package speaks as,
// and reports to scc-state.
const ClientVersion = "9.2.0"

// Options configures a Broker. The zero value is usable; zero fields take
// scc-broker-client's defaults. Each field has a query parameter of the
// scc:// URL, named as scc-broker-client's option.
type Options struct {
	// AuthKey is the cluster's shared secret (authKey), sent in the query
	// of every connection to scc-state and to the scc-broker instances.
	AuthKey string
	// InstanceID names this worker in the cluster (instanceId) and is the
	// sender of its packets, so that it drops its own messages when they
	// come back. Default: a random UUID.
	InstanceID string
	// InstanceIP and InstanceIPFamily (default "IPv4") are reported to
	// scc-state (instanceIp); without them scc-state uses the connection's
	// address.
	InstanceIP       string
	InstanceIPFamily string
	// InstancePort is the port this worker serves clients on, reported to
	// scc-state (instancePort).
	InstancePort int
	// MappingEngine is "skeletonRendezvous" (default) or "simple"; every
	// worker of a cluster must use the same.
	MappingEngine string
	// ClientPoolSize is the number of connections to each scc-broker
	// (clientPoolSize, default 1); a channel always uses the same one.
	ClientPoolSize int
	// PubSubBatchDuration, when positive, groups the messages published
	// on a channel within that time into one packet (pubSubBatchDuration).
	PubSubBatchDuration time.Duration
	// RetryDelay is the delay between joins of the cluster that failed and
	// the base of the state reconnection delay (brokerRetryDelay, default
	// 2s; plus up to 1s at random).
	RetryDelay time.Duration
	// StateConnectTimeout (default 3s) and StateAckTimeout (default 2s)
	// bound the connection to scc-state and its calls.
	StateConnectTimeout time.Duration
	StateAckTimeout     time.Duration
	// StartTimeout bounds how long Start tries to reach scc-state before
	// the server's start fails (default 10s).
	StartTimeout time.Duration
	// BrokerAckTimeout bounds a publish's acknowledgement by an scc-broker
	// (default 10s); BrokerReconnect is the back-off of the broker
	// connections (default: socketcluster-client's, 10s + up to 10s).
	BrokerAckTimeout time.Duration
	BrokerReconnect  client.ReconnectOptions
	// Logger receives the retries and failures (rate-limited). Default
	// slog.Default().
	Logger *slog.Logger
}

func (o *Options) setDefaults() {
	if o.InstanceID == "" {
		o.InstanceID = newUUID()
	}
	if o.InstanceIPFamily == "" {
		o.InstanceIPFamily = "IPv4"
	}
	if o.MappingEngine == "" {
		o.MappingEngine = mapping.EngineSkeletonRendezvous
	}
	if o.ClientPoolSize <= 0 {
		o.ClientPoolSize = 1
	}
	if o.RetryDelay <= 0 {
		o.RetryDelay = 2 * time.Second
	}
	if o.StateConnectTimeout <= 0 {
		o.StateConnectTimeout = 3 * time.Second
	}
	if o.StateAckTimeout <= 0 {
		o.StateAckTimeout = 2 * time.Second
	}
	if o.StartTimeout <= 0 {
		o.StartTimeout = 10 * time.Second
	}
	if o.BrokerAckTimeout <= 0 {
		o.BrokerAckTimeout = 10 * time.Second
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
}

// newUUID returns a random (version 4) UUID.
func newUUID() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:16])
}

// ParseURL reads an scc:// broker URL:
//
//	scc://state-host[:7777][?authKey=…&instanceId=…&instancePort=8000
//	    &instanceIp=…&instanceIpFamily=IPv4&mappingEngine=simple
//	    &clientPoolSize=2&pubSubBatchDuration=5ms&retryDelay=2s
//	    &startTimeout=10s&stateConnectTimeout=3s&stateAckTimeout=2s
//	    &brokerAckTimeout=10s]
//
// and returns the scc-state WebSocket URL and the options. Durations are
// Go durations or bare milliseconds, as in scc-broker-client.
func ParseURL(spec string) (stateURL string, o Options, err error) {
	u, err := url.Parse(spec)
	if err != nil {
		return "", o, fmt.Errorf("broker %q: %v", spec, err)
	}
	if u.Scheme != "scc" {
		return "", o, fmt.Errorf("broker %q: the scheme must be scc://", spec)
	}
	if u.Hostname() == "" {
		return "", o, fmt.Errorf("broker %q: no scc-state host (scc://host:7777)", spec)
	}
	port := u.Port()
	if port == "" {
		port = "7777"
	}
	if n, err := strconv.Atoi(port); err != nil || n <= 0 || n > 65535 {
		return "", o, fmt.Errorf("broker %q: bad port %q", spec, port)
	}
	stateURL = "ws://" + net.JoinHostPort(u.Hostname(), port) + "/socketcluster/"
	q := u.Query()
	dur := func(name string, dst *time.Duration) error {
		v := q.Get(name)
		if v == "" {
			return nil
		}
		d, err := time.ParseDuration(v)
		if err != nil {
			n, nerr := strconv.Atoi(v)
			if nerr != nil {
				return fmt.Errorf("broker %q: %s=%q: want a duration such as 5ms or a number of milliseconds", spec, name, v)
			}
			d = time.Duration(n) * time.Millisecond
		}
		if d < 0 {
			return fmt.Errorf("broker %q: %s=%q: negative", spec, name, v)
		}
		*dst = d
		return nil
	}
	num := func(name string, dst *int) error {
		v := q.Get(name)
		if v == "" {
			return nil
		}
		n, err := strconv.Atoi(v)
		if err != nil || n <= 0 {
			return fmt.Errorf("broker %q: %s=%q: want a positive integer", spec, name, v)
		}
		*dst = n
		return nil
	}
	known := map[string]bool{"authKey": true, "instanceId": true, "instanceIp": true, "instanceIpFamily": true,
		"instancePort": true, "mappingEngine": true, "clientPoolSize": true, "pubSubBatchDuration": true,
		"retryDelay": true, "startTimeout": true, "stateConnectTimeout": true, "stateAckTimeout": true, "brokerAckTimeout": true}
	for k := range q {
		if !known[k] {
			return "", o, fmt.Errorf("broker %q: unknown parameter %q", spec, k)
		}
	}
	o.AuthKey = q.Get("authKey")
	o.InstanceID = q.Get("instanceId")
	o.InstanceIP = q.Get("instanceIp")
	o.InstanceIPFamily = q.Get("instanceIpFamily")
	o.MappingEngine = q.Get("mappingEngine")
	for _, e := range []error{
		num("instancePort", &o.InstancePort), num("clientPoolSize", &o.ClientPoolSize),
		dur("pubSubBatchDuration", &o.PubSubBatchDuration), dur("retryDelay", &o.RetryDelay),
		dur("startTimeout", &o.StartTimeout), dur("stateConnectTimeout", &o.StateConnectTimeout), dur("stateAckTimeout", &o.StateAckTimeout),
		dur("brokerAckTimeout", &o.BrokerAckTimeout),
	} {
		if e != nil {
			return "", o, e
		}
	}
	if o.InstancePort > 65535 {
		return "", o, fmt.Errorf("broker %q: instancePort %d out of range", spec, o.InstancePort)
	}
	if _, err := mapping.New(o.MappingEngine); err != nil {
		return "", o, fmt.Errorf("broker %q: %v", spec, err)
	}
	return stateURL, o, nil
}
