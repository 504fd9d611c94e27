package wire_test

import (
	"encoding/json"
	"math"
	"strconv"
	"testing"

	"github.com/socketcluster-go/socketcluster/internal/wire"
)

// Numbers are written as JavaScript's JSON.stringify writes them (Number
// .prototype.toString): plain notation from 1e-6 up to 1e21, exponent form
// outside, no "+0"/leading zeros in the exponent, -0 as 0, non-finite as
// null.
var point1, point2 = 0.1, 0.2
var point3 = point1 + point2 // computed at run time: 0.30000000000000004

func TestAppendNumberLikeJavaScript(t *testing.T) {
	for _, tc := range []struct {
		in   float64
		want string
	}{
		{0, "0"},
		{math.Copysign(0, -1), "0"},
		{1, "1"},
		{-1, "-1"},
		{15.5, "15.5"},
		{0.1, "0.1"},
		{point3, "0.30000000000000004"},
		{1e-6, "0.000001"},
		{1.5e-6, "0.0000015"},
		{1e-7, "1e-7"},
		{-1e-7, "-1e-7"},
		{1.5e-10, "1.5e-10"},
		{5e-324, "5e-324"},
		{1e20, "100000000000000000000"},
		{123456789012345680000, "123456789012345680000"},
		{1e21, "1e+21"},
		{-1e21, "-1e+21"},
		{1.5e300, "1.5e+300"},
		{math.MaxFloat64, "1.7976931348623157e+308"},
		{9007199254740992, "9007199254740992"},
		{9007199254740993, "9007199254740992"},
		{4294967296, "4294967296"},
		{-4294967296, "-4294967296"},
		{9007199254740991, "9007199254740991"},
		{-9007199254740991, "-9007199254740991"},
		{-9007199254740992, "-9007199254740992"},
		{1e100, "1e+100"},
		{math.NaN(), "null"},
		{math.Inf(1), "null"},
		{math.Inf(-1), "null"},
	} {
		if got := string(wire.AppendNumber(nil, tc.in)); got != tc.want {
			t.Errorf("AppendNumber(%v) = %s, want %s", tc.in, got, tc.want)
		}
	}
	// Appends to dst.
	if got := string(wire.AppendNumber([]byte("x:"), 1e-7)); got != "x:1e-7" {
		t.Errorf("append to prefix: %s", got)
	}
}

// Integers take a shorter path in AppendNumber: the digits must be those
// of the general one (shortest 'f' formatting) on both sides of its bound.
func TestAppendNumberIntegers(t *testing.T) {
	check := func(f float64) {
		if got, want := string(wire.AppendNumber(nil, f)), strconv.FormatFloat(f, 'f', -1, 64); got != want {
			t.Errorf("AppendNumber(%v) = %s, want %s", f, got, want)
		}
	}
	for f := 1.0; f < 1e21; f *= 3 {
		for _, g := range []float64{f, f + 1, f - 1, -f, math.Floor(f * 1.5)} {
			if g != 0 && math.Abs(g) < 1e21 { // JavaScript writes an exponent from 1e21
				check(g)
			}
		}
	}
	for d := -3.0; d <= 3; d++ {
		check(1<<53 + d)
		check(-(1<<53 + d))
	}
}

// Every finite number survives AppendNumber then parsing.
func TestAppendNumberRoundTrips(t *testing.T) {
	for _, f := range []float64{1, -1, 15.5, 1e21, 1e-7, 5e-324, math.MaxFloat64, 1 / 3.0, 123456.789e-30, 2.5e-6, 9.999999999999999e20} {
		s := string(wire.AppendNumber(nil, f))
		g, err := strconv.ParseFloat(s, 64)
		if err != nil || g != f {
			t.Errorf("%v → %s → %v (%v)", f, s, g, err)
		}
	}
}

func TestAppendString(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"", `""`},
		{"abc", `"abc"`},
		{`a"b\c`, `"a\"b\\c"`},
		{"\n\r\t\b\f", `"\n\r\t\b\f"`},
		{"\x00\x01\x1f", `"\u0000\u0001\u001f"`},
		{"\x7f", "\"\x7f\""},
		{"<a&b>", `"<a&b>"`},
		{"é😀", `"é😀"`},
		{"\u2028\u2029", "\"\u2028\u2029\""},
		{"a\xffb", "\"a\ufffdb\""},
		{"\xed\xa0\x80", "\"\ufffd\ufffd\ufffd\""}, // a lone surrogate in WTF-8
		{"#publish", `"#publish"`},
	} {
		got := string(wire.AppendString(nil, tc.in))
		if got != tc.want {
			t.Errorf("AppendString(%q) = %s, want %s", tc.in, got, tc.want)
		}
		var back string
		if err := json.Unmarshal([]byte(got), &back); err != nil {
			t.Errorf("AppendString(%q) is not a JSON string: %v", tc.in, err)
		}
	}
}

func TestAppendResponse(t *testing.T) {
	for _, tc := range []struct {
		rid       float64
		data, err string // "-" for nil
		want      string
	}{
		{1, "-", "-", `{"rid":1}`},
		{3, "-", "-", `{"rid":3}`},
		{5, "null", "-", `{"rid":5,"data":null}`},
		{4, `{"name":"Ann"}`, "-", `{"rid":4,"data":{"name":"Ann"}}`},
		{4, "-", `{"message":"it failed","name":"FailError","extra":{"a":1}}`, `{"rid":4,"error":{"message":"it failed","name":"FailError","extra":{"a":1}}}`},
		{4, "-", `"just a string"`, `{"rid":4,"error":"just a string"}`},
		{4, "1", `"e"`, `{"rid":4,"error":"e"}`}, // an error response has no data
		{15.5, "-", "-", `{"rid":15.5}`},
		{-1, "-", "-", `{"rid":-1}`},
		{1e21, "-", "-", `{"rid":1e+21}`},
		{1, `{"id":"doThEWNPFAHSJ0SUAAAA","pingTimeout":3000,"isAuthenticated":false}`, "-",
			`{"rid":1,"data":{"id":"doThEWNPFAHSJ0SUAAAA","pingTimeout":3000,"isAuthenticated":false}}`},
	} {
		got := string(wire.AppendResponse(nil, tc.rid, raw(tc.data), raw(tc.err)))
		if got != tc.want {
			t.Errorf("AppendResponse(%v, %s, %s) = %s, want %s", tc.rid, tc.data, tc.err, got, tc.want)
		}
	}
}

func raw(s string) []byte {
	if s == "-" {
		return nil
	}
	return []byte(s)
}

func TestAppendEvent(t *testing.T) {
	for _, tc := range []struct {
		event  string
		data   string
		cid    float64
		hasCid bool
		want   string
	}{
		{"chat", `{"text":"hi"}`, 0, false, `{"event":"chat","data":{"text":"hi"}}`},
		{"noteUndef", "-", 0, false, `{"event":"noteUndef"}`},
		{"#removeAuthToken", "-", 0, false, `{"event":"#removeAuthToken"}`},
		{"n", "null", 0, false, `{"event":"n","data":null}`},
		{"clientProc", `{"q":1}`, 1, true, `{"event":"clientProc","cid":1,"data":{"q":1}}`},
		{"clientProc", "5", 2, true, `{"event":"clientProc","cid":2,"data":5}`},
		{"clientProcTimeout", "-", 3, true, `{"event":"clientProcTimeout","cid":3}`},
		{"#removeAuthToken", "-", 2, true, `{"event":"#removeAuthToken","cid":2}`},
		{"#setAuthToken", `{"token":"<jwt>"}`, 1, true, `{"event":"#setAuthToken","cid":1,"data":{"token":"<jwt>"}}`},
		{"#kickOut", `{"channel":"a","message":"bye"}`, 0, false, `{"event":"#kickOut","data":{"channel":"a","message":"bye"}}`},
		{`we"ird\ é`, "1", 0, false, `{"event":"we\"ird\\ é","data":1}`},
		{"zero cid", "-", 0, true, `{"event":"zero cid","cid":0}`},
	} {
		got := string(wire.AppendEvent(nil, tc.event, raw(tc.data), tc.cid, tc.hasCid))
		if got != tc.want {
			t.Errorf("AppendEvent(%q) = %s, want %s", tc.event, got, tc.want)
		}
	}
}

func TestAppendPublish(t *testing.T) {
	for _, tc := range []struct{ channel, data, want string }{
		{"a", `"hello"`, `{"event":"#publish","data":{"channel":"a","data":"hello"}}`},
		{"a", "-", `{"event":"#publish","data":{"channel":"a"}}`},
		{"high", `"ip"`, `{"event":"#publish","data":{"channel":"high","data":"ip"}}`},
		{"", "null", `{"event":"#publish","data":{"channel":"","data":null}}`},
		{"ch/\"q\"", `{"x":[1]}`, `{"event":"#publish","data":{"channel":"ch/\"q\"","data":{"x":[1]}}}`},
	} {
		got := string(wire.AppendPublish(nil, tc.channel, raw(tc.data)))
		if got != tc.want {
			t.Errorf("AppendPublish(%q, %s) = %s, want %s", tc.channel, tc.data, got, tc.want)
		}
	}
	// Appending keeps what was in dst (the reserved header room).
	prefix := make([]byte, 10, 64)
	out := wire.AppendPublish(prefix, "a", []byte("1"))
	if string(out[10:]) != `{"event":"#publish","data":{"channel":"a","data":1}}` || len(out) != 10+len(`{"event":"#publish","data":{"channel":"a","data":1}}`) {
		t.Fatalf("prefix lost: %q", out)
	}
}
