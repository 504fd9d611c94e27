package socketcluster

import (
	"time"

	"github.com/socketcluster-go/socketcluster/protocol"
)

// Event is any value produced by a listener stream. Each event type's
// EventName is the reference's event name; use a type switch, or Listen to
// get a typed stream.
type Event = protocol.Event

// AuthToken is the decoded payload of a socket's JWT.
type AuthToken = protocol.AuthToken

// ---- Server events (Server.Listener) ----

// HandshakeEvent: a WebSocket was accepted; the socket is connecting.
type HandshakeEvent struct{ Socket *Socket }

// ConnectionEvent: a socket completed its handshake.
type ConnectionEvent struct {
	Socket          *Socket
	ID              string
	PingTimeout     time.Duration
	IsAuthenticated bool
	AuthError       error // set when the token presented was refused
}

// ConnectionAbortEvent: a socket closed before completing its handshake.
type ConnectionAbortEvent struct {
	Socket *Socket
	Code   protocol.CloseCode
	Reason string
}

// DisconnectionEvent: an open socket closed.
type DisconnectionEvent struct {
	Socket *Socket
	Code   protocol.CloseCode
	Reason string
}

// ClosureEvent: a socket closed, in any state.
type ClosureEvent struct {
	Socket *Socket
	Code   protocol.CloseCode
	Reason string
}

// SubscriptionEvent: a socket subscribed to a channel.
type SubscriptionEvent struct {
	Socket              *Socket
	Channel             string
	SubscriptionOptions Data
}

// UnsubscriptionEvent: a socket left a channel.
type UnsubscriptionEvent struct {
	Socket  *Socket
	Channel string
}

// AuthenticationEvent: a socket authenticated.
type AuthenticationEvent struct {
	Socket    *Socket
	AuthToken AuthToken
}

// DeauthenticationEvent: a socket was deauthenticated.
type DeauthenticationEvent struct {
	Socket       *Socket
	OldAuthToken AuthToken
}

// AuthenticationStateChangeEvent: a socket's auth state changed.
type AuthenticationStateChangeEvent struct {
	Socket       *Socket
	OldAuthState protocol.AuthState
	NewAuthState protocol.AuthState
	AuthToken    AuthToken // only when becoming authenticated
}

// BadSocketAuthTokenEvent: a socket presented a bad token.
type BadSocketAuthTokenEvent struct {
	Socket          *Socket
	AuthError       error
	SignedAuthToken string
}

// ReadyEvent: the server (its broker) is ready. New emits it before it
// returns, so no listener created afterwards sees it (the reference emits
// it asynchronously, after its constructor returned): a server New
// returned is ready, IsReady reports it, and the v14 Server.On("ready", fn)
// calls a late fn at once.
type ReadyEvent struct{}

// WarningEvent: a non-fatal error (every socket error is also a warning).
type WarningEvent struct{ Warning error }

// ErrorEvent: on the server, a fatal HTTP/WebSocket server error; on a
// socket, any socket error.
type ErrorEvent struct{ Error error }

// SlowConsumerEvent: a socket exceeded Options.OutboundQueueLimit and is
// being disconnected with [protocol.CloseSlowConsumer]. Emitted on the server and on
// the socket.
type SlowConsumerEvent struct {
	Socket      *Socket
	QueuedBytes int
}

// ---- Socket events (Socket.Listener) ----

// ConnectEvent: the socket completed its handshake.
type ConnectEvent struct {
	ID              string
	PingTimeout     time.Duration
	IsAuthenticated bool
	AuthError       error
}

// ConnectAbortEvent: closed while connecting.
type ConnectAbortEvent struct {
	Code   protocol.CloseCode
	Reason string
}

// DisconnectEvent: closed while open.
type DisconnectEvent struct {
	Code   protocol.CloseCode
	Reason string
}

// CloseEvent: closed in any state.
type CloseEvent struct {
	Code   protocol.CloseCode
	Reason string
}

// EndEvent: after close handling and automatic unsubscriptions.
type EndEvent struct{}

// SubscribeEvent: the socket subscribed.
type SubscribeEvent struct {
	Channel             string
	SubscriptionOptions Data
}

// UnsubscribeEvent: the socket left a channel.
type UnsubscribeEvent struct{ Channel string }

// AuthenticateEvent: the socket authenticated.
type AuthenticateEvent struct{ AuthToken AuthToken }

// DeauthenticateEvent: the socket was deauthenticated.
type DeauthenticateEvent struct{ OldAuthToken AuthToken }

// AuthStateChangeEvent: the socket's auth state changed.
type AuthStateChangeEvent struct {
	OldAuthState protocol.AuthState
	NewAuthState protocol.AuthState
	AuthToken    AuthToken
}

// AuthTokenSignedEvent: SetAuthToken signed a token.
type AuthTokenSignedEvent struct{ SignedAuthToken string }

// BadAuthTokenEvent: the socket presented a bad token.
type BadAuthTokenEvent struct {
	AuthError       error
	SignedAuthToken string
}

// MessageEvent: every inbound message (pongs included), after the raw
// middleware.
type MessageEvent struct {
	Message []byte
	Binary  bool
}

// RawEvent: inbound data that is not a packet; Message is the whole frame.
type RawEvent struct {
	Message []byte
	Binary  bool
}

func (HandshakeEvent) EventName() string                 { return "handshake" }
func (ConnectionEvent) EventName() string                { return "connection" }
func (ConnectionAbortEvent) EventName() string           { return "connectionAbort" }
func (DisconnectionEvent) EventName() string             { return "disconnection" }
func (ClosureEvent) EventName() string                   { return "closure" }
func (SubscriptionEvent) EventName() string              { return "subscription" }
func (UnsubscriptionEvent) EventName() string            { return "unsubscription" }
func (AuthenticationEvent) EventName() string            { return "authentication" }
func (DeauthenticationEvent) EventName() string          { return "deauthentication" }
func (AuthenticationStateChangeEvent) EventName() string { return "authenticationStateChange" }
func (BadSocketAuthTokenEvent) EventName() string        { return "badSocketAuthToken" }
func (ReadyEvent) EventName() string                     { return "ready" }
func (WarningEvent) EventName() string                   { return "warning" }
func (ErrorEvent) EventName() string                     { return "error" }
func (SlowConsumerEvent) EventName() string              { return "slowConsumer" }
func (ConnectEvent) EventName() string                   { return "connect" }
func (ConnectAbortEvent) EventName() string              { return "connectAbort" }
func (DisconnectEvent) EventName() string                { return "disconnect" }
func (CloseEvent) EventName() string                     { return "close" }
func (EndEvent) EventName() string                       { return "end" }
func (SubscribeEvent) EventName() string                 { return "subscribe" }
func (UnsubscribeEvent) EventName() string               { return "unsubscribe" }
func (AuthenticateEvent) EventName() string              { return "authenticate" }
func (DeauthenticateEvent) EventName() string            { return "deauthenticate" }
func (AuthStateChangeEvent) EventName() string           { return "authStateChange" }
func (AuthTokenSignedEvent) EventName() string           { return "authTokenSigned" }
func (BadAuthTokenEvent) EventName() string              { return "badAuthToken" }
func (MessageEvent) EventName() string                   { return "message" }
func (RawEvent) EventName() string                       { return "raw" }
