package ingest

import (
	"errors"
	"strings"
	"testing"

	"purchasesync/schemas"
)

// FuzzStorefrontKey: any body either yields a well-formed key for the site
// or a 400 naming a field; never a panic, never a key the join could
// misread. Seeds: testdata/fuzz/FuzzStorefrontKey.
func FuzzStorefrontKey(f *testing.F) {
	f.Add([]byte(`{"purchase":{"order_number":"#1001","subtotal":"23.97"},"customer":{"email":"a@b.example"}}`), uint8(1))
	sites := []schemas.Site{
		{Site: "acme", OrderKey: schemas.OrderKeyID},
		{Site: "bolt", OrderKey: schemas.OrderKeyNumber},
		{Site: "cargo", OrderKey: schemas.OrderKeyName},
	}
	f.Fuzz(func(t *testing.T, body []byte, mode uint8) {
		site := sites[int(mode)%len(sites)]
		key, err := storefrontKey(site, body)
		_, perr := schemas.ParseStorefrontPurchase(body)
		if err != nil {
			var se *StatusError
			if !errors.As(err, &se) || se.Code != 400 || se.Field == "" {
				t.Fatalf("storefrontKey(%q) = %v, want a 400 naming a field", body, err)
			}
			return
		}
		if perr != nil {
			t.Fatalf("storefrontKey accepted %q that ParseStorefrontPurchase refuses: %v", body, perr)
		}
		s, on, kerr := schemas.SplitKey(key)
		if kerr != nil || s != site.Site {
			t.Fatalf("key %q does not split back to site %s: %v", key, site.Site, kerr)
		}
		if on != strings.TrimSpace(on) || len(on) > schemas.MaxOrderNumberLen || strings.ContainsAny(on, "/\x00\r\n") {
			t.Fatalf("order number %q is not normalized", on)
		}
	})
}
