//go:build purchasesync_broken_rule4

package join

// brokenRule4 breaks rule 4 on purpose: a late browser registers its
// purchase a second time instead of only matching the webhook's. Only the
// ledger check's test builds with this tag (-tags purchasesync_broken_rule4);
// a binary built so must never run anywhere else.
const brokenRule4 = true
