package auth

import (
	"fmt"
	"unicode/utf16"
)

// v8JSONError returns the message V8's JSON.parse (Node 20) gives for the
// invalid JSON text src, which the reference reports as an AuthTokenError
// when a `typ: JWT` token's payload does not parse. It walks src as V8's
// parser does; goErr (Go's verdict) is the fallback should the two
// disagree, e.g. on nesting deeper than encoding/json allows.
func v8JSONError(src []byte, goErr error) string {
	p := &v8parser{s: utf16.Encode([]rune(string(src)))}
	if msg := p.parse(); msg != "" {
		return msg
	}
	return goErr.Error()
}

// v8parser validates JSON over UTF-16 code units, reporting the first error
// with V8's message and position. Its methods return "" on success.
type v8parser struct {
	s   []uint16
	pos int
}

const v8EOS = -1

func (p *v8parser) peek() int {
	if p.pos >= len(p.s) {
		return v8EOS
	}
	return int(p.s[p.pos])
}

func (p *v8parser) skipSpace() {
	for p.pos < len(p.s) {
		switch p.s[p.pos] {
		case ' ', '\t', '\n', '\r':
			p.pos++
		default:
			return
		}
	}
}

func (p *v8parser) parse() string {
	if msg := p.value(); msg != "" {
		return msg
	}
	p.skipSpace()
	if p.peek() != v8EOS {
		return fmt.Sprintf("Unexpected non-whitespace character after JSON at position %d", p.pos)
	}
	return ""
}

func (p *v8parser) at(msg string) string {
	return fmt.Sprintf("%s in JSON at position %d", msg, p.pos)
}

// unexpected is V8's message for an unexpected token at p.pos when the
// parser has no more specific one.
func (p *v8parser) unexpected() string {
	c := p.peek()
	switch {
	case c == v8EOS:
		return "Unexpected end of JSON input"
	case c == '-' || '0' <= c && c <= '9':
		return p.at("Unexpected number")
	case c == '"':
		return p.at("Unexpected string")
	}
	const context = 10 // V8's kMaxContextCharacters
	tok := string(utf16.Decode(p.s[p.pos : p.pos+1]))
	n := len(p.s)
	if n < 2*context+1 {
		return fmt.Sprintf("Unexpected token '%s', \"%s\" is not valid JSON", tok, p.text(0, n))
	}
	switch {
	case p.pos < context:
		return fmt.Sprintf("Unexpected token '%s', \"%s\"... is not valid JSON", tok, p.text(0, p.pos+context))
	case p.pos < n-context:
		return fmt.Sprintf("Unexpected token '%s', ...\"%s\"... is not valid JSON", tok, p.text(p.pos-context, p.pos+context))
	default:
		return fmt.Sprintf("Unexpected token '%s', ...\"%s\" is not valid JSON", tok, p.text(p.pos-context, n))
	}
}

func (p *v8parser) text(i, j int) string { return string(utf16.Decode(p.s[i:j])) }

func (p *v8parser) value() string {
	p.skipSpace()
	switch c := p.peek(); {
	case c == '{':
		return p.object()
	case c == '[':
		return p.array()
	case c == '"':
		return p.string()
	case c == '-' || '0' <= c && c <= '9':
		return p.number()
	case c == 't':
		return p.literal("true")
	case c == 'f':
		return p.literal("false")
	case c == 'n':
		return p.literal("null")
	}
	return p.unexpected()
}

func (p *v8parser) object() string {
	p.pos++ // {
	p.skipSpace()
	if p.peek() == '}' {
		p.pos++
		return ""
	}
	first := true
	for {
		p.skipSpace()
		if p.peek() != '"' {
			if first {
				return p.at("Expected property name or '}'")
			}
			return p.at("Expected double-quoted property name")
		}
		if msg := p.string(); msg != "" {
			return msg
		}
		p.skipSpace()
		if p.peek() != ':' {
			// V8 words this only for the first property.
			if first {
				return p.at("Expected ':' after property name")
			}
			return p.unexpected()
		}
		first = false
		p.pos++
		if msg := p.value(); msg != "" {
			return msg
		}
		p.skipSpace()
		switch p.peek() {
		case ',':
			p.pos++
		case '}':
			p.pos++
			return ""
		default:
			return p.at("Expected ',' or '}' after property value")
		}
	}
}

func (p *v8parser) array() string {
	p.pos++ // [
	p.skipSpace()
	if p.peek() == ']' {
		p.pos++
		return ""
	}
	for {
		if msg := p.value(); msg != "" {
			return msg
		}
		p.skipSpace()
		switch p.peek() {
		case ',':
			p.pos++
		case ']':
			p.pos++
			return ""
		default:
			return p.at("Expected ',' or ']' after array element")
		}
	}
}

func (p *v8parser) string() string {
	p.pos++ // opening quote
	for {
		c := p.peek()
		switch {
		case c == v8EOS:
			return p.at("Unterminated string")
		case c == '"':
			p.pos++
			return ""
		case c < 0x20:
			return p.at("Bad control character in string literal")
		case c == '\\':
			p.pos++
			switch p.peek() {
			case v8EOS:
				return "Unexpected end of JSON input"
			case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
				p.pos++
			case 'u':
				p.pos++
				for range 4 {
					if !isHex(p.peek()) {
						return p.at("Bad Unicode escape")
					}
					p.pos++
				}
			default:
				if p.peek() >= 0x100 { // not in V8's escape table
					return p.unexpected()
				}
				return p.at("Bad escaped character")
			}
		default:
			p.pos++
		}
	}
}

func isHex(c int) bool {
	return '0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F'
}

func isDigit(c int) bool { return '0' <= c && c <= '9' }

func (p *v8parser) number() string {
	if p.peek() == '-' {
		p.pos++
		if !isDigit(p.peek()) {
			return p.at("No number after minus sign")
		}
	}
	if p.peek() == '0' {
		p.pos++
		if isDigit(p.peek()) {
			return p.at("Unexpected number")
		}
	} else {
		for isDigit(p.peek()) {
			p.pos++
		}
	}
	if p.peek() == '.' {
		p.pos++
		if !isDigit(p.peek()) {
			return p.at("Unterminated fractional number")
		}
		for isDigit(p.peek()) {
			p.pos++
		}
	}
	if c := p.peek(); c == 'e' || c == 'E' {
		p.pos++
		if c := p.peek(); c == '+' || c == '-' {
			p.pos++
		}
		if !isDigit(p.peek()) {
			return p.at("Exponent part is missing a number")
		}
		for isDigit(p.peek()) {
			p.pos++
		}
	}
	return ""
}

func (p *v8parser) literal(word string) string {
	for i := 0; i < len(word); i++ {
		if p.peek() != int(word[i]) {
			return p.unexpected()
		}
		p.pos++
	}
	return ""
}
