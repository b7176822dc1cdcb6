package adminapi_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"testing"
	"time"

	"purchasesync/processors/control/adminapi"
	"purchasesync/processors/control/shopifyfake"
	"purchasesync/processors/control/shopifyfake/schemacheck"
)

// TestEveryOperationMatchesShopifySchema runs every operation the client
// has, in its success and its refusal shapes, against the fake with every
// request and answer checked against Shopify's published Admin API schema
// of DefaultAPIVersion (shopifyfake.Start fails the test on a mismatch).
func TestEveryOperationMatchesShopifySchema(t *testing.T) {
	schemacheck.ForTest(t, adminapi.DefaultAPIVersion) // skip, or fail under PURCHASESYNC_FUNCTIONAL_TESTS=1
	ctx := context.Background()
	fake := newFake(t, "read_orders")
	c := newClient(t, fake, nil)
	const uri = "https://hooks.example.com/webhooks/shopify"

	exercised := map[string]func(t *testing.T){
		"accessScopes": func(t *testing.T) {
			if s, err := c.AccessScopes(ctx, shop); err != nil || len(s) != 1 {
				t.Fatalf("accessScopes: %v %v", s, err)
			}
		},
		"webhookSubscriptionCreate": func(t *testing.T) {
			if _, err := c.CreateWebhookSubscription(ctx, shop, adminapi.TopicOrdersCreate, uri); err != nil {
				t.Fatal(err)
			}
			if _, err := c.CreateWebhookSubscription(ctx, shop, adminapi.TopicRefundsCreate, uri); err != nil {
				t.Fatal(err)
			}
			// userErrors: taken, and a non-HTTPS address.
			if _, err := c.CreateWebhookSubscription(ctx, shop, adminapi.TopicOrdersCreate, uri); !adminapi.IsTaken(err) {
				t.Fatalf("duplicate: %v", err)
			}
			var ue *adminapi.UserErrors
			if _, err := c.CreateWebhookSubscription(ctx, shop, adminapi.TopicOrdersCreate, "http://x.example.com/"); !errors.As(err, &ue) {
				t.Fatalf("http: %v", err)
			}
		},
		"webhookSubscriptions": func(t *testing.T) {
			for range 3 {
				fake.AddSubscription(shop, "ORDERS_CREATE", "https://other.example.com/"+time.Now().Format(time.RFC3339Nano))
			}
			subs, err := c.WebhookSubscriptions(ctx, shop, adminapi.TopicOrdersCreate)
			if err != nil || len(subs) < 4 {
				t.Fatalf("list: %v %v", subs, err)
			}
			// Another topic's empty list: endCursor is null.
			if subs, err := c.WebhookSubscriptions(ctx, shop, "APP_UNINSTALLED"); err != nil || len(subs) != 0 {
				t.Fatalf("empty list: %v %v", subs, err)
			}
		},
		"webhookSubscriptionDelete": func(t *testing.T) {
			subs := fake.Subscriptions(shop)
			if ok, err := c.DeleteWebhookSubscription(ctx, shop, subs[0].ID); err != nil || !ok {
				t.Fatalf("delete: %v %v", ok, err)
			}
			if ok, err := c.DeleteWebhookSubscription(ctx, shop, subs[0].ID); err != nil || ok {
				t.Fatalf("delete again (userErrors): %v %v", ok, err)
			}
		},
		"orders": func(t *testing.T) {
			from := time.Now().Add(-time.Hour)
			for range 5 {
				fake.AddOrder(shop, shopifyfake.Order{CreatedAt: from.Add(time.Minute)})
			}
			q := adminapi.OrdersQuery{CreatedFrom: from, CreatedTo: time.Now(), PageSize: 2}
			after, n := "", 0
			for {
				p, err := c.OrderRefs(ctx, shop, q, after)
				if err != nil {
					t.Fatal(err)
				}
				n += len(p.Orders)
				if !p.HasNextPage {
					break
				}
				after = p.EndCursor
			}
			if n < 5 {
				t.Fatalf("%d orders", n)
			}
			// No order at all: empty nodes, null endCursor.
			if p, err := c.OrderRefs(ctx, shop, adminapi.OrdersQuery{CreatedTo: time.Unix(0, 0), PageSize: 2}, ""); err != nil || len(p.Orders) != 0 {
				t.Fatalf("empty page: %+v %v", p, err)
			}
		},
		"order": func(t *testing.T) {
			o := fake.AddOrder(shop, shopifyfake.Order{
				Email: "buyer@example.com", Currency: "USD", PresentmentCurrency: "EUR",
				Subtotal: shopifyfake.Money{Shop: "11.00", Presentment: "10.00"}, DiscountCodes: []string{"SAVE10"},
				Customer:        &shopifyfake.Customer{ID: 7, Email: "buyer@example.com", FirstName: "Ann"},
				ShippingAddress: &shopifyfake.Address{City: "Berlin", Zip: "10115"},
				LineItems: []shopifyfake.LineItem{
					{ProductID: 1, VariantID: 2, SKU: "TEA", Title: "Tea", Quantity: 1, Price: shopifyfake.Money{Shop: "5.50"}},
					{Title: "Custom item", Quantity: 2, Price: shopifyfake.Money{Shop: "0.25"}}, // no product, variant, sku
					{ProductID: 1, VariantID: 3, Title: "Tea", Quantity: 1, Price: shopifyfake.Money{Shop: "5.50"}},
				},
			})
			bare := fake.AddOrder(shop, shopifyfake.Order{})  // no email, customer, address, lines
			got, err := c.Order(ctx, shop, orderGID(o.ID), 2) // two pages of lines
			if err != nil || len(got.LineItems.Nodes) != 3 {
				t.Fatalf("order: %+v %v", got, err)
			}
			if _, err := c.Order(ctx, shop, orderGID(bare.ID), 2); err != nil {
				t.Fatal(err)
			}
			if _, err := c.Order(ctx, shop, "gid://shopify/Order/1", 2); !errors.Is(err, adminapi.ErrOrderNotFound) {
				t.Fatalf("missing order: %v", err)
			}
		},
	}
	// ACCESS_DENIED answers (errors with data null, or order null).
	denied := func(t *testing.T) {
		fake.SetScopes(shop, "read_products")
		defer fake.SetScopes(shop, "read_orders")
		if _, err := c.OrderRefs(ctx, shop, adminapi.OrdersQuery{CreatedTo: time.Now(), PageSize: 2}, ""); err == nil {
			t.Fatal("orders without read_orders: no error")
		}
		if _, err := c.Order(ctx, shop, "gid://shopify/Order/1", 2); err == nil {
			t.Fatal("order without read_orders: no error")
		}
	}

	// Every operation of the client (c.Do(ctx, shop, "<op>", ...) in the
	// package's source) must be exercised here.
	var missing []string
	for _, op := range clientOperations(t) {
		if exercised[op] == nil {
			missing = append(missing, op)
		}
	}
	if len(missing) > 0 {
		t.Fatalf("operations of the client not exercised against the schema: %v (add them to this test)", missing)
	}
	for _, op := range []string{"accessScopes", "webhookSubscriptionCreate", "webhookSubscriptions", "webhookSubscriptionDelete", "orders", "order"} {
		t.Run(op, exercised[op])
	}
	t.Run("accessDenied", denied)
	for _, root := range []string{"currentAppInstallation", "webhookSubscriptions", "webhookSubscriptionCreate", "webhookSubscriptionDelete", "orders", "order"} {
		if fake.Calls(root) == 0 {
			t.Errorf("no %s request reached the fake", root)
		}
	}
	// Deprecated fields still work in this version; each is a change to
	// make before the version that removes it.
	for _, d := range fake.DeprecatedFields() {
		t.Logf("deprecated in Shopify's schema: %s", d)
	}
	if errs := fake.SchemaErrors(); len(errs) > 0 {
		t.Fatalf("%d requests or answers do not match Shopify's %s schema (listed above)", len(errs), adminapi.DefaultAPIVersion)
	}
}

func orderGID(id uint64) string { return fmt.Sprintf("gid://shopify/Order/%d", id) }

var doRE = regexp.MustCompile(`c\.Do\(ctx, shop, "([A-Za-z]+)"`)

// clientOperations lists the operation names the client's source passes to Do.
func clientOperations(t *testing.T) []string {
	files, err := filepath.Glob("*.go")
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string]bool{}
	for _, f := range files {
		if strings.HasSuffix(f, "_test.go") {
			continue
		}
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range doRE.FindAllStringSubmatch(string(b), -1) {
			seen[m[1]] = true
		}
	}
	var out []string
	for op := range seen {
		out = append(out, op)
	}
	sort.Strings(out)
	if len(out) < 6 {
		t.Fatalf("found only %v calls of c.Do in the client's source: has its form changed?", out)
	}
	return out
}
