package protocol

// Reserved event names (docs/protocol.md §2 and §3): packets whose event
// starts with "#" are the protocol's own.
const (
	EventHandshake       = "#handshake"
	EventPublish         = "#publish"
	EventSubscribe       = "#subscribe"
	EventUnsubscribe     = "#unsubscribe"
	EventAuthenticate    = "#authenticate"
	EventRemoveAuthToken = "#removeAuthToken"
	EventSetAuthToken    = "#setAuthToken"
	EventKickOut         = "#kickOut"
	EventDisconnect      = "#disconnect"
	// EventPing and EventPong are protocol version 1's ping and pong
	// (socketcluster-client 14): the raw messages "#1" and "#2". Version 2
	// pings and pongs are empty messages.
	EventPing = "#1"
	EventPong = "#2"
)

// Event is any value produced by a listener stream, on the server and on
// the client. Each event type's EventName is the reference's event name.
type Event interface{ EventName() string }
