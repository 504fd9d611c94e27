package natsbroker

import (
	"bytes"
	"strings"
	"testing"
)

func testBroker(t testing.TB) *Broker {
	b, err := New("nats://127.0.0.1:4222", Options{Prefix: "app.sc"})
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// validSubject checks what a NATS server accepts as a publish subject.
func validSubject(s string) bool {
	if s == "" {
		return false
	}
	for _, tok := range strings.Split(s, ".") {
		if tok == "" || tok == "*" || tok == ">" {
			return false
		}
		for _, r := range tok {
			if r <= ' ' || r == 0x7f {
				return false
			}
		}
	}
	return true
}

var names = []string{
	"", ".", "..", "*", ">", "a.b", "a.*", "a.>", " ", "with space", "tab\t", "nl\n", "nul\x00",
	"unicode ✓ 日本語", "\xff\xfe", "c", "h", "Yw", "YQ", "=", "-", "_",
	strings.Repeat("x", 191), strings.Repeat("x", 192), strings.Repeat("x", 193),
	strings.Repeat("long/", 2048), strings.Repeat("long/", 2048) + "!",
}

func TestSubjectMapping(t *testing.T) {
	t.Parallel()
	b := testBroker(t)
	seen := map[string]string{}
	for _, name := range names {
		subj, hashed := b.subject(name)
		if !validSubject(subj) || !strings.HasPrefix(subj, "app.sc.") || strings.Count(subj, ".") != 2 {
			t.Errorf("%q → invalid subject %q", name, subj)
		}
		if len(subj) > len("app.sc.")+1+maxDirect {
			t.Errorf("%q → subject of %d bytes", name, len(subj))
		}
		if other, dup := seen[subj]; dup {
			t.Errorf("%q and %q → same subject %q", name, other, subj)
		}
		seen[subj] = name
		payload := []byte("payload")
		data := payload
		if hashed {
			data = frame(name, payload)
		}
		ch, got, err := b.decode(subj, data)
		if err != nil || ch != name || !bytes.Equal(got, payload) {
			t.Errorf("%q: decode → %q %q %v", name, ch, got, err)
		}
	}
	if _, hashed := b.subject(strings.Repeat("x", 192)); hashed {
		t.Error("a 192-byte name should be encoded directly")
	}
	if _, hashed := b.subject(strings.Repeat("x", 193)); !hashed {
		t.Error("a 193-byte name should be hashed")
	}
}

// A message whose framed name does not hash to its subject is rejected.
func TestDecodeRejectsForeign(t *testing.T) {
	t.Parallel()
	b := testBroker(t)
	long := strings.Repeat("a", 1000)
	subj, _ := b.subject(long)
	if _, _, err := b.decode(subj, frame(long+"b", []byte("x"))); err == nil {
		t.Error("mismatched frame accepted")
	}
	for _, s := range []string{"other.c", "app.sc", "app.sc.", "app.sc.x", "app.sc.c!!", "app.scX.cYQ", "app.sc.h00"} {
		if _, _, err := b.decode(s, []byte{}); err == nil {
			t.Errorf("decode(%q) accepted", s)
		}
	}
}

func FuzzSubjectRoundTrip(f *testing.F) {
	for _, n := range names {
		f.Add(n)
	}
	b := testBroker(f)
	f.Fuzz(func(t *testing.T, name string) {
		subj, hashed := b.subject(name)
		if !validSubject(subj) {
			t.Fatalf("%q → invalid subject %q", name, subj)
		}
		data := []byte("p")
		if hashed {
			data = frame(name, data)
		}
		ch, p, err := b.decode(subj, data)
		if err != nil || ch != name || string(p) != "p" {
			t.Fatalf("%q: round trip → %q %q %v", name, ch, p, err)
		}
	})
}
