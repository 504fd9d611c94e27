// Package minbin is a SocketCluster codec that is wire-compatible with the
// npm package sc-codec-min-bin (version 3.0.0, the latest, which uses
// msgpack-lite 0.1.26): MessagePack frames with packet compaction.
//
// # Using it
//
// Server side, set the codec option of the server:
//
//	opts := socketcluster.Options{Codec: minbin.New()}
//
// Client side, give the official client the npm codec; both sides must use
// it, as a client with the default JSON codec cannot talk to this one:
//
//	const socketClusterClient = require('socketcluster-client');
//	const socket = socketClusterClient.create({
//	  hostname: 'localhost', port: 8000,
//	  codecEngine: require('sc-codec-min-bin'),
//	});
//
// A *Codec holds no state and is safe for concurrent use.
//
// # Frames
//
// Every packet and every batch goes out as one binary WebSocket frame
// holding one MessagePack value; Encode always reports binary. Pings and
// pongs stay empty text frames: they never pass through a codec, on either
// side, and the official client recognises a ping only as the text "".
// The official client sends nothing else as text. It does not decode text
// frames sensibly with this codec (it would read a JavaScript string as a
// typed-array length), so a server must never send a packet as text.
//
// Decode reads the first MessagePack value of a binary frame and ignores
// any bytes after it. A text frame is handled as the reference does it,
// which is almost always an error; see Codec.Decode.
//
// # Packet compaction
//
// Before writing MessagePack, Encode rewrites each packet map (a map with
// a non-nil "event" or "rid"; every element of a batch):
//
//	{"event":"#publish","data":{"channel":C,"data":D}[,"cid":N]} → {"p":[C,D(,N)]}
//	{"event":E,"data":D[,"cid":N]}                             → {"e":[E,D(,N)]}
//	{"rid":N,"error":X,"data":D}                               → {"r":[N,X,D]}
//
// Absent values are written as nil, so [E, nil] also stands for a packet
// with no data, and "r" always has three elements. "p" is used only when
// the event is "#publish" and data is not nil; other keys of data are
// dropped. A cid is appended only when it is not nil. Keys that no rule
// consumes are kept, before the compacted key. A map with both "event" and
// "rid" gets "e" and then "r" (whose data is then nil, as "e" took it).
//
// Decode undoes it in the order "e", "p", "r", on the top-level value or on
// each element of a top-level array: "event", "data" and "cid" come from
// "e"; "event" becomes "#publish" and "data" {"channel","data"} from "p";
// "rid", "error" and "data" from "r". So after decoding, a packet that was
// sent without data has "data": nil, and every response has "error" and
// "data" keys, nil when they were absent: the reference client and server
// see null there too, which the protocol treats like absent for "error"
// (success) but which makes a response without data resolve to null rather
// than undefined. Missing elements of a short array leave keys absent. A
// nil top-level value, or a nil element of a top-level array, is an error
// (ErrNullPacket), as the reference fails reading a property of null.
//
// # Values
//
// Trees are made of map[string]any, []any, string, float64, bool, nil and
// []byte. Encode also takes Go integer and float types, json.Number,
// []string, map[string]string and []map[string]any (as a batch); other
// types fail with ErrUnsupportedType. Decode returns only the tree types.
//
//   - Numbers are JavaScript numbers. Encode writes an integral value in the
//     int32 range in the smallest integer format (-0 as 0) and anything else
//     as float 64, never float 32 or 64-bit integers. Decode reads every
//     numeric format as float64 (64-bit integers rounded as JavaScript does).
//   - []byte is MessagePack bin, which the JavaScript side reads as an
//     ArrayBuffer. Only an ArrayBuffer is written as bin by the npm codec: a
//     Node Buffer or a Uint8Array sent by a JavaScript peer arrives as a map
//     of index keys ({"0":1,"1":2}), a DataView, Date or Map as an empty
//     map. Encode writes 255-byte values with a bin 16 header, as
//     msgpack-lite does.
//   - Strings are read the way msgpack-lite's own UTF-8 reader reads them
//     (the npm codec hands it a Uint8Array, not a Buffer): valid UTF-8 as
//     usual, invalid sequences leniently (overlong forms accepted, a
//     truncated sequence borrowing the following bytes, a stray byte read as
//     Latin-1), lone surrogates becoming U+FFFD. Encode replaces each byte
//     of invalid UTF-8 with U+FFFD, as encoding/json does.
//   - Map keys that are not strings become the JavaScript property name:
//     numbers as JavaScript prints them, nil as "null", booleans as "true"
//     and "false", arrays joined with commas, bin as "[object
//     ArrayBuffer]", maps and ext values as "[object Object]". A later
//     duplicate key wins. A "__proto__" key is dropped (in JavaScript it
//     sets the prototype instead of a property).
//   - Ext values (never written by the npm codec, which registers no ext
//     types) decode to {"buffer": []byte, "type": float64} like
//     msgpack-lite's ExtBuffer; Encode writes that back as a plain map.
//   - Map keys are written in a fixed order, array indexes first in numeric
//     order, then the rest in byte order, so Encode is deterministic.
//   - Arrays and maps nest at most MaxDepth levels in a frame.
//
// The reference's batch encoder copies each element's own properties into
// a new object first, so Encode writes a non-map batch element as a map
// too: a string as {"0": first UTF-16 unit, ...}, an array as {"0": first
// element, ...}, anything else as an empty map.
//
// # Errors
//
// Decode errors are *Error values carrying the reference's JavaScript
// error name and exact message (ErrShortBuffer "BUFFER_SHORTAGE",
// ErrInvalidType, ErrNullPacket, ErrTooDeep, or a RangeError for a text
// frame), so a server can report what the reference reports.
package minbin
