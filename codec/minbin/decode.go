package minbin

import (
	"encoding/binary"
	"math"
)

// Pre-boxed small integers: most ids and counters decode without an
// allocation.
var (
	smallInts [128]any // 0..127
	negInts   [32]any  // -32..-1
)

func init() {
	for i := range smallInts {
		smallInts[i] = float64(i)
	}
	for i := range negInts {
		negInts[i] = float64(i - 32)
	}
}

// decoder reads one MessagePack value the way msgpack-lite 0.1.26 does
// with sc-codec-min-bin's options (no ext presets, bin as ArrayBuffer).
type decoder struct {
	b     []byte
	off   int
	depth int
}

// need reserves n bytes and returns where they start.
func (d *decoder) need(n int) (int, error) {
	if n < 0 || n > len(d.b)-d.off {
		return 0, ErrShortBuffer
	}
	start := d.off
	d.off += n
	return start, nil
}

func (d *decoder) uint(n int) (int, error) {
	s, err := d.need(n)
	if err != nil {
		return 0, err
	}
	switch n {
	case 1:
		return int(d.b[s]), nil
	case 2:
		return int(binary.BigEndian.Uint16(d.b[s:])), nil
	}
	return int(binary.BigEndian.Uint32(d.b[s:])), nil
}

func (d *decoder) value() (any, error) {
	if d.off >= len(d.b) {
		return nil, ErrShortBuffer
	}
	c := d.b[d.off]
	d.off++
	switch {
	case c <= 0x7f:
		return smallInts[c], nil
	case c >= 0xe0:
		return negInts[c-0xe0], nil
	case c <= 0x8f:
		return d.mapN(int(c & 0x0f))
	case c <= 0x9f:
		return d.arrayN(int(c & 0x0f))
	case c <= 0xbf:
		return d.str(int(c & 0x1f))
	}
	switch c {
	case 0xc0:
		return nil, nil
	case 0xc2:
		return false, nil
	case 0xc3:
		return true, nil
	case 0xc4, 0xc5, 0xc6:
		n, err := d.uint(1 << (c - 0xc4))
		if err != nil {
			return nil, err
		}
		s, err := d.need(n)
		if err != nil {
			return nil, err
		}
		return append([]byte{}, d.b[s:s+n]...), nil
	case 0xc7, 0xc8, 0xc9:
		n, err := d.uint(1 << (c - 0xc7))
		if err != nil {
			return nil, err
		}
		return d.ext(n)
	case 0xca:
		s, err := d.need(4)
		if err != nil {
			return nil, err
		}
		return float64(math.Float32frombits(binary.BigEndian.Uint32(d.b[s:]))), nil
	case 0xcb:
		s, err := d.need(8)
		if err != nil {
			return nil, err
		}
		return math.Float64frombits(binary.BigEndian.Uint64(d.b[s:])), nil
	case 0xcc, 0xcd, 0xce:
		n, err := d.uint(1 << (c - 0xcc))
		if err != nil {
			return nil, err
		}
		if n < len(smallInts) {
			return smallInts[n], nil
		}
		return float64(n), nil
	case 0xcf:
		s, err := d.need(8)
		if err != nil {
			return nil, err
		}
		return float64(binary.BigEndian.Uint64(d.b[s:])), nil
	case 0xd0:
		s, err := d.need(1)
		if err != nil {
			return nil, err
		}
		return float64(int8(d.b[s])), nil
	case 0xd1:
		s, err := d.need(2)
		if err != nil {
			return nil, err
		}
		return float64(int16(binary.BigEndian.Uint16(d.b[s:]))), nil
	case 0xd2:
		s, err := d.need(4)
		if err != nil {
			return nil, err
		}
		return float64(int32(binary.BigEndian.Uint32(d.b[s:]))), nil
	case 0xd3:
		s, err := d.need(8)
		if err != nil {
			return nil, err
		}
		return float64(int64(binary.BigEndian.Uint64(d.b[s:]))), nil
	case 0xd4, 0xd5, 0xd6, 0xd7, 0xd8:
		return d.ext(1 << (c - 0xd4))
	case 0xd9, 0xda, 0xdb:
		n, err := d.uint(1 << (c - 0xd9))
		if err != nil {
			return nil, err
		}
		return d.str(n)
	case 0xdc, 0xdd:
		n, err := d.uint(2 << (c - 0xdc))
		if err != nil {
			return nil, err
		}
		return d.arrayN(n)
	case 0xde, 0xdf:
		n, err := d.uint(2 << (c - 0xde))
		if err != nil {
			return nil, err
		}
		return d.mapN(n)
	}
	return nil, ErrInvalidType // 0xc1
}

func (d *decoder) str(n int) (any, error) {
	s, err := d.need(n)
	if err != nil {
		return nil, err
	}
	return jsString(d.b, s, s+n), nil
}

// ext returns what msgpack-lite returns for an ext value it has no
// unpacker for: an ExtBuffer, whose own properties are buffer and type
// (the type byte read unsigned).
func (d *decoder) ext(n int) (any, error) {
	s, err := d.need(n + 1)
	if err != nil {
		return nil, err
	}
	return map[string]any{
		"buffer": append([]byte{}, d.b[s+1:s+1+n]...),
		"type":   float64(d.b[s]),
	}, nil
}

func (d *decoder) arrayN(n int) (any, error) {
	if d.depth >= MaxDepth {
		return nil, ErrTooDeep
	}
	d.depth++
	// Never trust the header for the allocation: each element takes at
	// least one byte.
	a := make([]any, 0, min(n, len(d.b)-d.off))
	for i := 0; i < n; i++ {
		v, err := d.value()
		if err != nil {
			return nil, err
		}
		a = append(a, v)
	}
	d.depth--
	return a, nil
}

func (d *decoder) mapN(n int) (any, error) {
	if d.depth >= MaxDepth {
		return nil, ErrTooDeep
	}
	d.depth++
	m := make(map[string]any, min(n, (len(d.b)-d.off)/2))
	for i := 0; i < n; i++ {
		k, err := d.key()
		if err != nil {
			return nil, err
		}
		v, err := d.value()
		if err != nil {
			return nil, err
		}
		// Assigning "__proto__" on a plain object sets (or ignores) its
		// prototype; it never makes an own property.
		if k == "__proto__" {
			continue
		}
		m[k] = v
	}
	d.depth--
	return m, nil
}

// key reads a map key and turns it into the JavaScript property name.
func (d *decoder) key() (string, error) {
	if d.off < len(d.b) {
		c := d.b[d.off]
		n, hdr := -1, 0
		switch {
		case c >= 0xa0 && c <= 0xbf:
			n, hdr = int(c&0x1f), 1
		case c == 0xd9 && d.off+1 < len(d.b):
			n, hdr = int(d.b[d.off+1]), 2
		}
		if n >= 0 && d.off+hdr+n <= len(d.b) {
			s := d.off + hdr
			d.off = s + n
			if k, ok := commonKey(d.b[s : s+n]); ok {
				return k, nil
			}
			return jsString(d.b, s, s+n), nil
		}
	}
	v, err := d.value()
	if err != nil {
		return "", err
	}
	return jsPropertyKey(v), nil
}

// commonKey returns the keys of packets without allocating.
func commonKey(b []byte) (string, bool) {
	switch string(b) {
	case "e":
		return "e", true
	case "p":
		return "p", true
	case "r":
		return "r", true
	case "event":
		return "event", true
	case "data":
		return "data", true
	case "cid":
		return "cid", true
	case "rid":
		return "rid", true
	case "error":
		return "error", true
	case "channel":
		return "channel", true
	case "message":
		return "message", true
	case "name":
		return "name", true
	}
	return "", false
}

// decompress undoes the packet compaction on one decoded top-level value
// (or batch element), in the reference's order: "e", then "p", then "r".
// Only maps change; nil fails as it does in JavaScript.
func decompress(v any) error {
	if v == nil {
		return ErrNullPacket
	}
	m, ok := v.(map[string]any)
	if !ok {
		return nil
	}
	if e := m["e"]; e != nil {
		setOrDelete(m, "event", e, 0)
		setOrDelete(m, "data", e, 1)
		if cid, ok := jsIndex(e, 2); ok && cid != nil {
			m["cid"] = cid
		}
		delete(m, "e")
	}
	if p := m["p"]; p != nil {
		m["event"] = "#publish"
		data := make(map[string]any, 2)
		if ch, ok := jsIndex(p, 0); ok {
			data["channel"] = ch
		}
		if d, ok := jsIndex(p, 1); ok {
			data["data"] = d
		}
		m["data"] = data
		if cid, ok := jsIndex(p, 2); ok && cid != nil {
			m["cid"] = cid
		}
		delete(m, "p")
	}
	if r := m["r"]; r != nil {
		setOrDelete(m, "rid", r, 0)
		setOrDelete(m, "error", r, 1)
		setOrDelete(m, "data", r, 2)
		delete(m, "r")
	}
	return nil
}

// setOrDelete does m[key] = from[i]; an undefined result leaves the key
// absent, as undefined is absent in a Go tree.
func setOrDelete(m map[string]any, key string, from any, i int) {
	if v, ok := jsIndex(from, i); ok {
		m[key] = v
	} else {
		delete(m, key)
	}
}

// decodeText handles a text frame: see Codec.Decode.
func decodeText(frame []byte) (any, error) {
	s := string(frame)
	n := math.Trunc(jsStringToNumber(s))
	switch {
	case n != n || n == 0:
		return nil, ErrShortBuffer
	case n < 0 || n > 1<<32:
		return nil, &Error{Name: "RangeError", Message: "Invalid typed array length: " + s}
	}
	// n zero bytes: the first reads as the number 0; the rest is ignored.
	return smallInts[0], nil
}
