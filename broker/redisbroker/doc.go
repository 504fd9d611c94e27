// Package redisbroker is a broker.Broker on Redis publish/subscribe, for
// running several server instances behind one Redis (standalone, Sentinel)
// or Redis Cluster.
//
//	b, err := redisbroker.New("redis://127.0.0.1:6379", redisbroker.Options{Prefix: "myapp:"})
//
// # Client library
//
// It uses github.com/redis/rueidis. Both rueidis and go-redis were measured
// publishing 128-byte messages to a local Redis 7 on the 2-core CI machine
// (the module bench/redislib: go test -bench Lib -benchmem there):
//
//	                                 go-redis v9.23   rueidis v1.0.79
//	1 publisher (round-trip bound)   14–17 µs/op      8–14 µs/op
//	32 concurrent publishers         12–15 µs/op      3.0 µs/op
//	allocations                      7 (240 B)/op     0
//
// With concurrent publishers rueidis carried 4–5 times as many messages per
// second (2.2 times, 7.2 vs 3.2 µs/op, in a run on a quieter machine).
//
// rueidis pipelines concurrent commands on shared connections by itself
// ("auto-pipelining"), which is exactly what many client goroutines
// publishing at once need; with go-redis every concurrent Publish takes a
// pooled connection and a round trip, and batching would have to be built
// on top. rueidis also gives direct control of dedicated pub/sub
// connections (hooks for messages and for unsubscriptions sent by the
// server, an error channel on disconnection), where go-redis's PubSub
// reconnects and resubscribes on its own, without telling the caller, so
// Handler.Status and Handler.Channels could not be honoured.
//
// # Publishing
//
// Publish sends PUBLISH (or SPUBLISH with Options.Sharded) through the
// shared, auto-pipelined connections and returns when Redis replied. The
// messages one goroutine publishes on a channel reach Redis in order; on a
// cluster, classic PUBLISHes of a channel always go through the node that
// owns the channel's hash slot, so that their order is kept there too.
// While Redis is unreachable Publish fails.
//
// # Subscribing
//
// Subscriptions live on dedicated pub/sub connections: one for a
// standalone or Sentinel-managed Redis and for classic pub/sub on a
// cluster, one per master for sharded pub/sub on a cluster (SSUBSCRIBE must
// go to the shard that owns the channel's slot; the slot map comes from
// CLUSTER SLOTS). One goroutine applies every change, in the order the hub
// asked for them: a batch becomes SUBSCRIBE commands of up to
// Options.SubscribeBatch channels (in cluster sharded mode, one command per
// hash slot), all sent in one pipeline, and concurrent calls waiting at the
// same time share that round trip. Subscribe returns when Redis has
// confirmed, so a publish made afterwards, by any instance, reaches this
// one. When a slot moves to another node, Redis unsubscribes its sharded
// channels; the broker notices, reads the new slot map and subscribes them
// on their new node. While the cluster's nodes still disagree about the
// move (a MOVED or ASK reply even after re-reading the slot map), it tries
// again every second until the subscription takes.
//
// # Outages and reconnection
//
// When a pub/sub connection breaks (or a command on it fails at the
// connection level) the broker reports Handler.Status(err) once and
// reconnects: at once, then with a back-off that doubles from
// Options.MinBackoff (100ms) to Options.MaxBackoff (5s), ±20% jitter. Once
// connected, it subscribes every channel Handler.Channels returns, plus
// those Subscribe asked for, and reports Handler.Status(nil). Subscribe
// calls made in between fail with ErrNotConnected but are not forgotten:
// their channels are subscribed on reconnection. Unsubscribe always stops
// deliveries at once, and succeeds during an outage. Handler.Channels is
// called from the broker's own goroutine; it may call Subscribe, which then
// returns without waiting (the resubscription under way includes it).
//
// # Delivery, and what is lost
//
// Delivery is at most once, as in SocketCluster. Remote instances miss
// what is published
//
//   - while their pub/sub connection is down or being re-established,
//   - while a cluster slot moves, between Redis' unsubscription and the
//     broker's subscription on the new node,
//   - when the instance cannot keep up (below), and
//   - if Redis itself disconnects the connection for exceeding
//     client-output-buffer-limit (pubsub 32mb 8mb 60 by default); the
//     broker then reconnects as after an outage.
//
// Each pub/sub connection is read continuously by rueidis; a received
// message is only copied into a bounded queue (Options.QueueSize messages,
// default 65536, and Options.QueueBytes, default 64 MiB), and one goroutine
// takes messages from the queue and calls Handler.Deliver, in the order
// they were read. So a slow Deliver never stops the reading, and Redis
// never has to buffer for this instance. When the queue is full the newest
// message is dropped (what is delivered stays in order), counted in
// Stats().Dropped, and reported once as Handler.Status wrapping
// ErrOverflow; Status(nil) follows when the queue has drained to half.
//
// Messages one instance publishes on one channel are delivered in that
// order: they travel through one Redis node and one pub/sub connection.
// Messages from different instances, or on different channels, have no
// defined relative order. A publishing instance subscribed to its own
// channel receives its own messages back (Redis has no "no echo"); the hub
// drops them.
//
// # Channel names
//
// Redis channel names are binary-safe, so any string, including "",
// spaces, "*" or 10 KB names, is used as is, after Options.Prefix: the
// hub's channel c is the Redis channel Prefix+c, and no two hub channels
// share a Redis channel. Messages for names outside the prefix are
// ignored. On a cluster, a channel name with a hash tag ("{room42}:chat")
// is placed by its tag, like a key.
//
// # Channel history
//
// The Broker implements broker.History (see that package): for the
// channels the hub's HistoryHandler names, PublishHistory runs a Lua
// script that appends the publication to a Redis Stream
// (Prefix+"{h:"+channel+"}:s", trimmed to the history size with MAXLEN and
// to its age with XTRIM MINID), increments the channel's offset in a hash
// (Prefix+"{h:"+channel+"}:m", which also holds the epoch, a random string
// made when the hash is created) and publishes "<offset> <epoch> <payload>"
// on the channel, all atomically; both keys expire after the history TTL.
// The two keys share a hash tag, so the script works on a cluster; on a
// cluster in sharded mode the SPUBLISH goes out after the script (the
// shard channel may be in another slot). A Prefix must not hold an empty
// hash tag ("{}").
//
// Subscribers deliver a history channel's publications in offset order:
// one that arrives after a gap (a missed message, a concurrent publisher's
// late one) makes the delivery goroutine read the gap from the stream
// first (XREVRANGE); after a reconnection every subscribed history channel
// is read from its last delivered position before anything newer. When the
// stream no longer holds what was missed (trimmed, expired, or Redis lost
// it: the hash is gone and a new epoch starts) HistoryHandler.HistoryLost
// is called. With appendonly yes and appendfsync always, a publication
// acknowledged by PublishHistory survives a crash of Redis.
//
// # Requirements
//
// Redis 6 or later (RESP3); Redis 7 or later for Options.Sharded.
package redisbroker
