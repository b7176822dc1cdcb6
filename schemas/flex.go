package schemas

import (
	"bytes"
	"encoding/json"
	"fmt"
	"unicode/utf8"
)

// FlexString holds a JSON value that may arrive as a string or as a number
// (Talkable's subtotal, ids, order numbers). Numbers keep their exact text:
// a Shopify id above 2^53 or a money amount is never routed through a float.
type FlexString string

// UnmarshalJSON accepts a string, a number, or null (empty).
func (f *FlexString) UnmarshalJSON(b []byte) error {
	b = bytes.TrimSpace(b)
	switch {
	case len(b) == 0 || bytes.Equal(b, []byte("null")):
		*f = ""
	case b[0] == '"':
		if s, ok := plainString(b); ok {
			*f = FlexString(s)
			return nil
		}
		var s string
		if err := json.Unmarshal(b, &s); err != nil {
			return err
		}
		*f = FlexString(s)
	case b[0] == '-' || (b[0] >= '0' && b[0] <= '9'):
		if isJSONNumber(b) {
			*f = FlexString(b)
			return nil
		}
		var n json.Number
		if err := json.Unmarshal(b, &n); err != nil {
			return err
		}
		*f = FlexString(n.String())
	default:
		return fmt.Errorf("want a string or a number, got %.20s", b)
	}
	return nil
}

// FlexStrings holds a value that may be a string (possibly comma-separated),
// an array of strings, or null: Talkable's coupon_code.
type FlexStrings []string

// UnmarshalJSON accepts "A,B", ["A","B"] or null.
func (f *FlexStrings) UnmarshalJSON(b []byte) error {
	b = bytes.TrimSpace(b)
	switch {
	case len(b) == 0 || bytes.Equal(b, []byte("null")):
		*f = nil
		return nil
	case b[0] == '[':
		var xs []FlexString
		if err := json.Unmarshal(b, &xs); err != nil {
			return err
		}
		out := make([]string, 0, len(xs))
		for _, x := range xs {
			out = appendCodes(out, string(x))
		}
		*f = out
		return nil
	default:
		var s FlexString
		if err := json.Unmarshal(b, &s); err != nil {
			return err
		}
		*f = appendCodes(nil, string(s))
		return nil
	}
}

func appendCodes(dst []string, s string) []string {
	for _, part := range bytes.Split([]byte(s), []byte(",")) {
		if p := string(bytes.TrimSpace(part)); p != "" {
			dst = append(dst, p)
		}
	}
	return dst
}

// plainString is the common JSON string literal the standard library would
// copy as is: no escapes, no control characters, valid UTF-8 (it turns
// invalid bytes into U+FFFD, so those take the slow path).
func plainString(b []byte) (string, bool) {
	if len(b) < 2 || b[len(b)-1] != '"' {
		return "", false
	}
	in := b[1 : len(b)-1]
	ascii := true
	for _, c := range in {
		switch {
		case c == '\\' || c == '"' || c < 0x20:
			return "", false
		case c >= 0x80:
			ascii = false
		}
	}
	if !ascii && !utf8.Valid(in) {
		return "", false
	}
	return string(in), true
}

// isJSONNumber checks b against JSON's number grammar:
// -?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?
func isJSONNumber(b []byte) bool {
	i := 0
	if i < len(b) && b[i] == '-' {
		i++
	}
	digits := func() int {
		n := 0
		for i < len(b) && b[i] >= '0' && b[i] <= '9' {
			i++
			n++
		}
		return n
	}
	switch {
	case i < len(b) && b[i] == '0':
		i++
	case digits() == 0:
		return false
	}
	if i < len(b) && b[i] == '.' {
		i++
		if digits() == 0 {
			return false
		}
	}
	if i < len(b) && (b[i] == 'e' || b[i] == 'E') {
		i++
		if i < len(b) && (b[i] == '+' || b[i] == '-') {
			i++
		}
		if digits() == 0 {
			return false
		}
	}
	return i == len(b)
}
