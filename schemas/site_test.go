package schemas

import (
	"math/rand/v2"
	"regexp"
	"strings"
	"testing"
)

// TestValidSiteSlug checks the hand-written slug check against the grammar
// it implements, on edge cases and random strings over a small alphabet.
func TestValidSiteSlug(t *testing.T) {
	grammar := regexp.MustCompile(`^[a-z0-9][a-z0-9-]{0,62}$`)
	cases := []string{"", "a", "-", "-a", "a-", "demo", "demo-store", "Demo", "de mo", "dé", "a_b", "a.b", "9",
		strings.Repeat("a", 63), strings.Repeat("a", 64), "a\n", "\x00"}
	r := rand.New(rand.NewPCG(3, 4))
	const alphabet = "az09-A_.é"
	for range 20000 {
		b := make([]byte, r.IntN(70))
		for i := range b {
			b[i] = alphabet[r.IntN(len(alphabet))]
		}
		cases = append(cases, string(b))
	}
	for _, s := range cases {
		if got, want := ValidSiteSlug(s), grammar.MatchString(s); got != want {
			t.Errorf("ValidSiteSlug(%q) = %v, want %v", s, got, want)
		}
	}
}
