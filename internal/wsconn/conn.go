// Package wsconn is the WebSocket engine seam: it upgrades an HTTP request,
// reads whole messages (answering WebSocket control frames itself) and
// writes pre-encoded server frames with one writev per batch. Nothing above
// this package knows which WebSocket library is used (gobwas/ws today), so
// the engine and its goroutine model can be replaced without touching the
// public API.
//
// Concurrency: one goroutine reads (ReadMessage); any goroutine may write
// (writes are serialised by an internal mutex). Close frames are sent at most
// once.
package wsconn

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gobwas/ws"
)

// MaxHeader is the largest server frame header (no mask).
const MaxHeader = 10

// ErrTooBig is returned by ReadMessage for a message over the size limit.
var ErrTooBig = errors.New("wsconn: message too big")

// ErrProtocol is returned by ReadMessage for a frame that breaks RFC 6455.
var ErrProtocol = errors.New("wsconn: protocol error")

// CloseError is returned by ReadMessage when the peer sent a close frame.
type CloseError struct {
	Code   int // 1005 when the frame carried no code
	Reason string
}

func (e *CloseError) Error() string {
	return fmt.Sprintf("websocket closed by peer: %d %q", e.Code, e.Reason)
}

// Conn is a server-side WebSocket connection.
type Conn struct {
	nc net.Conn
	br *bufio.Reader

	wmu       sync.Mutex
	closeSent atomic.Bool
	wtimeout  time.Duration
}

// UpgradeOptions configures Upgrade.
type UpgradeOptions struct {
	// Protocol chooses a subprotocol among those offered; nil picks the
	// first one offered (as the reference's ws engine does).
	Protocol func(offered []string) string
	// WriteTimeout bounds every write (0: none).
	WriteTimeout time.Duration
}

// Upgrade completes the WebSocket handshake on an HTTP request whose headers
// have already been checked by the caller.
func Upgrade(w http.ResponseWriter, r *http.Request, o UpgradeOptions) (*Conn, error) {
	var chosen string
	if offered := r.Header.Values("Sec-WebSocket-Protocol"); len(offered) > 0 {
		var list []string
		for _, v := range offered {
			for _, p := range splitComma(v) {
				list = append(list, p)
			}
		}
		if o.Protocol != nil {
			chosen = o.Protocol(list)
		} else if len(list) > 0 {
			chosen = list[0]
		}
	}
	u := ws.HTTPUpgrader{Timeout: 10 * time.Second}
	if chosen != "" {
		u.Protocol = func(p string) bool { return p == chosen }
	}
	nc, rw, _, err := u.Upgrade(r, w)
	if err != nil {
		return nil, err
	}
	return &Conn{nc: nc, br: rw.Reader, wtimeout: o.WriteTimeout}, nil
}

// New wraps an already upgraded connection (tests, custom listeners).
func New(nc net.Conn, br *bufio.Reader, writeTimeout time.Duration) *Conn {
	if br == nil {
		br = bufio.NewReaderSize(nc, 4096)
	}
	return &Conn{nc: nc, br: br, wtimeout: writeTimeout}
}

func splitComma(s string) []string {
	var out []string
	start := 0
	for i := 0; i <= len(s); i++ {
		if i == len(s) || s[i] == ',' {
			p := s[start:i]
			for len(p) > 0 && (p[0] == ' ' || p[0] == '\t') {
				p = p[1:]
			}
			for len(p) > 0 && (p[len(p)-1] == ' ' || p[len(p)-1] == '\t') {
				p = p[:len(p)-1]
			}
			if p != "" {
				out = append(out, p)
			}
			start = i + 1
		}
	}
	return out
}

// RemoteAddr returns the peer's address.
func (c *Conn) RemoteAddr() net.Addr { return c.nc.RemoteAddr() }

// SetReadDeadline sets the deadline for ReadMessage.
func (c *Conn) SetReadDeadline(t time.Time) error { return c.nc.SetReadDeadline(t) }

// ReadMessage returns the next text or binary message, reassembling
// fragments. Pings are answered, pongs ignored. A close frame from the peer
// is answered (once) and returned as *CloseError. The payload is a new slice
// owned by the caller.
func (c *Conn) ReadMessage(limit int64) (isBinary bool, payload []byte, err error) {
	var (
		started bool
		op      ws.OpCode
	)
	for {
		h, err := ws.ReadHeader(c.br)
		if err != nil {
			if errors.Is(err, ws.ErrHeaderLengthUnexpected) || errors.Is(err, ws.ErrHeaderLengthMSB) {
				return false, nil, ErrProtocol
			}
			return false, nil, err
		}
		if h.Rsv != 0 || !h.Masked || h.OpCode.IsReserved() {
			return false, nil, ErrProtocol
		}
		if h.OpCode.IsControl() {
			if h.Length > 125 || !h.Fin {
				return false, nil, ErrProtocol
			}
			body := make([]byte, h.Length)
			if _, err := io.ReadFull(c.br, body); err != nil {
				return false, nil, err
			}
			ws.Cipher(body, h.Mask, 0)
			switch h.OpCode {
			case ws.OpPing:
				_ = c.writeControl(ws.OpPong, body)
			case ws.OpClose:
				code, reason := 1005, ""
				if len(body) >= 2 {
					code = int(binary.BigEndian.Uint16(body))
					reason = string(body[2:])
				} else if len(body) == 1 {
					return false, nil, ErrProtocol
				}
				var reply []byte
				if len(body) >= 2 {
					reply = body[:2]
				}
				c.sendCloseOnce(reply)
				return false, nil, &CloseError{Code: code, Reason: reason}
			}
			continue
		}
		if h.OpCode == ws.OpContinuation {
			if !started {
				return false, nil, ErrProtocol
			}
		} else {
			if started {
				return false, nil, ErrProtocol
			}
			started = true
			op = h.OpCode
		}
		if int64(len(payload))+h.Length > limit {
			return false, nil, ErrTooBig
		}
		n := len(payload)
		if cap(payload)-n < int(h.Length) {
			grown := make([]byte, n, n+int(h.Length))
			copy(grown, payload)
			payload = grown
		}
		payload = payload[:n+int(h.Length)]
		if _, err := io.ReadFull(c.br, payload[n:]); err != nil {
			return false, nil, err
		}
		ws.Cipher(payload[n:], h.Mask, 0)
		if h.Fin {
			if payload == nil {
				payload = []byte{}
			}
			return op == ws.OpBinary, payload, nil
		}
	}
}

// PutHeader writes the header of a final server frame with the given
// payload length so that it ends at buf[MaxHeader] and returns its start.
// buf must have MaxHeader bytes reserved in front of the payload.
func PutHeader(buf []byte, binaryFrame bool, n int) int {
	b0 := byte(0x80 | byte(ws.OpText))
	if binaryFrame {
		b0 = 0x80 | byte(ws.OpBinary)
	}
	switch {
	case n < 126:
		buf[MaxHeader-2] = b0
		buf[MaxHeader-1] = byte(n)
		return MaxHeader - 2
	case n <= 0xffff:
		buf[MaxHeader-4] = b0
		buf[MaxHeader-3] = 126
		binary.BigEndian.PutUint16(buf[MaxHeader-2:], uint16(n))
		return MaxHeader - 4
	default:
		buf[0] = b0
		buf[1] = 127
		binary.BigEndian.PutUint64(buf[2:], uint64(n))
		return 0
	}
}

// Frame returns a complete server frame holding payload (one copy).
func Frame(binaryFrame bool, payload []byte) []byte {
	buf := make([]byte, MaxHeader+len(payload))
	copy(buf[MaxHeader:], payload)
	start := PutHeader(buf, binaryFrame, len(payload))
	return buf[start:]
}

// WriteFrames writes complete frames with one vectored write.
func (c *Conn) WriteFrames(frames [][]byte) error {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	if c.closeSent.Load() {
		return net.ErrClosed
	}
	if c.wtimeout > 0 {
		_ = c.nc.SetWriteDeadline(time.Now().Add(c.wtimeout))
	}
	bufs := net.Buffers(frames)
	_, err := bufs.WriteTo(c.nc)
	return err
}

func (c *Conn) writeControl(op ws.OpCode, body []byte) error {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	if c.closeSent.Load() {
		return net.ErrClosed
	}
	return c.writeControlLocked(op, body)
}

func (c *Conn) writeControlLocked(op ws.OpCode, body []byte) error {
	var hdr [2 + 125]byte
	hdr[0] = 0x80 | byte(op)
	hdr[1] = byte(len(body))
	n := copy(hdr[2:], body)
	_ = c.nc.SetWriteDeadline(time.Now().Add(5 * time.Second))
	_, err := c.nc.Write(hdr[:2+n])
	return err
}

func (c *Conn) sendCloseOnce(body []byte) bool {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	if c.closeSent.Swap(true) {
		return false
	}
	_ = c.writeControlLocked(ws.OpClose, body)
	return true
}

// WriteClose sends a close frame with code and reason (truncated to 123
// bytes). Later writes fail. It reports whether this call sent it.
func (c *Conn) WriteClose(code int, reason string) bool {
	if len(reason) > 123 {
		reason = reason[:123]
	}
	body := make([]byte, 2+len(reason))
	binary.BigEndian.PutUint16(body, uint16(code))
	copy(body[2:], reason)
	return c.sendCloseOnce(body)
}

// CloseSent reports whether a close frame was sent.
func (c *Conn) CloseSent() bool { return c.closeSent.Load() }

// Close closes the TCP connection.
func (c *Conn) Close() error { return c.nc.Close() }
