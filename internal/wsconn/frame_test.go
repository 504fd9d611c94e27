package wsconn

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"testing"

	"github.com/gobwas/ws"
)

// Tests of the incremental frame parser on byte buffers: every input is
// also fed split at every byte, and byte by byte, and must give the same
// events.

var testMask = [4]byte{0x37, 0xfa, 0x21, 0x3d}

// clientFrame encodes a masked client frame. ext forces the length
// encoding: 0 picks the shortest, 2 the 16-bit form, 8 the 64-bit form.
func clientFrame(op ws.OpCode, fin bool, payload []byte, ext int) []byte {
	b0 := byte(op)
	if fin {
		b0 |= 0x80
	}
	out := []byte{b0, 0}
	n := len(payload)
	switch {
	case ext == 8 || (ext == 0 && n > 0xffff):
		out[1] = 127
		out = binary.BigEndian.AppendUint64(out, uint64(n))
	case ext == 2 || (ext == 0 && n >= 126):
		out[1] = 126
		out = binary.BigEndian.AppendUint16(out, uint16(n))
	default:
		out[1] = byte(n)
	}
	out[1] |= 0x80
	out = append(out, testMask[:]...)
	start := len(out)
	out = append(out, payload...)
	for i := range payload {
		out[start+i] ^= testMask[i%4]
	}
	return out
}

// parsed is one event of a parse, rendered for comparison.
type parsed string

// feed runs the parser over chunks and renders what it completes; it stops
// at the first error.
func feed(t *testing.T, limit int64, chunks ...[]byte) ([]parsed, error) {
	t.Helper()
	return feedReader(t, &frameReader{}, limit, chunks...)
}

// feedReader is feed with a reader set up by the caller.
func feedReader(t *testing.T, fr *frameReader, limit int64, chunks ...[]byte) ([]parsed, error) {
	t.Helper()
	var out []parsed
	for _, c := range chunks {
		for len(c) > 0 {
			n, ev, body, err := fr.parse(c, limit)
			if n < 0 || n > len(c) {
				t.Fatalf("parse consumed %d of %d bytes", n, len(c))
			}
			if err != nil {
				return out, err
			}
			if ev == evNone && n != len(c) {
				t.Fatalf("parse completed nothing but consumed %d of %d bytes", n, len(c))
			}
			c = c[n:]
			switch ev {
			case evMessage:
				bin, msg, compressed := fr.takeMessage()
				if msg == nil {
					t.Fatal("takeMessage returned a nil message")
				}
				if compressed {
					out = append(out, parsed(fmt.Sprintf("compressed bin=%v %q", bin, msg)))
					break
				}
				out = append(out, parsed(fmt.Sprintf("msg bin=%v %q", bin, msg)))
			case evPing:
				out = append(out, parsed(fmt.Sprintf("ping %q", body)))
			case evPong:
				out = append(out, parsed(fmt.Sprintf("pong %q", body)))
			case evClose:
				out = append(out, parsed(fmt.Sprintf("close %q", body)))
			}
		}
	}
	if !fr.atBoundary() {
		return out, io.ErrUnexpectedEOF
	}
	return out, nil
}

// splits returns the input cut in two at every position, and byte by byte.
func splits(in []byte) [][][]byte {
	var out [][][]byte
	out = append(out, [][]byte{in})
	for i := 1; i < len(in); i++ {
		out = append(out, [][]byte{in[:i], in[i:]})
	}
	var bytewise [][]byte
	for i := range in {
		bytewise = append(bytewise, in[i:i+1])
	}
	return append(out, bytewise)
}

// copyChunks gives each split its own copy: parse unmasks control
// payloads in place.
func copyChunks(chunks [][]byte) [][]byte {
	out := make([][]byte, len(chunks))
	for i, c := range chunks {
		out[i] = bytes.Clone(c)
	}
	return out
}

func equalParsed(a, b []parsed) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func TestParseEverySplit(t *testing.T) {
	t.Parallel()
	big := bytes.Repeat([]byte("0123456789abcdef"), 5000) // 80 000 bytes: 64-bit length
	mid := bytes.Repeat([]byte("x"), 300)                 // 16-bit length
	cases := []struct {
		name string
		in   []byte
		want []parsed
	}{
		{"text", clientFrame(ws.OpText, true, []byte("hello"), 0), []parsed{`msg bin=false "hello"`}},
		{"binary", clientFrame(ws.OpBinary, true, []byte{0, 1, 2, 255}, 0), []parsed{`msg bin=true "\x00\x01\x02\xff"`}},
		{"empty", clientFrame(ws.OpText, true, nil, 0), []parsed{`msg bin=false ""`}},
		{"16-bit length", clientFrame(ws.OpText, true, mid, 0), []parsed{parsed(fmt.Sprintf("msg bin=false %q", mid))}},
		{"16-bit form of a short length", clientFrame(ws.OpText, true, []byte("ab"), 2), []parsed{`msg bin=false "ab"`}},
		{"64-bit form of a short length", clientFrame(ws.OpBinary, true, []byte("ab"), 8), []parsed{`msg bin=true "ab"`}},
		{"fragments with control frames between", bytes.Join([][]byte{
			clientFrame(ws.OpText, false, []byte("he"), 0),
			clientFrame(ws.OpPing, true, []byte("p1"), 0),
			clientFrame(ws.OpContinuation, false, nil, 0),
			clientFrame(ws.OpPong, true, []byte("x"), 0),
			clientFrame(ws.OpContinuation, false, []byte("ll"), 0),
			clientFrame(ws.OpContinuation, true, []byte("o"), 0),
			clientFrame(ws.OpBinary, false, []byte{9}, 0),
			clientFrame(ws.OpContinuation, true, []byte{8}, 0),
		}, nil), []parsed{`ping "p1"`, `pong "x"`, `msg bin=false "hello"`, `msg bin=true "\t\b"`}},
		{"several messages", bytes.Join([][]byte{
			clientFrame(ws.OpText, true, []byte("a"), 0),
			clientFrame(ws.OpText, true, nil, 0),
			clientFrame(ws.OpPing, true, nil, 0),
			clientFrame(ws.OpText, true, []byte("b"), 0),
		}, nil), []parsed{`msg bin=false "a"`, `msg bin=false ""`, `ping ""`, `msg bin=false "b"`}},
		{"close with code and reason", clientFrame(ws.OpClose, true, []byte("\x03\xe8bye"), 0), []parsed{`close "\x03\xe8bye"`}},
		{"close without body", clientFrame(ws.OpClose, true, nil, 0), []parsed{`close ""`}},
		{"control frame of 125 bytes", clientFrame(ws.OpPing, true, bytes.Repeat([]byte("p"), 125), 0),
			[]parsed{parsed(fmt.Sprintf("ping %q", bytes.Repeat([]byte("p"), 125)))}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			for _, chunks := range splits(tc.in) {
				got, err := feed(t, 1<<20, copyChunks(chunks)...)
				if err != nil || !equalParsed(got, tc.want) {
					t.Fatalf("split %d chunks (first %d bytes): got %q, %v; want %q", len(chunks), len(chunks[0]), got, err, tc.want)
				}
			}
		})
	}
	t.Run("64-bit length", func(t *testing.T) {
		in := clientFrame(ws.OpBinary, true, big, 0)
		want := []parsed{parsed(fmt.Sprintf("msg bin=true %q", big))}
		// Every split would be slow at this size: cut at the header's
		// positions, then in chunks of several sizes.
		for i := 1; i < 20; i++ {
			got, err := feed(t, 1<<20, in[:i], in[i:])
			if err != nil || !equalParsed(got, want) {
				t.Fatalf("split at %d: %v", i, err)
			}
		}
		for _, size := range []int{1, 7, 4096, 16 << 10, 65537} {
			var chunks [][]byte
			for b := in; len(b) > 0; {
				n := min(size, len(b))
				chunks = append(chunks, b[:n])
				b = b[n:]
			}
			got, err := feed(t, 1<<20, chunks...)
			if err != nil || !equalParsed(got, want) {
				t.Fatalf("chunks of %d: %v", size, err)
			}
		}
	})
}

func TestParseProtocolErrors(t *testing.T) {
	t.Parallel()
	unmasked := []byte{0x81, 0x01, 'a'}
	rsv := clientFrame(ws.OpText, true, []byte("a"), 0)
	rsv[0] |= 0x40
	cases := []struct {
		name string
		in   []byte
	}{
		{"unmasked", unmasked},
		{"reserved bit", rsv},
		{"reserved data opcode", clientFrame(3, true, nil, 0)},
		{"reserved control opcode", clientFrame(0xB, true, nil, 0)},
		{"control over 125 bytes", clientFrame(ws.OpPing, true, make([]byte, 126), 0)},
		{"fragmented control", clientFrame(ws.OpPing, false, nil, 0)},
		{"continuation without a message", clientFrame(ws.OpContinuation, true, []byte("a"), 0)},
		{"data frame within a message", append(clientFrame(ws.OpText, false, []byte("a"), 0), clientFrame(ws.OpText, true, []byte("b"), 0)...)},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			for _, chunks := range splits(tc.in) {
				if _, err := feed(t, 1<<20, copyChunks(chunks)...); !errors.Is(err, ErrProtocol) {
					t.Fatalf("split %d chunks (first %d bytes): %v, want ErrProtocol", len(chunks), len(chunks[0]), err)
				}
			}
		})
	}
}

func TestParseTooBig(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name string
		in   []byte
		ok   []parsed // what comes before the error
	}{
		{"one frame over the limit", clientFrame(ws.OpText, true, make([]byte, 11), 0), nil},
		{"fragments over the limit together", append(clientFrame(ws.OpText, false, make([]byte, 6), 0), clientFrame(ws.OpContinuation, true, make([]byte, 5), 0)...), nil},
		{"a message at the limit, then one over", append(clientFrame(ws.OpText, true, []byte("0123456789"), 0), clientFrame(ws.OpBinary, true, make([]byte, 11), 0)...),
			[]parsed{`msg bin=false "0123456789"`}},
		// The limit applies to messages, not to control frames.
		{"a ping over the limit is fine", append(clientFrame(ws.OpPing, true, make([]byte, 20), 0), clientFrame(ws.OpText, true, make([]byte, 11), 0)...),
			[]parsed{parsed(fmt.Sprintf("ping %q", make([]byte, 20)))}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			for _, chunks := range splits(tc.in) {
				got, err := feed(t, 10, copyChunks(chunks)...)
				if !errors.Is(err, ErrTooBig) || !equalParsed(got, tc.ok) {
					t.Fatalf("split %d chunks (first %d bytes): %q, %v; want %q, ErrTooBig", len(chunks), len(chunks[0]), got, err, tc.ok)
				}
			}
		})
	}
	// A header announcing a huge message fails before any payload byte.
	var fr frameReader
	msb := append([]byte{0x82, 0x80 | 127, 0x80, 0, 0, 0, 0, 0, 0, 1}, testMask[:]...)
	for _, chunks := range splits(msb) {
		if _, err := feed(t, 1<<20, copyChunks(chunks)...); !errors.Is(err, ErrTooBig) {
			t.Fatalf("64-bit length with the top bit set, split %d chunks: %v, want ErrTooBig", len(chunks), err)
		}
	}
	hdr := append([]byte{0x82, 0x80 | 127, 0, 0, 0, 1, 0, 0, 0, 0}, testMask[:]...)
	if _, _, _, err := fr.parse(hdr, 100<<20); !errors.Is(err, ErrTooBig) {
		t.Fatalf("4 GiB header: %v", err)
	}
}

// TestParseEOF checks the error for a connection that ends at each byte of
// a stream: io.EOF where io.ReadFull would have read nothing of a header,
// of a header's extended part or of a payload, io.ErrUnexpectedEOF
// elsewhere, as the blocking reader always reported.
func TestParseEOF(t *testing.T) {
	t.Parallel()
	in := append(clientFrame(ws.OpText, false, []byte("abc"), 0), clientFrame(ws.OpContinuation, true, []byte("de"), 0)...)
	// Offsets where a read of the old reader would have started: frame 1
	// starts at 0, its extended header (mask) at 2, its payload at 6; frame
	// 2 at 9, its mask at 11, its payload at 15; the end is 17.
	eofAt := map[int]bool{0: true, 2: true, 6: true, 9: true, 11: true, 15: true, 17: true}
	for i := 0; i <= len(in); i++ {
		var fr frameReader
		data := bytes.Clone(in[:i])
		for len(data) > 0 {
			n, ev, _, err := fr.parse(data, 1<<20)
			if err != nil {
				t.Fatal(err)
			}
			if ev == evMessage {
				fr.takeMessage()
			}
			data = data[n:]
		}
		want := io.ErrUnexpectedEOF
		if eofAt[i] {
			want = io.EOF
		}
		if got := fr.eof(); got != want {
			t.Errorf("EOF after %d bytes: %v, want %v", i, got, want)
		}
	}
}

func TestParseKeepsOnlyWhatItMust(t *testing.T) {
	t.Parallel()
	in := clientFrame(ws.OpText, true, []byte("hello world"), 0)
	var fr frameReader
	buf := bytes.Clone(in[:9]) // header and 3 payload bytes
	if n, ev, _, err := fr.parse(buf, 1<<20); n != 9 || ev != evNone || err != nil {
		t.Fatalf("parse = %d, %v, %v", n, ev, err)
	}
	clear(buf) // the caller reuses its buffer
	n, ev, _, err := fr.parse(bytes.Clone(in[9:]), 1<<20)
	if n != len(in)-9 || ev != evMessage || err != nil {
		t.Fatalf("parse = %d, %v, %v", n, ev, err)
	}
	if _, msg, _ := fr.takeMessage(); string(msg) != "hello world" {
		t.Fatalf("message %q", msg)
	}
	if !fr.atBoundary() {
		t.Fatal("reader not at a boundary after a whole message")
	}
}

func BenchmarkParseSmallMessages(b *testing.B) {
	// Ten 60-byte messages in one read, as a client with calls in flight
	// sends them.
	payload := []byte(`{"event":"echo","data":"0123456789abcdef","cid":123456}`)
	var in []byte
	for range 10 {
		in = append(in, clientFrame(ws.OpText, true, payload, 0)...)
	}
	buf := make([]byte, len(in))
	var fr frameReader
	b.SetBytes(int64(len(in)))
	b.ReportAllocs()
	for b.Loop() {
		copy(buf, in)
		data := buf
		for len(data) > 0 {
			n, ev, _, err := fr.parse(data, 1<<20)
			if err != nil {
				b.Fatal(err)
			}
			data = data[n:]
			if ev == evMessage {
				fr.takeMessage()
			}
		}
	}
}

func BenchmarkParsePong(b *testing.B) {
	in := clientFrame(ws.OpText, true, nil, 0)
	buf := make([]byte, len(in))
	var fr frameReader
	b.ReportAllocs()
	for b.Loop() {
		copy(buf, in)
		if _, ev, _, _ := fr.parse(buf, 1<<20); ev != evMessage {
			b.Fatal(ev)
		}
		fr.takeMessage()
	}
}
