//go:build linux

package main

import (
	"bytes"
	"compress/flate"
	"errors"
	"io"
	"sync"

	"github.com/gobwas/httphead"
)

// permessage-deflate (-deflate): the generator offers the extension as
// browsers do ("permessage-deflate; client_max_window_bits") and inflates
// the compressed messages it receives (RSV1). It sends its own messages
// uncompressed (allowed by RFC 7692), so that the server's compression
// cost is what a run measures. Inflating assumes no server context
// takeover (each message on its own), which is what socketcluster-go
// negotiates; a server that keeps its context is refused at set-up.

func deflateOffer() []httphead.Option {
	var o httphead.Option
	o.Name = []byte("permessage-deflate")
	o.Parameters.Set([]byte("client_max_window_bits"), nil)
	return []httphead.Option{o}
}

// checkDeflateAnswer requires the server to have accepted the offer
// without context takeover on its side.
func checkDeflateAnswer(accepted []httphead.Option) error {
	for _, o := range accepted {
		if string(o.Name) != "permessage-deflate" {
			continue
		}
		if _, ok := o.Parameters.Get("server_no_context_takeover"); !ok {
			return errors.New("-deflate: the server keeps its compression context (no server_no_context_takeover), which the generator does not support")
		}
		return nil
	}
	return errors.New("-deflate: the server did not accept permessage-deflate")
}

// inflater decompresses one message at a time; pooled.
type inflater struct {
	r   io.ReadCloser
	src bytes.Reader
	out []byte
}

var inflaters = sync.Pool{New: func() any {
	f := &inflater{}
	f.r = flate.NewReader(&f.src)
	return f
}}

var deflateTail = []byte{0x00, 0x00, 0xff, 0xff, 0x01, 0x00, 0x00, 0xff, 0xff}

// withInflated calls fn with the inflated message (valid during the call).
func withInflated(p []byte, fn func([]byte)) error {
	f := inflaters.Get().(*inflater)
	defer inflaters.Put(f)
	in := append(append(make([]byte, 0, len(p)+len(deflateTail)), p...), deflateTail...)
	f.src.Reset(in)
	if err := f.r.(flate.Resetter).Reset(&f.src, nil); err != nil {
		return err
	}
	f.out = f.out[:0]
	for {
		if len(f.out) == cap(f.out) {
			f.out = append(f.out, 0)[:len(f.out)]
		}
		n, err := f.r.Read(f.out[len(f.out):cap(f.out)])
		f.out = f.out[:len(f.out)+n]
		if len(f.out) > maxMessage {
			return errors.New("inflated message too large")
		}
		if err == io.EOF {
			break
		}
		if err != nil {
			return err
		}
	}
	fn(f.out)
	return nil
}
