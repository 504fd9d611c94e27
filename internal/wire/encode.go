package wire

import (
	"math"
	"strconv"
	"unicode/utf8"
)

// AppendNumber appends f as JavaScript's JSON.stringify would write it.
func AppendNumber(dst []byte, f float64) []byte {
	if math.IsNaN(f) || math.IsInf(f, 0) {
		return append(dst, "null"...)
	}
	if f == 0 {
		return append(dst, '0')
	}
	a := math.Abs(f)
	if a < 1<<53 && f == math.Trunc(f) {
		// An integer a float64 holds exactly (ids, counters, most
		// numbers): the same digits, without the shortest-float search.
		return strconv.AppendInt(dst, int64(f), 10)
	}
	if a >= 1e-6 && a < 1e21 {
		return strconv.AppendFloat(dst, f, 'f', -1, 64)
	}
	n := len(dst)
	dst = strconv.AppendFloat(dst, f, 'e', -1, 64)
	// Go writes 1e-07 / 1e+21; JavaScript writes 1e-7 / 1e+21.
	for j := n; j < len(dst); j++ {
		if dst[j] == 'e' {
			k := j + 2 // after the sign
			for k < len(dst)-1 && dst[k] == '0' {
				dst = append(dst[:k], dst[k+1:]...)
			}
			break
		}
	}
	return dst
}

const hex = "0123456789abcdef"

// AppendString appends s as a JSON string literal, escaping like
// JSON.stringify (quotes, backslashes and control characters; invalid UTF-8
// becomes U+FFFD).
func AppendString(dst []byte, s string) []byte {
	dst = append(dst, '"')
	start := 0
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			if c >= 0x20 && c != '"' && c != '\\' {
				i++
				continue
			}
			dst = append(dst, s[start:i]...)
			switch c {
			case '"':
				dst = append(dst, '\\', '"')
			case '\\':
				dst = append(dst, '\\', '\\')
			case '\n':
				dst = append(dst, '\\', 'n')
			case '\r':
				dst = append(dst, '\\', 'r')
			case '\t':
				dst = append(dst, '\\', 't')
			case '\b':
				dst = append(dst, '\\', 'b')
			case '\f':
				dst = append(dst, '\\', 'f')
			default:
				dst = append(dst, '\\', 'u', '0', '0', hex[c>>4], hex[c&0xf])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			dst = append(dst, s[start:i]...)
			dst = append(dst, "\ufffd"...)
			i += size
			start = i
			continue
		}
		i += size
	}
	dst = append(dst, s[start:]...)
	return append(dst, '"')
}

// AppendResponse appends {"rid":N} with "data" or "error" when given (nil
// means absent).
func AppendResponse(dst []byte, rid float64, data, err []byte) []byte {
	dst = append(dst, `{"rid":`...)
	dst = AppendNumber(dst, rid)
	if err != nil {
		dst = append(dst, `,"error":`...)
		dst = append(dst, err...)
	} else if data != nil {
		dst = append(dst, `,"data":`...)
		dst = append(dst, data...)
	}
	return append(dst, '}')
}

// AppendEvent appends a transmit {"event":E,"data":D} or, with hasCid, a
// server invoke {"event":E,"cid":N,"data":D} (the reference's key order).
func AppendEvent(dst []byte, event string, data []byte, cid float64, hasCid bool) []byte {
	dst = append(dst, `{"event":`...)
	dst = AppendString(dst, event)
	if hasCid {
		dst = append(dst, `,"cid":`...)
		dst = AppendNumber(dst, cid)
	}
	if data != nil {
		dst = append(dst, `,"data":`...)
		dst = append(dst, data...)
	}
	return append(dst, '}')
}

// AppendPublish appends {"event":"#publish","data":{"channel":C,"data":D}}.
func AppendPublish(dst []byte, channel string, data []byte) []byte {
	dst = append(dst, `{"event":"#publish","data":{"channel":`...)
	dst = AppendString(dst, channel)
	if data != nil {
		dst = append(dst, `,"data":`...)
		dst = append(dst, data...)
	}
	return append(dst, "}}"...)
}
