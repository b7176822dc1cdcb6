// Package freshness reports how current ClickHouse is: the time of the newest
// row of each table the sink writes, read from ClickHouse itself, so it
// measures the whole path (ingest, Kafka, join, sink, ClickHouse) and keeps
// aging when any part of it stops. SRE reads it as an age:
//
//	time() - purchasesync_freshness_newest_row_timestamp_seconds
//
// The tables and their columns are purchases.updated_at (a registration, a
// match or a refund), discrepancies.detected_at and raw_events.received_at
// (every accepted event). A table without rows has no series yet.
//
// Each read is one `SELECT max(column)` per table: a scan of one DateTime
// column (4 bytes a row before compression). At the default interval of 30 s
// that is cheap for tables of tens of millions of rows; raise
// -freshness.interval for much larger ones.
//
// Metrics (prefix purchasesync_freshness_):
// newest_row_timestamp_seconds{table}, query_errors_total{table},
// query_duration_seconds{table}.
package freshness
