// Package discrepancy tells the integration team about discrepancies between
// storefront registrations and Shopify orders. (The discrepancies themselves
// reach ClickHouse through sinks/clickhouse; this is the optional notifier,
// off unless -notifier.url is set.)
//
// It consumes discrepancies.v1 as its own consumer group and posts per-site
// digests to a Slack-compatible incoming webhook ({"text": …}): at most one
// message per site per Interval, with counts by field and a few examples.
// Values are masked (j***@example.com; other values shortened), so no full
// email address leaves the pipeline. A failed post is retried a few times,
// honouring Retry-After; if it still fails, the digest is kept and tried
// again at the next interval, with whatever arrived meanwhile.
//
// Offsets: a partition's committed offset never passes the first record of
// a digest not yet delivered, so a restart re-reads (and re-reports) it
// rather than losing it. Notifications are at least once.
//
// Metrics (prefix purchasesync_notifier_): discrepancies_total{field},
// messages_total{outcome}, pending_sites.
package discrepancy
