//go:build !purchasesync_broken_rule4

package join

// brokenRule4 is false in every real build. The ledger check's own test
// builds the pipeline with -tags purchasesync_broken_rule4 to prove that the
// check catches a wrong join (deploy/ledger: TestFunctionalLedgerFindsABrokenRule).
const brokenRule4 = false
