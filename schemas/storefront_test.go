package schemas

import (
	"errors"
	"strings"
	"testing"
)

// TestStorefrontBounds: what one unauthenticated event may carry is
// bounded, and each refusal names the field (H1, L7 of the security review).
func TestStorefrontBounds(t *testing.T) {
	items := func(n int, item string) string {
		return `,"items":[` + strings.TrimSuffix(strings.Repeat(item+",", n), ",") + `]`
	}
	f := func(purchase, customer, wantField string) {
		t.Helper()
		body := `{"purchase":{"order_number":"1001","subtotal":"10.00"` + purchase + `},` +
			`"customer":{"email":"jane@example.com"` + customer + `}}`
		_, err := ParseStorefrontPurchase([]byte(body))
		if wantField == "" {
			if err != nil {
				t.Errorf("%.80s: unexpected error %v", body, err)
			}
			return
		}
		var fe *FieldError
		if !errors.As(err, &fe) || fe.Field != wantField {
			t.Errorf("%.80s...: got %v, want a refusal of %s", body, err, wantField)
		}
	}
	long := strings.Repeat("x", MaxStorefrontStringLen+1)
	f(items(MaxStorefrontItems, `{}`), "", "")
	f(items(MaxStorefrontItems+1, `{}`), "", "purchase.items")
	// The review's worst case: a 64 KiB body of empty items.
	f(items(21805, `{}`), "", "purchase.items")
	f(items(3, `{"title":"`+long+`"}`), "", "purchase.items[0].title")
	f(items(1, `{"product_id":"`+long+`"}`), "", "purchase.items[0].product_id")
	f(items(1, `{"url":"`+long+`"}`), "", "purchase.items[0].url")
	f(`,"shipping_address":"`+long+`"`, "", "purchase.shipping_address")
	f(`,"coupon_code":"`+strings.Repeat("A,", MaxStorefrontCoupons+1)+`"`, "", "purchase.coupon_code")
	f(`,"coupon_code":["`+long+`"]`, "", "purchase.coupon_code[0]")
	f("", `,"first_name":"`+long+`"`, "customer.first_name")
	f("", `,"traffic_source":"`+long+`"`, "customer.traffic_source")
	// L7: lenient validation.
	f(`,"subtotal":"-5"`, "", "purchase.subtotal")
	f("", `,"email":"a@@b.co"`, "customer.email")
	f("", `,"email":"a\n@b.co"`, "customer.email")
	f("", `,"email":"a b@c.co"`, "customer.email")
	f("", ",\"email\":\"a\xff@b.co\"", "customer.email")
	f("", ",\"last_name\":\"J\xffne\"", "customer.last_name")
	f(`,"order_number":"1\t2"`, "", "purchase.order_number")
	f(`,"order_number":"1/2"`, "", "purchase.order_number")
	f(`,"order_number":"#1001"`, "", "")
	f(`,"subtotal":0`, `,"first_name":"Zoë"`, "")
}
