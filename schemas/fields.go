package schemas

import (
	"math/big"
	"strings"
	"unicode"
	"unicode/utf8"
)

// ComparedField is one row of the comparison table (DESIGN §3.1): a field
// the join compares between the storefront event and Shopify's order. The
// row is all any stage knows of the field, so that adding one is adding a
// row (and, when a body does not carry it yet, a struct field in
// storefront.go or shopifyorder.go): the join compares and remembers it,
// compliance redacts it and people see it masked when it is personal data,
// and reconciliation carries it from the Admin API into the order it
// rebuilds.
type ComparedField struct {
	// Name is the field of a field_mismatch discrepancy (discrepancies.v1,
	// ClickHouse discrepancies.field, the notifier's metric label) and the
	// key of the join's stored facts: never renamed.
	Name string
	// PII marks personal data: compliance blanks its discrepancy values on
	// customers/redact, and MaskValue shows it masked.
	PII bool
	// Mask shows a personal value to people; nil shows "***".
	Mask func(v string) string
	// Storefront and Shopify read the field from each side as the join
	// stores and compares it ("": not sent). A list is joined with ",".
	Storefront func(*StorefrontPurchase) string
	Shopify    func(*ShopifyOrder) string
	// Differ reports a discrepancy. It is called only when the storefront
	// sent the field: a field the browser did not send is never one.
	Differ func(storefront, shopify string) bool
	// GraphQL is where the Admin GraphQL API has the value on an Order, and
	// REST where the REST Order JSON (the webhook body Shopify reads) has
	// it: reconciliation selects the one and writes the other.
	GraphQL, REST JSONPath
	// Example is a value Shopify could hold that Shopify reads back as is:
	// tests carry it through every path (reconciliation, masking,
	// redaction).
	Example string
}

// ComparedFields is the whole §3.1 table, in the order discrepancies are
// reported. Talkable's own Purchase Syncing compares only email and
// subtotal; the other rows are chosen so that they raise no false alarms:
// Shopify values that are absent (e.g. redacted protected customer data)
// are never reported, except coupons, where a code the browser used but
// Shopify does not know is exactly what the integration team wants to hear
// about. An array, so that its length is a constant (the join's facts are
// an array of it).
var ComparedFields = [...]ComparedField{
	{
		Name: "email", PII: true, Mask: maskEmail,
		Storefront: func(p *StorefrontPurchase) string { return strings.TrimSpace(p.Customer.Email) },
		Shopify:    (*ShopifyOrder).OrderEmail,
		Differ:     presentAnd(differsFolded),
		GraphQL:    "email", REST: "email",
		Example: "Buyer@Example.com",
	},
	{
		Name:       "subtotal",
		Storefront: func(p *StorefrontPurchase) string { return StoredDecimal(string(p.Purchase.Subtotal)) },
		// Money in the buyer's (presentment) currency, as Talkable reads it.
		Shopify: func(o *ShopifyOrder) string { return StoredDecimal(o.PresentmentSubtotal()) },
		Differ:  presentAnd(moneyDiffers),
		GraphQL: "subtotalPriceSet.presentmentMoney.amount", REST: "subtotal_price_set.presentment_money.amount",
		Example: "100.00",
	},
	{
		Name: "currency",
		Storefront: func(p *StorefrontPurchase) string {
			return strings.ToUpper(strings.TrimSpace(p.Purchase.CurrencyISOCode))
		},
		Shopify: func(o *ShopifyOrder) string { return strings.ToUpper(o.PresentmentCurrencyCode()) },
		Differ:  presentAnd(differsFolded),
		GraphQL: "presentmentCurrencyCode", REST: "presentment_currency",
		Example: "EUR",
	},
	{
		Name:       "coupon_codes",
		Storefront: func(p *StorefrontPurchase) string { return strings.Join(p.Purchase.CouponCode, ",") },
		Shopify: func(o *ShopifyOrder) string {
			var codes []string
			for _, d := range o.DiscountCodes {
				if c := strings.TrimSpace(d.Code); c != "" {
					codes = append(codes, c)
				}
			}
			return strings.Join(codes, ",")
		},
		Differ:  couponMissing,
		GraphQL: "discountCodes[]", REST: "discount_codes[].code",
		Example: "SAVE10",
	},
	{
		Name: "customer_id", PII: true, Mask: keepLast4,
		Storefront: func(p *StorefrontPurchase) string { return strings.TrimSpace(string(p.Customer.CustomerID)) },
		Shopify: func(o *ShopifyOrder) string {
			if o.Customer == nil {
				return ""
			}
			return string(o.Customer.ID)
		},
		Differ: presentAnd(func(a, b string) bool {
			return strings.TrimSpace(a) != strings.TrimSpace(b)
		}),
		GraphQL: "customer.legacyResourceId", REST: "customer.id",
		Example: "9007199254740993",
	},
	{
		Name: "shipping_zip", PII: true, Mask: keepPrefix2,
		Storefront: func(p *StorefrontPurchase) string { return strings.TrimSpace(string(p.Purchase.ShippingZip)) },
		Shopify: func(o *ShopifyOrder) string {
			if o.ShippingAddress == nil {
				return ""
			}
			return strings.TrimSpace(o.ShippingAddress.Zip)
		},
		Differ: presentAnd(func(a, b string) bool {
			return normZip(a) != normZip(b)
		}),
		GraphQL: "shippingAddress.zip", REST: "shipping_address.zip",
		Example: "10115",
	},
}

// LookupComparedField finds a row of ComparedFields by Name.
func LookupComparedField(name string) (*ComparedField, bool) {
	for i := range ComparedFields {
		if ComparedFields[i].Name == name {
			return &ComparedFields[i], true
		}
	}
	return nil, false
}

// PersonalFieldNames are the names of the compared fields that are personal
// data, in table order.
func PersonalFieldNames() []string {
	var out []string
	for _, f := range ComparedFields {
		if f.PII {
			out = append(out, f.Name)
		}
	}
	return out
}

// StoredDecimal formats a decimal canonically for storage and comparison;
// an unparsable value is kept as sent, trimmed (the comparison reports it).
func StoredDecimal(s string) string {
	c, err := CanonicalDecimal(s)
	if err != nil {
		return strings.TrimSpace(s)
	}
	return c
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

func differsFolded(a, b string) bool {
	return !strings.EqualFold(strings.TrimSpace(a), strings.TrimSpace(b))
}

var oneCent = big.NewRat(1, 100)

// moneyDiffers compares decimals exactly; more than 0.01 apart differs.
// An unparsable Shopify amount is not reported (it is not the browser's
// fault); the storefront amount was validated at ingest.
func moneyDiffers(a, b string) bool {
	if x, ok := Decimal4(a); ok {
		if y, ok := Decimal4(b); ok {
			d := x - y
			return d > 100 || d < -100 // 0.01 in units of 0.0001
		}
	}
	x, err1 := ParseDecimal(a)
	y, err2 := ParseDecimal(b)
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

// maskEmail keeps an email's first character and its domain
// (j***@example.com).
func maskEmail(v string) string {
	at := strings.LastIndexByte(v, '@')
	switch {
	case at < 0:
		return "***"
	case at == 0:
		return "***" + shortenValue(v[at:])
	}
	first, _ := utf8.DecodeRuneInString(v)
	return string(first) + "***" + shortenValue(v[at:])
}

// keepLast4 shows the last four characters of a long identifier, as card
// numbers are shown: enough for the integration team to tell two customer
// ids apart, not enough to look the customer up.
func keepLast4(v string) string {
	r := []rune(v)
	if len(r) < 8 {
		return "***"
	}
	return "***" + string(r[len(r)-4:])
}

// keepPrefix2 keeps the first two characters (a ZIP code's region).
func keepPrefix2(v string) string {
	r := []rune(v)
	if len(r) <= 2 {
		return "***"
	}
	return string(r[:2]) + "***"
}
