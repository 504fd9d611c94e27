package wsconn_test

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"math"
	"net"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gobwas/ws"

	"github.com/socketcluster-go/socketcluster/internal/netpoll"
	"github.com/socketcluster-go/socketcluster/internal/sctest"
	"github.com/socketcluster-go/socketcluster/internal/wsconn"
)

// watched is a server Conn read event-driven (Watch) on one end of a TCP
// connection, and the raw client end.
type watched struct {
	t      *testing.T
	srv    *wsconn.Conn
	client net.Conn
	msgs   chan string // "text:…" or "binary:…"
	errc   chan error  // the handler's final error
	active atomic.Int32
}

func tcpPair(t *testing.T) (server, client net.Conn) {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	accepted := make(chan net.Conn, 1)
	go func() {
		c, _ := l.Accept()
		accepted <- c
	}()
	client, err = net.Dial("tcp", l.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	server = <-accepted
	if server == nil {
		t.Fatal("accept failed")
	}
	t.Cleanup(func() { _ = client.Close(); _ = server.Close() })
	return server, client
}

// newWatched watches a new connection; br, if set, plays the HTTP
// server's buffer holding bytes sent right behind the upgrade request.
func newWatched(t *testing.T, limit int64, early []byte) *watched {
	t.Helper()
	return newWatchedConn(t, limit, early, false)
}

// newWatchedConn is newWatched, with permessage-deflate on when deflate is
// set.
func newWatchedConn(t *testing.T, limit int64, early []byte, deflate bool) *watched {
	t.Helper()
	return newWatchedOwn(t, limit, early, deflate, true)
}

// newWatchedOwn is newWatchedConn; own says whether the Conn takes the
// socket's descriptor (OwnDescriptor, as the server does) or keeps reading
// and writing through the *net.TCPConn.
func newWatchedOwn(t *testing.T, limit int64, early []byte, deflate, own bool) *watched {
	t.Helper()
	if !netpoll.Available() {
		t.Skip("event-driven reads are not available on this build")
	}
	sc, cc := tcpPair(t)
	var br *bufio.Reader
	if early != nil {
		br = bufio.NewReader(bytes.NewReader(early))
		_, _ = br.Peek(len(early))
	}
	return watchConn(t, sc, cc, br, limit, deflate, own)
}

// watchConn watches sc, the server end of a connection whose client end
// is cc; br plays the HTTP server's buffer (nil: none).
func watchConn(t *testing.T, sc, cc net.Conn, br *bufio.Reader, limit int64, deflate, own bool) *watched {
	t.Helper()
	w := &watched{t: t, srv: wsconn.New(sc, br, time.Second), client: cc, msgs: make(chan string, 1000), errc: make(chan error, 1)}
	if own && !w.srv.OwnDescriptor() {
		t.Fatalf("OwnDescriptor refused a fresh %T", sc)
	}
	if w.srv.OwnsDescriptor() != own {
		t.Fatalf("OwnsDescriptor %v, want %v", w.srv.OwnsDescriptor(), own)
	}
	if deflate {
		w.srv.EnableDeflate()
	}
	ok := w.srv.Watch(wsconn.HandlerFunc(func() bool {
		if w.active.Add(1) != 1 {
			t.Error("handler running twice at once")
		}
		defer w.active.Add(-1)
		for {
			bin, msg, err := w.srv.NextMessage(limit)
			if err == wsconn.ErrWouldBlock {
				return true
			}
			if err != nil {
				_ = w.srv.Close()
				w.errc <- err
				return false
			}
			kind := "text:"
			if bin {
				kind = "binary:"
			}
			w.msgs <- kind + string(msg)
		}
	}))
	if !ok {
		t.Fatalf("Watch refused a %T", sc)
	}
	return w
}

func (w *watched) send(b []byte) {
	w.t.Helper()
	if _, err := w.client.Write(b); err != nil {
		w.t.Fatal(err)
	}
}

func (w *watched) expect(want ...string) {
	w.t.Helper()
	for _, m := range want {
		var got string
		select {
		case got = <-w.msgs:
		case err := <-w.errc:
			// The handler sends its messages before the error, but select
			// picks at random among ready cases: a message sent before the
			// end is still the next one.
			select {
			case got = <-w.msgs:
				w.errc <- err
			default:
				w.t.Fatalf("reading ended with %v, want message %q", err, m)
			}
		case <-time.After(10 * time.Second):
			w.t.Fatalf("no message, want %q", m)
		}
		if got != m {
			w.t.Fatalf("message %q, want %q", got, m)
		}
	}
}

func (w *watched) end() error {
	w.t.Helper()
	select {
	case m := <-w.msgs:
		w.t.Fatalf("unexpected message %q", m)
	case err := <-w.errc:
		return err
	case <-time.After(10 * time.Second):
		w.t.Fatal("reading did not end")
	}
	return nil
}

// clientFrames reads the server's frames on the client side.
func (w *watched) serverFrame() ws.Frame {
	w.t.Helper()
	_ = w.client.SetReadDeadline(time.Now().Add(10 * time.Second))
	f, err := sctest.ReadFrame(w.client)
	if err != nil {
		w.t.Fatal(err)
	}
	return f
}

func TestWatchMessagesInOrderAcrossReads(t *testing.T) {
	t.Parallel()
	for _, own := range []bool{true, false} {
		t.Run(map[bool]string{true: "owned", false: "tcpconn"}[own], func(t *testing.T) {
			t.Parallel()
			watchMessagesInOrderAcrossReads(t, own)
		})
	}
}

func watchMessagesInOrderAcrossReads(t *testing.T, own bool) {
	w := newWatchedOwn(t, 1<<20, nil, false, own)
	big := bytes.Repeat([]byte("z"), 100_000) // several reads
	stream := cat(
		frame(ws.OpText, true, []byte("one"), true),
		frame(ws.OpBinary, true, []byte{1, 2}, true),
		frame(ws.OpText, false, []byte("fr"), true),
		frame(ws.OpContinuation, true, []byte("ag"), true),
		frame(ws.OpText, true, big, true),
		frame(ws.OpText, true, nil, true),
	)
	// Dribble the first part a few bytes at a time so that frames end up
	// split across reads and handler runs; send the rest at once.
	for i := 0; i < 40; i += 3 {
		w.send(stream[i:min(i+3, 40)])
		time.Sleep(time.Millisecond)
	}
	w.send(stream[40:])
	w.expect("text:one", "binary:\x01\x02", "text:frag", "text:"+string(big), "text:")
	_ = w.client.Close()
	if err := w.end(); err != io.EOF {
		t.Fatalf("end: %v, want io.EOF", err)
	}
}

func TestWatchEarlyBytes(t *testing.T) {
	t.Parallel()
	// Bytes that came with the upgrade request are parsed at once, without
	// waiting for the connection to become readable.
	w := newWatched(t, 1<<20, cat(frame(ws.OpText, true, []byte("early"), true), frame(ws.OpText, false, []byte("ha"), true)))
	w.expect("text:early")
	w.send(frame(ws.OpContinuation, true, []byte("lf"), true))
	w.expect("text:half")
}

func TestWatchPingAndClose(t *testing.T) {
	t.Parallel()
	w := newWatched(t, 1<<20, nil)
	w.send(frame(ws.OpPing, true, []byte("hi"), true))
	if f := w.serverFrame(); f.Header.OpCode != ws.OpPong || string(f.Payload) != "hi" {
		t.Fatalf("got %v %q, want a pong", f.Header.OpCode, f.Payload)
	}
	w.send(frame(ws.OpClose, true, []byte{0x0f, 0xa0, 'b', 'y', 'e'}, true))
	err := w.end()
	var ce *wsconn.CloseError
	if !errors.As(err, &ce) || ce.Code != 4000 || ce.Reason != "bye" {
		t.Fatalf("end: %v, want CloseError 4000 bye", err)
	}
	if f := w.serverFrame(); f.Header.OpCode != ws.OpClose || !bytes.Equal(f.Payload, []byte{0x0f, 0xa0, 'b', 'y', 'e'}) {
		t.Fatalf("got %v %q, want the close frame echoed", f.Header.OpCode, f.Payload)
	}
}

func TestWatchErrors(t *testing.T) {
	t.Parallel()
	t.Run("too big", func(t *testing.T) {
		w := newWatched(t, 10, nil)
		w.send(frame(ws.OpText, true, make([]byte, 11), true))
		if err := w.end(); !errors.Is(err, wsconn.ErrTooBig) {
			t.Fatalf("end: %v, want ErrTooBig", err)
		}
	})
	t.Run("protocol", func(t *testing.T) {
		w := newWatched(t, 10, nil)
		w.send(frame(ws.OpText, true, []byte("a"), false))
		if err := w.end(); !errors.Is(err, wsconn.ErrProtocol) {
			t.Fatalf("end: %v, want ErrProtocol", err)
		}
	})
	t.Run("cut within a frame", func(t *testing.T) {
		w := newWatched(t, 1<<20, nil)
		w.send(frame(ws.OpText, true, []byte("hello"), true)[:8])
		time.Sleep(10 * time.Millisecond)
		_ = w.client.Close()
		if err := w.end(); err != io.ErrUnexpectedEOF {
			t.Fatalf("end: %v, want io.ErrUnexpectedEOF", err)
		}
	})
	t.Run("closed by the server", func(t *testing.T) {
		w := newWatched(t, 1<<20, nil)
		w.send(frame(ws.OpText, true, []byte("x"), true))
		w.expect("text:x")
		_ = w.srv.Close()
		if err := w.end(); !errors.Is(err, net.ErrClosed) {
			t.Fatalf("end: %v, want net.ErrClosed", err)
		}
	})
	t.Run("read deadline", func(t *testing.T) {
		w := newWatched(t, 1<<20, nil)
		start := time.Now()
		_ = w.srv.SetReadDeadline(time.Now().Add(50 * time.Millisecond))
		err := w.end()
		var ne net.Error
		if !errors.As(err, &ne) || !ne.Timeout() {
			t.Fatalf("end: %v, want a timeout", err)
		}
		if d := time.Since(start); d < 50*time.Millisecond {
			t.Fatalf("timed out after %v", d)
		}
	})
	t.Run("deadline past what the clock counts", func(t *testing.T) {
		w := newWatched(t, 1<<20, nil)
		_ = w.srv.SetReadDeadline(time.Now().Add(time.Duration(math.MaxInt64)))
		w.send(frame(ws.OpText, true, []byte("in"), true))
		w.expect("text:in")
	})
	t.Run("deadline cleared", func(t *testing.T) {
		w := newWatched(t, 1<<20, nil)
		_ = w.srv.SetReadDeadline(time.Now().Add(30 * time.Millisecond))
		_ = w.srv.SetReadDeadline(time.Time{})
		time.Sleep(60 * time.Millisecond)
		w.send(frame(ws.OpText, true, []byte("still here"), true))
		w.expect("text:still here")
	})
}

func TestWatchRefusesOtherConns(t *testing.T) {
	t.Parallel()
	a, b := net.Pipe()
	defer a.Close()
	defer b.Close()
	if wsconn.New(a, nil, 0).Watch(wsconn.HandlerFunc(func() bool { return false })) {
		t.Fatal("Watch accepted a net.Pipe")
	}
}

// BenchmarkWatchedRead measures the event-driven read path end to end:
// ten 60-byte messages written at once by the client until the handler has
// taken them all from NextMessage (one allocation per message: the payload
// the caller owns).
func BenchmarkWatchedRead(b *testing.B) {
	if !netpoll.Available() {
		b.Skip("event-driven reads are not available on this build")
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	defer l.Close()
	cc, err := net.Dial("tcp", l.Addr().String())
	if err != nil {
		b.Fatal(err)
	}
	defer cc.Close()
	sc, err := l.Accept()
	if err != nil {
		b.Fatal(err)
	}
	const perWrite = 10
	var burst []byte
	for range perWrite {
		burst = append(burst, frame(ws.OpText, true, []byte(`{"event":"echo","data":"0123456789abcdef","cid":123456}`), true)...)
	}
	got := make(chan struct{}, perWrite)
	srv := wsconn.New(sc, nil, 0)
	srv.Watch(wsconn.HandlerFunc(func() bool {
		for {
			_, _, err := srv.NextMessage(1 << 20)
			if err == wsconn.ErrWouldBlock {
				return true
			}
			if err != nil {
				_ = srv.Close()
				return false
			}
			got <- struct{}{}
		}
	}))
	b.SetBytes(int64(len(burst)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := cc.Write(burst); err != nil {
			b.Fatal(err)
		}
		for range perWrite {
			<-got
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*perWrite), "ns/msg")
}

// A client that sends a message and closes at once: the message and the
// FIN are both in the socket before the connection is watched (or before
// the poller takes their event), so one read returns the message and
// stops at the FIN, short of its buffer, with no event to come for the
// end of the stream. The handler must still see it: the event said the
// peer hung up (netpoll.Desc.ReadToEnd).
func TestMessageAndCloseTogether(t *testing.T) {
	msg := frame(ws.OpText, true, []byte("last words"), true)
	check := func(t *testing.T, sc, cc net.Conn, closeRaw func() error, own bool) {
		t.Helper()
		if _, err := cc.Write(msg); err != nil {
			t.Fatal(err)
		}
		if err := closeRaw(); err != nil {
			t.Fatal(err)
		}
		// Not a bound: on loopback the FIN is queued by the time Close
		// returns; the pause only makes that surer.
		time.Sleep(20 * time.Millisecond)
		w := watchConn(t, sc, cc, nil, 1<<20, false, own)
		w.expect("text:last words")
		if err := w.end(); err == nil {
			t.Fatal("reading ended without an error")
		}
	}
	for _, own := range []bool{true, false} {
		t.Run(fmt.Sprintf("tcp/own=%v", own), func(t *testing.T) {
			if !netpoll.Available() {
				t.Skip("event-driven reads are not available on this build")
			}
			sc, cc := tcpPair(t)
			check(t, sc, cc, cc.Close, own)
		})
		t.Run(fmt.Sprintf("tls/own=%v", own), func(t *testing.T) {
			sc, cc := tlsPair(t)
			// The TCP connection ends under TLS, without close_notify.
			check(t, sc, cc, cc.NetConn().Close, own)
		})
	}
}
