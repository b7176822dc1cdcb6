package keymode

import (
	"fmt"
	"runtime"
	"testing"
	"time"

	"purchasesync/schemas"
)

var t0 = time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC)

func webhookObs(site string, i int, at time.Time) *schemas.KeyModeObservation {
	return &schemas.KeyModeObservation{Site: site, Side: schemas.SideWebhook, At: at,
		ID: fmt.Sprint(5837291049000 + i), Number: fmt.Sprint(1000 + i), Name: fmt.Sprintf("#%d", 1000+i)}
}

func storefrontObs(site, v string, at time.Time) *schemas.KeyModeObservation {
	return &schemas.KeyModeObservation{Site: site, Side: schemas.SideStorefront, At: at, Value: v}
}

var idSyncing = siteMode{mode: schemas.OrderKeyID, syncing: true}

func TestWindowPairsEachStyle(t *testing.T) {
	lim := DefaultConfig().limits()
	cases := []struct {
		name  string
		value func(i int) string
		want  []schemas.OrderKey
	}{
		{"id", func(i int) string { return fmt.Sprint(5837291049000 + i) }, []schemas.OrderKey{schemas.OrderKeyID}},
		{"number", func(i int) string { return fmt.Sprint(1000 + i) }, []schemas.OrderKey{schemas.OrderKeyNumber}},
		{"name", func(i int) string { return fmt.Sprintf("#%d", 1000+i) }, []schemas.OrderKey{schemas.OrderKeyNumber, schemas.OrderKeyName}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			w := newWindow("s")
			for i := 0; i < 10; i++ {
				at := t0.Add(time.Duration(i) * time.Minute)
				// Either side first.
				if i%2 == 0 {
					w.apply(webhookObs("s", i, at), idSyncing, lim)
					w.apply(storefrontObs("s", c.value(i), at.Add(time.Second)), idSyncing, lim)
				} else {
					w.apply(storefrontObs("s", c.value(i), at), idSyncing, lim)
					w.apply(webhookObs("s", i, at.Add(time.Second)), idSyncing, lim)
				}
			}
			ev := w.evidence(t0)
			if ev.Matched != 10 || ev.StorefrontEvents != 10 || ev.Webhooks != 10 {
				t.Fatalf("matched %d of %d storefront, %d webhooks; want 10 of each", ev.Matched, ev.StorefrontEvents, ev.Webhooks)
			}
			for _, m := range schemas.OrderKeys {
				want := 0
				for _, x := range c.want {
					if x == m {
						want = 10
					}
				}
				if got := ev.Modes[m].Matches; got != want {
					t.Errorf("%s: %d matches, want %d", m, got, want)
				}
			}
			wantDoubles := 10
			if c.name == "id" {
				wantDoubles = 0
			}
			if ev.SuspectedDoubles != wantDoubles {
				t.Errorf("suspected doubles %d, want %d", ev.SuspectedDoubles, wantDoubles)
			}
		})
	}
}

// A replay (at-least-once input), a page reload and a Shopify redelivery
// change nothing.
func TestWindowIgnoresRepeats(t *testing.T) {
	lim := DefaultConfig().limits()
	w := newWindow("s")
	for round := 0; round < 3; round++ {
		for i := 0; i < 5; i++ {
			at := t0.Add(time.Duration(i) * time.Minute)
			w.apply(webhookObs("s", i, at), idSyncing, lim)
			w.apply(storefrontObs("s", fmt.Sprintf("#%d", 1000+i), at), idSyncing, lim)
		}
	}
	ev := w.evidence(t0)
	if ev.Matched != 5 || ev.Webhooks != 5 || ev.StorefrontEvents != 5 || ev.SuspectedDoubles != 5 {
		t.Fatalf("after three rounds: %+v; want 5 of each", ev)
	}
	// The state survives its encoding, indexes included.
	b, err := w.marshal()
	if err != nil {
		t.Fatal(err)
	}
	r, err := unmarshalWindow(b)
	if err != nil {
		t.Fatal(err)
	}
	if changed, _ := r.apply(webhookObs("s", 3, t0), idSyncing, lim); changed {
		t.Fatal("a restored window took a webhook it holds as new")
	}
	r.apply(storefrontObs("s", "#1005", t0.Add(10*time.Minute)), idSyncing, lim)
	r.apply(webhookObs("s", 5, t0.Add(10*time.Minute)), idSyncing, lim)
	if ev := r.evidence(t0); ev.Matched != 6 {
		t.Fatalf("restored window matched %d, want 6", ev.Matched)
	}
	if _, err := unmarshalWindow(append([]byte{9}, b[1:]...)); err == nil {
		t.Fatal("an unknown state version decoded")
	}
}

// Pairs met under the configured mode are no doubles; nor while syncing is
// off (the webhook was never routed to the join).
func TestWindowDoublesNeedSyncingAndAnotherMode(t *testing.T) {
	lim := DefaultConfig().limits()
	for _, c := range []struct {
		mode siteMode
		want int
	}{
		{siteMode{schemas.OrderKeyName, true}, 0},
		{siteMode{schemas.OrderKeyID, false}, 0},
		{siteMode{schemas.OrderKeyID, true}, 1},
	} {
		w := newWindow("s")
		w.apply(webhookObs("s", 1, t0), c.mode, lim)
		w.apply(storefrontObs("s", "#1001", t0), c.mode, lim)
		if got := w.evidence(t0).SuspectedDoubles; got != c.want {
			t.Errorf("%+v: %d doubles, want %d", c.mode, got, c.want)
		}
	}
}

func TestWindowBounds(t *testing.T) {
	lim := limits{maxEntries: 50, maxAge: time.Hour}
	w := newWindow("s")
	for i := 0; i < 1000; i++ {
		at := t0.Add(time.Duration(i) * time.Second)
		w.apply(webhookObs("s", i, at), idSyncing, lim)
		w.apply(storefrontObs("s", fmt.Sprint(5837291049000+i), at), idSyncing, lim)
	}
	whs, sfs := w.live()
	if len(whs) != 50 || len(sfs) != 50 || len(w.whPos) != 50 || len(w.sfPos) != 50 || len(w.whIdx) != 150 || len(w.sfIdx) != 150 || cap(w.WH) > 200 || cap(w.SF) > 200 {
		t.Fatalf("count bound: %d webhooks, %d storefront, indexes %d/%d/%d/%d, capacities %d/%d", len(whs), len(sfs), len(w.whPos), len(w.sfPos), len(w.whIdx), len(w.sfIdx), cap(w.WH), cap(w.SF))
	}
	// Two hours later, one event: the rest is older than an hour.
	w.apply(webhookObs("s", 5000, t0.Add(3*time.Hour)), idSyncing, lim)
	if whs, sfs := w.live(); len(whs) != 1 || len(sfs) != 0 {
		t.Fatalf("age bound: %d webhooks, %d storefront left", len(whs), len(sfs))
	}
	// An observation older than the window is ignored.
	if changed, _ := w.apply(storefrontObs("s", "x", t0), idSyncing, lim); changed || len(w.SF)-w.sfHead != 0 {
		t.Fatal("an observation older than the window entered it")
	}
}

// windowHeap is the heap one window holds after n orders of one site, both
// sides, measured as the growth of the live heap.
func windowHeap(n int, lim limits) (heapBytes uint64, stateBytes int) {
	runtime.GC()
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	w := newWindow("s")
	for i := 0; i < n; i++ {
		at := t0.Add(time.Duration(i) * time.Second)
		w.apply(webhookObs("s", i, at), idSyncing, lim)
		w.apply(storefrontObs("s", fmt.Sprintf("#%d", 1000+i), at), idSyncing, lim)
	}
	runtime.GC()
	runtime.ReadMemStats(&after)
	b, _ := w.marshal()
	runtime.KeepAlive(w)
	return after.HeapAlloc - min(before.HeapAlloc, after.HeapAlloc), len(b)
}

// TestWindowMemoryBounded: 100,000 orders of one site hold no more than
// 10,000 do (the window is full at 500 of each side).
func TestWindowMemoryBounded(t *testing.T) {
	lim := DefaultConfig().limits()
	h10k, s10k := windowHeap(10_000, lim)
	h100k, s100k := windowHeap(100_000, lim)
	t.Logf("one site's window: %d B heap, %d B state after 10k orders; %d B heap, %d B state after 100k", h10k, s10k, h100k, s100k)
	if s100k > s10k*11/10 || h100k > h10k*3/2+64<<10 {
		t.Fatalf("the window grew with the orders: heap %d → %d B, state %d → %d B", h10k, h100k, s10k, s100k)
	}
	if h100k > 512<<10 || s100k > 256<<10 {
		t.Fatalf("one site's window takes %d B of heap and %d B of state; the default bound should keep it under 512 KiB / 256 KiB", h100k, s100k)
	}
}

// BenchmarkWindowBytes reports the bytes per site of a full window and the
// cost of one observation.
func BenchmarkWindowBytes(b *testing.B) {
	lim := DefaultConfig().limits()
	heap, state := windowHeap(100_000, lim)
	w := newWindow("s")
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		at := t0.Add(time.Duration(i) * time.Second)
		w.apply(webhookObs("s", i, at), idSyncing, lim)
		w.apply(storefrontObs("s", fmt.Sprintf("#%d", 1000+i), at), idSyncing, lim)
	}
	b.ReportMetric(float64(heap), "heapB/site")
	b.ReportMetric(float64(state), "stateB/site")
}
