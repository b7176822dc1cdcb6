package schemas

import (
	"errors"
	"testing"
)

func TestParseShopifyRefund(t *testing.T) {
	// Shaped like Shopify's refunds/create sample: ids above 2^53, a
	// successful refund transaction in the buyer's currency, a failed one,
	// and a capture that is not a refund.
	body := `{"id":890088186047892319,"order_id":820982911946154508,"created_at":"2025-01-02T10:00:00-05:00","processed_at":"2025-01-02T10:00:01-05:00",
	 "refund_line_items":[{"line_item_id":866550311766439020,"quantity":1,"subtotal_set":{"shop_money":{"amount":"199.00","currency_code":"USD"},"presentment_money":{"amount":"180.00","currency_code":"EUR"}}}],
	 "transactions":[{"kind":"refund","status":"success","amount":"41.94","currency":"eur"},
	                 {"kind":"refund","status":"failure","amount":"1000.00","currency":"EUR"},
	                 {"kind":"capture","status":"success","amount":"5.00","currency":"EUR"},
	                 {"kind":"refund","status":"success","amount":"0.06","currency":"EUR"}]}`
	r, err := ParseShopifyRefund([]byte(body))
	if err != nil {
		t.Fatal(err)
	}
	if r.ID != "890088186047892319" || r.OrderID != "820982911946154508" || r.RefundLineItems[0].LineItemID != "866550311766439020" {
		t.Errorf("ids: %+v", r)
	}
	amount, cur, err := r.RefundedAmount()
	if err != nil || amount != "42.00" || cur != "EUR" {
		t.Errorf("refunded: %q %q %v, want 42.00 EUR", amount, cur, err)
	}
	if got := r.Time().Format("2006-01-02T15:04:05Z07:00"); got != "2025-01-02T15:00:01Z" {
		t.Errorf("time %s", got)
	}

	none, _ := ParseShopifyRefund([]byte(`{"id":1,"order_id":2,"transactions":[]}`))
	if a, c, err := none.RefundedAmount(); a != "0.00" || c != "" || err != nil {
		t.Errorf("restock-only refund: %q %q %v", a, c, err)
	}
	mixed, _ := ParseShopifyRefund([]byte(`{"id":1,"order_id":2,"transactions":[{"kind":"refund","status":"success","amount":"1","currency":"USD"},{"kind":"refund","status":"success","amount":"1","currency":"EUR"}]}`))
	var fe *FieldError
	if _, _, err := mixed.RefundedAmount(); !errors.As(err, &fe) || fe.Field != "transactions[1].currency" {
		t.Errorf("mixed currencies: %v", err)
	}
	for body, field := range map[string]string{`{"order_id":2}`: "id", `{"id":1}`: "order_id", `{"id":1,"order_id":"x"}`: "order_id"} {
		if _, err := ParseShopifyRefund([]byte(body)); !errors.As(err, &fe) || fe.Field != field {
			t.Errorf("%s: %v, want field %s", body, err, field)
		}
	}
	if _, err := ParseShopifyRefund([]byte(`[`)); err == nil {
		t.Error("malformed JSON accepted")
	}
}
