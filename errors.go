package socketcluster

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"

	"github.com/socketcluster-go/socketcluster/internal/wire"
)

// Close codes used by SocketCluster (docs/protocol.md §5.3). Codes 1000 and
// 4500–4999 stop the official client from reconnecting; 4000, 4001 and 1005
// make it reconnect at once; every other code makes it back off.
const (
	CloseNormal             = 1000
	CloseGoingAway          = 1001
	CloseProtocolError      = 1002
	CloseUnsupportedData    = 1003
	CloseNoStatus           = 1005
	CloseAbnormal           = 1006
	CloseInvalidPayload     = 1007
	ClosePolicyViolation    = 1008
	CloseMessageTooBig      = 1009
	CloseMandatoryExtension = 1010
	CloseInternalError      = 1011
	ClosePingTimeout        = 4000
	ClosePongTimeout        = 4001
	CloseSignTokenFailed    = 4002
	CloseHandshakeFailed    = 4003
	CloseHandshakeTimeout   = 4005
	CloseHandshakeRejected  = 4008
	CloseBeforeHandshake    = 4009
	// CloseSlowConsumer is this server's own code for a socket whose
	// outbound queue went over Options.OutboundQueueLimit, sent with the
	// reason SlowConsumerReason. It is in the application range where the
	// official client reconnects with back-off.
	CloseSlowConsumer = 4100
	// CloseInboundRateLimit is this server's own code for a socket that
	// sent more than Options.InboundMessageRate messages or
	// InboundByteRate bytes per second (beyond their bursts), sent with
	// the reason InboundRateLimitReason. The official client reconnects
	// with back-off.
	CloseInboundRateLimit = 4101
)

var closeTexts = map[int]string{
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

// SlowConsumerReason is the close reason sent with CloseSlowConsumer.
const SlowConsumerReason = "Socket outbound queue limit exceeded (slow consumer)"

// CloseText returns the reference's description of a close code, or "".
func CloseText(code int) string { return closeTexts[code] }

// ValidCloseCode reports whether code may be sent in a close frame.
func ValidCloseCode(code int) bool {
	return (code >= 1000 && code <= 1003) || (code >= 1007 && code <= 1014) || (code >= 3000 && code <= 4999)
}

// Field is one extra property of an Error, kept in order.
type Field struct {
	Key   string
	Value any
}

// Error is a SocketCluster error as it crosses the wire (docs/protocol.md §5.1):
// a message, an optional name and extra fields in order. On the wire it is
// {"message":…,"name":…,…fields}; an empty Name is left out (the client
// then sees the name "Error").
//
// Return an *Error from a procedure (Request.Error) or a middleware to give
// the client a named error, e.g. NewError("FailError", "it failed").
type Error struct {
	Name    string
	Message string
	Fields  []Field
}

// NewError returns an error with a name and message.
func NewError(name, message string) *Error { return &Error{Name: name, Message: message} }

// With sets a field (replacing one of the same key) and returns e.
func (e *Error) With(key string, value any) *Error {
	for i := range e.Fields {
		if e.Fields[i].Key == key {
			e.Fields[i].Value = value
			return e
		}
	}
	e.Fields = append(e.Fields, Field{key, value})
	return e
}

// Field returns the value of an extra field.
func (e *Error) Field(key string) (any, bool) {
	for _, f := range e.Fields {
		if f.Key == key {
			return f.Value, true
		}
	}
	return nil, false
}

func (e *Error) Error() string {
	if e.Name == "" {
		return e.Message
	}
	return e.Name + ": " + e.Message
}

// Is lets errors.Is match by name: errors.Is(err, &Error{Name: "TimeoutError"}).
func (e *Error) Is(target error) bool {
	t, ok := target.(*Error)
	return ok && t.Name != "" && t.Name == e.Name && (t.Message == "" || t.Message == e.Message)
}

// MarshalJSON writes the wire form.
func (e *Error) MarshalJSON() ([]byte, error) { return appendError(nil, e) }

// StringError is an error sent as a bare JSON string, as
// request.error("just a string") does in the reference.
type StringError string

func (e StringError) Error() string { return string(e) }

// ValueError is an error response whose value is not an object (a string,
// a number…), as received from a client.
type ValueError struct{ Value Data }

func (e *ValueError) Error() string { return "socketcluster: error value " + string(e.Value) }

// Sentinel errors of the Go API.
var (
	// ErrClosed: the socket or server is closed.
	ErrClosed = errors.New("socketcluster: closed")
	// ErrAlreadySent: a request was answered twice.
	ErrAlreadySent = errors.New("socketcluster: response already sent")
)

// Errors the server produces, by name (docs/protocol.md §5.2).
func errTimeout(event string) *Error {
	return NewError("TimeoutError", "Event response for "+event+" event timed out")
}

func errBadConnection(msg, typ string, code int, reason string) *Error {
	e := NewError("BadConnectionError", msg).With("type", typ).With("code", code)
	if reason != "" {
		e.With("reason", reason)
	}
	return e
}

func errInvalidAction(msg string) *Error { return NewError("InvalidActionError", msg) }

func errSocketProtocol(code int, reason string) *Error {
	msg := closeTexts[code]
	if msg == "" {
		msg = "Socket connection closed with status code " + strconv.Itoa(code)
		if reason != "" {
			msg += " and reason: " + reason
		}
	}
	return NewError("SocketProtocolError", msg).With("code", code)
}

// appendError writes the wire form of err.
func appendError(dst []byte, err error) ([]byte, error) {
	var se StringError
	var ve *ValueError
	var e *Error
	switch {
	case errors.As(err, &se):
		return wire.AppendString(dst, string(se)), nil
	case errors.As(err, &ve):
		if ve.Value == nil {
			return append(dst, "null"...), nil
		}
		return append(dst, ve.Value...), nil
	case errors.As(err, &e):
	default:
		if m, ok := err.(json.Marshaler); ok {
			if b, mErr := m.MarshalJSON(); mErr == nil {
				return append(dst, b...), nil
			}
		}
		// A plain Go error is a plain JS Error: message only.
		dst = append(dst, `{"message":`...)
		dst = wire.AppendString(dst, err.Error())
		return append(dst, '}'), nil
	}
	dst = append(dst, `{"message":`...)
	dst = wire.AppendString(dst, e.Message)
	if e.Name != "" {
		dst = append(dst, `,"name":`...)
		dst = wire.AppendString(dst, e.Name)
	}
	for _, f := range e.Fields {
		if f.Key == "message" || f.Key == "name" || f.Key == "stack" {
			continue
		}
		dst = append(dst, ',')
		dst = wire.AppendString(dst, f.Key)
		dst = append(dst, ':')
		v, err := encodeValue(f.Value)
		if err != nil {
			return nil, fmt.Errorf("socketcluster: error field %q: %w", f.Key, err)
		}
		if v == nil {
			v = []byte("null")
		}
		dst = append(dst, v...)
	}
	return append(dst, '}'), nil
}

// UnmarshalError rebuilds the error of a response, or the authError of a
// handshake response, from its raw JSON (docs/protocol.md §5.1), as the
// reference client hydrates it: an object becomes an *Error (its
// "message" and "name", and every other key as a field, in order; a
// message that is not a string becomes "Invalid error message format");
// any other value, a string included, becomes a *ValueError holding a copy
// of it. Null, or nothing, gives nil.
func UnmarshalError(raw []byte) error {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 || string(raw) == "null" {
		return nil
	}
	e := &Error{}
	isObject := wire.Object(raw, func(key string, val []byte) {
		switch key {
		case "message":
			if s, ok := wire.Unquote(val); ok {
				e.Message = s
			} else {
				e.Message = "Invalid error message format"
			}
		case "name":
			if s, ok := wire.Unquote(val); ok {
				e.Name = s
			}
		default:
			var v any
			_ = json.Unmarshal(val, &v)
			e.With(key, v)
		}
	})
	if isObject {
		return e
	}
	return &ValueError{Value: Data(bytes.Clone(raw))}
}
