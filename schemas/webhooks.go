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
)

// WebhookTopic is one Shopify webhook topic and where it goes.
type WebhookTopic struct {
	// Name is the X-Shopify-Topic spelling ("orders/create").
	Name string
	// GraphQL is the WebhookSubscriptionTopic enum value the control plane
	// subscribes per shop ("ORDERS_CREATE"); empty for the privacy topics,
	// which the app's configuration declares for every shop at once.
	GraphQL string
	// Kafka is the raw topic (without prefix) a verified webhook of this
	// topic is written to: TopicShopifyOrders, keyed site/order_number, or
	// TopicCompliance, keyed by shop domain.
	Kafka string
}

// WebhookTopics is every topic the pipeline consumes; a signed webhook of
// any other topic goes to shopify.unrouted.v1 (reason topic_not_handled).
var WebhookTopics = []WebhookTopic{
	{Name: WebhookOrdersCreate, GraphQL: "ORDERS_CREATE", Kafka: TopicShopifyOrders},
	// Refunds join their purchase (the join marks it refunded); the record
	// keeps its X-Shopify-Topic in the "topic" header, which is how the join
	// tells a refund from an order on the same topic.
	{Name: WebhookRefundsCreate, GraphQL: "REFUNDS_CREATE", Kafka: TopicShopifyOrders},
	{Name: WebhookCustomersDataRequest, Kafka: TopicCompliance},
	{Name: WebhookCustomersRedact, Kafka: TopicCompliance},
	{Name: WebhookShopRedact, Kafka: TopicCompliance},
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
// control plane subscribes per shop, in table order.
func SubscribedWebhookTopics() []string {
	var out []string
	for _, t := range WebhookTopics {
		if t.GraphQL != "" {
			out = append(out, t.GraphQL)
		}
	}
	return out
}
