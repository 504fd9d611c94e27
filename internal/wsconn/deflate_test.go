package wsconn_test

import (
	"bytes"
	"compress/flate"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"syscall"
	"testing"

	"github.com/gobwas/ws"

	"github.com/socketcluster-go/socketcluster/internal/wsconn"
)

// Tests of permessage-deflate (RFC 7692): negotiation, compressed frames
// both ways, and the bad input of the issue: RSV1 without negotiation or
// on a control or continuation frame (1002), invalid deflate data (1007),
// a message that inflates past the limit (1009).

const plainDeflateResponse = "permessage-deflate; server_no_context_takeover; client_no_context_takeover"

func TestNegotiateDeflate(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name   string
		offers []string
		want   string
		bad    bool
	}{
		{"no header", nil, "", false},
		{"node ws and browsers", []string{"permessage-deflate; client_max_window_bits"}, plainDeflateResponse, false},
		{"bare offer", []string{"permessage-deflate"}, plainDeflateResponse, false},
		{"case-insensitive name", []string{"PerMessage-Deflate"}, plainDeflateResponse, false},
		{"client asks for no context takeover", []string{"permessage-deflate; client_no_context_takeover; server_no_context_takeover"}, plainDeflateResponse, false},
		{"client window given", []string{"permessage-deflate; client_max_window_bits=10"}, plainDeflateResponse, false},
		{"quoted window", []string{`permessage-deflate; client_max_window_bits="9"`}, plainDeflateResponse, false},
		{"server window 15 is echoed", []string{"permessage-deflate; server_max_window_bits=15"}, plainDeflateResponse + "; server_max_window_bits=15", false},
		{"small server window declined", []string{"permessage-deflate; server_max_window_bits=10"}, "", false},
		{"next offer after a declined one", []string{"permessage-deflate; server_max_window_bits=9, permessage-deflate; client_max_window_bits"}, plainDeflateResponse, false},
		{"offer in a second header", []string{"x-webkit-deflate-frame", "permessage-deflate"}, plainDeflateResponse, false},
		{"other extension only", []string{"x-webkit-deflate-frame; no_context_takeover"}, "", false},
		{"unknown parameter", []string{"permessage-deflate; foo"}, "", true},
		{"client window out of range", []string{"permessage-deflate; client_max_window_bits=16"}, "", true},
		{"client window not a number", []string{"permessage-deflate; client_max_window_bits=x"}, "", true},
		{"server window without value", []string{"permessage-deflate; server_max_window_bits"}, "", true},
		{"server window 7", []string{"permessage-deflate; server_max_window_bits=7"}, "", true},
		{"server window with leading zero", []string{"permessage-deflate; server_max_window_bits=015"}, "", true},
		{"value on a flag", []string{"permessage-deflate; server_no_context_takeover=1"}, "", true},
		{"repeated parameter", []string{"permessage-deflate; client_no_context_takeover; client_no_context_takeover"}, "", true},
		{"invalid second offer", []string{"permessage-deflate, permessage-deflate; bogus=1"}, "", true},
		{"malformed header", []string{"permessage-deflate; =;"}, "", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := wsconn.NegotiateDeflate(tc.offers)
			if tc.bad {
				if !errors.Is(err, wsconn.ErrBadExtensions) {
					t.Fatalf("got %q, %v; want ErrBadExtensions", got, err)
				}
				return
			}
			if err != nil || got != tc.want {
				t.Fatalf("got %q, %v; want %q", got, err, tc.want)
			}
		})
	}
}

// deflateMessage compresses a message as a client does (RFC 7692 §7.2.1).
func deflateMessage(t testing.TB, msg []byte) []byte {
	t.Helper()
	var buf bytes.Buffer
	w, err := flate.NewWriter(&buf, flate.BestCompression)
	if err != nil {
		t.Fatal(err)
	}
	_, _ = w.Write(msg)
	_ = w.Flush()
	b := buf.Bytes()
	if !bytes.HasSuffix(b, []byte{0, 0, 0xff, 0xff}) {
		t.Fatal("flush did not end with 00 00 ff ff")
	}
	return b[:len(b)-4]
}

// compressedFrame is a masked client frame with RSV1 set.
func compressedFrame(op ws.OpCode, fin bool, payload []byte) []byte {
	f := frame(op, fin, payload, true)
	f[0] |= 0x40
	return f
}

// inflateFrame decompresses the payload of a server frame as a client
// does.
func inflateFrame(t *testing.T, payload []byte) []byte {
	t.Helper()
	r := flate.NewReader(io.MultiReader(bytes.NewReader(payload), bytes.NewReader([]byte{0, 0, 0xff, 0xff, 1, 0, 0, 0xff, 0xff})))
	out, err := io.ReadAll(r)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

var chattyJSON = []byte(strings.Repeat(`{"event":"#publish","data":{"channel":"prices","data":{"symbol":"ACME","bid":101.25,"ask":101.5}}}`, 40))

func TestCompressorFrame(t *testing.T) {
	t.Parallel()
	z, err := wsconn.NewCompressor(flate.BestSpeed, 1024)
	if err != nil {
		t.Fatal(err)
	}
	for _, bin := range []bool{false, true} {
		fr := z.Frame(bin, chattyJSON)
		if fr == nil {
			t.Fatal("no compressed frame for a compressible message over the threshold")
		}
		r := bytes.NewReader(fr)
		h, err := ws.ReadHeader(r)
		if err != nil || h.Length != int64(r.Len()) {
			t.Fatalf("header %+v, %v: want the rest of the frame, %d bytes", h, err, r.Len())
		}
		f := ws.Frame{Header: h, Payload: fr[len(fr)-r.Len():]}
		wantOp := ws.OpText
		if bin {
			wantOp = ws.OpBinary
		}
		if !f.Header.Fin || f.Header.OpCode != wantOp || f.Header.Rsv != 0x4 || f.Header.Masked {
			t.Fatalf("header %+v: want FIN, RSV1 only, %v, unmasked", f.Header, wantOp)
		}
		if len(f.Payload) >= len(chattyJSON)/4 {
			t.Fatalf("compressed to %d bytes of %d", len(f.Payload), len(chattyJSON))
		}
		if got := inflateFrame(t, f.Payload); !bytes.Equal(got, chattyJSON) {
			t.Fatalf("inflated to %q", got)
		}
	}
	// Each frame stands alone (no context takeover): the same message
	// compresses to the same bytes every time.
	if a, b := z.Frame(false, chattyJSON), z.Frame(false, chattyJSON); !bytes.Equal(a, b) {
		t.Fatal("two compressions of one message differ: context carried over")
	}
	if z.Frame(false, chattyJSON[:1023]) != nil {
		t.Fatal("a message under the threshold was compressed")
	}
	random := make([]byte, 4096)
	_, _ = rand.Read(random)
	if z.Frame(true, random) != nil {
		t.Fatal("a message that does not shrink was compressed")
	}
	for _, level := range []int{0, -1, 10} {
		if _, err := wsconn.NewCompressor(level, 0); err == nil {
			t.Fatalf("level %d accepted", level)
		}
	}
}

func TestReadCompressedMessages(t *testing.T) {
	t.Parallel()
	p := newPipe(t)
	p.srv.EnableDeflate()
	if !p.srv.Deflate() {
		t.Fatal("Deflate() false after EnableDeflate")
	}
	z := deflateMessage(t, chattyJSON)
	half := len(z) / 2
	p.write(cat(
		compressedFrame(ws.OpText, true, z),
		frame(ws.OpText, true, []byte("plain"), true), // uncompressed messages stay allowed
		// Fragmented: RSV1 on the first frame only, a ping in between.
		compressedFrame(ws.OpBinary, false, z[:half]),
		frame(ws.OpPing, true, []byte("p"), true),
		frame(ws.OpContinuation, true, z[half:], true),
		compressedFrame(ws.OpText, true, deflateMessage(t, nil)),
	))
	for i, want := range []struct {
		bin bool
		msg []byte
	}{{false, chattyJSON}, {false, []byte("plain")}, {true, chattyJSON}, {false, []byte{}}} {
		bin, msg, err := p.read(1 << 20)
		if err != nil {
			t.Fatalf("message %d: %v", i, err)
		}
		if bin != want.bin || !bytes.Equal(msg, want.msg) {
			t.Fatalf("message %d: binary %v %q, want %v %q", i, bin, msg, want.bin, want.msg)
		}
		if msg == nil {
			t.Fatalf("message %d is nil", i)
		}
	}
	if f := p.serverFrame(); f.Header.OpCode != ws.OpPong {
		t.Fatalf("got %v, want the pong", f.Header.OpCode)
	}
}

// TestCompressedLimit: the limit applies to the inflated size. A message
// that inflates to exactly the limit passes; one byte more is ErrTooBig,
// and so is a bomb that inflates to 100 MiB (checked while inflating, see
// TestInflateBombMemory).
func TestCompressedLimit(t *testing.T) {
	t.Parallel()
	msg := bytes.Repeat([]byte("a"), 10000)
	for _, tc := range []struct {
		name  string
		msg   []byte
		limit int64
		want  error
	}{
		{"at the limit", msg, 10000, nil},
		{"one byte over", msg, 9999, wsconn.ErrTooBig},
		{"bomb", nil, 1 << 20, wsconn.ErrTooBig},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var z []byte
			if tc.msg == nil {
				z = bomb(t, 100)
			} else {
				z = deflateMessage(t, tc.msg)
			}
			if int64(len(z)) > tc.limit {
				t.Fatalf("compressed size %d over the limit: the test checks the inflated size", len(z))
			}
			p := newPipe(t)
			p.srv.EnableDeflate()
			p.write(compressedFrame(ws.OpBinary, true, z))
			_, got, err := p.read(tc.limit)
			if !errors.Is(err, tc.want) {
				t.Fatalf("got %v, want %v", err, tc.want)
			}
			if err == nil && !bytes.Equal(got, tc.msg) {
				t.Fatal("message changed")
			}
		})
	}
}

// bomb is the deflate data of a message of n MiB of zeros (about 1 KiB
// per MiB): independent sync-flushed chunks, one after another.
func bomb(t testing.TB, n int) []byte {
	chunk := append(deflateMessage(t, make([]byte, 1<<20)), 0, 0, 0xff, 0xff)
	return bytes.TrimSuffix(bytes.Repeat(chunk, n), []byte{0, 0, 0xff, 0xff})
}

func TestCompressedBadInput(t *testing.T) {
	t.Parallel()
	z := deflateMessage(t, []byte("hello"))
	rsv2 := frame(ws.OpText, true, []byte("a"), true)
	rsv2[0] |= 0x20
	rsv3 := compressedFrame(ws.OpText, true, z)
	rsv3[0] |= 0x10
	for _, tc := range []struct {
		name    string
		deflate bool
		in      []byte
		want    error
	}{
		{"RSV1 without negotiation", false, compressedFrame(ws.OpText, true, z), wsconn.ErrProtocol},
		{"RSV1 on a ping", true, compressedFrame(ws.OpPing, true, nil), wsconn.ErrProtocol},
		{"RSV1 on a close", true, compressedFrame(ws.OpClose, true, []byte{3, 232}), wsconn.ErrProtocol},
		{"RSV1 on a continuation", true, cat(compressedFrame(ws.OpText, false, z[:2]), compressedFrame(ws.OpContinuation, true, z[2:])), wsconn.ErrProtocol},
		{"RSV2", true, rsv2, wsconn.ErrProtocol},
		{"RSV3 with RSV1", true, rsv3, wsconn.ErrProtocol},
		{"invalid block type", true, compressedFrame(ws.OpText, true, []byte{0x07, 0x00}), wsconn.ErrBadDeflate},
		{"stored block with a bad length", true, compressedFrame(ws.OpText, true, []byte{0x00, 0x05, 0x00, 0x00, 0x00, 'a'}), wsconn.ErrBadDeflate},
		{"distance too far back", true, compressedFrame(ws.OpText, true, farBack(t)), wsconn.ErrBadDeflate},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := newPipe(t)
			if tc.deflate {
				p.srv.EnableDeflate()
			}
			p.write(tc.in)
			_, msg, err := p.read(1 << 20)
			if !errors.Is(err, tc.want) {
				t.Fatalf("got %q, %v; want %v", msg, err, tc.want)
			}
		})
	}
}

// farBack is deflate data that refers to a dictionary the reader does not
// have: its first match points before the start of the message.
func farBack(t *testing.T) []byte {
	dict := []byte("the quick brown fox jumps over the lazy dog")
	var buf bytes.Buffer
	w, err := flate.NewWriterDict(&buf, flate.BestCompression, dict)
	if err != nil {
		t.Fatal(err)
	}
	_, _ = w.Write(dict)
	_ = w.Flush()
	return bytes.TrimSuffix(buf.Bytes(), []byte{0, 0, 0xff, 0xff})
}

// TestWatchCompressed: the event-driven reader inflates too, a message
// at a time, across reads split anywhere.
func TestWatchCompressed(t *testing.T) {
	t.Parallel()
	w := newWatchedConn(t, 1<<20, nil, true)
	in := cat(compressedFrame(ws.OpText, true, deflateMessage(t, chattyJSON)), frame(ws.OpText, true, []byte("x"), true))
	for i := 0; i < len(in); i += 700 {
		w.send(in[i:min(i+700, len(in))])
	}
	w.expect("text:"+string(chattyJSON), "text:x")
	w.send(compressedFrame(ws.OpText, true, []byte{0x07, 0x00}))
	if err := w.end(); !errors.Is(err, wsconn.ErrBadDeflate) {
		t.Fatalf("got %v, want ErrBadDeflate", err)
	}
}

// quotesJSON is about 2 KB of price updates: similar keys, varied numbers.
func quotesJSON() []byte {
	var b strings.Builder
	b.WriteString(`{"event":"#publish","data":{"channel":"fx","data":[`)
	syms := []string{"EURUSD", "GBPUSD", "USDJPY", "AUDUSD", "USDCHF", "NZDUSD"}
	for i := range 24 {
		if i > 0 {
			b.WriteByte(',')
		}
		fmt.Fprintf(&b, `{"symbol":%q,"bid":%.5f,"ask":%.5f,"ts":%d,"venue":"LMAX"}`, syms[i%len(syms)], 1.08+float64(i)*0.0137, 1.0802+float64(i)*0.0137, int64(1732245000123)+int64(i)*17)
	}
	b.WriteString(`]}}`)
	return []byte(b.String())
}

// BenchmarkCompressorFrame: the cost of one compression (shared by every
// subscriber of a publish) by level, on 2 KB of chatty JSON.
func BenchmarkCompressorFrame(b *testing.B) {
	msg := quotesJSON()
	for _, level := range []int{flate.BestSpeed, 6, flate.BestCompression, flate.HuffmanOnly} {
		z, _ := wsconn.NewCompressor(level, 0)
		b.Run(fmt.Sprintf("level=%d", level), func(b *testing.B) {
			b.ReportAllocs()
			b.SetBytes(int64(len(msg)))
			var n int
			cpu := cpuTime()
			for b.Loop() {
				n = len(z.Frame(false, msg))
			}
			b.ReportMetric(float64(cpuTime()-cpu)/float64(b.N), "cpu-ns/op")
			b.ReportMetric(float64(n), "frame-bytes")
		})
	}
}

// BenchmarkInflate: the cost of inflating one compressed 2 KB message.
func BenchmarkInflate(b *testing.B) {
	msg := quotesJSON()
	in := compressedFrame(ws.OpText, true, deflateMessage(b, msg))
	b.ReportAllocs()
	b.SetBytes(int64(len(msg)))
	a, c := net.Pipe()
	srv := wsconn.New(a, nil, 0)
	srv.EnableDeflate()
	go func() {
		for {
			if _, err := c.Write(in); err != nil {
				return
			}
		}
	}()
	defer c.Close()
	defer a.Close()
	cpu := cpuTime()
	for b.Loop() {
		if _, m, err := srv.ReadMessage(1 << 20); err != nil || len(m) != len(msg) {
			b.Fatal(err)
		}
	}
	// Includes the writing goroutine's (small) share.
	b.ReportMetric(float64(cpuTime()-cpu)/float64(b.N), "cpu-ns/op")
}

// cpuTime is the process's CPU time in nanoseconds: on a shared machine
// it says more than the wall clock.
func cpuTime() int64 {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return ru.Utime.Nano() + ru.Stime.Nano()
}
