// Package keymode is the order-key detector: it finds the sites whose
// storefront JavaScript sends another Shopify identifier than the site's
// order_key mode says, and which mode fits.
//
// With the wrong mode a storefront purchase and its webhook get different
// keys (site/#1001 and site/5837291049), so the join never pairs them: no
// field mismatch, no discrepancy, and every purchase is registered twice.
// The two sides land on different partitions, so the detector re-keys
// them by site, in two stages of one Detector:
//
//   - observe (group purchasesync-keymode-observe) reads shopify.orders.v1
//     and storefront.purchases.v1 and writes one small observation per
//     orders/create webhook (its id, order_number and name) and per
//     storefront event (the order number as sent) to
//     keymode.observations.v1, keyed by site. Refunds are skipped. It never
//     touches the ingest or the join: it is a reader of their topics, in
//     its own group, and a new group starts MaxAge back.
//   - judge (group purchasesync-keymode) keeps, per site, a window of the
//     recent webhooks and storefront events (at most MaxEntries of each,
//     none older than MaxAge before the newest: bounded memory per site
//     whatever the site's volume) and pairs a storefront value with the
//     webhook whose identifier it equals under some mode, exactly as the
//     join normalises keys (schemas.KeyModesMatching). The evidence is how
//     many of the window's pairs each mode explains; a pair whose modes
//     exclude the site's configured one, met while syncing was on, is a
//     suspected double registration.
//
// State is in Kafka, like the join's: every FlushInterval the changed
// windows go to the compacted keymode.state.v1 (co-partitioned with the
// observations; a version byte leads each value) and their summaries to
// keymode.evidence.v1, and only then are the input offsets committed. A
// newly assigned partition's windows are restored from the state partition
// of the same number before its observations are applied. Both stages are
// at least once; applying an observation the window already holds (the
// same webhook id, the same storefront value) changes nothing, so a replay
// after a crash counts nothing twice.
//
// The admin API diagnoses a site from its evidence and its current
// configuration (schemas.DiagnoseKeyMode), read through a Table that
// follows keymode.evidence.v1. The detector itself counts the syncing
// sites whose evidence contradicts their mode
// (purchasesync_keymode_contradicted_sites, alert
// PurchasesyncOrderKeyContradicted) and logs each by name.
//
// Kafka faults never end Run: each stage restarts its session after a
// backoff and re-reads from its committed offsets; Ready reports an outage
// episode, logged once. Run the detector in one process or several: the
// groups share the partitions.
//
// Metrics (prefix purchasesync_keymode_): observations_total{side},
// skipped_total{reason}, sites, contradicted_sites,
// suspected_doubles_total, flushes_total{outcome}, restore_seconds, ready,
// outages_total{dependency}; the Table's evidence_sites.
package keymode
