// Package join is the keyed, exactly-once join of Shopify orders/create
// webhooks (shopify.orders.v1) with storefront purchase events
// (storefront.purchases.v1), both keyed "site/order_number".
//
// Read rules.go first: Decide and Tick are the whole business logic (DESIGN
// §3), pure functions of (state, event or time) → (state, outputs).
//
// Refunds (refunds/create on shopify.orders.v1, under the purchase's key:
// written by the ingest for order_id sites, by processors/refundroute for
// the others) count once per refund id. A refund's amount is taken in the
// purchase's currency from Shopify's numbers (schemas.RefundMoney: the
// transactions' currency, or the other currency of the line items'
// MoneySets); when they do not give it, refunded_amount is unknown (empty,
// NULL in ClickHouse) instead of a wrong sum, refunded_at is still set, and
// decisions_total{outcome="refund_unconverted"} counts it.
//
// The processor around them guarantees:
//   - Co-partitioning: both raw topics, join.state.v1, purchases.v1 and
//     discrepancies.v1 have one partition count (checked at start; the
//     processor refuses to run otherwise) and the group uses the range
//     balancer, so partition p of both inputs goes to one member.
//   - Exactly once: input offsets, changelog writes and outputs commit in one
//     Kafka transaction (franz-go GroupTransactSession, transactional id
//     stable per instance). An aborted transaction (crash, rebalance) drops
//     the in-memory state, which is restored from the compacted changelog
//     join.state.v1 (read_committed) before any input of the partition is
//     processed again.
//   - Kafka faults never end the processor. Any failure of the transactional
//     session (a broker restart, a lost coordinator, a failed begin, flush or
//     end of a transaction) closes it, drops the in-memory state and starts
//     a new session after a capped backoff (250 ms to 5 s): its
//     InitProducerID fences whatever the old one left open, and state is
//     restored from the changelog. Ready reports the episode (one log line
//     when it starts, one when it ends); /readyz and purchasesync_join_ready
//     follow it. Only inputs that are not co-partitioned are fatal.
//   - A record Kafka refuses for good (over its topic's max.message.bytes,
//     read at each session start so the client fails that one record, not a
//     batch) aborts the transaction: franz-go would otherwise commit without
//     it. The input that made it is then sent to the dead-letter topic
//     (reason and source position in headers; without its body if even the
//     dead letter is too large), and everything else is re-done.
//   - Decisions by event time (DESIGN §3 rule 9): the clock of every
//     decision is the ingest's received-at stamp. Each input of a partition
//     has a watermark (the latest received-at read, or a periodic tick at
//     which it was caught up with its end offset); the partition's clock is
//     the earlier of the two. partition.read takes a poll's records into a
//     pending list in received-at order; partition.advance applies those at
//     or before the clock, firing before each record received at T every
//     timer due by T. Live and Replay share read and advance. Pending records
//     are not committed (keepPending rewrites the transaction's offset
//     commit to the first pending offset of each input partition), so an
//     abort or a restart reads them again; a partition with more than
//     MaxPollRecords pending pauses fetching of the input that is ahead
//     (throttle). Pending records wait undecoded; decodeAhead decodes the
//     next ones to apply on every core. Periodic ticks advance a caught-up partition by wall time,
//     so a quiet store does not sit on a webhook-only purchase. Records whose
//     received-at is older than the clock (ingest clock skew, a produce
//     retried for longer than a tick) are applied when read.
//
// State (codec.go, cold.go): each key's state is one compact binary value
// (version byte 2, its compared facts keyed by schemas.ComparedFields name;
// version-1 and JSON values of older versions are read and rewritten at
// the key's next change), the same bytes in memory and in join.state.v1,
// decoded only when an event or a due timer needs it. A key whose two sides
// were seen keeps only that they were. Settled keys (nothing due but their
// expiry: most keys, for most of the dedupe horizon) keep their value in a
// per-partition spill file under -join.stateDir, unlinked once open and
// rebuilt from the changelog at every restore, and in memory only a 16-byte
// reference (offset, length, expiry); expiring one reads nothing back. A
// member restores the partitions it is assigned side by side.
//
// Metrics (prefix purchasesync_join_): decisions_total{outcome},
// discrepancies_total{field}, hold_releases_total{clock}, pending_records,
// paused_inputs, held_purchases, overdue_holds,
// oldest_overdue_hold_seconds, state_keys, spilled_keys, spill_file_bytes,
// restore_seconds,
// restored_keys_total, transaction_seconds, transaction_aborts_total,
// input_lag_records{topic,partition}, invalid_records_total{topic}, ready,
// session_restarts_total, produce_refused_total{topic}.
package join
