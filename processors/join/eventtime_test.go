package join

import (
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/twmb/franz-go/pkg/kgo"

	"purchasesync/schemas"
)

// TestPollDecidesByReceivedAt: a join that lags reads a webhook and, in the
// same poll, a storefront event received after the webhook's grace ended
// (the storefront record first, as a fetch may return them). The hold's
// deadline comes first in received-at time, so the webhook registers and the
// storefront event then matches it (DESIGN §3 rule 9), exactly as a replay
// or a join without lag decides; never "via storefront".
func TestPollDecidesByReceivedAt(t *testing.T) {
	const id = "9007199254740993"
	w := wh(t, id, 0, "")
	s := sf(t, id, schemas.DefaultGrace+5*time.Second, "", "")
	key := []byte(w.Site + "/" + w.OrderNumber)
	evs := []inputEvent{
		{rec: &kgo.Record{Key: key, Offset: 0}, ev: s, storefront: true},
		{rec: &kgo.Record{Key: key, Offset: 0}, ev: w},
	}
	p := newPartition(0, DefaultConfig(schemas.Topics{}, "x"), noSites{}, newMetrics(prometheus.NewRegistry()))
	var regs []*schemas.Purchase
	emit := func(r *kgo.Record) {
		if r.Topic == p.topics.Name(schemas.TopicPurchases) {
			pu, err := schemas.UnmarshalPurchase(r.Value)
			if err != nil {
				t.Fatal(err)
			}
			regs = append(regs, pu)
		}
	}
	p.noteRead(evs)
	// Both inputs read up to the storefront event: the storefront input is
	// past the hold's deadline, so rule 9 does not hold it back.
	p.decide(evs, s.ReceivedAt, s.ReceivedAt, emit)
	if len(regs) == 0 || regs[0].RegisteredVia != schemas.ViaWebhook || regs[0].Version != 1 {
		t.Fatalf("first registration = %+v; want version 1 via webhook (the hold ended before the storefront event)", regs)
	}
	if last := regs[len(regs)-1]; !last.Matched {
		t.Errorf("after the storefront event, purchase not matched: %+v", last)
	}
	if p.sfNext != 1 || p.whNext != 1 {
		t.Errorf("positions sf=%d wh=%d after the poll, want 1 and 1", p.sfNext, p.whNext)
	}
}
