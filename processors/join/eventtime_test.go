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
	w, s, p, regs := lateBrowser(t)
	key := []byte(w.Site + "/" + w.OrderNumber)
	p.read([]inputEvent{
		{rec: &kgo.Record{Key: key, Offset: 0}, ev: s, storefront: true},
		{rec: &kgo.Record{Key: key, Offset: 0}, ev: w},
	})
	// A tick saw both inputs caught up when the storefront event came.
	p.raise(s.ReceivedAt, s.ReceivedAt)
	p.advance(p.collect)
	checkWebhookThenMatched(t, *regs)
	if p.sfNext != 1 || p.whNext != 1 || p.pendingLen() != 0 {
		t.Errorf("positions sf=%d wh=%d, %d pending after the poll, want 1, 1 and 0", p.sfNext, p.whNext, p.pendingLen())
	}
}

// TestInputReadAheadWaits: the storefront input is caught up while the
// webhook input lags (a cold join, a slow partition): the storefront event
// read first waits, uncommitted, until the webhook input is read up to its
// received-at; the webhook received earlier then decides first.
func TestInputReadAheadWaits(t *testing.T) {
	w, s, p, regs := lateBrowser(t)
	key := []byte(w.Site + "/" + w.OrderNumber)
	sfRec := &kgo.Record{Key: key, Offset: 7}
	p.read([]inputEvent{{rec: sfRec, ev: s, storefront: true}})
	p.advance(p.collect)
	if len(*regs) != 0 || p.pendingLen() != 1 {
		t.Fatalf("storefront event read ahead of the webhook input: %d registrations, %d pending; want 0 and 1", len(*regs), p.pendingLen())
	}
	if sfFrom, whFrom := p.pendingFrom(); sfFrom != sfRec || whFrom != nil {
		t.Fatalf("pendingFrom = %v, %v; want the storefront record and nil (its offset stays uncommitted)", sfFrom, whFrom)
	}
	p.read([]inputEvent{{rec: &kgo.Record{Key: key, Offset: 3}, ev: w}})
	p.advance(p.collect)
	if len(*regs) != 0 {
		t.Fatalf("webhook read at the start of its grace registered %+v; it must be held", (*regs)[0])
	}
	// The next periodic tick finds the webhook input caught up.
	p.raise(s.ReceivedAt, s.ReceivedAt.Add(time.Second))
	p.advance(p.collect)
	checkWebhookThenMatched(t, *regs)
	if p.pendingLen() != 0 {
		t.Errorf("%d inputs pending after both inputs caught up", p.pendingLen())
	}
}

// lateBrowser is a webhook and its storefront twin received 5 s after the
// webhook's grace ended, and a partition that collects registrations.
func lateBrowser(t *testing.T) (w, s Event, p *collectingPartition, regs *[]*schemas.Purchase) {
	const id = "9007199254740993"
	w = wh(t, id, 0, "")
	s = sf(t, id, schemas.DefaultGrace+5*time.Second, "", "")
	p = &collectingPartition{partition: newPartition(0, DefaultConfig(), noSites{}, newMetrics(prometheus.NewRegistry())), t: t}
	return w, s, p, &p.regs
}

type collectingPartition struct {
	*partition
	t    *testing.T
	regs []*schemas.Purchase
}

func (p *collectingPartition) collect(r *kgo.Record) {
	if r.Topic == p.topics.Name(schemas.TopicPurchases) {
		pu, err := schemas.UnmarshalPurchase(r.Value)
		if err != nil {
			p.t.Fatal(err)
		}
		p.regs = append(p.regs, pu)
	}
}

func checkWebhookThenMatched(t *testing.T, regs []*schemas.Purchase) {
	t.Helper()
	if len(regs) == 0 || regs[0].RegisteredVia != schemas.ViaWebhook || regs[0].Version != 1 {
		t.Fatalf("first registration = %+v; want version 1 via webhook (the hold ended before the storefront event)", regs)
	}
	if last := regs[len(regs)-1]; !last.Matched {
		t.Errorf("after the storefront event, purchase not matched: %+v", last)
	}
}

// TestReadSkipsWhatItHolds: a client that fetches again records this
// partition already read (applied or waiting) does not make them count
// twice: each input position is applied once.
func TestReadSkipsWhatItHolds(t *testing.T) {
	w, s, p, regs := lateBrowser(t)
	key := []byte(w.Site + "/" + w.OrderNumber)
	sfRec := &kgo.Record{Key: key, Offset: 4}
	p.read([]inputEvent{{rec: sfRec, ev: s, storefront: true}})
	p.read([]inputEvent{{rec: sfRec, ev: s, storefront: true}})
	if n := p.pendingLen(); n != 1 {
		t.Fatalf("%d inputs waiting after reading one record twice, want 1", n)
	}
	p.raise(s.ReceivedAt, s.ReceivedAt)
	p.advance(p.collect)
	p.read([]inputEvent{{rec: sfRec, ev: s, storefront: true}})
	p.advance(p.collect)
	if len(*regs) != 1 || p.pendingLen() != 0 {
		t.Fatalf("%d registrations, %d waiting after re-reading an applied record; want 1 and 0", len(*regs), p.pendingLen())
	}
}
