// Package prommetrics exports a socketcluster.Server's counters as
// Prometheus metrics. The library itself does not depend on Prometheus;
// register this collector where you serve /metrics:
//
//	reg := prometheus.NewRegistry()
//	reg.MustRegister(prommetrics.NewCollector(srv, "socketcluster"))
//
// or take NewRegistry, which adds the Go runtime and process collectors as
// cmd/scserver serves them (the Grafana dashboard and alert rules in
// deploy/ query exactly those metrics).
package prommetrics

import (
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	sc "github.com/socketcluster-go/socketcluster"
	"github.com/socketcluster-go/socketcluster/history"
)

// Collector reads Server.Stats at each scrape.
type Collector struct {
	srv *sc.Server

	clients, pending, channels, ready, brokerConnected                     *prometheus.Desc
	handshakes, bytesIn, bytesOut                                          *prometheus.Desc
	connections, disconnections, publishes, deliveries, batched, slow, brk *prometheus.Desc
	httpRefusals, refusedUpgrades, rateLimited, refusedOrigins             *prometheus.Desc
	compressions, compressionIn, compressionOut                            *prometheus.Desc

	history []historyMetric // Server.HistoryStats
}

// historyMetric is one counter of Server.HistoryStats.
type historyMetric struct {
	desc *prometheus.Desc
	get  func(history.Stats) int64
}

// NewRegistry returns a registry with srv's collector under namespace, the
// Go runtime collector and the process collector: what cmd/scserver serves
// at /metrics.
func NewRegistry(srv *sc.Server, namespace string) *prometheus.Registry {
	reg := prometheus.NewRegistry()
	reg.MustRegister(NewCollector(srv, namespace),
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return reg
}

// NewCollector returns a collector of srv's metrics under namespace.
func NewCollector(srv *sc.Server, namespace string) *Collector {
	d := func(name, help string) *prometheus.Desc {
		return prometheus.NewDesc(prometheus.BuildFQName(namespace, "", name), help, nil, nil)
	}
	return &Collector{
		srv:             srv,
		clients:         d("clients", "Sockets that completed the SocketCluster handshake."),
		pending:         d("pending_clients", "Sockets still in the handshake."),
		channels:        d("channels", "Channels with at least one local subscriber."),
		ready:           d("ready", "1 when the server is ready and not draining."),
		brokerConnected: d("broker_connected", "1 while the broker is connected to its bus (always 1 for the in-process broker)."),
		handshakes:      d("handshakes_total", "SocketCluster handshakes completed."),
		bytesIn:         d("received_bytes_total", "Payload bytes of the WebSocket messages received."),
		bytesOut:        d("sent_bytes_total", "Bytes of the WebSocket frames written."),
		connections:     d("connections_total", "WebSocket connections accepted."),
		disconnections:  d("disconnections_total", "Sockets closed."),
		publishes:       d("publishes_total", "Messages published (client, server and from the broker)."),
		deliveries:      d("deliveries_total", "Publish frames queued to sockets."),
		batched:         d("batched_deliveries_total", "Deliveries written by a batched send (one io_uring submission for many sockets)."),
		slow:            d("slow_consumers_total", "Sockets disconnected because their outbound queue was full."),
		brk:             d("broker_errors_total", "Failed broker operations and broker outages."),
		httpRefusals:    d("http_refusals_total", "HTTP connections dropped before a complete request (header too large, too slow, malformed)."),
		refusedUpgrades: prometheus.NewDesc(prometheus.BuildFQName(namespace, "", "refused_upgrades_total"),
			"WebSocket upgrades refused by a connection limit (connections, connections_per_address, handshake_rate).", []string{"limit"}, nil),
		history: []historyMetric{
			{d("history_publishes_total", "Publishes on history channels stored by the broker and acknowledged."), func(h history.Stats) int64 { return h.Publishes }},
			{d("history_publish_failures_total", "Publishes on history channels the broker did not confirm (answered with an error)."), func(h history.Stats) int64 { return h.PublishFailures }},
			{d("history_recoveries_total", "Client recoveries that delivered every missed publication."), func(h history.Stats) int64 { return h.Recoveries }},
			{d("history_recovery_failures_total", "Client recoveries refused: position older than the history or of another epoch."), func(h history.Stats) int64 { return h.RecoveryFailures }},
			{d("history_lost_total", "Times publications of a history channel were missed by this instance and no longer in the history."), func(h history.Stats) int64 { return h.Lost }},
			{d("broker_outages_total", "Broker connection losses (channels without history lose what other instances publish meanwhile)."), func(h history.Stats) int64 { return h.BrokerOutages }},
		},
		rateLimited:    d("rate_limited_sockets_total", "Sockets closed for going over the inbound rate limit (close code 4101)."),
		refusedOrigins: d("origin_refusals_total", "WebSocket upgrades refused (403) for an origin not allowed."),
		compressions:   d("compressions_total", "Messages compressed with permessage-deflate (a publish counts once for all its subscribers)."),
		compressionIn:  d("compression_in_bytes_total", "Size of the messages compressed with permessage-deflate."),
		compressionOut: d("compression_out_bytes_total", "Size of those messages once compressed."),
	}
}

// Describe implements prometheus.Collector.
func (c *Collector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{c.clients, c.pending, c.channels, c.ready, c.connections, c.disconnections, c.publishes, c.deliveries, c.batched, c.slow, c.brk, c.httpRefusals, c.refusedUpgrades, c.rateLimited, c.refusedOrigins, c.compressions, c.compressionIn, c.compressionOut, c.brokerConnected, c.handshakes, c.bytesIn, c.bytesOut} {
		ch <- d
	}
	for _, m := range c.history {
		ch <- m.desc
	}
}

// Collect implements prometheus.Collector.
func (c *Collector) Collect(ch chan<- prometheus.Metric) {
	s := c.srv.Stats()
	g := func(d *prometheus.Desc, v float64) { ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v) }
	k := func(d *prometheus.Desc, v int64) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, float64(v))
	}
	g(c.clients, float64(s.Clients))
	g(c.pending, float64(s.PendingClients))
	g(c.channels, float64(s.Channels))
	ready := 0.0
	if s.Ready {
		ready = 1
	}
	g(c.ready, ready)
	up := 0.0
	if s.BrokerUp {
		up = 1
	}
	g(c.brokerConnected, up)
	k(c.handshakes, s.Handshakes)
	k(c.bytesIn, s.BytesIn)
	k(c.bytesOut, s.BytesOut)
	k(c.connections, s.Connections)
	k(c.disconnections, s.Disconnections)
	k(c.publishes, s.Publishes)
	k(c.deliveries, s.Deliveries)
	k(c.batched, s.BatchedDeliveries)
	k(c.slow, s.SlowConsumers)
	k(c.brk, s.BrokerErrors)
	k(c.httpRefusals, s.HTTPRefusals)
	for _, l := range []struct {
		name string
		v    int64
	}{{sc.LimitConnections, s.RefusedConnections}, {sc.LimitConnectionsPerAddr, s.RefusedPerAddress}, {sc.LimitHandshakeRate, s.RefusedHandshakeRate}} {
		ch <- prometheus.MustNewConstMetric(c.refusedUpgrades, prometheus.CounterValue, float64(l.v), l.name)
	}
	k(c.rateLimited, s.RateLimitedSockets)
	k(c.refusedOrigins, s.RefusedOrigins)
	k(c.compressions, s.Compressions)
	k(c.compressionIn, s.CompressionInBytes)
	k(c.compressionOut, s.CompressionOutBytes)
	hs := c.srv.HistoryStats()
	for _, m := range c.history {
		k(m.desc, m.get(hs))
	}
}
