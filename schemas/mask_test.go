package schemas

import (
	"strings"
	"testing"
)

func TestMask(t *testing.T) {
	f := func(field, in, want string) {
		t.Helper()
		if got := MaskValue(field, in); got != want {
			t.Errorf("MaskValue(%s, %q) = %q, want %q", field, in, got, want)
		}
	}
	f("email", "jane.doe@example.com", "j***@example.com")
	f("email", " Jane@Example.com ", "J***@Example.com")
	f("email", "not-an-email", "***")
	f("email", "@example.com", "***@example.com")
	f("coupon_codes", "x@y.z", "x***@y.z") // anything that looks like an email
	f("shipping_zip", "94107", "94***")
	f("shipping_zip", "1", "***")
	f("subtotal", "23.97", "23.97")
	f("subtotal", "", "(none)")
	f("customer_id", "9007199254740993", "***0993")
	f("customer_id", "1234567", "***") // too short to show a part of
	f("coupon_codes", strings.Repeat("9", 50), strings.Repeat("9", 40)+"…")
	f("webhook_missing", "", "(none)")
}
