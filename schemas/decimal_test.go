package schemas

import (
	"math/rand/v2"
	"strconv"
	"testing"
)

// The fast path must agree with the exact big.Rat path on every input it takes.
func TestDecimal4AgreesWithRat(t *testing.T) {
	f := func(s, want string) {
		t.Helper()
		got, err := CanonicalDecimal(s)
		if err != nil || got != want {
			t.Errorf("CanonicalDecimal(%q) = %q, %v; want %q", s, got, err, want)
		}
		r, err := ParseDecimal(s)
		if err != nil {
			t.Fatalf("ParseDecimal(%q): %v", s, err)
		}
		if slow := FormatDecimal(r); slow != want {
			t.Errorf("FormatDecimal(%q) = %q; fast path gave %q", s, slow, want)
		}
	}
	f("23.97", "23.97")
	f("23.9", "23.90")
	f("23", "23.00")
	f("0.125", "0.125")
	f("-0.5", "-0.50")
	f("007.1000", "7.10")
	f(" 1575.90 ", "1575.90")
	f(".5", "0.50")
	f("99999999999999.9999", "99999999999999.9999")
	rng := rand.New(rand.NewPCG(7, 7))
	for i := 0; i < 20000; i++ {
		s := strconv.FormatInt(rng.Int64N(1e12)-5e11, 10)
		if n := rng.IntN(5); n > 0 {
			s += "." + strconv.Itoa(rng.IntN(10000) + 10000)[1:1+n]
		}
		fast, _ := CanonicalDecimal(s)
		r, _ := ParseDecimal(s)
		if slow := FormatDecimal(r); fast != slow {
			t.Fatalf("%q: fast %q, exact %q", s, fast, slow)
		}
	}
	for _, bad := range []string{"", "-", ".", "1.2.3", "1e5", "12a", "1.23456"} {
		if _, ok := Decimal4(bad); ok {
			t.Errorf("Decimal4(%q) accepted", bad)
		}
	}
}
