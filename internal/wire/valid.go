package wire

// maxDepth is encoding/json's nesting limit: a value nested deeper than
// this many arrays and objects is not valid for json.Valid.
const maxDepth = 10000

// strPlain marks the bytes a JSON string may hold as they are: everything
// but the closing quote, the backslash and the control characters. Bytes
// of 0x80 and above are plain too: like json.Valid, Valid does not check
// that strings are valid UTF-8 (the text is passed on as it came, and
// decoders replace bad sequences with U+FFFD).
var strPlain = func() (t [256]bool) {
	for c := 0x20; c < 256; c++ {
		t[c] = c != '"' && c != '\\'
	}
	return t
}()

// Valid reports whether b is one valid JSON value, with optional
// whitespace around it. It accepts exactly what json.Valid accepts
// (FuzzValid checks it against json.Valid) in one pass with no function
// call per byte, several times faster. Parse checks inbound frames with
// validValue, its part for one value, as it decodes them.
func Valid(b []byte) bool {
	i, _ := validValue(b, skipWS(b, 0), 0)
	return i >= 0 && skipWS(b, i) == len(b)
}

// validValue checks the JSON value starting at b[i], inside depth open
// arrays and objects, and returns the index after it, or -1. wide reports
// a number that may be too large for a float64 (an exponent, or more than
// 308 digits): only then can NullHugeNumbers have anything to do.
func validValue(b []byte, i, depth int) (end int, wide bool) {
	var small [32]byte
	stack := small[:0] // '{' or '[' per open container
	for {
		// A value starts at b[i].
		if i >= len(b) {
			return -1, wide
		}
		switch c := b[i]; c {
		case '{', '[':
			if depth+len(stack) == maxDepth {
				return -1, wide
			}
			i = skipWS(b, i+1)
			if i < len(b) && b[i] == c+2 { // '}' or ']'
				i++
				break
			}
			stack = append(stack, c)
			if c == '{' {
				if i = validKey(b, i); i < 0 {
					return -1, wide
				}
			}
			continue
		case '"':
			if i = validString(b, i); i < 0 {
				return -1, wide
			}
		case 't':
			if !hasAt(b, i, "true") {
				return -1, wide
			}
			i += 4
		case 'f':
			if !hasAt(b, i, "false") {
				return -1, wide
			}
			i += 5
		case 'n':
			if !hasAt(b, i, "null") {
				return -1, wide
			}
			i += 4
		default:
			j, exp := validNumber(b, i)
			if j < 0 {
				return -1, wide
			}
			wide = wide || exp || j-i > 308
			i = j
		}
		// After a value: a comma, the end of containers, or the end.
		for {
			if len(stack) == 0 {
				return i, wide
			}
			i = skipWS(b, i)
			if i >= len(b) {
				return -1, wide
			}
			top := stack[len(stack)-1]
			if b[i] == top+2 {
				stack = stack[:len(stack)-1]
				i++
				continue
			}
			if b[i] != ',' {
				return -1, wide
			}
			i = skipWS(b, i+1)
			if top == '{' {
				if i = validKey(b, i); i < 0 {
					return -1, wide
				}
			}
			break
		}
	}
}

// validKey checks `"key" :` at b[i] and returns the index after the colon
// and its following whitespace, or -1.
func validKey(b []byte, i int) int {
	if i >= len(b) || b[i] != '"' {
		return -1
	}
	if i = validString(b, i); i < 0 {
		return -1
	}
	i = skipWS(b, i)
	if i >= len(b) || b[i] != ':' {
		return -1
	}
	return skipWS(b, i+1)
}

// validString checks the string literal starting at b[i] ('"') and
// returns the index after its closing quote, or -1.
func validString(b []byte, i int) int {
	i++
	for i < len(b) {
		c := b[i]
		if strPlain[c] {
			i++
			continue
		}
		switch c {
		case '"':
			return i + 1
		case '\\':
			if i+1 >= len(b) {
				return -1
			}
			switch b[i+1] {
			case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
				i += 2
			case 'u':
				if i+6 > len(b) || !isHex(b[i+2]) || !isHex(b[i+3]) || !isHex(b[i+4]) || !isHex(b[i+5]) {
					return -1
				}
				i += 6
			default:
				return -1
			}
		default: // a control character
			return -1
		}
	}
	return -1
}

// scanString is validString that also reports whether the string holds
// printable ASCII only, with no escape: then its content is its Go string
// as it is, with no decoding and no UTF-8 check.
func scanString(b []byte, i int) (end int, ascii bool) {
	start := i
	var seen byte // every content byte ORed: 0x80 is set by any non-ASCII one
	for i++; i < len(b); i++ {
		c := b[i]
		if !strPlain[c] {
			if c == '"' {
				return i + 1, seen < 0x80
			}
			return validString(b, start), false
		}
		seen |= c
	}
	return -1, false
}

func isHex(c byte) bool {
	return (c >= '0' && c <= '9') || (c|0x20 >= 'a' && c|0x20 <= 'f')
}

func isDigit(c byte) bool { return c >= '0' && c <= '9' }

// validNumber checks the number starting at b[i] (RFC 8259: -?(0|[1-9]\d*)
// (\.\d+)?([eE][+-]?\d+)?) and returns the index after it, or -1, and
// whether it has an exponent.
func validNumber(b []byte, i int) (end int, exp bool) {
	if b[i] == '-' {
		i++
	}
	switch {
	case i >= len(b):
		return -1, false
	case b[i] == '0':
		i++
	case b[i] >= '1' && b[i] <= '9':
		for i++; i < len(b) && isDigit(b[i]); i++ {
		}
	default:
		return -1, false
	}
	if i < len(b) && b[i] == '.' {
		i++
		if i >= len(b) || !isDigit(b[i]) {
			return -1, false
		}
		for i++; i < len(b) && isDigit(b[i]); i++ {
		}
	}
	if i < len(b) && (b[i] == 'e' || b[i] == 'E') {
		exp = true
		i++
		if i < len(b) && (b[i] == '+' || b[i] == '-') {
			i++
		}
		if i >= len(b) || !isDigit(b[i]) {
			return -1, false
		}
		for i++; i < len(b) && isDigit(b[i]); i++ {
		}
	}
	return i, exp
}

// hasAt reports whether b holds lit at i.
func hasAt(b []byte, i int, lit string) bool {
	return len(b)-i >= len(lit) && string(b[i:i+len(lit)]) == lit
}
