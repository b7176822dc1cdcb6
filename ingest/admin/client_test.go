package admin

import (
	"context"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"purchasesync/schemas"
)

// TestClientUpdateKeepsWhatItDoesNotChange: Update is a read-modify-write
// against the real handler: a change of one field keeps the others, and a
// new site needs a shop domain.
func TestClientUpdateKeepsWhatItDoesNotChange(t *testing.T) {
	e := defaultEnv(t)
	c := NewClient(ClientConfig{URL: e.srv.URL + "/", Token: token, Timeout: 5 * time.Second})
	ctx := context.Background()
	str := func(s string) *string { return &s }

	if _, _, err := c.Update(ctx, "a", SiteChange{Grace: str("5m")}); !errors.Is(err, ErrNewSiteNeedsShop) {
		t.Fatalf("new site without a shop: %v, want ErrNewSiteNeedsShop", err)
	}
	domains := []string{"shop.a.example"}
	if _, _, err := c.Update(ctx, "a", SiteChange{ShopDomain: str("a.myshopify.com"), OrderKey: str("order_number"), CustomDomains: &domains}); err != nil {
		t.Fatal(err)
	}
	raw, s, err := c.Update(ctx, "a", SiteChange{Grace: str("5m")})
	if err != nil {
		t.Fatal(err)
	}
	if s.ShopDomain != "a.myshopify.com" || s.OrderKey != schemas.OrderKeyNumber || s.Grace != schemas.Duration(5*time.Minute) ||
		!slices.Equal(s.CustomDomains, domains) || !strings.Contains(string(raw), `"grace"`) {
		t.Errorf("after a grace-only update: %+v\n%s", s, raw)
	}
	if _, got, err := c.Get(ctx, "a"); err != nil || got.UpdatedAt != s.UpdatedAt {
		t.Errorf("get: %+v %v, want what Update returned", got, err)
	}
}

// TestClientErrors: an answer other than 2xx is an *APIError with the
// server's message, field and status.
func TestClientErrors(t *testing.T) {
	e := defaultEnv(t)
	c := NewClient(ClientConfig{URL: e.srv.URL, Token: token, Timeout: 5 * time.Second})
	ctx := context.Background()
	grace := "forever"
	shop := "a.myshopify.com"
	_, _, err := c.Update(ctx, "a", SiteChange{ShopDomain: &shop, Grace: &grace})
	var ae *APIError
	if !errors.As(err, &ae) || ae.Code != 400 || ae.Field != "grace" || !strings.HasPrefix(err.Error(), "admin API: field grace: ") {
		t.Errorf("bad grace: %v (%+v), want a 400 naming the field", err, ae)
	}
	if _, _, err := c.Get(ctx, "nope"); !errors.As(err, &ae) || ae.Code != 404 {
		t.Errorf("unknown site: %v, want a 404", err)
	}
	wrong := NewClient(ClientConfig{URL: e.srv.URL, Token: "wrong", Timeout: 5 * time.Second})
	if _, _, err := wrong.List(ctx); !errors.As(err, &ae) || ae.Code != 401 {
		t.Errorf("wrong token: %v, want a 401", err)
	}
	down := NewClient(ClientConfig{URL: "http://127.0.0.1:1", Token: token, Timeout: 5 * time.Second})
	if _, _, err := down.List(ctx); err == nil || !strings.Contains(err.Error(), "-admin.url") {
		t.Errorf("unreachable: %v, want the flag named", err)
	}
}
