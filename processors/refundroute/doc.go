// Package refundroute routes the refunds of order_number and order_name
// sites to their purchase.
//
// A refunds/create webhook names its order only by Shopify's order id,
// while those sites' purchases are keyed site/<order_number or name>. So
// the ingest writes, for each of their orders, an index record
// (key site/<order id>, value the order number, header
// record-kind=order-index) to shopify.order_ids.v1, and their refunds to
// the same topic under the same key. The router joins the two inside
// Kafka:
//
//   - an index record is remembered per key (for Config.IndexHorizon), and
//     releases the refunds that were waiting for it;
//   - a refund whose index is known is written to shopify.orders.v1 under
//     site/<order number>, with its raw body and headers and a routed-from
//     header (its key here), where the join applies it as it applies an
//     order_id site's refund (each refund id once);
//   - a refund whose index has not come within Config.OrderWait, in event
//     time (the received-at of the partition's later records), goes to
//     shopify.unrouted.v1 keyed by shop domain with reason
//     refund_order_unknown, and is counted.
//
// Guarantees: the outputs of a poll and its input offsets commit in one
// Kafka transaction (GroupTransactSession, read_committed), so a
// rebalance, crash or broker restart loses nothing and writes nothing
// twice. The state is not written anywhere: the input topic is its
// changelog. When a partition is (re)assigned, or after an abort, its
// state is rebuilt from the topic's start up to the first record the
// session polls, without writing; the rules (state.go) depend only on the
// records in order, so the rebuilt state is the one live processing had.
// Config.Validate keeps OrderWait + IndexHorizon a day below the topic's
// retention, so what retention deletes had expired already. A redelivered
// refund is routed again; the join counts a refund id once.
//
// Not covered: orders that reach shopify.orders.v1 without the ingest
// (reconciliation, replays) write no index, so their refunds expire to
// unrouted; a site whose order_key changes keeps its old orders' refunds on
// the old path.
//
// Metrics (prefix purchasesync_refundroute_): routed_total, expired_total,
// index_records_total, skipped_total, waiting_refunds, index_keys,
// restore_duration_seconds, restored_records_total,
// transaction_aborts_total, session_restarts_total, ready.
package refundroute
