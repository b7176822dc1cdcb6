package schemas

import (
	"bytes"
	"encoding/json"
	"fmt"

	"purchasesync/schemas/jsonscan"
)

// FlexString holds a JSON value that may arrive as a string or as a number
// (Talkable's subtotal, ids, order numbers). Numbers keep their exact text:
// a Shopify id above 2^53 or a money amount is never routed through a float.
type FlexString string

// UnmarshalJSON accepts a string, a number, or null (empty).
func (f *FlexString) UnmarshalJSON(b []byte) error {
	v, err := flexText(bytes.TrimSpace(b))
	if err != nil {
		return err
	}
	*f = FlexString(v)
	return nil
}

// flexText decodes a FlexString's JSON value; the raw-body parsers and the
// ingest's key scanner (jsonSpan.flexString) both decode through it. A
// number keeps its text; a string is unquoted as encoding/json does.
func flexText(b []byte) (string, error) {
	switch {
	case len(b) == 0 || bytes.Equal(b, nullLiteral):
		return "", nil
	case b[0] == '"':
		return jsonscan.Unquote(b)
	case b[0] == '-' || (b[0] >= '0' && b[0] <= '9'):
		if end, ok := jsonscan.Number(b, 0); !ok || end != len(b) {
			return "", fmt.Errorf("invalid number %.20s", b)
		}
		return string(b), nil
	}
	return "", fmt.Errorf("want a string or a number, got %.20s", b)
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
