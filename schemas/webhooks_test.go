package schemas

import (
	"slices"
	"strings"
	"testing"
)

// The table is what the ingest routes by and the control plane subscribes
// from: a wrong row would send a topic to the wrong Kafka topic or subscribe
// a topic Shopify does not have.
func TestWebhookTopics(t *testing.T) {
	seen := map[string]bool{}
	for _, w := range WebhookTopics {
		if seen[w.Name] {
			t.Errorf("%s listed twice", w.Name)
		}
		seen[w.Name] = true
		// Shopify's enum spelling of a topic is its name upper-cased, "/"
		// as "_" (orders/create is ORDERS_CREATE).
		if want := strings.ToUpper(strings.ReplaceAll(w.Name, "/", "_")); w.GraphQL != "" && w.GraphQL != want {
			t.Errorf("%s: GraphQL %q, want %q", w.Name, w.GraphQL, want)
		}
		compliance := strings.HasPrefix(w.Name, "customers/") || strings.HasPrefix(w.Name, "shop/")
		app := strings.HasPrefix(w.Name, "app/")
		switch {
		case app && (w.Kafka != TopicShopifyApp || w.GraphQL == "" || !w.AtInstall):
			t.Errorf("%s: an app topic goes to %s, subscribed at install, got %q subscribed as %q (at install %v)", w.Name, TopicShopifyApp, w.Kafka, w.GraphQL, w.AtInstall)
		case app:
		case compliance && (w.Kafka != TopicCompliance || w.GraphQL != ""):
			t.Errorf("%s: a privacy topic goes to %s unsubscribed, got %q subscribed as %q", w.Name, TopicCompliance, w.Kafka, w.GraphQL)
		case !compliance && (w.Kafka != TopicShopifyOrders || w.GraphQL == ""):
			t.Errorf("%s: an order topic goes to %s, subscribed per shop, got %q subscribed as %q", w.Name, TopicShopifyOrders, w.Kafka, w.GraphQL)
		}
	}
	if got := SubscribedWebhookTopics(); !slices.Equal(got, []string{"ORDERS_CREATE", "REFUNDS_CREATE"}) {
		// The first is the one whose id the site record keeps.
		t.Errorf("subscribed %v, want [ORDERS_CREATE REFUNDS_CREATE]", got)
	}
	if got := InstallWebhookTopics(); !slices.Equal(got, []string{"APP_UNINSTALLED"}) {
		t.Errorf("subscribed at install %v, want [APP_UNINSTALLED]", got)
	}
	if w, ok := LookupWebhookTopic(" refunds/create "); !ok || w.Name != WebhookRefundsCreate {
		t.Errorf("lookup with spaces: %+v %v", w, ok)
	}
	if _, ok := LookupWebhookTopic("orders/updated"); ok {
		t.Error("orders/updated is not consumed")
	}
}
