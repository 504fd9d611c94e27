package wsconn

import (
	"bytes"
	"compress/flate"
	"errors"
	"runtime"
	"testing"
)

// TestInflateBombMemory: a message of 256 MiB of zeros, compressed to a
// few hundred KiB, is refused with ErrTooBig while inflating, having
// allocated little more than the 1 MiB limit.
func TestInflateBombMemory(t *testing.T) {
	// Not parallel: it measures the process's heap.
	var buf bytes.Buffer
	w, _ := flate.NewWriter(&buf, flate.BestCompression)
	_, _ = w.Write(make([]byte, 1<<20))
	_ = w.Flush()
	chunk := buf.Bytes() // a sync-flushed 1 MiB of zeros; chunks concatenate
	z := bytes.TrimSuffix(bytes.Repeat(chunk, 256), []byte{0, 0, 0xff, 0xff})
	const limit = 1 << 20
	if _, err := inflate(z[:len(chunk)-4], limit); err != nil {
		t.Fatalf("one chunk, exactly the limit: %v", err)
	}
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	_, err := inflate(z, limit)
	runtime.ReadMemStats(&after)
	if !errors.Is(err, ErrTooBig) {
		t.Fatalf("got %v, want ErrTooBig", err)
	}
	if n := after.TotalAlloc - before.TotalAlloc; n > 4*limit {
		t.Fatalf("inflating the bomb allocated %d bytes; want at most %d", n, 4*limit)
	}
}

// TestParseRSV1: RSV1 is allowed on the first frame of a data message
// when permessage-deflate is on, and nowhere else; the message is reported
// compressed, whatever the split of the input.
func TestParseRSV1(t *testing.T) {
	t.Parallel()
	first := clientFrame(0x1, false, []byte("ab"), 0)
	first[0] |= 0x40
	in := append(first, clientFrame(0x0, true, []byte("cd"), 0)...)
	for _, chunks := range splits(in) {
		fr := frameReader{deflate: true}
		var done bool
		for _, c := range chunks {
			for len(c) > 0 {
				n, ev, _, err := fr.parse(c, 100)
				if err != nil {
					t.Fatal(err)
				}
				c = c[n:]
				if ev == evMessage {
					_, msg, compressed := fr.takeMessage()
					if !compressed || string(msg) != "abcd" {
						t.Fatalf("message %q compressed %v", msg, compressed)
					}
					done = true
				}
			}
		}
		if !done {
			t.Fatal("no message")
		}
	}
	fr := frameReader{}
	if _, _, _, err := fr.parse(first, 100); !errors.Is(err, ErrProtocol) {
		t.Fatalf("RSV1 without deflate: %v", err)
	}
}

// TestFlatePoolsSurviveGC: a flate writer (1.2 MB at level 1) and reader
// are made once and kept across garbage collections, not made again for
// the next message.
func TestFlatePoolsSurviveGC(t *testing.T) {
	// Not parallel: it reads the process's heap statistics.
	z, err := NewCompressor(flate.BestSpeed, 0)
	if err != nil {
		t.Fatal(err)
	}
	msg := bytes.Repeat([]byte(`{"symbol":"ACME","bid":101.25},`), 100)
	frame := z.Frame(false, msg)
	if frame == nil {
		t.Fatal("not compressed")
	}
	payload := frame[headerLen(frame):]
	if _, err := inflate(payload, 1<<20); err != nil {
		t.Fatal(err)
	}
	var before, after runtime.MemStats
	runtime.GC()
	runtime.GC()
	runtime.ReadMemStats(&before)
	z.Frame(false, msg)
	got, err := inflate(payload, 1<<20)
	runtime.ReadMemStats(&after)
	if err != nil || !bytes.Equal(got, msg) {
		t.Fatalf("round trip: %v", err)
	}
	if n := after.TotalAlloc - before.TotalAlloc; n > 64<<10 {
		t.Fatalf("a message after two collections allocated %d bytes: the pools made a new writer or reader", n)
	}
}
