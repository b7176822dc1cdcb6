package clickhouse

import (
	"encoding/json"
	"reflect"
	"strings"
	"testing"
	"time"

	"purchasesync/schemas"
)

// same decodes b with decodePurchase and with the contract's decoder and
// wants the same purchase, or an error from both.
func same(t *testing.T, b []byte) {
	t.Helper()
	got, gotErr := decodePurchase(b)
	want, wantErr := schemas.UnmarshalPurchase(b)
	if (gotErr == nil) != (wantErr == nil) {
		t.Fatalf("%s\nfast: %v\nencoding/json: %v", b, gotErr, wantErr)
	}
	if gotErr != nil {
		if gotErr.Error() != wantErr.Error() {
			t.Fatalf("%s\nerror texts differ:\nfast: %v\nencoding/json: %v", b, gotErr, wantErr)
		}
		return
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("%s\nfast:          %+v\nencoding/json: %+v", b, got, want)
	}
}

func fullPurchase() *schemas.Purchase {
	id := "18446744073709551615"
	at := time.Date(2026, 3, 1, 12, 0, 0, 123456789, time.FixedZone("x", 3600))
	ref := at.Add(time.Hour)
	return &schemas.Purchase{Site: "acme", OrderNumber: "#1001 \"quoted\" & <b>", ShopifyOrderID: &id, ShopifyOrderName: "#1001",
		RegisteredVia: schemas.ViaWebhook, Matched: true, Email: "josé@exämple.com", CustomerID: "42", FirstName: "Zoë",
		LastName: "O'Brien\t\n\\/", Subtotal: "10.5", Currency: "EUR", Tax: "1", DiscountAmount: "0.5", ShippingCost: "3",
		CouponCodes: []string{"A", "😀"}, ShippingZip: "1000", ShippingAddress: "Rue 1, Bruxelles",
		Items:     []schemas.Item{{ProductID: "1", VariantID: "2", SKU: "S", Title: "Salt & Pepper \u2028", Price: "1.00", Quantity: 3}, {}},
		IPAddress: "::1", TrafficSource: "purchase-syncing", Test: true, RefundedAmount: "10.5", RefundedAt: &ref,
		OrderCreatedAt: at, RegisteredAt: at, ReceivedAt: at, UpdatedAt: at, Version: 1<<53 + 1}
}

func TestDecodePurchaseMatchesEncodingJSON(t *testing.T) {
	full, _ := schemas.MarshalPurchase(fullPurchase())
	same(t, full)
	min := samplePurchase()
	min.CouponCodes, min.Items, min.ShopifyOrderID = []string{}, nil, nil
	b, _ := schemas.MarshalPurchase(min)
	same(t, b)
	for _, s := range []string{
		string(full),
		" \n" + string(full) + "\t ",
		`{"site":"acme","order_number":"1","registered_via":"storefront","version":1}`,
		`{"site":"acme","order_number":"1","registered_via":"storefront","version":1,"coupon_codes":[],"items":[]}`,
		`{"site":"acme","order_number":"1","registered_via":"storefront","version":1,"coupon_codes":null,"items":null,"refunded_at":null,"shopify_order_id":null}`,
		`{"site":"acme","order_number":"1","registered_via":"storefront","version":1,"email":null,"matched":null,"registered_at":null}`,
		`{"Site":"acme","order_number":"1","registered_via":"storefront","version":1}`,                     // case-insensitive key
		`{"site":"acme","site":"beta","order_number":"1","registered_via":"storefront","version":1}`,       // repeated key
		`{"site":"acme","order_number":"1","registered_via":"storefront","version":1,"extra":{"a":[1,2]}}`, // unknown key
		`{"site":"acme","order_number":"\ud83d\ude00","registered_via":"storefront","version":1}`,          // surrogate pair
		`{"site":"acme","order_number":"\ud83d","registered_via":"storefront","version":1}`,                // lone surrogate
		`{"site":"acme","order_number":"a\u0000b","registered_via":"storefront","version":1}`,
		"{\"site\":\"acme\",\"order_number\":\"\xff\",\"registered_via\":\"storefront\",\"version\":1}", // invalid UTF-8
		`{"site":"acme","order_number":"1","registered_via":"storefront","version":1.0}`,
		`{"site":"acme","order_number":"1","registered_via":"storefront","version":-1}`,
		`{"site":"acme","order_number":"1","registered_via":"storefront","version":"1"}`,
		`{"site":"acme","order_number":"1","registered_via":"storefront","version":01}`,
		`{"site":"acme","order_number":"1","registered_via":"storefront","version":99999999999999999999}`,
		`{"site":"acme","order_number":"1","registered_via":"storefront","version":1,"items":[{"quantity":-2}]}`,
		`{"site":"acme","order_number":"1","registered_via":"storefront","version":1,"items":[{"quantity":1e2}]}`,
		`{"site":"acme","order_number":"1","registered_via":"storefront","version":1,"registered_at":"2026-13-01T00:00:00Z"}`,
		`{"site":"acme","order_number":"1","registered_via":"storefront","version":1,"matched":"yes"}`,
		`{"site":"acme","order_number":"1","registered_via":"fax","version":1}`,
		`{"site":"acme","order_number":"1","registered_via":"storefront","version":0}`,
		`{"site":"acme","order_number":"1","registered_via":"storefront","version":1} x`,
		`{"site":"acme","order_number":"1","registered_via":"storefront","version":1`,
		`{"site":"acme","order_number":"1","registered_via":"storefront","version":1,}`,
		`null`, ``, `[]`, `{}`, `{"site":"acme"`, `{"site":"a\"}`,
	} {
		same(t, []byte(s))
	}
}

// Every field of schemas.Purchase is decoded by the fast path: a new field
// in the contract fails this test instead of silently taking the slow path.
func TestDecodePurchaseKnowsEveryField(t *testing.T) {
	rt := reflect.TypeOf(schemas.Purchase{})
	for i := range rt.NumField() {
		name, _, _ := strings.Cut(rt.Field(i).Tag.Get("json"), ",")
		if _, ok := purchaseKeys[name]; !ok {
			t.Errorf("schemas.Purchase.%s (%q) is not handled by fastPurchase", rt.Field(i).Name, name)
		}
	}
	rt = reflect.TypeOf(schemas.Item{})
	for i := range rt.NumField() {
		name, _, _ := strings.Cut(rt.Field(i).Tag.Get("json"), ",")
		if _, ok := itemKeys[name]; !ok {
			t.Errorf("schemas.Item.%s (%q) is not handled by fastPurchase", rt.Field(i).Name, name)
		}
	}
	full, _ := schemas.MarshalPurchase(fullPurchase())
	if _, err := fastPurchase(full); err != nil {
		t.Errorf("the fast path fell back on a complete, well-formed purchase: %v", err)
	}
}

func FuzzDecodePurchase(f *testing.F) {
	full, _ := schemas.MarshalPurchase(fullPurchase())
	f.Add(full)
	b, _ := json.Marshal(samplePurchase())
	f.Add(b)
	f.Add([]byte(`{"site":"acme","order_number":"\u00e9\ud83d\ude00","registered_via":"storefront","version":1,"items":[{"quantity":3}]}`))
	f.Fuzz(func(t *testing.T, b []byte) { same(t, b) })
}

func BenchmarkDecodePurchase(b *testing.B) {
	v, _ := schemas.MarshalPurchase(benchPurchase(1))
	b.Run("fast", func(b *testing.B) {
		for range b.N {
			if _, err := decodePurchase(v); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("row", func(b *testing.B) { // decode, convert and validate: the sink's work per record
		for range b.N {
			if _, err := purchaseRowFrom(v); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("encoding_json", func(b *testing.B) {
		for range b.N {
			if _, err := schemas.UnmarshalPurchase(v); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// TestDecodePurchaseStopBytesAtEveryOffset puts an escape, a control
// character, a quote or a non-ASCII byte at every offset of the eight-byte
// words rawString skips, in keys' values of every length up to 17, and wants
// the result of encoding/json each time.
func TestDecodePurchaseStopBytesAtEveryOffset(t *testing.T) {
	stops := []string{`\"`, `\\`, `\n`, `\u00e9`, `\ud83d\ude00`, "\x01", "\x1f", "é", "\xff", " ", "~", "\x7f", `\/`, `\x`}
	for n := 0; n <= 17; n++ {
		for at := 0; at <= n; at++ {
			for _, stop := range stops {
				v := strings.Repeat("a", at) + stop + strings.Repeat("b", n-at)
				same(t, []byte(`{"site":"acme","order_number":"`+v+`","registered_via":"storefront","email":"`+v+`x","version":1}`))
			}
		}
	}
}
