package schemas

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"math/bits"
	"strings"
)

// ShopifyOrderKey returns the order number of an orders/create body for a
// site's order_key mode: the same value, and the same refusal of a body
// without a usable id, as ParseShopifyOrder followed by OrderKeyValue, but
// without decoding the body. It checks that the whole body is well-formed
// JSON (exactly as json.Valid does) and reads only the top-level "id",
// "order_number" and "name" members, so the ingest pays for one pass over the
// bytes and no allocation per line item.
//
// Whenever ParseShopifyOrder(body) and OrderKeyValue(mode) succeed,
// ShopifyOrderKey succeeds with the same value (FuzzShopifyOrderKey checks
// this). The converse does not hold: a body whose other fields have the
// wrong types passes here and fails the full parse, which the join reports.
// Member names match as encoding/json matches them (case-insensitively; the
// last duplicate wins), so the key never disagrees with the join's decode.
func ShopifyOrderKey(body []byte, mode OrderKey) (string, error) {
	v, _, err := ShopifyOrderKeys(body, mode)
	return v, err
}

// ShopifyOrderKeys is ShopifyOrderKey that also returns the order's id (a
// decimal string), from the same single pass: the ingest indexes orders of
// order_number and order_name sites by id, for their refunds.
func ShopifyOrderKeys(body []byte, mode OrderKey) (orderNumber, id string, err error) {
	var spans [3]jsonSpan // id, order_number, name
	if err := scanTopLevel(body, spans[:]); err != nil {
		return "", "", fmt.Errorf("cannot decode Shopify order: %w", err)
	}
	id, err = spans[0].flexString()
	if err != nil {
		return "", "", fmt.Errorf("cannot decode Shopify order: id: %w", err)
	}
	if !isDecimalID(id) {
		return "", "", &FieldError{"id", "missing or not a positive integer"}
	}
	var v string
	switch mode {
	case OrderKeyID, "":
		v = id
	case OrderKeyNumber:
		if v, err = spans[1].flexString(); err != nil {
			return "", "", fmt.Errorf("cannot decode Shopify order: order_number: %w", err)
		}
	case OrderKeyName:
		if v, err = spans[2].plainString(); err != nil {
			return "", "", fmt.Errorf("cannot decode Shopify order: name: %w", err)
		}
	default:
		return "", "", fmt.Errorf("unknown order_key %q", mode)
	}
	v = NormalizeOrderNumber(mode, v)
	if v == "" {
		return "", "", &FieldError{string(mode), "missing in the Shopify order"}
	}
	return v, id, nil
}

// keyMembers are the top-level member names ShopifyOrderKey reads, in the
// order of its spans.
var keyMembers = [3]string{"id", "order_number", "name"}

// jsonSpan is the raw text of one member value. For "name", encoding/json
// leaves a string field unchanged on null, so a null only counts when no
// string came before it: lastNonNull keeps the string that null must not
// erase.
type jsonSpan struct {
	raw         []byte
	lastNonNull []byte
}

func (s *jsonSpan) set(v []byte) {
	s.raw = v
	if !bytes.Equal(v, nullLiteral) {
		s.lastNonNull = v
	}
}

var nullLiteral = []byte("null")

// flexString decodes as FlexString.UnmarshalJSON does.
func (s *jsonSpan) flexString() (string, error) { return flexText(s.raw) }

// plainString decodes like encoding/json into a string field: null keeps
// the earlier value, anything but a string is a type error.
func (s *jsonSpan) plainString() (string, error) {
	b := s.lastNonNull
	switch {
	case len(b) == 0:
		return "", nil
	case b[0] == '"':
		return unquote(b)
	}
	return "", fmt.Errorf("want a string, got %.20s", b)
}

// unquote decodes a JSON string literal. The common case (printable ASCII,
// no escapes) costs one copy; anything else goes through encoding/json, so
// escapes and invalid UTF-8 decode, and a malformed literal fails, exactly
// as the join sees them.
func unquote(b []byte) (string, error) {
	if len(b) < 2 || b[len(b)-1] != '"' {
		return "", fmt.Errorf("invalid string %.20s", b)
	}
	in := b[1 : len(b)-1]
	simple := true
	for _, c := range in {
		if c == '\\' || c == '"' || c < 0x20 || c >= 0x80 {
			simple = false
			break
		}
	}
	if simple {
		return string(in), nil
	}
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		return "", err
	}
	return s, nil
}

// maxJSONDepth is encoding/json's nesting limit: a deeper body is invalid
// for json.Valid, so it is invalid here too.
const maxJSONDepth = 10000

var errSyntax = errors.New("invalid JSON")

// The scanner below validates a JSON text exactly as json.Valid does. It is
// written as plain functions of (b, i) that return the index after what they
// skipped and whether it was well-formed, rather than as methods updating a
// shared cursor: the index then stays in a register instead of being stored
// and reloaded through a pointer around every byte, which measurably pays
// on an order's many short tokens (about a fifth of the scan's time).

// scanTopLevel validates body, which must be one JSON object, and records
// the raw values of the top-level members named in keyMembers.
func scanTopLevel(body []byte, spans []jsonSpan) error {
	b := body
	i := skipWS(b, 0)
	if i >= len(b) || b[i] != '{' {
		if j, ok := skipValue(b, i, 0); !ok || skipWS(b, j) != len(b) {
			return errSyntax
		}
		return ErrNotJSONObject
	}
	i = skipWS(b, i+1)
	if i < len(b) && b[i] == '}' {
		return atEnd(b, i+1)
	}
	for {
		ks := i
		var simpleKey, ok bool
		if i, simpleKey, ok = skipString(b, i); !ok {
			return errSyntax
		}
		key := b[ks:i]
		if i = skipWS(b, i); i >= len(b) || b[i] != ':' {
			return errSyntax
		}
		vs := skipWS(b, i+1)
		if i, ok = skipValue(b, vs, 1); !ok {
			return errSyntax
		}
		if idx := memberIndex(key, simpleKey); idx >= 0 {
			spans[idx].set(b[vs:i])
		}
		if i = skipWS(b, i); i >= len(b) {
			return errSyntax
		}
		switch b[i] {
		case ',':
			i = skipWS(b, i+1)
		case '}':
			return atEnd(b, i+1)
		default:
			return errSyntax
		}
	}
}

// memberIndex matches a raw key literal against keyMembers as encoding/json
// matches member names to fields (unquoted, case-insensitively).
func memberIndex(rawKey []byte, simple bool) int {
	in := rawKey[1 : len(rawKey)-1]
	if simple {
		// Plain ASCII folds only to ASCII of the same length: no allocation
		// for the many member names of an order.
		for i, m := range keyMembers {
			if len(in) == len(m) && asciiEqualFold(in, m) {
				return i
			}
		}
		return -1
	}
	name, err := unquote(rawKey)
	if err != nil {
		return -1
	}
	for i, m := range keyMembers {
		if strings.EqualFold(name, m) {
			return i
		}
	}
	return -1
}

func asciiEqualFold(b []byte, s string) bool {
	for i := 0; i < len(b); i++ {
		x, y := b[i], s[i]
		if 'A' <= x && x <= 'Z' {
			x += 'a' - 'A'
		}
		if 'A' <= y && y <= 'Z' {
			y += 'a' - 'A'
		}
		if x != y {
			return false
		}
	}
	return true
}

// atEnd accepts only trailing whitespace after index i.
func atEnd(b []byte, i int) error {
	if skipWS(b, i) != len(b) {
		return errSyntax
	}
	return nil
}

// skipWS returns the index of the first non-whitespace byte at or after i.
// Shopify sends compact JSON, so b[i] is nearly always not whitespace: that
// test is small enough to be inlined at every call, and only real
// whitespace pays for the call to the loop.
func skipWS(b []byte, i int) int {
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

// skipValue skips the value starting at b[i]; depth counts the containers
// already open.
func skipValue(b []byte, i, depth int) (int, bool) {
	if i >= len(b) {
		return i, false
	}
	switch c := b[i]; {
	case c == '"':
		end, _, ok := skipString(b, i)
		return end, ok
	case c == '{':
		return skipObject(b, i, depth+1)
	case c == '[':
		return skipArray(b, i, depth+1)
	case c == '-' || (c >= '0' && c <= '9'):
		return skipNumber(b, i)
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
	if depth > maxJSONDepth {
		return i, false
	}
	i = skipWS(b, i+1)
	if i < len(b) && b[i] == '}' {
		return i + 1, true
	}
	for {
		var ok bool
		if i, _, ok = skipString(b, i); !ok {
			return i, false
		}
		if i = skipWS(b, i); i >= len(b) || b[i] != ':' {
			return i, false
		}
		if i, ok = skipValue(b, skipWS(b, i+1), depth); !ok {
			return i, false
		}
		if i = skipWS(b, i); i >= len(b) {
			return i, false
		}
		switch b[i] {
		case ',':
			i = skipWS(b, i+1)
		case '}':
			return i + 1, true
		default:
			return i, false
		}
	}
}

// skipArray skips the array whose '[' is b[i]; depth counts it.
func skipArray(b []byte, i, depth int) (int, bool) {
	if depth > maxJSONDepth {
		return i, false
	}
	i = skipWS(b, i+1)
	if i < len(b) && b[i] == ']' {
		return i + 1, true
	}
	for {
		var ok bool
		if i, ok = skipValue(b, i, depth); !ok {
			return i, false
		}
		if i = skipWS(b, i); i >= len(b) {
			return i, false
		}
		switch b[i] {
		case ',':
			i = skipWS(b, i+1)
		case ']':
			return i + 1, true
		default:
			return i, false
		}
	}
}

// skipString skips the string literal starting at b[i] and reports whether
// it is plain ASCII without escapes (its text is then its value). Strings
// are most of an order's bytes, so runs of ordinary characters are skipped
// eight bytes at a time (see JSONStringStops), and only the byte that stops a
// run goes through the switch below; the last few bytes of the body, where
// a whole word cannot be loaded, are skipped a byte at a time.
func skipString(b []byte, i int) (end int, simple, ok bool) {
	if i >= len(b) || b[i] != '"' {
		return i, false, false
	}
	i++
	simple = true
	for {
		// Skip whole words of ordinary bytes. Once the string is known not
		// to be simple, non-ASCII bytes are ordinary too: json.Valid does not
		// check UTF-8, so a unicode title is skipped at word speed.
		for {
			if len(b)-i < 8 {
				// Near the end of the body: a byte at a time.
				for i < len(b) && !strStop[b[i]] {
					i++
				}
				if i >= len(b) {
					return i, false, false
				}
				break
			}
			if m := JSONStringStops(binary.LittleEndian.Uint64(b[i:]), simple); m != 0 {
				// The lowest flagged byte is the first stop byte.
				i += bits.TrailingZeros64(m) >> 3
				break
			}
			i += 8
		}
		// b[i] is a stop byte.
		switch c := b[i]; {
		case c == '"':
			return i + 1, simple, true
		case c < 0x20:
			return i, false, false
		case c == '\\':
			simple = false
			i++
			if i >= len(b) {
				return i, false, false
			}
			switch b[i] {
			case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
				i++
			case 'u':
				i++
				if len(b)-i < 4 {
					return i, false, false
				}
				for _, h := range b[i : i+4] {
					if !isHex(h) {
						return i, false, false
					}
				}
				i += 4
			default:
				return i, false, false
			}
		default: // c >= 0x80: valid, but the string is not simple
			simple = false
			i++
		}
	}
}

// JSONStringStops flags, in the high bit of each byte, the bytes of the
// little-endian word w that end a run of ordinary JSON string characters: a
// control character (< 0x20), '"', '\\', and, with nonASCII, any byte >=
// 0x80. The ingest's key scan and the sink's purchase decoder both skip
// string runs a word at a time with it. These are the classic
// "haszero"/"hasless" word tricks: x-0x01 per byte sets a byte's high bit
// when the byte was zero, x-0x20 when it was below 0x20, and the borrow
// that such a byte causes can only set false flags in higher bytes, so the
// lowest flag is always exact (callers only look at the lowest).
//
// The subtractions also flag every byte >= 0x80 (one of x-0x20 and
// (x^'"')-1 keeps its high bit), which is what nonASCII wants. Each byte's
// high bit in w^'"' and w^'\\' is the one in w, so a single &^w drops those
// flags for all three tests (and a byte >= 0x80 never borrows).
func JSONStringStops(w uint64, nonASCII bool) uint64 {
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

// strStop marks the bytes that end a run of ordinary string characters:
// the closing quote, an escape, a control character (invalid), and
// non-ASCII bytes (valid, but the string is then not simple).
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

func isHex(c byte) bool {
	return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F')
}

// skipNumber skips -?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?
func skipNumber(b []byte, i int) (int, bool) {
	if i < len(b) && b[i] == '-' {
		i++
	}
	switch {
	case i >= len(b):
		return i, false
	case b[i] == '0':
		i++
	case b[i] >= '1' && b[i] <= '9':
		i = skipDigits(b, i)
	default:
		return i, false
	}
	if i < len(b) && b[i] == '.' {
		j := skipDigits(b, i+1)
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
		j := skipDigits(b, i)
		if j == i {
			return j, false
		}
		i = j
	}
	return i, true
}

// skipDigits returns the index of the first non-digit at or after i.
func skipDigits(b []byte, i int) int {
	for i < len(b) && b[i] >= '0' && b[i] <= '9' {
		i++
	}
	return i
}

// ShopifyOrderIdentifiers reads an orders/create body's three identifiers
// (id, order_number, name) in one pass, decoded as ShopifyOrderKey decodes
// them and left unnormalised; it fails as ShopifyOrderKey does on a body
// without a usable id.
func ShopifyOrderIdentifiers(body []byte) (id, number, name string, err error) {
	var spans [3]jsonSpan
	if err := scanTopLevel(body, spans[:]); err != nil {
		return "", "", "", fmt.Errorf("cannot decode Shopify order: %w", err)
	}
	if id, err = spans[0].flexString(); err != nil {
		return "", "", "", fmt.Errorf("cannot decode Shopify order: id: %w", err)
	}
	if !isDecimalID(id) {
		return "", "", "", &FieldError{"id", "missing or not a positive integer"}
	}
	if number, err = spans[1].flexString(); err != nil {
		return "", "", "", fmt.Errorf("cannot decode Shopify order: order_number: %w", err)
	}
	if name, err = spans[2].plainString(); err != nil {
		return "", "", "", fmt.Errorf("cannot decode Shopify order: name: %w", err)
	}
	return id, number, name, nil
}
