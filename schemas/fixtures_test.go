package schemas

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// The raw-body parsers against golden files (testdata/<record>/): every
// *.json parses, every *.bad.json fails with exactly the error in the
// table, and every file is in a table, so a new fixture cannot be
// forgotten. The errors are what a shopper's browser (storefront, 400) or
// the dead-letter topic (Shopify order) shows, so their wording matters.
var fixtureErrors = map[string]map[string]string{
	"storefront": {
		"not-an-object.bad.json":         "body: must be a JSON object",
		"cut-off.bad.json":               "body: invalid JSON: unexpected end of JSON input",
		"no-purchase.bad.json":           "purchase: is required",
		"no-customer.bad.json":           "customer: is required",
		"no-order-number.bad.json":       "purchase.order_number: is required",
		"slash-order-number.bad.json":    "purchase.order_number: must be at most 64 characters without '/' or control characters",
		"negative-subtotal.bad.json":     "purchase.subtotal: must not be negative",
		"subtotal-not-a-number.bad.json": "purchase.subtotal: must be a decimal number",
		"bad-email.bad.json":             "customer.email: is not an email address",
		"bad-currency.bad.json":          "purchase.currency_iso_code: must be a 3-letter ISO 4217 code",
		"wrong-type.bad.json":            "purchase.items: has the wrong type",
		"bad-item-price.bad.json":        "purchase.items[0].price: must be a decimal number",
	},
	"shopify_order": {
		"no-id.bad.json":       "id: missing or not a positive integer",
		"zero-id.bad.json":     "id: missing or not a positive integer",
		"negative-id.bad.json": "id: missing or not a positive integer",
		"fraction-id.bad.json": "id: missing or not a positive integer",
		"not-json.bad.json":    "cannot decode Shopify order: invalid character '<' looking for beginning of value",
		"wrong-type.bad.json":  "cannot decode Shopify order: json: cannot unmarshal object into Go struct field ShopifyOrder.line_items of type []schemas.ShopifyLineItem",
	},
}

func TestParserFixtures(t *testing.T) {
	parse := map[string]func([]byte) error{
		"storefront":    func(b []byte) error { _, err := ParseStorefrontPurchase(b); return err },
		"shopify_order": func(b []byte) error { _, err := ParseShopifyOrder(b); return err },
	}
	for dir, want := range fixtureErrors {
		files, err := filepath.Glob(filepath.Join("testdata", dir, "*.json"))
		if err != nil || len(files) == 0 {
			t.Fatalf("no fixtures in testdata/%s: %v", dir, err)
		}
		seen := map[string]bool{}
		for _, f := range files {
			name := filepath.Base(f)
			body, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			err = parse[dir](body)
			if !strings.HasSuffix(name, ".bad.json") {
				if err != nil {
					t.Errorf("%s/%s: %v, want it to parse", dir, name, err)
				}
				continue
			}
			seen[name] = true
			w, ok := want[name]
			switch {
			case !ok:
				t.Errorf("%s/%s has no expected error in fixtureErrors", dir, name)
			case err == nil:
				t.Errorf("%s/%s parsed, want %q", dir, name, w)
			case err.Error() != w:
				t.Errorf("%s/%s: %q, want %q", dir, name, err.Error(), w)
			}
		}
		for name := range want {
			if !seen[name] {
				t.Errorf("fixtureErrors names %s/%s, which does not exist", dir, name)
			}
		}
	}
}

// The good fixtures carry what the join reads from them.
func TestParserFixtureValues(t *testing.T) {
	b, _ := os.ReadFile(filepath.Join("testdata", "shopify_order", "order.json"))
	o, err := ParseShopifyOrder(b)
	if err != nil {
		t.Fatal(err)
	}
	if string(o.ID) != "5837291049000000001" || o.PresentmentSubtotal() != "20.00" || o.PresentmentCurrencyCode() != "EUR" || len(o.LineItems) != 1 {
		t.Errorf("order fixture: id %s, subtotal %s %s, %d items", o.ID, o.PresentmentSubtotal(), o.PresentmentCurrencyCode(), len(o.LineItems))
	}
	if k, _ := ShopifyOrderKey(b, OrderKeyName); k != "#1001" {
		t.Errorf("order_name key %q", k)
	}
	b, _ = os.ReadFile(filepath.Join("testdata", "storefront", "minimal.json"))
	p, err := ParseStorefrontPurchase(b)
	if err != nil {
		t.Fatal(err)
	}
	if p.OrderNumberFor(OrderKeyNumber) != "1001" || string(p.Purchase.Subtotal) != "12.5" {
		t.Errorf("storefront fixture: %s, %s", p.OrderNumberFor(OrderKeyNumber), p.Purchase.Subtotal)
	}
}
