package wsconn_test

import (
	"bytes"
	"crypto/tls"
	"errors"
	"io"
	"net"
	"testing"
	"time"

	"github.com/gobwas/ws"

	"github.com/socketcluster-go/socketcluster/internal/netpoll"
	"github.com/socketcluster-go/socketcluster/internal/sctest"
	"github.com/socketcluster-go/socketcluster/internal/wsconn"
)

// tlsPair is a handshaken TLS connection over loopback TCP: the server end
// from NewTLSListener, the client end from tls.Client.
func tlsPair(t *testing.T) (server *tls.Conn, client *tls.Conn) {
	t.Helper()
	if !netpoll.Available() {
		t.Skip("event-driven reads are not available on this build")
	}
	inner, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	l := wsconn.NewTLSListener(inner, &tls.Config{Certificates: []tls.Certificate{sctest.SelfSignedCert(t)}})
	defer l.Close()
	accepted := make(chan net.Conn, 1)
	go func() {
		c, _ := l.Accept()
		accepted <- c
	}()
	raw, err := net.Dial("tcp", inner.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	client = tls.Client(raw, &tls.Config{InsecureSkipVerify: true}) //nolint:gosec // the test's own certificate
	t.Cleanup(func() { _ = client.Close() })
	c := <-accepted
	if c == nil {
		t.Fatal("accept failed")
	}
	server = c.(*tls.Conn)
	t.Cleanup(func() { _ = server.Close() })
	if _, ok := server.NetConn().(*wsconn.PollConn); !ok {
		t.Fatalf("NewTLSListener's connection wraps a %T, want *wsconn.PollConn", server.NetConn())
	}
	done := make(chan error, 1)
	go func() { done <- server.Handshake() }()
	if err := client.Handshake(); err != nil {
		t.Fatal(err)
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	return server, client
}

// inBothModes runs f with the TLS connection's descriptor owned
// (OwnDescriptor, as the server does by default in scserver) and with the
// PollConn keeping its *net.TCPConn.
func inBothModes(t *testing.T, f func(t *testing.T, own bool)) {
	for _, own := range []bool{true, false} {
		t.Run(map[bool]string{true: "owned", false: "tcpconn"}[own], func(t *testing.T) {
			t.Parallel()
			f(t, own)
		})
	}
}

func TestWatchTLS(t *testing.T) {
	t.Parallel()
	inBothModes(t, watchTLS)
}

func watchTLS(t *testing.T, own bool) {
	sc, cc := tlsPair(t)
	w := watchConn(t, sc, cc, nil, 1<<20, false, own)
	if w.srv.OwnsDescriptor() != own {
		t.Fatalf("own=%v, yet OwnsDescriptor says %v", own, w.srv.OwnsDescriptor())
	}
	big := bytes.Repeat([]byte("z"), 100_000) // several TLS records, several reads
	stream := cat(
		frame(ws.OpText, true, []byte("one"), true),
		frame(ws.OpBinary, true, []byte{1, 2}, true),
		frame(ws.OpText, false, []byte("fr"), true),
		frame(ws.OpContinuation, true, []byte("ag"), true),
		frame(ws.OpText, true, big, true),
	)
	// A few bytes per record at first: frames split across records and
	// handler runs.
	for i := 0; i < 40; i += 3 {
		w.send(stream[i:min(i+3, 40)])
		time.Sleep(time.Millisecond)
	}
	w.send(stream[40:])
	w.expect("text:one", "binary:\x01\x02", "text:frag", "text:"+string(big))

	// Control frames are answered through the TLS connection.
	w.send(frame(ws.OpPing, true, []byte("hi"), true))
	if f := w.serverFrame(); f.Header.OpCode != ws.OpPong || string(f.Payload) != "hi" {
		t.Fatalf("got %v %q, want a pong", f.Header.OpCode, f.Payload)
	}

	// Idle for a while (the handler saw "nothing yet" many times): the
	// connection still works.
	time.Sleep(50 * time.Millisecond)
	w.send(frame(ws.OpText, true, []byte("later"), true))
	w.expect("text:later")

	// The client's close_notify ends reading as a plain EOF does.
	if err := cc.Close(); err != nil {
		t.Fatal(err)
	}
	if err := w.end(); err != io.EOF {
		t.Fatalf("end: %v, want io.EOF", err)
	}
}

func TestWatchTLSRecordsReadAhead(t *testing.T) {
	t.Parallel()
	inBothModes(t, watchTLSRecordsReadAhead)
}

func watchTLSRecordsReadAhead(t *testing.T, own bool) {
	// The HTTP server read the first record (the upgrade request); the
	// tls.Conn already holds the second one, taken from the socket with
	// the first: no readiness event will come for it, and nothing is left
	// in the HTTP server's buffer to make Watch parse at once. It must
	// still be delivered.
	sc, cc := tlsPair(t)
	first := frame(ws.OpText, true, []byte("first"), true)
	for _, f := range [][]byte{first, frame(ws.OpText, true, []byte("second"), true)} {
		if _, err := cc.Write(f); err != nil {
			t.Fatal(err)
		}
	}
	time.Sleep(50 * time.Millisecond) // both records on the server's socket
	got := make([]byte, len(first))
	if _, err := io.ReadFull(sc, got); err != nil || !bytes.Equal(got, first) {
		t.Fatalf("first record: %q, %v", got, err)
	}
	w := watchConn(t, sc, cc, nil, 1<<20, false, own)
	w.expect("text:second")
	w.send(frame(ws.OpText, true, []byte("third"), true))
	w.expect("text:third")
}

func TestWatchTLSErrors(t *testing.T) {
	t.Parallel()
	inBothModes(t, watchTLSErrors)
}

func watchTLSErrors(t *testing.T, own bool) {
	t.Run("closed by the server", func(t *testing.T) {
		sc, cc := tlsPair(t)
		w := watchConn(t, sc, cc, nil, 1<<20, false, own)
		w.send(frame(ws.OpText, true, []byte("x"), true))
		w.expect("text:x")
		_ = w.srv.Close()
		if err := w.end(); !errors.Is(err, net.ErrClosed) {
			t.Fatalf("end: %v, want net.ErrClosed", err)
		}
	})
	t.Run("read deadline", func(t *testing.T) {
		sc, cc := tlsPair(t)
		w := watchConn(t, sc, cc, nil, 1<<20, false, own)
		_ = w.srv.SetReadDeadline(time.Now().Add(50 * time.Millisecond))
		err := w.end()
		var ne net.Error
		if !errors.As(err, &ne) || !ne.Timeout() {
			t.Fatalf("end: %v, want a timeout", err)
		}
	})
	t.Run("garbage instead of a record", func(t *testing.T) {
		sc, cc := tlsPair(t)
		w := watchConn(t, sc, cc, nil, 1<<20, false, own)
		// Bytes that are not a TLS record, written under the client's
		// TLS layer: the server's tls.Conn fails for good.
		if _, err := cc.NetConn().Write([]byte("GET / HTTP/1.1\r\n\r\n")); err != nil {
			t.Fatal(err)
		}
		err := w.end()
		if err == nil || errors.Is(err, wsconn.ErrWouldBlock) || err == io.EOF {
			t.Fatalf("end: %v, want a TLS record error", err)
		}
	})
}

func TestTLSListenerOtherConns(t *testing.T) {
	t.Parallel()
	// A listener of something other than TCP: its connections are served
	// as tls.NewListener serves them, and Watch declines them (the caller
	// then reads with ReadMessage).
	a, b := net.Pipe()
	defer a.Close()
	defer b.Close()
	l := wsconn.NewTLSListener(&pipeListener{conn: a}, &tls.Config{Certificates: []tls.Certificate{sctest.SelfSignedCert(t)}})
	c, err := l.Accept()
	if err != nil {
		t.Fatal(err)
	}
	tc, ok := c.(*tls.Conn)
	if !ok || tc.NetConn() != a {
		t.Fatalf("accepted %T, want a *tls.Conn over the pipe", c)
	}
	if wsconn.New(c, nil, 0).Watch(wsconn.HandlerFunc(func() bool { return false })) {
		t.Fatal("Watch accepted TLS over a net.Pipe")
	}
}

// pipeListener accepts conn once, then fails.
type pipeListener struct{ conn net.Conn }

func (p *pipeListener) Accept() (net.Conn, error) {
	c := p.conn
	p.conn = nil
	if c == nil {
		return nil, net.ErrClosed
	}
	return c, nil
}
func (p *pipeListener) Close() error   { return nil }
func (p *pipeListener) Addr() net.Addr { return &net.UnixAddr{Name: "pipe", Net: "pipe"} }

// AbortWrites cuts a TLS write that waits for a reader that never reads,
// long before the write timeout, in both modes. (The cut leaves a TLS
// record incomplete, so no close frame can follow it: the connection is
// closed instead.)
func TestAbortWritesTLS(t *testing.T) {
	t.Parallel()
	inBothModes(t, func(t *testing.T, own bool) {
		sc, _ := tlsPair(t)
		c := wsconn.New(sc, nil, time.Minute)
		if own && !c.OwnDescriptor() {
			t.Fatal("OwnDescriptor refused a handshaken TLS connection")
		}
		t.Cleanup(func() { _ = c.Close() })
		big := wsconn.Frame(true, bytes.Repeat([]byte{'a'}, 32<<20))
		written := make(chan error, 1)
		go func() { written <- c.WriteFrames([][]byte{big, big}) }()
		time.Sleep(100 * time.Millisecond) // the write fills the buffers and waits
		c.AbortWrites()
		select {
		case err := <-written:
			if err == nil {
				t.Fatal("WriteFrames succeeded though nothing read")
			}
		case <-time.After(30 * time.Second):
			t.Fatal("AbortWrites did not cut the waiting write (the write timeout is a minute)")
		}
	})
}
