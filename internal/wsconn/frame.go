package wsconn

import (
	"encoding/binary"
	"io"

	"github.com/gobwas/ws"
)

// frameReader is the incremental WebSocket frame parser of one connection.
// It is fed whatever bytes arrived, in any split, and keeps between calls
// only what it must: the bytes of a header cut in two, the position in
// the current frame and the message being reassembled. Payloads are
// unmasked as they are copied into the message, so nothing else of a read
// buffer is kept.
//
// Validation is that of the original blocking reader: reserved bits
// (RSV1 is allowed only on the first frame of a data message, and only
// when permessage-deflate was negotiated: RFC 7692 §6), unmasked client
// frames, reserved opcodes, control frames over 125 bytes
// or fragmented, continuation frames without a message and data frames
// within one are protocol errors; a message over the limit, or a 64-bit
// length with its top bit set, is ErrTooBig as soon as the header
// announcing it is complete.
type frameReader struct {
	hdr  [ws.MaxHeaderSize]byte
	hn   uint8 // bytes of a split header held in hdr
	body bool  // the header is done; payload bytes are due
	fin  bool
	op   ws.OpCode
	mask [4]byte
	left int64 // payload bytes of the current frame still due
	off  int   // payload bytes of the current frame already read
	ctl  []byte

	started    bool      // a data message is being reassembled
	msgOp      ws.OpCode // its opcode
	compressed bool      // it is compressed (RSV1 on its first frame)
	msg        []byte

	// deflate allows RSV1 on the first frame of a data message
	// (permessage-deflate was negotiated); set by the Conn before parsing.
	deflate bool
}

// frameEvent is what parse completed.
type frameEvent uint8

const (
	evNone    frameEvent = iota // all the input was consumed, nothing complete
	evMessage                   // a data message: takeMessage
	evPing                      // a ping; the payload is returned
	evPong                      // a pong
	evClose                     // a close frame; the payload is returned
)

// prealloc bounds what a header's announced length makes us reserve before
// the bytes actually arrive.
const prealloc = 64 << 10

// headerLen returns the length of the header starting b, or 0 when b is
// shorter than 2 bytes.
func headerLen(b []byte) int {
	if len(b) < 2 {
		return 0
	}
	n := 2
	switch b[1] & 0x7f {
	case 126:
		n += 2
	case 127:
		n += 8
	}
	if b[1]&0x80 != 0 {
		n += 4
	}
	return n
}

// parse consumes data up to the end of the first message or control frame
// it completes, and reports it; it consumes all of data when it completes
// nothing. Control payloads are unmasked in place in data when whole in
// it; they are valid until data is reused. On error the reader is broken
// (the connection must end).
func (r *frameReader) parse(data []byte, limit int64) (n int, ev frameEvent, payload []byte, err error) {
	for {
		if !r.body {
			var h []byte
			if r.hn == 0 {
				hl := headerLen(data[n:])
				if hl == 0 || len(data)-n < hl {
					r.hn = uint8(copy(r.hdr[:], data[n:]))
					return len(data), evNone, nil, nil
				}
				h = data[n : n+hl]
				n += hl
			} else {
				// Complete the split header: first its two fixed bytes, then
				// the rest they announce.
				if r.hn < 2 {
					c := copy(r.hdr[r.hn:2], data[n:])
					r.hn += uint8(c)
					n += c
					if r.hn < 2 {
						return n, evNone, nil, nil
					}
				}
				hl := headerLen(r.hdr[:2])
				c := copy(r.hdr[r.hn:hl], data[n:])
				r.hn += uint8(c)
				n += c
				if int(r.hn) < hl {
					return n, evNone, nil, nil
				}
				h = r.hdr[:hl]
				r.hn = 0
			}
			if err := r.begin(h, limit); err != nil {
				return n, evNone, nil, err
			}
		}
		if r.left > 0 {
			avail := len(data) - n
			if avail == 0 {
				return n, evNone, nil, nil
			}
			take := int(min(int64(avail), r.left))
			chunk := data[n : n+take]
			n += take
			if r.op.IsControl() {
				if r.ctl == nil && int64(take) == r.left {
					// The whole payload is here: unmask it in place.
					ws.Cipher(chunk, r.mask, 0)
					r.left = 0
					r.body = false
					return n, r.controlEvent(), chunk, nil
				}
				start := len(r.ctl)
				r.ctl = append(r.ctl, chunk...)
				ws.Cipher(r.ctl[start:], r.mask, r.off)
			} else {
				if cap(r.msg)-len(r.msg) < take {
					extra := min(r.left, max(int64(take), prealloc, int64(len(r.msg))))
					grown := make([]byte, len(r.msg), int64(len(r.msg))+extra)
					copy(grown, r.msg)
					r.msg = grown
				}
				start := len(r.msg)
				r.msg = append(r.msg, chunk...)
				ws.Cipher(r.msg[start:], r.mask, r.off)
			}
			r.off += take
			r.left -= int64(take)
			if r.left > 0 {
				return n, evNone, nil, nil
			}
		}
		// The frame is complete.
		r.body = false
		if r.op.IsControl() {
			p := r.ctl
			r.ctl = nil
			return n, r.controlEvent(), p, nil
		}
		if r.fin {
			return n, evMessage, nil, nil
		}
	}
}

// begin checks a complete header and starts its frame.
func (r *frameReader) begin(h []byte, limit int64) error {
	fin := h[0]&0x80 != 0
	rsv := h[0] & 0x70
	op := ws.OpCode(h[0] & 0x0f)
	masked := h[1]&0x80 != 0
	l7 := h[1] & 0x7f
	if rsv&^rsv1 != 0 || !masked || op.IsReserved() {
		return ErrProtocol
	}
	if rsv&rsv1 != 0 && (!r.deflate || op.IsControl() || op == ws.OpContinuation) {
		// A compressed control frame or continuation frame, or
		// compression that was not negotiated.
		return ErrProtocol
	}
	if op.IsControl() && (l7 > 125 || !fin) {
		return ErrProtocol
	}
	var length int64
	rest := h[2:]
	switch l7 {
	case 126:
		length = int64(binary.BigEndian.Uint16(rest))
		rest = rest[2:]
	case 127:
		u := binary.BigEndian.Uint64(rest)
		if u>>63 != 0 {
			// Beyond any limit, as the reference's ws engine sees it
			// (1009), rather than malformed.
			return ErrTooBig
		}
		length = int64(u)
		rest = rest[8:]
	default:
		length = int64(l7)
	}
	if !op.IsControl() {
		if op == ws.OpContinuation {
			if !r.started {
				return ErrProtocol
			}
		} else {
			if r.started {
				return ErrProtocol
			}
			r.started = true
			r.msgOp = op
			r.compressed = rsv&rsv1 != 0
		}
		if int64(len(r.msg))+length > limit {
			return ErrTooBig
		}
	}
	copy(r.mask[:], rest)
	r.fin, r.op, r.left, r.off = fin, op, length, 0
	r.body = true
	return nil
}

func (r *frameReader) controlEvent() frameEvent {
	switch r.op {
	case ws.OpPing:
		return evPing
	case ws.OpClose:
		return evClose
	}
	return evPong
}

// takeMessage hands over the message parse reported (evMessage), still
// compressed when compressed is true; the reader forgets it. An empty
// message is a non-nil empty slice.
func (r *frameReader) takeMessage() (isBinary bool, msg []byte, compressed bool) {
	isBinary, msg, compressed = r.msgOp == ws.OpBinary, r.msg, r.compressed
	if msg == nil {
		msg = []byte{}
	}
	r.msg, r.started, r.msgOp, r.compressed = nil, false, 0, false
	return isBinary, msg, compressed
}

// atBoundary reports whether the reader is between messages, holding
// nothing that the next frame needs (begin overwrites the rest).
func (r *frameReader) atBoundary() bool {
	return r.hn == 0 && !r.body && !r.started && r.ctl == nil && r.msg == nil
}

// eof is the error for the connection ending here: io.EOF at the start of
// a header, of a header's extended part or of a payload (nothing of it
// read), io.ErrUnexpectedEOF within one, as io.ReadFull reports them.
func (r *frameReader) eof() error {
	switch {
	case r.body:
		if r.off == 0 {
			return io.EOF
		}
	case r.hn == 0 || r.hn == 2:
		return io.EOF
	}
	return io.ErrUnexpectedEOF
}
