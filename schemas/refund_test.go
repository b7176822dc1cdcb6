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

// TestRefundMoney: the amount in the purchase's currency comes from
// Shopify's own numbers: the transactions' currency as is; the other
// currency of the line items' MoneySets exactly when the refund is its line
// items, else at the rate they imply; nothing (not 0.00) otherwise.
func TestRefundMoney(t *testing.T) {
	li := func(shop, shopCur, pres, presCur string) string {
		return `{"line_item_id":1,"quantity":1,"subtotal_set":{"shop_money":{"amount":"` + shop + `","currency_code":"` + shopCur +
			`"},"presentment_money":{"amount":"` + pres + `","currency_code":"` + presCur + `"}}}`
	}
	tx := func(amount, cur string) string {
		return `{"kind":"refund","status":"success","amount":"` + amount + `","currency":"` + cur + `"}`
	}
	f := func(lines, txs, cur, want string, wantOK, rated bool) {
		t.Helper()
		r, err := ParseShopifyRefund([]byte(`{"id":1,"order_id":2,"refund_line_items":[` + lines + `],"transactions":[` + txs + `]}`))
		if err != nil {
			t.Fatal(err)
		}
		m, err := r.Money()
		if err != nil {
			t.Fatal(err)
		}
		got, ok := m.AmountIn(cur)
		if got != want || ok != wantOK || m.Rated != rated {
			t.Errorf("lines %s txs %s in %s: %q %v rated %v, want %q %v rated %v", lines, txs, cur, got, ok, m.Rated, want, wantOK, rated)
		}
	}
	f("", tx("10.00", "EUR"), "eur", "10.00", true, false)                                                                  // same currency
	f("", "", "EUR", "0.00", true, false)                                                                                   // nothing returned
	f("", tx("10.00", "USD"), "EUR", "", false, false)                                                                      // no MoneySet: not convertible
	f(li("11.00", "USD", "10.00", "EUR"), tx("11.00", "USD"), "EUR", "10.00", true, false)                                  // exactly the line items
	f(li("11.00", "USD", "10.00", "EUR"), tx("10.00", "EUR"), "USD", "11.00", true, false)                                  // and the other way
	f(li("11.00", "USD", "10.00", "EUR"), tx("22.00", "USD"), "EUR", "20.00", true, true)                                   // shipping too: the rate
	f(li("3.00", "USD", "2.00", "EUR"), tx("1.00", "USD"), "EUR", "0.67", true, true)                                       // rounded to cents
	f(li("11.00", "USD", "10.00", "EUR"), tx("11.00", "USD")+","+tx("1.00", "EUR"), "EUR", "11.00", true, true)             // mixed: both convert (EUR into USD at the rate)
	f(li("11.00", "USD", "10.00", "EUR"), tx("11.00", "GBP"), "EUR", "", false, false)                                      // a third currency
	f(li("11.00", "USD", "10.00", "EUR")+","+li("1.00", "USD", "1.00", "CAD"), tx("11.00", "USD"), "EUR", "", false, false) // line items disagree
}

func TestShopifyOrderKeysID(t *testing.T) {
	body := []byte(`{"id":820982911946154508,"order_number":1001,"name":"#1001"}`)
	for mode, want := range map[OrderKey]string{OrderKeyID: "820982911946154508", OrderKeyNumber: "1001", OrderKeyName: "#1001"} {
		v, id, err := ShopifyOrderKeys(body, mode)
		if err != nil || v != want || id != "820982911946154508" {
			t.Errorf("%s: %q %q %v", mode, v, id, err)
		}
	}
}
