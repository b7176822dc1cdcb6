package schemas

import "strings"

// The Shopify webhook topics the pipeline consumes (X-Shopify-Topic values).
// WebhookTopics below is the one table of what each means; everything else
// (the ingest's routes, the control plane's subscriptions, the join's
// refund branch, the compliance processor) reads these.
const (
	WebhookOrdersCreate         = "orders/create"
	WebhookRefundsCreate        = "refunds/create"
	WebhookCustomersDataRequest = "customers/data_request"
	WebhookCustomersRedact      = "customers/redact"
	WebhookShopRedact           = "shop/redact"
	// WebhookAppUninstalled: the merchant removed the app; its access token
	// is already revoked when this arrives. The body is the Shop resource
	// (ParseAppUninstalled).
	WebhookAppUninstalled = "app/uninstalled"
)

// WebhookTopic is one Shopify webhook topic and where it goes.
type WebhookTopic struct {
	// Name is the X-Shopify-Topic spelling ("orders/create").
	Name string
	// GraphQL is the WebhookSubscriptionTopic enum value ("ORDERS_CREATE");
	// empty for the privacy topics, which the app's configuration declares
	// for every shop at once.
	GraphQL string
	// AtInstall marks a topic subscribed once per shop when the app is
	// installed (the OAuth callback, the token exchange), not by the
	// Purchase Syncing switch: it must stay subscribed while syncing is off.
	AtInstall bool
	// Kafka is the raw topic (without prefix) a verified webhook of this
	// topic is written to: TopicShopifyOrders, keyed site/order_number, or
	// TopicCompliance or TopicShopifyApp, keyed by shop domain.
	Kafka string
	// Refund marks the topic whose records on shopify.orders.v1 are refunds
	// (keyed by their order_id; the join marks the purchase refunded).
	// Every other record there is an order: WebhookHeaders.IsRefund.
	Refund bool
}

// WebhookTopics is every topic the pipeline consumes; a signed webhook of
// any other topic goes to shopify.unrouted.v1 (reason topic_not_handled).
var WebhookTopics = []WebhookTopic{
	{Name: WebhookOrdersCreate, GraphQL: "ORDERS_CREATE", Kafka: TopicShopifyOrders},
	// Refunds join their purchase (the join marks it refunded); the record
	// keeps its X-Shopify-Topic in the "topic" header, which is how the join
	// tells a refund from an order on the same topic.
	{Name: WebhookRefundsCreate, GraphQL: "REFUNDS_CREATE", Kafka: TopicShopifyOrders, Refund: true},
	{Name: WebhookCustomersDataRequest, Kafka: TopicCompliance},
	{Name: WebhookCustomersRedact, Kafka: TopicCompliance},
	{Name: WebhookShopRedact, Kafka: TopicCompliance},
	// Routed whatever the shop's site says (none, syncing off): the
	// uninstall processor forgets the token and turns syncing off.
	{Name: WebhookAppUninstalled, GraphQL: "APP_UNINSTALLED", AtInstall: true, Kafka: TopicShopifyApp},
}

// LookupWebhookTopic finds an X-Shopify-Topic value (surrounding spaces
// ignored) in WebhookTopics.
func LookupWebhookTopic(name string) (WebhookTopic, bool) {
	name = strings.TrimSpace(name)
	for _, t := range WebhookTopics {
		if t.Name == name {
			return t, true
		}
	}
	return WebhookTopic{}, false
}

// SubscribedWebhookTopics are the GraphQL enum values of the topics the
// Purchase Syncing switch subscribes per shop (and the watchdog keeps), in
// table order.
func SubscribedWebhookTopics() []string {
	var out []string
	for _, t := range WebhookTopics {
		if t.GraphQL != "" && !t.AtInstall {
			out = append(out, t.GraphQL)
		}
	}
	return out
}

// InstallWebhookTopics are the GraphQL enum values of the topics subscribed
// once per shop at install (APP_UNINSTALLED), in table order.
func InstallWebhookTopics() []string {
	var out []string
	for _, t := range WebhookTopics {
		if t.GraphQL != "" && t.AtInstall {
			out = append(out, t.GraphQL)
		}
	}
	return out
}
