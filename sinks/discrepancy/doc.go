// Package discrepancy tells the integration team about discrepancies between
// storefront registrations and Shopify orders. (The discrepancies themselves
// reach ClickHouse through sinks/clickhouse; this is the optional notifier,
// off unless -notifier.url is set.)
//
// It consumes discrepancies.v1 as its own consumer group and posts per-site
// digests to a Slack-compatible incoming webhook ({"text": …}): at most one
// message per site per Interval, with counts by field and a few examples.
// Values are masked by schemas.MaskValue (j***@example.com; the personal
// fields of schemas.ComparedFields by their mask, "***" without one; other
// values shortened), so no full email address leaves the pipeline. A failed post is retried a few times,
// honouring Retry-After; if it still fails, the digest is kept and tried
// again at the next interval, with whatever arrived meanwhile.
//
// Offsets: a partition's committed offset never passes the first record of
// a digest not yet delivered, so a restart re-reads (and re-reports) it
// rather than losing it. Notifications are at least once.
//
// Kafka faults (a broker restart, a lost connection or group session, a
// refused commit) never end Run: a commit that fails, as a request or for
// one partition, is tried again at the next poll. Ready is nil while the
// notifier consumes normally, and says why not before it first joined its
// group and during a Kafka outage episode, logged once when it starts and
// once when it ends.
//
// Metrics (prefix purchasesync_notifier_): discrepancies_total{field},
// messages_total{outcome}, pending_sites, ready, outages_total{dependency}.
package discrepancy
