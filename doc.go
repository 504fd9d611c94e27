// Package socketcluster is a SocketCluster server: it speaks the wire
// protocol of socketcluster-server 20.x, so browsers and apps using the
// official JavaScript client (socketcluster-client) connect to it
// unchanged, and it offers the server API of the reference (AGServer,
// AGServerSocket, AGExchange) in Go form.
//
// The examples are the best documentation; start with ExampleNew.
//
// # Shape of the API
//
//   - A Server is an http.Handler serving the WebSocket endpoint
//     (Options.Path, default "/socketcluster/"); ListenAndServe and Serve
//     are conveniences. Close shuts down gracefully: every client gets a
//     close frame with code 1001.
//   - Options has a usable zero value: every zero field takes the
//     reference's default (see each field).
//   - Everything the reference exposes as an async stream is a Stream:
//     server and socket events (Listener, or typed with Listen), transmits
//     by name (Socket.Receiver), invokes by name (Socket.Procedure), and
//     channel data (Exchange.Subscribe). Range over Stream.All with a
//     context; Close, Kill, backpressure and consumer stats behave as in the
//     reference. Streams were chosen over callbacks because they are the
//     reference's model (close/kill/backpressure semantics carry over
//     one-to-one); for the common case of serving a name on every socket,
//     Server.HandleProcedure and Server.HandleReceiver register plain
//     callbacks, which cost no goroutine per connection.
//   - Anything that waits takes a context.Context: Socket.Invoke (also
//     bounded by Options.AckTimeout, failing with a TimeoutError),
//     Exchange.InvokePublish, Socket.SetAuthToken, Server.Close.
//   - Errors crossing the wire are *Error values: a name, a message and
//     ordered extra fields, serialised exactly as the reference does.
//     Payloads arrive as Data (raw JSON, nil when absent, "null" when null)
//     and are sent from any Go value; Undefined sends no data at all.
//   - Middleware (SetMiddleware) is a function per line that returns nil to
//     allow (optionally after Action.SetData) or an error to block. Each
//     inbound decision runs in a goroutine of its own, bounded by
//     Options.MiddlewareTimeout; a function that decides at once can be
//     set with SetImmediateMiddleware to run in the socket's reader at no
//     cost beyond its own.
//
// # Names
//
// Reference names map to Go names by dropping "get" and capitalising:
// getBackpressure → Backpressure, getInboundBackpressure →
// InboundBackpressure, getListenerConsumerStatsList →
// ListenerConsumerStats, getState → State, kickOut → KickOut, and so on.
// The SocketCluster 14 forms exist for porting, all marked Deprecated:
// Server.On/Off, Socket.On (client messages), Socket.OnEvent (the socket's
// own events), Socket.Emit and Off, and AddMiddleware with the
// V14Middleware… types (docs/client-versions.md). docs/api-coverage.md maps
// every item of the reference's API documents to its Go equivalent.
//
// # Compression
//
// Options.PerMessageDeflate turns on permessage-deflate (RFC 7692), off by
// default as in the reference. It is negotiated without context takeover
// both ways, so that a publish is compressed once for all its subscribers
// and an idle connection holds no compression state; see DeflateOptions.
//
// # Scaling out
//
// Options.Broker connects instances: broker.Memory in one process
// (default), broker/redisbroker and broker/natsbroker across machines. While
// the broker is up, a publish reaches every subscriber of every instance
// once (no duplicates); what each instance guarantees is below.
//
// Delivery guarantees: a publish is delivered to the subscribers of the
// instance it was made on at once, without waiting for the broker, then
// handed to the broker in order (Options.BrokerTimeout bounds each call,
// Options.BrokerQueueLimit the publishes waiting for it). Each
// publisher's messages reach every subscriber in publish order. Other
// instances get them at most once: what the broker loses during an outage
// is lost for them. The publisher is answered once the broker confirmed
// (success), or with a *ClusterPublishError (a "ClusterPublishError" for
// clients) meaning "delivered on this instance, not confirmed for the
// cluster": publishing it again delivers it a second time here. Other
// errors mean nothing was delivered.
//
// Channels with history (Options.History, history.Rule) are stronger: a
// publish is answered once the broker stored it, and then reaches every
// subscriber of every instance exactly once and in order, broker outages
// included; publications carry a position (offset, epoch), a client that
// resubscribes with the last one it saw gets what it missed (or is told it
// cannot), and Server.History and the sc.history procedure read the
// history. Loss that cannot be avoided is reported: HistoryLostError
// warnings, BrokerOutageEvent, Server.HistoryStats. The wire convention, the
// contract per broker and the JavaScript helper are in docs/recovery.md.
//
// # Public servers
//
// Serve the Server with Server.HTTPServer (or ListenAndServe): request
// headers are capped (Options.MaxHeaderBytes, 431) and slow ones timed out.
// Options.MaxConnections, MaxConnectionsPerAddress (ClientAddressHeader
// behind a proxy) and MaxHandshakesPerSecond refuse upgrades over them
// (503, 429, 503); InboundMessageRate and InboundByteRate close a socket
// that sends too much with [protocol.CloseInboundRateLimit] (4101). A subscriber too
// slow for Options.OutboundQueueLimit is closed with [protocol.CloseSlowConsumer]
// (4100). Every refusal is counted in Stats and logged at most once per
// burst. All are off or generous in the zero Options, as in the reference;
// the README's section "A production configuration" shows values for
// cmd/scserver.
//
// CONCURRENCY.md in the repository states which goroutine owns which
// state and the lock order.
package socketcluster
