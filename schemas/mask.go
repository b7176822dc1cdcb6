package schemas

import (
	"strings"
	"unicode/utf8"
)

// maxShownValue bounds a shown value: a message is for people, not a data dump.
const maxShownValue = 40

// MaskValue renders a compared field's value for people (a chat digest,
// the merchant page) without giving away personal data:
// an email keeps its first character and its domain (j***@example.com); a
// ZIP code keeps its first two characters; other values (amounts, currency,
// coupon codes, ids) are shown, shortened.
func MaskValue(field, v string) string {
	v = strings.TrimSpace(v)
	if v == "" {
		return "(none)"
	}
	if at := strings.LastIndexByte(v, '@'); at >= 0 || field == "email" {
		if at < 0 {
			return "***"
		}
		first, _ := utf8.DecodeRuneInString(v)
		if at == 0 {
			return "***" + shortenValue(v[at:])
		}
		return string(first) + "***" + shortenValue(v[at:])
	}
	if field == "shipping_zip" {
		r := []rune(v)
		if len(r) <= 2 {
			return "***"
		}
		return string(r[:2]) + "***"
	}
	return shortenValue(v)
}

func shortenValue(v string) string {
	if utf8.RuneCountInString(v) <= maxShownValue {
		return v
	}
	return string([]rune(v)[:maxShownValue]) + "…"
}
