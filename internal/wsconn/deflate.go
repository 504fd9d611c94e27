package wsconn

import (
	"compress/flate"
	"errors"
	"fmt"
	"io"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/gobwas/httphead"
)

// permessage-deflate (RFC 7692).
//
// This server always negotiates server_no_context_takeover and
// client_no_context_takeover: every message is compressed and
// decompressed on its own, so that
//
//   - a message published to a channel is compressed once and the same
//     bytes are queued to every subscriber that negotiated the extension
//     (with context takeover each connection's compressor would have its
//     own history and the message would be compressed once per
//     subscriber);
//   - no connection holds a compressor or a decompressor between
//     messages: both are borrowed from pools for the length of one
//     message, so an idle connection costs no deflate memory. A
//     compress/flate writer weighs 1.2 MB at level 1 and takes
//     milliseconds to make, a reader 44 KB: the pools (flatePool) keep a
//     few of each across garbage collections, which a bare sync.Pool
//     would not (it would make a new writer after every other GC).
//
// Window sizes: the decompressor accepts any window up to 32 KiB, so the
// client's client_max_window_bits is left as the client chooses. The
// compressor always uses a 32 KiB window, so an offer that limits
// server_max_window_bits below 15 is declined (the next offer, if any, is
// tried; otherwise the connection goes on uncompressed).

// ErrBadExtensions is returned by NegotiateDeflate for a
// Sec-WebSocket-Extensions header that does not parse, or a
// permessage-deflate offer with an unknown, repeated or invalid parameter
// (the handshake is to be refused with 400, as the reference's ws engine
// does).
var ErrBadExtensions = errors.New("wsconn: invalid Sec-WebSocket-Extensions header")

// ErrBadDeflate is returned by ReadMessage and NextMessage for a
// compressed message whose data is not valid deflate data (the connection
// is to be failed with 1007, as the reference's ws engine does).
var ErrBadDeflate = errors.New("wsconn: invalid compressed data")

// DeflateExtension is the extension name of RFC 7692.
const DeflateExtension = "permessage-deflate"

// NegotiateDeflate picks the first permessage-deflate offer of the
// Sec-WebSocket-Extensions header values that this server can accept and
// returns the value of the response's Sec-WebSocket-Extensions header; ""
// when there is no such offer (the connection is then uncompressed). It
// returns ErrBadExtensions for a header that does not parse or an offer
// with invalid parameters (RFC 7692 §5: such an offer must be declined;
// the reference then refuses the handshake with 400).
func NegotiateDeflate(values []string) (string, error) {
	type offer struct {
		params     map[string]string
		bad        bool
		serverBits string
	}
	var offers []*offer
	for _, v := range values {
		if strings.TrimSpace(v) == "" {
			continue
		}
		cur, curIndex := (*offer)(nil), -1
		ok := httphead.ScanOptions([]byte(v), func(index int, name, attr, val []byte) httphead.Control {
			if !strings.EqualFold(string(name), DeflateExtension) {
				return httphead.ControlSkip
			}
			if index != curIndex || cur == nil {
				cur, curIndex = &offer{params: map[string]string{}}, index
				offers = append(offers, cur)
			}
			if attr == nil {
				return httphead.ControlContinue
			}
			key := strings.ToLower(string(attr))
			if _, dup := cur.params[key]; dup {
				cur.bad = true
			}
			cur.params[key] = string(val)
			return httphead.ControlContinue
		})
		if !ok {
			return "", ErrBadExtensions
		}
	}
	chosen := (*offer)(nil)
	for _, o := range offers {
		for k, v := range o.params {
			switch k {
			case "server_no_context_takeover", "client_no_context_takeover":
				if v != "" {
					o.bad = true
				}
			case "client_max_window_bits":
				if v != "" && !validBits(v) {
					o.bad = true
				}
			case "server_max_window_bits":
				if !validBits(v) {
					o.bad = true
				}
				o.serverBits = v
			default:
				o.bad = true
			}
		}
		if o.bad {
			return "", ErrBadExtensions
		}
		if chosen == nil && (o.serverBits == "" || o.serverBits == "15") {
			chosen = o
		}
	}
	if chosen == nil {
		return "", nil
	}
	resp := DeflateExtension + "; server_no_context_takeover; client_no_context_takeover"
	if chosen.serverBits != "" {
		// RFC 7692 §7.1.2.1: an offer naming server_max_window_bits must
		// be answered with it.
		resp += "; server_max_window_bits=15"
	}
	return resp, nil
}

func validBits(v string) bool {
	return len(v) > 0 && len(v) <= 2 && v[0] != '0' && func() bool {
		n := 0
		for i := 0; i < len(v); i++ {
			if v[i] < '0' || v[i] > '9' {
				return false
			}
			n = n*10 + int(v[i]-'0')
		}
		return n >= 8 && n <= 15
	}()
}

// ---- Compression ----

// Compressor compresses outbound messages for connections that negotiated
// permessage-deflate. Its flate writers are pooled: one is held only
// while a message is being compressed. It is safe for concurrent use.
type Compressor struct {
	level     int
	threshold int
	writers   flatePool[*deflater]

	frames, in, out atomic.Int64 // CompressorStats
}

// CompressorStats counts the frames a Compressor made.
type CompressorStats struct {
	Frames   int64 // compressed frames made
	InBytes  int64 // their messages' size
	OutBytes int64 // their compressed payloads' size
}

// Stats returns the compressor's counters.
func (z *Compressor) Stats() CompressorStats {
	return CompressorStats{Frames: z.frames.Load(), InBytes: z.in.Load(), OutBytes: z.out.Load()}
}

// deflater is a pooled flate writer with its output buffer.
type deflater struct {
	w   *flate.Writer
	out []byte
}

func (d *deflater) Write(p []byte) (int, error) {
	d.out = append(d.out, p...)
	return len(p), nil
}

// maxPooledOut bounds the output buffer a pooled deflater keeps.
const maxPooledOut = 64 << 10

// NewCompressor returns a compressor at a compress/flate level (1 to 9,
// or flate.HuffmanOnly) that leaves messages shorter than threshold bytes
// uncompressed.
func NewCompressor(level, threshold int) (*Compressor, error) {
	if level < flate.HuffmanOnly || level == flate.NoCompression || level == flate.DefaultCompression || level > flate.BestCompression {
		return nil, fmt.Errorf("wsconn: compression level %d: want 1 to 9, or %d (Huffman only)", level, flate.HuffmanOnly)
	}
	z := &Compressor{level: level, threshold: threshold}
	z.writers = newFlatePool(func() *deflater {
		d := &deflater{}
		d.w, _ = flate.NewWriter(d, level) // the level was checked
		return d
	})
	return z, nil
}

// Frame returns a complete compressed frame (RSV1 set) holding payload,
// or nil when payload is shorter than the threshold or does not shrink:
// the caller then sends it uncompressed. The frame is valid for any
// connection that negotiated the extension (no context takeover), so it
// may be shared by many.
func (z *Compressor) Frame(binaryFrame bool, payload []byte) []byte {
	if len(payload) < z.threshold {
		return nil
	}
	d := z.writers.get()
	d.out = d.out[:0]
	d.w.Reset(d)
	_, _ = d.w.Write(payload) // writes to d never fail
	_ = d.w.Flush()
	var frame []byte
	// RFC 7692 §7.2.1: the sync flush ends with 00 00 ff ff, which is
	// left out of the message.
	if body := d.out; len(body) >= 4 && len(body)-4 < len(payload) {
		body = body[:len(body)-4]
		frame = make([]byte, MaxHeader+len(body))
		copy(frame[MaxHeader:], body)
		start := PutHeader(frame, binaryFrame, len(body))
		frame[start] |= rsv1
		frame = frame[start:]
		z.frames.Add(1)
		z.in.Add(int64(len(payload)))
		z.out.Add(int64(len(body)))
	}
	if cap(d.out) > maxPooledOut {
		d.out = nil
	}
	z.writers.put(d)
	return frame
}

// rsv1 marks a compressed message (RFC 7692 §6).
const rsv1 = 0x40

// flatePool lends flate writers or readers. Up to keptFlate of them are
// kept for good (a channel, which garbage collection leaves alone); more,
// under heavier concurrency, go through a sync.Pool. Nothing is made
// before it is first needed.
type flatePool[T any] struct {
	kept     chan T
	overflow *sync.Pool
	newT     func() T
}

// keptFlate is how many flate writers (and readers) a pool keeps across
// garbage collections: at most 4 × 1.2 MB of writers for a server.
var keptFlate = min(4, max(1, runtime.GOMAXPROCS(0)))

func newFlatePool[T any](newT func() T) flatePool[T] {
	return flatePool[T]{kept: make(chan T, keptFlate), overflow: &sync.Pool{}, newT: newT}
}

func (p *flatePool[T]) get() T {
	select {
	case v := <-p.kept:
		return v
	default:
	}
	if v, ok := p.overflow.Get().(T); ok {
		return v
	}
	return p.newT()
}

func (p *flatePool[T]) put(v T) {
	select {
	case p.kept <- v:
	default:
		p.overflow.Put(v)
	}
}

// ---- Decompression ----

// inflater is a pooled flate reader with the source it reads.
type inflater struct {
	r   io.ReadCloser
	src msgSource
}

var inflaters = newFlatePool(func() *inflater {
	f := &inflater{}
	f.r = flate.NewReader(&f.src)
	return f
})

// inflateTail ends a message's deflate data: the 00 00 ff ff that the
// sender removed (RFC 7692 §7.2.2), then an empty final block so that the
// reader reports io.EOF at the end of the message.
var inflateTail = []byte{0x00, 0x00, 0xff, 0xff, 0x01, 0x00, 0x00, 0xff, 0xff}

// inflate decompresses a message, failing with ErrTooBig as soon as its
// output passes limit bytes: memory is bounded by the limit whatever the
// compressed data says.
func inflate(data []byte, limit int64) ([]byte, error) {
	f := inflaters.get()
	defer inflaters.put(f)
	f.src = msgSource{a: data, b: inflateTail}
	if err := f.r.(flate.Resetter).Reset(&f.src, nil); err != nil {
		return nil, err
	}
	size := min(limit+1, int64(max(4*len(data), 512)))
	out := make([]byte, 0, size)
	for {
		if len(out) == cap(out) {
			grown := make([]byte, len(out), min(limit+1, int64(2*cap(out))))
			copy(grown, out)
			out = grown
		}
		n, err := f.r.Read(out[len(out):cap(out)])
		out = out[:len(out)+n]
		if int64(len(out)) > limit {
			f.src = msgSource{}
			return nil, ErrTooBig
		}
		if err == io.EOF {
			f.src = msgSource{}
			return out, nil
		}
		if err != nil {
			f.src = msgSource{}
			return nil, fmt.Errorf("%w: %v", ErrBadDeflate, err)
		}
	}
}

// msgSource reads a then b. It is an io.ByteReader, so that the flate
// reader reads it directly (no bufio.Reader of its own).
type msgSource struct{ a, b []byte }

func (s *msgSource) Read(p []byte) (int, error) {
	if len(s.a) == 0 {
		s.a, s.b = s.b, nil
		if len(s.a) == 0 {
			return 0, io.EOF
		}
	}
	n := copy(p, s.a)
	s.a = s.a[n:]
	return n, nil
}

func (s *msgSource) ReadByte() (byte, error) {
	if len(s.a) == 0 {
		s.a, s.b = s.b, nil
		if len(s.a) == 0 {
			return 0, io.EOF
		}
	}
	c := s.a[0]
	s.a = s.a[1:]
	return c, nil
}
