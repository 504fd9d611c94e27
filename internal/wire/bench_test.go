package wire_test

import (
	"testing"

	"github.com/socketcluster-go/socketcluster/internal/wire"
)

func BenchmarkParse(b *testing.B) {
	for _, bc := range []struct{ name, frame string }{
		{"pong", ``},
		{"publish", `{"event":"#publish","data":{"channel":"prices/eurusd","data":{"bid":1.0842,"ask":1.0844,"ts":1732245000123}},"cid":17}`},
		{"invoke", `{"event":"getUser","data":{"id":7,"fields":["name","email"]},"cid":4}`},
		{"batch4", `[{"event":"a","data":1},{"event":"b","data":2},{"rid":2,"data":"x"},{"rid":3,"data":"x"}]`},
	} {
		frame := []byte(bc.frame)
		b.Run(bc.name, func(b *testing.B) {
			ps := make([]wire.Packet, 0, 8)
			oks := make([]bool, 0, 8)
			b.SetBytes(int64(len(frame)))
			b.ReportAllocs()
			for b.Loop() {
				ps, oks, _ = wire.Parse(frame, ps[:0], oks[:0])
			}
		})
	}
}

func BenchmarkAppendPublish(b *testing.B) {
	data := []byte(`{"bid":1.0842,"ask":1.0844,"ts":1732245000123}`)
	buf := make([]byte, 0, 256)
	b.ReportAllocs()
	for b.Loop() {
		buf = wire.AppendPublish(buf[:0], "prices/eurusd", data)
	}
	b.SetBytes(int64(len(buf)))
}

func BenchmarkAppendResponse(b *testing.B) {
	data := []byte(`{"name":"Ann"}`)
	buf := make([]byte, 0, 64)
	b.ReportAllocs()
	for b.Loop() {
		buf = wire.AppendResponse(buf[:0], 4, data, nil)
	}
}
