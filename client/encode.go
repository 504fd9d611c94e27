package client

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"

	sc "github.com/socketcluster-go/socketcluster"
	"github.com/socketcluster-go/socketcluster/internal/wire"
)

// encodeValue turns an application value into raw JSON with the server
// API's rules (socketcluster.Request.End): Undefined → nil (absent), nil →
// null, Data and json.RawMessage as they are, []byte as Binary, anything
// else through encoding/json without HTML escaping.
func encodeValue(v any) ([]byte, error) {
	if v == any(sc.Undefined) {
		return nil, nil
	}
	switch x := v.(type) {
	case nil:
		return []byte("null"), nil
	case sc.Data:
		return x, nil
	case json.RawMessage:
		if x == nil {
			return []byte("null"), nil
		}
		return x, nil
	case []byte:
		return sc.Binary(x).MarshalJSON()
	case string:
		return wire.AppendString(nil, x), nil
	case *sc.Error:
		return x.MarshalJSON()
	}
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return nil, fmt.Errorf("client: cannot encode %T as JSON: %w", v, err)
	}
	b := buf.Bytes()
	return b[:len(b)-1], nil
}

// encodeError gives the wire form of an error answer: an *Error with its
// name and fields, a StringError as a bare string, a ValueError as its
// value, any other error as {"message": err.Error()}.
func encodeError(err error) ([]byte, error) {
	var se sc.StringError
	var ve *sc.ValueError
	var e *sc.Error
	switch {
	case errors.As(err, &e):
		return e.MarshalJSON()
	case errors.As(err, &se):
		return wire.AppendString(nil, string(se)), nil
	case errors.As(err, &ve):
		if ve.Value == nil {
			return []byte("null"), nil
		}
		return ve.Value, nil
	}
	if m, ok := err.(json.Marshaler); ok {
		if b, mErr := m.MarshalJSON(); mErr == nil && json.Valid(b) {
			return b, nil
		}
	}
	return append(wire.AppendString([]byte(`{"message":`), err.Error()), '}'), nil
}

// hydrateError rebuilds an error received in a response or an authError
// (PROTOCOL.md §5.1): an object becomes an *Error (message, name, every
// other key as a field, in order); anything else a *ValueError. It
// returns nil for null.
func hydrateError(raw []byte) error {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 || string(raw) == "null" {
		return nil
	}
	e := &sc.Error{}
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
	return &sc.ValueError{Value: sc.Data(bytes.Clone(raw))}
}

// appendInvoke appends an invoke as the official client writes it:
// {"event":E,"data":D,"cid":N} (no "data" key when absent).
func appendInvoke(dst []byte, event string, data []byte, cid uint64) []byte {
	dst = append(dst, `{"event":`...)
	dst = wire.AppendString(dst, event)
	if data != nil {
		dst = append(dst, `,"data":`...)
		dst = append(dst, data...)
	}
	dst = append(dst, `,"cid":`...)
	dst = strconv.AppendUint(dst, cid, 10)
	return append(dst, '}')
}

// appendTransmit appends {"event":E,"data":D}.
func appendTransmit(dst []byte, event string, data []byte) []byte {
	return wire.AppendEvent(dst, event, data, 0, false)
}

// publishData is the data of a #publish packet: {"channel":C,"data":D}.
func publishData(channel string, data []byte) []byte {
	b := wire.AppendString([]byte(`{"channel":`), channel)
	if data != nil {
		b = append(append(b, `,"data":`...), data...)
	}
	return append(b, '}')
}

// Errors of the client, by name (the official client's names).

func errTimeout(event string) *sc.Error {
	return sc.NewError("TimeoutError", "Event response for "+event+" event timed out")
}

func errBadConnection(event, typ string, code int, reason string) *sc.Error {
	e := sc.NewError("BadConnectionError", "Event "+event+" was aborted due to a bad connection").
		With("type", typ).With("code", code)
	if reason != "" {
		e.With("reason", reason)
	}
	return e
}

func errSocketProtocol(code int, reason string) *sc.Error {
	msg := sc.CloseText(code)
	if msg == "" {
		msg = "Socket connection closed with status code " + strconv.Itoa(code)
		if reason != "" {
			msg += " and reason: " + reason
		}
	}
	return sc.NewError("SocketProtocolError", msg).With("code", code)
}
