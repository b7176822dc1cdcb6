// Package clickhouse loads the pipeline's output into ClickHouse: purchases.v1
// into purchases, discrepancies.v1 into discrepancies, and both raw topics
// (shopify.orders.v1, storefront.purchases.v1) into raw_events. It also owns
// the schema: numbered migrations in sql/migrations, recorded in
// schema_migrations, and the analyst queries in sql/queries that the README
// quotes.
//
// Guarantees. Several sink instances share the partitions as one consumer
// group. Records are read with read_committed and buffered per table; a batch
// is inserted at BatchRows rows, BatchBytes bytes or FlushInterval, with an
// explicit column list and LZ4 over the native protocol. Offsets are
// committed only after every table's insert succeeded and every unloadable
// record reached the dead-letter topic. A failed insert is retried with capped
// exponential backoff for as long as the sink runs, with the same rows, while
// consumption waits. One batch is written while the next one fills (decoding
// overlaps with inserting), so memory stays at two batches. A retried or re-read batch
// writes rows with the same sort key and version, so ReplacingMergeTree
// collapses them and SELECT … FINAL shows each row once. Hence: no loss and,
// in FINAL, no duplicates, whatever crashes or outages happen.
//
// Kafka faults (a broker restart, a lost connection, a coordinator move, a
// lost group session, a failed commit or dead-letter produce) never end Run.
// Dead letters are retried until Kafka takes them, holding the batch's
// commit. A commit that fails after the inserts is not forgotten: its
// offsets are carried by the next commit, or committed again after a
// backoff while idle, and dropped only when the partition is lost (its next
// owner reads the records again and they collapse in FINAL). Ready is nil
// while the sink consumes normally; before it first joined its group and
// during an outage episode of Kafka or ClickHouse it says why. Probes
// (HealthInterval) notice an outage, and its end, while the sink is idle or
// blocked in a retry. Each episode is logged once when it starts, with its
// first error, and once when it ends, with how long it lasted.
//
// Speed: records of one poll are converted on DecodeWorkers goroutines (a
// hand-written decoder for purchases, decode.go, falling back to
// encoding/json for any shape it does not know), and array and money columns
// reach the driver in ClickHouse's Native format (native.go) instead of
// through its reflection and math/big conversions.
//
// Every row is converted and validated in Go before it is appended (rows.go):
// on ClickHouse 18.16 one bad value poisons a whole batch, and the driver
// truncates decimals and wraps out-of-range dates silently. Records that
// cannot be loaded go to the dead-letter topic with headers reason,
// source-topic, source-partition and source-offset.
//
// Schema: one portable schema for 18.16 and current ClickHouse (README
// "Schema"); only per-insert settings depend on the server version
// (async_insert=0 where it exists).
//
// Cluster mode (Config.Cluster, cluster.go): the same migration files,
// rewritten ON CLUSTER into Replicated <table>_local tables and Distributed
// <table> tables sharded by purchase, which the sink writes with
// insert_distributed_sync=1; schema_migrations is replicated over every
// server. Empty Cluster is one server, or ClickHouse Cloud.
//
// Metrics (prefix purchasesync_sink_): rows_total{table}, batches_total{table},
// batch_duration_seconds{table}, insert_errors_total{table,kind}, retrying,
// retries_total, dead_letters_total{topic,kind}, buffered_rows,
// consumer_lag_records{topic}, end_to_end_latency_seconds{table} (from
// ingest's received-at to the insert), commit_errors_total,
// rounded_values_total, ready, outages_total{dependency}.
package clickhouse
