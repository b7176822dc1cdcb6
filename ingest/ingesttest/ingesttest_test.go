package ingesttest

import (
	"math/rand/v2"
	"strconv"
	"strings"
	"testing"

	"purchasesync/schemas"
)

func TestPurchaseBodies(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	minSize, maxSize := 1<<30, 0
	for seq := int64(0); seq < 200; seq++ {
		p := NewPurchase(rng, seq, ItemsForSize(rng))
		body := p.OrderBody()
		minSize, maxSize = min(minSize, len(body)), max(maxSize, len(body))
		o, err := schemas.ParseShopifyOrder(body)
		if err != nil {
			t.Fatalf("order %d does not parse: %v", seq, err)
		}
		if p.ID <= MinID || string(o.ID) != strconv.FormatUint(p.ID, 10) {
			t.Fatalf("order id %s, want %d above 2^53", o.ID, p.ID)
		}
		for _, mode := range []schemas.OrderKey{schemas.OrderKeyID, schemas.OrderKeyNumber, schemas.OrderKeyName} {
			k, err := schemas.ShopifyOrderKey(body, mode)
			if err != nil || k != p.OrderNumberFor(mode) {
				t.Fatalf("%s key = %q, %v; want %q", mode, k, err, p.OrderNumberFor(mode))
			}
			sf, err := schemas.ParseStorefrontPurchase(p.StorefrontBody(mode))
			if err != nil {
				t.Fatalf("storefront event does not parse: %v", err)
			}
			if got := sf.OrderNumberFor(mode); got != k {
				t.Fatalf("storefront order number %q, webhook %q", got, k)
			}
		}
		if got, want := o.PresentmentSubtotal(), Money(p.SubtotalCents()-discount(p)); got != want {
			t.Fatalf("subtotal %s, want %s", got, want)
		}
	}
	if minSize < 1000 || maxSize > 30<<10 || maxSize < 15000 {
		t.Fatalf("order bodies %d..%d bytes, want within 1..30 KB and reaching above 15 KB", minSize, maxSize)
	}
}

func discount(p Purchase) int64 {
	if p.Coupon == "" {
		return 0
	}
	return p.SubtotalCents() / 10
}

// TestDriftChangesExactlyItsField: a drifted storefront event differs from
// the faithful one in the drifted field and nowhere else the join compares.
func TestDriftChangesExactlyItsField(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	fields := func(b []byte) map[string]string {
		sf, err := schemas.ParseStorefrontPurchase(b)
		if err != nil {
			t.Fatal(err)
		}
		return map[string]string{
			"email": sf.Customer.Email, "subtotal": string(sf.Purchase.Subtotal), "coupon_codes": strings.Join(sf.Purchase.CouponCode, ","),
			"shipping_zip": string(sf.Purchase.ShippingZip), "currency": sf.Purchase.CurrencyISOCode, "customer_id": string(sf.Customer.CustomerID),
		}
	}
	for i, drift := range Drifts {
		p := NewPurchase(rng, int64(i), 2)
		want := fields(p.StorefrontBody(schemas.OrderKeyID))
		p.Drift = drift
		got := fields(p.StorefrontBody(schemas.OrderKeyID))
		for f := range want {
			if changed := got[f] != want[f]; changed != (f == drift) {
				t.Errorf("drift %s: %s %q -> %q", drift, f, want[f], got[f])
			}
		}
	}
}
