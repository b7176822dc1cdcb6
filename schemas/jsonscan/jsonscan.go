// Package jsonscan is the lexing core of the project's two hand-written JSON
// readers: the ingest's key scanner (schemas.ShopifyOrderKey), which must
// accept exactly what json.Valid accepts, and the ClickHouse sink's
// purchases.v1 decoder, which must decode exactly as encoding/json does or
// fall back to it. Both spend most of their time in string literals, so the
// word-at-a-time string scan, the unescaping and the number grammar live
// here once, guarded by one set of equivalence tests, instead of in each
// reader (and outside the contract package's exported surface).
//
// The functions take (b, i) and return the index after what they skipped,
// rather than updating a shared cursor: the index then stays in a register
// instead of being stored and reloaded through a pointer around every byte,
// which measurably pays on an order's many short tokens (about a fifth of the
// key scan's time). It is pure: no I/O, no allocation except in Unquote and
// Unescape.
package jsonscan

import (
	"encoding/binary"
	"encoding/json"
	"math/bits"
	"unicode/utf16"
	"unicode/utf8"
)

// MaxDepth is encoding/json's nesting limit: a deeper text is invalid for
// json.Valid, so it is invalid here too.
const MaxDepth = 10000

// SkipWS returns the index of the first non-whitespace byte at or after i.
// Our JSON is compact, so b[i] is nearly always not whitespace: that test is
// small enough to be inlined at every call, and only real whitespace pays
// for the call to the loop.
func SkipWS(b []byte, i int) int {
	if i < len(b) && b[i] > ' ' {
		return i
	}
	return skipWSLoop(b, i)
}

func skipWSLoop(b []byte, i int) int {
	for ; i < len(b); i++ {
		switch b[i] {
		case ' ', '\t', '\n', '\r':
		default:
			return i
		}
	}
	return i
}

// SkipValue skips the value starting at b[i] and reports whether it is
// well-formed as json.Valid judges; depth counts the containers already
// open.
func SkipValue(b []byte, i, depth int) (int, bool) {
	if i >= len(b) {
		return i, false
	}
	switch c := b[i]; {
	case c == '"':
		end, _, ok := String(b, i)
		return end, ok
	case c == '{':
		return skipObject(b, i, depth+1)
	case c == '[':
		return skipArray(b, i, depth+1)
	case c == '-' || (c >= '0' && c <= '9'):
		return Number(b, i)
	case c == 't':
		return skipLiteral(b, i, "true")
	case c == 'f':
		return skipLiteral(b, i, "false")
	case c == 'n':
		return skipLiteral(b, i, "null")
	}
	return i, false
}

func skipLiteral(b []byte, i int, lit string) (int, bool) {
	if len(b)-i < len(lit) || string(b[i:i+len(lit)]) != lit {
		return i, false
	}
	return i + len(lit), true
}

// skipObject skips the object whose '{' is b[i]; depth counts it.
func skipObject(b []byte, i, depth int) (int, bool) {
	if depth > MaxDepth {
		return i, false
	}
	i = SkipWS(b, i+1)
	if i < len(b) && b[i] == '}' {
		return i + 1, true
	}
	for {
		var ok bool
		if i, _, ok = String(b, i); !ok {
			return i, false
		}
		if i = SkipWS(b, i); i >= len(b) || b[i] != ':' {
			return i, false
		}
		if i, ok = SkipValue(b, SkipWS(b, i+1), depth); !ok {
			return i, false
		}
		if i = SkipWS(b, i); i >= len(b) {
			return i, false
		}
		switch b[i] {
		case ',':
			i = SkipWS(b, i+1)
		case '}':
			return i + 1, true
		default:
			return i, false
		}
	}
}

// skipArray skips the array whose '[' is b[i]; depth counts it.
func skipArray(b []byte, i, depth int) (int, bool) {
	if depth > MaxDepth {
		return i, false
	}
	i = SkipWS(b, i+1)
	if i < len(b) && b[i] == ']' {
		return i + 1, true
	}
	for {
		var ok bool
		if i, ok = SkipValue(b, i, depth); !ok {
			return i, false
		}
		if i = SkipWS(b, i); i >= len(b) {
			return i, false
		}
		switch b[i] {
		case ',':
			i = SkipWS(b, i+1)
		case ']':
			return i + 1, true
		default:
			return i, false
		}
	}
}

// Flags say what a string literal holds besides printable ASCII; a literal
// with none (0) is its own value, quotes aside.
type Flags uint8

const (
	NonASCII Flags = 1 << iota // a byte >= 0x80 (UTF-8 not checked: json.Valid does not)
	Escaped                    // a backslash escape
)

// String skips the string literal starting at b[i], reports whether it is
// well-formed as json.Valid judges (escapes checked, UTF-8 not), and what
// it holds. Strings are most of an order's and a purchase's bytes, so runs
// of ordinary characters are skipped eight bytes at a time (see stops), and
// only the byte that stops a run goes through the switch below; the last few
// bytes of b, where a whole word cannot be loaded, are skipped a byte at a
// time.
func String(b []byte, i int) (end int, flags Flags, ok bool) {
	if i >= len(b) || b[i] != '"' {
		return i, 0, false
	}
	i++
	for {
		// Skip whole words of ordinary bytes. Once a non-ASCII byte has been
		// flagged, the others are ordinary too, so a unicode title is
		// skipped at word speed.
		for {
			if len(b)-i < 8 {
				// Near the end of b: a byte at a time.
				for i < len(b) && !strStop[b[i]] {
					i++
				}
				if i >= len(b) {
					return i, 0, false
				}
				break
			}
			if m := stops(binary.LittleEndian.Uint64(b[i:]), flags&NonASCII == 0); m != 0 {
				// The lowest flagged byte is the first stop byte.
				i += bits.TrailingZeros64(m) >> 3
				break
			}
			i += 8
		}
		// b[i] is a stop byte.
		switch c := b[i]; {
		case c == '"':
			return i + 1, flags, true
		case c < 0x20:
			return i, 0, false
		case c == '\\':
			flags |= Escaped
			i++
			if i >= len(b) {
				return i, 0, false
			}
			switch b[i] {
			case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
				i++
			case 'u':
				i++
				if _, ok := hex4(b, i); !ok {
					return i, 0, false
				}
				i += 4
			default:
				return i, 0, false
			}
		default: // c >= 0x80
			flags |= NonASCII
			i++
		}
	}
}

// stops flags, in the high bit of each byte, the bytes of the little-endian
// word w that end a run of ordinary JSON string characters: a control
// character (< 0x20), '"', '\\', and, with nonASCII, any byte >= 0x80. These
// are the classic "haszero"/"hasless" word tricks: x-0x01 per byte sets a
// byte's high bit when the byte was zero, x-0x20 when it was below 0x20, and
// the borrow that such a byte causes can only set false flags in higher
// bytes, so the lowest flag is always exact (callers only look at the
// lowest).
//
// The subtractions also flag every byte >= 0x80 (one of x-0x20 and
// (x^'"')-1 keeps its high bit), which is what nonASCII wants. Each byte's
// high bit in w^'"' and w^'\\' is the one in w, so a single &^w drops those
// flags for all three tests (and a byte >= 0x80 never borrows).
func stops(w uint64, nonASCII bool) uint64 {
	const (
		lsb = 0x0101010101010101
		msb = 0x8080808080808080
	)
	t := (w - 0x20*lsb) | ((w ^ '"'*lsb) - lsb) | ((w ^ '\\'*lsb) - lsb)
	if nonASCII {
		return t & msb
	}
	return t &^ w & msb
}

// strStop marks the bytes that end a run of ordinary string characters in
// String's byte-at-a-time tail: the closing quote, an escape, a control
// character (invalid), and non-ASCII bytes (valid, but flagged).
var strStop = func() (t [256]bool) {
	for c := 0; c < 0x20; c++ {
		t[c] = true
	}
	for c := 0x80; c < 0x100; c++ {
		t[c] = true
	}
	t['"'], t['\\'] = true, true
	return t
}()

// hex4 decodes the four hex digits at b[i:].
func hex4(b []byte, i int) (rune, bool) {
	if len(b)-i < 4 {
		return 0, false
	}
	var r rune
	for _, c := range b[i : i+4] {
		switch {
		case c >= '0' && c <= '9':
			c -= '0'
		case c >= 'a' && c <= 'f':
			c -= 'a' - 10
		case c >= 'A' && c <= 'F':
			c -= 'A' - 10
		default:
			return 0, false
		}
		r = r<<4 | rune(c)
	}
	return r, true
}

// Number skips -?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?, JSON's number
// grammar, and reports whether one was there.
func Number(b []byte, i int) (int, bool) {
	if i < len(b) && b[i] == '-' {
		i++
	}
	switch {
	case i >= len(b):
		return i, false
	case b[i] == '0':
		i++
	case b[i] >= '1' && b[i] <= '9':
		i = Digits(b, i)
	default:
		return i, false
	}
	if i < len(b) && b[i] == '.' {
		j := Digits(b, i+1)
		if j == i+1 {
			return j, false
		}
		i = j
	}
	if i < len(b) && (b[i] == 'e' || b[i] == 'E') {
		i++
		if i < len(b) && (b[i] == '+' || b[i] == '-') {
			i++
		}
		j := Digits(b, i)
		if j == i {
			return j, false
		}
		i = j
	}
	return i, true
}

// Digits returns the index of the first non-digit at or after i.
func Digits(b []byte, i int) int {
	for i < len(b) && b[i] >= '0' && b[i] <= '9' {
		i++
	}
	return i
}

// Unquote decodes a JSON string literal (quotes included) exactly as
// encoding/json decodes it into a string, and fails where encoding/json
// fails. It checks the literal itself, so it is safe on one nobody
// validated. A literal without escapes costs one copy (and a UTF-8 check if
// it is not ASCII), one with escapes a pass of Unescape; only what encoding/json would repair (invalid UTF-8, a
// lone surrogate) or refuse goes through encoding/json.
func Unquote(lit []byte) (string, error) {
	if end, flags, ok := String(lit, 0); ok && end == len(lit) {
		in := lit[1 : len(lit)-1]
		switch {
		case flags == 0:
			return string(in), nil
		case flags&Escaped == 0:
			if utf8.Valid(in) {
				return string(in), nil
			}
		default:
			if s, ok := Unescape(in); ok {
				return s, nil
			}
		}
	}
	var s string
	if err := json.Unmarshal(lit, &s); err != nil {
		return "", err
	}
	return s, nil
}

// Unescape decodes the text between the quotes of a literal that String
// accepted, as encoding/json does. It reports false, instead of repairing,
// where encoding/json would put U+FFFD in place of invalid UTF-8 or of a
// lone surrogate: callers then ask encoding/json, which is rare enough.
func Unescape(s []byte) (string, bool) {
	if !utf8.Valid(s) {
		return "", false
	}
	out := make([]byte, 0, len(s))
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c != '\\' {
			out = append(out, c)
			continue
		}
		i++
		if i >= len(s) {
			return "", false
		}
		switch s[i] {
		case '"', '\\', '/':
			out = append(out, s[i])
		case 'b':
			out = append(out, '\b')
		case 'f':
			out = append(out, '\f')
		case 'n':
			out = append(out, '\n')
		case 'r':
			out = append(out, '\r')
		case 't':
			out = append(out, '\t')
		case 'u':
			r, ok := hex4(s, i+1)
			if !ok {
				return "", false
			}
			i += 4
			if utf16.IsSurrogate(r) {
				if len(s)-i < 7 || s[i+1] != '\\' || s[i+2] != 'u' {
					return "", false
				}
				r2, ok := hex4(s, i+3)
				if !ok {
					return "", false
				}
				if r = utf16.DecodeRune(r, r2); r == utf8.RuneError {
					return "", false
				}
				i += 6
			}
			out = utf8.AppendRune(out, r)
		default:
			return "", false
		}
	}
	return string(out), true
}
