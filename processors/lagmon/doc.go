// Package lagmon reports the consumer lag of the pipeline's consumer groups
// (the join and the ClickHouse sink) per topic and partition, as Kafka sees
// it: the distance from each group's committed offset to the partition's end
// offset. It complements the lag the stages report about themselves
// (purchasesync_join_input_lag_records, purchasesync_sink_consumer_lag_records):
// those vanish when a stage is down or stuck in a rebalance, while a group's
// committed offsets stay in Kafka, so this lag keeps growing and the alerts
// keep firing. The group's member count tells a stopped stage (0 members)
// from a slow one.
//
// A Monitor reads every group once per Interval with kadm's Lag (describe
// groups, fetch committed offsets, list start and end offsets) over its own
// client. It only reads: it never joins a group or commits.
//
// Topics written in transactions (purchases.v1, discrepancies.v1, read by the
// sink) end in a commit marker that takes an offset of its own, so a group
// that has read everything may show a lag of one record per partition.
//
// Metrics (prefix purchasesync_consumer_): lag_records{group,topic,partition},
// committed_offset{group,topic,partition}, group_members{group},
// lag_errors_total{group}.
package lagmon
