package join

// This file is the whole join: read it first. Decide is pure — no Kafka, no
// clock, no goroutines — so every rule of DESIGN §3 is a table row in
// rules_test.go. The processor feeds it events and timer ticks and writes
// what it returns (state to join.state.v1, outputs to purchases.v1 and
// discrepancies.v1) in one Kafka transaction.

import (
	"math/big"
	"time"

	"purchasesync/schemas"
)

// Outcomes, counted by purchasesync_join_decisions_total{outcome}.
const (
	OutcomeRegisteredStorefront     = "registered_storefront"
	OutcomeRegisteredWebhook        = "registered_webhook"
	OutcomeRegisteredReconciliation = "registered_reconciliation"
	OutcomeMatched                  = "matched"      // webhook after storefront registration, or within the grace
	OutcomeMatchedLate              = "matched_late" // storefront after a webhook registration
	OutcomeDuplicate                = "duplicate"
	OutcomeHeld                     = "held"
	OutcomeWebhookMissing           = "webhook_missing"
	OutcomeExpired                  = "expired"
	OutcomeRefunded                 = "refunded"
	// OutcomeRefundUnconverted: a refund applied to a purchase whose
	// currency Shopify's numbers for that refund do not give (see
	// Refund): the purchase's refunded_amount is then unknown (empty, NULL
	// in ClickHouse) rather than wrong, refunded_at is set, and the state
	// keeps what the refund returned in its own currency.
	OutcomeRefundUnconverted = "refund_unconverted"
)

// Settings are the per-site and global knobs the rules read.
type Settings struct {
	Grace          time.Duration // per site: how long a webhook waits for its storefront event
	SyncingEnabled bool          // per site: rule 6 applies only with syncing on
	WebhookWait    time.Duration // rule 6
	DedupeHorizon  time.Duration // rule 8
}

// StorefrontMeta is what ingest recorded about the browser request.
type StorefrontMeta struct {
	ClientIP  string
	UserAgent string
}

// Event is one input record, decoded. Exactly one of Storefront and Order is set.
type Event struct {
	Site        string
	OrderNumber string
	ReceivedAt  time.Time // ingest clock (received-at header)
	Storefront  *schemas.StorefrontPurchase
	Meta        StorefrontMeta
	Order       *schemas.ShopifyOrder
	Reconciled  bool // the order came from reconciliation, not a webhook
	// Refund is a refunds/create webhook of the order (order_id sites only:
	// a refund names its order by id alone).
	Refund *schemas.ShopifyRefund
}

// State is everything the join remembers about one key; it is the value of
// join.state.v1. A nil *State means "nothing known".
type State struct {
	Site        string `json:"site"`
	OrderNumber string `json:"order_number"`
	// Purchase is the registered purchase as last written to purchases.v1.
	Purchase *schemas.Purchase `json:"purchase,omitempty"`
	// Held is the purchase a webhook would register, waiting until
	// HeldUntil for the storefront event (rule 3).
	Held      *schemas.Purchase `json:"held,omitempty"`
	HeldUntil time.Time         `json:"held_until,omitzero"`
	// The first facts seen from each side; a side seen twice is a repeat.
	Storefront *Facts `json:"storefront,omitempty"`
	Shopify    *Facts `json:"shopify,omitempty"`
	// WebhookDue is when a storefront-registered purchase without a webhook
	// gets its webhook_missing discrepancy (rule 6); zero when not pending.
	WebhookDue time.Time `json:"webhook_due,omitzero"`
	// ExpiresAt is when the decided key is forgotten (rule 8).
	ExpiresAt time.Time `json:"expires_at,omitzero"`
	Repeats   int       `json:"repeats,omitempty"`
	// Refunds seen, by refund id: amount and time. Kept so a redelivered
	// refund is not counted twice and a refund that arrives before the
	// purchase is registered is applied at registration.
	Refunds map[string]Refund `json:"refunds,omitempty"`
}

// Refund is one refund of a purchase. Its amount in the purchase's
// currency is decided when it is applied (the purchase may register after
// the refund came): In, from Shopify's own numbers (schemas.RefundMoney).
type Refund struct {
	// Amount is the refund's amount in states written before In existed,
	// taken to be in the purchase's currency; empty otherwise.
	Amount string    `json:"amount,omitempty"`
	At     time.Time `json:"at"`
	// Returned is what the refund returned, per currency (none: nothing
	// returned yet); In is that in each currency Shopify's numbers give.
	Returned map[string]string `json:"returned,omitempty"`
	In       map[string]string `json:"in,omitempty"`
	// Unreadable: a transaction amount did not parse; never counted.
	Unreadable bool `json:"unreadable,omitempty"`
}

// amountIn is the refund in currency, ok false when it is not known.
func (r Refund) amountIn(currency string) (string, bool) {
	switch {
	case r.Unreadable:
		return "", false
	case r.Returned == nil && r.In == nil:
		return r.Amount, true // a state from before currencies were kept
	case currency == "" && len(r.Returned) == 1:
		// A purchase without a currency (the browser sent none, Shopify's
		// came later): its amounts are in an unknown currency anyway; the
		// refund counts as returned, as it did before.
		for _, a := range r.Returned {
			return a, true
		}
	}
	return schemas.RefundMoney{Returned: r.Returned, In: r.In}.AmountIn(currency)
}

// NextDeadline is the earliest time Tick has work for this state.
func (s *State) NextDeadline() time.Time {
	var d time.Time
	for _, t := range []time.Time{s.HeldUntil, s.WebhookDue, s.ExpiresAt} {
		if !t.IsZero() && (d.IsZero() || t.Before(d)) {
			d = t
		}
	}
	return d
}

// Decision is what one call of Decide or Tick returns.
type Decision struct {
	State         *State // new state; nil with Delete = forget the key
	Delete        bool
	StateChanged  bool
	Purchases     []*schemas.Purchase
	Discrepancies []*schemas.Discrepancy
	Outcomes      []string
}

// Decide applies one event to the key's state (rules 1–5, 7).
func Decide(prev *State, ev Event, set Settings) Decision {
	s := clone(prev, ev)
	d := Decision{State: s, StateChanged: true}
	switch {
	case ev.Storefront != nil:
		decideStorefront(s, ev, set, &d)
	case ev.Order != nil:
		decideOrder(s, ev, set, &d)
	case ev.Refund != nil:
		decideRefund(s, ev, set, &d)
	}
	if s.Storefront != nil && s.Shopify != nil {
		// Both sides seen: their fields were compared at the match, and
		// all the key needs until it expires is that each side was seen
		// (a repeat is a duplicate). Most keys spend most of the dedupe
		// horizon here, so the state keeps no more than that.
		s.Storefront, s.Shopify = &Facts{}, &Facts{}
	}
	return d
}

// Refunds (Talkable added them to Purchase Syncing): each refund id counts
// once; the purchase carries the total refunded and the latest refund time,
// as a new version. A refund of an unregistered purchase waits in the state.
func decideRefund(s *State, ev Event, set Settings, d *Decision) {
	id := string(ev.Refund.ID)
	if _, seen := s.Refunds[id]; seen {
		s.Repeats++
		d.Outcomes = append(d.Outcomes, OutcomeDuplicate)
		return
	}
	var rf Refund
	if m, err := ev.Refund.Money(); err != nil {
		rf.Unreadable = true
	} else {
		rf.Returned, rf.In = m.Returned, m.In
	}
	at := ev.Refund.Time()
	if at.IsZero() {
		at = ev.ReceivedAt
	}
	refunds := make(map[string]Refund, len(s.Refunds)+1)
	for k, v := range s.Refunds {
		refunds[k] = v
	}
	rf.At = at
	refunds[id] = rf
	s.Refunds = refunds
	d.Outcomes = append(d.Outcomes, OutcomeRefunded)
	if s.Purchase != nil {
		s.Purchase = withRefunds(bumped(s.Purchase, ev.ReceivedAt), s.Refunds, nil)
		if _, ok := rf.amountIn(s.Purchase.Currency); !ok {
			d.Outcomes = append(d.Outcomes, OutcomeRefundUnconverted)
		}
		d.Purchases = append(d.Purchases, cp(s.Purchase))
	} else if s.ExpiresAt.IsZero() && s.Held == nil {
		// Nothing else will ever clear a lone refund's state. (A refund
		// that comes after its purchase was forgotten — rule 8 — lands
		// here too and is not applied: the horizon bounds that as well.)
		s.ExpiresAt = ev.ReceivedAt.Add(set.DedupeHorizon)
	}
}

// withRefunds sets the refund totals of p (a copy) from refunds, in p's
// currency. When a refund's amount is not known in it, the total is unknown
// (empty) rather than wrong; refunded_at is set all the same. d, when not
// nil, counts each such refund (at registration, when every refund of the
// state is applied for the first time).
func withRefunds(p *schemas.Purchase, refunds map[string]Refund, d *Decision) *schemas.Purchase {
	if len(refunds) == 0 {
		return p
	}
	total := new(big.Rat)
	known := true
	var last time.Time
	for _, r := range refunds {
		a, ok := r.amountIn(p.Currency)
		v, err := schemas.ParseDecimal(a)
		if !ok || err != nil {
			known = false
			if d != nil {
				d.Outcomes = append(d.Outcomes, OutcomeRefundUnconverted)
			}
		} else {
			total.Add(total, v)
		}
		if r.At.After(last) {
			last = r.At
		}
	}
	p.RefundedAmount = ""
	if known {
		p.RefundedAmount = schemas.FormatDecimal(total)
	}
	p.RefundedAt = &last
	return p
}

// Rule 1 (register at once), rule 3 (storefront within the grace of a held
// webhook), rule 4 (late browser after a webhook registration), rule 5.
func decideStorefront(s *State, ev Event, set Settings, d *Decision) {
	if s.Storefront != nil {
		s.Repeats++
		d.Outcomes = append(d.Outcomes, OutcomeDuplicate)
		return
	}
	s.Storefront = storefrontFacts(ev.Storefront)
	switch {
	case s.Purchase == nil:
		p := purchaseFromStorefront(s.Site, s.OrderNumber, ev.Storefront, ev.Meta, ev.ReceivedAt)
		s.Purchase = withRefunds(p, s.Refunds, d)
		d.Outcomes = append(d.Outcomes, OutcomeRegisteredStorefront)
		if s.Held != nil {
			// The webhook came first and is still within its grace: the
			// browser's registration wins; the webhook only confirms it.
			// One write: version 1, already matched.
			matchWith(s, s.Held, ev.ReceivedAt, false, d)
			s.Held, s.HeldUntil = nil, time.Time{}
			d.Outcomes = append(d.Outcomes, OutcomeMatched)
		} else if set.SyncingEnabled && set.WebhookWait > 0 {
			s.WebhookDue = ev.ReceivedAt.Add(set.WebhookWait)
		}
		d.Purchases = append(d.Purchases, cp(s.Purchase))
		s.ExpiresAt = ev.ReceivedAt.Add(set.DedupeHorizon)
	case brokenRule4:
		// Test-only build (broken_rule_on.go): registers the late browser's
		// purchase again, a second version 1.
		s.Purchase = purchaseFromStorefront(s.Site, s.OrderNumber, ev.Storefront, ev.Meta, ev.ReceivedAt)
		d.Purchases = append(d.Purchases, cp(s.Purchase))
		d.Outcomes = append(d.Outcomes, OutcomeRegisteredStorefront)
	default:
		// Registered from a webhook or reconciliation already.
		s.Purchase = bumped(s.Purchase, ev.ReceivedAt)
		s.Purchase.Matched = true
		d.Discrepancies = append(d.Discrepancies, discrepancies(s, ev.ReceivedAt)...)
		d.Purchases = append(d.Purchases, cp(s.Purchase))
		d.Outcomes = append(d.Outcomes, OutcomeMatchedLate)
	}
}

// Rule 2 (webhook after storefront registration), rule 3 (hold), rule 5, 7.
func decideOrder(s *State, ev Event, set Settings, d *Decision) {
	if s.Shopify != nil {
		s.Repeats++
		d.Outcomes = append(d.Outcomes, OutcomeDuplicate)
		return
	}
	s.Shopify = shopifyFacts(ev.Order)
	via := schemas.ViaWebhook
	if ev.Reconciled {
		via = schemas.ViaReconciliation
	}
	fromShopify := purchaseFromOrder(s.Site, s.OrderNumber, ev.Order, via, ev.ReceivedAt)
	if s.Purchase != nil {
		matchWith(s, fromShopify, ev.ReceivedAt, true, d)
		s.WebhookDue = time.Time{}
		d.Purchases = append(d.Purchases, cp(s.Purchase))
		d.Outcomes = append(d.Outcomes, OutcomeMatched)
		return
	}
	s.Held = fromShopify
	s.HeldUntil = ev.ReceivedAt.Add(set.Grace)
	d.Outcomes = append(d.Outcomes, OutcomeHeld)
}

// matchWith marks the registered purchase matched with Shopify's order,
// records Shopify's identity and test flag (unknown to the browser) and
// emits one discrepancy per differing field. The registered values
// themselves never change.
func matchWith(s *State, shopify *schemas.Purchase, at time.Time, bump bool, d *Decision) {
	p := cp(s.Purchase)
	if bump {
		p = bumped(s.Purchase, at)
	}
	p.Matched = true
	p.ShopifyOrderID = shopify.ShopifyOrderID
	p.ShopifyOrderName = shopify.ShopifyOrderName
	p.Test = shopify.Test
	if p.OrderCreatedAt.IsZero() {
		p.OrderCreatedAt = shopify.OrderCreatedAt
	}
	s.Purchase = p
	d.Discrepancies = append(d.Discrepancies, discrepancies(s, at)...)
}

// Tick runs the timers of one key at wall-clock time now (rules 3, 6, 8, 9).
// storefrontWM and shopifyWM are the partition's input watermarks: the time
// up to which that input has been read. A hold is never released while the
// storefront input is behind its deadline (rule 9), and a webhook is never
// declared missing while the Shopify input is behind.
func Tick(prev *State, now, storefrontWM, shopifyWM time.Time, set Settings) Decision {
	if prev == nil {
		return Decision{}
	}
	s := clone(prev, Event{})
	d := Decision{State: s}
	if s.Held != nil && !now.Before(s.HeldUntil) && !storefrontWM.Before(s.HeldUntil) {
		p := s.Held
		// Deterministic timestamps: a replay of the same input gives the
		// same ledger, whenever it runs.
		p.RegisteredAt, p.UpdatedAt, p.Version = s.HeldUntil, s.HeldUntil, 1
		p = withRefunds(p, s.Refunds, &d)
		s.Purchase, s.Held, s.HeldUntil = p, nil, time.Time{}
		s.ExpiresAt = p.RegisteredAt.Add(set.DedupeHorizon)
		d.Purchases = append(d.Purchases, cp(p))
		if p.RegisteredVia == schemas.ViaReconciliation {
			d.Outcomes = append(d.Outcomes, OutcomeRegisteredReconciliation)
		} else {
			d.Outcomes = append(d.Outcomes, OutcomeRegisteredWebhook)
		}
		d.StateChanged = true
	}
	if !s.WebhookDue.IsZero() && !now.Before(s.WebhookDue) && !shopifyWM.Before(s.WebhookDue) {
		if s.Shopify == nil && s.Purchase != nil {
			d.Discrepancies = append(d.Discrepancies, &schemas.Discrepancy{
				Site: s.Site, OrderNumber: s.OrderNumber, Kind: schemas.KindWebhookMissing,
				Test: s.Purchase.Test, DetectedAt: s.WebhookDue,
			})
			d.Outcomes = append(d.Outcomes, OutcomeWebhookMissing)
		}
		s.WebhookDue = time.Time{}
		d.StateChanged = true
	}
	if !s.ExpiresAt.IsZero() && !now.Before(s.ExpiresAt) && s.Held == nil && s.WebhookDue.IsZero() {
		d.State, d.Delete, d.StateChanged = nil, true, true
		d.Outcomes = append(d.Outcomes, OutcomeExpired)
	}
	return d
}

func discrepancies(s *State, at time.Time) []*schemas.Discrepancy {
	if s.Storefront == nil || s.Shopify == nil {
		return nil
	}
	var out []*schemas.Discrepancy
	for _, df := range Compare(s.Storefront, s.Shopify) {
		out = append(out, &schemas.Discrepancy{
			Site: s.Site, OrderNumber: s.OrderNumber, Kind: schemas.KindFieldMismatch,
			Field: df.Field, StorefrontValue: df.Storefront, ShopifyValue: df.Shopify,
			Test: s.Purchase != nil && s.Purchase.Test, DetectedAt: at,
		})
	}
	return out
}

// bumped returns a copy of p with the next version.
func bumped(p *schemas.Purchase, at time.Time) *schemas.Purchase {
	c := cp(p)
	c.Version++
	if at.After(c.UpdatedAt) {
		c.UpdatedAt = at
	}
	return c
}

func cp(p *schemas.Purchase) *schemas.Purchase {
	c := *p
	return &c
}

// clone copies the state shallowly; Decide never mutates what it was given.
func clone(prev *State, ev Event) *State {
	if prev == nil {
		return &State{Site: ev.Site, OrderNumber: ev.OrderNumber}
	}
	c := *prev
	return &c
}
