package socketcluster_test

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/gobwas/ws"

	sc "github.com/socketcluster-go/socketcluster"
	"github.com/socketcluster-go/socketcluster/internal/sctest"
	"github.com/socketcluster-go/socketcluster/protocol"
)

// Tests of permessage-deflate (Options.PerMessageDeflate) with a raw
// client that offers it as browsers and the Node ws engine do.

var bigText = strings.Repeat("chatty JSON compresses well. ", 100) // 2900 bytes

func deflateServer(t *testing.T, o *sc.DeflateOptions, setup ...func(*sc.Server)) *testServer {
	t.Helper()
	return newServer(t, sc.Options{PerMessageDeflate: o}, setup...)
}

// frameOf reads the next non-ping frame, which must be a text frame.
func frameOf(t *testing.T, c *sctest.Client) sctest.Frame {
	t.Helper()
	f := c.NextFrame()
	if f.Op != ws.OpText {
		t.Fatalf("want a text frame, got %v", f)
	}
	return f
}

// TestDeflateOffByDefault: without the option an offer is ignored (as the
// reference), and a compressed frame is a protocol error (1002).
func TestDeflateOffByDefault(t *testing.T) {
	t.Parallel()
	ts := newServer(t, sc.Options{})
	c := ts.dial(t, &sctest.Options{Deflate: true})
	if c.Extensions != "" {
		t.Fatalf("extensions %q negotiated with the option off", c.Extensions)
	}
	c.Handshake(nil)
	if err := c.SendCompressed(ws.OpText, []byte(sctest.EventPacket("echo", "x", 2))); err != nil {
		t.Fatal(err)
	}
	if code, _, _ := c.ExpectClose(); code != protocol.CloseProtocolError {
		t.Fatalf("close %d, want %d", code, protocol.CloseProtocolError)
	}
}

func TestDeflateNegotiatedBothWays(t *testing.T) {
	t.Parallel()
	ts := deflateServer(t, &sc.DeflateOptions{})
	c := ts.dial(t, &sctest.Options{Deflate: true, AutoPong: true})
	for _, p := range []string{"permessage-deflate", "server_no_context_takeover", "client_no_context_takeover"} {
		if !strings.Contains(c.Extensions, p) {
			t.Fatalf("extensions %q lack %s", c.Extensions, p)
		}
	}
	c.Handshake(nil)

	// A large response is compressed, a small one is not (threshold 1024).
	cid := c.NextCid()
	c.SendText(sctest.EventPacket("echo", bigText, cid))
	f := frameOf(t, c)
	if !f.Compressed || len(f.Wire) >= len(f.Payload)/4 {
		t.Fatalf("compressed %v, %d bytes on the wire for %d", f.Compressed, len(f.Wire), len(f.Payload))
	}
	jsonEq(t, f.Text(), fmt.Sprintf(`{"rid":%v,"data":%q}`, cid, bigText))
	cid = c.NextCid()
	c.SendText(sctest.EventPacket("echo", "small", cid))
	if f := frameOf(t, c); f.Compressed || f.Text() != fmt.Sprintf(`{"rid":%v,"data":"small"}`, cid) {
		t.Fatalf("small response: %v compressed %v", f, f.Compressed)
	}

	// Compressed messages from the client, large and small.
	for _, data := range []string{bigText, "tiny"} {
		cid = c.NextCid()
		if err := c.SendCompressed(ws.OpText, []byte(sctest.EventPacket("echo", data, cid))); err != nil {
			t.Fatal(err)
		}
		r := c.AwaitResponse(cid)
		jsonEq(t, string(r.Data), fmt.Sprintf("%q", data))
	}
}

// TestDeflatePublishCompressedOnce: a publish to subscribers that
// negotiated compression is compressed once, and the same bytes reach
// every one of them; a subscriber without compression gets the plain
// frame.
func TestDeflatePublishCompressedOnce(t *testing.T) {
	t.Parallel()
	ts := deflateServer(t, &sc.DeflateOptions{})
	var zs []*sctest.Client
	for range 4 {
		c := ts.dial(t, &sctest.Options{Deflate: true, AutoPong: true})
		c.Handshake(nil)
		c.Subscribe("news")
		zs = append(zs, c)
	}
	plain := ts.dial(t, &sctest.Options{AutoPong: true})
	plain.Handshake(nil)
	plain.Subscribe("news")
	before := ts.Stats()
	if err := ts.Exchange().Publish(ctxT(t), "news", bigText); err != nil {
		t.Fatal(err)
	}
	want := fmt.Sprintf(`{"event":"#publish","data":{"channel":"news","data":%q}}`, bigText)
	var wire []byte
	for i, c := range zs {
		f := frameOf(t, c)
		if !f.Compressed || f.Text() != want {
			t.Fatalf("subscriber %d: compressed %v %.80s", i, f.Compressed, f.Text())
		}
		if i == 0 {
			wire = f.Wire
		} else if !bytes.Equal(f.Wire, wire) {
			t.Fatalf("subscriber %d got other compressed bytes", i)
		}
	}
	if f := frameOf(t, plain); f.Compressed || f.Text() != want {
		t.Fatalf("plain subscriber: compressed %v %.80s", f.Compressed, f.Text())
	}
	after := ts.Stats()
	if n := after.Compressions - before.Compressions; n != 1 {
		t.Fatalf("%d compressions for one publish to 4 subscribers, want 1", n)
	}
	if in, out := after.CompressionInBytes-before.CompressionInBytes, after.CompressionOutBytes-before.CompressionOutBytes; in != int64(len(want)) || out != int64(len(wire)) {
		t.Fatalf("compression bytes %d → %d, want %d → %d", in, out, len(want), len(wire))
	}
}

// TestDeflateBatchAndSend: batched packets and Socket.Send are compressed
// per socket too.
func TestDeflateBatchAndSend(t *testing.T) {
	t.Parallel()
	ts := deflateServer(t, &sc.DeflateOptions{Threshold: -1})
	c, s := ts.connect(t, &sctest.Options{Deflate: true, AutoPong: true})
	if err := s.Send("raw"); err != nil {
		t.Fatal(err)
	}
	// Threshold -1 tries every message, but "raw" does not shrink.
	if f := frameOf(t, c); f.Compressed || f.Text() != "raw" {
		t.Fatalf("Send: %v compressed %v", f, f.Compressed)
	}
	if err := s.Send(bigText); err != nil {
		t.Fatal(err)
	}
	if f := frameOf(t, c); !f.Compressed || f.Text() != bigText {
		t.Fatalf("Send: compressed %v %.40s", f.Compressed, f.Text())
	}
	s.StartBatch()
	for i := range 20 {
		if err := s.Transmit("tick", i); err != nil {
			t.Fatal(err)
		}
	}
	s.FlushBatch()
	f := frameOf(t, c)
	if !f.Compressed || !strings.HasPrefix(f.Text(), `[{"event":"tick","data":0}`) {
		t.Fatalf("batch: compressed %v %.60s", f.Compressed, f.Text())
	}
}

// TestDeflateBadInput: the bad input, each closed with the RFC's
// code (and the reference's): a message inflating past MaxPayload 1009,
// invalid deflate data 1007, RSV1 on a control or continuation frame 1002.
func TestDeflateBadInput(t *testing.T) {
	t.Parallel()
	ts := newServer(t, sc.Options{PerMessageDeflate: &sc.DeflateOptions{}, MaxPayload: 64 << 10})
	bomb := sctest.Deflate(make([]byte, 1<<20)) // 1 MiB of zeros in about 1 KiB
	badData := []byte{0x07, 0x00}
	rsvPing := ws.NewPingFrame(nil)
	rsvPing.Header.Rsv = ws.Rsv(true, false, false)
	first := ws.NewFrame(ws.OpText, false, sctest.Deflate([]byte(`{"event":"x"}`)))
	first.Header.Rsv = ws.Rsv(true, false, false)
	cont := ws.NewFrame(ws.OpContinuation, true, []byte{0})
	cont.Header.Rsv = ws.Rsv(true, false, false)
	for _, tc := range []struct {
		name   string
		frames []ws.Frame
		code   protocol.CloseCode
	}{
		{"bomb", []ws.Frame{rsv1(ws.NewTextFrame(bomb))}, protocol.CloseMessageTooBig},
		{"invalid deflate data", []ws.Frame{rsv1(ws.NewTextFrame(badData))}, protocol.CloseInvalidPayload},
		{"compressed ping", []ws.Frame{rsvPing}, protocol.CloseProtocolError},
		{"compressed continuation", []ws.Frame{first, cont}, protocol.CloseProtocolError},
		{"invalid UTF-8 once inflated", []ws.Frame{rsv1(ws.NewTextFrame(sctest.Deflate([]byte{0xff, 0xfe})))}, protocol.CloseInvalidPayload},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := ts.dial(t, &sctest.Options{Deflate: true, AutoPong: true})
			c.Handshake(nil)
			var buf bytes.Buffer
			for _, f := range tc.frames {
				if err := ws.WriteFrame(&buf, ws.MaskFrame(f)); err != nil {
					t.Fatal(err)
				}
			}
			if err := c.WriteRaw(buf.Bytes()); err != nil {
				t.Fatal(err)
			}
			if code, _, _ := c.ExpectClose(); code != tc.code {
				t.Fatalf("close %d, want %d", code, tc.code)
			}
		})
	}
}

func rsv1(f ws.Frame) ws.Frame {
	f.Header.Rsv = ws.Rsv(true, false, false)
	return f
}

// TestDeflateBadExtensionsHeader: with compression on, an offer that does
// not parse or has invalid parameters is refused with 400 (the reference's
// ws engine does the same); with it off the header is not looked at.
func TestDeflateBadExtensionsHeader(t *testing.T) {
	t.Parallel()
	on := deflateServer(t, &sc.DeflateOptions{})
	off := newServer(t, sc.Options{})
	for _, tc := range []struct {
		ts     *testServer
		header string
		status int
	}{
		{on, "permessage-deflate; bogus", 400},
		{on, "permessage-deflate; client_max_window_bits=99", 400},
		{on, "permessage-deflate; server_max_window_bits=9", 101}, // declined, uncompressed
		{off, "permessage-deflate; bogus", 101},
	} {
		status, body, ext := rawUpgrade(t, tc.ts.addr, tc.header)
		if status != tc.status {
			t.Fatalf("%q: status %d, want %d", tc.header, status, tc.status)
		}
		if status == 400 && body != "Invalid or unacceptable Sec-WebSocket-Extensions header" {
			t.Fatalf("%q: body %q", tc.header, body)
		}
		if ext != "" {
			t.Fatalf("%q: extensions %q accepted", tc.header, ext)
		}
	}
}

// rawUpgrade sends an upgrade request with the given extensions header and
// returns the status, the body of a refusal and the response's
// Sec-WebSocket-Extensions.
func rawUpgrade(t *testing.T, addr, extensions string) (int, string, string) {
	t.Helper()
	conn, err := net.DialTimeout("tcp", addr, wait)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(wait))
	req := "GET /socketcluster/ HTTP/1.1\r\nHost: " + addr + "\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n" +
		"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Extensions: " + extensions + "\r\n\r\n"
	if _, err := io.WriteString(conn, req); err != nil {
		t.Fatal(err)
	}
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatal(err)
	}
	var body []byte
	if resp.StatusCode != http.StatusSwitchingProtocols {
		body, _ = io.ReadAll(resp.Body)
	}
	return resp.StatusCode, string(body), resp.Header.Get("Sec-WebSocket-Extensions")
}

func TestDeflateOptionsValidate(t *testing.T) {
	t.Parallel()
	for _, level := range []int{-3, -1, 10} {
		if err := (sc.Options{PerMessageDeflate: &sc.DeflateOptions{Level: level}}).Validate(); err == nil {
			t.Fatalf("level %d accepted", level)
		}
	}
	o := sc.Options{PerMessageDeflate: &sc.DeflateOptions{}}
	if err := o.Validate(); err != nil {
		t.Fatal(err)
	}
	srv, err := sc.New(o)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = srv.Close(context.Background()) }()
	if d := srv.Options().PerMessageDeflate; d.Level != 1 || d.Threshold != 1024 {
		t.Fatalf("defaults %+v, want level 1, threshold 1024", *d)
	}
	if o.PerMessageDeflate.Level != 0 {
		t.Fatal("New changed the caller's DeflateOptions")
	}
}
