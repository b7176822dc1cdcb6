package schemas

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
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
	var spans [3]jsonSpan // id, order_number, name
	if err := scanTopLevel(body, spans[:]); err != nil {
		return "", fmt.Errorf("cannot decode Shopify order: %w", err)
	}
	id, err := spans[0].flexString()
	if err != nil {
		return "", fmt.Errorf("cannot decode Shopify order: id: %w", err)
	}
	if !isDecimalID(id) {
		return "", &FieldError{"id", "missing or not a positive integer"}
	}
	var v string
	switch mode {
	case OrderKeyID, "":
		v = id
	case OrderKeyNumber:
		if v, err = spans[1].flexString(); err != nil {
			return "", fmt.Errorf("cannot decode Shopify order: order_number: %w", err)
		}
	case OrderKeyName:
		if v, err = spans[2].plainString(); err != nil {
			return "", fmt.Errorf("cannot decode Shopify order: name: %w", err)
		}
	default:
		return "", fmt.Errorf("unknown order_key %q", mode)
	}
	v = NormalizeOrderNumber(mode, v)
	if v == "" {
		return "", &FieldError{string(mode), "missing in the Shopify order"}
	}
	return v, nil
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

// flexString decodes like FlexString.UnmarshalJSON.
func (s *jsonSpan) flexString() (string, error) {
	b := s.raw
	switch {
	case len(b) == 0 || bytes.Equal(b, nullLiteral):
		return "", nil
	case b[0] == '"':
		return unquote(b)
	case b[0] == '-' || (b[0] >= '0' && b[0] <= '9'):
		return string(b), nil // validated by the scanner: the json.Number text
	}
	return "", fmt.Errorf("want a string or a number, got %.20s", b)
}

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

// unquote decodes a JSON string literal that the scanner validated. The
// common case (ASCII, no escapes) costs one copy; anything else goes through
// encoding/json so escapes and invalid UTF-8 decode exactly as the join sees
// them.
func unquote(b []byte) (string, error) {
	in := b[1 : len(b)-1]
	simple := true
	for _, c := range in {
		if c == '\\' || c >= 0x80 {
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

// jsonScan walks a JSON text, validating it exactly as json.Valid does.
type jsonScan struct {
	b []byte
	i int
}

// scanTopLevel validates body, which must be one JSON object, and records
// the raw values of the top-level members named in keyMembers.
func scanTopLevel(body []byte, spans []jsonSpan) error {
	s := jsonScan{b: body}
	s.ws()
	if s.i >= len(s.b) || s.b[s.i] != '{' {
		if err := s.value(0); err != nil || s.end() != nil {
			return errSyntax
		}
		return ErrNotJSONObject
	}
	s.i++
	s.ws()
	if s.peek() == '}' {
		s.i++
		return s.end()
	}
	for {
		ks := s.i
		simpleKey, err := s.str()
		if err != nil {
			return err
		}
		key := s.b[ks:s.i]
		s.ws()
		if s.peek() != ':' {
			return errSyntax
		}
		s.i++
		s.ws()
		vs := s.i
		if err := s.value(1); err != nil {
			return err
		}
		if idx := memberIndex(key, simpleKey); idx >= 0 {
			spans[idx].set(s.b[vs:s.i])
		}
		s.ws()
		switch s.peek() {
		case ',':
			s.i++
			s.ws()
		case '}':
			s.i++
			return s.end()
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

func (s *jsonScan) peek() byte {
	if s.i < len(s.b) {
		return s.b[s.i]
	}
	return 0
}

func (s *jsonScan) ws() {
	for s.i < len(s.b) {
		switch s.b[s.i] {
		case ' ', '\t', '\n', '\r':
			s.i++
		default:
			return
		}
	}
}

// end accepts only trailing whitespace.
func (s *jsonScan) end() error {
	s.ws()
	if s.i != len(s.b) {
		return errSyntax
	}
	return nil
}

// value skips one value; depth counts the containers already open.
func (s *jsonScan) value(depth int) error {
	switch c := s.peek(); {
	case c == '{':
		return s.object(depth + 1)
	case c == '[':
		return s.array(depth + 1)
	case c == '"':
		_, err := s.str()
		return err
	case c == '-' || (c >= '0' && c <= '9'):
		return s.number()
	case c == 't':
		return s.literal("true")
	case c == 'f':
		return s.literal("false")
	case c == 'n':
		return s.literal("null")
	}
	return errSyntax
}

func (s *jsonScan) literal(lit string) error {
	if len(s.b)-s.i < len(lit) || string(s.b[s.i:s.i+len(lit)]) != lit {
		return errSyntax
	}
	s.i += len(lit)
	return nil
}

func (s *jsonScan) object(depth int) error {
	if depth > maxJSONDepth {
		return errSyntax
	}
	s.i++ // '{'
	s.ws()
	if s.peek() == '}' {
		s.i++
		return nil
	}
	for {
		if _, err := s.str(); err != nil {
			return err
		}
		s.ws()
		if s.peek() != ':' {
			return errSyntax
		}
		s.i++
		s.ws()
		if err := s.value(depth); err != nil {
			return err
		}
		s.ws()
		switch s.peek() {
		case ',':
			s.i++
			s.ws()
		case '}':
			s.i++
			return nil
		default:
			return errSyntax
		}
	}
}

func (s *jsonScan) array(depth int) error {
	if depth > maxJSONDepth {
		return errSyntax
	}
	s.i++ // '['
	s.ws()
	if s.peek() == ']' {
		s.i++
		return nil
	}
	for {
		if err := s.value(depth); err != nil {
			return err
		}
		s.ws()
		switch s.peek() {
		case ',':
			s.i++
			s.ws()
		case ']':
			s.i++
			return nil
		default:
			return errSyntax
		}
	}
}

// str skips a string literal and reports whether it is plain ASCII without
// escapes (its text is then its value). Strings are most of an order's
// bytes, so runs of ordinary characters are skipped by a table lookup per
// byte, with one branch.
func (s *jsonScan) str() (simple bool, err error) {
	if s.peek() != '"' {
		return false, errSyntax
	}
	b := s.b
	i := s.i + 1
	simple = true
	for {
		for i < len(b) && !strStop[b[i]] {
			i++
		}
		if i >= len(b) {
			return false, errSyntax
		}
		switch c := b[i]; {
		case c == '"':
			s.i = i + 1
			return simple, nil
		case c < 0x20:
			return false, errSyntax
		case c == '\\':
			simple = false
			i++
			if i >= len(b) {
				return false, errSyntax
			}
			switch b[i] {
			case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
				i++
			case 'u':
				i++
				if len(b)-i < 4 {
					return false, errSyntax
				}
				for _, h := range b[i : i+4] {
					if !isHex(h) {
						return false, errSyntax
					}
				}
				i += 4
			default:
				return false, errSyntax
			}
		default:
			if c >= 0x80 {
				simple = false
			}
			i++
		}
	}
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

// number skips -?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?
func (s *jsonScan) number() error {
	if s.peek() == '-' {
		s.i++
	}
	switch c := s.peek(); {
	case c == '0':
		s.i++
	case c >= '1' && c <= '9':
		s.digits()
	default:
		return errSyntax
	}
	if s.peek() == '.' {
		s.i++
		if n := s.digits(); n == 0 {
			return errSyntax
		}
	}
	if c := s.peek(); c == 'e' || c == 'E' {
		s.i++
		if c := s.peek(); c == '+' || c == '-' {
			s.i++
		}
		if n := s.digits(); n == 0 {
			return errSyntax
		}
	}
	return nil
}

func (s *jsonScan) digits() int {
	start := s.i
	for s.i < len(s.b) && s.b[s.i] >= '0' && s.b[s.i] <= '9' {
		s.i++
	}
	return s.i - start
}
