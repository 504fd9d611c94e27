package client

import (
	"time"

	"github.com/socketcluster-go/socketcluster/protocol"
)

// Event is any value of a client listener stream; each type's EventName
// is the official client's event name.
type Event = protocol.Event

// ConnectingEvent: a connection attempt starts (Dial, Connect, or an
// automatic reconnect).
type ConnectingEvent struct{}

// ConnectEvent: the handshake succeeded. AuthError is the server's reason
// for refusing the token the client presented, if any.
type ConnectEvent struct {
	ID              string
	PingTimeout     time.Duration
	IsAuthenticated bool
	AuthError       error
}

// ConnectAbortEvent: a connection closed before its handshake completed.
type ConnectAbortEvent struct {
	Code   protocol.CloseCode
	Reason string
}

// DisconnectEvent: an open connection closed.
type DisconnectEvent struct {
	Code   protocol.CloseCode
	Reason string
}

// CloseEvent: a connection closed, in any state (after ConnectAbortEvent
// or DisconnectEvent). Reason is the close frame's reason, or the code's
// standard text when the frame had none.
type CloseEvent struct {
	Code   protocol.CloseCode
	Reason string
}

// ErrorEvent: something went wrong: a connection closed with a code other
// than 1000/1001 (a SocketProtocolError with a "code" field), a handshake
// failed, a server packet could not be handled.
type ErrorEvent struct{ Error error }

// KickOutEvent: the server removed the client from a channel
// (socket.KickOut on the server). The channel is dropped locally and not
// resubscribed. Message is the server's message (nil when absent).
type KickOutEvent struct {
	Channel string
	Message protocol.Data
}

// SubscribeEvent: the server acknowledged a subscription.
type SubscribeEvent struct{ Channel string }

// SubscribeFailEvent: the server refused a subscription; the channel is
// dropped.
type SubscribeFailEvent struct {
	Channel string
	Error   error
}

// UnsubscribeEvent: the client left a channel (Unsubscribe or kick-out).
type UnsubscribeEvent struct{ Channel string }

// AuthStateChangeEvent: the auth state changed. SignedAuthToken and
// AuthToken are set when becoming authenticated.
type AuthStateChangeEvent struct {
	OldAuthState    protocol.AuthState
	NewAuthState    protocol.AuthState
	SignedAuthToken string
	AuthToken       protocol.AuthToken
}

// AuthenticateEvent: the client is authenticated with a token (from the
// handshake, #setAuthToken, or Authenticate).
type AuthenticateEvent struct {
	SignedAuthToken string
	AuthToken       protocol.AuthToken
}

// DeauthenticateEvent: the client stopped being authenticated.
type DeauthenticateEvent struct {
	OldSignedAuthToken string
	OldAuthToken       protocol.AuthToken
}

// RemoveAuthTokenEvent: the stored token was deleted (#removeAuthToken
// from the server, Deauthenticate, or a failed Authenticate).
type RemoveAuthTokenEvent struct{ OldAuthToken protocol.AuthToken }

// RawEvent: a message from the server that is not a packet (the whole
// frame), or any binary frame.
type RawEvent struct {
	Message []byte
	Binary  bool
}

func (ConnectingEvent) EventName() string      { return "connecting" }
func (ConnectEvent) EventName() string         { return "connect" }
func (ConnectAbortEvent) EventName() string    { return "connectAbort" }
func (DisconnectEvent) EventName() string      { return "disconnect" }
func (CloseEvent) EventName() string           { return "close" }
func (ErrorEvent) EventName() string           { return "error" }
func (KickOutEvent) EventName() string         { return "kickOut" }
func (SubscribeEvent) EventName() string       { return "subscribe" }
func (SubscribeFailEvent) EventName() string   { return "subscribeFail" }
func (UnsubscribeEvent) EventName() string     { return "unsubscribe" }
func (AuthStateChangeEvent) EventName() string { return "authStateChange" }
func (AuthenticateEvent) EventName() string    { return "authenticate" }
func (DeauthenticateEvent) EventName() string  { return "deauthenticate" }
func (RemoveAuthTokenEvent) EventName() string { return "removeAuthToken" }
func (RawEvent) EventName() string             { return "raw" }
