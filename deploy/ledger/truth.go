package ledger

import (
	"fmt"
	"math/big"
	"net/http"
	"strings"
	"time"

	"purchasesync/schemas"
)

// Error categories of the report, in its column order.
const (
	catUndelivered = "undelivered"   // a webhook never acknowledged within RetryFor
	catWrongAnswer = "wrong_answer"  // forged accepted, malformed accepted, a good event refused as bad
	catLost        = "lost"          // acknowledged but absent, or due a purchase that is not there
	catDoubled     = "doubled"       // registered twice
	catUnexpected  = "unexpected"    // registered though nothing of it was accepted
	catVia         = "wrong_via"     // registered from the wrong side
	catMatched     = "wrong_matched" // matched when it must not be, or the converse
	catTest        = "wrong_test"    // test flag lost or invented
	catAmount      = "wrong_amount"  // subtotal or currency not the registering side's
	catMissedDisc  = "missed_disc"   // a due discrepancy absent
	catFalseDisc   = "false_disc"    // a discrepancy that must not be
	viaEither      = "storefront|webhook"
)

var categories = []string{catUndelivered, catWrongAnswer, catLost, catDoubled, catUnexpected, catVia, catMatched, catTest, catAmount, catMissedDisc, catFalseDisc}

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

// judge compares one order's outcome with its ground truth. s is nil when
// raw_events holds nothing of it, r nil without a purchase, discs the
// "kind|field" of its discrepancies, kafkaRegs its version-1 records in
// purchases.v1 (-1: not counted).
func judge(o *order, s *seen, r *row, discs map[string]bool, kafkaRegs int, grace, webhookWait time.Duration) outcome {
	var out outcome
	add := func(cat, format string, a ...any) {
		out.findings = append(out.findings, finding{cat, fmt.Sprintf(format, a...)})
	}
	if s == nil {
		s = &seen{}
	}
	sfIn, whIn := s.sf > 0, s.wh > 0

	// What was answered, and what that promised.
	if o.whGaveUp {
		add(catUndelivered, "webhook not acknowledged within the retry time (%d tries)", len(o.wh))
	}
	for _, a := range o.wh {
		if a.code == http.StatusUnauthorized || a.code == http.StatusBadRequest {
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
	sfAcked, malformed := false, containsStep(o.sc.steps, stepMalformed)
	for _, a := range o.sf {
		switch {
		case malformed:
			if a.code/100 == 2 {
				add(catWrongAnswer, "a malformed storefront event answered %d", a.code)
			}
		case a.code == http.StatusAccepted:
			sfAcked = true
		case a.code == http.StatusBadRequest || a.code == http.StatusNotFound || a.code == http.StatusUnauthorized:
			add(catWrongAnswer, "a good storefront event answered %d", a.code)
		}
	}
	if sfAcked && !sfIn {
		add(catLost, "storefront event acknowledged (202) but not in raw_events")
	}
	if len(o.sf) > 0 && !sfAcked && !sfIn && !malformed {
		out.refused = 1
	}

	// What must have been registered.
	if !sfIn && !whIn {
		if r != nil {
			add(catUnexpected, "registered via %s, but none of its events was accepted", r.via)
		}
		return out
	}
	if kafkaRegs > 1 {
		add(catDoubled, "%d version-1 registrations in purchases.v1", kafkaRegs)
	}
	if r == nil {
		add(catLost, "no purchase in ClickHouse (storefront events landed: %d, webhooks: %d)", s.sf, s.wh)
		return out
	}
	via := viaOf(s, grace)
	out.ambiguous = via == viaEither
	if !strings.Contains(via, r.via) {
		add(catVia, "registered via %s, want %s (storefront at %s, webhook %s–%s, grace %s)", r.via, via,
			stamp(s.sfMin), stamp(s.whMin), stamp(s.whMax), grace)
	}
	if want := sfIn && whIn; r.matched != want {
		add(catMatched, "matched = %t, want %t", r.matched, want)
	}
	if want := whIn && o.sc.test; r.test != want {
		add(catTest, "test = %t, want %t", r.test, want)
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
	case webhookWait <= 0 || !strings.Contains(via, schemas.ViaStorefront):
		allowed[missing] = webhookWait <= 0 && strings.Contains(via, schemas.ViaStorefront)
	case !whIn:
		due[missing] = true
	case !s.whMax.Add(time.Second).Before(s.sfMin.Add(webhookWait)):
		allowed[missing] = true // the webhook may have come after the wait
	}
	for d := range due {
		if !discs[d] {
			add(catMissedDisc, "no %s discrepancy", strings.TrimSuffix(d, "|"))
		}
	}
	for d := range discs {
		if !due[d] && !allowed[d] {
			add(catFalseDisc, "discrepancy %s", strings.TrimSuffix(d, "|"))
		}
	}
	return out
}

// viaOf is the side that registers an order both of whose sides landed,
// from the received-at stamps (kept to the second: each true stamp is in
// [stamp, stamp+1s)). The join registers from the storefront iff the first
// storefront event it applies was received before the first webhook's
// received-at plus the grace (DESIGN §3 rules 1, 3, 9); it applies them in
// received-at order, so the first is within [min, max] of the copies.
func viaOf(s *seen, grace time.Duration) string {
	switch {
	case s.wh == 0:
		return schemas.ViaStorefront
	case s.sf == 0:
		return schemas.ViaWebhook
	case !s.sfMax.Add(time.Second).After(s.whMin.Add(grace)):
		return schemas.ViaStorefront
	case !s.sfMin.Before(s.whMax.Add(time.Second).Add(grace)):
		return schemas.ViaWebhook
	}
	return viaEither
}

func containsStep(steps []step, st step) bool {
	for _, s := range steps {
		if s == st {
			return true
		}
	}
	return false
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
