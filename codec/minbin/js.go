package minbin

import (
	"math"
	"slices"
	"strconv"
	"strings"
	"unicode/utf16"
	"unicode/utf8"
)

// This file holds the few pieces of JavaScript semantics that the reference
// decoder's output depends on: how a non-string map key becomes a property
// name, how msgpack-lite turns string bytes into a JavaScript string, how a
// text frame becomes a typed-array length, and how a value is indexed.

// jsNumberString formats f as JavaScript's Number.prototype.toString does.
func jsNumberString(f float64) string {
	switch {
	case f != f:
		return "NaN"
	case math.IsInf(f, 1):
		return "Infinity"
	case math.IsInf(f, -1):
		return "-Infinity"
	case f == 0:
		return "0"
	}
	if f == math.Trunc(f) && math.Abs(f) < 1e21 {
		return strconv.FormatFloat(f, 'f', -1, 64)
	}
	neg := f < 0
	if neg {
		f = -f
	}
	// Shortest round-trip digits, as JavaScript also chooses them.
	s := strconv.FormatFloat(f, 'e', -1, 64)
	mant, expStr, _ := strings.Cut(s, "e")
	exp, _ := strconv.Atoi(expStr)
	digits := strings.Replace(mant, ".", "", 1)
	k, n := len(digits), exp+1
	var b strings.Builder
	if neg {
		b.WriteByte('-')
	}
	switch {
	case k <= n && n <= 21:
		b.WriteString(digits)
		b.WriteString(strings.Repeat("0", n-k))
	case 0 < n && n <= 21:
		b.WriteString(digits[:n])
		b.WriteByte('.')
		b.WriteString(digits[n:])
	case -6 < n && n <= 0:
		b.WriteString("0.")
		b.WriteString(strings.Repeat("0", -n))
		b.WriteString(digits)
	default:
		b.WriteString(digits[:1])
		if k > 1 {
			b.WriteByte('.')
			b.WriteString(digits[1:])
		}
		b.WriteByte('e')
		if n-1 >= 0 {
			b.WriteByte('+')
		}
		b.WriteString(strconv.Itoa(n - 1))
	}
	return b.String()
}

// jsPropertyKey is the property name JavaScript uses when a decoded value
// is assigned as an object key (ToPropertyKey of a decoded value).
func jsPropertyKey(v any) string {
	switch x := v.(type) {
	case string:
		return x
	case float64:
		return jsNumberString(x)
	case bool:
		if x {
			return "true"
		}
		return "false"
	case nil:
		return "null"
	case []byte:
		return "[object ArrayBuffer]"
	case []any:
		// Array.prototype.join(","): null and undefined become "".
		var b strings.Builder
		for i, e := range x {
			if i > 0 {
				b.WriteByte(',')
			}
			if e != nil {
				b.WriteString(jsPropertyKey(e))
			}
		}
		return b.String()
	default:
		return "[object Object]"
	}
}

// isArrayIndex reports whether k is a canonical array index (0 to 2^32-2),
// the keys JavaScript enumerates first, in numeric order.
func isArrayIndex(k string) (uint64, bool) {
	if len(k) == 0 || len(k) > 10 || (k[0] == '0' && len(k) > 1) {
		return 0, false
	}
	var n uint64
	for i := 0; i < len(k); i++ {
		c := k[i]
		if c < '0' || c > '9' {
			return 0, false
		}
		n = n*10 + uint64(c-'0')
	}
	return n, n < 1<<32-1
}

// jsKeyCompare orders keys as a JavaScript object built by inserting them
// in sorted order would enumerate them: array indexes first, numerically,
// then every other key in byte order.
func jsKeyCompare(a, b string) int {
	ai, aok := isArrayIndex(a)
	bi, bok := isArrayIndex(b)
	switch {
	case aok && bok:
		switch {
		case ai < bi:
			return -1
		case ai > bi:
			return 1
		}
		return 0
	case aok:
		return -1
	case bok:
		return 1
	}
	return strings.Compare(a, b)
}

func sortKeys(keys []string) {
	if len(keys) > 16 {
		slices.SortFunc(keys, jsKeyCompare)
		return
	}
	// Insertion sort for the small maps packets are made of.
	for i := 1; i < len(keys); i++ {
		k := keys[i]
		j := i
		for j > 0 && jsKeyCompare(keys[j-1], k) > 0 {
			keys[j] = keys[j-1]
			j--
		}
		keys[j] = k
	}
}

// jsString turns the string bytes frame[start:end] into a Go string the
// way msgpack-lite's own UTF-8 reader (used because sc-codec-min-bin hands
// it a Uint8Array) does: valid UTF-8 reads as usual; otherwise a lead byte
// consumes its continuation bytes without checking them, even past end
// (bytes past the frame read as 0), a stray byte becomes the Latin-1
// character of the same value, and the resulting UTF-16 code units are
// paired again, with lone surrogates becoming U+FFFD.
func jsString(frame []byte, start, end int) string {
	if utf8.Valid(frame[start:end]) {
		return string(frame[start:end])
	}
	at := func(i int) int {
		if i < len(frame) {
			return int(frame[i])
		}
		return 0
	}
	units := make([]uint16, 0, end-start)
	for i := start; i < end; {
		c := at(i)
		i++
		if c < 0x80 {
			units = append(units, uint16(c))
			continue
		}
		switch {
		case c&0xE0 == 0xC0:
			c = (c&0x1F)<<6 | at(i)&0x3F
			i++
		case c&0xF0 == 0xE0:
			c = (c&0x0F)<<12 | (at(i)&0x3F)<<6 | at(i+1)&0x3F
			i += 2
		case c&0xF8 == 0xF0:
			c = (c&0x07)<<18 | (at(i)&0x3F)<<12 | (at(i+1)&0x3F)<<6 | at(i+2)&0x3F
			i += 3
		}
		if c >= 0x10000 {
			c -= 0x10000
			units = append(units, uint16((c>>10)+0xD800), uint16((c&0x3FF)+0xDC00))
		} else {
			units = append(units, uint16(c))
		}
	}
	return string(utf16.Decode(units))
}

// jsIndex is JavaScript's v[i] for a decoded value: an array element, a
// string's UTF-16 code unit (a lone surrogate half becomes U+FFFD), or an
// object's property "i". ok is false where JavaScript gives undefined.
func jsIndex(v any, i int) (any, bool) {
	switch x := v.(type) {
	case []any:
		if i < len(x) {
			return x[i], true
		}
	case map[string]any:
		e, ok := x[strconv.Itoa(i)]
		return e, ok
	case string:
		n := 0
		for _, r := range x {
			if r >= 0x10000 {
				if n == i || n+1 == i {
					return "\uFFFD", true
				}
				n += 2
				continue
			}
			if n == i {
				return string(r), true
			}
			n++
		}
	}
	return nil, false
}

// utf16Units splits s into JavaScript's UTF-16 code units, each as a Go
// string (a surrogate half becomes U+FFFD, as it does once JavaScript
// encodes it).
func utf16Units(s string) []string {
	out := make([]string, 0, len(s))
	for _, r := range s {
		if r >= 0x10000 {
			out = append(out, "\uFFFD", "\uFFFD")
			continue
		}
		out = append(out, string(r))
	}
	return out
}

func isJSSpace(r rune) bool {
	switch r {
	case '\t', '\n', '\v', '\f', '\r', ' ', 0xA0, 0x1680, 0x2028, 0x2029, 0x202F, 0x205F, 0x3000, 0xFEFF:
		return true
	}
	return r >= 0x2000 && r <= 0x200A
}

// jsStringToNumber is JavaScript's Number(s).
func jsStringToNumber(s string) float64 {
	s = strings.TrimFunc(s, isJSSpace)
	if s == "" {
		return 0
	}
	if len(s) > 2 && s[0] == '0' {
		base := 0
		switch s[1] {
		case 'x', 'X':
			base = 16
		case 'o', 'O':
			base = 8
		case 'b', 'B':
			base = 2
		}
		if base != 0 {
			v := 0.0
			for i := 2; i < len(s); i++ {
				d := digitValue(s[i])
				if d >= base {
					return math.NaN()
				}
				v = v*float64(base) + float64(d)
			}
			return v
		}
	}
	body, sign := s, 1.0
	if body[0] == '+' || body[0] == '-' {
		if body[0] == '-' {
			sign = -1
		}
		body = body[1:]
	}
	if body == "Infinity" {
		return sign * math.Inf(1)
	}
	if !isDecimalLiteral(body) {
		return math.NaN()
	}
	v, _ := strconv.ParseFloat(body, 64) // overflow gives ±Inf, as in JavaScript
	return sign * v
}

func digitValue(c byte) int {
	switch {
	case c >= '0' && c <= '9':
		return int(c - '0')
	case c >= 'a' && c <= 'z':
		return int(c-'a') + 10
	case c >= 'A' && c <= 'Z':
		return int(c-'A') + 10
	}
	return 99
}

// isDecimalLiteral matches StrUnsignedDecimalLiteral without "Infinity":
// digits [. digits] or . digits, then an optional exponent.
func isDecimalLiteral(s string) bool {
	i, digits := 0, 0
	for i < len(s) && s[i] >= '0' && s[i] <= '9' {
		i++
		digits++
	}
	if i < len(s) && s[i] == '.' {
		i++
		for i < len(s) && s[i] >= '0' && s[i] <= '9' {
			i++
			digits++
		}
	}
	if digits == 0 {
		return false
	}
	if i < len(s) && (s[i] == 'e' || s[i] == 'E') {
		i++
		if i < len(s) && (s[i] == '+' || s[i] == '-') {
			i++
		}
		exp := 0
		for i < len(s) && s[i] >= '0' && s[i] <= '9' {
			i++
			exp++
		}
		if exp == 0 {
			return false
		}
	}
	return i == len(s)
}
