package wsconn_test

import (
	"bytes"
	"crypto/tls"
	"errors"
	"io"
	"net"
	"os"
	"testing"
	"time"

	"github.com/gobwas/ws"

	"github.com/socketcluster-go/socketcluster/internal/netpoll"
	"github.com/socketcluster-go/socketcluster/internal/sctest"
	"github.com/socketcluster-go/socketcluster/internal/wsconn"
)

// ownedPair is a server Conn that owns its socket's descriptor, and the
// raw client end.
func ownedPair(t *testing.T, writeTimeout time.Duration) (*wsconn.Conn, net.Conn) {
	t.Helper()
	if !netpoll.Available() {
		t.Skip("no owned descriptors on this build")
	}
	sc, cc := tcpPair(t)
	return owned(t, sc, writeTimeout), cc
}

// owned is a server Conn on sc that took its socket's descriptor.
func owned(t *testing.T, sc net.Conn, writeTimeout time.Duration) *wsconn.Conn {
	t.Helper()
	c := wsconn.New(sc, nil, writeTimeout)
	if !c.OwnDescriptor() {
		t.Fatalf("OwnDescriptor refused a fresh %T", sc)
	}
	if !c.OwnsDescriptor() {
		t.Fatal("OwnsDescriptor is false after OwnDescriptor")
	}
	t.Cleanup(func() { _ = c.Close() })
	return c
}

func TestOwnDescriptor(t *testing.T) {
	t.Parallel()
	w := newWatched(t, 1<<20, nil)
	if got, want := w.srv.RemoteAddr().String(), w.client.LocalAddr().String(); got != want {
		t.Fatalf("RemoteAddr %s, want %s", got, want)
	}
	w.send(frame(ws.OpText, true, []byte("in"), true))
	w.expect("text:in")
	if err := w.srv.WriteFrames([][]byte{wsconn.Frame(false, []byte("a")), wsconn.Frame(true, []byte("bc")), wsconn.Frame(false, nil)}); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"a", "bc", ""} {
		if f := w.serverFrame(); string(f.Payload) != want {
			t.Fatalf("frame %q, want %q", f.Payload, want)
		}
	}
	_ = w.srv.Close()
	if err := w.srv.Close(); err == nil {
		t.Fatal("a second Close did not fail")
	}
	// The socket is closed for real: the client reads EOF.
	_ = w.client.SetReadDeadline(time.Now().Add(10 * time.Second))
	if _, err := w.client.Read(make([]byte, 1)); err != io.EOF {
		t.Fatalf("client read after Close: %v, want EOF", err)
	}
	if err := w.srv.WriteFrames([][]byte{wsconn.Frame(false, []byte("late"))}); err == nil {
		t.Fatal("write after Close did not fail")
	}
}

func TestOwnDescriptorRefused(t *testing.T) {
	t.Parallel()
	a, b := net.Pipe()
	defer a.Close()
	defer b.Close()
	if wsconn.New(a, nil, 0).OwnDescriptor() {
		t.Fatal("OwnDescriptor took a net.Pipe")
	}
	w := newWatchedOwn(t, 1<<20, nil, false, false)
	if w.srv.OwnDescriptor() {
		t.Fatal("OwnDescriptor after Watch")
	}
}

// bigFrames are more bytes than the socket buffers hold, in frames whose
// payloads say their index.
func bigFrames(n int) [][]byte {
	fs := make([][]byte, n)
	for i := range fs {
		fs[i] = wsconn.Frame(true, bytes.Repeat([]byte{byte('a' + i)}, 8<<20))
	}
	return fs
}

// The waiting writes of an owned descriptor, plain and under TLS (where
// the tls.Conn writes its records through it):
//   - a write that finds the send buffer full waits for the reader, then
//     completes: every frame arrives whole and in order;
//   - a reader that never reads: the write fails at the write timeout with
//     a deadline error, as a *net.TCPConn's would;
//   - Close ends a write waiting for room; the descriptor is closed after it.
func TestOwnDescriptorWaitingWrites(t *testing.T) {
	t.Parallel()
	pairs := []struct {
		name string
		pair func(*testing.T, time.Duration) (*wsconn.Conn, net.Conn)
	}{{"tcp", ownedPair}, {"tls", ownedTLSPair}}
	checks := []struct {
		name         string
		writeTimeout time.Duration
		check        func(*testing.T, *wsconn.Conn, net.Conn)
	}{
		{"waits for a slow reader", time.Minute, checkWaitsForSlowReader},
		{"write timeout", 200 * time.Millisecond, func(t *testing.T, c *wsconn.Conn, _ net.Conn) { checkWriteTimesOut(t, c) }},
		{"close ends the waiting write", 0, checkCloseEndsWaitingWrite},
	}
	for _, p := range pairs {
		for _, ch := range checks {
			t.Run(p.name+"/"+ch.name, func(t *testing.T) {
				t.Parallel()
				c, cc := p.pair(t, ch.writeTimeout)
				ch.check(t, c, cc)
			})
		}
	}
}

// ownedTLSPair is ownedPair over TLS: a server Conn on a *tls.Conn from
// NewTLSListener whose PollConn owns the socket's descriptor, and the
// client's *tls.Conn.
func ownedTLSPair(t *testing.T, writeTimeout time.Duration) (*wsconn.Conn, net.Conn) {
	t.Helper()
	sc, cc := tlsPair(t) // skips where event-driven reads, and so owned descriptors, are missing
	c := owned(t, sc, writeTimeout)
	// The TCPConn's own methods fail (and do not panic) once it is gone.
	if err := sc.NetConn().(*wsconn.PollConn).SetKeepAlive(true); err == nil {
		t.Fatal("SetKeepAlive on the replaced TCPConn succeeded")
	}
	return c, cc
}

// OwnDescriptor refuses a TLS connection it cannot own: one over something
// other than a PollConn, and one already watched.
func TestOwnDescriptorTLSRefused(t *testing.T) {
	t.Parallel()
	sc, cc := tlsPair(t)
	w := watchConn(t, sc, cc, nil, 1<<20, false, false)
	if w.srv.OwnDescriptor() {
		t.Fatal("OwnDescriptor after Watch")
	}
	a, b := net.Pipe()
	defer a.Close()
	defer b.Close()
	if wsconn.New(tls.Server(a, &tls.Config{}), nil, 0).OwnDescriptor() {
		t.Fatal("OwnDescriptor took TLS over a net.Pipe")
	}
}

// checkWaitsForSlowReader writes more than the socket buffers hold to a
// client that reads only after a while: the frames arrive whole and in
// order, and the write succeeds.
func checkWaitsForSlowReader(t *testing.T, c *wsconn.Conn, cc net.Conn) {
	t.Helper()
	frames := bigFrames(3)
	written := make(chan error, 1)
	go func() { written <- c.WriteFrames(frames) }()
	time.Sleep(100 * time.Millisecond) // the write fills the buffers and waits
	readBigFrames(t, cc, len(frames))
	if err := <-written; err != nil {
		t.Fatalf("WriteFrames: %v", err)
	}
}

// readBigFrames reads what bigFrames(n) wrote and checks every frame.
func readBigFrames(t *testing.T, cc net.Conn, n int) {
	t.Helper()
	_ = cc.SetReadDeadline(time.Now().Add(time.Minute))
	for i := range n {
		f, err := sctest.ReadFrame(cc)
		if err != nil {
			t.Fatalf("frame %d: %v", i, err)
		}
		if len(f.Payload) != 8<<20 || f.Payload[0] != byte('a'+i) || f.Payload[len(f.Payload)-1] != byte('a'+i) {
			t.Fatalf("frame %d: %d bytes of %q", i, len(f.Payload), f.Payload[:1])
		}
	}
}

// checkWriteTimesOut writes more than the buffers hold to a client that
// never reads, on a Conn with a short write timeout: a deadline error.
func checkWriteTimesOut(t *testing.T, c *wsconn.Conn) {
	t.Helper()
	written := make(chan error, 1)
	go func() { written <- c.WriteFrames(bigFrames(4)) }()
	select {
	case err := <-written:
		if !errors.Is(err, os.ErrDeadlineExceeded) {
			t.Fatalf("WriteFrames: %v, want a deadline error", err)
		}
	case <-time.After(time.Minute):
		t.Fatal("the write outlived its timeout by a minute")
	}
}

// checkCloseEndsWaitingWrite closes c while a write waits for room: the
// write fails, and the client reads EOF after the bytes sent.
func checkCloseEndsWaitingWrite(t *testing.T, c *wsconn.Conn, cc net.Conn) {
	t.Helper()
	written := make(chan error, 1)
	go func() { written <- c.WriteFrames(bigFrames(4)) }()
	time.Sleep(100 * time.Millisecond)
	_ = c.Close()
	select {
	case err := <-written:
		if err == nil {
			t.Fatal("the write succeeded after Close")
		}
	case <-time.After(time.Minute):
		t.Fatal("the waiting write did not end after Close")
	}
	_ = cc.SetReadDeadline(time.Now().Add(time.Minute))
	_, err := io.Copy(io.Discard, cc)
	if _, isTLS := cc.(*tls.Conn); isTLS && errors.Is(err, io.ErrUnexpectedEOF) {
		err = nil // the connection ended inside a record, as it must have
	}
	if err != nil {
		t.Fatalf("client: %v, want EOF after the bytes sent", err)
	}
}
