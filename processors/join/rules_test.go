package join

import (
	"fmt"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"purchasesync/schemas"
)

var t0 = time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)

var defaultSet = Settings{Grace: 10 * time.Minute, SyncingEnabled: true, WebhookWait: 24 * time.Hour, DedupeHorizon: 7 * 24 * time.Hour}

// sf builds a storefront event from JSON fragments.
func sf(t testing.TB, order string, at time.Duration, purchaseExtra, customerExtra string) Event {
	t.Helper()
	body := fmt.Sprintf(`{"purchase":{"order_number":%q,"subtotal":"23.97","currency_iso_code":"USD"%s},"customer":{"email":"Jane@Example.com"%s}}`, order, purchaseExtra, customerExtra)
	p, err := schemas.ParseStorefrontPurchase([]byte(body))
	if err != nil {
		t.Fatalf("storefront fixture: %v", err)
	}
	return Event{Site: "demo", OrderNumber: schemas.NormalizeOrderNumber(schemas.OrderKeyID, order), ReceivedAt: t0.Add(at), Storefront: p, Meta: StorefrontMeta{ClientIP: "203.0.113.9"}}
}

// wh builds an orders/create event; extra is appended to the order object.
func wh(t testing.TB, id string, at time.Duration, extra string) Event {
	t.Helper()
	body := fmt.Sprintf(`{"id":%s,"name":"#1001","order_number":1001,"email":"jane@example.com","presentment_currency":"USD","currency":"USD",
"subtotal_price":"23.97","subtotal_price_set":{"shop_money":{"amount":"23.97","currency_code":"USD"},"presentment_money":{"amount":"23.97","currency_code":"USD"}},
"created_at":"2026-11-25T11:59:00-05:00","discount_codes":[],"line_items":[{"product_id":7,"variant_id":9,"sku":"SKU-1","title":"Mug","price":"23.97","quantity":1}]%s}`, id, extra)
	o, err := schemas.ParseShopifyOrder([]byte(body))
	if err != nil {
		t.Fatalf("order fixture: %v", err)
	}
	return Event{Site: "demo", OrderNumber: string(o.ID), ReceivedAt: t0.Add(at), Order: o}
}

// step is an event or a tick at t0+at.
type step struct {
	ev     *Event
	tickAt time.Duration
	// watermark lag for ticks: the storefront input is read up to t0+tickAt-sfLag.
	sfLag time.Duration
}

type result struct {
	outcomes      []string
	registrations []string // registered_via of each version-1 purchase written
	versions      []uint64
	discrepancies []string // kind:field
	final         *State
}

func runSteps(steps []step, set Settings) result {
	var st *State
	var r result
	collect := func(d Decision) {
		r.outcomes = append(r.outcomes, d.Outcomes...)
		for _, p := range d.Purchases {
			r.versions = append(r.versions, p.Version)
			if p.Version == 1 {
				r.registrations = append(r.registrations, p.RegisteredVia)
			}
		}
		for _, x := range d.Discrepancies {
			r.discrepancies = append(r.discrepancies, x.Kind+":"+x.Field)
		}
		if d.Delete {
			st = nil
		} else if d.State != nil {
			st = d.State
		}
	}
	for _, s := range steps {
		if s.ev != nil {
			collect(Decide(st, *s.ev, set))
			continue
		}
		now := t0.Add(s.tickAt)
		collect(Tick(st, now, now.Add(-s.sfLag), now, set))
	}
	r.final = st
	return r
}

func TestRules(t *testing.T) {
	f := func(name string, set Settings, steps []step, wantOutcomes, wantRegs, wantDisc []string) {
		t.Helper()
		t.Run(name, func(t *testing.T) {
			r := runSteps(steps, set)
			if !reflect.DeepEqual(r.outcomes, wantOutcomes) {
				t.Errorf("outcomes = %v, want %v", r.outcomes, wantOutcomes)
			}
			if !reflect.DeepEqual(r.registrations, wantRegs) {
				t.Errorf("registrations = %v, want %v", r.registrations, wantRegs)
			}
			if !reflect.DeepEqual(r.discrepancies, wantDisc) {
				t.Errorf("discrepancies = %v, want %v", r.discrepancies, wantDisc)
			}
		})
	}
	ev := func(e Event) step { return step{ev: &e} }
	tick := func(at time.Duration) step { return step{tickAt: at} }
	id := "820982911946154508" // > 2^53: must survive byte for byte

	f("rule 1: storefront registers at once", defaultSet,
		[]step{ev(sf(t, id, 0, "", ""))},
		[]string{OutcomeRegisteredStorefront}, []string{"storefront"}, nil)
	f("rule 2: webhook after storefront matches, no second registration", defaultSet,
		[]step{ev(sf(t, id, 0, "", "")), ev(wh(t, id, time.Minute, ""))},
		[]string{OutcomeRegisteredStorefront, OutcomeMatched}, []string{"storefront"}, nil)
	f("rule 2: differing fields give one discrepancy each", defaultSet,
		[]step{ev(sf(t, id, 0, `,"coupon_code":"SAVE10","shipping_zip":"SW1A 1AA"`, `,"customer_id":"42"`)),
			ev(wh(t, id, time.Minute, `,"customer":{"id":43},"shipping_address":{"zip":"sw1a1aa"}`))},
		[]string{OutcomeRegisteredStorefront, OutcomeMatched}, []string{"storefront"},
		[]string{"field_mismatch:coupon_codes", "field_mismatch:customer_id"})
	f("rule 3: webhook held, storefront within grace registers from storefront", defaultSet,
		[]step{ev(wh(t, id, 0, "")), tick(5 * time.Minute), ev(sf(t, id, 6*time.Minute, "", "")), tick(11 * time.Minute)},
		[]string{OutcomeHeld, OutcomeRegisteredStorefront, OutcomeMatched}, []string{"storefront"}, nil)
	f("rule 3: webhook only registers after the grace", defaultSet,
		[]step{ev(wh(t, id, 0, "")), tick(9 * time.Minute), tick(10 * time.Minute)},
		[]string{OutcomeHeld, OutcomeRegisteredWebhook}, []string{"webhook"}, nil)
	f("rule 4: late storefront after webhook registration matches late", defaultSet,
		[]step{ev(wh(t, id, 0, "")), tick(10 * time.Minute), ev(sf(t, id, time.Hour, "", ""))},
		[]string{OutcomeHeld, OutcomeRegisteredWebhook, OutcomeMatchedLate}, []string{"webhook"}, nil)
	f("rule 5: repeats of each side", defaultSet,
		[]step{ev(sf(t, id, 0, "", "")), ev(sf(t, id, time.Second, "", "")), ev(wh(t, id, time.Minute, "")), ev(wh(t, id, 2*time.Minute, ""))},
		[]string{OutcomeRegisteredStorefront, OutcomeDuplicate, OutcomeMatched, OutcomeDuplicate}, []string{"storefront"}, nil)
	f("rule 6: no webhook after webhook_wait", defaultSet,
		[]step{ev(sf(t, id, 0, "", "")), tick(23 * time.Hour), tick(24 * time.Hour), tick(25 * time.Hour)},
		[]string{OutcomeRegisteredStorefront, OutcomeWebhookMissing}, []string{"storefront"}, []string{"webhook_missing:"})
	f("rule 6: not for a site with syncing off", Settings{Grace: 10 * time.Minute, WebhookWait: 24 * time.Hour, DedupeHorizon: 7 * 24 * time.Hour},
		[]step{ev(sf(t, id, 0, "", "")), tick(25 * time.Hour)},
		[]string{OutcomeRegisteredStorefront}, []string{"storefront"}, nil)
	f("rule 8: forgotten after the horizon, then a replayed webhook is held again", defaultSet,
		[]step{ev(sf(t, id, 0, "", "")), ev(wh(t, id, time.Minute, "")), tick(8 * 24 * time.Hour), ev(wh(t, id, 8*24*time.Hour, ""))},
		[]string{OutcomeRegisteredStorefront, OutcomeMatched, OutcomeExpired, OutcomeHeld}, []string{"storefront"}, nil)
	f("rule 9: a hold is not released while storefront input is behind", defaultSet,
		[]step{ev(wh(t, id, 0, "")), {tickAt: 20 * time.Minute, sfLag: 15 * time.Minute}, ev(sf(t, id, 8*time.Minute, "", "")), tick(21 * time.Minute)},
		[]string{OutcomeHeld, OutcomeRegisteredStorefront, OutcomeMatched}, []string{"storefront"}, nil)
	reconciled := wh(t, id, 0, "")
	reconciled.Reconciled = true
	f("reconciliation registers with its own via; a later webhook is a repeat", defaultSet,
		[]step{ev(reconciled), tick(10 * time.Minute), ev(wh(t, id, time.Hour, ""))},
		[]string{OutcomeHeld, OutcomeRegisteredReconciliation, OutcomeDuplicate}, []string{"reconciliation"}, nil)
}

func TestLateStorefrontDiffersOnSubtotal(t *testing.T) {
	e := sf(t, "5837291049", time.Hour, "", "")
	e.Storefront.Purchase.Subtotal = "25.00"
	r := runSteps([]step{{ev: ptr(wh(t, "5837291049", 0, ""))}, {tickAt: 10 * time.Minute}, {ev: &e}}, defaultSet)
	if want := []string{"field_mismatch:subtotal"}; !reflect.DeepEqual(r.discrepancies, want) {
		t.Fatalf("discrepancies = %v, want %v", r.discrepancies, want)
	}
	if r.final.Purchase.Subtotal != "23.97" {
		t.Errorf("registered subtotal changed to %s; registered values must never change", r.final.Purchase.Subtotal)
	}
	if !r.final.Purchase.Matched || r.final.Purchase.Version != 2 {
		t.Errorf("want matched version 2, got matched=%v version=%d", r.final.Purchase.Matched, r.final.Purchase.Version)
	}
}

func ptr[T any](v T) *T { return &v }

func TestBigIDSurvives(t *testing.T) {
	id := "18446744073709551615" // max uint64: 20 digits
	r := runSteps([]step{{ev: ptr(wh(t, id, 0, ""))}, {tickAt: time.Hour}}, defaultSet)
	if got := *r.final.Purchase.ShopifyOrderID; got != id {
		t.Fatalf("shopify_order_id = %s, want %s", got, id)
	}
	if r.final.Purchase.OrderNumber != id {
		t.Fatalf("order_number = %s", r.final.Purchase.OrderNumber)
	}
}

func TestTestOrdersAreMarked(t *testing.T) {
	r := runSteps([]step{{ev: ptr(sf(t, "77", 0, "", ""))}, {ev: ptr(wh(t, "77", time.Minute, `,"test":true`))}}, defaultSet)
	if !r.final.Purchase.Test {
		t.Fatal("matched purchase of a test order must have test=true")
	}
}

func TestPresentmentCurrency(t *testing.T) {
	// Shop in USD, buyer paid in EUR: the browser reports EUR 20.00; the
	// shop-money subtotal (USD 23.97) must not cause a false alarm.
	order := wh(t, "91", time.Minute, "")
	order.Order.PresentmentCurrency = "EUR"
	order.Order.SubtotalPriceSet.PresentmentMoney.Amount = "20.00"
	e := sf(t, "91", 0, "", "")
	e.Storefront.Purchase.Subtotal, e.Storefront.Purchase.CurrencyISOCode = "20", "eur"
	r := runSteps([]step{{ev: &e}, {ev: &order}}, defaultSet)
	if len(r.discrepancies) != 0 {
		t.Fatalf("presentment-currency order gave discrepancies %v", r.discrepancies)
	}
}

func TestOrderKeyModes(t *testing.T) {
	o, err := schemas.ParseShopifyOrder([]byte(`{"id":820982911946154508,"order_number":1001,"name":" #1001 "}`))
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		mode       schemas.OrderKey
		storefront string
	}{
		{schemas.OrderKeyID, "820982911946154508"},
		{schemas.OrderKeyNumber, "#1001"},
		{schemas.OrderKeyNumber, " 1001"},
		{schemas.OrderKeyName, "#1001 "},
	} {
		got, err := o.OrderKeyValue(c.mode)
		if err != nil {
			t.Fatal(err)
		}
		if want := schemas.NormalizeOrderNumber(c.mode, c.storefront); got != want {
			t.Errorf("%s: shopify key %q, storefront key %q: would not join", c.mode, got, want)
		}
	}
	if v, _ := o.OrderKeyValue(schemas.OrderKeyName); v != "#1001" {
		t.Errorf("order_name keeps the '#': got %q", v)
	}
}

// facts builds one side's facts from field names and values.
func facts(t testing.TB, nameValues ...string) *Facts {
	t.Helper()
	f := new(Facts)
	for i := 0; i < len(nameValues); i += 2 {
		row := fieldIndex(nameValues[i])
		if row < 0 {
			t.Fatalf("no compared field %q", nameValues[i])
		}
		f[row] = nameValues[i+1]
	}
	return f
}

func TestCompareTable(t *testing.T) {
	// f compares one field's storefront and Shopify values ("": not sent).
	f := func(field, sfv, shv, want string) {
		t.Helper()
		var got []string
		for _, d := range Compare(facts(t, field, sfv), facts(t, field, shv)) {
			got = append(got, d.Field)
		}
		if strings.Join(got, ",") != want {
			t.Errorf("Compare(%s: %q, %q) = %v, want %q", field, sfv, shv, got, want)
		}
	}
	f("email", " Jane@Example.COM ", "jane@example.com", "")
	f("email", "a@x.com", "b@x.com", "email")
	f("email", "a@x.com", "", "") // redacted on Shopify's side: no false alarm
	f("subtotal", "10.00", "10.01", "")
	f("subtotal", "10.00", "10.02", "subtotal")
	f("subtotal", "0.1", "0.10", "")
	f("subtotal", "100000000000000000.01", "100000000000000000.00", "") // beyond float precision
	f("subtotal", "100000000000000000.05", "100000000000000000.00", "subtotal")
	f("currency", "usd", "USD", "")
	f("currency", "EUR", "USD", "currency")
	f("coupon_codes", "save10", "SAVE10,FREESHIP", "")
	f("coupon_codes", "SAVE10", "", "coupon_codes")
	f("coupon_codes", "", "SAVE10", "")
	f("customer_id", "42", "42", "")
	f("customer_id", "42", "420", "customer_id")
	f("shipping_zip", "sw1a 1aa", "SW1A1AA", "")
	f("shipping_zip", "10001", "10002", "shipping_zip")
}

func refund(t testing.TB, id, refundID string, at time.Duration, amount string) Event {
	t.Helper()
	r, err := schemas.ParseShopifyRefund([]byte(`{"id":` + refundID + `,"order_id":` + id + `,"processed_at":"2026-11-26T10:00:00Z","transactions":[{"kind":"refund","status":"success","amount":"` + amount + `","currency":"USD"}]}`))
	if err != nil {
		t.Fatal(err)
	}
	return Event{Site: "demo", OrderNumber: id, ReceivedAt: t0.Add(at), Refund: r}
}

func TestRefunds(t *testing.T) {
	id := "820982911946154508"
	// Partial refund, redelivered, then a second refund: total 15.00, two new versions.
	r := runSteps([]step{{ev: ptr(sf(t, id, 0, "", ""))}, {ev: ptr(refund(t, id, "1", time.Hour, "5.00"))},
		{ev: ptr(refund(t, id, "1", 2*time.Hour, "5.00"))}, {ev: ptr(refund(t, id, "2", 3*time.Hour, "10.00"))}}, defaultSet)
	if got := r.final.Purchase.RefundedAmount; got != "15.00" {
		t.Fatalf("refunded_amount = %s, want 15.00", got)
	}
	if want := []string{OutcomeRegisteredStorefront, OutcomeRefunded, OutcomeDuplicate, OutcomeRefunded}; !reflect.DeepEqual(r.outcomes, want) {
		t.Fatalf("outcomes = %v, want %v", r.outcomes, want)
	}
	if r.final.Purchase.Version != 3 || r.final.Purchase.RefundedAt == nil {
		t.Fatalf("version %d refunded_at %v; want 3 and set", r.final.Purchase.Version, r.final.Purchase.RefundedAt)
	}
	if r.final.Purchase.Subtotal != "23.97" {
		t.Fatal("a refund must not change registered values")
	}
	// A refund before the (held) webhook registration is applied when it registers.
	r = runSteps([]step{{ev: ptr(wh(t, id, 0, ""))}, {ev: ptr(refund(t, id, "9", time.Minute, "23.97"))}, {tickAt: 10 * time.Minute}}, defaultSet)
	if r.final.Purchase == nil || r.final.Purchase.RefundedAmount != "23.97" || r.final.Purchase.Version != 1 {
		t.Fatalf("held purchase registered without its refund: %+v", r.final.Purchase)
	}
}

func refundBody(t testing.TB, id, refundID string, at time.Duration, body string) Event {
	t.Helper()
	r, err := schemas.ParseShopifyRefund([]byte(`{"id":` + refundID + `,"order_id":` + id + `,"processed_at":"2026-11-26T10:00:00Z",` + body + `}`))
	if err != nil {
		t.Fatal(err)
	}
	return Event{Site: "demo", OrderNumber: id, ReceivedAt: t0.Add(at), Refund: r}
}

// TestRefundCurrencies: a refund in another currency than its (USD)
// purchase counts in USD from Shopify's MoneySets; one that no MoneySet
// converts leaves the total unknown (empty), never 0.00, and is counted.
func TestRefundCurrencies(t *testing.T) {
	id := "820982911946154508"
	inCAD := `"refund_line_items":[{"line_item_id":1,"quantity":1,"subtotal_set":{"shop_money":{"amount":"13.00","currency_code":"CAD"},"presentment_money":{"amount":"10.00","currency_code":"USD"}}}],` +
		`"transactions":[{"kind":"refund","status":"success","amount":"13.00","currency":"CAD"}]`
	r := runSteps([]step{{ev: ptr(sf(t, id, 0, "", ""))}, {ev: ptr(refundBody(t, id, "1", time.Hour, inCAD))},
		{ev: ptr(refund(t, id, "2", 2*time.Hour, "2.50"))}}, defaultSet)
	if got := r.final.Purchase.RefundedAmount; got != "12.50" {
		t.Fatalf("refunded_amount = %q, want 12.50 (10.00 USD for 13.00 CAD, + 2.50 USD)", got)
	}
	if slices.Contains(r.outcomes, OutcomeRefundUnconverted) {
		t.Errorf("outcomes %v: nothing was unconverted", r.outcomes)
	}
	inGBP := `"transactions":[{"kind":"refund","status":"success","amount":"7.00","currency":"GBP"}]`
	r = runSteps([]step{{ev: ptr(sf(t, id, 0, "", ""))}, {ev: ptr(refund(t, id, "2", time.Hour, "2.50"))},
		{ev: ptr(refundBody(t, id, "3", 2*time.Hour, inGBP))}}, defaultSet)
	p := r.final.Purchase
	if p.RefundedAmount != "" || p.RefundedAt == nil || p.Version != 3 {
		t.Fatalf("refunded_amount %q at %v version %d: want unknown (empty), set, 3", p.RefundedAmount, p.RefundedAt, p.Version)
	}
	if want := []string{OutcomeRegisteredStorefront, OutcomeRefunded, OutcomeRefunded, OutcomeRefundUnconverted}; !reflect.DeepEqual(r.outcomes, want) {
		t.Errorf("outcomes %v, want %v", r.outcomes, want)
	}
	if got := r.final.Refunds["3"].Returned["GBP"]; got != "7.00" {
		t.Errorf("the state keeps the refund in its own currency: %q", got)
	}
	// Before registration: counted when the purchase registers.
	r = runSteps([]step{{ev: ptr(wh(t, id, 0, ""))}, {ev: ptr(refundBody(t, id, "3", time.Minute, inGBP))}, {tickAt: 10 * time.Minute}}, defaultSet)
	if r.final.Purchase == nil || r.final.Purchase.RefundedAmount != "" || !slices.Contains(r.outcomes, OutcomeRefundUnconverted) {
		t.Fatalf("held purchase with an unconverted refund: %+v, outcomes %v", r.final.Purchase, r.outcomes)
	}
	// A state written before currencies were kept still counts its amount.
	old := &State{Site: "demo", OrderNumber: id, Purchase: &schemas.Purchase{Site: "demo", OrderNumber: id, Currency: "USD", Version: 1},
		Refunds: map[string]Refund{"1": {Amount: "4.00", At: t0}}}
	d := Decide(old, refund(t, id, "2", time.Hour, "1.00"), defaultSet)
	if got := d.State.Purchase.RefundedAmount; got != "5.00" {
		t.Errorf("old state: refunded_amount %q, want 5.00", got)
	}
}
