package ledger

import (
	"slices"
	"testing"
	"time"

	"purchasesync/schemas"
)

func findingCats(out outcome) []string {
	var cats []string
	for _, f := range out.findings {
		cats = append(cats, f.category)
	}
	slices.Sort(cats)
	return cats
}

// TestJudge: each wrong outcome of one order lands in its category, and a
// right one in none.
func TestJudge(t *testing.T) {
	t0 := time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC)
	const grace = 6 * time.Second
	byName := func(name string) *scenario {
		for i := range scenarios {
			if scenarios[i].name == name {
				return &scenarios[i]
			}
		}
		t.Fatalf("no scenario %q", name)
		return nil
	}
	ok := answer{code: 200, end: t0.Add(2100 * time.Millisecond)}
	accepted := answer{code: 202, end: t0.Add(100 * time.Millisecond)}
	both := &seen{sf: 1, wh: 1, sfMin: t0, sfMax: t0, whMin: t0.Add(2 * time.Second), whMax: t0.Add(2 * time.Second)}
	sfRow := &row{via: schemas.ViaStorefront, matched: true, subtotal: "10.00", currency: "EUR"}
	mk := func(sc string, sf, wh []answer) *order {
		return &order{sc: byName(sc), sf: sf, wh: wh, whAcked: len(wh) > 0 && wh[len(wh)-1].code == 200,
			sfSubtotal: "10", sfCurrency: "EUR", whSubtotal: "10.0", whCurrency: "EUR"}
	}
	for _, tc := range []struct {
		name    string
		o       *order
		s       *seen
		r       *row
		discs   map[string]bool
		regs    int
		kafka   *kafkaFacts // default: regs registrations, nothing else
		wait    time.Duration
		want    []string
		refused int
	}{
		{name: "both sides, storefront first: right", o: mk("storefront-first", []answer{accepted}, []answer{ok}), s: both, r: sfRow, regs: 1},
		{name: "acknowledged webhook not kept", o: mk("browser-missing", nil, []answer{ok}), s: nil, r: nil, regs: 0, want: []string{catLost}},
		{name: "accepted but no purchase", o: mk("storefront-first", []answer{accepted}, []answer{ok}), s: both, r: nil, regs: 0, want: []string{catLost}},
		{name: "two registrations in Kafka", o: mk("storefront-first", []answer{accepted}, []answer{ok}), s: both, r: sfRow, regs: 2, want: []string{catDoubled}},
		{name: "registered from the webhook though the browser was first", o: mk("storefront-first", []answer{accepted}, []answer{ok}), s: both,
			r: &row{via: schemas.ViaWebhook, matched: true, subtotal: "10", currency: "EUR"}, regs: 1, want: []string{catVia}},
		{name: "not matched", o: mk("storefront-first", []answer{accepted}, []answer{ok}), s: both,
			r: &row{via: schemas.ViaStorefront, subtotal: "10", currency: "EUR"}, regs: 1, want: []string{catMatched}},
		{name: "test flag lost", o: mk("test-order", []answer{accepted}, []answer{ok}), s: both, r: sfRow, regs: 1, want: []string{catTest}},
		{name: "wrong amount", o: mk("storefront-first", []answer{accepted}, []answer{ok}), s: both,
			r: &row{via: schemas.ViaStorefront, matched: true, subtotal: "0.00", currency: "EUR"}, regs: 1, want: []string{catAmount}},
		{name: "drift without its discrepancy", o: mk("mismatch-subtotal", []answer{accepted}, []answer{ok}), s: both, r: sfRow, regs: 1, want: []string{catMissedDisc}},
		{name: "drift with its discrepancy", o: mk("mismatch-subtotal", []answer{accepted}, []answer{ok}), s: both, r: sfRow, regs: 1,
			discs: map[string]bool{schemas.KindFieldMismatch + "|subtotal": true}},
		{name: "a look-alike raises a discrepancy", o: mk("lookalike-values", []answer{accepted}, []answer{ok}), s: both, r: sfRow, regs: 1,
			discs: map[string]bool{schemas.KindFieldMismatch + "|email": true}, want: []string{catFalseDisc}},
		{name: "webhook missing after the wait: due", o: mk("webhook-missing", []answer{accepted}, nil), s: &seen{sf: 1, sfMin: t0, sfMax: t0},
			r: &row{via: schemas.ViaStorefront, subtotal: "10", currency: "EUR"}, regs: 1, wait: 10 * time.Second, want: []string{catMissedDisc}},
		{name: "storefront refused (503) and not landed: webhook alone", o: mk("storefront-first", []answer{{code: 503}}, []answer{ok}),
			s: &seen{wh: 1, whMin: t0, whMax: t0}, r: &row{via: schemas.ViaWebhook, subtotal: "10", currency: "EUR"}, regs: 1, refused: 1},
		{name: "forged webhook accepted", o: &order{sc: byName("bad-signature"), forged: []answer{ok}}, want: []string{catWrongAnswer}},
		{name: "malformed storefront accepted", o: &order{sc: byName("malformed-storefront"), malformedAns: []answer{accepted}, wh: []answer{ok}, whAcked: true, whSubtotal: "10", whCurrency: "EUR"},
			s: &seen{wh: 1, whMin: t0, whMax: t0}, r: &row{via: schemas.ViaWebhook, subtotal: "10", currency: "EUR"}, regs: 1, want: []string{catWrongAnswer}},
		{name: "registered though nothing was accepted", o: &order{sc: byName("bad-signature"), forged: []answer{{code: 401}}},
			r: sfRow, want: []string{catUnexpected}},
		{name: "registered_via changed between versions", o: mk("storefront-first", []answer{accepted}, []answer{ok}), s: both, r: sfRow,
			kafka: &kafkaFacts{registrations: 1, vias: map[string]bool{"storefront": true, "webhook": true}}, want: []string{catVia}},
		{name: "a discrepancy recorded twice", o: mk("mismatch-subtotal", []answer{accepted}, []answer{ok}), s: both, r: sfRow,
			discs: map[string]bool{schemas.KindFieldMismatch + "|subtotal": true},
			kafka: &kafkaFacts{registrations: 1, discs: map[string]int{schemas.KindFieldMismatch + "|subtotal": 2}}, want: []string{catDoubled}},
		{name: "in ClickHouse, not in purchases.v1", o: mk("storefront-first", []answer{accepted}, []answer{ok}), s: both, r: sfRow, regs: 0, want: []string{catLost}},
		{name: "an id above 2^53 rounded", o: func() *order {
			o := mk("storefront-first", []answer{accepted}, []answer{ok})
			o.orderID = "9007199254740993"
			return o
		}(),
			s: both, r: &row{via: schemas.ViaStorefront, matched: true, subtotal: "10", currency: "EUR", orderID: "9007199254740992"}, regs: 1, want: []string{catID}},
		{name: "a shopper with its own address rate limited", o: mk("storefront-first", []answer{{code: 429}}, []answer{ok}),
			s: &seen{wh: 1, whMin: t0, whMax: t0}, r: &row{via: schemas.ViaWebhook, subtotal: "10", currency: "EUR"}, regs: 1, want: []string{catWrongAnswer}, refused: 1},
		{name: "a storefront event answered 503 that landed late: either side", o: mk("storefront-first", []answer{{code: 503, end: t0.Add(2 * time.Second)}}, []answer{ok}),
			s: both, r: &row{via: schemas.ViaWebhook, matched: true, subtotal: "10", currency: "EUR"}, regs: 1},
		{name: "webhook never acknowledged", o: &order{sc: byName("browser-missing"), wh: []answer{{code: 503}}, whGaveUp: true}, want: []string{catUndelivered}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := facts{seen: tc.s, row: tc.r, discs: tc.discs, kafka: tc.kafka}
			if f.kafka == nil {
				f.kafka = &kafkaFacts{registrations: tc.regs}
			}
			out := judge(tc.o, f, rules{grace: grace, webhookWait: tc.wait, ownAddrs: true})
			if got := findingCats(out); !slices.Equal(got, tc.want) {
				t.Errorf("findings %v (%v), want %v", got, out.findings, tc.want)
			}
			if out.refused != tc.refused {
				t.Errorf("refused = %d, want %d", out.refused, tc.refused)
			}
		})
	}
}

// TestViaOf: stamps kept to the second decide the side only when the
// whole second lies on one side of the grace.
func TestViaOf(t *testing.T) {
	t0 := time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC)
	const grace = 6 * time.Second
	wh := func(sfAfter time.Duration) *seen {
		return &seen{sf: 1, wh: 1, whMin: t0, whMax: t0, sfMin: t0.Add(sfAfter), sfMax: t0.Add(sfAfter)}
	}
	prompt := func(s *seen) (sfBy, whBy time.Time) { // each side in Kafka 0.2 s after its stamp
		return s.sfMin.Add(200 * time.Millisecond), s.whMin.Add(200 * time.Millisecond)
	}
	for _, tc := range []struct {
		name   string
		s      *seen
		landed func(*seen) (sfBy, whBy time.Time)
		want   string
	}{
		{"browser first", wh(-3 * time.Second), prompt, schemas.ViaStorefront},
		{"browser within the grace", wh(5 * time.Second), prompt, schemas.ViaStorefront}, // [5,6) within [0,1)+6
		{"browser in the grace's last second", wh(6 * time.Second), prompt, viaEither},
		{"browser after the grace", wh(7 * time.Second), prompt, schemas.ViaWebhook},
		{"storefront only", &seen{sf: 2, sfMin: t0}, prompt, schemas.ViaStorefront},
		{"webhook only", &seen{wh: 2, whMin: t0}, prompt, schemas.ViaWebhook},
		{"browser within the grace, but a refused copy may have landed late", wh(2 * time.Second),
			func(s *seen) (time.Time, time.Time) { return time.Time{}, s.whMin }, viaEither},
		{"browser within the grace, acknowledged after it", wh(2 * time.Second),
			func(s *seen) (time.Time, time.Time) { return t0.Add(grace + time.Second), s.whMin }, viaEither},
		{"browser after the grace, webhook acknowledged after the browser came", wh(8 * time.Second),
			func(s *seen) (time.Time, time.Time) { return s.sfMin, s.sfMin.Add(time.Second) }, viaEither},
	} {
		sfBy, whBy := tc.landed(tc.s)
		if got := viaOf(tc.s, grace, sfBy, whBy); got != tc.want {
			t.Errorf("%s: via %s, want %s", tc.name, got, tc.want)
		}
	}
}

// TestScenariosCoverEveryMode: the first len(scenarios)×len(modes) orders
// play every scenario on every order_key mode, each on its own key, with
// Shopify ids above 2^53.
func TestScenariosCoverEveryMode(t *testing.T) {
	seenPair, keys := map[string]bool{}, map[string]bool{}
	for n := range len(scenarios) * len(modes) {
		o := newOrder("u", 1, n)
		seenPair[o.sc.name+"/"+string(o.mode)] = true
		k := schemas.Key(o.site, o.key)
		if keys[k] {
			t.Errorf("order %d reuses key %s", n, k)
		}
		keys[k] = true
		var id uint64
		for _, c := range o.orderID {
			id = id*10 + uint64(c-'0')
		}
		if id <= 1<<53 {
			t.Errorf("order %d: Shopify id %s is not above 2^53", n, o.orderID)
		}
	}
	if want := len(scenarios) * len(modes); len(seenPair) != want {
		t.Errorf("%d scenario/mode pairs, want %d", len(seenPair), want)
	}
}
