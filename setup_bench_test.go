package socketcluster_test

import (
	"bufio"
	"bytes"
	"io"
	"net"
	"testing"

	sc "github.com/socketcluster-go/socketcluster"
)

// maskedText is a client text frame (masked with a zero key, which leaves
// the payload as it is) carrying payload; payload is shorter than 126 bytes.
func maskedText(payload string) []byte {
	b := []byte{0x81, 0x80 | byte(len(payload)), 0, 0, 0, 0}
	return append(b, payload...)
}

// BenchmarkConnectionSetup measures one connection's set-up on the server
// over loopback, as scbench conns does: TCP connect, WebSocket upgrade,
// #handshake and its answer; then the client closes. Allocations count the
// server's and this raw client's (which allocates little) together.
// netconn is the library's default (net/http accepts, Go's net.TCPConn);
// owned is scserver's (Options.OwnDescriptors: accepted without net/http,
// internal/fastaccept).
func BenchmarkConnectionSetup(b *testing.B) {
	b.Run("netconn", func(b *testing.B) { benchmarkConnectionSetup(b, sc.Options{}) })
	b.Run("owned", func(b *testing.B) { benchmarkConnectionSetup(b, sc.Options{OwnDescriptors: true}) })
}

func benchmarkConnectionSetup(b *testing.B, opts sc.Options) {
	ts := newServer(b, opts)
	upgrade := []byte("GET /socketcluster/ HTTP/1.1\r\nHost: " + ts.addr +
		"\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n")
	hs := maskedText(`{"event":"#handshake","data":{"authToken":null},"cid":1}`)
	buf := make([]byte, 4096)
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		c, err := net.Dial("tcp", ts.addr)
		if err != nil {
			b.Fatal(err)
		}
		if _, err := c.Write(upgrade); err != nil {
			b.Fatal(err)
		}
		// Read the 101 response up to its blank line.
		got := 0
		for !bytes.Contains(buf[:got], []byte("\r\n\r\n")) {
			n, err := c.Read(buf[got:])
			if err != nil {
				b.Fatal(err)
			}
			got += n
		}
		if _, err := c.Write(hs); err != nil {
			b.Fatal(err)
		}
		// The answer: one unmasked text frame, shorter than 126 bytes.
		r := bufio.NewReaderSize(c, 256)
		var h [2]byte
		if _, err := io.ReadFull(r, h[:]); err != nil {
			b.Fatal(err)
		}
		if _, err := io.ReadFull(r, buf[:h[1]&0x7f]); err != nil {
			b.Fatal(err)
		}
		if !bytes.Contains(buf[:h[1]&0x7f], []byte(`"rid":1`)) {
			b.Fatalf("unexpected answer %q", buf[:h[1]&0x7f])
		}
		_ = c.Close()
	}
}
