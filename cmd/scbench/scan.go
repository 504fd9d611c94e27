//go:build linux

package main

import (
	"bytes"

	"github.com/socketcluster-go/socketcluster/internal/wire"
)

// The hot path never decodes whole packets. A text message from the server is
// classified by a few byte comparisons and the two numbers the generator
// cares about are read in place:
//
//   - ""                        a version-2 ping (answered with "")
//   - {"rid":N,...}             a response; "error" present and not null
//                               marks a failure
//   - {"event":"#publish",...}  a delivery; its data carries
//                               {"scb":SEQ,"ts":NANOS,...}, written by the
//                               generator itself
//   - [ p1, p2, ... ]           a batch: each element is one of the above
//
// The generator controls the payloads it sends, so the markers "scb": and
// "ts": cannot appear anywhere else in the packets it receives.

var (
	keyRID   = []byte(`"rid":`)
	keyEvent = []byte(`"event":`)
	keyError = []byte(`"error":`)
	keySeq   = []byte(`"scb":`)
	keyTS    = []byte(`"ts":`)
	ridHead  = []byte(`{"rid":`)
)

// packetKind is what scanPacket found.
type packetKind uint8

const (
	kindOther    packetKind = iota // an event the generator does not track
	kindResponse                   // a {"rid":N} response
	kindDelivery                   // a #publish delivery carrying "scb"
	kindBad                        // a response whose rid is not a number
)

// scanned is the outcome of scanning one packet.
type scanned struct {
	kind  packetKind
	isErr bool  // response carried a non-null "error"
	rid   int64 // response id
	seq   int64 // delivery sequence number
	ts    int64 // delivery send timestamp (generator clock, ns)
}

// scanPacket classifies one JSON packet (not a batch) without decoding it.
func scanPacket(p []byte) (s scanned) {
	var i int
	switch {
	case bytes.HasPrefix(p, ridHead):
		i = len(ridHead)
	case bytes.HasPrefix(p, []byte(`{"event":`)):
		return scanDelivery(p)
	default:
		// Other key orders: a response has a rid and no event.
		j := bytes.Index(p, keyRID)
		if j < 0 || bytes.Contains(p, keyEvent) {
			return scanDelivery(p)
		}
		i = j + len(keyRID)
	}
	rid, _, ok := parseInt(p, skipSpace(p, i))
	if !ok {
		s.kind = kindBad
		return s
	}
	s.kind = kindResponse
	s.rid = rid
	s.isErr = hasError(p)
	return s
}

func scanDelivery(p []byte) (s scanned) {
	i := bytes.Index(p, keySeq)
	if i < 0 {
		return s
	}
	seq, end, ok := parseInt(p, skipSpace(p, i+len(keySeq)))
	if !ok {
		return s
	}
	j := bytes.Index(p[end:], keyTS)
	if j < 0 {
		return s
	}
	ts, _, ok := parseInt(p, skipSpace(p, end+j+len(keyTS)))
	if !ok {
		return s
	}
	s.kind = kindDelivery
	s.seq = seq
	s.ts = ts
	return s
}

// hasError reports whether a response packet carries an "error" that is not
// null (an absent or null error is a success, docs/protocol.md §2.6).
func hasError(p []byte) bool {
	i := bytes.Index(p, keyError)
	if i < 0 {
		return false
	}
	i = skipSpace(p, i+len(keyError))
	return !bytes.HasPrefix(p[i:], []byte("null"))
}

func skipSpace(p []byte, i int) int {
	for i < len(p) && (p[i] == ' ' || p[i] == '\t' || p[i] == '\n' || p[i] == '\r') {
		i++
	}
	return i
}

// parseInt reads an integer starting at p[i]. A number written with a
// fraction or an exponent that still denotes an integer (1.0, 1e3) is not
// accepted: the generator only ever sends plain integers, and a JavaScript
// server writes them back the same way.
func parseInt(p []byte, i int) (v int64, end int, ok bool) {
	neg := false
	if i < len(p) && p[i] == '-' {
		neg = true
		i++
	}
	start := i
	for i < len(p) && p[i] >= '0' && p[i] <= '9' {
		if i-start >= 18 {
			return 0, i, false // would overflow; never produced by scbench
		}
		v = v*10 + int64(p[i]-'0')
		i++
	}
	if i == start {
		return 0, i, false
	}
	if i < len(p) && (p[i] == '.' || p[i] == 'e' || p[i] == 'E') {
		return 0, i, false
	}
	if neg {
		v = -v
	}
	return v, i, true
}

// nextElement returns the next top-level element of the JSON array text p
// starting at offset i (i is 1 for the first call, just after the '[').
// It returns ok=false at the end of the array or on malformed input.
func nextElement(p []byte, i int) (elem []byte, next int, ok bool) {
	i = skipSpace(p, i)
	if i < len(p) && p[i] == ',' {
		i = skipSpace(p, i+1)
	}
	if i >= len(p) || p[i] == ']' {
		return nil, i, false
	}
	end := skipValue(p, i)
	if end <= i {
		return nil, len(p), false
	}
	return p[i:end], end, true
}

// skipValue returns the offset just past the JSON value starting at p[i],
// or i when the value is malformed. Only structure is checked: strings are
// skipped honouring escapes, and objects and arrays by bracket depth.
func skipValue(p []byte, i int) int {
	depth := 0
	j := i
	for j < len(p) {
		switch c := p[j]; c {
		case '"':
			if j = wire.StringEnd(p, j); j < 0 {
				return i
			}
			if depth == 0 {
				return j
			}
			continue
		case '{', '[':
			depth++
		case '}', ']':
			if depth == 0 {
				return j // end of an enclosing container: the scalar ends here
			}
			depth--
			if depth == 0 {
				return j + 1
			}
		case ',':
			if depth == 0 {
				return j
			}
		}
		j++
	}
	if depth != 0 {
		return i
	}
	return j
}
