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
	r, err := ParseDecimal(s)
	if err != nil {
		return "", err
	}
	return FormatDecimal(r), nil
}
