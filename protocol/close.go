package protocol

import "strconv"

// CloseCode is the status code of a WebSocket close frame (docs/protocol.md
// §5.3). Codes 1000 and 4500–4999 stop the official client from
// reconnecting; 4000, 4001 and 1005 make it reconnect at once; every other
// code makes it back off.
type CloseCode int

// Close codes used by SocketCluster: RFC 6455's, the reference's 40xx, and
// this server's own 41xx.
const (
	CloseNormal             CloseCode = 1000
	CloseGoingAway          CloseCode = 1001
	CloseProtocolError      CloseCode = 1002
	CloseUnsupportedData    CloseCode = 1003
	CloseNoStatus           CloseCode = 1005 // never sent: "no code in the close frame"
	CloseAbnormal           CloseCode = 1006 // never sent: "connection lost without a close frame"
	CloseInvalidPayload     CloseCode = 1007
	ClosePolicyViolation    CloseCode = 1008
	CloseMessageTooBig      CloseCode = 1009
	CloseMandatoryExtension CloseCode = 1010
	CloseInternalError      CloseCode = 1011
	ClosePingTimeout        CloseCode = 4000
	ClosePongTimeout        CloseCode = 4001
	CloseSignTokenFailed    CloseCode = 4002
	CloseHandshakeFailed    CloseCode = 4003
	CloseSaveTokenFailed    CloseCode = 4004
	CloseHandshakeTimeout   CloseCode = 4005
	CloseBrokerBindFailed   CloseCode = 4006
	CloseConnectTimeout     CloseCode = 4007
	CloseHandshakeRejected  CloseCode = 4008
	CloseBeforeHandshake    CloseCode = 4009
	// CloseSlowConsumer is this server's code for a socket whose outbound
	// queue went over its limit, sent with SlowConsumerReason. It is in the
	// application range where the official client reconnects with back-off.
	CloseSlowConsumer CloseCode = 4100
	// CloseInboundRateLimit is this server's code for a socket that sent
	// more than its inbound rate limit allows, sent with
	// InboundRateLimitReason; the official client reconnects with back-off.
	CloseInboundRateLimit CloseCode = 4101
)

// Close reasons this server sends with its own codes.
const (
	SlowConsumerReason     = "Socket outbound queue limit exceeded (slow consumer)"
	InboundRateLimitReason = "Socket inbound rate limit exceeded"
)

var closeNames = map[CloseCode]string{
	CloseNormal: "CloseNormal", CloseGoingAway: "CloseGoingAway", CloseProtocolError: "CloseProtocolError",
	CloseUnsupportedData: "CloseUnsupportedData", CloseNoStatus: "CloseNoStatus", CloseAbnormal: "CloseAbnormal",
	CloseInvalidPayload: "CloseInvalidPayload", ClosePolicyViolation: "ClosePolicyViolation",
	CloseMessageTooBig: "CloseMessageTooBig", CloseMandatoryExtension: "CloseMandatoryExtension",
	CloseInternalError: "CloseInternalError", ClosePingTimeout: "ClosePingTimeout", ClosePongTimeout: "ClosePongTimeout",
	CloseSignTokenFailed: "CloseSignTokenFailed", CloseHandshakeFailed: "CloseHandshakeFailed",
	CloseSaveTokenFailed: "CloseSaveTokenFailed", CloseHandshakeTimeout: "CloseHandshakeTimeout",
	CloseBrokerBindFailed: "CloseBrokerBindFailed", CloseConnectTimeout: "CloseConnectTimeout",
	CloseHandshakeRejected: "CloseHandshakeRejected", CloseBeforeHandshake: "CloseBeforeHandshake",
	CloseSlowConsumer: "CloseSlowConsumer", CloseInboundRateLimit: "CloseInboundRateLimit",
}

// The reference's descriptions (socketcluster-client's socketProtocolErrorStatuses).
var closeTexts = map[CloseCode]string{
	1000: "Socket closed normally",
	1001: "Socket was disconnected",
	1002: "A WebSocket protocol error was encountered",
	1003: "Server terminated socket because it received invalid data",
	1005: "Socket closed without status code",
	1006: "Socket hung up",
	1007: "Message format was incorrect",
	1008: "Encountered a policy violation",
	1009: "Message was too big to process",
	1010: "Client ended the connection because the server did not comply with extension requirements",
	1011: "Server encountered an unexpected fatal condition",
	4000: "Server ping timed out",
	4001: "Client pong timed out",
	4002: "Server failed to sign auth token",
	4003: "Failed to complete handshake",
	4004: "Client failed to save auth token",
	4005: "Did not receive #handshake from client before timeout",
	4006: "Failed to bind socket to message broker",
	4007: "Client connection establishment timed out",
	4008: "Server rejected handshake from client",
	4009: "Server received a message before the client handshake",
}

// Text returns the reference's description of the code, or "" for a code
// it does not describe (this server's 41xx codes included: their reason
// says it).
func (c CloseCode) Text() string { return closeTexts[c] }

// String returns the constant's name and number, e.g.
// "ClosePongTimeout (4001)", or the bare number for other codes.
func (c CloseCode) String() string {
	if n, ok := closeNames[c]; ok {
		return n + " (" + strconv.Itoa(int(c)) + ")"
	}
	return strconv.Itoa(int(c))
}

// Valid reports whether the code may be sent in a close frame (RFC 6455
// §7.4: 1000–1003, 1007–1014, 3000–4999).
func (c CloseCode) Valid() bool {
	return (c >= 1000 && c <= 1003) || (c >= 1007 && c <= 1014) || (c >= 3000 && c <= 4999)
}

// StopsReconnect reports whether the official client stops reconnecting
// after a close with this code (1000 and 4500–4999).
func (c CloseCode) StopsReconnect() bool { return c == CloseNormal || (c >= 4500 && c <= 4999) }

// ReconnectsAtOnce reports whether the official client reconnects without
// back-off after a close with this code (4000, 4001, 1005).
func (c CloseCode) ReconnectsAtOnce() bool {
	return c == ClosePingTimeout || c == ClosePongTimeout || c == CloseNoStatus
}
