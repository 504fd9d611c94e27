package prommetrics

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/socketcluster-go/socketcluster/broker/sccbroker"
	"github.com/socketcluster-go/socketcluster/scc/relay"
	"github.com/socketcluster-go/socketcluster/scc/state"
)

// metric is one value of a stats snapshot.
type metric struct {
	name, help string
	counter    bool
	value      func() float64
}

// funcCollector reads a stats snapshot at each scrape.
type funcCollector struct {
	snapshot func()
	descs    []*prometheus.Desc
	metrics  []metric
}

func newFuncCollector(namespace string, snapshot func(), ms []metric) *funcCollector {
	c := &funcCollector{snapshot: snapshot, metrics: ms}
	for _, m := range ms {
		c.descs = append(c.descs, prometheus.NewDesc(prometheus.BuildFQName(namespace, "", m.name), m.help, nil, nil))
	}
	return c
}

func (c *funcCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range c.descs {
		ch <- d
	}
}

func (c *funcCollector) Collect(ch chan<- prometheus.Metric) {
	c.snapshot()
	for i, m := range c.metrics {
		t := prometheus.GaugeValue
		if m.counter {
			t = prometheus.CounterValue
		}
		ch <- prometheus.MustNewConstMetric(c.descs[i], t, m.value())
	}
}

func b2f(b bool) float64 {
	if b {
		return 1
	}
	return 0
}

// NewSCCBrokerCollector exports the counters of an SCC worker's broker
// (sccbroker.Stats) under namespace, e.g. "socketcluster_scc".
func NewSCCBrokerCollector(b *sccbroker.Broker, namespace string) prometheus.Collector {
	var s sccbroker.Stats
	k := func(name, help string, v *uint64) metric {
		return metric{name, help, true, func() float64 { return float64(*v) }}
	}
	g := func(name, help string, v *int) metric {
		return metric{name, help, false, func() float64 { return float64(*v) }}
	}
	return newFuncCollector(namespace, func() { s = b.Stats() }, []metric{
		k("published_total", "Messages sent to scc-broker instances.", &s.Published),
		k("publish_failures_total", "Publishes an scc-broker did not acknowledge (refused, timed out, connection lost).", &s.PublishFailures),
		k("no_broker_total", "Publishes not relayed because no scc-broker was known for the channel.", &s.NoBroker),
		k("received_total", "Messages received from scc-broker instances.", &s.Received),
		k("echo_dropped_total", "Own messages that came back from a broker, dropped.", &s.EchoDropped),
		k("stale_dropped_total", "Messages that came from a broker the channel has moved away from (or no longer needed here), dropped to keep the order.", &s.StaleDropped),
		k("bad_packets_total", "Packets from brokers that are not {sender, messages}.", &s.BadPackets),
		k("bad_state_updates_total", "Cluster updates from scc-state without a valid broker list or time, and unusable broker URIs.", &s.BadStateUpdates),
		k("broker_updates_total", "Broker lists applied.", &s.BrokerUpdates),
		k("channels_moved_total", "Channel subscriptions moved to another broker by a broker list change.", &s.ChannelsMoved),
		k("join_failures_total", "Failed attempts to join the cluster (retried).", &s.JoinFailures),
		k("state_lost_total", "Connections to scc-state lost.", &s.StateLost),
		k("connect_failures_total", "Failed connection attempts to scc-state and scc-broker instances (retried).", &s.ConnectFailures),
		g("brokers", "scc-broker instances in the current list.", &s.Brokers),
		g("workers", "scc-worker instances in the latest worker list.", &s.Workers),
		g("channels", "Channels this worker needs from the cluster.", &s.Channels),
		g("unconfirmed_channels", "Channels needed that no broker has confirmed (their remote messages are missed meanwhile).", &s.Unconfirmed),
		{"joined", "1 once the worker joined the cluster.", false, func() float64 { return b2f(s.Joined) }},
	})
}

// NewStateCollector exports the counters of an scc-state server.
func NewStateCollector(st *state.Server, namespace string) prometheus.Collector {
	var s state.Stats
	k := func(name, help string, v *uint64) metric {
		return metric{name, help, true, func() float64 { return float64(*v) }}
	}
	return newFuncCollector(namespace, func() { s = st.Stats() }, []metric{
		{"brokers", "scc-broker instances in the cluster.", false, func() float64 { return float64(s.Brokers) }},
		{"workers", "scc-worker instances in the cluster.", false, func() float64 { return float64(s.Workers) }},
		k("auth_rejected_total", "Connections refused for a wrong authKey.", &s.AuthRejected),
		k("version_rejected_total", "Components refused for their version.", &s.VersionRejected),
		k("type_rejected_total", "Components refused for an unknown instanceType.", &s.TypeRejected),
		k("early_worker_joins_total", "Worker joins refused during the start-up delay.", &s.EarlyWorkerJoins),
		k("joins_total", "Joins.", &s.Joins),
		k("leaves_total", "Leaves (including disconnections).", &s.Leaves),
		k("updates_total", "Cluster updates invoked on components.", &s.Broadcasts),
		k("update_failures_total", "Cluster updates not acknowledged (retried while connected).", &s.BroadcastFailures),
	})
}

// NewRelayCollector exports the counters of an scc-broker relay (its
// SocketCluster server's own metrics come from NewCollector).
func NewRelayCollector(r *relay.Relay, namespace string) prometheus.Collector {
	var s relay.Stats
	k := func(name, help string, v *uint64) metric {
		return metric{name, help, true, func() float64 { return float64(*v) }}
	}
	return newFuncCollector(namespace, func() { s = r.Stats() }, []metric{
		{"joined", "1 while the relay is joined to the cluster.", false, func() float64 { return b2f(s.Joined) }},
		k("joins_total", "Successful joins.", &s.Joins),
		k("join_failures_total", "Failed joins (retried).", &s.JoinFailures),
		k("state_failures_total", "Failed connection attempts to scc-state (retried).", &s.StateFailures),
		k("auth_rejected_total", "Workers refused for a wrong authKey.", &s.AuthRejected),
	})
}
