package wsconn

import (
	"crypto/tls"
	"errors"
	"net"
	"time"

	"github.com/socketcluster-go/socketcluster/internal/netpoll"
)

// TLS connections and the event-driven reader.
//
// crypto/tls reads its records from the connection it wraps with a blocking
// Read, so a *tls.Conn over a plain *net.TCPConn needs a goroutine waiting
// in Read (and that goroutine's buffer) for as long as it lives. A
// *tls.Conn made by NewTLSListener wraps a PollConn instead: a TCP
// connection whose reads, once Watch switched it, never wait. When nothing
// is left on the socket, PollConn.Read fails with an error that says
// Timeout and Temporary; crypto/tls keeps the bytes of an incomplete record
// and does not remember such an error (only non-temporary read errors are
// final for a tls.Conn), so the next Read, at the next readiness event,
// carries on where this one stopped. NextMessage then reads the tls.Conn
// like the socket of a plain connection, into the same pooled buffer.

// PollConn is the TCP connection under a *tls.Conn from NewTLSListener.
// Until Watch takes it over, it behaves exactly as the *net.TCPConn it
// embeds (the TLS handshake and the HTTP upgrade read through it as
// usual); after, Read returns what the socket holds without waiting.
//
// Conn.OwnDescriptor (before Watch, while nothing else uses the
// connection) may replace the TCPConn with the socket's owned descriptor:
// the connection's net.Conn methods then go to it, and the embedded
// TCPConn is noTCPConn, whose other methods (SetKeepAlive and the like)
// fail with EINVAL.
type PollConn struct {
	*net.TCPConn
	owned ownedConn
	// desc is set by Watch before the first event-driven read and never
	// changes after; only the Watch handler reads the connection then.
	desc *netpoll.Desc
	// drained: the last read did not fill its buffer, so the socket was
	// empty then (netpoll.Desc.ReadToEnd says when that does not follow);
	// the next read says "nothing yet" without the read(2) that would only
	// say EAGAIN (what arrives since is an event of the edge-triggered
	// registration). Owned by the Watch handler.
	drained bool
}

// Read reads as the TCP connection does until Watch took the connection
// over; after, it never waits: with nothing to read it fails with an error
// for which errors.Is(err, ErrWouldBlock) holds.
func (p *PollConn) Read(b []byte) (int, error) {
	if p.desc == nil {
		return p.conn().Read(b)
	}
	if p.drained {
		p.drained = false
		return 0, errNothingYet
	}
	n, err := p.desc.Read(b)
	if err == ErrWouldBlock {
		return n, errNothingYet
	}
	p.drained = err == nil && n < len(b) && !p.desc.ReadToEnd()
	return n, err
}

// noTCPConn stands for the TCPConn of a PollConn whose descriptor is owned:
// a zero TCPConn, whose methods fail with EINVAL (a nil one's would panic).
var noTCPConn = new(net.TCPConn)

// conn is the connection the net.Conn methods use.
func (p *PollConn) conn() net.Conn {
	if p.owned != nil {
		return p.owned
	}
	return p.TCPConn
}

func (p *PollConn) Write(b []byte) (int, error)        { return p.conn().Write(b) }
func (p *PollConn) Close() error                       { return p.conn().Close() }
func (p *PollConn) LocalAddr() net.Addr                { return p.conn().LocalAddr() }
func (p *PollConn) RemoteAddr() net.Addr               { return p.conn().RemoteAddr() }
func (p *PollConn) SetDeadline(t time.Time) error      { return p.conn().SetDeadline(t) }
func (p *PollConn) SetReadDeadline(t time.Time) error  { return p.conn().SetReadDeadline(t) }
func (p *PollConn) SetWriteDeadline(t time.Time) error { return p.conn().SetWriteDeadline(t) }

// errNothingYet is PollConn's "nothing to read now". It is a temporary
// timeout so that crypto/tls keeps the connection usable after it.
var errNothingYet error = nothingYet{}

type nothingYet struct{}

func (nothingYet) Error() string   { return ErrWouldBlock.Error() }
func (nothingYet) Timeout() bool   { return true }
func (nothingYet) Temporary() bool { return true }
func (nothingYet) Unwrap() error   { return ErrWouldBlock }

// tlsListener accepts TCP connections and serves TLS over a PollConn.
type tlsListener struct {
	net.Listener
	config *tls.Config
}

// NewTLSListener is tls.NewListener for connections that Watch can read
// without a goroutine: each TCP connection accepted from inner is served
// over a PollConn. Other connections are served as tls.NewListener does.
func NewTLSListener(inner net.Listener, config *tls.Config) net.Listener {
	return &tlsListener{Listener: inner, config: config}
}

func (l *tlsListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	if tc, ok := c.(*net.TCPConn); ok {
		c = &PollConn{TCPConn: tc}
	}
	return tls.Server(c, l.config), nil
}

// readTLS is NextMessage's read for a watched TLS connection: the
// decrypted bytes of the records that can be completed now. A read that
// returned data hides the error that came with it: crypto/tls returns a
// final error again at the next Read, and a "nothing yet" there is what
// ends the round.
func readTLS(t *tls.Conn, buf []byte) (int, error) {
	n, err := t.Read(buf)
	if n > 0 {
		return n, nil
	}
	if errors.Is(err, ErrWouldBlock) {
		return 0, ErrWouldBlock
	}
	return 0, err
}
