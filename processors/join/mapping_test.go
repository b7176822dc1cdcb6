package join

import (
	"encoding/json"
	"testing"
	"time"

	"purchasesync/schemas"
)

// TestWebhookRegistrationMapping: a purchase registered from a webhook
// (after the grace, with no storefront event) carries Talkable's Purchase
// Syncing mapping of the Shopify order: every field of DESIGN §4 from the
// order, money in the presentment currency. The review's mutation run
// found tax, traffic_source, IP and the shipping address untested.
func TestWebhookRegistrationMapping(t *testing.T) {
	money := func(shop, presentment string) string {
		return `{"shop_money":{"amount":"` + shop + `","currency_code":"USD"},"presentment_money":{"amount":"` + presentment + `","currency_code":"EUR"}}`
	}
	ev := wh(t, "5837291049", 0, `,"presentment_currency":"EUR",
"subtotal_price_set":`+money("23.97", "21.50")+`,
"total_tax_set":`+money("2.00", "1.80")+`,
"total_discounts_set":`+money("5.00", "4.50")+`,
"total_shipping_price_set":`+money("4.99", "4.49")+`,
"discount_codes":[{"code":"SPRING10","amount":"5.00","type":"fixed_amount"},{"code":" "}],
"browser_ip":"203.0.113.9","test":true,
"customer":{"id":77,"email":"jane@example.com","first_name":"Jane","last_name":"Doe"},
"shipping_address":{"first_name":"J","last_name":"D","address1":"Main St 1","address2":"","city":"Berlin","province":"","zip":" 10115 ","country":"Germany"}`)
	set := Settings{Grace: time.Minute, WebhookWait: time.Hour, DedupeHorizon: 24 * time.Hour}
	d := Decide(nil, ev, set)
	if len(d.Purchases) != 0 {
		t.Fatalf("registered before the grace: %+v", d.Purchases)
	}
	now := t0.Add(2 * time.Minute)
	d = Tick(d.State, now, now, now, set)
	if len(d.Purchases) != 1 {
		t.Fatalf("after the grace: %d purchases, want 1", len(d.Purchases))
	}
	got := d.Purchases[0]
	id := "5837291049"
	want := schemas.Purchase{
		Site: "demo", OrderNumber: "5837291049", ShopifyOrderID: &id, ShopifyOrderName: "#1001",
		RegisteredVia: schemas.ViaWebhook, Email: "jane@example.com", CustomerID: "77", FirstName: "Jane", LastName: "Doe",
		Subtotal: "21.50", Currency: "EUR", Tax: "1.80", DiscountAmount: "4.50", ShippingCost: "4.49",
		CouponCodes: []string{"SPRING10"}, ShippingZip: "10115", ShippingAddress: "Main St 1, Berlin, 10115, Germany",
		Items:     []schemas.Item{{ProductID: "7", VariantID: "9", SKU: "SKU-1", Title: "Mug", Price: "23.97", Quantity: 1}},
		IPAddress: "203.0.113.9", TrafficSource: schemas.TrafficSourcePurchaseSyncing, Test: true, Version: 1,
	}
	// Times are checked apart; compare the rest as JSON.
	cmp := *got
	cmp.OrderCreatedAt, cmp.ReceivedAt, cmp.RegisteredAt, cmp.UpdatedAt = time.Time{}, time.Time{}, time.Time{}, time.Time{}
	g, _ := json.Marshal(cmp)
	w, _ := json.Marshal(want)
	if string(g) != string(w) {
		t.Errorf("webhook-registered purchase:\n got %s\nwant %s", g, w)
	}
	if !got.OrderCreatedAt.Equal(time.Date(2026, 11, 25, 16, 59, 0, 0, time.UTC)) {
		t.Errorf("order_created_at %v, want 2026-11-25T16:59:00Z", got.OrderCreatedAt)
	}
}
