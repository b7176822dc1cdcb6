package adminapi_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"purchasesync/processors/control/adminapi"
	"purchasesync/processors/control/shopifyfake"
	"purchasesync/schemas"
)

const (
	shop  = "demo.myshopify.com"
	token = "shpat_secret_value"
)

func newClient(t *testing.T, fake *shopifyfake.Server, mod func(*adminapi.Config)) *adminapi.Client {
	t.Helper()
	cfg := adminapi.DefaultConfig()
	cfg.URL = fake.URL()
	cfg.MinBackoff = 5 * time.Millisecond
	cfg.MaxBackoff = 20 * time.Millisecond
	if mod != nil {
		mod(&cfg)
	}
	var logs strings.Builder
	c, err := adminapi.New(cfg, adminapi.Deps{Tokens: adminapi.Tokens{shop: token}, Logger: slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if strings.Contains(logs.String(), token) {
			t.Errorf("a log line contains the access token:\n%s", logs.String())
		}
	})
	return c
}

func newFake(t *testing.T, scopes ...string) *shopifyfake.Server {
	fake := shopifyfake.Start(t)
	fake.AddShop(shop, token, scopes...)
	return fake
}

func TestNoTokenMakesNoRequest(t *testing.T) {
	fake := newFake(t, "read_orders")
	c := newClient(t, fake, nil)
	_, err := c.AccessScopes(context.Background(), "other.myshopify.com")
	if !errors.Is(err, adminapi.ErrNoToken) || !strings.Contains(err.Error(), "PURCHASESYNC_SHOPIFY_ACCESSTOKENS") {
		t.Fatalf("got %v, want ErrNoToken naming the setting", err)
	}
	if n := fake.Calls("currentAppInstallation"); n != 0 {
		t.Errorf("%d requests without a token", n)
	}
}

func TestRejectedTokenIsNotRetriedNorLeaked(t *testing.T) {
	fake := shopifyfake.Start(t)
	fake.AddShop(shop, "another-token", "read_orders")
	c := newClient(t, fake, nil)
	_, err := c.AccessScopes(context.Background(), shop)
	if !errors.Is(err, adminapi.ErrUnauthorized) {
		t.Fatalf("got %v, want ErrUnauthorized", err)
	}
	if strings.Contains(err.Error(), token) {
		t.Errorf("error contains the token: %v", err)
	}
	if n := fake.Calls("unauthorized"); n != 1 {
		t.Errorf("%d requests, want 1 (no retry on 401)", n)
	}
}

func TestScopesAndSubscriptionLifecycle(t *testing.T) {
	fake := newFake(t, "read_products", "write_orders")
	c := newClient(t, fake, nil)
	ctx := context.Background()
	scopes, err := c.AccessScopes(ctx, shop)
	if err != nil || strings.Join(scopes, ",") != "read_products,write_orders" {
		t.Fatalf("scopes %v %v", scopes, err)
	}
	if !adminapi.HasScope(scopes, "read_orders") || adminapi.HasScope(scopes, "read_customers") {
		t.Error("HasScope: write_orders must imply read_orders and nothing else")
	}

	const uri = "https://hooks.example.com/webhooks/shopify"
	sub, err := c.CreateWebhookSubscription(ctx, shop, adminapi.TopicOrdersCreate, uri)
	if err != nil || !strings.HasPrefix(sub.ID, "gid://shopify/WebhookSubscription/") || sub.URI != uri {
		t.Fatalf("create: %+v %v", sub, err)
	}
	_, err = c.CreateWebhookSubscription(ctx, shop, adminapi.TopicOrdersCreate, uri)
	if !adminapi.IsTaken(err) {
		t.Fatalf("duplicate create: %v, want 'already been taken'", err)
	}
	_, err = c.CreateWebhookSubscription(ctx, shop, adminapi.TopicOrdersCreate, "http://insecure.example.com/x")
	var ue *adminapi.UserErrors
	if !errors.As(err, &ue) || !strings.Contains(err.Error(), "webhookSubscription.uri: Address protocol http:// is not supported") {
		t.Fatalf("http uri: %v, want userErrors naming the field", err)
	}
	// Pagination: 60 subscriptions of another topic are not listed, and 60
	// of ours span two pages of 50.
	for i := range 60 {
		fake.AddSubscription(shop, "ORDERS_UPDATED", fmt.Sprintf("https://x.example.com/%d", i))
		fake.AddSubscription(shop, "ORDERS_CREATE", fmt.Sprintf("https://y.example.com/%d", i))
	}
	subs, err := c.WebhookSubscriptions(ctx, shop, adminapi.TopicOrdersCreate)
	if err != nil || len(subs) != 61 {
		t.Fatalf("list: %d %v, want 61", len(subs), err)
	}
	deleted, err := c.DeleteWebhookSubscription(ctx, shop, sub.ID)
	if err != nil || !deleted {
		t.Fatalf("delete: %v %v", deleted, err)
	}
	deleted, err = c.DeleteWebhookSubscription(ctx, shop, sub.ID)
	if err != nil || deleted {
		t.Fatalf("second delete: %v %v, want (false, nil)", deleted, err)
	}
}

func TestLegacyVersionUsesCallbackURL(t *testing.T) {
	fake := newFake(t, "read_orders")
	c := newClient(t, fake, func(c *adminapi.Config) { c.APIVersion = "2024-10" })
	sub, err := c.CreateWebhookSubscription(context.Background(), shop, adminapi.TopicOrdersCreate, "https://h.example.com/w")
	if err != nil || sub.URI != "https://h.example.com/w" {
		t.Fatalf("create on 2024-10: %+v %v", sub, err)
	}
}

func TestRetriesServerErrors(t *testing.T) {
	fake := newFake(t, "read_orders")
	c := newClient(t, fake, func(c *adminapi.Config) { c.MaxAttempts = 3 })
	fake.FailNext(2, 502)
	if _, err := c.AccessScopes(context.Background(), shop); err != nil {
		t.Fatalf("after 2 failures: %v", err)
	}
	fake.FailNext(3, 503)
	_, err := c.AccessScopes(context.Background(), shop)
	if err == nil || !strings.Contains(err.Error(), "giving up after 3 attempts") {
		t.Fatalf("after 3 failures: %v", err)
	}
	if n := fake.Calls("failed"); n != 5 {
		t.Errorf("%d failed requests, want 5", n)
	}
}

func TestThrottledWaitsForRestoreRate(t *testing.T) {
	fake := newFake(t, "read_orders")
	c := newClient(t, fake, nil)
	// Empty bucket refilling 20 points/s; a mutation costs 10.
	fake.SetThrottle(shop, 1000, 20, 0)
	start := time.Now()
	if _, err := c.CreateWebhookSubscription(context.Background(), shop, adminapi.TopicOrdersCreate, "https://a.example.com/w"); err != nil {
		t.Fatal(err)
	}
	if d := time.Since(start); d < 450*time.Millisecond || d > 2*time.Second {
		t.Errorf("took %s, want about 10/20 s", d)
	}
	if n := fake.Calls("throttled"); n != 1 {
		t.Errorf("throttled %d times, want 1 (one wait computed from the restore rate)", n)
	}
	// The bucket is empty again: the next call waits before asking instead
	// of being throttled.
	start = time.Now()
	if _, err := c.CreateWebhookSubscription(context.Background(), shop, adminapi.TopicRefundsCreate, "https://a.example.com/w"); err != nil {
		t.Fatal(err)
	}
	if d := time.Since(start); d < 400*time.Millisecond {
		t.Errorf("second call took %s, want a wait of about 0.5 s", d)
	}
	if n := fake.Calls("throttled"); n != 1 {
		t.Errorf("second call was throttled (%d), want the client to wait for the bucket it knows", n-1)
	}
}

func TestThrottleWaitIsBounded(t *testing.T) {
	fake := newFake(t, "read_orders")
	c := newClient(t, fake, func(c *adminapi.Config) { c.MaxThrottleWait = 50 * time.Millisecond })
	fake.SetThrottle(shop, 1000, 1, 0) // one point a second: hopeless
	_, err := c.AccessScopes(context.Background(), shop)
	if err == nil || !strings.Contains(err.Error(), "still throttled") {
		t.Fatalf("got %v, want a throttling error", err)
	}
}

func TestMaxCostExceededIsNotRetried(t *testing.T) {
	fake := newFake(t, "read_orders")
	c := newClient(t, fake, nil)
	_, err := c.Order(context.Background(), shop, "gid://shopify/Order/1", 250)
	var ae *adminapi.Error
	if !errors.As(err, &ae) || !strings.Contains(err.Error(), "exceeds the single query max cost") || fake.Calls("order") != 1 {
		t.Fatalf("got %v after %d calls", err, fake.Calls("order"))
	}
}

func TestOrderNotFound(t *testing.T) {
	fake := newFake(t, "read_orders")
	c := newClient(t, fake, nil)
	if _, err := c.Order(context.Background(), shop, "gid://shopify/Order/42", 10); !errors.Is(err, adminapi.ErrOrderNotFound) {
		t.Fatalf("got %v", err)
	}
}

func TestOrdersAccessDenied(t *testing.T) {
	fake := newFake(t, "read_products")
	c := newClient(t, fake, nil)
	_, err := c.OrderRefs(context.Background(), shop, adminapi.OrdersQuery{CreatedTo: time.Now(), PageSize: 5}, "")
	if err == nil || !strings.Contains(err.Error(), "read_orders") {
		t.Fatalf("got %v", err)
	}
}

func TestOrdersPaginationAndRESTShape(t *testing.T) {
	fake := newFake(t, "read_orders")
	c := newClient(t, fake, nil)
	base := time.Now().Add(-time.Hour).Truncate(time.Second)
	fake.AddOrder(shop, shopifyfake.Order{CreatedAt: base.Add(-2 * time.Hour)}) // outside the window
	var want []shopifyfake.Order
	for i := range 23 {
		want = append(want, fake.AddOrder(shop, shopifyfake.Order{CreatedAt: base.Add(time.Duration(i) * time.Second), Subtotal: shopifyfake.Money{Shop: "1.00"}}))
	}
	big := shopifyfake.Order{
		ID: 18446744073709551615, CreatedAt: base.Add(time.Minute), Email: "Buyer@Example.com", Test: true,
		Currency: "USD", PresentmentCurrency: "EUR",
		Subtotal: shopifyfake.Money{Shop: "110.00", Presentment: "100.00"}, DiscountCodes: []string{"SAVE10"},
		Customer:        &shopifyfake.Customer{ID: 9007199254740993, Email: "buyer@example.com", FirstName: "Ann"},
		ShippingAddress: &shopifyfake.Address{Zip: "10115", City: "Berlin"},
		Compared:        map[string]string{},
	}
	// Every compared field, at its GraphQL path, with a value of its own.
	for _, f := range schemas.ComparedFields {
		big.Compared[f.Name] = f.Example
	}
	for i := range 25 {
		big.LineItems = append(big.LineItems, shopifyfake.LineItem{ProductID: 9007199254740995, VariantID: uint64(i + 1), SKU: fmt.Sprint("SKU", i), Title: "Tea", Quantity: 2, Price: shopifyfake.Money{Shop: "2.20", Presentment: "2.00"}})
	}
	big = fake.AddOrder(shop, big)
	want = append(want, big)

	q := adminapi.OrdersQuery{CreatedFrom: base, CreatedTo: base.Add(2 * time.Minute), PageSize: 10}
	var got []adminapi.OrderRef
	after, pages := "", 0
	for {
		page, err := c.OrderRefs(context.Background(), shop, q, after)
		if err != nil {
			t.Fatal(err)
		}
		pages++
		got = append(got, page.Orders...)
		if !page.HasNextPage {
			break
		}
		after = page.EndCursor
	}
	if pages != 3 || len(got) != len(want) {
		t.Fatalf("%d pages, %d orders; want 3 pages, %d orders", pages, len(got), len(want))
	}
	for i := range want {
		if got[i].LegacyResourceID != fmt.Sprint(want[i].ID) {
			t.Fatalf("order %d: id %s, want %d (oldest first)", i, got[i].LegacyResourceID, want[i].ID)
		}
	}
	ref := got[len(got)-1]
	if ref.Name != big.Name || ref.Number.String() != fmt.Sprint(big.Number) {
		t.Errorf("ref %+v does not identify %s", ref, big.Name)
	}
	last, err := c.Order(context.Background(), shop, ref.ID, 10)
	if err != nil {
		t.Fatal(err)
	}
	if n := fake.Calls("order"); n != 3 {
		t.Errorf("%d order calls for 25 line items by 10, want 3", n)
	}
	if len(last.LineItems.Nodes) != 25 {
		t.Fatalf("big order has %d line items, want all 25", len(last.LineItems.Nodes))
	}
	body, err := adminapi.RESTOrderJSON(last)
	if err != nil {
		t.Fatal(err)
	}
	o, err := schemas.ParseShopifyOrder(body)
	if err != nil {
		t.Fatalf("REST shape does not parse: %v\n%s", err, body)
	}
	checks := map[string][2]string{
		"id":              {string(o.ID), "18446744073709551615"},
		"order_number":    {string(o.OrderNumber), fmt.Sprint(big.Number)},
		"name":            {o.Name, big.Name},
		"line.product_id": {string(o.LineItems[24].ProductID), "9007199254740995"},
		"line.price":      {string(o.LineItems[24].Price), "2.20"},
		"line.sku":        {o.LineItems[24].SKU, "SKU24"},
		"created_at":      {o.CreatedAtTime().Format(time.RFC3339), big.CreatedAt.Format(time.RFC3339)},
		"test":            {fmt.Sprint(o.Test), "true"},
	}
	for _, f := range schemas.ComparedFields {
		checks[f.Name] = [2]string{f.Shopify(o), f.Example}
	}
	for f, c := range checks {
		if c[0] != c[1] {
			t.Errorf("%s: got %q, want %q", f, c[0], c[1])
		}
	}
	if k, err := o.OrderKeyValue(schemas.OrderKeyNumber); err != nil || k != fmt.Sprint(big.Number) {
		t.Errorf("order_number key: %q %v", k, err)
	}
}

// TestReconciliationCarriesANewComparedField: a compared field that the
// typed Order does not know (here the order's client IP, as a stand-in for
// a row added to schemas.ComparedFields) is selected, read and written into
// the REST order by its row alone.
func TestReconciliationCarriesANewComparedField(t *testing.T) {
	saved := schemas.ComparedFields
	defer func() { schemas.ComparedFields = saved }()
	last := &schemas.ComparedFields[len(schemas.ComparedFields)-1]
	*last = schemas.ComparedField{Name: "client_ip", GraphQL: "clientIp", REST: "browser_ip", Example: "203.0.113.9",
		Shopify: func(o *schemas.ShopifyOrder) string { return o.BrowserIP }}
	fake := newFake(t, "read_orders")
	c := newClient(t, fake, nil)
	o := fake.AddOrder(shop, shopifyfake.Order{Compared: map[string]string{"client_ip": last.Example}})
	got, err := c.Order(context.Background(), shop, orderGID(o.ID), 10)
	if err != nil {
		t.Fatal(err)
	}
	body, err := adminapi.RESTOrderJSON(got)
	if err != nil {
		t.Fatal(err)
	}
	parsed, err := schemas.ParseShopifyOrder(body)
	if err != nil {
		t.Fatalf("%v\n%s", err, body)
	}
	if parsed.BrowserIP != last.Example {
		t.Errorf("reconciled order lacks the new field: %s", body)
	}
	if fake.SchemaErrors() != nil {
		t.Errorf("the new field's selection or answer does not match Shopify's schema: %v", fake.SchemaErrors())
	}
}

func TestTokens(t *testing.T) {
	for _, in := range []string{`{"A.myshopify.com":"t1","b.myshopify.com":"t2"}`, "a.myshopify.com=t1, B.myshopify.com=t2"} {
		toks, err := adminapi.ParseTokens(in)
		if err != nil {
			t.Fatal(err)
		}
		if v, ok := toks.Token("a.myshopify.com"); !ok || v != "t1" {
			t.Errorf("%s: a → %q %v", in, v, ok)
		}
		if v, ok := toks.Token("B.myshopify.com"); !ok || v != "t2" {
			t.Errorf("%s: b → %q %v", in, v, ok)
		}
		for _, s := range []string{fmt.Sprint(toks), fmt.Sprintf("%v %+v %#v", toks, toks, toks)} {
			if strings.Contains(s, "t1") {
				t.Errorf("printing tokens leaks them: %s", s)
			}
		}
	}
	if _, err := adminapi.ParseTokens("a.myshopify.com"); err == nil {
		t.Error("entry without '=' accepted")
	}
	if _, err := adminapi.ParseTokens(`{"a.myshopify.com": secret}`); err == nil || strings.Contains(err.Error(), "secret") {
		t.Errorf("bad JSON: %v (must fail without quoting the input)", err)
	}

	path := filepath.Join(t.TempDir(), "tokens.json")
	os.WriteFile(path, []byte(`{"a.myshopify.com":"old"}`), 0o600)
	f, err := adminapi.NewTokenFile(path)
	if err != nil {
		t.Fatal(err)
	}
	f.CheckEvery = 0
	if v, _ := f.Token("a.myshopify.com"); v != "old" {
		t.Fatalf("got %q", v)
	}
	os.WriteFile(path, []byte(`{"a.myshopify.com":"rotated!"}`), 0o600)
	if v, _ := f.Token("a.myshopify.com"); v != "rotated!" {
		t.Errorf("after rotation got %q", v)
	}
	os.WriteFile(path, []byte(`{broken`), 0o600)
	if v, _ := f.Token("a.myshopify.com"); v != "rotated!" {
		t.Errorf("a broken file must keep the last good tokens, got %q", v)
	}
	if _, err := adminapi.NewTokenFile(filepath.Join(t.TempDir(), "missing.json")); err == nil {
		t.Error("missing file accepted")
	}
}
