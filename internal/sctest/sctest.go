// Package sctest is a minimal raw SocketCluster client for tests: it dials
// a server over a real WebSocket (gobwas/ws), sends text, binary and
// hand-made frames, and reads the server's frames with timeouts. It knows
// just enough of the protocol to do a #handshake and an invoke; everything
// else is left to the test, which sees the exact frames on the wire.
//
// A Client reads in a background goroutine into a bounded queue, so a test
// can stop reading (the queue fills, the goroutine blocks, TCP backs up) to
// play a slow consumer. By default the reader answers the server's close
// frame as a browser would; with AutoPong it also answers version-2 pings
// (empty text frames) without surfacing them.
//
// StartServer starts an in-process server for a test; Next, Eventually,
// AsError and Context are small helpers shared by the tests of the server
// and of the client package.
package sctest

import (
	"bufio"
	"bytes"
	"compress/flate"
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gobwas/httphead"
	"github.com/gobwas/ws"
	"github.com/socketcluster-go/socketcluster/protocol"
)

// DefaultTimeout bounds every read made by the Expect… helpers. It is
// generous on purpose: tests must not flake on a loaded machine.
const DefaultTimeout = 10 * time.Second

// ErrTimeout is returned by Next when no frame came in time.
var ErrTimeout = errors.New("sctest: timed out waiting for a frame")

// Options configure Dial. The zero value is usable.
type Options struct {
	// Path is the request path. Default "/socketcluster/".
	Path string
	// Query is the raw query string, without "?".
	Query string
	// Header adds request headers (Origin, Sec-WebSocket-Protocol…).
	Header http.Header
	// AutoPong answers pings (empty text frames) at once and hides them,
	// once the client has sent its #handshake: as the official client,
	// which sends #handshake first. Pings before that are hidden and not
	// answered, since a pong before the handshake is a message before the
	// handshake (close 4009) — a late test client would otherwise race the
	// server's first ping.
	AutoPong bool
	// NoCloseReply stops the reader from answering the server's close
	// frame.
	NoCloseReply bool
	// QueueSize is the number of frames the reader buffers before it stops
	// reading from the connection. Default 4096.
	QueueSize int
	// Timeout is the default timeout of the Expect… helpers. Default
	// DefaultTimeout.
	Timeout time.Duration
	// Deflate offers permessage-deflate ("permessage-deflate;
	// client_max_window_bits", as browsers and the Node ws engine do).
	// When the server accepts it (Client.Extensions), compressed frames
	// are inflated by the reader (Frame.Compressed) and SendCompressed may
	// be used.
	Deflate bool
}

// Frame is one frame received from the server.
type Frame struct {
	Op      ws.OpCode
	Payload []byte
	// CloseCode and CloseReason are set for close frames (1005 when the
	// frame carried no code).
	CloseCode   protocol.CloseCode
	CloseReason string
	// Compressed is set for a message that came compressed (RSV1); Wire
	// then holds its compressed bytes as they were on the wire, and
	// Payload the inflated message.
	Compressed bool
	Wire       []byte
}

// Text returns the payload as a string.
func (f Frame) Text() string { return string(f.Payload) }

// IsPing reports whether the frame is a version-2 ping (an empty text
// frame).
func (f Frame) IsPing() bool { return f.Op == ws.OpText && len(f.Payload) == 0 }

// IsClose reports whether the frame is a close frame.
func (f Frame) IsClose() bool { return f.Op == ws.OpClose }

func (f Frame) String() string {
	switch f.Op {
	case ws.OpText:
		return fmt.Sprintf("text %q", f.Payload)
	case ws.OpBinary:
		return fmt.Sprintf("binary %x", f.Payload)
	case ws.OpClose:
		return fmt.Sprintf("close %d %q", int(f.CloseCode), f.CloseReason)
	}
	return fmt.Sprintf("op %d %q", f.Op, f.Payload)
}

// Client is one raw connection to a server.
type Client struct {
	tb      testing.TB
	conn    net.Conn
	opts    Options
	timeout time.Duration

	wmu         sync.Mutex
	fragmenting bool        // under wmu: a fragmented message is being sent
	pongPending bool        // under wmu: an automatic pong waits for its end
	handshaken  atomic.Bool // a #handshake was sent (AutoPong)

	frames  chan Frame
	done    chan struct{} // closed by Close
	exited  chan struct{} // closed when the reader returns
	readErr error         // set before exited is closed

	mu       sync.Mutex
	stash    []Frame // frames read while looking for something else
	cid      float64
	closed   bool
	sawClose bool

	// ID is the socket id from the handshake response.
	ID string
	// Extensions is the server's Sec-WebSocket-Extensions answer, "" when
	// it accepted none.
	Extensions string
}

// Connect is Dial outside a test (examples, tools): failures that would
// fail a test panic instead, and the caller must Close the client.
func Connect(addr string, o *Options) (*Client, error) { return DialErr(nil, addr, o) }

func (c *Client) helper() {
	if c.tb != nil {
		c.tb.Helper()
	}
}

func (c *Client) fatalf(format string, args ...any) {
	if c.tb != nil {
		c.tb.Helper()
		c.tb.Fatalf(format, args...)
		return
	}
	panic(fmt.Sprintf(format, args...))
}

// Dial connects to addr ("127.0.0.1:1234", or a full ws:// URL) and fails
// the test on error. The connection is closed at the end of the test.
func Dial(tb testing.TB, addr string, o *Options) *Client {
	tb.Helper()
	c, err := DialErr(tb, addr, o)
	if err != nil {
		tb.Fatalf("sctest: dial %s: %v", addr, err)
	}
	return c
}

// URL returns the WebSocket URL for addr with the options' path and query.
func URL(addr string, o *Options) string {
	if strings.HasPrefix(addr, "ws://") || strings.HasPrefix(addr, "wss://") {
		return addr
	}
	path := "/socketcluster/"
	q := ""
	if o != nil {
		if o.Path != "" {
			path = o.Path
		}
		if o.Query != "" {
			q = "?" + o.Query
		}
	}
	return "ws://" + addr + path + q
}

// DialErr is Dial returning the error (for tests of refused upgrades). A
// nil tb is allowed (see Connect).
func DialErr(tb testing.TB, addr string, o *Options) (*Client, error) {
	var opts Options
	if o != nil {
		opts = *o
	}
	if opts.QueueSize <= 0 {
		opts.QueueSize = 4096
	}
	if opts.Timeout <= 0 {
		opts.Timeout = DefaultTimeout
	}
	d := ws.Dialer{Timeout: 10 * time.Second}
	if opts.Header != nil {
		d.Header = ws.HandshakeHeaderHTTP(opts.Header)
	}
	if opts.Deflate {
		var offer httphead.Option
		offer.Name = []byte("permessage-deflate")
		offer.Parameters.Set([]byte("client_max_window_bits"), nil)
		d.Extensions = []httphead.Option{offer}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	conn, br, hs, err := d.Dial(ctx, URL(addr, &opts))
	if err != nil {
		return nil, err
	}
	var r *bufio.Reader
	if br != nil {
		r = br
	} else {
		r = bufio.NewReaderSize(conn, 64<<10)
	}
	c := &Client{
		tb:      tb,
		conn:    conn,
		opts:    opts,
		timeout: opts.Timeout,
		frames:  make(chan Frame, opts.QueueSize),
		done:    make(chan struct{}),
		exited:  make(chan struct{}),
	}
	var exts []string
	for _, e := range hs.Extensions {
		exts = append(exts, e.String())
	}
	c.Extensions = strings.Join(exts, ", ")
	go c.readLoop(r)
	if tb != nil {
		tb.Cleanup(c.Close)
	}
	return c, nil
}

func (c *Client) readLoop(r *bufio.Reader) {
	defer close(c.exited)
	for {
		f, err := ReadFrame(r)
		if err != nil {
			c.readErr = err
			return
		}
		fr := Frame{Op: f.Header.OpCode, Payload: f.Payload}
		if f.Header.Rsv1() && c.Extensions != "" {
			msg, err := Inflate(f.Payload)
			if err != nil {
				c.readErr = err
				return
			}
			fr.Compressed, fr.Wire, fr.Payload = true, f.Payload, msg
		}
		switch f.Header.OpCode {
		case ws.OpPing:
			_ = c.writeFrame(ws.NewPongFrame(f.Payload))
			continue
		case ws.OpPong:
			continue
		case ws.OpClose:
			fr.CloseCode = 1005
			if len(f.Payload) >= 2 {
				fr.CloseCode = protocol.CloseCode(binary.BigEndian.Uint16(f.Payload))
				fr.CloseReason = string(f.Payload[2:])
			}
			if !c.opts.NoCloseReply {
				c.mu.Lock()
				reply := !c.sawClose
				c.sawClose = true
				c.mu.Unlock()
				if reply {
					var body []byte
					if len(f.Payload) >= 2 {
						body = f.Payload[:2]
					}
					_ = c.writeFrame(ws.NewCloseFrame(body))
				}
			}
		case ws.OpText:
			if c.opts.AutoPong && len(f.Payload) == 0 {
				if c.handshaken.Load() {
					_ = c.writePong()
				}
				continue
			}
		}
		select {
		case c.frames <- fr:
		case <-c.done:
			return
		}
	}
}

// Conn returns the underlying connection (to write broken bytes).
func (c *Client) Conn() net.Conn { return c.conn }

func (c *Client) writeFrame(f ws.Frame) error {
	if f.Header.OpCode != ws.OpPing && bytes.Contains(f.Payload, []byte(`"#handshake"`)) {
		c.handshaken.Store(true)
	}
	c.wmu.Lock()
	defer c.wmu.Unlock()
	_ = c.conn.SetWriteDeadline(time.Now().Add(30 * time.Second))
	if err := ws.WriteFrame(c.conn, ws.MaskFrame(f)); err != nil {
		return err
	}
	switch op := f.Header.OpCode; {
	case (op == ws.OpText || op == ws.OpBinary) && !f.Header.Fin:
		c.fragmenting = true
	case op == ws.OpContinuation && f.Header.Fin:
		c.fragmenting = false
		if c.pongPending {
			c.pongPending = false
			return ws.WriteFrame(c.conn, ws.MaskFrame(ws.NewTextFrame(nil)))
		}
	}
	return nil
}

// writePong answers a ping with an empty text frame. A pong is a data
// frame, which may not come between the fragments of a message: while
// one is being sent, the pong waits for its last fragment.
func (c *Client) writePong() error {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	if c.fragmenting {
		c.pongPending = true
		return nil
	}
	_ = c.conn.SetWriteDeadline(time.Now().Add(30 * time.Second))
	return ws.WriteFrame(c.conn, ws.MaskFrame(ws.NewTextFrame(nil)))
}

// WriteRaw writes bytes as they are (hand-made frames).
func (c *Client) WriteRaw(b []byte) error {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	_ = c.conn.SetWriteDeadline(time.Now().Add(30 * time.Second))
	_, err := c.conn.Write(b)
	return err
}

// SendFrame writes one masked frame with the given opcode and fin bit.
func (c *Client) SendFrame(op ws.OpCode, fin bool, payload []byte) error {
	return c.writeFrame(ws.NewFrame(op, fin, payload))
}

// SendCompressed sends a message compressed as by a permessage-deflate
// client without context takeover (RFC 7692 §7.2.1), RSV1 set.
func (c *Client) SendCompressed(op ws.OpCode, payload []byte) error {
	f := ws.NewFrame(op, true, Deflate(payload))
	f.Header.Rsv = ws.Rsv(true, false, false)
	return c.writeFrame(f)
}

// Deflate compresses a message as a permessage-deflate sender does: a
// sync flush, its final 00 00 ff ff left out.
func Deflate(msg []byte) []byte {
	var buf bytes.Buffer
	w, _ := flate.NewWriter(&buf, flate.BestSpeed)
	_, _ = w.Write(msg)
	_ = w.Flush()
	return bytes.TrimSuffix(buf.Bytes(), []byte{0, 0, 0xff, 0xff})
}

// Inflate decompresses a permessage-deflate message (RFC 7692 §7.2.2),
// up to MaxFrame bytes.
func Inflate(data []byte) ([]byte, error) {
	r := flate.NewReader(io.MultiReader(bytes.NewReader(data), bytes.NewReader([]byte{0, 0, 0xff, 0xff, 1, 0, 0, 0xff, 0xff})))
	out, err := io.ReadAll(io.LimitReader(r, MaxFrame+1))
	if err == nil && len(out) > MaxFrame {
		err = fmt.Errorf("sctest: inflated message over MaxFrame")
	}
	return out, err
}

// SendText sends a text frame; it fails the test on a write error.
func (c *Client) SendText(s string) {
	c.helper()
	if err := c.writeFrame(ws.NewTextFrame([]byte(s))); err != nil {
		c.fatalf("sctest: send %.80q: %v", s, err)
	}
}

// TrySendText sends a text frame and returns the write error.
func (c *Client) TrySendText(s string) error { return c.writeFrame(ws.NewTextFrame([]byte(s))) }

// SendBinary sends a binary frame.
func (c *Client) SendBinary(b []byte) {
	c.helper()
	if err := c.writeFrame(ws.NewBinaryFrame(b)); err != nil {
		c.fatalf("sctest: send binary: %v", err)
	}
}

// Pong sends a version-2 pong (an empty text frame).
func (c *Client) Pong() { c.SendText("") }

// SendClose sends a close frame with code and reason (code 0: no body).
func (c *Client) SendClose(code int, reason string) error {
	var body []byte
	if code != 0 {
		body = ws.NewCloseFrameBody(ws.StatusCode(code), reason)
	}
	c.mu.Lock()
	c.sawClose = true // do not answer the server's reply
	c.mu.Unlock()
	return c.writeFrame(ws.NewCloseFrame(body))
}

// Close ends the connection and waits for the reader to stop. It is safe
// to call more than once.
func (c *Client) Close() {
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return
	}
	c.closed = true
	c.mu.Unlock()
	close(c.done)
	_ = c.conn.Close()
	<-c.exited
}

// Next returns the next frame (pings included unless AutoPong), waiting at
// most timeout. It returns ErrTimeout, or the reader's error once the
// connection ended and every frame was taken.
func (c *Client) Next(timeout time.Duration) (Frame, error) {
	c.mu.Lock()
	if len(c.stash) > 0 {
		f := c.stash[0]
		c.stash = c.stash[1:]
		c.mu.Unlock()
		return f, nil
	}
	c.mu.Unlock()
	t := time.NewTimer(timeout)
	defer t.Stop()
	select {
	case f := <-c.frames:
		return f, nil
	case <-c.exited:
		select {
		case f := <-c.frames:
			return f, nil
		default:
		}
		if c.readErr != nil {
			return Frame{}, c.readErr
		}
		return Frame{}, errors.New("sctest: connection ended")
	case <-t.C:
		return Frame{}, ErrTimeout
	}
}

// unread puts frames back in front of the queue.
func (c *Client) unread(fs ...Frame) {
	if len(fs) == 0 {
		return
	}
	c.mu.Lock()
	c.stash = append(append([]Frame(nil), fs...), c.stash...)
	c.mu.Unlock()
}

// NextFrame is Next with the default timeout, skipping pings; it fails the
// test when nothing comes.
func (c *Client) NextFrame() Frame {
	c.helper()
	deadline := time.Now().Add(c.timeout)
	for {
		f, err := c.Next(time.Until(deadline))
		if err != nil {
			c.fatalf("sctest: waiting for a frame: %v", err)
		}
		if f.IsPing() {
			continue
		}
		return f
	}
}

// NextText returns the next non-ping text frame; a close or binary frame
// fails the test.
func (c *Client) NextText() string {
	c.helper()
	f := c.NextFrame()
	if f.Op != ws.OpText {
		c.fatalf("sctest: want a text frame, got %v", f)
	}
	return f.Text()
}

// Expect reads the next non-ping frame and requires it to be the text want
// exactly.
func (c *Client) Expect(want string) {
	c.helper()
	if got := c.NextText(); got != want {
		c.fatalf("sctest: frame mismatch\n got: %s\nwant: %s", got, want)
	}
}

// ExpectMatch reads the next non-ping text frame and requires it to match
// the regular expression (anchored at both ends). It returns the submatches.
func (c *Client) ExpectMatch(pattern string) []string {
	c.helper()
	got := c.NextText()
	m := regexp.MustCompile("^(?:" + pattern + ")$").FindStringSubmatch(got)
	if m == nil {
		c.fatalf("sctest: frame mismatch\n   got: %s\npattern: %s", got, pattern)
	}
	return m
}

// ExpectSet reads len(want) non-ping text frames and requires them to be
// want in any order (for packets whose relative order is unspecified).
func (c *Client) ExpectSet(want ...string) {
	c.helper()
	left := append([]string(nil), want...)
	var got []string
	for range want {
		s := c.NextText()
		got = append(got, s)
		found := false
		for i, w := range left {
			if w == s {
				left = append(left[:i], left[i+1:]...)
				found = true
				break
			}
		}
		if !found {
			c.fatalf("sctest: unexpected frame %s\n(got so far %q, want %q)", s, got, want)
		}
	}
}

// ExpectNothing requires that no frame other than pings arrives within d.
func (c *Client) ExpectNothing(d time.Duration) {
	c.helper()
	deadline := time.Now().Add(d)
	for {
		left := time.Until(deadline)
		if left <= 0 {
			return
		}
		f, err := c.Next(left)
		if errors.Is(err, ErrTimeout) {
			return
		}
		if err != nil {
			c.fatalf("sctest: connection ended while expecting nothing: %v", err)
		}
		if f.IsPing() {
			continue
		}
		c.fatalf("sctest: unexpected frame %v", f)
	}
}

// ExpectClose reads frames until a close frame and returns its code and
// reason; the frames skipped on the way (pings excluded) are returned too.
func (c *Client) ExpectClose() (code protocol.CloseCode, reason string, skipped []Frame) {
	c.helper()
	deadline := time.Now().Add(c.timeout)
	for {
		f, err := c.Next(time.Until(deadline))
		if err != nil {
			c.fatalf("sctest: waiting for a close frame: %v (skipped %v)", err, skipped)
		}
		if f.IsClose() {
			return f.CloseCode, f.CloseReason, skipped
		}
		if !f.IsPing() {
			skipped = append(skipped, f)
		}
	}
}

// ExpectCloseNow requires the next non-ping frame to be a close frame with
// the given code and reason.
func (c *Client) ExpectCloseNow(code protocol.CloseCode, reason string) {
	c.helper()
	f := c.NextFrame()
	if !f.IsClose() || f.CloseCode != code || f.CloseReason != reason {
		c.fatalf("sctest: want close %d %q, got %v", code, reason, f)
	}
}

// WaitEnd waits until the server ended the TCP connection.
func (c *Client) WaitEnd() {
	c.helper()
	deadline := time.Now().Add(c.timeout)
	for {
		_, err := c.Next(time.Until(deadline))
		if errors.Is(err, ErrTimeout) {
			c.fatalf("sctest: connection still open")
		}
		if err != nil {
			return
		}
	}
}

// ---- Packets ----

// Absent, given as data, leaves the "data" key out.
var Absent = absent{}

type absent struct{}

// Packet is a decoded server packet. Raw fields are nil when the key was
// absent and "null" when it was null.
type Packet struct {
	Event *string         `json:"event"`
	Cid   *float64        `json:"cid"`
	Rid   *float64        `json:"rid"`
	Data  json.RawMessage `json:"data"`
	Error json.RawMessage `json:"error"`
	Raw   string          `json:"-"`
}

// ParsePacket decodes a packet frame; ok is false when it is not a JSON
// object.
func ParsePacket(s string) (Packet, bool) {
	var p Packet
	if err := json.Unmarshal([]byte(s), &p); err != nil {
		return Packet{}, false
	}
	p.Raw = s
	return p, true
}

// Marshal turns data into its JSON text; nil for Absent. A string that is
// already JSON must be given as json.RawMessage.
func Marshal(data any) []byte {
	if _, ok := data.(absent); ok {
		return nil
	}
	if r, ok := data.(json.RawMessage); ok {
		return r
	}
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(data); err != nil {
		panic(err)
	}
	return bytes.TrimRight(buf.Bytes(), "\n")
}

// EventPacket builds {"event":E,"data":D,"cid":N} (cid left out when 0).
func EventPacket(event string, data any, cid float64) string {
	b := []byte(`{"event":`)
	b = append(b, Marshal(event)...)
	if d := Marshal(data); d != nil {
		b = append(b, `,"data":`...)
		b = append(b, d...)
	}
	if cid != 0 {
		b = append(b, `,"cid":`...)
		b = append(b, Marshal(cid)...)
	}
	return string(append(b, '}'))
}

// NextCid returns the next call id (1, 2, …).
func (c *Client) NextCid() float64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.cid++
	return c.cid
}

// Transmit sends an event without cid.
func (c *Client) Transmit(event string, data any) {
	c.helper()
	c.SendText(EventPacket(event, data, 0))
}

// Response is the answer to an invoke.
type Response struct {
	Data  json.RawMessage // nil when absent
	Error json.RawMessage // nil when absent
	Raw   string          // the whole frame
}

// Invoke sends an event with the next cid and waits for the response with
// that rid. Frames that arrive meanwhile are kept for later reads.
func (c *Client) Invoke(event string, data any) Response {
	c.helper()
	cid := c.NextCid()
	c.SendText(EventPacket(event, data, cid))
	return c.AwaitResponse(cid)
}

// AwaitResponse waits for {"rid":cid,…}, keeping other frames for later.
func (c *Client) AwaitResponse(cid float64) Response {
	c.helper()
	deadline := time.Now().Add(c.timeout)
	var other []Frame
	defer func() { c.unread(other...) }()
	for {
		f, err := c.Next(time.Until(deadline))
		if err != nil {
			c.fatalf("sctest: waiting for response %v: %v (other frames: %v)", cid, err, other)
		}
		if f.Op == ws.OpText && len(f.Payload) > 0 {
			if p, ok := ParsePacket(f.Text()); ok && p.Event == nil && p.Rid != nil && *p.Rid == cid {
				return Response{Data: p.Data, Error: p.Error, Raw: f.Text()}
			}
		}
		if f.IsClose() {
			c.fatalf("sctest: closed while waiting for response %v: %v", cid, f)
		}
		if !f.IsPing() {
			other = append(other, f)
		}
	}
}

// HandshakeResponse is the decoded answer to #handshake.
type HandshakeResponse struct {
	ID              string          `json:"id"`
	PingTimeout     float64         `json:"pingTimeout"`
	IsAuthenticated bool            `json:"isAuthenticated"`
	AuthError       json.RawMessage `json:"authError"`
	Raw             string          `json:"-"`
}

// Handshake sends {"event":"#handshake","data":{"authToken":token},"cid":N}
// (token nil for null) and returns the status; an error response fails the
// test. It sets c.ID.
func (c *Client) Handshake(token any) HandshakeResponse {
	c.helper()
	r := c.Invoke("#handshake", map[string]any{"authToken": token})
	if r.Error != nil {
		c.fatalf("sctest: handshake failed: %s", r.Raw)
	}
	var h HandshakeResponse
	if err := json.Unmarshal(r.Data, &h); err != nil {
		c.fatalf("sctest: bad handshake response %s: %v", r.Raw, err)
	}
	h.Raw = r.Raw
	c.ID = h.ID
	return h
}

// Subscribe sends #subscribe for channel and requires {"rid":N}.
func (c *Client) Subscribe(channel string) {
	c.helper()
	r := c.Invoke("#subscribe", map[string]any{"channel": channel})
	if r.Error != nil || r.Data != nil {
		c.fatalf("sctest: subscribe %q: %s", channel, r.Raw)
	}
}

// MaxFrame is the largest payload ReadFrame accepts.
const MaxFrame = 256 << 20

// ReadFrame reads one WebSocket frame as ws.ReadFrame does (a masked
// payload is left masked), but refuses a payload over MaxFrame instead of
// allocating whatever the header declares.
func ReadFrame(r io.Reader) (ws.Frame, error) {
	h, err := ws.ReadHeader(r)
	if err != nil {
		return ws.Frame{}, err
	}
	if h.Length < 0 || h.Length > MaxFrame {
		return ws.Frame{}, fmt.Errorf("sctest: frame of %d bytes is over MaxFrame", h.Length)
	}
	p := make([]byte, h.Length)
	if _, err := io.ReadFull(r, p); err != nil {
		return ws.Frame{}, err
	}
	return ws.Frame{Header: h, Payload: p}, nil
}
