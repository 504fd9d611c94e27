package socketcluster_test

// The reliability suite: short probes of what an attacker or a broken
// client sends (issue 9), each asserting that the server answers as the
// reference does, frees what it took, and keeps serving the others. Long
// soaks belong in cmd/scbench, not here.

import (
	"encoding/binary"
	"strconv"
	"testing"

	"github.com/gobwas/ws"

	sc "github.com/socketcluster-go/socketcluster"
)

// TestInvalidCloseCodes: a close frame whose code must not be on the wire
// (RFC 6455 §7.4) fails the connection with 1002 instead of being echoed;
// a reason that is not UTF-8 fails it with 1007; valid codes are echoed
// with their reason. All as the reference's ws engine.
func TestInvalidCloseCodes(t *testing.T) {
	t.Parallel()
	ts := newServer(t, sc.Options{})
	canary, _ := ts.connect(t, nil)
	cases := []struct {
		body       []byte
		code       int
		reason     string
		serverCode int
	}{
		{ws.NewCloseFrameBody(1000, "bye"), 1000, "bye", 1000},
		{ws.NewCloseFrameBody(3000, "bye"), 3000, "bye", 3000},
		{ws.NewCloseFrameBody(4999, "bye"), 4999, "bye", 4999},
		{[]byte{0x03, 0xe8, 0xff, 0xfe}, 1007, "", 1007},
		{[]byte{0x03}, 1002, "", 1002},
	}
	for _, code := range []int{999, 1004, 1005, 1006, 1015, 1016, 2000, 2999, 5000, 65535} {
		cases = append(cases, struct {
			body       []byte
			code       int
			reason     string
			serverCode int
		}{ws.NewCloseFrameBody(ws.StatusCode(code), "bye"), 1002, "", 1002})
	}
	for _, tc := range cases {
		name := "short"
		if len(tc.body) >= 2 {
			name = strconv.Itoa(int(binary.BigEndian.Uint16(tc.body)))
		}
		t.Run(name, func(t *testing.T) {
			closures := sc.Listen[sc.ClosureEvent](ts).Consumer()
			defer closures.Stop()
			c, s := ts.connect(t, nil)
			if err := c.SendFrame(ws.OpClose, true, tc.body); err != nil {
				t.Fatal(err)
			}
			if code, reason, _ := c.ExpectClose(); code != tc.code || reason != tc.reason {
				t.Fatalf("close frame %x answered with %d %q, want %d %q", tc.body, code, reason, tc.code, tc.reason)
			}
			c.WaitEnd()
			for {
				ev := next(t, closures)
				if ev.Socket == s {
					if ev.Code != tc.serverCode {
						t.Fatalf("server closure code %d, want %d", ev.Code, tc.serverCode)
					}
					break
				}
			}
		})
	}
	barrier(t, canary)
}

// TestHugeFrameLength: a 64-bit length with its top bit set is refused
// with 1009 (message too big), as the reference does, not 1002.
func TestHugeFrameLength(t *testing.T) {
	t.Parallel()
	ts := newServer(t, sc.Options{})
	c, _ := ts.connect(t, nil)
	hdr := []byte{0x81, 0xff, 0x80, 0, 0, 0, 0, 0, 0, 5, 1, 2, 3, 4}
	if err := c.WriteRaw(hdr); err != nil {
		t.Fatal(err)
	}
	if code, _, _ := c.ExpectClose(); code != sc.CloseMessageTooBig {
		t.Fatalf("close %d, want 1009", code)
	}
	c.WaitEnd()
}
