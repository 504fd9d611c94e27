package minbin

import (
	"bytes"
	"encoding/hex"
	"errors"
	"testing"
)

// FuzzDecode: Decode never panics and fails only with the reference's
// errors; whatever it returns encodes to valid MessagePack, decodes again,
// and re-encodes to the same bytes. The seed corpus is every golden
// vector, so a plain `go test` runs them all quickly.
func FuzzDecode(f *testing.F) {
	vf := loadVectors(f)
	for _, v := range vf.Decode {
		if v.Text != nil {
			f.Add([]byte(*v.Text), false)
			continue
		}
		b, err := hex.DecodeString(*v.Hex)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b, true)
	}
	for _, v := range vf.Encode {
		if v.Hex != nil {
			b, _ := hex.DecodeString(*v.Hex)
			f.Add(b, true)
		}
	}
	f.Add([]byte{}, false)
	f.Add([]byte{0xdd, 0xff, 0xff, 0xff, 0xff}, true)
	f.Add([]byte{0xdf, 0xff, 0xff, 0xff, 0xff}, true)

	c := New()
	f.Fuzz(func(t *testing.T, data []byte, binary bool) {
		keep := bytes.Clone(data)
		v, err := c.Decode(data, binary)
		if !bytes.Equal(data, keep) {
			t.Fatal("Decode modified its input")
		}
		if err != nil {
			var e *Error
			if !errors.As(err, &e) || e.Name == "" || e.Message == "" {
				t.Fatalf("Decode error %T %v is not a reference error", err, err)
			}
			return
		}
		if !binary {
			if v != 0.0 {
				t.Fatalf("text frame decoded to %s, want 0", show(v))
			}
			return
		}
		frame, bin, err := c.Encode(v)
		if errors.Is(err, ErrTooDeep) {
			return // an ext value at the depth limit grows by one level as a map
		}
		if err != nil || !bin {
			t.Fatalf("Encode(Decode(%x)): %v", data, err)
		}
		checkVmihailenco(t, frame)
		// Re-encoding settles after one more round: a packet with both e
		// and r loses data once, as with the reference (e takes data
		// before r reads it).
		frame2 := roundTrip(t, c, frame)
		frame3 := roundTrip(t, c, frame2)
		if !bytes.Equal(frame2, frame3) {
			t.Fatalf("not stable: %x re-encodes to %x, then %x, then %x", data, frame, frame2, frame3)
		}
	})
}

func roundTrip(t *testing.T, c *Codec, frame []byte) []byte {
	t.Helper()
	v, err := c.Decode(frame, true)
	if err != nil {
		t.Fatalf("Decode(%x) of our own encoding: %v", frame, err)
	}
	out, _, err := c.Encode(v)
	if err != nil {
		t.Fatalf("Encode(Decode(%x)): %v", frame, err)
	}
	return out
}
