package mapping

import (
	"math"
	"math/big"
	"regexp"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf16"
)

// HashToIndex is scc-broker-client's Hasher.hashToIndex: the Java-style
// string hash of key, over its UTF-16 code units with 32-bit wrap-around,
// made non-negative and reduced modulo modulo. It picks the pool client of
// a channel and, over an MD5 hex digest, the site of the simple mapper.
//
// It reproduces a quirk of the JavaScript exactly: the hash starts as the
// key itself, so the first step converts the key to a number; a key that
// reads as a JavaScript number ("42", " 0x1f ", "1e3") starts from that
// number, any other key from zero. An empty key gives 0. modulo must be
// positive; otherwise -1 is returned.
func HashToIndex(key string, modulo int) int {
	if modulo <= 0 {
		return -1
	}
	if key == "" {
		return 0
	}
	units := utf16.Encode([]rune(key))
	var hash int32
	for i, ch := range units {
		if i == 0 {
			// hash is still the string: (key << 5) - key + ch, in doubles.
			n := stringToNumber(key)
			shifted := float64(int32(uint32(toInt32(n)) << 5))
			hash = toInt32(shifted - n + float64(ch))
			continue
		}
		// Exact in float64: |values| < 2^38.
		hash = toInt32(float64(int32(uint32(hash)<<5)) - float64(hash) + float64(ch))
	}
	h := int64(hash)
	if h < 0 {
		h = -h
	}
	return int(h % int64(modulo))
}

// toInt32 is ECMAScript's ToInt32.
func toInt32(f float64) int32 {
	if math.IsNaN(f) || math.IsInf(f, 0) {
		return 0
	}
	f = math.Trunc(f)
	m := math.Mod(f, 4294967296)
	if m < 0 {
		m += 4294967296
	}
	return int32(uint32(m))
}

var decimalLiteral = regexp.MustCompile(`^[+-]?(Infinity|([0-9]+\.?[0-9]*|\.[0-9]+)([eE][+-]?[0-9]+)?)$`)

// isJSSpace reports the characters ECMAScript's StringToNumber trims:
// WhiteSpace and LineTerminator.
func isJSSpace(r rune) bool {
	switch r {
	case '\t', '\n', '\v', '\f', '\r', ' ', 0xA0, 0x1680, 0x2028, 0x2029, 0x202F, 0x205F, 0x3000, 0xFEFF:
		return true
	}
	return r >= 0x2000 && r <= 0x200A || unicode.Is(unicode.Zs, r)
}

// stringToNumber is ECMAScript's StringToNumber (Number(s)): NaN when s
// is not a numeric literal.
func stringToNumber(s string) float64 {
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
			n, ok := new(big.Int).SetString(s[2:], base)
			if !ok || strings.ContainsAny(s[2:], "_+-") {
				return math.NaN()
			}
			f, _ := new(big.Float).SetInt(n).Float64()
			return f
		}
	}
	if !decimalLiteral.MatchString(s) {
		return math.NaN()
	}
	switch strings.TrimLeft(s, "+") {
	case "Infinity":
		return math.Inf(1)
	case "-Infinity":
		return math.Inf(-1)
	}
	f, err := strconv.ParseFloat(s, 64)
	if err != nil && !math.IsInf(f, 0) {
		return math.NaN()
	}
	return f
}
