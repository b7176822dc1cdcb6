package schemas

import (
	"strings"
	"unicode/utf8"
)

// maxShownValue bounds a shown value: a message is for people, not a data dump.
const maxShownValue = 40

// MaskValue renders a discrepancy's value for people (a chat digest, the
// merchant page) without giving away personal data: anything that looks
// like an email keeps its first character and its domain
// (j***@example.com); a personal field of ComparedFields is shown through
// its Mask ("***" without one); other values (amounts, currency, coupon
// codes) are shown, shortened.
func MaskValue(field, v string) string {
	v = strings.TrimSpace(v)
	if v == "" {
		return "(none)"
	}
	if strings.IndexByte(v, '@') >= 0 {
		return maskEmail(v)
	}
	if f, ok := LookupComparedField(field); ok && f.PII {
		if f.Mask == nil {
			return "***"
		}
		return f.Mask(v)
	}
	return shortenValue(v)
}

func shortenValue(v string) string {
	if utf8.RuneCountInString(v) <= maxShownValue {
		return v
	}
	return string([]rune(v)[:maxShownValue]) + "…"
}
