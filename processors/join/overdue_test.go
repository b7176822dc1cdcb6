package join

import (
	"container/heap"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/twmb/franz-go/pkg/kgo"

	"purchasesync/schemas"
)

type noSites struct{}

func (noSites) Get(string) (schemas.Site, bool) { return schemas.Site{}, false }

// TestOverdueHolds: a hold past its deadline that rule 9 keeps (the
// storefront input is behind) is counted with its age past the deadline;
// holds not yet due are not; once the input catches up and tick releases
// it, nothing is overdue.
func TestOverdueHolds(t *testing.T) {
	t0 := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	p := newPartition(0, DefaultConfig(), noSites{}, newMetrics(prometheus.NewRegistry()))
	hold := func(key string, until time.Time) {
		p.states[key] = encodeState(nil, &State{Site: "s", OrderNumber: key, HeldUntil: until,
			Held: &schemas.Purchase{Site: "s", OrderNumber: key, RegisteredVia: schemas.ViaWebhook}})
		p.held++
		heap.Push(&p.timers, timer{at: timerAt(until), key: key})
		heap.Push(&p.timers, timer{at: timerAt(until), key: key}) // a stale duplicate must not count twice
	}
	hold("s/a", t0)
	hold("s/b", t0.Add(2*time.Minute))
	hold("s/c", t0.Add(time.Hour)) // not due
	var out []*kgo.Record
	emit := func(r *kgo.Record) { out = append(out, r) }

	now := t0.Add(5 * time.Minute)
	p.tick(now, t0.Add(-time.Minute), now, clockWall, emit) // storefront input behind both deadlines
	if len(out) != 0 {
		t.Fatalf("tick released %d records while the storefront input was behind", len(out))
	}
	n, oldest := p.overdueHolds(now)
	if n != 2 || oldest != 5*time.Minute {
		t.Errorf("overdueHolds = %d, %s; want 2, 5m0s (a and b, a is 5m past its deadline)", n, oldest)
	}

	p.tick(now, now, now, clockWall, emit) // caught up: both are released
	if n, oldest := p.overdueHolds(now); n != 0 || oldest != 0 {
		t.Errorf("after release, overdueHolds = %d, %s; want 0, 0s", n, oldest)
	}
	if p.held != 1 {
		t.Errorf("held = %d after releasing two of three, want 1", p.held)
	}
}
