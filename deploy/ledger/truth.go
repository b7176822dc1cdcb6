package ledger

import (
	"fmt"
	"math/big"
	"net/http"
	"slices"
	"strings"
	"time"

	"purchasesync/schemas"
)

// Error categories of the report, in its column order.
const (
	catUndelivered = "undelivered"   // a webhook never acknowledged within RetryFor
	catWrongAnswer = "wrong_answer"  // forged accepted, malformed accepted, a good event refused as bad
	catLost        = "lost"          // acknowledged but absent, or due a purchase that is not there
	catDoubled     = "doubled"       // registered twice, or a discrepancy recorded twice
	catUnexpected  = "unexpected"    // registered though nothing of it was accepted
	catVia         = "wrong_via"     // registered from the wrong side, or the side changed later
	catMatched     = "wrong_matched" // matched when it must not be, or the converse
	catTest        = "wrong_test"    // test flag lost or invented
	catID          = "wrong_id"      // Shopify's order id not kept digit for digit
	catAmount      = "wrong_amount"  // subtotal or currency not the registering side's, or changed later
	catMissedDisc  = "missed_disc"   // a due discrepancy absent
	catFalseDisc   = "false_disc"    // a discrepancy that must not be
	viaEither      = "storefront|webhook"
)

var categories = []string{catUndelivered, catWrongAnswer, catLost, catDoubled, catUnexpected, catVia, catMatched, catTest, catID, catAmount, catMissedDisc, catFalseDisc}

// seen is what raw_events holds of one order: how many events of each side
// landed and their received-at stamps, to the second.
type seen struct {
	sf, wh       int
	sfMin, sfMax time.Time
	whMin, whMax time.Time
}

// row is an order's purchase in ClickHouse (purchases FINAL).
type row struct {
	via                string
	matched, test      bool
	subtotal, currency string
	orderID            string
}

// kafkaFacts is what the pipeline's output topics hold of one order: every
// version of its purchase and every discrepancy record, before ClickHouse's
// ReplacingMergeTree folds repeats away.
type kafkaFacts struct {
	registrations int             // version-1 records of purchases.v1
	vias          map[string]bool // registered_via of every version
	values        map[string]bool // "subtotal currency" of every version
	discs         map[string]int  // kind|field → records of discrepancies.v1
}

// facts is everything the pipeline left of one order. seen is nil when
// raw_events holds nothing of it, row nil without a purchase, kafka nil when
// the output topics were not read.
type facts struct {
	seen  *seen
	row   *row
	discs map[string]bool // kind|field in discrepancies FINAL
	kafka *kafkaFacts
}

// rules are the settings the truth depends on.
type rules struct {
	grace, webhookWait time.Duration
	// ownAddrs: each shopper sent from its own address, so a per-address
	// rate limit (429) can never be right.
	ownAddrs bool
}

// finding is one wrong outcome.
type finding struct {
	category, detail string
}

// outcome is what the check makes of one order.
type outcome struct {
	findings  []finding
	ambiguous bool // the stamps could not tell which side registers
	refused   int  // storefront events refused (503, no answer) that did not land
}

// judge compares one order's outcome with its ground truth.
func judge(o *order, f facts, ru rules) outcome {
	var out outcome
	add := func(cat, format string, a ...any) {
		out.findings = append(out.findings, finding{cat, fmt.Sprintf(format, a...)})
	}
	s, r := f.seen, f.row
	if s == nil {
		s = &seen{}
	}
	sfIn, whIn := s.sf > 0, s.wh > 0

	// What was answered, and what that promised.
	if o.whGaveUp {
		add(catUndelivered, "webhook not acknowledged within the retry time (%d tries)", len(o.wh))
	}
	for _, a := range o.wh {
		if a.code/100 == 4 {
			add(catWrongAnswer, "a correctly signed webhook answered %d", a.code)
		}
	}
	if o.whAcked && !whIn {
		add(catLost, "webhook acknowledged (200) but not in raw_events")
	}
	for _, a := range o.forged {
		if a.code/100 == 2 {
			add(catWrongAnswer, "a forged webhook answered %d", a.code)
		}
	}
	for _, a := range o.malformedAns {
		if a.code/100 == 2 {
			add(catWrongAnswer, "a malformed storefront event answered %d", a.code)
		}
	}
	sfAcked := false
	for _, a := range o.sf {
		switch {
		case a.code == http.StatusAccepted:
			sfAcked = true
		case refusable(a, ru.ownAddrs):
		default:
			add(catWrongAnswer, "a good storefront event answered %d", a.code)
		}
	}
	if sfAcked && !sfIn {
		add(catLost, "storefront event acknowledged (202) but not in raw_events")
	}
	if len(o.sf) > 0 && !sfAcked && !sfIn {
		out.refused = 1
	}

	// What must have been registered.
	if !sfIn && !whIn {
		if r != nil {
			add(catUnexpected, "registered via %s, but none of its events was accepted", r.via)
		}
		return out
	}
	if k := f.kafka; k != nil {
		switch {
		case k.registrations > 1:
			add(catDoubled, "%d version-1 registrations in purchases.v1", k.registrations)
		case k.registrations == 0 && r != nil:
			add(catLost, "in ClickHouse but no version-1 registration in purchases.v1")
		}
		if len(k.vias) > 1 {
			add(catVia, "registered_via changed between versions: %v", sortedKeys(k.vias))
		}
		if len(k.values) > 1 {
			add(catAmount, "registered subtotal changed between versions: %v", sortedKeys(k.values))
		}
		for d, n := range k.discs {
			if n > 1 {
				add(catDoubled, "discrepancy %s recorded %d times in discrepancies.v1", strings.TrimSuffix(d, "|"), n)
			}
		}
	}
	if r == nil {
		add(catLost, "no purchase in ClickHouse (storefront events landed: %d, webhooks: %d)", s.sf, s.wh)
		return out
	}
	sfBy, whBy := landedBy(o.sf, http.StatusAccepted), landedBy(o.wh, http.StatusOK)
	via := viaOf(s, ru.grace, sfBy, whBy)
	out.ambiguous = via == viaEither
	if !strings.Contains(via, r.via) {
		add(catVia, "registered via %s, want %s (storefront at %s, webhook %s–%s, grace %s)", r.via, via,
			stamp(s.sfMin), stamp(s.whMin), stamp(s.whMax), ru.grace)
	}
	if want := sfIn && whIn; r.matched != want {
		add(catMatched, "matched = %t, want %t", r.matched, want)
	}
	if want := whIn && o.sc.test; r.test != want {
		add(catTest, "test = %t, want %t", r.test, want)
	}
	if whIn && r.orderID != o.orderID {
		add(catID, "shopify_order_id %q, want %q", r.orderID, o.orderID)
	}
	var amounts [][2]string
	if strings.Contains(via, schemas.ViaStorefront) {
		amounts = append(amounts, [2]string{o.sfSubtotal, o.sfCurrency})
	}
	if strings.Contains(via, schemas.ViaWebhook) {
		amounts = append(amounts, [2]string{o.whSubtotal, o.whCurrency})
	}
	okAmount := false
	for _, a := range amounts {
		okAmount = okAmount || (sameDecimal(r.subtotal, a[0]) && strings.EqualFold(r.currency, a[1]))
	}
	if !okAmount {
		add(catAmount, "subtotal %s %s, want %v", r.subtotal, r.currency, amounts)
	}

	// Discrepancies: a drifted field once both sides are in; webhook_missing
	// for a storefront registration whose webhook did not come in time.
	due, allowed := map[string]bool{}, map[string]bool{}
	if sfIn && whIn && o.sc.drift != "" {
		due[schemas.KindFieldMismatch+"|"+o.sc.drift] = true
	}
	missing := schemas.KindWebhookMissing + "|"
	switch {
	case ru.webhookWait <= 0 || !strings.Contains(via, schemas.ViaStorefront):
		allowed[missing] = ru.webhookWait <= 0 && strings.Contains(via, schemas.ViaStorefront)
	case !whIn:
		due[missing] = true
	case !s.whMax.Add(time.Second).Before(s.sfMin.Add(ru.webhookWait)),
		whBy.IsZero() || !whBy.Before(s.sfMin.Add(ru.webhookWait)):
		// The webhook may have come, or reached Kafka, after the wait.
		allowed[missing] = true
	}
	for d := range due {
		if !f.discs[d] {
			add(catMissedDisc, "no %s discrepancy", strings.TrimSuffix(d, "|"))
		}
	}
	for d := range f.discs {
		if !due[d] && !allowed[d] {
			add(catFalseDisc, "discrepancy %s", strings.TrimSuffix(d, "|"))
		}
	}
	return out
}

// refusable: an answer a browser may get from a healthy pipeline under
// faults (the ingest unreachable or Kafka unavailable), after which its
// event may or may not have landed. A per-address rate limit is one only
// when shoppers share addresses.
func refusable(a answer, ownAddrs bool) bool {
	return a.code == 0 || a.code == http.StatusServiceUnavailable || (a.code == http.StatusTooManyRequests && !ownAddrs)
}

// landedBy is a time by which every copy of one side that landed was in
// Kafka: the last answer's end when every attempt was acknowledged with ok.
// Zero means unknown: an attempt answered otherwise (a 503, a reset) may
// still have been written, late, with its early received-at stamp.
func landedBy(as []answer, ok int) time.Time {
	var last time.Time
	for _, a := range as {
		if a.code != ok {
			return time.Time{}
		}
		if a.end.After(last) {
			last = a.end
		}
	}
	return last
}

// viaOf is the side that registers an order both of whose sides landed.
// The join registers from the storefront iff the first storefront event it
// applies was received before the first webhook's received-at plus the
// grace (DESIGN §3 rules 1, 3, 9). Stamps are kept to the second (each true
// stamp is in [stamp, stamp+1s)), and a copy that reached Kafka late is
// applied when read, whatever its stamp: so the stamps decide only when the
// whole second lies on one side of the grace and the deciding side was in
// Kafka (sfBy, whBy from landedBy) before the join could have gone ahead
// without it. Otherwise either side is right.
func viaOf(s *seen, grace time.Duration, sfBy, whBy time.Time) string {
	switch {
	case s.wh == 0:
		return schemas.ViaStorefront
	case s.sf == 0:
		return schemas.ViaWebhook
	case !s.sfMax.Add(time.Second).After(s.whMin.Add(grace)) && !sfBy.IsZero() && sfBy.Before(s.whMin.Add(grace)):
		return schemas.ViaStorefront
	case !s.sfMin.Before(s.whMax.Add(time.Second).Add(grace)) && !whBy.IsZero() && whBy.Before(s.sfMin):
		return schemas.ViaWebhook
	}
	return viaEither
}

func sortedKeys(m map[string]bool) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

func sameDecimal(a, b string) bool {
	x, okA := new(big.Rat).SetString(strings.TrimSpace(a))
	y, okB := new(big.Rat).SetString(strings.TrimSpace(b))
	return okA && okB && x.Cmp(y) == 0
}

func stamp(t time.Time) string {
	if t.IsZero() {
		return "-"
	}
	return t.UTC().Format("15:04:05")
}
