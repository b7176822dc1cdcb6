// Package schemas is the contract between the stages of purchasesync and the
// tools outside it: topic names, record keys, header names, the typed records
// that travel between stages, and the pure parsers of the two raw bodies
// (Shopify's orders/create webhook and the storefront purchase event).
//
// Nothing here does I/O. Ingest uses the parsers to validate and derive keys;
// the join uses the same parsers to compare; so neither stage imports the
// other.
//
// Two tables hold what several stages must agree on. WebhookTopics
// (webhooks.go) is every Shopify webhook topic consumed: its GraphQL enum,
// the Kafka topic it rides on (orders/create and refunds/create share
// shopify.orders.v1, told apart by the "topic" header) and who subscribes
// it. ComparedFields (fields.go) is every field the join compares: how each
// side reads it, how it is compared, whether it is personal data (redacted
// by compliance, masked for people) and where the Admin GraphQL API and
// the REST order carry it (reconciliation). Adding a webhook topic is a
// row there; adding a compared field is a row here, plus the struct field
// in storefront.go or shopifyorder.go when a body is not parsed for it yet. Topic names carry a version suffix (".v1") that is bumped, never
// edited, when a record changes incompatibly.
//
//	topic                     key                  value
//	shopify.orders.v1         site/order_number    webhook body, byte for byte
//	storefront.purchases.v1   site/order_number    storefront body, byte for byte
//	shopify.unrouted.v1       shop domain          signed webhooks that cannot be routed
//	compliance.v1             shop domain          privacy webhooks
//	join.state.v1             site/order_number    join state (compacted changelog)
//	purchases.v1              site/order_number    Purchase (JSON)
//	discrepancies.v1          site/order_number    Discrepancy (JSON)
//	sites.v1                  site slug            Site (JSON), compacted
package schemas
