package natsbroker

import (
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"strings"
)

// maxDirect is the longest encoded name put in a subject as is; longer
// names are hashed (see the package documentation). It keeps every
// subject, and the PUB/SUB protocol lines that carry it, far below the
// server's max_control_line (4 KB by default).
const maxDirect = 256

var b64 = base64.RawURLEncoding

// subject maps a channel name to its subject. hashed reports that the
// subject holds a hash of the name, so the name travels in the message
// (see frame).
func (b *Broker) subject(channel string) (subject string, hashed bool) {
	if n := b64.EncodedLen(len(channel)); n <= maxDirect {
		buf := make([]byte, len(b.prefix)+2+n)
		copy(buf, b.prefix)
		copy(buf[len(b.prefix):], ".c")
		b64.Encode(buf[len(b.prefix)+2:], []byte(channel))
		return string(buf), false
	}
	sum := sha256.Sum256([]byte(channel))
	return b.prefix + ".h" + hex.EncodeToString(sum[:]), true
}

// frame prepends the channel name to the payload, for hashed subjects:
// uvarint(len(name)) name payload.
func frame(channel string, payload []byte) []byte {
	out := make([]byte, 0, binary.MaxVarintLen64+len(channel)+len(payload))
	out = binary.AppendUvarint(out, uint64(len(channel)))
	out = append(out, channel...)
	return append(out, payload...)
}

var errForeign = errors.New("natsbroker: message does not match its subject")

// decode returns the channel and payload of a message received on subject.
func (b *Broker) decode(subject string, data []byte) (channel string, payload []byte, err error) {
	tok, ok := strings.CutPrefix(subject, b.prefix)
	if !ok || len(tok) < 2 || tok[0] != '.' {
		return "", nil, errForeign
	}
	switch tok[1] {
	case 'c':
		name, err := b64.DecodeString(tok[2:])
		if err != nil {
			return "", nil, errForeign
		}
		return string(name), data, nil
	case 'h':
		n, w := binary.Uvarint(data)
		if w <= 0 || uint64(len(data)-w) < n {
			return "", nil, errForeign
		}
		name := data[w : w+int(n)]
		sum := sha256.Sum256(name)
		if hex.EncodeToString(sum[:]) != tok[2:] {
			return "", nil, errForeign
		}
		return string(name), data[w+int(n):], nil
	}
	return "", nil, errForeign
}

// validPrefix reports whether p can start subjects: dot-separated
// non-empty tokens without wildcards, whitespace or control characters.
func validPrefix(p string) bool {
	if p == "" {
		return false
	}
	for _, tok := range strings.Split(p, ".") {
		if tok == "" || tok == "*" || tok == ">" {
			return false
		}
		for _, r := range tok {
			if r <= ' ' || r == 0x7f || r == '*' || r == '>' {
				return false
			}
		}
	}
	return true
}
