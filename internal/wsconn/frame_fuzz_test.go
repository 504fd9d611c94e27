package wsconn

import (
	"bytes"
	"errors"
	"io"
	"testing"

	"github.com/gobwas/ws"
)

// FuzzParseFrames: whatever bytes a client sends, however its reads cut
// them, the frame parser never panics, never consumes more than it was
// given (feedReader checks), and reports the same messages, control
// frames and error as when the bytes come in one piece.
func FuzzParseFrames(f *testing.F) {
	join := func(frames ...[]byte) []byte { return bytes.Join(frames, nil) }
	rsv1 := func(b []byte) []byte { b = bytes.Clone(b); b[0] |= 0x40; return b }
	for _, in := range [][]byte{
		clientFrame(ws.OpText, true, []byte(`{"event":"#handshake","cid":1}`), 0),
		join(clientFrame(ws.OpText, false, []byte("he"), 0), clientFrame(ws.OpPing, true, []byte("p"), 0),
			clientFrame(ws.OpContinuation, true, []byte("llo"), 2)),
		clientFrame(ws.OpBinary, true, bytes.Repeat([]byte{7}, 300), 8),
		clientFrame(ws.OpClose, true, []byte("\x03\xe8bye"), 0),
		rsv1(clientFrame(ws.OpText, true, []byte("deflated?"), 0)),
		clientFrame(ws.OpText, true, bytes.Repeat([]byte("x"), 2000), 0), // over the limit
		{0x81, 0x05, 'h', 'e', 'l', 'l', 'o'},                            // not masked
		{0x89, 0xfe, 0, 200, 1, 2, 3, 4},                                 // control frame too long
		{0x82, 0xff, 0x80, 0, 0, 0, 0, 0, 0, 1, 1, 2, 3, 4},              // 64-bit length, top bit set
		{0x80, 0x80, 1, 2, 3, 4},                                         // continuation without a message
	} {
		f.Add(in, []byte{1, 3, 200}, false)
		f.Add(in, []byte{2}, true)
	}
	f.Fuzz(func(t *testing.T, in, cuts []byte, deflate bool) {
		const limit = 1 << 10
		whole, errWhole := feedReader(t, &frameReader{deflate: deflate}, limit, bytes.Clone(in))
		var chunks [][]byte
		for rest, k := in, 0; len(rest) > 0; k++ {
			n := len(rest)
			if len(cuts) > 0 {
				n = min(n, 1+int(cuts[k%len(cuts)]))
			}
			chunks = append(chunks, rest[:n])
			rest = rest[n:]
		}
		split, errSplit := feedReader(t, &frameReader{deflate: deflate}, limit, copyChunks(chunks)...)
		if !equalParsed(whole, split) || errKind(errWhole) != errKind(errSplit) {
			t.Fatalf("in one piece: %q, %v; in %d chunks: %q, %v", whole, errWhole, len(chunks), split, errSplit)
		}
		if errWhole != nil && errKind(errWhole) == "other" {
			t.Fatalf("unexpected error %v", errWhole)
		}
	})
}

// errKind names the kind of a parse error, for comparison.
func errKind(err error) string {
	switch {
	case err == nil:
		return "none"
	case errors.Is(err, ErrProtocol):
		return "protocol"
	case errors.Is(err, ErrTooBig):
		return "too big"
	case errors.Is(err, io.ErrUnexpectedEOF):
		return "cut short"
	}
	return "other"
}
