package schemas

import (
	"fmt"
	"strings"
)

// Topic names without the deployment prefix. Topics.Name adds the prefix.
const (
	TopicShopifyOrders       = "shopify.orders.v1"
	TopicStorefrontPurchases = "storefront.purchases.v1"
	TopicShopifyUnrouted     = "shopify.unrouted.v1"
	// TopicShopifyOrderIDs is the refund router's input, keyed
	// "site/<Shopify order id>": an order index record per orders/create of
	// a site whose order_key is not order_id, and those sites' refunds
	// (which name their order by id alone). processors/refundroute joins
	// the two and writes each refund to shopify.orders.v1 under its
	// purchase's key.
	TopicShopifyOrderIDs = "shopify.order_ids.v1"
	TopicCompliance      = "compliance.v1"
	TopicJoinState       = "join.state.v1"
	TopicPurchases       = "purchases.v1"
	TopicDiscrepancies   = "discrepancies.v1"
	TopicSites           = "sites.v1"
	// TopicShopifyApp holds the app's lifecycle webhooks (app/uninstalled),
	// keyed by shop domain, the raw body byte for byte with the webhook
	// headers; the uninstall processor consumes it, and it stays as the
	// record of each uninstall.
	TopicShopifyApp = "shopify.app.v1"
	// TopicShopifyTokens is the compacted store of per-shop Admin API
	// access tokens written by the OAuth flow: key shop domain, value an
	// encrypted envelope (processors/control/appauth), tombstone = forgotten.
	TopicShopifyTokens = "shopify.tokens.v1"
	// TopicDeadLetter holds records a sink could not load (invalid for the
	// table); header "reason" says why and "source-topic" where it came from.
	TopicDeadLetter = "deadletter.v1"
)

// DefaultTopicPrefix is the prefix every topic name gets unless configured.
const DefaultTopicPrefix = "purchasesync."

// Header names on the raw topics (DESIGN §2).
const (
	HeaderShopDomain  = "shop-domain"
	HeaderWebhookID   = "webhook-id"
	HeaderEventID     = "event-id"
	HeaderTopic       = "topic"
	HeaderAPIVersion  = "api-version"
	HeaderTriggeredAt = "triggered-at"
	HeaderReceivedAt  = "received-at"
	HeaderSite        = "site"
	HeaderClientIP    = "client-ip"
	HeaderUserAgent   = "user-agent"
	HeaderOrigin      = "origin"
	HeaderReason      = "reason"
	// HeaderReconciled marks an order that reconciliation fetched from the
	// Admin API because its webhook never arrived; the join registers it with
	// registered_via = reconciliation.
	HeaderReconciled  = "reconciled"
	HeaderSourceTopic = "source-topic"
	// HeaderRecordKind tells an order index record (RecordKindOrderIndex)
	// from a raw webhook on shopify.order_ids.v1; raw webhooks have none.
	HeaderRecordKind = "record-kind"
	// HeaderRoutedFrom marks a refund the refund router wrote to
	// shopify.orders.v1: its key on shopify.order_ids.v1 ("site/<order id>").
	HeaderRoutedFrom = "routed-from"
)

// RecordKindOrderIndex is the record-kind of an order index record: key
// "site/<Shopify order id>", value the purchase's order_number (its key on
// shopify.orders.v1 is Key(site, value)).
const RecordKindOrderIndex = "order-index"

// Topics resolves topic names under one prefix.
type Topics struct{ Prefix string }

// Name returns the full name of topic t (one of the Topic* constants).
func (t Topics) Name(topic string) string { return t.Prefix + topic }

// Group names a stage's consumer group after the prefix: purchasesync-<stage>
// under the default prefix, and a group of its own for every deployment
// (or test) with its own prefix, so that two never share one by accident.
func (t Topics) Group(stage string) string { return strings.TrimSuffix(t.Prefix, ".") + "-" + stage }

// Key builds the record key "site/order_number" used by every keyed topic.
// Site slugs cannot contain '/', so the first '/' splits the key again.
func Key(site, orderNumber string) string { return site + "/" + orderNumber }

// SplitKey is the inverse of Key.
func SplitKey(key string) (site, orderNumber string, err error) {
	site, orderNumber, ok := strings.Cut(key, "/")
	if !ok || site == "" || orderNumber == "" {
		return "", "", fmt.Errorf("malformed key %q: want site/order_number", key)
	}
	return site, orderNumber, nil
}
