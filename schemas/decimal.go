package schemas

import (
	"fmt"
	"math/big"
	"strings"
)

// ParseDecimal parses a money amount ("23.97", "-1", "1e2" is refused)
// exactly, as a rational number. Money never goes through a float.
func ParseDecimal(s string) (*big.Rat, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return nil, fmt.Errorf("empty decimal")
	}
	digits, dot := 0, false
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c >= '0' && c <= '9':
			digits++
		case c == '.' && !dot:
			dot = true
		case (c == '-' || c == '+') && i == 0:
		default:
			return nil, fmt.Errorf("%q is not a decimal number", s)
		}
	}
	if digits == 0 || digits > 30 {
		return nil, fmt.Errorf("%q is not a decimal number", s)
	}
	r, ok := new(big.Rat).SetString(s)
	if !ok {
		return nil, fmt.Errorf("%q is not a decimal number", s)
	}
	return r, nil
}

// FormatDecimal renders r with 2 decimal places unless it needs more (up to
// 4, for three-decimal currencies), so stored amounts stay stable.
func FormatDecimal(r *big.Rat) string {
	for prec := 2; prec < 4; prec++ {
		s := r.FloatString(prec)
		back, _ := new(big.Rat).SetString(s)
		if back.Cmp(r) == 0 {
			return s
		}
	}
	return r.FloatString(4)
}

// CanonicalDecimal parses s and formats it canonically; "" stays "".
func CanonicalDecimal(s string) (string, error) {
	if strings.TrimSpace(s) == "" {
		return "", nil
	}
	if v, ok := Decimal4(s); ok {
		return formatDecimal4(v), nil
	}
	r, err := ParseDecimal(s)
	if err != nil {
		return "", err
	}
	return FormatDecimal(r), nil
}

// Decimal4 parses the common money shape ("-12.3400": at most 4 decimals and
// 14 integer digits) exactly into units of 0.0001, without allocating. ok is
// false for anything else; callers then fall back to ParseDecimal.
func Decimal4(s string) (v int64, ok bool) {
	s = strings.TrimSpace(s)
	neg := false
	if s != "" && (s[0] == '-' || s[0] == '+') {
		neg = s[0] == '-'
		s = s[1:]
	}
	intPart, frac, dot := strings.Cut(s, ".")
	if intPart == "" && frac == "" || len(intPart) > 14 || len(frac) > 4 || (dot && frac == "" && intPart == "") {
		return 0, false
	}
	for i := 0; i < len(intPart); i++ {
		if intPart[i] < '0' || intPart[i] > '9' {
			return 0, false
		}
		v = v*10 + int64(intPart[i]-'0')
	}
	for i := 0; i < 4; i++ {
		v *= 10
		if i < len(frac) {
			if frac[i] < '0' || frac[i] > '9' {
				return 0, false
			}
			v += int64(frac[i] - '0')
		}
	}
	if neg {
		v = -v
	}
	return v, true
}

// formatDecimal4 formats units of 0.0001 as FormatDecimal would.
func formatDecimal4(v int64) string {
	neg := v < 0
	if neg {
		v = -v
	}
	ip, fp := v/10000, v%10000
	frac := fmt.Sprintf("%04d", fp)
	frac = strings.TrimRight(frac, "0")
	for len(frac) < 2 {
		frac += "0"
	}
	out := fmt.Sprintf("%d.%s", ip, frac)
	if neg && v != 0 {
		out = "-" + out
	}
	return out
}
