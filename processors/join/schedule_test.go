package join

import (
	"fmt"
	"math/rand/v2"
	"reflect"
	"slices"
	"sort"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/twmb/franz-go/pkg/kgo"

	"purchasesync/schemas"
)

// scheduleInputs are the two input topics of one partition, each in offset
// order (the ingest stamps received-at as it produces), with orders of
// every timing that the grace decides: storefront events just before and
// just after their webhook's grace, late ones, lone ones, redeliveries.
func scheduleInputs(t testing.TB, orders int) (whs, sfs []inputEvent) {
	g := schemas.DefaultGrace
	add := func(e Event, storefront bool) {
		key := []byte(e.Site + "/" + e.OrderNumber)
		ie := inputEvent{rec: &kgo.Record{Key: key}, ev: e, storefront: storefront}
		if storefront {
			sfs = append(sfs, ie)
		} else {
			whs = append(whs, ie)
		}
	}
	for i := 0; i < orders; i++ {
		id := fmt.Sprint(9007199254740993 + i)
		w := time.Duration(i) * 37 * time.Second // many holds open at once
		switch i % 8 {
		case 0: // browser first
			add(sf(t, id, w-30*time.Second, "", ""), true)
			add(wh(t, id, w, ""), false)
		case 1: // browser just inside the grace
			add(wh(t, id, w, ""), false)
			add(sf(t, id, w+g-time.Second, "", ""), true)
		case 2: // browser just after the grace: the webhook registers first
			add(wh(t, id, w, ""), false)
			add(sf(t, id, w+g+time.Second, "", ""), true)
		case 3: // webhook only
			add(wh(t, id, w, ""), false)
		case 4: // browser only: webhook_missing after the webhook wait
			add(sf(t, id, w, "", ""), true)
		case 5: // browser much later, and disagreeing
			add(wh(t, id, w, ""), false)
			e := sf(t, id, w+g+20*time.Minute, `,"coupon_code":"WELCOME"`, "")
			e.Storefront.Purchase.Subtotal = "30.00"
			add(e, true)
		case 6: // Shopify redelivers, once inside and once after the grace
			add(wh(t, id, w, ""), false)
			add(sf(t, id, w+2*time.Second, "", ""), true)
			add(wh(t, id, w+5*time.Second, ""), false)
			add(wh(t, id, w+g+3*time.Second, ""), false)
		case 7: // the shopper reloads the thank-you page
			add(wh(t, id, w, ""), false)
			add(sf(t, id, w+time.Second, "", ""), true)
			add(sf(t, id, w+3*time.Minute, "", ""), true)
		}
	}
	for _, in := range [][]inputEvent{whs, sfs} {
		sort.SliceStable(in, func(i, j int) bool { return in[i].ev.ReceivedAt.Before(in[j].ev.ReceivedAt) })
		for i := range in {
			in[i].rec.Offset = int64(i)
		}
	}
	return whs, sfs
}

// outcome is one key's part of the ledger.
type outcome struct {
	via     string // registered_via of version 1
	regs    int    // version-1 registrations (must be 1)
	matched bool   // as last written
	disc    []string
}

func ledgerOf(t testing.TB, topics schemas.Topics, recs []*kgo.Record) map[string]outcome {
	l := map[string]outcome{}
	for _, r := range recs {
		o := l[string(r.Key)]
		switch r.Topic {
		case topics.Name(schemas.TopicPurchases):
			p, err := schemas.UnmarshalPurchase(r.Value)
			if err != nil {
				t.Fatal(err)
			}
			if p.Version == 1 {
				o.via, o.regs = p.RegisteredVia, o.regs+1
			}
			o.matched = p.Matched
		case topics.Name(schemas.TopicDiscrepancies):
			d, err := schemas.UnmarshalDiscrepancy(r.Value)
			if err != nil {
				t.Fatal(err)
			}
			o.disc = append(o.disc, d.Kind+":"+d.Field+":"+d.StorefrontValue+":"+d.ShopifyValue)
			slices.Sort(o.disc)
		default:
			continue
		}
		l[string(r.Key)] = o
	}
	return l
}

func newSchedulePartition() (*partition, *[]*kgo.Record) {
	p := newPartition(0, DefaultConfig(), noSites{}, newMetrics(prometheus.NewRegistry()))
	var recs []*kgo.Record
	return p, &recs
}

// TestAnyProcessingScheduleGivesTheReplaysLedger: however far behind the
// join reads each input, wherever the poll boundaries fall and whenever the
// periodic ticks come, the ledger (who registered each purchase, whether it
// matched, which discrepancies) is the one of a join without lag and the
// one of a replay (DESIGN §2, §3 rule 9).
func TestAnyProcessingScheduleGivesTheReplaysLedger(t *testing.T) {
	whs, sfs := scheduleInputs(t, 64)
	last := maxReceivedAt(whs, sfs)
	end := last.Add(DefaultConfig().WebhookWait + time.Hour)

	// No lag: each record is applied as it is received.
	p, recs := newSchedulePartition()
	out := func(r *kgo.Record) { *recs = append(*recs, r) }
	all := slices.Concat(whs, sfs)
	sort.SliceStable(all, func(i, j int) bool { return receivedBefore(&all[i], &all[j]) })
	for _, e := range all {
		p.read([]inputEvent{e})
		p.raise(e.ev.ReceivedAt, e.ev.ReceivedAt)
		p.advance(out)
	}
	p.raise(end, end)
	p.advance(out)
	p.tick(end, end, end, clockWall, out)
	want := ledgerOf(t, p.topics, *recs)
	if len(want) != 64 {
		t.Fatalf("no-lag run decided %d keys, want 64", len(want))
	}
	for k, o := range want {
		if o.regs != 1 {
			t.Fatalf("no-lag run: %s registered %d times", k, o.regs)
		}
	}
	if o := want["demo/9007199254740995"]; o.via != schemas.ViaWebhook || !o.matched {
		t.Fatalf("no-lag run: a browser event after the grace gave %+v, want via webhook, then matched", o)
	}

	rp, rrecs := newSchedulePartition()
	rp.replay(slices.Concat(whs, sfs), end, func(r *kgo.Record) { *rrecs = append(*rrecs, r) })
	if got := ledgerOf(t, rp.topics, *rrecs); !reflect.DeepEqual(got, want) {
		t.Fatalf("replay ledger differs from the no-lag run:\n%s", ledgerDiff(got, want))
	}

	rng := rand.New(rand.NewPCG(19, 2026))
	for iter := 0; iter < 200; iter++ {
		got, sched := runSchedule(t, rng, whs, sfs, end)
		if !reflect.DeepEqual(got, want) {
			t.Fatalf("schedule %d (%s): ledger differs from the no-lag run:\n%s", iter, sched, ledgerDiff(got, want))
		}
	}
}

func maxReceivedAt(ins ...[]inputEvent) time.Time {
	var last time.Time
	for _, in := range ins {
		for _, e := range in {
			if e.ev.ReceivedAt.After(last) {
				last = e.ev.ReceivedAt
			}
		}
	}
	return last
}

// runSchedule plays one random processing schedule: wall time moves on in
// random steps; a record is in its topic from its received-at on; each poll
// takes a random share of what each topic has beyond the join's position
// (one input may be starved for a long stretch: lag), fetched in any
// interleaving; periodic ticks come at random, with the end offsets of
// their moment.
func runSchedule(t testing.TB, rng *rand.Rand, whs, sfs []inputEvent, end time.Time) (map[string]outcome, string) {
	p, recs := newSchedulePartition()
	out := func(r *kgo.Record) { *recs = append(*recs, r) }
	ins := [2][]inputEvent{whs, sfs} // read only: read copies what it queues
	var pos [2]int
	// Per input: how likely a poll reads it at all, and its batch size.
	var share [2]float64
	var batch [2]int
	for k := range share {
		share[k] = []float64{0.05, 0.3, 1}[rng.IntN(3)]
		batch[k] = 1 + rng.IntN(40)
	}
	step := time.Duration(1+rng.IntN(120)) * time.Second
	tickP := []float64{0, 0.1, 0.5}[rng.IntN(3)]
	sched := fmt.Sprintf("share %.2f/%.2f batch %d/%d step %s tick %.1f", share[0], share[1], batch[0], batch[1], step, tickP)
	now := whs[0].ev.ReceivedAt.Add(-time.Minute)
	for pos[0] < len(ins[0]) || pos[1] < len(ins[1]) || now.Before(end) {
		now = now.Add(time.Duration(rng.Int64N(int64(step))))
		if now.After(end) {
			now = end
		}
		var visible [2]int
		var taken [2][]inputEvent
		for k := range ins {
			visible[k] = sort.Search(len(ins[k]), func(i int) bool { return ins[k][i].ev.ReceivedAt.After(now) })
			if now.Equal(end) || rng.Float64() < share[k] {
				n := min(visible[k]-pos[k], 1+rng.IntN(batch[k]))
				taken[k] = ins[k][pos[k] : pos[k]+n]
				pos[k] += n
			}
		}
		// A fetch interleaves the topics in any way, each in offset order.
		var poll []inputEvent
		for len(taken[0])+len(taken[1]) > 0 {
			k := rng.IntN(2)
			if len(taken[k]) == 0 {
				k = 1 - k
			}
			poll, taken[k] = append(poll, taken[k][0]), taken[k][1:]
		}
		if len(poll) > 0 {
			p.read(poll)
			p.advance(out)
		}
		if now.Equal(end) || rng.Float64() < tickP {
			wm := [2]time.Time{p.whWM, p.sfWM}
			for k := range ins {
				if pos[k] == visible[k] {
					wm[k] = now
				}
			}
			p.raise(wm[1], wm[0])
			p.advance(out)
			p.tick(minTime(now, p.sfWM, p.whWM), p.sfWM, p.whWM, clockWall, out)
		}
	}
	if p.pendingLen() > 0 {
		t.Fatalf("schedule %s: %d inputs still pending at the end", sched, p.pendingLen())
	}
	return ledgerOf(t, p.topics, *recs), sched
}

func ledgerDiff(got, want map[string]outcome) string {
	var keys []string
	for k := range want {
		keys = append(keys, k)
	}
	for k := range got {
		if _, ok := want[k]; !ok {
			keys = append(keys, k)
		}
	}
	slices.Sort(keys)
	s := ""
	for _, k := range keys {
		if !reflect.DeepEqual(got[k], want[k]) {
			s += fmt.Sprintf("  %s: got %+v, want %+v\n", k, got[k], want[k])
		}
	}
	return s
}
