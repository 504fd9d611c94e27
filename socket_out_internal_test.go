package socketcluster

import (
	"strings"
	"testing"

	"github.com/socketcluster-go/socketcluster/internal/wsconn"
)

func textFrame(s string) []byte { return wsconn.Frame(false, []byte(s)) }

// first is the frames coalesce returns, without its buffers' holder.
func first(frames [][]byte, _ *arrayBufs) [][]byte { return frames }

func framesText(t *testing.T, frames [][]byte) []string {
	t.Helper()
	var out []string
	for _, f := range frames {
		p, ok := wsconn.PlainTextPayload(f)
		if !ok {
			out = append(out, "<other>")
			continue
		}
		out = append(out, string(p))
	}
	return out
}

func TestCoalesceBurstIsOneArrayInOrder(t *testing.T) {
	t.Parallel()
	var q [][]byte
	var pk []bool
	for _, s := range []string{`{"event":"a","data":1}`, `{"rid":2,"data":"x"}`, `{"event":"#publish","data":{"channel":"c","data":3}}`} {
		q, pk = append(q, textFrame(s)), append(pk, true)
	}
	got := framesText(t, first(coalesce(q, pk)))
	want := `[{"event":"a","data":1},{"rid":2,"data":"x"},{"event":"#publish","data":{"channel":"c","data":3}}]`
	if len(got) != 1 || got[0] != want {
		t.Fatalf("got %q, want one frame %s", got, want)
	}
}

func TestCoalesceSinglePacketStaysPlain(t *testing.T) {
	t.Parallel()
	f := textFrame(`{"event":"a","data":1}`)
	got, _ := coalesce([][]byte{f}, []bool{true})
	if len(got) != 1 || &got[0][0] != &f[0] {
		t.Fatalf("single packet changed: %q", framesText(t, got))
	}
}

func TestCoalesceKeepsOtherFramesApart(t *testing.T) {
	t.Parallel()
	ping := textFrame("#1")
	raw := textFrame("raw text")
	bin := wsconn.Frame(true, []byte{1, 2})
	compressed := append([]byte(nil), textFrame(`{"event":"z"}`)...)
	compressed[0] |= 0x40 // RSV1: permessage-deflate
	q := [][]byte{
		textFrame(`{"event":"a"}`), textFrame(`{"event":"b"}`),
		ping,
		textFrame(`{"event":"c"}`),
		raw,
		textFrame(`{"event":"d"}`), bin, textFrame(`{"event":"e"}`),
		compressed, textFrame(`{"event":"f"}`), textFrame(`{"event":"g"}`),
	}
	pk := []bool{true, true, false, true, false, true, false, true, true, true, true}
	got := framesText(t, first(coalesce(q, pk)))
	want := []string{`[{"event":"a"},{"event":"b"}]`, "#1", `{"event":"c"}`, "raw text", `{"event":"d"}`, "<other>", `{"event":"e"}`, "<other>", `[{"event":"f"},{"event":"g"}]`}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Fatalf("got\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

func TestCoalesceSizeBound(t *testing.T) {
	t.Parallel()
	big := `{"event":"x","data":"` + strings.Repeat("y", 20<<10) + `"}`
	var q [][]byte
	var pk []bool
	for range 7 {
		q, pk = append(q, textFrame(big)), append(pk, true)
	}
	got, _ := coalesce(q, pk)
	total := 0
	for _, f := range got {
		p, ok := wsconn.PlainTextPayload(f)
		if !ok {
			t.Fatal("not a plain text frame")
		}
		if len(p) > maxCoalesced {
			t.Fatalf("frame of %d bytes over the bound", len(p))
		}
		if p[0] == '[' {
			total += strings.Count(string(p), `"event":"x"`)
		} else {
			total++
		}
	}
	// 20 KiB packets: three per array.
	if len(got) != 3 || total != 7 {
		t.Fatalf("%d frames holding %d packets, want 3 frames holding 7", len(got), total)
	}
}

func TestPlainTextPayloadLengths(t *testing.T) {
	t.Parallel()
	for _, n := range []int{0, 125, 126, 65535, 65536} {
		p := strings.Repeat("a", n)
		got, ok := wsconn.PlainTextPayload(textFrame(p))
		if !ok || string(got) != p {
			t.Fatalf("length %d: ok=%v len=%d", n, ok, len(got))
		}
	}
	if _, ok := wsconn.PlainTextPayload(wsconn.Frame(true, []byte("a"))); ok {
		t.Fatal("binary frame accepted")
	}
	if _, ok := wsconn.PlainTextPayload(textFrame("abc")[:3]); ok {
		t.Fatal("truncated frame accepted")
	}
}
