// Package natsbroker is a broker.Broker on NATS core publish/subscribe
// (github.com/nats-io/nats.go), for running several server instances on
// one NATS server or cluster. JetStream is not used.
//
//	b, err := natsbroker.New("nats://127.0.0.1:4222", natsbroker.Options{Prefix: "myapp.sc"})
//
// # Channel names and subjects
//
// Channel names may be any string, but NATS subjects may not hold spaces
// or control characters, and ".", "*" and ">" have a meaning there, so
// names are encoded. A channel maps to one subject:
//
//	<Prefix>.c<base64url(name)>   when the encoding is at most 256 bytes
//	                              (names of up to 192 bytes)
//	<Prefix>.h<hex(sha256(name))> for longer names
//
// base64url is the URL-safe alphabet (A–Z a–z 0–9 - _) without padding, so
// the last token is always one valid, wildcard-free token, even for the
// empty name (<Prefix>.c). The mapping is injective: the "c" and "h" forms
// differ in their first character, base64 is a bijection, and for hashed
// names the message itself carries the name (the data is framed as
// uvarint(len(name)) name payload); a receiver checks that the name hashes
// to the subject, so even a SHA-256 collision could not deliver a message
// on the wrong channel. Hashing keeps long names below the server's
// max_control_line (4 KB by default), which limits the PUB and SUB
// protocol lines. The frame adds len(name)+2 bytes to the payload, which
// counts against max_payload.
//
// Options.Prefix (default "sc") separates applications sharing NATS
// servers. Wildcard subscriptions are never made, so a channel never
// receives another's messages.
//
// # Publishing and subscribing
//
// All traffic goes through one connection. NATS core has no
// acknowledgement: Publish returns once nats.go has the message in its
// write buffer, which its flusher sends right away; messages are sent in
// the order Publish is called. Publish fails at once, with ErrNotConnected,
// while the connection is down (nats.go's reconnect buffer is disabled: a
// message is dropped rather than delivered late), and when it exceeds the
// server's max_payload (1 MB by default). PublishBatch, which the
// server's hub uses, adds the acknowledgement NATS core lacks: after the
// batch it waits for a PING/PONG round trip, so it returns once the NATS
// server has processed the messages, and fails when the server does not
// answer in time (a hung server).
//
// Subscribe sends the SUB of every channel of the batch, then waits for a
// PING/PONG round trip (Flush): when it returns, the server has the
// subscriptions and a publish made afterwards on the same server reaches
// this instance. On a NATS cluster, interest travels to the other servers
// asynchronously, so for a short moment a publish through another server
// may miss a brand-new subscription.
//
// The connection is made with NoEcho: the server does not send an
// instance its own messages, which the hub would drop anyway.
//
// # Outages and reconnection
//
// nats.go reconnects forever (Options.ReconnectWait between rounds, 1s by
// default, plus jitter), and sends every existing subscription again. On
// disconnection the broker reports Handler.Status(err). After reconnection
// it also subscribes whatever Handler.Channels returns that it lacks, waits
// for the server to confirm, then reports Handler.Status(nil). Subscribe
// calls made during the outage fail with ErrNotConnected but are kept and
// sent on reconnection. A connection that stops answering is detected by
// pings (Options.PingInterval, 10s by default, 3 unanswered).
//
// # Delivery, and what is lost
//
// Delivery is at most once, as in SocketCluster. Remote instances miss
// what is published while they are disconnected or reconnecting, and what
// they cannot keep up with. Every subscription feeds one Go channel, which
// a goroutine empties without ever blocking into a bounded queue
// (Options.QueueSize messages, default 65536, and Options.QueueBytes,
// default 64 MiB); one other goroutine calls Handler.Deliver, in the order
// messages were received. So a slow Deliver never slows the reading of the
// connection: the NATS server would otherwise disconnect this instance as
// a slow consumer. When the queue is full the newest message is dropped
// (what is delivered stays in order), counted in Stats().Dropped, and
// reported once as Handler.Status wrapping ErrOverflow; Status(nil)
// follows when the queue has drained to half.
//
// NATS keeps the order of the messages one connection publishes on one
// subject, and each channel is one subject, so the messages one instance
// publishes on a channel are delivered in that order. Messages from
// different instances, or on different channels, have no defined relative
// order.
//
// # Channel history
//
// The Broker implements broker.History with JetStream (the server must run
// with JetStream enabled). The channels with the same history limits share
// one stream, created on first use: "<PREFIX>_H<size>_<ttl ms>" (the
// prefix upper-cased, dots as underscores), file storage, subjects
// "<prefix>.H<size>_<ttl ms>.>", MaxMsgsPerSubject = size, MaxAge = ttl.
// Each stored message carries its channel offset and epoch in the headers
// Sc-Offset and Sc-Epoch. PublishHistory takes the channel's next offset
// from its last stored message (cached after this instance's own
// publishes) and publishes with Nats-Expected-Last-Subject-Sequence; when
// another publisher was first JetStream refuses it and it is retried with
// a fresh read, so offsets are unique and gap-free. Once JetStream has
// acknowledged it (on disk), it is sent to the subscribers on a separate
// live subject ("<prefix>.L<size>_<ttl ms>.<channel>"): core subscribers of
// the stored subject would also get the publishes JetStream refused.
//
// Subscribers deliver in offset order and read gaps, and what they missed
// while disconnected, from the stream with an ordered consumer. When the
// stream no longer holds it HistoryHandler.HistoryLost is called. A channel
// whose stored messages all expired starts a new epoch at its next
// publication; a channel with nothing stored has the position {0, ""}.
// Streams are not deleted by the broker (they are the history); a test or
// an application that used a temporary Prefix deletes them itself.
package natsbroker
