package minbin

import "testing"

func publishPacket() map[string]any {
	return map[string]any{
		"event": "#publish",
		"data": map[string]any{
			"channel": "chat/room1",
			"data":    map[string]any{"user": "ann", "text": "hello world", "ts": 1700000000000.0},
		},
	}
}

func BenchmarkEncodePublish(b *testing.B) {
	c := New()
	p := publishPacket()
	b.ReportAllocs()
	for b.Loop() {
		if _, _, err := c.Encode(p); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkDecodePublish(b *testing.B) {
	c := New()
	frame, _, err := c.Encode(publishPacket())
	if err != nil {
		b.Fatal(err)
	}
	b.SetBytes(int64(len(frame)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := c.Decode(frame, true); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkEncodeBatch(b *testing.B) {
	c := New()
	batch := make([]any, 16)
	for i := range batch {
		batch[i] = map[string]any{"rid": float64(i + 1), "data": map[string]any{"ok": true}}
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, _, err := c.Encode(batch); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkDecodeInvoke(b *testing.B) {
	c := New()
	frame, _, err := c.Encode(map[string]any{"event": "getUser", "data": map[string]any{"id": 7.0}, "cid": 4.0})
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := c.Decode(frame, true); err != nil {
			b.Fatal(err)
		}
	}
}
