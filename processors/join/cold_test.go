package join

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/twmb/franz-go/pkg/kgo"

	"purchasesync/schemas"
)

// spillInputs is a day of one partition's traffic that reaches every kind
// of settled state again: 300 orders (a tenth webhook-only, so registered
// from Shopify after the grace), then for some of them a repeated webhook,
// a repeated browser event, a late browser event of a webhook-only order,
// a refund (twice), all after they settled, then the end of the horizon.
func spillInputs() []inputEvent {
	var evs []inputEvent
	for n := 0; n < 300; n++ {
		evs = append(evs, benchInputs(n, n%10 == 0)...)
	}
	later := benchBase.Add(time.Hour)
	at := func(i int) []kgo.RecordHeader {
		return []kgo.RecordHeader{{Key: schemas.HeaderReceivedAt, Value: []byte(later.Add(time.Duration(i) * time.Second).Format(time.RFC3339Nano))}}
	}
	i := 0
	for n := 0; n < 300; n += 7 {
		id := uint64(5837291049000000000 + n)
		key := []byte(schemas.Key("demo", strconv.FormatUint(id, 10)))
		switch n % 4 {
		case 0:
			evs = append(evs, inputEvent{rec: &kgo.Record{Topic: "shopify.orders.v1", Key: key, Value: benchOrderBody(id, n), Headers: at(i)}})
		case 1:
			evs = append(evs, inputEvent{rec: &kgo.Record{Topic: "storefront.purchases.v1", Key: key, Value: benchStorefrontBody(id, n), Headers: at(i)}, storefront: true})
		default:
			refund := fmt.Appendf(nil, `{"id":%d,"order_id":%d,"processed_at":"2026-11-26T10:00:00Z","transactions":[{"kind":"refund","status":"success","amount":"5.00","currency":"USD"}]}`, 900+n, id)
			hs := schemas.AppendWebhookHeaders[kgo.RecordHeader](nil, &schemas.WebhookHeaders{Topic: []byte(schemas.WebhookRefundsCreate), ReceivedAt: at(i)[0].Value})
			r := &kgo.Record{Topic: "shopify.orders.v1", Key: key, Value: refund, Headers: hs}
			evs = append(evs, inputEvent{rec: r}, inputEvent{rec: r})
		}
		i++
		if n%10 == 0 { // a late browser event for a webhook-only order
			evs = append(evs, inputEvent{rec: &kgo.Record{Topic: "storefront.purchases.v1", Key: key, Value: benchStorefrontBody(id, n), Headers: at(i)}, storefront: true})
			i++
		}
	}
	for k := range evs {
		evs[k].rec.Offset = int64(k)
		evs[k].ev.ReceivedAt, evs[k].raw = receivedAt(evs[k].rec), true
	}
	return evs
}

// runSpill decides spillInputs on a fresh partition and returns every
// output in order.
func runSpill(t *testing.T, dir string, compactMin int64, before func(*partition)) ([]string, *partition) {
	t.Helper()
	cfg := DefaultConfig()
	cfg.StateDir = dir
	p := newPartition(0, cfg, staticSites(5*time.Second), newMetrics(prometheus.NewRegistry()))
	t.Cleanup(p.close)
	if p.spill != nil {
		p.spill.compactMin = compactMin
	}
	var out []string
	emit := func(r *kgo.Record) { out = append(out, r.Topic+" "+string(r.Key)+" "+string(r.Value)) }
	evs := spillInputs()
	half := len(evs) / 2
	for _, part := range [][]inputEvent{evs[:half], evs[half:]} {
		if before != nil {
			before(p)
		}
		p.read(part)
		last := part[len(part)-1].ev.ReceivedAt.Add(time.Minute)
		p.raise(last, last)
		p.advance(emit)
		p.tick(last, last, last, clockWall, emit)
	}
	end := benchBase.Add(8 * 24 * time.Hour)
	p.raise(end, end)
	p.tick(end, end, end, clockWall, emit)
	return out, p
}

// TestSpillDecidesAsMemory: a partition that spills its settled keys (and
// rewrites its spill file whenever it can) writes exactly what one that
// keeps every state in memory writes, byte for byte, through repeats,
// refunds, late browsers and expiry.
func TestSpillDecidesAsMemory(t *testing.T) {
	want, mem := runSpill(t, "", 0, nil)
	if mem.spill != nil || mem.keys() != 0 {
		t.Fatalf("in-memory partition: spill %v, %d keys left after the horizon", mem.spill, mem.keys())
	}
	spilledMid := 0
	got, sp := runSpill(t, t.TempDir(), 1, func(p *partition) { spilledMid = max(spilledMid, len(p.coldRefs)) })
	if spilledMid == 0 {
		t.Fatal("nothing was spilled")
	}
	var refunded, late int
	for _, r := range want {
		refunded += strings.Count(r, `"refunded_amount":"5.00"`)
		late += strings.Count(r, `"registered_via":"webhook","matched":true`)
	}
	if refunded == 0 || late == 0 {
		t.Fatalf("the inputs reach %d refunded and %d late-matched purchases; want some of each", refunded, late)
	}
	if len(got) != len(want) {
		t.Fatalf("spilling wrote %d records, in memory %d", len(got), len(want))
	}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("record %d differs:\nspilled   %s\nin memory %s", i, got[i], want[i])
		}
	}
	if sp.keys() != 0 || sp.spill.live != 0 {
		t.Errorf("after the horizon: %d keys, %d live spilled bytes; want none", sp.keys(), sp.spill.live)
	}
}

// TestSpillMidway: settled keys are in the file, not in memory, and what
// is read back is what was written; the file is rewritten once its dead
// bytes outweigh the live ones.
func TestSpillMidway(t *testing.T) {
	cfg := DefaultConfig()
	cfg.StateDir = t.TempDir()
	p := newPartition(0, cfg, staticSites(5*time.Second), newMetrics(prometheus.NewRegistry()))
	defer p.close()
	p.spill.compactMin = 1
	evs := spillInputs()[:570] // the 300 orders, nothing after
	p.read(evs)
	last := evs[len(evs)-1].ev.ReceivedAt.Add(time.Minute)
	p.raise(last, last)
	var out int
	p.advance(func(*kgo.Record) { out++ })
	p.tick(last, last, last, clockWall, func(*kgo.Record) { out++ })
	if len(p.coldRefs) != 300 || len(p.states) != 0 {
		t.Fatalf("%d spilled, %d in memory; want all 300 settled keys spilled", len(p.coldRefs), len(p.states))
	}
	key := schemas.Key("demo", strconv.FormatUint(5837291049000000001, 10))
	s, err := p.state(key)
	if err != nil || s.Purchase == nil || !s.Purchase.Matched || s.Storefront == nil || s.Shopify == nil {
		t.Fatalf("spilled state of %s read back as %+v, %v", key, s, err)
	}
	if p.spill.dead > p.spill.live {
		t.Errorf("dead %d > live %d bytes after writes with compaction at 1 byte", p.spill.dead, p.spill.live)
	}
	if entries, _ := os.ReadDir(cfg.StateDir); len(entries) != 0 {
		t.Errorf("spill file left in %s: %v (it is unlinked once open)", cfg.StateDir, entries)
	}
}

// TestSpillReadFailureFaults: a spilled state that cannot be read back
// decides nothing and faults the partition (the processor then restores
// it); an unusable directory keeps every state in memory.
func TestSpillReadFailureFaults(t *testing.T) {
	cfg := DefaultConfig()
	cfg.StateDir = t.TempDir()
	p := newPartition(0, cfg, staticSites(5*time.Second), newMetrics(prometheus.NewRegistry()))
	evs := spillInputs()[:570]
	p.read(evs)
	last := evs[len(evs)-1].ev.ReceivedAt.Add(time.Minute)
	p.raise(last, last)
	p.advance(func(*kgo.Record) {})
	p.tick(last, last, last, clockWall, func(*kgo.Record) {})
	p.spill.flush()
	p.spill.f.Close() // the disk goes away
	again := spillInputs()[:2]
	again[0].rec.Offset, again[1].rec.Offset = 10_000, 10_001
	p.read(again)
	var out []*kgo.Record
	p.advance(func(r *kgo.Record) { out = append(out, r) })
	if p.fault == nil || len(out) != 0 {
		t.Fatalf("fault %v, %d records written; want a fault and nothing decided", p.fault, len(out))
	}

	cfg.StateDir = filepath.Join(t.TempDir(), "missing")
	got, q := runSpill(t, cfg.StateDir, 1, nil)
	want, _ := runSpill(t, "", 0, nil)
	if q.spill.err == nil || len(got) != len(want) {
		t.Fatalf("unusable dir: spill error %v, %d records (want an error and the %d records of memory)", q.spill.err, len(got), len(want))
	}
}
