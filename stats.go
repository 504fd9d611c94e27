package socketcluster

import "sync/atomic"

// Stats is a snapshot of the server's counters, for metrics exporters.
type Stats struct {
	Clients        int   // sockets that completed the handshake
	PendingClients int   // sockets still connecting
	Channels       int   // channels with at least one local subscriber
	Connections    int64 // WebSockets accepted since start
	Disconnections int64 // sockets closed since start
	Publishes      int64 // messages published (client, server, and received from the broker)
	Deliveries     int64 // publish frames queued to sockets
	SlowConsumers  int64 // sockets disconnected for a full outbound queue
	BrokerErrors   int64 // failed broker operations and outage reports
	HTTPRefusals   int64 // HTTP connections dropped before a complete request (see HTTPServer)
	Ready          bool  // broker ready and not closing
}

type counters struct {
	connections    atomic.Int64
	disconnections atomic.Int64
	publishes      atomic.Int64
	deliveries     atomic.Int64
	brokerErrors   atomic.Int64
	httpRefusals   atomic.Int64
}

// Stats returns a snapshot of the server's counters.
func (srv *Server) Stats() Stats {
	channels := srv.hub.channelCount()
	return Stats{
		Clients:        srv.ClientsCount(),
		PendingClients: srv.PendingClientsCount(),
		Channels:       channels,
		Connections:    srv.counters.connections.Load(),
		Disconnections: srv.counters.disconnections.Load(),
		Publishes:      srv.counters.publishes.Load(),
		Deliveries:     srv.counters.deliveries.Load(),
		SlowConsumers:  srv.metrics.slowConsumers.Load(),
		BrokerErrors:   srv.counters.brokerErrors.Load(),
		HTTPRefusals:   srv.counters.httpRefusals.Load(),
		Ready:          srv.ready.Load() && !srv.closing.Load(),
	}
}
