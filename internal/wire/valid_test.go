package wire_test

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/socketcluster-go/socketcluster/internal/wire"
)

// validCases are edge cases of the JSON grammar; each is checked against
// json.Valid, not against a hand-written answer.
var validCases = []string{
	``, ` `, `{`, `}`, `[`, `]`, `{}`, `[]`, ` { } `, `[ ]`, `{,}`, `[,]`, `[1,]`, `{"a":1,}`,
	`{"a"}`, `{"a":}`, `{"a" : 1 , "b" : [ ] }`, `{1:2}`, `{"a":1 "b":2}`, `[1 2]`,
	`{"a":1]`, `[1}`, `[[[]]]`, `[[[]]`, `[{}]`, `[{]}`,
	`0`, `-0`, `01`, `-01`, `1.`, `.5`, `1.5`, `-1.5e10`, `1e`, `1e+`, `1e+5`, `1E-5`, `1.e5`,
	`-`, `+1`, `1.5.5`, `0x10`, `1e5.5`, `12345678901234567890123456789`, `1e400`,
	`true`, `false`, `null`, `tru`, `nul`, `truex`, `nullnull`, `True`, `[true,false,null]`,
	`"`, `""`, `"a`, `"\"`, `"\\"`, `"\/"`, `"\b\f\n\r\t"`, `"\u00e9"`, `"\u00E9"`, `"\u00g9"`,
	`"\u12"`, `"\x"`, `"\'"`, "\"a\tb\"", "\"a\x01b\"", "\"\x7f\"", "\"\xff\xfe\"", `"é"`,
	"\"\x00\"", `"a"b`, `"a" "b"`, `1 2`, ` 1 `, "\t\n\r 1 \t\n\r", "\v1", "\u00a01",
	`{"a":{"b":{"c":[{"d":"}]{["}]}}}`, `{"event":"x","data":"\\\"}"}`,
}

func TestValidMatchesEncodingJSON(t *testing.T) {
	cases := append([]string(nil), validCases...)
	cases = append(cases, seeds...)
	for _, depth := range []int{31, 32, 33, 9999, 10000, 10001} {
		cases = append(cases,
			strings.Repeat("[", depth)+strings.Repeat("]", depth),
			strings.Repeat(`{"a":`, depth-1)+"{}"+strings.Repeat("}", depth-1),
			strings.Repeat("[", depth)+"1"+strings.Repeat("]", depth-1))
	}
	for _, c := range cases {
		if got, want := wire.Valid([]byte(c)), json.Valid([]byte(c)); got != want {
			t.Errorf("Valid(%.60q) = %v, json.Valid says %v", c, got, want)
		}
	}
}

func FuzzValid(f *testing.F) {
	for _, s := range append(append([]string(nil), validCases...), seeds...) {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		if got, want := wire.Valid(b), json.Valid(b); got != want {
			t.Fatalf("Valid(%q) = %v, json.Valid says %v", b, got, want)
		}
	})
}

func BenchmarkValid(b *testing.B) {
	frame := []byte(`{"event":"#publish","data":{"channel":"prices/eurusd","data":{"bid":1.0842,"ask":1.0844,"ts":1732245000123,"note":"a \"quoted\" word"}},"cid":17}`)
	b.Run("wire", func(b *testing.B) {
		b.SetBytes(int64(len(frame)))
		for b.Loop() {
			if !wire.Valid(frame) {
				b.Fatal("invalid")
			}
		}
	})
	b.Run("encoding-json", func(b *testing.B) {
		b.SetBytes(int64(len(frame)))
		for b.Loop() {
			if !json.Valid(frame) {
				b.Fatal("invalid")
			}
		}
	})
}
