package discrepancy

import (
	"strings"
	"unicode/utf8"
)

// maxValue bounds a shown value: a message is for people, not a data dump.
const maxValue = 40

// mask renders a value for a message without giving away personal data:
// an email keeps its first character and its domain (j***@example.com); a
// ZIP code keeps its first two characters; other values (amounts, currency,
// coupon codes, ids) are shown, shortened.
func mask(field, v string) string {
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
			return "***" + shorten(v[at:])
		}
		return string(first) + "***" + shorten(v[at:])
	}
	if field == "shipping_zip" {
		r := []rune(v)
		if len(r) <= 2 {
			return "***"
		}
		return string(r[:2]) + "***"
	}
	return shorten(v)
}

func shorten(v string) string {
	if utf8.RuneCountInString(v) <= maxValue {
		return v
	}
	return string([]rune(v)[:maxValue]) + "…"
}
