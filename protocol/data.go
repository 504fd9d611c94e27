package protocol

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"fmt"

	"github.com/socketcluster-go/socketcluster/internal/wire"
)

// Data is a payload as received from a client: the raw JSON text of the
// value, undecoded. A nil Data means the packet had no "data" key (absent,
// JavaScript's undefined); Data("null") is null. Decode it into any Go value
// with Decode, or pass it on unchanged (to a response, a transmit or a
// publish): it is written back byte for byte.
type Data []byte

// IsAbsent reports whether there was no value at all (undefined).
func (d Data) IsAbsent() bool { return d == nil }

// IsNull reports whether the value is JSON null.
func (d Data) IsNull() bool { return string(bytes.TrimSpace(d)) == "null" }

// Decode unmarshals the value into v (json.Unmarshal rules). Decoding an
// absent value leaves v unchanged.
func (d Data) Decode(v any) error {
	if d == nil {
		return nil
	}
	return json.Unmarshal(d, v)
}

// Value decodes the value into a generic tree (map[string]any, []any,
// float64, string, bool, nil); absent gives nil.
func (d Data) Value() any {
	var v any
	_ = d.Decode(&v)
	return v
}

// String returns the JSON text ("" when absent).
func (d Data) String() string { return string(d) }

// MarshalJSON writes the raw value (null when absent).
func (d Data) MarshalJSON() ([]byte, error) {
	if d == nil {
		return []byte("null"), nil
	}
	return d, nil
}

// UnmarshalJSON keeps a copy of the raw value.
func (d *Data) UnmarshalJSON(b []byte) error {
	*d = append((*d)[:0], b...)
	return nil
}

type undefined struct{}

// Undefined, passed as data, means "no value": the packet is sent without a
// "data" key, as JavaScript's undefined. A nil data is sent as null.
var Undefined = undefined{}

// Binary is a byte payload. It is sent as {"base64":true,"data":"…"} (the
// default codec's form of a Node Buffer); a top-level []byte given as data
// is sent the same way. Received binary payloads are not converted back:
// they arrive as that object, as with the reference.
type Binary []byte

// MarshalJSON writes {"base64":true,"data":"<standard base64>"}.
func (b Binary) MarshalJSON() ([]byte, error) {
	out := make([]byte, 0, 29+base64.StdEncoding.EncodedLen(len(b)))
	out = append(out, `{"base64":true,"data":"`...)
	out = base64.StdEncoding.AppendEncode(out, b)
	return append(out, `"}`...), nil
}

// MarshalData turns an application value into the raw JSON sent as the
// data of a packet, with the rules of Request.End, Socket.Transmit,
// Socket.Invoke and the publish methods (and of the client package):
//
//   - Undefined gives nil: the packet is sent without a "data" key (as
//     JavaScript's undefined); so does a nil Data.
//   - nil gives null.
//   - A Data or a json.RawMessage is sent as it is, byte for byte (a nil
//     json.RawMessage as null).
//   - A []byte or a Binary gives {"base64":true,"data":"…"}, the default
//     codec's form of a Node Buffer.
//   - An *Error gives its wire form: {"message":…,"name":…} and its fields.
//   - Anything else goes through encoding/json, without HTML escaping
//     ("<" stays "<", as JSON.stringify writes it); an error names the type
//     that could not be encoded.
func MarshalData(v any) (Data, error) {
	switch x := v.(type) {
	case undefined:
		return nil, nil
	case Data:
		return x, nil
	case json.RawMessage:
		if x == nil {
			return []byte("null"), nil
		}
		return Data(x), nil
	case []byte:
		return Binary(x).MarshalJSON()
	case nil:
		return []byte("null"), nil
	case string:
		return wire.AppendString(nil, x), nil
	case *Error:
		return AppendError(nil, x)
	}
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return nil, fmt.Errorf("socketcluster: cannot encode %T as JSON: %w", v, err)
	}
	b := buf.Bytes()
	return b[:len(b)-1], nil // drop the encoder's newline
}
