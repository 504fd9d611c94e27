package wsconn_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gobwas/ws"

	"github.com/socketcluster-go/socketcluster/internal/sctest"
	"github.com/socketcluster-go/socketcluster/internal/wsconn"
)

// pipe is a server Conn on one end of a net.Pipe and a client on the
// other. Everything the server writes is read by a goroutine into frames
// (net.Pipe is synchronous, so the server's pongs and close replies would
// block otherwise).
type pipe struct {
	t      *testing.T
	srv    *wsconn.Conn
	client net.Conn
	frames chan ws.Frame
	wmu    sync.Mutex
}

func newPipe(t *testing.T) *pipe {
	t.Helper()
	a, b := net.Pipe()
	p := &pipe{t: t, srv: wsconn.New(a, nil, 0), client: b, frames: make(chan ws.Frame, 64)}
	done := make(chan struct{})
	go func() {
		defer close(done)
		r := bufio.NewReader(b)
		for {
			f, err := sctest.ReadFrame(r)
			if err != nil {
				close(p.frames)
				return
			}
			p.frames <- f
		}
	}()
	t.Cleanup(func() {
		_ = a.Close()
		_ = b.Close()
		<-done
	})
	return p
}

// write sends raw bytes from the client side without blocking the test
// (net.Pipe writes wait for the reader).
func (p *pipe) write(b []byte) {
	go func() {
		p.wmu.Lock()
		defer p.wmu.Unlock()
		_, _ = p.client.Write(b)
	}()
}

// frame builds a client frame; masked unless told otherwise.
func frame(op ws.OpCode, fin bool, payload []byte, masked bool) []byte {
	f := ws.NewFrame(op, fin, payload)
	if masked {
		f = ws.MaskFrame(f)
	}
	var buf bytes.Buffer
	if err := ws.WriteFrame(&buf, f); err != nil {
		panic(err)
	}
	return buf.Bytes()
}

func cat(parts ...[]byte) []byte { return bytes.Join(parts, nil) }

func (p *pipe) read(limit int64) (bool, []byte, error) {
	type result struct {
		bin bool
		b   []byte
		err error
	}
	ch := make(chan result, 1)
	go func() {
		bin, b, err := p.srv.ReadMessage(limit)
		ch <- result{bin, b, err}
	}()
	select {
	case r := <-ch:
		return r.bin, r.b, r.err
	case <-time.After(10 * time.Second):
		p.t.Fatal("ReadMessage did not return")
		return false, nil, nil
	}
}

func (p *pipe) serverFrame() ws.Frame {
	p.t.Helper()
	select {
	case f, ok := <-p.frames:
		if !ok {
			p.t.Fatal("connection ended, no frame from the server")
		}
		return f
	case <-time.After(10 * time.Second):
		p.t.Fatal("no frame from the server")
	}
	return ws.Frame{}
}

func TestReadMessageTextAndBinary(t *testing.T) {
	t.Parallel()
	p := newPipe(t)
	p.write(cat(frame(ws.OpText, true, []byte(`{"event":"a"}`), true), frame(ws.OpBinary, true, []byte{0xca, 0xfe}, true)))
	bin, b, err := p.read(1 << 20)
	if err != nil || bin || string(b) != `{"event":"a"}` {
		t.Fatalf("text: %v %q %v", bin, b, err)
	}
	bin, b, err = p.read(1 << 20)
	if err != nil || !bin || !bytes.Equal(b, []byte{0xca, 0xfe}) {
		t.Fatalf("binary: %v %x %v", bin, b, err)
	}
}

// A version-2 ping (empty text message) comes back as an empty, non-nil
// payload.
func TestReadMessageEmpty(t *testing.T) {
	t.Parallel()
	p := newPipe(t)
	p.write(frame(ws.OpText, true, nil, true))
	bin, b, err := p.read(10)
	if err != nil || bin || b == nil || len(b) != 0 {
		t.Fatalf("empty message: %v %q (nil %v) %v", bin, b, b == nil, err)
	}
}

func TestReadMessageFragmentedWithControlFrames(t *testing.T) {
	t.Parallel()
	p := newPipe(t)
	p.write(cat(
		frame(ws.OpText, false, []byte("he"), true),
		frame(ws.OpPing, true, []byte("p1"), true),
		frame(ws.OpContinuation, false, []byte("ll"), true),
		frame(ws.OpPong, true, []byte("ignored"), true),
		frame(ws.OpContinuation, false, nil, true),
		frame(ws.OpPing, true, nil, true),
		frame(ws.OpContinuation, true, []byte("o"), true),
		frame(ws.OpBinary, false, []byte{1}, true),
		frame(ws.OpContinuation, true, []byte{2, 3}, true),
	))
	bin, b, err := p.read(1 << 20)
	if err != nil || bin || string(b) != "hello" {
		t.Fatalf("fragmented text: %v %q %v", bin, b, err)
	}
	for _, want := range []string{"p1", ""} {
		f := p.serverFrame()
		if f.Header.OpCode != ws.OpPong || string(f.Payload) != want || f.Header.Masked || !f.Header.Fin {
			t.Fatalf("want pong %q, got %+v %q", want, f.Header, f.Payload)
		}
	}
	bin, b, err = p.read(1 << 20)
	if err != nil || !bin || !bytes.Equal(b, []byte{1, 2, 3}) {
		t.Fatalf("fragmented binary: %v %x %v", bin, b, err)
	}
}

func TestReadMessagePingAnsweredWithPong(t *testing.T) {
	t.Parallel()
	p := newPipe(t)
	payload := bytes.Repeat([]byte("x"), 125)
	p.write(cat(frame(ws.OpPing, true, payload, true), frame(ws.OpText, true, []byte("after"), true)))
	_, b, err := p.read(100)
	if err != nil || string(b) != "after" {
		t.Fatalf("%q %v", b, err)
	}
	f := p.serverFrame()
	if f.Header.OpCode != ws.OpPong || !bytes.Equal(f.Payload, payload) {
		t.Fatalf("pong: %+v %q", f.Header, f.Payload)
	}
}

func TestReadMessageCloseFrameAnswered(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name      string
		body      []byte
		code      int
		reason    string
		replyBody []byte
	}{
		{"code and reason", ws.NewCloseFrameBody(4100, "bye"), 4100, "bye", []byte{0x10, 0x04, 'b', 'y', 'e'}},
		{"code only", ws.NewCloseFrameBody(1000, ""), 1000, "", []byte{0x03, 0xe8}},
		{"no body", nil, 1005, "", []byte{}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := newPipe(t)
			p.write(frame(ws.OpClose, true, tc.body, true))
			_, _, err := p.read(100)
			var ce *wsconn.CloseError
			if !errors.As(err, &ce) || ce.Code != tc.code || ce.Reason != tc.reason {
				t.Fatalf("got %v, want close %d %q", err, tc.code, tc.reason)
			}
			if !strings.Contains(ce.Error(), "closed by peer") {
				t.Errorf("CloseError text %q", ce.Error())
			}
			f := p.serverFrame()
			if f.Header.OpCode != ws.OpClose || !bytes.Equal(f.Payload, tc.replyBody) {
				t.Fatalf("reply: %+v %x, want body %x", f.Header, f.Payload, tc.replyBody)
			}
			if !p.srv.CloseSent() {
				t.Fatal("CloseSent false after answering a close")
			}
			if p.srv.WriteClose(1000, "") {
				t.Fatal("a second close frame was sent")
			}
			if err := p.srv.WriteFrames([][]byte{wsconn.Frame(false, []byte("late"))}); !errors.Is(err, net.ErrClosed) {
				t.Fatalf("write after close: %v", err)
			}
		})
	}
}

func TestReadMessageProtocolErrors(t *testing.T) {
	t.Parallel()
	long := bytes.Repeat([]byte("x"), 126)
	rsv := frame(ws.OpText, true, []byte("a"), true)
	rsv[0] |= 0x40
	for _, tc := range []struct {
		name string
		in   []byte
	}{
		{"unmasked text", frame(ws.OpText, true, []byte("hi"), false)},
		{"unmasked ping", frame(ws.OpPing, true, nil, false)},
		{"rsv bit", rsv},
		{"reserved opcode 3", frame(ws.OpCode(3), true, nil, true)},
		{"reserved control opcode 11", frame(ws.OpCode(11), true, nil, true)},
		{"ping over 125 bytes", frame(ws.OpPing, true, long, true)},
		{"fragmented ping", frame(ws.OpPing, false, nil, true)},
		{"continuation first", frame(ws.OpContinuation, true, []byte("x"), true)},
		{"new message inside a fragmented one", cat(frame(ws.OpText, false, []byte("a"), true), frame(ws.OpText, true, []byte("b"), true))},
		{"close with one byte", frame(ws.OpClose, true, []byte{3}, true)},
		{"64-bit length with the high bit on a ping", []byte{0x89, 0xff, 0x80, 0, 0, 0, 0, 0, 0, 0, 1, 2, 3, 4}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := newPipe(t)
			p.write(tc.in)
			_, _, err := p.read(1 << 20)
			if !errors.Is(err, wsconn.ErrProtocol) {
				t.Fatalf("got %v, want ErrProtocol", err)
			}
		})
	}
}

// TestReadMessageInvalidCloseFrames: a close frame with a code that must
// not be on the wire, or a reason that is not UTF-8, fails the connection
// (1002, 1007) without echoing it, as the reference's ws engine does.
func TestReadMessageInvalidCloseFrames(t *testing.T) {
	t.Parallel()
	for _, code := range []int{0, 999, 1004, 1005, 1006, 1015, 1016, 2000, 2999, 5000, 65535} {
		t.Run(strconv.Itoa(code), func(t *testing.T) {
			p := newPipe(t)
			p.write(frame(ws.OpClose, true, ws.NewCloseFrameBody(ws.StatusCode(code), "bye"), true))
			if _, _, err := p.read(100); !errors.Is(err, wsconn.ErrProtocol) {
				t.Fatalf("got %v, want ErrProtocol", err)
			}
			if p.srv.CloseSent() {
				t.Fatal("the invalid close frame was answered")
			}
		})
	}
	for _, code := range []int{1000, 1003, 1007, 1014, 3000, 4999} {
		t.Run(strconv.Itoa(code), func(t *testing.T) {
			p := newPipe(t)
			p.write(frame(ws.OpClose, true, ws.NewCloseFrameBody(ws.StatusCode(code), "bye"), true))
			var ce *wsconn.CloseError
			if _, _, err := p.read(100); !errors.As(err, &ce) || ce.Code != code {
				t.Fatalf("got %v, want close %d", err, code)
			}
		})
	}
	t.Run("reason not UTF-8", func(t *testing.T) {
		p := newPipe(t)
		p.write(frame(ws.OpClose, true, []byte{0x03, 0xe8, 0xff, 0xfe}, true))
		if _, _, err := p.read(100); !errors.Is(err, wsconn.ErrInvalidUTF8) {
			t.Fatalf("got %v, want ErrInvalidUTF8", err)
		}
	})
}

func TestReadMessageTooBig(t *testing.T) {
	t.Parallel()
	t.Run("single frame", func(t *testing.T) {
		p := newPipe(t)
		p.write(frame(ws.OpText, true, bytes.Repeat([]byte("a"), 11), true))
		if _, _, err := p.read(10); !errors.Is(err, wsconn.ErrTooBig) {
			t.Fatalf("got %v, want ErrTooBig", err)
		}
	})
	t.Run("at the limit", func(t *testing.T) {
		p := newPipe(t)
		p.write(frame(ws.OpText, true, bytes.Repeat([]byte("a"), 10), true))
		if _, b, err := p.read(10); err != nil || len(b) != 10 {
			t.Fatalf("got %d bytes, %v", len(b), err)
		}
	})
	t.Run("fragments adding up", func(t *testing.T) {
		p := newPipe(t)
		p.write(cat(frame(ws.OpText, false, []byte("123456"), true), frame(ws.OpContinuation, true, []byte("78901"), true)))
		if _, _, err := p.read(10); !errors.Is(err, wsconn.ErrTooBig) {
			t.Fatalf("got %v, want ErrTooBig", err)
		}
	})
	t.Run("64-bit length with the top bit set", func(t *testing.T) {
		// 1009, as the reference, not 1002.
		p := newPipe(t)
		p.write([]byte{0x81, 0xff, 0x80, 0, 0, 0, 0, 0, 0, 0, 1, 2, 3, 4})
		if _, _, err := p.read(1 << 20); !errors.Is(err, wsconn.ErrTooBig) {
			t.Fatalf("got %v, want ErrTooBig", err)
		}
	})
	t.Run("huge declared length", func(t *testing.T) {
		// Refused on the header alone: nothing is allocated for 4 GiB.
		p := newPipe(t)
		hdr := []byte{0x81, 0xff, 0, 0, 0, 1, 0, 0, 0, 0, 1, 2, 3, 4}
		p.write(hdr)
		if _, _, err := p.read(1 << 20); !errors.Is(err, wsconn.ErrTooBig) {
			t.Fatalf("got %v, want ErrTooBig", err)
		}
	})
}

func TestReadMessageEOF(t *testing.T) {
	t.Parallel()
	p := newPipe(t)
	full := frame(ws.OpText, true, []byte("hello"), true)
	go func() {
		_, _ = p.client.Write(full[:len(full)-2])
		_ = p.client.Close()
	}()
	_, _, err := p.read(100)
	if err == nil || errors.Is(err, wsconn.ErrProtocol) {
		t.Fatalf("truncated frame: got %v", err)
	}
	if !errors.Is(err, io.ErrUnexpectedEOF) && !errors.Is(err, io.EOF) {
		t.Logf("truncated frame error: %v", err)
	}
}

func TestPutHeaderLengthEncodings(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		n      int
		binary bool
		start  int
		header []byte
	}{
		{0, false, 8, []byte{0x81, 0}},
		{125, false, 8, []byte{0x81, 125}},
		{5, true, 8, []byte{0x82, 5}},
		{126, false, 6, []byte{0x81, 126, 0, 126}},
		{65535, true, 6, []byte{0x82, 126, 0xff, 0xff}},
		{65536, false, 0, []byte{0x81, 127, 0, 0, 0, 0, 0, 1, 0, 0}},
		{1<<31 - 1, false, 0, []byte{0x81, 127, 0, 0, 0, 0, 0x7f, 0xff, 0xff, 0xff}},
	} {
		buf := make([]byte, wsconn.MaxHeader)
		start := wsconn.PutHeader(buf, tc.binary, tc.n)
		if start != tc.start || !bytes.Equal(buf[start:], tc.header) {
			t.Errorf("PutHeader(%d, %v) = %d %x, want %d %x", tc.n, tc.binary, start, buf[start:], tc.start, tc.header)
		}
	}
}

func TestFrameParsesBack(t *testing.T) {
	t.Parallel()
	for _, n := range []int{0, 1, 125, 126, 127, 65535, 65536, 70000} {
		for _, bin := range []bool{false, true} {
			payload := bytes.Repeat([]byte{'z'}, n)
			fr := wsconn.Frame(bin, payload)
			got, err := sctest.ReadFrame(bytes.NewReader(fr))
			if err != nil {
				t.Fatalf("n=%d: %v", n, err)
			}
			op := ws.OpText
			if bin {
				op = ws.OpBinary
			}
			if !got.Header.Fin || got.Header.Masked || got.Header.OpCode != op || got.Header.Rsv != 0 || int(got.Header.Length) != n || !bytes.Equal(got.Payload, payload) {
				t.Fatalf("n=%d bin=%v: header %+v", n, bin, got.Header)
			}
			if want := n + map[bool]int{true: 2, false: 0}[n < 126] + map[bool]int{true: 4, false: 0}[n >= 126 && n <= 0xffff] + map[bool]int{true: 10, false: 0}[n > 0xffff]; len(fr) != want {
				t.Fatalf("n=%d: frame of %d bytes, want %d", n, len(fr), want)
			}
		}
	}
}

func TestWriteFramesAndClose(t *testing.T) {
	t.Parallel()
	p := newPipe(t)
	done := make(chan error, 1)
	go func() {
		done <- p.srv.WriteFrames([][]byte{wsconn.Frame(false, []byte("a")), wsconn.Frame(true, []byte{1}), wsconn.Frame(false, nil)})
	}()
	for _, want := range []struct {
		op ws.OpCode
		p  string
	}{{ws.OpText, "a"}, {ws.OpBinary, "\x01"}, {ws.OpText, ""}} {
		f := p.serverFrame()
		if f.Header.OpCode != want.op || string(f.Payload) != want.p {
			t.Fatalf("got %v %q, want %v %q", f.Header.OpCode, f.Payload, want.op, want.p)
		}
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	long := strings.Repeat("é", 100) // 200 bytes
	go func() { p.srv.WriteClose(4600, long) }()
	f := p.serverFrame()
	if f.Header.OpCode != ws.OpClose || binary.BigEndian.Uint16(f.Payload) != 4600 || len(f.Payload) != 2+123 {
		t.Fatalf("close frame: %v, %d bytes", f.Header, len(f.Payload))
	}
	if !p.srv.CloseSent() {
		t.Fatal("CloseSent false")
	}
	if err := p.srv.WriteFrames([][]byte{wsconn.Frame(false, []byte("x"))}); !errors.Is(err, net.ErrClosed) {
		t.Fatalf("write after close: %v", err)
	}
}

// Writers on several goroutines never interleave their frames.
func TestConcurrentWriters(t *testing.T) {
	t.Parallel()
	p := newPipe(t)
	const writers, each = 4, 50
	var wg sync.WaitGroup
	for w := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			payload := bytes.Repeat([]byte{byte('a' + w)}, 300)
			for range each {
				if err := p.srv.WriteFrames([][]byte{wsconn.Frame(false, payload), wsconn.Frame(false, payload[:10])}); err != nil {
					t.Error(err)
					return
				}
			}
		}()
	}
	for range writers * each * 2 {
		f := p.serverFrame()
		if len(f.Payload) != 300 && len(f.Payload) != 10 {
			t.Fatalf("torn frame of %d bytes", len(f.Payload))
		}
		if !bytes.Equal(f.Payload, bytes.Repeat(f.Payload[:1], len(f.Payload))) {
			t.Fatalf("interleaved payload %q", f.Payload)
		}
	}
	wg.Wait()
}

func TestUpgradeOverHTTP(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name    string
		offered string
		choose  func([]string) string
		want    string
	}{
		{"none offered", "", nil, ""},
		{"first offered", "foo, bar", nil, "foo"},
		{"chooser", "foo, bar", func(p []string) string { return p[len(p)-1] }, "bar"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := make(chan string, 1)
			hs := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				c, err := wsconn.Upgrade(w, r, wsconn.UpgradeOptions{Protocol: tc.choose, WriteTimeout: time.Second})
				if err != nil {
					got <- "error: " + err.Error()
					return
				}
				defer c.Close()
				if c.RemoteAddr() == nil {
					got <- "no remote address"
					return
				}
				_, msg, err := c.ReadMessage(1 << 10)
				if err != nil {
					got <- "read: " + err.Error()
					return
				}
				_ = c.WriteFrames([][]byte{wsconn.Frame(false, append([]byte("echo:"), msg...))})
				got <- ""
			}))
			defer hs.Close()
			d := ws.Dialer{}
			if tc.offered != "" {
				d.Protocols = strings.Split(strings.ReplaceAll(tc.offered, " ", ""), ",")
			}
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			conn, br, hsk, err := d.Dial(ctx, "ws"+strings.TrimPrefix(hs.URL, "http")+"/socketcluster/")
			if err != nil {
				t.Fatal(err)
			}
			defer conn.Close()
			if hsk.Protocol != tc.want {
				t.Fatalf("subprotocol %q, want %q", hsk.Protocol, tc.want)
			}
			if err := ws.WriteFrame(conn, ws.MaskFrame(ws.NewTextFrame([]byte("hi")))); err != nil {
				t.Fatal(err)
			}
			var r io.Reader = conn
			if br != nil {
				r = br
			}
			f, err := sctest.ReadFrame(r)
			if err != nil || string(f.Payload) != "echo:hi" {
				t.Fatalf("%q %v", f.Payload, err)
			}
			if msg := <-got; msg != "" {
				t.Fatal(msg)
			}
		})
	}
}

// TestAbortWrites: a write blocked on a reader that stopped reading is cut
// at the end of the frame it was in; the frames after it are dropped and
// the close frame written next is the first thing after that frame.
func TestAbortWrites(t *testing.T) {
	t.Parallel()
	for _, own := range []bool{true, false} {
		t.Run(map[bool]string{true: "owned", false: "tcpconn"}[own], func(t *testing.T) {
			t.Parallel()
			abortWrites(t, own)
		})
	}
}

func abortWrites(t *testing.T, own bool) {
	srvConn, client := tcpPair(t)
	c := wsconn.New(srvConn, nil, 30*time.Second)
	if own && !c.OwnDescriptor() {
		t.Skip("no owned descriptors on this build")
	}
	big := func(b byte) []byte { return wsconn.Frame(true, bytes.Repeat([]byte{b}, 32<<20)) }
	written := make(chan error, 1)
	go func() { written <- c.WriteFrames([][]byte{big('a'), big('b')}) }()
	// The frames cannot fit in the socket buffers: the write blocks
	// within the first one (or has not started yet).
	time.Sleep(100 * time.Millisecond)
	c.AbortWrites()
	got := make(chan []ws.Frame, 1)
	go func() {
		var fs []ws.Frame
		r := bufio.NewReader(client)
		for {
			f, err := sctest.ReadFrame(r)
			if err != nil {
				got <- fs
				return
			}
			fs = append(fs, f)
			if f.Header.OpCode == ws.OpClose {
				got <- fs
				return
			}
		}
	}()
	if err := <-written; !errors.Is(err, wsconn.ErrAborted) {
		t.Fatalf("WriteFrames: %v, want ErrAborted", err)
	}
	if !c.WriteClose(4100, "slow") {
		t.Fatal("close frame not sent")
	}
	fs := <-got
	if len(fs) == 0 || fs[len(fs)-1].Header.OpCode != ws.OpClose {
		t.Fatalf("no close frame after the aborted write (%d frames)", len(fs))
	}
	if len(fs) > 2 || (len(fs) == 2 && (len(fs[0].Payload) != 32<<20 || fs[0].Payload[0] != 'a')) {
		t.Fatalf("got %d frames before the close, want at most the whole first one", len(fs)-1)
	}
	if err := c.WriteFrames([][]byte{wsconn.Frame(false, []byte("late"))}); !errors.Is(err, net.ErrClosed) && !errors.Is(err, wsconn.ErrAborted) {
		t.Fatalf("write after abort: %v", err)
	}
}
