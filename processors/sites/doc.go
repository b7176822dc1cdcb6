// Package sites follows the compacted site registry topic sites.v1 into
// memory and writes it. Every process holds a Registry: it reads the topic
// whole at start (Ready reports when it has), then follows it live, so a
// record written by the admin API reaches every process within a second or
// two. Lookups are lock-free reads of an immutable snapshot.
//
// Metrics (prefix purchasesync_sites_): sites (gauge), records_total,
// invalid_records_total.
package sites
