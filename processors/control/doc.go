// Package control is the Shopify control plane of DESIGN §7: the Purchase
// Syncing switch, the subscription watchdog and reconciliation.
//
// Enable checks that the shop granted read_orders (else it fails with a
// message for the merchant and changes nothing), finds or creates the
// ORDERS_CREATE and REFUNDS_CREATE webhook subscriptions to the callback URL
// (public base URL + /webhooks/shopify), then stores the ORDERS_CREATE
// subscription id and purchase_syncing=true in sites.v1. Disable deletes our
// subscriptions, then stores the id cleared and the flag unset. Both look at
// Shopify's state first, so they are idempotent and a retry after a failure
// half-way converges (a created subscription is found, not created twice).
// The REFUNDS_CREATE subscription is found by topic and callback URL; the
// site record has a field only for the orders one.
//
// The watchdog periodically verifies that each enabled site's subscriptions
// exist (Shopify deletes one after 8 failed deliveries over 4 hours),
// recreates what is missing, logs the gap and triggers a reconciliation of
// the site back to before the gap.
//
// Reconciliation periodically lists, per enabled site, the orders created in
// [now-window, now-minAge] through the Admin API (cursor pagination,
// throttle-aware) and produces every order the pipeline never saw into
// shopify.orders.v1, as the REST JSON a webhook would have carried, with
// the usual headers plus "reconciled: true"; the join registers it with
// registered_via = reconciliation, or treats it as a repeat if the webhook
// came meanwhile.
//
// "Never saw" is decided from shopify.orders.v1 itself: the service follows
// the topic from now-MaxLookback and keeps the set of keys
// (site/order_number) it holds, and a pass starts only once that follower
// has read up to the end offsets taken at the pass's start. So an order is
// recovered exactly when no webhook (and no earlier reconciliation) for its
// key reached Kafka. ClickHouse was not used: it lags the topic, and a
// storefront-only purchase there would hide a missing webhook. Memory is one
// map entry per key within MaxLookback. Run reconciliation in one process
// only (-reconcile.interval=0 and -watchdog.interval=0 turn them off
// elsewhere): two reconcilers would recover the same order twice (the join
// would count the second as a repeat).
//
// Kafka faults never end Run. The follower of shopify.orders.v1 waits for
// its start offsets and rides out broker restarts (franz-go reconnects);
// Ready is nil once it started and while Kafka answers, and an outage
// episode is logged once when it starts and once when it ends. A pass
// triggered by a subscription gap that fails (Kafka or Shopify away) is
// retried with backoff until it works, instead of being dropped: the
// periodic passes do not look back as far. Its first failure is logged, not
// each retry.
//
// Metrics (prefix given by the registerer, purchasesync_control_ in cmd):
// orders_checked_total, orders_recovered_total, reconcile_passes_total{outcome},
// subscriptions_recreated_total{topic}, subscription_gaps_total,
// watchdog_checks_total{outcome}, switch_total{action,outcome}, ready,
// outages_total{dependency},
// and the Admin API client's shopify_* metrics.
package control
