package minbin

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"errors"
	"math"
	"strings"
	"sync"
	"testing"

	"github.com/vmihailenco/msgpack/v5"
)

// serverCodec is the server's codec seam, copied so this package does not
// import the root package.
type serverCodec interface {
	Encode(v any) (frame []byte, binary bool, err error)
	Decode(frame []byte, binary bool) (any, error)
}

var _ serverCodec = New()
var _ serverCodec = (*Codec)(nil)

func mustEncode(t testing.TB, v any) []byte {
	t.Helper()
	frame, binary, err := New().Encode(v)
	if err != nil {
		t.Fatalf("Encode(%s): %v", show(v), err)
	}
	if !binary {
		t.Fatal("Encode reported a text frame")
	}
	return frame
}

type M = map[string]any
type A = []any

func TestRoundTrip(t *testing.T) {
	bin := []byte{0, 1, 2, 0xff}
	cases := []struct {
		name string
		in   any
		want any // nil: same as in
	}{
		{"transmit", M{"event": "chat", "data": M{"text": "hi"}}, nil},
		{"transmit without data gets null data", M{"event": "chat"}, M{"event": "chat", "data": nil}},
		{"invoke", M{"event": "getUser", "data": M{"id": 7.0}, "cid": 4.0}, nil},
		{"publish", M{"event": "#publish", "data": M{"channel": "a", "data": "x"}}, nil},
		{"publish invoke", M{"event": "#publish", "data": M{"channel": "a", "data": bin}, "cid": 9.0}, nil},
		{"publish drops other data keys", M{"event": "#publish", "data": M{"channel": "a", "data": 1.0, "z": 2.0}},
			M{"event": "#publish", "data": M{"channel": "a", "data": 1.0}}},
		{"response empty", M{"rid": 3.0}, M{"rid": 3.0, "error": nil, "data": nil}},
		{"response data", M{"rid": 3.0, "data": A{1.0, "two"}}, M{"rid": 3.0, "error": nil, "data": A{1.0, "two"}}},
		{"response error", M{"rid": 4.0, "error": M{"message": "it failed", "name": "FailError"}},
			M{"rid": 4.0, "error": M{"message": "it failed", "name": "FailError"}, "data": nil}},
		{"batch", A{M{"event": "a", "data": 1.0}, M{"rid": 2.0, "data": "x"}},
			A{M{"event": "a", "data": 1.0}, M{"rid": 2.0, "error": nil, "data": "x"}}},
		{"numbers", M{"event": "n", "data": A{0.0, -1.0, 1.5, 1e15, -1e300, math.MaxFloat64, math.SmallestNonzeroFloat64, math.Inf(1)}}, nil},
		{"negative zero becomes zero", M{"event": "n", "data": math.Copysign(0, -1)}, M{"event": "n", "data": 0.0}},
		{"go integers become numbers", M{"event": "n", "data": A{int(5), int64(1 << 40), int32(-7), int16(300), int8(-100), uint(1), uint64(1 << 53), uint32(70000), uint16(65535), uint8(200), float32(1.5), json.Number("12.5")}},
			M{"event": "n", "data": A{5.0, float64(1 << 40), -7.0, 300.0, -100.0, 1.0, float64(1 << 53), 70000.0, 65535.0, 200.0, 1.5, 12.5}}},
		{"string slices and maps", M{"event": "s", "data": M{"l": []string{"a", "b"}, "m": map[string]string{"x": "y", "a": "b"}}},
			M{"event": "s", "data": M{"l": A{"a", "b"}, "m": M{"x": "y", "a": "b"}}}},
		{"batch of maps", []map[string]any{{"event": "a"}, {"rid": 1.0}},
			A{M{"event": "a", "data": nil}, M{"rid": 1.0, "error": nil, "data": nil}}},
		{"invalid utf-8 is replaced per byte", M{"event": "s", "data": "a\xffb\xe2\x82"}, M{"event": "s", "data": "a\uFFFDb\uFFFD\uFFFD"}},
		{"binary", M{"event": "b", "data": M{"empty": []byte{}, "some": bin}}, nil},
		{"nil data", M{"event": "x", "data": nil}, nil},
		{"top string", "hello", nil},
		{"top number", 42.0, nil},
		{"top bool", false, nil},
		{"top binary", bin, nil},
		{"top plain map", M{"foo": 1.0}, nil},
		{"empty batch", A{}, nil},
		{"big map", func() M {
			m := M{}
			for i := 0; i < 40; i++ {
				m[strings.Repeat("k", i+1)] = float64(i)
			}
			return M{"event": "big", "data": m}
		}(), nil},
	}
	c := New()
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			frame := mustEncode(t, tc.in)
			got, err := c.Decode(frame, true)
			if err != nil {
				t.Fatalf("Decode(%x): %v", frame, err)
			}
			want := tc.want
			if want == nil {
				want = tc.in
			}
			if !same(got, want) {
				t.Fatalf("round trip of %s =\n  %s\nwant\n  %s", show(tc.in), show(got), show(want))
			}
			checkVmihailenco(t, frame)
			// Encoding is deterministic and stable under a round trip.
			if again := mustEncode(t, got); !bytes.Equal(again, frame) && tc.want == nil {
				t.Fatalf("re-encoding gave %x, first encoding %x", again, frame)
			}
		})
	}
}

func TestEncodeDoesNotModifyInput(t *testing.T) {
	in := A{M{"event": "#publish", "data": M{"channel": "a", "data": 1.0}, "cid": 2.0}, M{"rid": 1.0}}
	mustEncode(t, in)
	want := A{M{"event": "#publish", "data": M{"channel": "a", "data": 1.0}, "cid": 2.0}, M{"rid": 1.0}}
	if !same(in, want) {
		t.Fatalf("input changed to %s", show(in))
	}
}

func TestEncodeDeterministic(t *testing.T) {
	m := M{}
	for i := 0; i < 100; i++ {
		m[string(rune('a'+i%26))+strings.Repeat("x", i)] = float64(i)
	}
	first := mustEncode(t, M{"event": "x", "data": m})
	for i := 0; i < 20; i++ {
		if again := mustEncode(t, M{"event": "x", "data": m}); !bytes.Equal(first, again) {
			t.Fatal("Encode is not deterministic")
		}
	}
}

func TestEncodeErrors(t *testing.T) {
	c := New()
	for _, v := range []any{struct{}{}, M{"event": "x", "data": make(chan int)}, A{M{"rid": 1.0, "data": []int{1}}}, json.Number("x")} {
		if _, _, err := c.Encode(v); !errors.Is(err, ErrUnsupportedType) {
			t.Errorf("Encode(%T) error = %v, want ErrUnsupportedType", v, err)
		}
	}
	cyclic := M{"event": "loop"}
	inner := M{}
	inner["self"] = inner
	cyclic["data"] = inner
	if _, _, err := c.Encode(cyclic); !errors.Is(err, ErrTooDeep) {
		t.Errorf("Encode(cyclic) error = %v, want ErrTooDeep", err)
	}
}

func nestedArrays(depth int) []byte {
	return append(bytes.Repeat([]byte{0x91}, depth), 0x01)
}

func TestDepthLimit(t *testing.T) {
	c := New()
	v, err := c.Decode(nestedArrays(MaxDepth), true)
	if err != nil {
		t.Fatalf("depth %d: %v", MaxDepth, err)
	}
	if _, _, err := c.Encode(v); err != nil {
		t.Fatalf("re-encoding depth %d: %v", MaxDepth, err)
	}
	// A packet at the limit encodes back to the same bytes.
	packet := append([]byte{0x81, 0xa1, 'e', 0x92, 0xa1, 'x'}, nestedArrays(MaxDepth-2)...)
	v, err = c.Decode(packet, true)
	if err != nil {
		t.Fatalf("packet at the limit: %v", err)
	}
	if frame, _, err := c.Encode(v); err != nil || !bytes.Equal(frame, packet) {
		t.Fatalf("re-encoding the packet at the limit: %v", err)
	}
	if _, err := c.Decode(append(packet[:6:6], nestedArrays(MaxDepth-1)...), true); err != ErrTooDeep {
		t.Fatalf("packet past the limit: err = %v, want ErrTooDeep", err)
	}
	if _, err := c.Decode(nestedArrays(MaxDepth+1), true); err != ErrTooDeep {
		t.Fatalf("depth %d: err = %v, want ErrTooDeep", MaxDepth+1, err)
	}
	// Maps count too, keys included.
	deepKey := append([]byte{0x81}, nestedArrays(MaxDepth)...)
	deepKey = append(deepKey, 0x01)
	if _, err := c.Decode(deepKey, true); err != ErrTooDeep {
		t.Fatalf("deep key: err = %v, want ErrTooDeep", err)
	}
	// Encoding: a packet's data nests two levels below the frame (map, then
	// the e array), so data may nest MaxDepth-2 levels.
	var data any = 1.0
	for i := 0; i < MaxDepth-2; i++ {
		data = A{data}
	}
	if _, _, err := c.Encode(M{"event": "x", "data": data}); err != nil {
		t.Fatalf("encode at the limit: %v", err)
	}
	if _, _, err := c.Encode(M{"event": "x", "data": A{data}}); err != ErrTooDeep {
		t.Fatalf("encode past the limit: err = %v, want ErrTooDeep", err)
	}
}

func TestErrors(t *testing.T) {
	c := New()
	cases := []struct {
		frame  string
		binary bool
		want   *Error
	}{
		{"", true, ErrShortBuffer},
		{"c1", true, ErrInvalidType},
		{"c0", true, ErrNullPacket},
		{"92c001", true, ErrNullPacket},
	}
	for _, tc := range cases {
		b, _ := hex.DecodeString(tc.frame)
		_, err := c.Decode(b, tc.binary)
		if err != tc.want {
			t.Errorf("Decode(%s) = %v, want %v", tc.frame, err, tc.want)
		}
	}
	if ErrNullPacket.Name != "TypeError" || ErrTooDeep.Name != "RangeError" || ErrShortBuffer.Error() != "BUFFER_SHORTAGE" {
		t.Error("error names or messages changed")
	}
	_, err := c.Decode([]byte("-1"), false)
	var e *Error
	if !errors.As(err, &e) || e.Name != "RangeError" || e.Message != "Invalid typed array length: -1" {
		t.Errorf("text -1: %v", err)
	}
}

// The official client sends pings' answers as empty text frames and
// everything else as binary; a text frame that is not a number is an
// error, as with the reference codec.
func TestTextFrames(t *testing.T) {
	c := New()
	if _, err := c.Decode([]byte(`{"event":"#handshake","cid":1}`), false); err != ErrShortBuffer {
		t.Fatalf("JSON text frame: err = %v, want ErrShortBuffer", err)
	}
	if v, err := c.Decode([]byte("12"), false); err != nil || v != 0.0 {
		t.Fatalf(`text "12" = %v, %v; want 0`, v, err)
	}
}

func TestDecodeCopiesBinary(t *testing.T) {
	frame := mustEncode(t, M{"event": "b", "data": []byte{1, 2, 3}})
	v, err := New().Decode(frame, true)
	if err != nil {
		t.Fatal(err)
	}
	for i := range frame {
		frame[i] = 0
	}
	if got := v.(M)["data"].([]byte); !bytes.Equal(got, []byte{1, 2, 3}) {
		t.Fatalf("decoded bytes alias the frame: %x", got)
	}
}

func TestConcurrent(t *testing.T) {
	c := New()
	var wg sync.WaitGroup
	for g := 0; g < 8; g++ {
		wg.Add(1)
		go func(g int) {
			defer wg.Done()
			for i := 0; i < 500; i++ {
				in := M{"event": "#publish", "data": M{"channel": "c", "data": M{"g": float64(g), "i": float64(i), "s": strings.Repeat("x", i)}}}
				frame, _, err := c.Encode(in)
				if err != nil {
					t.Error(err)
					return
				}
				out, err := c.Decode(frame, true)
				if err != nil || !same(out, in) {
					t.Errorf("round trip failed: %v", err)
					return
				}
			}
		}(g)
	}
	wg.Wait()
}

// normalize turns what vmihailenco/msgpack decodes into a codec tree.
func normalize(v any) any {
	switch x := v.(type) {
	case int8:
		return float64(x)
	case int16:
		return float64(x)
	case int32:
		return float64(x)
	case int64:
		return float64(x)
	case uint8:
		return float64(x)
	case uint16:
		return float64(x)
	case uint32:
		return float64(x)
	case uint64:
		return float64(x)
	case float32:
		return float64(x)
	case []any:
		for i := range x {
			x[i] = normalize(x[i])
		}
	case map[string]any:
		for k := range x {
			x[k] = normalize(x[k])
		}
	}
	return v
}

// viaVmihailenco reads frame with an independent MessagePack decoder,
// insisting that it holds exactly one value.
func viaVmihailenco(frame []byte) (any, error) {
	r := bytes.NewReader(frame)
	d := msgpack.NewDecoder(r)
	v, err := d.DecodeInterface()
	if err != nil {
		return nil, err
	}
	if r.Len() != 0 {
		return nil, errors.New("trailing bytes")
	}
	return normalize(v), nil
}

// rawDecode reads one value without the packet decompression.
func rawDecode(frame []byte) (any, error) {
	d := decoder{b: frame}
	return d.value()
}

// checkVmihailenco: what Encode writes is plain, valid MessagePack that
// another implementation reads the same way.
func checkVmihailenco(t testing.TB, frame []byte) {
	t.Helper()
	other, err := viaVmihailenco(frame)
	if err != nil {
		t.Fatalf("vmihailenco/msgpack cannot read %x: %v", frame, err)
	}
	ours, err := rawDecode(frame)
	if err != nil {
		t.Fatalf("raw decode: %v", err)
	}
	if !same(ours, other) {
		t.Fatalf("vmihailenco/msgpack reads %x as\n  %s\nwe read\n  %s", frame, show(other), show(ours))
	}
}

func TestVectorsReadByVmihailenco(t *testing.T) {
	vf := loadVectors(t)
	for _, v := range vf.Encode {
		frame, _, err := New().Encode(untag(v.Input))
		if err != nil {
			t.Fatal(err)
		}
		checkVmihailenco(t, frame)
	}
}

// MessagePack written by another encoder, in formats msgpack-lite never
// writes (uint64, int64, float32, str8 for short strings), reads right.
func TestDecodeForeignEncoder(t *testing.T) {
	in := map[string]any{
		"e": []any{"ev", map[string]any{
			"u64": uint64(1 << 60), "i64": int64(-1 << 40), "f32": float32(2.5), "f64": 0.25,
			"s": "short", "b": []byte{9}, "nil": nil, "t": true, "arr": []any{int8(-5), uint16(300)},
		}, 7},
	}
	var buf bytes.Buffer
	enc := msgpack.NewEncoder(&buf)
	enc.SetSortMapKeys(true)
	if err := enc.Encode(in); err != nil {
		t.Fatal(err)
	}
	got, err := New().Decode(buf.Bytes(), true)
	if err != nil {
		t.Fatal(err)
	}
	want := M{"event": "ev", "cid": 7.0, "data": M{
		"u64": float64(1 << 60), "i64": float64(-1 << 40), "f32": 2.5, "f64": 0.25,
		"s": "short", "b": []byte{9}, "nil": nil, "t": true, "arr": A{-5.0, 300.0},
	}}
	if !same(got, want) {
		t.Fatalf("got %s\nwant %s", show(got), show(want))
	}
}

func TestJSNumberString(t *testing.T) {
	for f, want := range map[float64]string{
		0: "0", 1: "1", -1: "-1", 1.5: "1.5", 0.1: "0.1", 1e21: "1e+21", 1e20: "100000000000000000000",
		1e-7: "1e-7", 1e-6: "0.000001", 123456789012: "123456789012", 1.2345e-10: "1.2345e-10",
		-2.5e25: "-2.5e+25", 5e-324: "5e-324", math.MaxFloat64: "1.7976931348623157e+308",
		math.Inf(1): "Infinity", math.Inf(-1): "-Infinity",
	} {
		if got := jsNumberString(f); got != want {
			t.Errorf("jsNumberString(%v) = %q, want %q", f, got, want)
		}
	}
	if jsNumberString(math.NaN()) != "NaN" || jsNumberString(math.Copysign(0, -1)) != "0" {
		t.Error("NaN or -0")
	}
}
