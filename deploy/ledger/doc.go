// Package ledger is the end-to-end ledger check: it sends synthetic orders
// whose right outcome is known to a purchasesync deployment — signed
// Shopify webhooks, retried and redelivered as Shopify does, and storefront
// events sent once each from their own shopper's address, as browsers do —
// then reads ClickHouse and reports, per scenario, every order that was
// lost, registered twice, registered from the wrong side, wrongly matched,
// flagged or valued, and every discrepancy missed or raised in vain.
//
// The ground truth is the scenario, adjusted by what the pipeline was
// entitled to refuse: a storefront event answered 503 or not at all is lost
// to a browser, which does not retry, unless it landed all the same (a
// refused request may still be written); raw_events, the sink's audit copy
// of every accepted event, says which did. Which side registers an order
// whose two events were close to the grace is decided by the ingest's
// received-at stamps (DESIGN §3 rule 9); raw_events keeps them to the
// second, so an order whose stamps cannot tell (only under faults, when a
// webhook's retries spread over seconds) accepts either side and is counted
// as ambiguous.
//
// Run is the whole check; loadgen's `ledger` command wires it to flags and
// deploy/local/chaos.sh runs it while it breaks the pipeline around it.
package ledger
