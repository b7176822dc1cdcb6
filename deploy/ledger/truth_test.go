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
	ok := answer{code: 200}
	accepted := answer{code: 202}
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
		{name: "malformed storefront accepted", o: mk("malformed-storefront", []answer{accepted}, []answer{ok}),
			s: &seen{wh: 1, whMin: t0, whMax: t0}, r: &row{via: schemas.ViaWebhook, subtotal: "10", currency: "EUR"}, regs: 1, want: []string{catWrongAnswer}},
		{name: "registered though nothing was accepted", o: &order{sc: byName("bad-signature"), forged: []answer{{code: 401}}},
			r: sfRow, want: []string{catUnexpected}},
		{name: "webhook never acknowledged", o: &order{sc: byName("browser-missing"), wh: []answer{{code: 503}}, whGaveUp: true}, want: []string{catUndelivered}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			out := judge(tc.o, tc.s, tc.r, tc.discs, tc.regs, grace, tc.wait)
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
	for _, tc := range []struct {
		s    *seen
		want string
	}{
		{wh(-3 * time.Second), schemas.ViaStorefront},
		{wh(5 * time.Second), schemas.ViaStorefront}, // [5,6) + nothing: within [0,1)+6
		{wh(6 * time.Second), viaEither},             // same second as the end of the grace
		{wh(7 * time.Second), schemas.ViaWebhook},
		{&seen{sf: 2, sfMin: t0}, schemas.ViaStorefront},
		{&seen{wh: 2, whMin: t0}, schemas.ViaWebhook},
	} {
		if got := viaOf(tc.s, grace); got != tc.want {
			t.Errorf("storefront %s after the webhook: via %s, want %s", tc.s.sfMin.Sub(tc.s.whMin), got, tc.want)
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
