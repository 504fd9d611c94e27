package client

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"net"
	"sync"
	"time"

	"github.com/gobwas/ws"
	"github.com/gobwas/ws/wsutil"

	"github.com/socketcluster-go/socketcluster/internal/wire"
	"github.com/socketcluster-go/socketcluster/protocol"
)

// closeGrace is how long a connection waits for the server's close frame
// after sending its own (or for a blocked write to finish once closing).
const closeGrace = 3 * time.Second

// errConnClosing is returned by writes on a connection that sent its close
// frame.
var errConnClosing = errors.New("client: connection is closing")

// conn is one WebSocket connection of a Client. Its reader goroutine
// (readLoop) is the only reader; every write takes wmu, so frames never
// interleave.
type conn struct {
	c  *Client
	nc net.Conn
	r  io.Reader

	wmu        sync.Mutex
	closeSent  bool // our close frame was written (or the server's answered)
	sentCode   int
	sentReason string

	tmu      sync.Mutex
	timer    *time.Timer
	limit    time.Duration
	tstopped bool

	// Set by readLoop before done is closed.
	closeCode   int
	closeReason string
	done        chan struct{}

	// Scratch buffers of the reader.
	msgs    []wsutil.Message
	packets []wire.Packet
	oks     []bool
}

func newConn(c *Client, nc net.Conn, br *bufio.Reader) *conn {
	var r io.Reader = br
	if br == nil {
		r = bufio.NewReaderSize(nc, 8192)
	}
	return &conn{c: c, nc: nc, r: r, done: make(chan struct{})}
}

// frame builds a masked client frame (one buffer, one write).
func frame(op ws.OpCode, payload []byte) []byte {
	h := ws.Header{Fin: true, OpCode: op, Masked: true, Mask: ws.NewMask(), Length: int64(len(payload))}
	var buf bytes.Buffer
	buf.Grow(ws.HeaderSize(h) + len(payload))
	_ = ws.WriteHeader(&buf, h)
	start := buf.Len()
	buf.Write(payload)
	ws.Cipher(buf.Bytes()[start:], h.Mask, 0)
	return buf.Bytes()
}

// write sends one text frame.
func (cn *conn) write(payload []byte) error {
	cn.wmu.Lock()
	defer cn.wmu.Unlock()
	return cn.writeLocked(ws.OpText, payload)
}

// writeLocked sends one frame; cn.wmu is held. A failed write closes the
// TCP connection, so the reader ends and the connection is cleaned up.
func (cn *conn) writeLocked(op ws.OpCode, payload []byte) error {
	if cn.closeSent {
		return errConnClosing
	}
	if _, err := cn.nc.Write(frame(op, payload)); err != nil {
		_ = cn.nc.Close()
		return err
	}
	return nil
}

// close starts the closing handshake with code and reason: it writes the
// close frame (once) and gives the server closeGrace to answer before the
// reader gives up. Safe to call from any goroutine, any number of times.
func (cn *conn) close(code int, reason string) {
	// Unblock a writer stuck on a peer that does not read.
	_ = cn.nc.SetWriteDeadline(time.Now().Add(closeGrace))
	cn.wmu.Lock()
	defer cn.wmu.Unlock()
	if cn.closeSent {
		return
	}
	cn.closeSent = true
	cn.sentCode, cn.sentReason = code, reason
	if _, err := cn.nc.Write(frame(ws.OpClose, ws.NewCloseFrameBody(ws.StatusCode(code), reason))); err != nil {
		_ = cn.nc.Close()
		return
	}
	_ = cn.nc.SetReadDeadline(time.Now().Add(closeGrace))
}

// answerClose answers the server's close frame with the same code, unless
// we sent ours first. It reports whether we had sent ours.
func (cn *conn) answerClose(code int, hasCode bool) (ours bool, sentCode int, sentReason string) {
	cn.wmu.Lock()
	defer cn.wmu.Unlock()
	if cn.closeSent {
		return true, cn.sentCode, cn.sentReason
	}
	cn.closeSent = true
	var body []byte
	if hasCode {
		body = ws.NewCloseFrameBody(ws.StatusCode(code), "")
	}
	_ = cn.nc.SetWriteDeadline(time.Now().Add(closeGrace))
	_, _ = cn.nc.Write(frame(ws.OpClose, body))
	return false, 0, ""
}

// ---- Ping deadline ----

// resetPing (re)starts the deadline for the next ping; d > 0 also sets a
// new limit. When it fires the client closes the connection with 4000.
func (cn *conn) resetPing(d time.Duration) {
	cn.tmu.Lock()
	defer cn.tmu.Unlock()
	if cn.tstopped {
		return
	}
	if d > 0 {
		cn.limit = d
	}
	if cn.limit <= 0 {
		return
	}
	if cn.timer == nil {
		cn.timer = time.AfterFunc(cn.limit, cn.pingTimedOut)
	} else {
		cn.timer.Reset(cn.limit)
	}
}

func (cn *conn) stopPing() {
	cn.tmu.Lock()
	defer cn.tmu.Unlock()
	cn.tstopped = true
	if cn.timer != nil {
		cn.timer.Stop()
	}
}

func (cn *conn) pingTimedOut() {
	cn.tmu.Lock()
	stopped := cn.tstopped
	cn.tmu.Unlock()
	if !stopped {
		cn.close(int(protocol.ClosePingTimeout), "")
	}
}

// ---- Reader ----

// readLoop reads frames until the connection ends, then reports the close
// to the client. It is the connection's only goroutine.
func (cn *conn) readLoop() {
	defer cn.c.wg.Done()
	code, reason := 0, ""
	serverClosed := false
loop:
	for {
		var err error
		cn.msgs, err = wsutil.ReadServerMessage(cn.r, cn.msgs[:0])
		for _, m := range cn.msgs {
			switch m.OpCode {
			case ws.OpClose:
				c, r := ws.ParseCloseFrameData(m.Payload)
				hasCode := len(m.Payload) >= 2
				code, reason = int(c), r
				if !hasCode {
					code = 1005
				}
				ours, sc, sr := cn.answerClose(code, hasCode)
				if ours {
					code, reason = sc, sr
				}
				serverClosed = true
				break loop
			case ws.OpPing:
				cn.wmu.Lock()
				_ = cn.writeLocked(ws.OpPong, m.Payload)
				cn.wmu.Unlock()
			case ws.OpPong:
			case ws.OpText:
				cn.c.handleText(cn, m.Payload)
			case ws.OpBinary:
				cn.c.emit(RawEvent{Message: m.Payload, Binary: true})
			}
		}
		if err != nil {
			break
		}
	}
	cn.stopPing()
	_ = cn.nc.Close()
	if !serverClosed {
		cn.wmu.Lock()
		sent, sc, sr := cn.closeSent, cn.sentCode, cn.sentReason
		cn.closeSent = true
		cn.wmu.Unlock()
		if sent {
			code, reason = sc, sr
		} else {
			code, reason = 1006, ""
		}
	}
	cn.closeCode, cn.closeReason = code, reason
	cn.c.connClosed(cn, code, reason)
	close(cn.done)
}
