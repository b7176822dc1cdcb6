package shopify

import (
	"testing"

	"purchasesync/processors/sites/sitestest"
	"purchasesync/schemas"
)

func TestRouteTopic(t *testing.T) {
	f := func(topic string, dest Destination, reason string) {
		t.Helper()
		r := RouteTopic(topic)
		if r.Dest != dest || r.Reason != reason {
			t.Errorf("RouteTopic(%q) = %+v, want {%v %q}", topic, r, dest, reason)
		}
	}
	f("orders/create", ToOrders, "")
	f(" orders/create ", ToOrders, "")
	f("customers/redact", ToCompliance, "")
	f("shop/redact", ToCompliance, "")
	f("customers/data_request", ToCompliance, "")
	f("refunds/create", ToOrders, "")
	f("app/uninstalled", ToApp, "")
	f("orders/updated", ToUnrouted, ReasonTopicNotHandled)
	f("ORDERS/CREATE", ToUnrouted, ReasonTopicNotHandled) // Shopify's topics are lower case
	f("", ToUnrouted, ReasonTopicNotHandled)
}

func TestDestinationTopic(t *testing.T) {
	for d, want := range map[Destination]string{
		ToOrders:     schemas.TopicShopifyOrders,
		ToCompliance: schemas.TopicCompliance,
		ToUnrouted:   schemas.TopicShopifyUnrouted,
		ToOrderIDs:   schemas.TopicShopifyOrderIDs,
		ToApp:        schemas.TopicShopifyApp,
	} {
		if got := d.Topic(); got != want {
			t.Errorf("%d.Topic() = %s, want %s", d, got, want)
		}
	}
}

func TestDecide(t *testing.T) {
	sites := sitestest.New(
		schemas.Site{Site: "acme", ShopDomain: "acme.myshopify.com", OrderKey: schemas.OrderKeyID, PurchaseSyncing: true},
		schemas.Site{Site: "bolt", ShopDomain: "bolt.myshopify.com", OrderKey: schemas.OrderKeyNumber, PurchaseSyncing: true},
		schemas.Site{Site: "cargo", ShopDomain: "cargo.myshopify.com", OrderKey: schemas.OrderKeyName, PurchaseSyncing: true},
		schemas.Site{Site: "dormant", ShopDomain: "dormant.myshopify.com", OrderKey: schemas.OrderKeyID},
	)
	order := `{"id": 9007199254740993, "order_number": 1001, "name": " #1001 ", "line_items": [{"id": 1}]}`
	f := func(topic, shop, body string, dest Destination, reason, key string) {
		t.Helper()
		d := Decide(topic, shop, []byte(body), sites)
		if d.Dest != dest || d.Reason != reason || d.Key != key {
			t.Errorf("Decide(%q, %q, %.40q) = %+v, want {%v %q %q}", topic, shop, body, d, dest, reason, key)
		}
	}
	// Keys by order_key mode; 2^53+1 keeps its last digit.
	f("orders/create", "acme.myshopify.com", order, ToOrders, "", "acme/9007199254740993")
	f("orders/create", "bolt.myshopify.com", order, ToOrders, "", "bolt/1001")
	f("orders/create", "cargo.myshopify.com", order, ToOrders, "", "cargo/#1001")
	f("orders/create", " ACME.myshopify.com", order, ToOrders, "", "acme/9007199254740993")
	f("orders/create", "acme.myshopify.com", `{"id":"18446744073709551615"}`, ToOrders, "", "acme/18446744073709551615")
	// Signed but not routable: kept on unrouted, keyed by shop.
	f("orders/create", "nobody.myshopify.com", order, ToUnrouted, ReasonUnknownShop, "nobody.myshopify.com")
	f("orders/create", "", order, ToUnrouted, ReasonUnknownShop, "")
	f("orders/create", "dormant.myshopify.com", order, ToUnrouted, ReasonSyncingDisabled, "dormant.myshopify.com")
	f("orders/create", "acme.myshopify.com", order[:30], ToUnrouted, ReasonUnparsable, "acme.myshopify.com")
	f("orders/create", "acme.myshopify.com", `{"id": 1.5}`, ToUnrouted, ReasonUnparsable, "acme.myshopify.com")
	f("orders/create", "acme.myshopify.com", `{"name": "#1"}`, ToUnrouted, ReasonUnparsable, "acme.myshopify.com")
	f("orders/create", "bolt.myshopify.com", `{"id": 5}`, ToUnrouted, ReasonUnparsable, "bolt.myshopify.com")
	f("orders/create", "acme.myshopify.com", `[1]`, ToUnrouted, ReasonUnparsable, "acme.myshopify.com")
	// Compliance never looks at the registry; an unreadable body goes on.
	f("customers/redact", "nobody.myshopify.com", `not json`, ToCompliance, "", "nobody.myshopify.com")
	f("shop/redact", "acme.myshopify.com", `{}`, ToCompliance, "", "acme.myshopify.com")
	f("shop/redact", "acme.myshopify.com", `{"shop_domain":"ACME.myshopify.com"}`, ToCompliance, "", "acme.myshopify.com")
	// A body about another shop than the header (H5: a custom app's secret
	// is bound to the header's shop, and the processor acts on the body's).
	f("shop/redact", "acme.myshopify.com", `{"shop_domain":"victim.myshopify.com"}`, ToUnrouted, ReasonShopMismatch, "acme.myshopify.com")
	f("customers/redact", "acme.myshopify.com", `{"shop_domain":"victim.myshopify.com","customer":{"email":"a@b.co"}}`, ToUnrouted, ReasonShopMismatch, "acme.myshopify.com")
	// Refunds join their purchase by order id; in the other modes they go
	// to the refund router, keyed by order id too.
	f("refunds/create", "acme.myshopify.com", `{"id": 7, "order_id": 9007199254740993}`, ToOrders, "", "acme/9007199254740993")
	f("refunds/create", "bolt.myshopify.com", `{"id": 7, "order_id": 1}`, ToOrderIDs, "", "bolt/1")
	f("refunds/create", "cargo.myshopify.com", `{"id": 7, "order_id": 9007199254740993}`, ToOrderIDs, "", "cargo/9007199254740993")
	f("refunds/create", "bolt.myshopify.com", `{"id": 7}`, ToUnrouted, ReasonUnparsable, "bolt.myshopify.com")
	f("refunds/create", "acme.myshopify.com", `{"order_id": 1}`, ToUnrouted, ReasonUnparsable, "acme.myshopify.com")
	f("refunds/create", "dormant.myshopify.com", `{"id": 7, "order_id": 1}`, ToUnrouted, ReasonSyncingDisabled, "dormant.myshopify.com")
	// app/uninstalled goes to shopify.app.v1 whatever the shop's site
	// says: none, syncing off, or on; never to unrouted for those reasons.
	shopBody := func(d string) string {
		return `{"id": 548380009, "domain": "shop.example.com", "myshopify_domain": "` + d + `"}`
	}
	f("app/uninstalled", "acme.myshopify.com", shopBody("acme.myshopify.com"), ToApp, "", "acme.myshopify.com")
	f("app/uninstalled", "nobody.myshopify.com", shopBody("nobody.myshopify.com"), ToApp, "", "nobody.myshopify.com")
	f("app/uninstalled", "dormant.myshopify.com", shopBody("dormant.myshopify.com"), ToApp, "", "dormant.myshopify.com")
	f("app/uninstalled", "ACME.myshopify.com", shopBody("Acme.myshopify.com"), ToApp, "", "acme.myshopify.com")
	f("app/uninstalled", "acme.myshopify.com", `not json`, ToApp, "", "acme.myshopify.com")
	f("app/uninstalled", "acme.myshopify.com", shopBody("victim.myshopify.com"), ToUnrouted, ReasonShopMismatch, "acme.myshopify.com")
}

// TestDecideIndex: an order of an order_number or order_name site carries
// its index record (site/<id> → order number); an order_id site's none.
func TestDecideIndex(t *testing.T) {
	sites := sitestest.New(
		schemas.Site{Site: "acme", ShopDomain: "acme.myshopify.com", OrderKey: schemas.OrderKeyID, PurchaseSyncing: true},
		schemas.Site{Site: "bolt", ShopDomain: "bolt.myshopify.com", OrderKey: schemas.OrderKeyNumber, PurchaseSyncing: true},
		schemas.Site{Site: "cargo", ShopDomain: "cargo.myshopify.com", OrderKey: schemas.OrderKeyName, PurchaseSyncing: true},
	)
	order := []byte(`{"id": 9007199254740993, "order_number": 1001, "name": " #1001 "}`)
	for shop, want := range map[string][2]string{
		"acme.myshopify.com":  {"", ""},
		"bolt.myshopify.com":  {"bolt/9007199254740993", "1001"},
		"cargo.myshopify.com": {"cargo/9007199254740993", "#1001"},
	} {
		d := Decide("orders/create", shop, order, sites)
		if d.IndexKey != want[0] || d.IndexValue != want[1] {
			t.Errorf("%s: index %q → %q, want %q → %q", shop, d.IndexKey, d.IndexValue, want[0], want[1])
		}
		if d2 := Decide("refunds/create", shop, []byte(`{"id":1,"order_id":9007199254740993}`), sites); d2.IndexKey != "" {
			t.Errorf("%s: a refund carries an index record", shop)
		}
	}
}
