package join

import (
	"math/big"
	"strings"
	"unicode"

	"purchasesync/schemas"
)

// Facts are the values of one side (storefront or Shopify) that the join
// compares. An empty string (nil slice for coupons) means "not sent".
type Facts struct {
	Email       string   `json:"email,omitempty"`
	Subtotal    string   `json:"subtotal,omitempty"`
	Currency    string   `json:"currency,omitempty"`
	CouponCodes []string `json:"coupon_codes,omitempty"`
	CustomerID  string   `json:"customer_id,omitempty"`
	ShippingZip string   `json:"shipping_zip,omitempty"`
}

// fieldRule is one row of the comparison table (DESIGN §3.1).
type fieldRule struct {
	field string
	get   func(*Facts) string
	// differ reports a discrepancy; it is called only when the storefront
	// sent the field (a field the browser did not send is never a discrepancy).
	differ func(storefront, shopify string) bool
}

// comparisonTable is the whole §3.1 table. Talkable's own Purchase Syncing
// compares only email and subtotal; the other rows are chosen so that they
// raise no false alarms: Shopify values that are absent (e.g. redacted
// protected customer data) are never reported, except coupons, where a code
// the browser used but Shopify does not know is exactly what the integration
// team wants to hear about.
var comparisonTable = []fieldRule{
	{"email", func(f *Facts) string { return f.Email }, presentAnd(func(a, b string) bool {
		return !strings.EqualFold(strings.TrimSpace(a), strings.TrimSpace(b))
	})},
	{"subtotal", func(f *Facts) string { return f.Subtotal }, presentAnd(moneyDiffers)},
	{"currency", func(f *Facts) string { return f.Currency }, presentAnd(func(a, b string) bool {
		return !strings.EqualFold(strings.TrimSpace(a), strings.TrimSpace(b))
	})},
	{"coupon_codes", func(f *Facts) string { return strings.Join(f.CouponCodes, ",") }, couponMissing},
	{"customer_id", func(f *Facts) string { return f.CustomerID }, presentAnd(func(a, b string) bool {
		return strings.TrimSpace(a) != strings.TrimSpace(b)
	})},
	{"shipping_zip", func(f *Facts) string { return f.ShippingZip }, presentAnd(func(a, b string) bool {
		return normZip(a) != normZip(b)
	})},
}

// presentAnd skips the comparison when Shopify has no value.
func presentAnd(differ func(a, b string) bool) func(a, b string) bool {
	return func(a, b string) bool {
		if strings.TrimSpace(b) == "" {
			return false
		}
		return differ(a, b)
	}
}

var oneCent = big.NewRat(1, 100)

// moneyDiffers compares decimals exactly; more than 0.01 apart differs.
// An unparsable Shopify amount is not reported (it is not the browser's
// fault); the storefront amount was validated at ingest.
func moneyDiffers(a, b string) bool {
	if x, ok := schemas.Decimal4(a); ok {
		if y, ok := schemas.Decimal4(b); ok {
			d := x - y
			return d > 100 || d < -100 // 0.01 in units of 0.0001
		}
	}
	x, err1 := schemas.ParseDecimal(a)
	y, err2 := schemas.ParseDecimal(b)
	if err1 != nil || err2 != nil {
		return err1 != nil && err2 == nil
	}
	d := new(big.Rat).Sub(x, y)
	return d.Abs(d).Cmp(oneCent) > 0
}

// couponMissing: every storefront code must be among Shopify's codes
// (case-insensitive); Shopify may list more codes than the browser's one.
func couponMissing(storefront, shopify string) bool {
	have := map[string]bool{}
	for _, c := range strings.Split(shopify, ",") {
		if c = strings.TrimSpace(c); c != "" {
			have[strings.ToLower(c)] = true
		}
	}
	for _, c := range strings.Split(storefront, ",") {
		if c = strings.TrimSpace(c); c != "" && !have[strings.ToLower(c)] {
			return true
		}
	}
	return false
}

func normZip(s string) string {
	return strings.Map(func(r rune) rune {
		if unicode.IsSpace(r) {
			return -1
		}
		return unicode.ToLower(r)
	}, s)
}

// Diff is one differing field.
type Diff struct {
	Field, Storefront, Shopify string
}

// Compare returns the differing fields, in table order.
func Compare(storefront, shopify *Facts) []Diff {
	var out []Diff
	for _, r := range comparisonTable {
		sf := r.get(storefront)
		if strings.TrimSpace(sf) == "" {
			continue
		}
		if sh := r.get(shopify); r.differ(sf, sh) {
			out = append(out, Diff{Field: r.field, Storefront: sf, Shopify: sh})
		}
	}
	return out
}
