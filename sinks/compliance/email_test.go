package compliance

import "testing"

// TestBodyHasEmail: a raw event belongs to a customer when its parsed
// email fields equal the customer's email, never when the email is only a
// substring of the body (M4 of the security review: bob@x.com matched
// jimbob@x.com and bob@x.com.au).
func TestBodyHasEmail(t *testing.T) {
	f := func(body, email string, want bool) {
		t.Helper()
		if got := bodyHasEmail([]byte(body), email); got != want {
			t.Errorf("bodyHasEmail(%s, %q) = %v, want %v", body, email, got, want)
		}
	}
	storefront := func(e string) string {
		return `{"purchase":{"order_number":"1","subtotal":"1"},"customer":{"email":"` + e + `"}}`
	}
	f(storefront("bob@x.com"), "bob@x.com", true)
	f(storefront(" Bob@X.com "), "bob@x.com", true)
	f(storefront("jimbob@x.com"), "bob@x.com", false)
	f(storefront("bob@x.com.au"), "bob@x.com", false)
	f(`{"purchase":{"order_number":"1","note":"for bob@x.com"},"customer":{"email":"ann@y.com"}}`, "bob@x.com", false)
	// Shopify orders: the order's email, or its customer's.
	f(`{"id":1,"email":"bob@x.com","customer":{"email":"bob@x.com"}}`, "BOB@x.com", true)
	f(`{"id":1,"email":"","customer":{"id":5,"email":"bob@x.com"}}`, "bob@x.com", true)
	f(`{"id":1,"email":"jimbob@x.com","contact_email":"bob@x.com","note":"bob@x.com"}`, "bob@x.com", false)
	f(`{"id":1,"email":null}`, "bob@x.com", false)
	f(`not json bob@x.com`, "bob@x.com", false)
}
