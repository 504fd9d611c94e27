package socketcluster

import (
	"sync/atomic"

	"github.com/socketcluster-go/socketcluster/internal/wsconn"
)

// Stats is a snapshot of the server's counters, for metrics exporters.
type Stats struct {
	Clients        int   // sockets that completed the handshake
	PendingClients int   // sockets still connecting
	Channels       int   // channels with at least one local subscriber
	Connections    int64 // WebSockets accepted since start
	Handshakes     int64 // SocketCluster handshakes completed since start
	Disconnections int64 // sockets closed since start
	Publishes      int64 // messages published (client, server, and received from the broker)
	Deliveries     int64 // publish frames queued to sockets
	// BatchedDeliveries counts the deliveries written by a batched send
	// (one io_uring submission for many sockets; Options.DisableIOUring).
	BatchedDeliveries int64
	SlowConsumers     int64 // sockets disconnected for a full outbound queue
	BrokerErrors      int64 // failed broker operations and outage reports
	HTTPRefusals      int64 // HTTP connections dropped before a complete request (see HTTPServer)
	BytesIn           int64 // payload bytes of the WebSocket messages received
	BytesOut          int64 // bytes of the WebSocket frames written (headers included)

	// Upgrades refused by a connection limit (limits.go): MaxConnections
	// (503), MaxConnectionsPerAddress (429), MaxHandshakesPerSecond (503).
	RefusedConnections   int64
	RefusedPerAddress    int64
	RefusedHandshakeRate int64
	// RateLimitedSockets counts sockets closed with [protocol.CloseInboundRateLimit].
	RateLimitedSockets int64
	// RefusedOrigins counts upgrades refused (403) because their Origin is
	// not allowed by Options.Origins.
	RefusedOrigins int64
	Ready          bool // broker ready and not closing
	BrokerUp       bool // the broker is connected to its bus (BrokerConnected)

	// permessage-deflate (Options.PerMessageDeflate): messages compressed
	// (a publish counts once, however many subscribers receive it), and
	// their bytes before and after compression.
	Compressions        int64
	CompressionInBytes  int64
	CompressionOutBytes int64
}

type counters struct {
	connections    atomic.Int64
	handshakes     atomic.Int64
	disconnections atomic.Int64
	publishes      atomic.Int64
	deliveries     atomic.Int64
	batched        atomic.Int64
	brokerErrors   atomic.Int64
	httpRefusals   atomic.Int64
	slowConsumers  atomic.Int64
	bytesIn        atomic.Int64
	bytesOut       atomic.Int64

	refusedConnections   atomic.Int64
	refusedPerAddress    atomic.Int64
	refusedHandshakeRate atomic.Int64
	rateLimited          atomic.Int64
	refusedOrigins       atomic.Int64
}

// refused returns the counter of upgrades refused by limit (a Limit…
// constant).
func (c *counters) refused(limit string) *atomic.Int64 {
	switch limit {
	case LimitConnections:
		return &c.refusedConnections
	case LimitConnectionsPerAddr:
		return &c.refusedPerAddress
	default:
		return &c.refusedHandshakeRate
	}
}

// Stats returns a snapshot of the server's counters.
func (srv *Server) Stats() Stats {
	channels := srv.hub.channelCount()
	var z wsconn.CompressorStats
	if srv.compressor != nil {
		z = srv.compressor.Stats()
	}
	return Stats{
		Clients:           srv.ClientsCount(),
		PendingClients:    srv.PendingClientsCount(),
		Channels:          channels,
		Connections:       srv.counters.connections.Load(),
		Handshakes:        srv.counters.handshakes.Load(),
		Disconnections:    srv.counters.disconnections.Load(),
		Publishes:         srv.counters.publishes.Load(),
		Deliveries:        srv.counters.deliveries.Load(),
		BatchedDeliveries: srv.counters.batched.Load(),
		SlowConsumers:     srv.counters.slowConsumers.Load(),
		BrokerErrors:      srv.counters.brokerErrors.Load(),
		HTTPRefusals:      srv.counters.httpRefusals.Load(),
		BytesIn:           srv.counters.bytesIn.Load(),
		BytesOut:          srv.counters.bytesOut.Load(),

		RefusedConnections:   srv.counters.refusedConnections.Load(),
		RefusedPerAddress:    srv.counters.refusedPerAddress.Load(),
		RefusedHandshakeRate: srv.counters.refusedHandshakeRate.Load(),
		RateLimitedSockets:   srv.counters.rateLimited.Load(),
		RefusedOrigins:       srv.counters.refusedOrigins.Load(),
		Ready:                srv.ready.Load() && !srv.closing.Load(),
		BrokerUp:             srv.BrokerConnected(),

		Compressions:        z.Frames,
		CompressionInBytes:  z.InBytes,
		CompressionOutBytes: z.OutBytes,
	}
}

// ChannelCount is a channel and its number of local subscribers.
type ChannelCount struct {
	Channel     string
	Subscribers int // local sockets subscribed (the server's own exchange not counted)
}

// BusiestChannels returns up to n channels with the most local
// subscribers, most first (ties by name); channels only the server's own
// Exchange is subscribed to are left out. It walks every channel: call it
// for a dashboard, not per message.
func (srv *Server) BusiestChannels(n int) []ChannelCount {
	if n <= 0 {
		return nil
	}
	less := func(a, b ChannelCount) bool {
		return a.Subscribers > b.Subscribers || (a.Subscribers == b.Subscribers && a.Channel < b.Channel)
	}
	top := make([]ChannelCount, 0, n+1)
	h := srv.hub
	for i := range h.shards {
		sh := &h.shards[i]
		sh.mu.RLock()
		for name, c := range sh.channels {
			c.mu.Lock()
			cc := ChannelCount{Channel: name, Subscribers: c.subs.len()}
			c.mu.Unlock()
			if cc.Subscribers == 0 || (len(top) == n && !less(cc, top[n-1])) {
				continue
			}
			j := len(top)
			for j > 0 && less(cc, top[j-1]) {
				j--
			}
			top = append(top, ChannelCount{})
			copy(top[j+1:], top[j:])
			top[j] = cc
			if len(top) > n {
				top = top[:n]
			}
		}
		sh.mu.RUnlock()
	}
	return top
}

// ChannelCounts returns, for every channel with a local socket subscribed,
// the number of this instance's sockets subscribed to it (the server's own
// Exchange subscriptions are not counted).
func (srv *Server) ChannelCounts() map[string]int {
	out := make(map[string]int, srv.hub.channelCount())
	for i := range srv.hub.shards {
		sh := &srv.hub.shards[i]
		sh.mu.RLock()
		for name, c := range sh.channels {
			c.mu.Lock()
			n := c.subs.len()
			c.mu.Unlock()
			if n > 0 {
				out[name] = n
			}
		}
		sh.mu.RUnlock()
	}
	return out
}
