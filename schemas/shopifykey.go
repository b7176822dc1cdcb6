package schemas

import (
	"bytes"
	"errors"
	"fmt"
	"strings"

	"purchasesync/schemas/jsonscan"
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
		return jsonscan.Unquote(b)
	}
	return "", fmt.Errorf("want a string, got %.20s", b)
}

var errSyntax = errors.New("invalid JSON")

// scanTopLevel validates body, which must be one JSON object, exactly as
// json.Valid does (the lexing is jsonscan's), and records the raw values of
// the top-level members named in keyMembers.
func scanTopLevel(body []byte, spans []jsonSpan) error {
	b := body
	i := jsonscan.SkipWS(b, 0)
	if i >= len(b) || b[i] != '{' {
		if j, ok := jsonscan.SkipValue(b, i, 0); !ok || jsonscan.SkipWS(b, j) != len(b) {
			return errSyntax
		}
		return ErrNotJSONObject
	}
	i = jsonscan.SkipWS(b, i+1)
	if i < len(b) && b[i] == '}' {
		return atEnd(b, i+1)
	}
	for {
		ks := i
		var keyFlags jsonscan.Flags
		var ok bool
		if i, keyFlags, ok = jsonscan.String(b, i); !ok {
			return errSyntax
		}
		key := b[ks:i]
		if i = jsonscan.SkipWS(b, i); i >= len(b) || b[i] != ':' {
			return errSyntax
		}
		vs := jsonscan.SkipWS(b, i+1)
		if i, ok = jsonscan.SkipValue(b, vs, 1); !ok {
			return errSyntax
		}
		if idx := memberIndex(key, keyFlags == 0); idx >= 0 {
			spans[idx].set(b[vs:i])
		}
		if i = jsonscan.SkipWS(b, i); i >= len(b) {
			return errSyntax
		}
		switch b[i] {
		case ',':
			i = jsonscan.SkipWS(b, i+1)
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
	name, err := jsonscan.Unquote(rawKey)
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
	if jsonscan.SkipWS(b, i) != len(b) {
		return errSyntax
	}
	return nil
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
