//go:build linux

package main

import (
	"bytes"
	"fmt"
	"strconv"
)

// protocol is what differs between the servers the generator can load. The
// mechanics (pollers, coalesced writes, the scanner, the figures) are the
// same for all, so a comparison measures the servers, not two generators.
//
//   - sc: SocketCluster protocol version 2 (socketcluster-server 20.x,
//     socketcluster-go). Pings are "" answered with "", a batch is a JSON
//     array, a response is {"rid":N,...}.
//   - centrifugo: Centrifugo's JSON client protocol (version 2, Centrifugo
//     4 to 6) over its WebSocket endpoint. Commands {"id":N,"connect":{}},
//     {"id":N,"subscribe":{"channel":C}}, {"id":N,"publish":{"channel":C,
//     "data":D}}; replies {"id":N,...} with "error" on failure; a
//     publication arrives as {"push":{"channel":C,"pub":{"data":D}}}; pings
//     are {} answered with {}; several messages in one frame are separated
//     by newlines. It has no procedure call without a backend, so the rpc
//     scenario is not available.
type protocol struct {
	name        string
	path        string // default endpoint path
	handshake   []byte // the first command, id 1
	subHead     string // subscribe command up to the quoted channel
	subTail     string // after the channel, with id 2
	publishHead string // publish command up to the quoted channel
	idKey       string // `,"cid":` or `,"id":`, before a command's id
	respHead    []byte // a response starts with this
	ping        []byte // a server ping; answered with the same bytes
	newlines    bool   // several messages per frame, newline separated
	rpc         bool   // the rpc scenario is available
}

var protocols = map[string]*protocol{
	"sc": {
		name:        "sc",
		path:        "/socketcluster/",
		handshake:   []byte(`{"event":"#handshake","data":{"authToken":null},"cid":1}`),
		subHead:     `{"event":"#subscribe","data":{"channel":`,
		subTail:     `},"cid":2}`,
		publishHead: `{"event":"#publish","data":{"channel":`,
		idKey:       `,"cid":`,
		respHead:    ridHead,
		ping:        []byte{},
		rpc:         true,
	},
	"centrifugo": {
		name:        "centrifugo",
		path:        "/connection/websocket",
		handshake:   []byte(`{"id":1,"connect":{}}`),
		subHead:     `{"subscribe":{"channel":`,
		subTail:     `},"id":2}`,
		publishHead: `{"publish":{"channel":`,
		idKey:       `,"id":`,
		respHead:    []byte(`{"id":`),
		ping:        []byte(`{}`),
		newlines:    true,
	},
}

func protocolNamed(name string) (*protocol, error) {
	if p := protocols[name]; p != nil {
		return p, nil
	}
	return nil, fmt.Errorf("unknown protocol %q (sc or centrifugo)", name)
}

// subscribe returns the subscribe command for channel, id 2.
func (pr *protocol) subscribe(channel string) []byte {
	p := []byte(pr.subHead)
	p = strconv.AppendQuote(p, channel)
	return append(p, pr.subTail...)
}

// publishPrefix and publishSuffix frame a generator message: the data is
// {"scb":SEQ,"ts":NANOS[,"pad":"xxx"]}; appendPublish adds the command's id
// (or none for a transmitted publish, cid < 0).
func (pr *protocol) publishPrefix(channel string) []byte {
	p := []byte(pr.publishHead)
	p = strconv.AppendQuote(p, channel)
	return append(p, `,"data":{"scb":`...)
}

func publishSuffix(size int) []byte {
	s := []byte{}
	if size > 0 {
		s = append(s, `,"pad":"`...)
		for range size {
			s = append(s, 'x')
		}
		s = append(s, '"')
	}
	return append(s, `}}`...)
}

func (pr *protocol) appendPublish(dst, prefix, suffix []byte, seq, ts, cid int64) []byte {
	dst = append(dst, prefix...)
	dst = strconv.AppendInt(dst, seq, 10)
	dst = append(dst, `,"ts":`...)
	dst = strconv.AppendInt(dst, ts, 10)
	dst = append(dst, suffix...)
	if cid < 0 {
		return append(dst, '}')
	}
	dst = append(dst, pr.idKey...)
	dst = strconv.AppendInt(dst, cid, 10)
	return append(dst, '}')
}

// isPing reports whether message p is a server ping.
func (pr *protocol) isPing(p []byte) bool { return bytes.Equal(p, pr.ping) }

// each calls fn for every packet of message p: the elements of a batch
// array (sc) or the newline-separated messages of a frame (centrifugo).
func (pr *protocol) each(p []byte, fn func(e []byte)) {
	if pr.newlines {
		for len(p) > 0 {
			line := p
			if i := bytes.IndexByte(p, '\n'); i >= 0 {
				line, p = p[:i], p[i+1:]
			} else {
				p = nil
			}
			if len(line) > 0 {
				fn(line)
			}
		}
		return
	}
	if len(p) > 0 && p[0] == '[' {
		for i := 1; ; {
			e, next, ok := nextElement(p, i)
			if !ok {
				return
			}
			i = next
			fn(e)
		}
	}
	fn(p)
}

// scan classifies one packet.
func (pr *protocol) scan(p []byte) scanned {
	if !pr.newlines {
		return scanPacket(p)
	}
	if !bytes.HasPrefix(p, pr.respHead) {
		return scanDelivery(p)
	}
	rid, _, ok := parseInt(p, skipSpace(p, len(pr.respHead)))
	if !ok {
		return scanned{kind: kindBad}
	}
	return scanned{kind: kindResponse, rid: rid, isErr: hasError(p)}
}
