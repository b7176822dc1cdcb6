// Package compliance carries out Shopify's mandatory privacy webhooks
// (DESIGN §7) on the ClickHouse tables of DESIGN §5. It consumes
// compliance.v1 (written by ingest after the HMAC check) as the consumer
// group <prefix>-compliance (purchasesync-compliance by default) and
// commits a record only once its request is complete, so a crash or a
// ClickHouse outage delays a request but never drops it (Shopify's
// deadline is 30 days).
//
// It is a ClickHouse consumer, so it lives under sinks/ beside
// sinks/clickhouse, whose tables it mutates. It takes from
// sinks/internal/chschema what the two must agree on (the tables, their
// columns of personal data, cluster mode's local tables, the insert
// settings), and from schemas/retry the project's one backoff. It runs in
// the control process (purchasesync control, and run), whose metric prefix
// it takes.
//
//   - customers/redact: the customer's purchases are found by email, Shopify
//     customer id, the listed order ids, and raw events whose body mentions
//     the email; for each such (site, order_number), purchases lose email,
//     names, customer id, zip, address and IP, discrepancies lose the values
//     of their email/customer_id/shipping_zip fields, and raw_events lose
//     their body.
//   - shop/redact: every row of the shop's sites is deleted from purchases,
//     discrepancies and raw_events (sites from the registry, and from
//     raw_events.shop_domain for a site already removed).
//   - customers/data_request: a JSON report of the customer's purchases is
//     written to Config.ReportDir (for the store owner; Shopify does not pass
//     it on); the log gets counts only.
//
// Each request is logged when received and when complete (topic, shop,
// Shopify's customer and request ids, never the email), and counted. It is
// also recorded in the ClickHouse table compliance_requests (migration 0005):
// a 'received' row before it is carried out and a 'completed' row after,
// before the offset commit, keyed by its compliance.v1 topic/partition/offset
// so that a request redone after a crash stays one row (read with FINAL). The
// table holds no personal data. Unreadable requests are only logged and
// counted.
//
// Mutations are ALTER TABLE … UPDATE/DELETE, asynchronous on every server
// version, so completion waits until system.mutations shows them done.
// Limits: Kafka copies (raw topics, join state) are not rewritten; they
// expire with the topics' retention (30 days) and the join's dedupe horizon
// (7 days). A purchase the sink loads after the redaction ran keeps its data
// until a later request.
//
// Kafka and ClickHouse outages never end Run. A failing request is retried
// with capped exponential backoff; a failed offset commit stays owed (the
// next commit carries it, or it is retried after a backoff) and is dropped
// only for partitions this member lost, whose next owner redoes the request
// (harmless: compliance_requests collapses by request_id). Ready is nil
// while the processor works normally, and says why not before it first
// joined its group and during an outage episode; each episode is logged once
// when it starts and once when it ends, and each request once when received
// and once when completed, however many attempts it took.
//
// Metrics (prefix given by the registerer): compliance_requests_total{topic,outcome},
// compliance_mutations_total{table}, compliance_request_duration_seconds{topic},
// compliance_ready, compliance_outages_total{dependency}.
package compliance
