package protocol

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"

	"github.com/socketcluster-go/socketcluster/internal/wire"
)

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
func (e *Error) MarshalJSON() ([]byte, error) { return AppendError(nil, e) }

// StringError is an error sent as a bare JSON string, as
// request.error("just a string") does in the reference.
type StringError string

func (e StringError) Error() string { return string(e) }

// ValueError is an error response whose value is not an object (a string,
// a number…), as received from a client.
type ValueError struct{ Value Data }

func (e *ValueError) Error() string { return "socketcluster: error value " + string(e.Value) }

// The reference's named errors (docs/protocol.md §5.2), as the server and
// the client build them.

// TimeoutError is the answer to an invoke of event not answered in time.
func TimeoutError(event string) *Error {
	return NewError("TimeoutError", "Event response for "+event+" event timed out")
}

// BadConnectionError fails a call whose connection ended (typ is
// "disconnect" or "connectAbort"); msg differs between server and client.
func BadConnectionError(msg, typ string, code CloseCode, reason string) *Error {
	e := NewError("BadConnectionError", msg).With("type", typ).With("code", int(code))
	if reason != "" {
		e.With("reason", reason)
	}
	return e
}

// InvalidActionError reports an action the socket's state does not allow.
func InvalidActionError(msg string) *Error { return NewError("InvalidActionError", msg) }

// SocketProtocolError reports a close with code: the reference's text for
// the code, or one naming the code and reason.
func SocketProtocolError(code CloseCode, reason string) *Error {
	msg := code.Text()
	if msg == "" {
		msg = "Socket connection closed with status code " + strconv.Itoa(int(code))
		if reason != "" {
			msg += " and reason: " + reason
		}
	}
	return NewError("SocketProtocolError", msg).With("code", int(code))
}

// AppendError appends the wire form of err: an *Error with its name and
// fields ({"message":…,"name":…,…}; "message", "name" and "stack" fields
// are left out), a StringError as a bare string, a ValueError as its value,
// a json.Marshaler as what it marshals to, any other error as
// {"message": err.Error()}, a plain JavaScript Error.
func AppendError(dst []byte, err error) ([]byte, error) {
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
		v, err := MarshalData(f.Value)
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
