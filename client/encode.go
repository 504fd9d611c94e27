package client

import (
	"encoding/json"
	"errors"
	"strconv"

	"github.com/socketcluster-go/socketcluster/internal/wire"
	"github.com/socketcluster-go/socketcluster/protocol"
)

// encodeError gives the wire form of an error answer: an *Error with its
// name and fields, a StringError as a bare string, a ValueError as its
// value, any other error as {"message": err.Error()}.
func encodeError(err error) ([]byte, error) {
	var se protocol.StringError
	var ve *protocol.ValueError
	var e *protocol.Error
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

// Errors of the client, by name (the official client's names; the
// protocol package builds them).

func errBadConnection(event, typ string, code int, reason string) *protocol.Error {
	return protocol.BadConnectionError("Event "+event+" was aborted due to a bad connection", typ, protocol.CloseCode(code), reason)
}
