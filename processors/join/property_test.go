package join

import (
	"fmt"
	"math/rand/v2"
	"reflect"
	"sort"
	"testing"
	"time"
)

// ledger is what the business sees: one registration per key (with its
// source) and the set of discrepancies.
type ledger struct {
	regs map[string]string   // key → registered_via
	disc map[string][]string // key → sorted kind:field:values
	dups int                 // registrations written twice for one key (must stay 0)
}

func play(events []Event, set Settings, end time.Time) ledger {
	l := ledger{regs: map[string]string{}, disc: map[string][]string{}}
	states := map[string]*State{}
	apply := func(key string, d Decision) {
		for _, p := range d.Purchases {
			if p.Version == 1 {
				if _, ok := l.regs[key]; ok {
					l.dups++
				}
				l.regs[key] = p.RegisteredVia
			}
		}
		for _, x := range d.Discrepancies {
			l.disc[key] = append(l.disc[key], fmt.Sprintf("%s:%s:%s:%s", x.Kind, x.Field, x.StorefrontValue, x.ShopifyValue))
		}
		if d.Delete {
			delete(states, key)
		} else if d.State != nil {
			states[key] = d.State
		}
	}
	for _, e := range events {
		key := e.Site + "/" + e.OrderNumber
		apply(key, Decide(states[key], e, set))
	}
	for key, s := range states {
		apply(key, Tick(s, end, end, end, set))
	}
	for k := range l.disc {
		sort.Strings(l.disc[k])
	}
	return l
}

// TestAnyInterleavingGivesTheSameLedger: the join's decisions must not
// depend on how the two topics interleave, nor on redeliveries, as long as
// both sides of a purchase arrive within its grace.
func TestAnyInterleavingGivesTheSameLedger(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	var inOrder []Event
	for i := 0; i < 40; i++ {
		id := fmt.Sprintf("%d", 9007199254740993+i) // 2^53+1 and up
		at := time.Duration(i) * time.Second
		switch i % 4 {
		case 0: // both, identical
			inOrder = append(inOrder, sf(t, id, at, "", ""), wh(t, id, at+time.Second, ""))
		case 1: // both, differing subtotal and coupon
			e := sf(t, id, at, `,"coupon_code":"WELCOME"`, "")
			e.Storefront.Purchase.Subtotal = "30.00"
			inOrder = append(inOrder, e, wh(t, id, at+2*time.Second, ""))
		case 2: // webhook only
			inOrder = append(inOrder, wh(t, id, at, ""))
		case 3: // storefront only
			inOrder = append(inOrder, sf(t, id, at, "", ""))
		}
	}
	end := t0.Add(2 * time.Hour)
	want := play(inOrder, defaultSet, end)
	if want.dups != 0 || len(want.regs) != 40 {
		t.Fatalf("in-order run: %d registrations, %d duplicates; want 40 and 0", len(want.regs), want.dups)
	}
	for iter := 0; iter < 300; iter++ {
		evs := append([]Event(nil), inOrder...)
		for n := rng.IntN(20); n > 0; n-- { // redeliveries and reloads
			evs = append(evs, evs[rng.IntN(len(evs))])
		}
		rng.Shuffle(len(evs), func(i, j int) { evs[i], evs[j] = evs[j], evs[i] })
		got := play(evs, defaultSet, end)
		if got.dups != 0 {
			t.Fatalf("iteration %d: %d double registrations", iter, got.dups)
		}
		if !reflect.DeepEqual(got.regs, want.regs) || !reflect.DeepEqual(got.disc, want.disc) {
			t.Fatalf("iteration %d: ledger differs from the in-order run\n got  %v %v\n want %v %v", iter, got.regs, got.disc, want.regs, want.disc)
		}
	}
}
