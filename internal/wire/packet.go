package wire

import (
	"bytes"
	"encoding/json"
	"math"
	"strconv"
	"unicode/utf8"
)

// Packet is one decoded SocketCluster packet. Raw fields alias the frame
// they were parsed from, except a Data or Error holding a number too large
// for a float64: that one is a copy with the number written as null
// (NullHugeNumbers), so that no such number is ever passed on. Cid and
// Rid are then ±Inf.
type Packet struct {
	Event    string
	HasEvent bool // "event" is a string
	Data     []byte
	Cid      float64
	HasCid   bool // "cid" is a number
	Rid      float64
	HasRid   bool // "rid" is a number
	Error    []byte
}

// IsEvent reports whether p is an event packet (transmit or invoke).
func (p *Packet) IsEvent() bool { return p.HasEvent }

// IsResponse reports whether p is a response packet.
func (p *Packet) IsResponse() bool { return !p.HasEvent && p.HasRid }

// Kind classifies a frame.
type Kind uint8

const (
	// Raw is anything that is not a packet or a batch.
	Raw Kind = iota
	// Single is one JSON object (which may still not be a packet).
	Single
	// Batch is a JSON array of values.
	Batch
)

// Parse decodes one text frame as the default codec does. A frame that does
// not start (after optional whitespace) with { or [, or is not valid JSON
// (as json.Valid has it), is Raw. For a Single frame, packets has one
// element with ok[0] telling whether it is a packet; for a Batch, one
// element per array element. An element that is not an object yields a
// zero Packet with ok false. The frame is checked and decoded in one pass.
func Parse(frame []byte, packets []Packet, ok []bool) ([]Packet, []bool, Kind) {
	i := skipWS(frame, 0)
	if i >= len(frame) || (frame[i] != '{' && frame[i] != '[') {
		return packets, ok, Raw
	}
	if frame[i] == '{' {
		p, good, end := parseObject(frame, i, 0)
		if end < 0 || skipWS(frame, end) != len(frame) {
			return packets, ok, Raw
		}
		return append(packets, p), append(ok, good), Single
	}
	// Batch.
	n := len(packets)
	if i = parseBatch(frame, i, &packets, &ok); i < 0 || skipWS(frame, i) != len(frame) {
		clear(packets[n:]) // they may point into frame
		return packets[:n], ok[:n], Raw
	}
	return packets, ok, Batch
}

// parseBatch reads and checks the array starting at b[i] ('['), appending
// one packet per element, and returns the index after it, or -1 when it is
// not valid JSON.
func parseBatch(b []byte, i int, packets *[]Packet, ok *[]bool) int {
	i = skipWS(b, i+1)
	if i < len(b) && b[i] == ']' {
		return i + 1
	}
	for {
		var end int
		if i < len(b) && b[i] == '{' {
			var p Packet
			var good bool
			p, good, end = parseObject(b, i, 1)
			*packets = append(*packets, p)
			*ok = append(*ok, good)
		} else {
			end, _ = validValue(b, i, 1)
			*packets = append(*packets, Packet{})
			*ok = append(*ok, false)
		}
		if end < 0 {
			return -1
		}
		i = skipWS(b, end)
		switch {
		case i >= len(b):
			return -1
		case b[i] == ']':
			return i + 1
		case b[i] != ',':
			return -1
		}
		i = skipWS(b, i+1)
	}
}

// parseObject reads and checks the object starting at b[i] ('{'), inside
// depth open arrays and objects. ok reports whether it is a packet (string
// event or numeric rid); end is the index after the object, or -1 when it
// is not valid JSON.
func parseObject(b []byte, i, depth int) (p Packet, ok bool, end int) {
	if depth == maxDepth {
		return p, false, -1
	}
	i = skipWS(b, i+1)
	if i < len(b) && b[i] == '}' {
		return p, false, i + 1
	}
	for {
		// key
		if i >= len(b) || b[i] != '"' {
			return p, false, -1
		}
		ks := i
		ke, plainKey := scanString(b, i)
		if ke < 0 {
			return p, false, -1
		}
		key := b[ks+1 : ke-1]
		i = skipWS(b, ke)
		if i >= len(b) || b[i] != ':' {
			return p, false, -1
		}
		// The value: a string is scanned as such (an event name needs
		// no decoding when it is plain ASCII); anything else is checked
		// as a value, which tells whether a number might need nulling.
		vs := skipWS(b, i+1)
		var ve int
		var plain, wide bool
		if vs < len(b) && b[vs] == '"' {
			ve, plain = scanString(b, vs)
		} else {
			ve, wide = validValue(b, vs, depth+1)
		}
		if ve < 0 {
			return p, false, -1
		}
		val := b[vs:ve]
		if !plainKey && hasEscape(key) {
			var k string
			if json.Unmarshal(b[ks:ke], &k) == nil {
				key = []byte(k)
			}
		}
		switch string(key) {
		case "event":
			switch {
			case val[0] != '"':
				p.Event, p.HasEvent = "", false
			case plain:
				p.Event, p.HasEvent = plainString(val[1:len(val)-1]), true
			default:
				p.Event, p.HasEvent = unquote(val), true
			}
		case "data":
			p.Data = nullHuge(val, wide)
		case "cid":
			p.Cid, p.HasCid = anyNumber(val)
		case "rid":
			p.Rid, p.HasRid = anyNumber(val)
		case "error":
			p.Error = nullHuge(val, wide)
		}
		i = skipWS(b, ve)
		switch {
		case i >= len(b):
			return p, false, -1
		case b[i] == '}':
			return p, p.HasEvent || p.HasRid, i + 1
		case b[i] != ',':
			return p, false, -1
		}
		i = skipWS(b, i+1)
	}
}

func number(v []byte) (float64, bool) {
	c := v[0]
	if c != '-' && (c < '0' || c > '9') {
		return 0, false
	}
	f, err := strconv.ParseFloat(string(v), 64)
	if err != nil || math.IsInf(f, 0) {
		return 0, false
	}
	return f, true
}

// anyNumber is number, but a number too large for a float64 is ±Inf
// rather than no number: JavaScript's JSON.parse reads 1e400 as Infinity,
// so the reference answers an invoke with "cid":1e400 (with "rid":null,
// as JSON.stringify writes Infinity).
func anyNumber(v []byte) (float64, bool) {
	c := v[0]
	if c != '-' && (c < '0' || c > '9') {
		return 0, false
	}
	if f, ok := smallInteger(v); ok {
		return f, true
	}
	f, err := strconv.ParseFloat(string(v), 64)
	if err != nil && !math.IsInf(f, 0) {
		return 0, false
	}
	return f, true
}

// smallInteger reads v when it is a decimal integer of at most 15 digits,
// optionally negative: every such number is a float64 exactly, so the
// result is ParseFloat's without its general parser (cids are such
// numbers, one per call).
func smallInteger(v []byte) (float64, bool) {
	neg := v[0] == '-'
	if neg {
		v = v[1:]
	}
	if len(v) == 0 || len(v) > 15 {
		return 0, false
	}
	var n int64
	for _, c := range v {
		if c < '0' || c > '9' {
			return 0, false
		}
		n = n*10 + int64(c-'0')
	}
	f := float64(n)
	if neg {
		f = -f
	}
	return f, true
}

// NullHugeNumbers returns the valid JSON text b with every number that a
// float64 cannot hold (1e400, -1e999: ±Inf) written as null, as
// JavaScript's JSON.parse then JSON.stringify turn them, so that such a
// number is never passed on to decoders that reject it. It returns b
// itself, not a copy, when there is none; otherwise a new slice.
func NullHugeNumbers(b []byte) []byte {
	var out []byte
	last := 0
	for i := 0; i < len(b); {
		c := b[i]
		switch {
		case c == '"':
			if i = StringEnd(b, i); i < 0 {
				i = len(b) // not valid JSON: nothing more to look at
			}
		case c == '-' || (c >= '0' && c <= '9'):
			j, exp := i+1, false
		num:
			for ; j < len(b); j++ {
				switch b[j] {
				case '0', '1', '2', '3', '4', '5', '6', '7', '8', '9', '.', '+', '-':
				case 'e', 'E':
					exp = true
				default:
					break num
				}
			}
			// Without an exponent only 309 digits or more can overflow.
			if exp || j-i > 308 {
				if f, err := strconv.ParseFloat(string(b[i:j]), 64); err != nil && math.IsInf(f, 0) {
					out = append(append(out, b[last:i]...), "null"...)
					last = j
				}
			}
			i = j
		default:
			i++
		}
	}
	if out == nil {
		return b
	}
	return append(out, b[last:]...)
}

// nullHuge is NullHugeNumbers for a value validValue checked: wide is
// what it reported (false: no number can be too large).
func nullHuge(v []byte, wide bool) []byte {
	if !wide {
		return v
	}
	return NullHugeNumbers(v)
}

// StringEnd returns the index after the string literal starting at b[i]
// ('"'), or -1 when it is not closed. The closing quote is found with
// bytes.IndexByte, then checked for an odd run of backslashes before it;
// the string is not otherwise checked.
func StringEnd(b []byte, i int) int {
	for j := i + 1; ; {
		k := bytes.IndexByte(b[j:], '"')
		if k < 0 {
			return -1
		}
		j += k
		bs := 0
		for p := j - 1; p > i && b[p] == '\\'; p-- {
			bs++
		}
		if bs%2 == 0 {
			return j + 1
		}
		j++
	}
}

// Unquote returns the Go string of a JSON string literal (quotes included).
func unquote(v []byte) string {
	inner := v[1 : len(v)-1]
	if !hasEscape(inner) && utf8.Valid(inner) {
		return plainString(inner)
	}
	var s string
	_ = json.Unmarshal(v, &s)
	return s
}

// plainString is the Go string of a string literal's content that needs
// no decoding: one of the protocol's names without allocating, else a
// copy.
func plainString(inner []byte) string {
	if k, ok := known(inner); ok {
		return k
	}
	return string(inner)
}

// Unquote is the exported form of unquote for callers holding a raw JSON
// string value; ok is false when raw is not a JSON string.
func Unquote(raw []byte) (string, bool) {
	raw = trimWS(raw)
	if len(raw) < 2 || raw[0] != '"' {
		return "", false
	}
	return unquote(raw), true
}

func hasEscape(b []byte) bool {
	for _, c := range b {
		if c == '\\' {
			return true
		}
	}
	return false
}

func trimWS(b []byte) []byte {
	i := skipWS(b, 0)
	j := len(b)
	for j > i && isWS(b[j-1]) {
		j--
	}
	return b[i:j]
}

func isWS(c byte) bool { return c == ' ' || c == '\t' || c == '\n' || c == '\r' }

func skipWS(b []byte, i int) int {
	for i < len(b) && isWS(b[i]) {
		i++
	}
	return i
}

// skipString returns the index after the string literal starting at b[i].
func skipString(b []byte, i int) int {
	i++
	for i < len(b) {
		switch b[i] {
		case '\\':
			i += 2
		case '"':
			return i + 1
		default:
			i++
		}
	}
	return i
}

// skipValue returns the index after the (valid) JSON value starting at b[i].
func skipValue(b []byte, i int) int {
	switch b[i] {
	case '"':
		return skipString(b, i)
	case '{', '[':
		depth := 0
		for i < len(b) {
			switch b[i] {
			case '"':
				i = skipString(b, i)
				continue
			case '{', '[':
				depth++
			case '}', ']':
				depth--
				if depth == 0 {
					return i + 1
				}
			}
			i++
		}
		return i
	default:
		for i < len(b) {
			switch b[i] {
			case ',', '}', ']', ' ', '\t', '\n', '\r':
				return i
			}
			i++
		}
		return i
	}
}

// Object reads the top-level keys of a raw JSON object value. It returns
// false when raw is not an object. The callback gets each key and its raw
// value; later duplicates are reported too (last one wins for callers that
// assign).
func Object(raw []byte, fn func(key string, val []byte)) bool {
	raw = trimWS(raw)
	if len(raw) < 2 || raw[0] != '{' {
		return false
	}
	i := 1
	for {
		i = skipWS(raw, i)
		if i >= len(raw) || raw[i] == '}' {
			return true
		}
		ks := i
		ke := skipString(raw, i)
		key := unquote(raw[ks:ke])
		i = skipWS(raw, ke)
		i++
		i = skipWS(raw, i)
		vs := i
		ve := skipValue(raw, i)
		fn(key, raw[vs:ve])
		i = skipWS(raw, ve)
		if i < len(raw) && raw[i] == ',' {
			i++
		}
	}
}

// Array calls fn with each element of a raw (valid) JSON array value, in
// order. It returns false when raw is not an array.
func Array(raw []byte, fn func(val []byte)) bool {
	raw = trimWS(raw)
	if len(raw) < 2 || raw[0] != '[' {
		return false
	}
	i := 1
	for {
		i = skipWS(raw, i)
		if i >= len(raw) || raw[i] == ']' {
			return true
		}
		ve := skipValue(raw, i)
		fn(raw[i:ve])
		i = skipWS(raw, ve)
		if i < len(raw) && raw[i] == ',' {
			i++
		}
	}
}

// Number parses a raw JSON number.
func Number(raw []byte) (float64, bool) {
	raw = trimWS(raw)
	if len(raw) == 0 {
		return 0, false
	}
	return number(raw)
}

// known returns the protocol's event names and keys without allocating
// (a switch on string(b) does not copy b).
func known(b []byte) (string, bool) {
	switch string(b) {
	case "#handshake":
		return "#handshake", true
	case "#publish":
		return "#publish", true
	case "#subscribe":
		return "#subscribe", true
	case "#unsubscribe":
		return "#unsubscribe", true
	case "#authenticate":
		return "#authenticate", true
	case "#removeAuthToken":
		return "#removeAuthToken", true
	case "authToken":
		return "authToken", true
	case "channel":
		return "channel", true
	case "data":
		return "data", true
	}
	return "", false
}
