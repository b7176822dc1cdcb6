// Package sites follows the compacted site registry topic sites.v1 into
// memory and writes it. Every process holds a Registry: it reads the topic
// whole at start (Ready reports when it has), then follows it live, so a
// record written by the admin API reaches every process within a second or
// two. Lookups are lock-free reads of an immutable snapshot.
//
// Kafka faults never end Run, not even at start: it retries until it has
// loaded the topic (an error line once after ReadyTimeout), then follows it
// through broker restarts. Ready stays true once loaded (lookups answer from
// the last state); ReadyErr also reports a Kafka outage episode, which is
// logged once when it starts and once when it ends.
//
// Metrics (prefix purchasesync_sites_): sites (gauge), records_total,
// invalid_records_total, ready, outages_total{dependency}.
package sites
