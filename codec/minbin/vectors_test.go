package minbin

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"os"
	"sort"
	"strings"
	"testing"
)

// The golden vectors in testdata/vectors.json were produced by the real
// sc-codec-min-bin (see testdata/genvectors.js); these tests need neither
// node nor npm.

type jsError struct {
	Name    string `json:"name"`
	Message string `json:"message"`
}

type vector struct {
	Name  string  `json:"name"`
	Input any     `json:"input"` // encode vectors
	Hex   *string `json:"hex"`
	Text  *string `json:"text"` // decode vectors: a text frame
	Note  string  `json:"note"`

	// Large encode vectors carry a digest instead of hex.
	Len    int    `json:"len"`
	SHA256 string `json:"sha256"`
	Prefix string `json:"prefix"`

	Decoded        any      `json:"decoded"`
	DecodedIsInput bool     `json:"decodedIsInput"`
	DecodeError    *jsError `json:"decodeError"`
	hasDecoded     bool
}

type vectorFile struct {
	Generator string    `json:"generator"`
	Encode    []*vector `json:"encode"`
	Decode    []*vector `json:"decode"`
}

func loadVectors(t testing.TB) *vectorFile {
	t.Helper()
	raw, err := os.ReadFile("testdata/vectors.json")
	if err != nil {
		t.Fatal(err)
	}
	var vf vectorFile
	if err := json.Unmarshal(raw, &vf); err != nil {
		t.Fatal(err)
	}
	// Tell "decoded": null from no "decoded" at all.
	var probe struct {
		Encode []map[string]json.RawMessage `json:"encode"`
		Decode []map[string]json.RawMessage `json:"decode"`
	}
	if err := json.Unmarshal(raw, &probe); err != nil {
		t.Fatal(err)
	}
	for i, m := range probe.Encode {
		_, vf.Encode[i].hasDecoded = m["decoded"]
	}
	for i, m := range probe.Decode {
		_, vf.Decode[i].hasDecoded = m["decoded"]
	}
	return &vf
}

// untag turns the vector notation (see genvectors.js) into a codec tree.
func untag(v any) any {
	switch x := v.(type) {
	case []any:
		out := make([]any, len(x))
		for i, e := range x {
			out[i] = untag(e)
		}
		return out
	case map[string]any:
		if o, ok := x["$obj"]; ok {
			m := map[string]any{}
			for k, e := range o.(map[string]any) {
				m[k] = untag(e)
			}
			return m
		}
		if h, ok := x["$bin"]; ok {
			b, err := hex.DecodeString(h.(string))
			if err != nil {
				panic(err)
			}
			return b
		}
		if n, ok := x["$num"]; ok {
			switch n {
			case "NaN":
				return math.NaN()
			case "Infinity":
				return math.Inf(1)
			case "-Infinity":
				return math.Inf(-1)
			case "-0":
				return math.Copysign(0, -1)
			}
		}
		if a, ok := x["$str"].([]any); ok {
			return strings.Repeat(a[0].(string), int(a[1].(float64)))
		}
		if a, ok := x["$binfill"].([]any); ok {
			return bytes.Repeat([]byte{byte(a[0].(float64))}, int(a[1].(float64)))
		}
		if a, ok := x["$arrfill"].([]any); ok {
			out := make([]any, int(a[1].(float64)))
			for i := range out {
				out[i] = untag(a[0])
			}
			return out
		}
		if n, ok := x["$mapfill"].(float64); ok {
			m := map[string]any{}
			for i := 0; i < int(n); i++ {
				m[fmt.Sprintf("k%d", i)] = float64(i)
			}
			return m
		}
		panic(fmt.Sprintf("unknown tag %v", x))
	}
	return v
}

// same is deep equality for codec trees, with NaN equal to NaN and 0 and
// -0 told apart.
func same(a, b any) bool {
	switch x := a.(type) {
	case float64:
		y, ok := b.(float64)
		if !ok {
			return false
		}
		if x != x || y != y {
			return x != x && y != y
		}
		return x == y && math.Signbit(x) == math.Signbit(y)
	case []byte:
		y, ok := b.([]byte)
		return ok && x != nil && y != nil && bytes.Equal(x, y)
	case []any:
		y, ok := b.([]any)
		if !ok || len(x) != len(y) {
			return false
		}
		for i := range x {
			if !same(x[i], y[i]) {
				return false
			}
		}
		return true
	case map[string]any:
		y, ok := b.(map[string]any)
		if !ok || len(x) != len(y) {
			return false
		}
		for k, e := range x {
			f, ok := y[k]
			if !ok || !same(e, f) {
				return false
			}
		}
		return true
	case string, bool, nil:
		return a == b
	}
	return false
}

// show prints a tree with sorted keys, for failure messages.
func show(v any) string {
	switch x := v.(type) {
	case map[string]any:
		keys := make([]string, 0, len(x))
		for k := range x {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		parts := make([]string, len(keys))
		for i, k := range keys {
			parts[i] = fmt.Sprintf("%q:%s", k, show(x[k]))
		}
		return "{" + strings.Join(parts, ",") + "}"
	case []any:
		parts := make([]string, len(x))
		for i, e := range x {
			parts[i] = show(e)
		}
		return "[" + strings.Join(parts, ",") + "]"
	case []byte:
		return fmt.Sprintf("bin(%x)", x)
	case string:
		if len(x) > 80 {
			return fmt.Sprintf("%q…(%d bytes)", x[:80], len(x))
		}
		return fmt.Sprintf("%q", x)
	}
	return fmt.Sprintf("%#v", v)
}

func checkDecode(t *testing.T, v *vector, got any, err error, input any) {
	t.Helper()
	switch {
	case v.DecodeError != nil:
		var e *Error
		if !errors.As(err, &e) {
			t.Fatalf("Decode = %s, %v; want %s %q", show(got), err, v.DecodeError.Name, v.DecodeError.Message)
		}
		if e.Name != v.DecodeError.Name || e.Message != v.DecodeError.Message {
			t.Fatalf("Decode error = %s %q; want %s %q", e.Name, e.Message, v.DecodeError.Name, v.DecodeError.Message)
		}
	case err != nil:
		t.Fatalf("Decode error %v", err)
	case v.DecodedIsInput:
		if !same(got, input) {
			t.Fatalf("Decode did not give back the input")
		}
	case v.hasDecoded:
		if want := untag(v.Decoded); !same(got, want) {
			t.Fatalf("Decode =\n  %s\nwant\n  %s", show(got), show(want))
		}
	default:
		t.Fatal("vector has no expected decode result")
	}
}

func TestVectorsEncode(t *testing.T) {
	vf := loadVectors(t)
	t.Log(vf.Generator)
	if len(vf.Encode) < 50 {
		t.Fatalf("only %d encode vectors", len(vf.Encode))
	}
	c := New()
	for _, v := range vf.Encode {
		t.Run(v.Name, func(t *testing.T) {
			in := untag(v.Input)
			frame, binary, err := c.Encode(in)
			if err != nil {
				t.Fatalf("Encode: %v", err)
			}
			if !binary {
				t.Fatal("Encode reported a text frame")
			}
			if v.Hex != nil {
				if got := hex.EncodeToString(frame); got != *v.Hex {
					t.Fatalf("Encode(%s) =\n  %s\nwant\n  %s", show(in), got, *v.Hex)
				}
			} else {
				sum := sha256.Sum256(frame)
				if len(frame) != v.Len || hex.EncodeToString(sum[:]) != v.SHA256 || !strings.HasPrefix(hex.EncodeToString(frame), v.Prefix) {
					t.Fatalf("Encode: %d bytes, prefix %x; want %d bytes, prefix %s", len(frame), frame[:min(16, len(frame))], v.Len, v.Prefix)
				}
			}
			got, err := c.Decode(frame, true)
			checkDecode(t, v, got, err, untag(v.Input))
		})
	}
}

func TestVectorsDecode(t *testing.T) {
	vf := loadVectors(t)
	if len(vf.Decode) < 50 {
		t.Fatalf("only %d decode vectors", len(vf.Decode))
	}
	c := New()
	for _, v := range vf.Decode {
		t.Run(v.Name, func(t *testing.T) {
			var got any
			var err error
			if v.Text != nil {
				got, err = c.Decode([]byte(*v.Text), false)
			} else {
				frame, herr := hex.DecodeString(*v.Hex)
				if herr != nil {
					t.Fatal(herr)
				}
				keep := bytes.Clone(frame)
				got, err = c.Decode(frame, true)
				if !bytes.Equal(frame, keep) {
					t.Fatal("Decode modified its input")
				}
			}
			checkDecode(t, v, got, err, nil)
		})
	}
}
