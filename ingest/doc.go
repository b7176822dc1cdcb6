// Package ingest is the public HTTP front door of purchasesync (fasthttp):
// Shopify webhooks and the storefront's purchase events go in, raw records
// come out on Kafka, byte for byte, with the headers of DESIGN §2.
//
// Endpoints (the one route switch is Server.handle in server.go; the
// OpenAPI document is openapi.json, checked against the handler by a test):
//
//	POST    /webhooks/shopify             every Shopify webhook topic
//	POST    /v1/sites/{site}/purchases    storefront event (OPTIONS: CORS preflight)
//	GET     /healthz                      process alive
//	GET     /readyz                       Kafka reachable and site registry loaded
//
// Guarantees:
//   - A 200 (webhook) or 202 (storefront) is sent only after Kafka
//     acknowledged the record (acks=all, idempotent producer). When Kafka
//     cannot take it within Config.ProduceTimeout, the answer is 503 with
//     Retry-After: the sender retries, nothing acknowledged is lost.
//   - A webhook without a valid X-Shopify-Hmac-Sha256 under one of the
//     configured secrets gets 401 and writes nothing.
//   - A signed webhook is never refused for its content: orders/create goes
//     to shopify.orders.v1 keyed site/order_number (order_key mode of the
//     shop's site); refunds/create too, keyed site/<order id>, for an
//     order_id site. For an order_number or order_name site an order also
//     writes an index record (site/<order id> → order number) to
//     shopify.order_ids.v1, in the same produce the answer waits for, and
//     its refunds go there, keyed by order id, for processors/refundroute to
//     key by order number; compliance topics go to compliance.v1;
//     app/uninstalled goes to shopify.app.v1 keyed by shop, for every shop
//     (with or without a site, syncing on or off); anything that
//     cannot be routed (other topics, unknown shop, syncing off, no key in
//     the body) goes to shopify.unrouted.v1 with a reason header. See
//     package shopify for the route table.
//   - Records never alias fasthttp's request buffers, which are reused when
//     the handler returns.
//   - Overload is bounded, not queued: at most Config.MaxInflightProduces
//     records await Kafka; a request waits Config.MaxQueueDuration for a
//     slot, then gets 503. Storefront events are also rate-limited per client
//     address and per site (429). Webhooks are not: they come signed from
//     Shopify's many addresses, and a 429 would only make Shopify retry.
//
// Metrics (prefix purchasesync_ingest_): requests_total{endpoint,code},
// request_duration_seconds{endpoint}, request_body_bytes{endpoint},
// inflight_requests, signature_failures_total, unrouted_total{reason},
// produce_duration_seconds{topic}, produce_errors_total{topic,kind},
// rate_limited_total{scope}, inflight_capacity, inflight_current,
// limit_reached_total, limit_timeouts_total.
package ingest
