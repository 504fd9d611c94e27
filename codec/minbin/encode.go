package minbin

import (
	"encoding/binary"
	"encoding/json"
	"fmt"
	"math"
	"strconv"
	"unicode/utf8"
)

// encoder writes MessagePack with exactly the format choices of
// msgpack-lite 0.1.26 under sc-codec-min-bin's options.
type encoder struct {
	buf   []byte
	depth int
}

// top handles what sc-codec-min-bin's encode does before MessagePack:
// a batch compacts every element (after a shallow clone, see batchElem),
// a map with a non-null event or rid is compacted, anything else is
// written as it is.
func (e *encoder) top(v any) error {
	switch x := v.(type) {
	case []any:
		e.depth++ // the batch array
		e.arrayHeader(len(x))
		for _, el := range x {
			if err := e.batchElem(el); err != nil {
				return err
			}
		}
		return nil
	case []map[string]any:
		e.depth++
		e.arrayHeader(len(x))
		for _, el := range x {
			if err := e.packet(el); err != nil {
				return err
			}
		}
		return nil
	case map[string]any:
		if x["event"] != nil || x["rid"] != nil {
			return e.packet(x)
		}
	}
	return e.value(v)
}

// batchElem writes one batch element. The reference copies each element's
// own enumerable properties into a new object before compacting it: a map
// stays a map, a string becomes {"0": first UTF-16 unit, ...}, an array
// {"0": first element, ...}, and anything else (null, numbers, booleans,
// binary) an empty map.
func (e *encoder) batchElem(v any) error {
	switch x := v.(type) {
	case map[string]any:
		return e.packet(x)
	case string:
		units := utf16Units(x)
		e.mapHeader(len(units))
		for i, u := range units {
			e.str(strconv.Itoa(i))
			e.str(u)
		}
		return nil
	case []any:
		if e.depth >= MaxDepth {
			return ErrTooDeep
		}
		e.depth++
		e.mapHeader(len(x))
		for i, el := range x {
			e.str(strconv.Itoa(i))
			if err := e.value(el); err != nil {
				return err
			}
		}
		e.depth--
		return nil
	case []string:
		e.mapHeader(len(x))
		for i, el := range x {
			e.str(strconv.Itoa(i))
			e.str(el)
		}
		return nil
	}
	e.buf = append(e.buf, 0x80)
	return nil
}

// field is one property of the object being compacted.
type field struct {
	k    string
	v    any
	arr  uint8 // when non-zero, the value is the compacted array arrP, arrE or arrR
	dead bool
}

const (
	arrP = 1 + iota
	arrE
	arrR
)

// fields emulates the few JavaScript object operations the compaction
// uses, on a key order that starts as the map's sorted keys: setting an
// existing key keeps its place, a new key goes last, deleting removes.
type fields []field

func (f fields) find(k string) int {
	for i := range f {
		if !f[i].dead && f[i].k == k {
			return i
		}
	}
	return -1
}

// get returns the value, or nil when absent (JavaScript's undefined and
// null both fail the reference's "!= null" tests).
func (f fields) get(k string) any {
	if i := f.find(k); i >= 0 && f[i].arr == 0 {
		return f[i].v
	}
	return nil
}

func (f fields) setArr(k string, which uint8) fields {
	if i := f.find(k); i >= 0 {
		f[i].v, f[i].arr = nil, which
		return f
	}
	return append(f, field{k: k, arr: which})
}

func (f fields) del(k string) {
	if i := f.find(k); i >= 0 {
		f[i].dead = true
	}
}

// looseEqualsPublish is JavaScript's ev == '#publish' for a decoded value.
func looseEqualsPublish(ev any) bool {
	switch x := ev.(type) {
	case string:
		return x == "#publish"
	case []any:
		return jsPropertyKey(x) == "#publish"
	}
	return false
}

// prop is JavaScript's v[key] for "channel" and "data": only objects have
// such properties.
func prop(v any, key string) any {
	if m, ok := v.(map[string]any); ok {
		return m[key]
	}
	return nil
}

// packet writes one map after sc-codec-min-bin's compaction:
//
//	#publish with non-null data  → "p": [channel, data(, cid)]
//	other non-null event         → "e": [event, data(, cid)]
//	non-null rid                 → "r": [rid, error, data]
//
// Each step removes the keys it consumed; other keys stay.
func (e *encoder) packet(m map[string]any) error {
	var stack [8]field
	f := fields(stack[:0])
	var kstack [8]string
	keys := kstack[:0]
	for k := range m {
		keys = append(keys, k)
	}
	sortKeys(keys)
	for _, k := range keys {
		f = append(f, field{k: k, v: m[k]})
	}

	// The compacted arrays: [channel, data(, cid)], [event, data(, cid)]
	// and [rid, error, data]. Only e and r can both be present.
	var arrs [3][3]any
	var lens [3]int
	if looseEqualsPublish(f.get("event")) && f.get("data") != nil {
		data := f.get("data")
		a := &arrs[arrP-1]
		a[0], a[1], lens[arrP-1] = prop(data, "channel"), prop(data, "data"), 2
		if cid := f.get("cid"); cid != nil {
			a[2], lens[arrP-1] = cid, 3
		}
		f = f.setArr("p", arrP)
		f.del("event")
		f.del("data")
		f.del("cid")
	}
	if ev := f.get("event"); ev != nil {
		a := &arrs[arrE-1]
		a[0], a[1], lens[arrE-1] = ev, f.get("data"), 2
		if cid := f.get("cid"); cid != nil {
			a[2], lens[arrE-1] = cid, 3
		}
		f = f.setArr("e", arrE)
		f.del("event")
		f.del("data")
		f.del("cid")
	}
	if rid := f.get("rid"); rid != nil {
		a := &arrs[arrR-1]
		a[0], a[1], a[2], lens[arrR-1] = rid, f.get("error"), f.get("data"), 3
		f = f.setArr("r", arrR)
		f.del("rid")
		f.del("error")
		f.del("data")
	}

	live := 0
	for i := range f {
		if !f[i].dead {
			live++
		}
	}
	if e.depth >= MaxDepth {
		return ErrTooDeep
	}
	e.depth++
	e.mapHeader(live)
	for i := range f {
		if f[i].dead {
			continue
		}
		e.str(f[i].k)
		if f[i].arr == 0 {
			if err := e.value(f[i].v); err != nil {
				return err
			}
			continue
		}
		if e.depth >= MaxDepth {
			return ErrTooDeep
		}
		e.depth++
		a := arrs[f[i].arr-1][:lens[f[i].arr-1]]
		e.arrayHeader(len(a))
		for _, el := range a {
			if err := e.value(el); err != nil {
				return err
			}
		}
		e.depth--
	}
	e.depth--
	return nil
}

// value writes one value with no compaction.
func (e *encoder) value(v any) error {
	switch x := v.(type) {
	case nil:
		e.buf = append(e.buf, 0xc0)
	case bool:
		if x {
			e.buf = append(e.buf, 0xc3)
		} else {
			e.buf = append(e.buf, 0xc2)
		}
	case string:
		e.str(x)
	case float64:
		e.num(x)
	case []byte:
		e.bin(x)
	case map[string]any:
		return e.mapValue(x)
	case []any:
		if e.depth >= MaxDepth {
			return ErrTooDeep
		}
		e.depth++
		e.arrayHeader(len(x))
		for _, el := range x {
			if err := e.value(el); err != nil {
				return err
			}
		}
		e.depth--
	case int:
		e.num(float64(x))
	case int64:
		e.num(float64(x))
	case int32:
		e.num(float64(x))
	case int16:
		e.num(float64(x))
	case int8:
		e.num(float64(x))
	case uint:
		e.num(float64(x))
	case uint64:
		e.num(float64(x))
	case uint32:
		e.num(float64(x))
	case uint16:
		e.num(float64(x))
	case uint8:
		e.num(float64(x))
	case float32:
		e.num(float64(x))
	case json.Number:
		f, err := strconv.ParseFloat(string(x), 64)
		if err != nil {
			return fmt.Errorf("%w: json.Number %q", ErrUnsupportedType, string(x))
		}
		e.num(f)
	case []string:
		if e.depth >= MaxDepth {
			return ErrTooDeep
		}
		e.arrayHeader(len(x))
		for _, s := range x {
			e.str(s)
		}
	case map[string]string:
		if e.depth >= MaxDepth {
			return ErrTooDeep
		}
		e.mapHeader(len(x))
		var kstack [16]string
		for _, k := range sortedKeys(kstack[:0], x) {
			e.str(k)
			e.str(x[k])
		}
	default:
		return fmt.Errorf("%w: %T", ErrUnsupportedType, v)
	}
	return nil
}

func sortedKeys[V any](buf []string, m map[string]V) []string {
	for k := range m {
		buf = append(buf, k)
	}
	sortKeys(buf)
	return buf
}

func (e *encoder) mapValue(m map[string]any) error {
	if e.depth >= MaxDepth {
		return ErrTooDeep
	}
	e.depth++
	e.mapHeader(len(m))
	if len(m) == 1 {
		for k, v := range m {
			e.str(k)
			if err := e.value(v); err != nil {
				return err
			}
		}
	} else {
		var kstack [16]string
		for _, k := range sortedKeys(kstack[:0], m) {
			e.str(k)
			if err := e.value(m[k]); err != nil {
				return err
			}
		}
	}
	e.depth--
	return nil
}

// num writes a JavaScript number: an integer in int32 range (-0 included,
// as 0) in the smallest integer format, anything else as float 64.
func (e *encoder) num(f float64) {
	if f >= math.MinInt32 && f <= math.MaxInt32 {
		if i := int32(f); float64(i) == f {
			e.int(i)
			return
		}
	}
	bits := math.Float64bits(f)
	if f != f {
		bits = 0x7ff8000000000000
	}
	e.buf = append(e.buf, 0xcb)
	e.buf = binary.BigEndian.AppendUint64(e.buf, bits)
}

func (e *encoder) int(i int32) {
	switch {
	case i >= -32 && i <= 127:
		e.buf = append(e.buf, byte(i))
	case i >= 0 && i <= 0xff:
		e.buf = append(e.buf, 0xcc, byte(i))
	case i >= 0 && i <= 0xffff:
		e.buf = append(e.buf, 0xcd, byte(i>>8), byte(i))
	case i >= 0:
		e.buf = append(e.buf, 0xce, byte(i>>24), byte(i>>16), byte(i>>8), byte(i))
	case i >= -0x80:
		e.buf = append(e.buf, 0xd0, byte(i))
	case i >= -0x8000:
		e.buf = append(e.buf, 0xd1, byte(i>>8), byte(i))
	default:
		e.buf = append(e.buf, 0xd2, byte(i>>24), byte(i>>16), byte(i>>8), byte(i))
	}
}

// str writes a string: fixstr below 32 bytes, then str 8/16/32. Invalid
// UTF-8 (which a JavaScript string cannot hold) is written with each bad
// byte replaced by U+FFFD, as encoding/json does.
func (e *encoder) str(s string) {
	if !utf8.ValidString(s) {
		b := make([]byte, 0, len(s)+8)
		for _, r := range s {
			b = utf8.AppendRune(b, r)
		}
		s = string(b)
	}
	n := len(s)
	switch {
	case n < 32:
		e.buf = append(e.buf, 0xa0|byte(n))
	case n <= 0xff:
		e.buf = append(e.buf, 0xd9, byte(n))
	case n <= 0xffff:
		e.buf = append(e.buf, 0xda, byte(n>>8), byte(n))
	default:
		e.buf = append(e.buf, 0xdb)
		e.buf = binary.BigEndian.AppendUint32(e.buf, uint32(n))
	}
	e.buf = append(e.buf, s...)
}

// bin writes binary data. msgpack-lite uses bin 8 only below 255 bytes, so
// exactly 255 bytes take a bin 16 header.
func (e *encoder) bin(b []byte) {
	n := len(b)
	switch {
	case n < 0xff:
		e.buf = append(e.buf, 0xc4, byte(n))
	case n <= 0xffff:
		e.buf = append(e.buf, 0xc5, byte(n>>8), byte(n))
	default:
		e.buf = append(e.buf, 0xc6)
		e.buf = binary.BigEndian.AppendUint32(e.buf, uint32(n))
	}
	e.buf = append(e.buf, b...)
}

func (e *encoder) arrayHeader(n int) {
	switch {
	case n < 16:
		e.buf = append(e.buf, 0x90|byte(n))
	case n <= 0xffff:
		e.buf = append(e.buf, 0xdc, byte(n>>8), byte(n))
	default:
		e.buf = append(e.buf, 0xdd)
		e.buf = binary.BigEndian.AppendUint32(e.buf, uint32(n))
	}
}

func (e *encoder) mapHeader(n int) {
	switch {
	case n < 16:
		e.buf = append(e.buf, 0x80|byte(n))
	case n <= 0xffff:
		e.buf = append(e.buf, 0xde, byte(n>>8), byte(n))
	default:
		e.buf = append(e.buf, 0xdf)
		e.buf = binary.BigEndian.AppendUint32(e.buf, uint32(n))
	}
}
