package minbin

import (
	"errors"
	"sync"
)

// MaxDepth is how deeply arrays and maps may nest in one message, both
// ways. The reference decoder runs out of JavaScript stack somewhere past
// 2,500 levels (where exactly depends on the engine's state) and throws
// RangeError "Maximum call stack size exceeded"; this codec returns
// [ErrTooDeep] past MaxDepth.
const MaxDepth = 2500

// Codec is the sc-codec-min-bin codec. Its zero value is ready to use, it
// holds no state, and it is safe for concurrent use.
type Codec struct{}

// New returns the codec, for the server's codec option.
func New() *Codec { return &Codec{} }

// Error is an error the reference codec would throw: Name is the
// JavaScript error class ("Error", "TypeError" or "RangeError") and Message
// its exact message. Error() returns Message alone, so a server that
// reports err.Error() reports the reference's text. The reference server
// renames an error named "Error" to "InvalidMessageError" when it emits it.
type Error struct {
	Name    string
	Message string
}

func (e *Error) Error() string { return e.Message }

var (
	// ErrShortBuffer: the message ends inside a value, is empty, or is a
	// text frame that does not spell a positive length (see Decode).
	ErrShortBuffer = &Error{Name: "Error", Message: "BUFFER_SHORTAGE"}
	// ErrInvalidType: the byte 0xc1, which MessagePack never uses.
	ErrInvalidType = &Error{Name: "Error", Message: "Invalid type: 0xc1"}
	// ErrNullPacket: the message is nil, or a batch with a nil element;
	// the reference's decompression step reads a property of null.
	ErrNullPacket = &Error{Name: "TypeError", Message: "Cannot read properties of null (reading 'e')"}
	// ErrTooDeep: arrays and maps nest more than MaxDepth levels.
	ErrTooDeep = &Error{Name: "RangeError", Message: "Maximum call stack size exceeded"}
)

// ErrUnsupportedType is wrapped by Encode errors for Go values that have
// no place in a codec tree.
var ErrUnsupportedType = errors.New("minbin: unsupported type")

// Encode turns one packet, or a batch (an array of packets), into one
// binary WebSocket message, compacting packets as sc-codec-min-bin does.
// binary is always true: the official client decodes only binary frames
// with this codec. The returned slice belongs to the caller.
func (c *Codec) Encode(v any) (frame []byte, binary bool, err error) {
	e := encoderPool.Get().(*encoder)
	e.buf = e.buf[:0]
	e.depth = 0
	err = e.top(v)
	if err == nil {
		frame = make([]byte, len(e.buf))
		copy(frame, e.buf)
	}
	if cap(e.buf) <= 64<<10 {
		encoderPool.Put(e)
	}
	if err != nil {
		return nil, true, err
	}
	return frame, true, nil
}

var encoderPool = sync.Pool{New: func() any { return &encoder{buf: make([]byte, 0, 512)} }}

// Decode turns one inbound message into a packet, a batch, or any other
// value, as sc-codec-min-bin's decode does.
//
// A binary frame is read as one MessagePack value (bytes after it are
// ignored) and then decompressed (see the package documentation). A text
// frame reaches the reference decoder as a JavaScript string, which
// `new Uint8Array(string)` turns into a zero-filled buffer whose length is
// Number(string): so a text frame that spells a positive length of at most
// 2^32 decodes to the number 0 (the server then treats it as raw), one that
// spells 0 or no number at all fails with ErrShortBuffer, and one that
// spells a negative or larger length fails with a RangeError "Invalid typed
// array length: <text>". Decode never keeps a reference to frame.
func (c *Codec) Decode(frame []byte, binary bool) (any, error) {
	if !binary {
		return decodeText(frame)
	}
	d := decoder{b: frame}
	v, err := d.value()
	if err != nil {
		return nil, err
	}
	if a, ok := v.([]any); ok {
		for _, p := range a {
			if err := decompress(p); err != nil {
				return nil, err
			}
		}
		return a, nil
	}
	if err := decompress(v); err != nil {
		return nil, err
	}
	return v, nil
}
