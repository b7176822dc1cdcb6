package refundroute

import (
	"fmt"
	"reflect"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"purchasesync/schemas"
)

var (
	t0       = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	testTops = topics{orders: "t.shopify.orders.v1", unrouted: "t.shopify.unrouted.v1"}
)

func testConfig() Config {
	cfg := DefaultConfig()
	cfg.Topics, cfg.Instance = schemas.Topics{Prefix: "t."}, "test"
	cfg.OrderWait, cfg.IndexHorizon = time.Hour, 10*time.Hour
	return cfg
}

func hdrs(kv ...string) []kgo.RecordHeader {
	var hs []kgo.RecordHeader
	for i := 0; i < len(kv); i += 2 {
		hs = append(hs, kgo.RecordHeader{Key: kv[i], Value: []byte(kv[i+1])})
	}
	return hs
}

// indexRec is what the ingest writes for an order of an order_number site.
func indexRec(site, id, number string, at time.Duration) *kgo.Record {
	return &kgo.Record{Key: []byte(schemas.Key(site, id)), Value: []byte(number), Headers: hdrs(
		schemas.HeaderRecordKind, schemas.RecordKindOrderIndex, schemas.HeaderShopDomain, site+".myshopify.com",
		schemas.HeaderTopic, schemas.WebhookOrdersCreate, schemas.HeaderReceivedAt, t0.Add(at).Format(time.RFC3339Nano))}
}

// refundRec is a raw refunds/create webhook keyed by its order id.
func refundRec(site, id, refundID string, at time.Duration) *kgo.Record {
	body := `{"id":` + refundID + `,"order_id":` + id + `,"transactions":[{"kind":"refund","status":"success","amount":"5.00","currency":"USD"}]}`
	return &kgo.Record{Key: []byte(schemas.Key(site, id)), Value: []byte(body), Headers: hdrs(
		schemas.HeaderShopDomain, site+".myshopify.com", schemas.HeaderWebhookID, "w-"+refundID,
		schemas.HeaderTopic, schemas.WebhookRefundsCreate, schemas.HeaderReceivedAt, t0.Add(at).Format(time.RFC3339Nano))}
}

// run applies recs in order (offsets 0..) and describes each output as
// "<input offset> <topic> <key> <routed-from> <reason>".
func run(s *partitionState, cfg Config, recs []*kgo.Record, from int) []string {
	var got []string
	for i, r := range recs[from:] {
		r.Offset = int64(from + i)
		outs, _ := s.apply(r, cfg, testTops)
		for _, o := range outs {
			h := map[string]string{}
			for _, x := range o.rec.Headers {
				h[x.Key] = string(x.Value)
			}
			got = append(got, fmt.Sprintf("%d %s %s %s %s", r.Offset, o.rec.Topic, o.rec.Key, h[schemas.HeaderRoutedFrom], h[schemas.HeaderReason]))
		}
	}
	return got
}

func TestRouting(t *testing.T) {
	cfg := testConfig()
	recs := []*kgo.Record{
		indexRec("bolt", "11", "1001", 0),                                              // 0: index first
		refundRec("bolt", "11", "501", time.Minute),                                    // 1: routed at once
		refundRec("bolt", "11", "501", 2*time.Minute),                                  // 2: redelivered: routed again (the join counts an id once)
		refundRec("cargo", "22", "502", 3*time.Minute),                                 // 3: before its index: waits
		indexRec("cargo", "22", "#1002", 4*time.Minute),                                // 4: releases it
		refundRec("bolt", "33", "503", 5*time.Minute),                                  // 5: its order never comes
		refundRec("bolt", "44", "504", 6*time.Minute),                                  // 6: waits
		indexRec("bolt", "44", "1004", 30*time.Minute),                                 // 7: within the wait
		indexRec("bolt", "55", "1005", 66*time.Minute),                                 // 8: an hour after refund 503: it expires first
		refundRec("bolt", "11", "505", 11*time.Hour),                                   // 9: index 11 forgotten after 10 h: waits
		{Key: []byte("bolt/66"), Headers: hdrs(schemas.HeaderTopic, "orders/updated")}, // 10: neither: skipped
	}
	s := newPartitionState(0)
	got := run(s, cfg, recs, 0)
	want := []string{
		"1 t.shopify.orders.v1 bolt/1001 bolt/11 ",
		"2 t.shopify.orders.v1 bolt/1001 bolt/11 ",
		"4 t.shopify.orders.v1 cargo/#1002 cargo/22 ",
		"7 t.shopify.orders.v1 bolt/1004 bolt/44 ",
		"8 t.shopify.unrouted.v1 bolt.myshopify.com bolt/33 " + ReasonRefundOrderUnknown,
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("outputs:\n%q\nwant\n%q", got, want)
	}
	if s.nWait != 1 || len(s.waiting["bolt/11"]) != 1 {
		t.Errorf("waiting %d %v, want refund 505 alone", s.nWait, s.waiting)
	}
	if _, ok := s.index["bolt/11"]; ok {
		t.Error("index bolt/11 outlived the index horizon")
	}
	// The routed refund is the raw record under its purchase's key.
	outs, _ := newPartitionState(0).apply(recs[0], cfg, testTops)
	if len(outs) != 0 {
		t.Fatal("an index record wrote something")
	}
	st := newPartitionState(0)
	st.apply(recs[0], cfg, testTops)
	outs, _ = st.apply(recs[1], cfg, testTops)
	if len(outs) != 1 || string(outs[0].rec.Value) != string(recs[1].Value) || len(outs[0].rec.Headers) != len(recs[1].Headers)+1 {
		t.Fatalf("routed refund %+v", outs)
	}
	for i, h := range recs[1].Headers {
		if outs[0].rec.Headers[i].Key != h.Key || string(outs[0].rec.Headers[i].Value) != string(h.Value) {
			t.Errorf("header %d: %s=%s, want %s=%s", i, outs[0].rec.Headers[i].Key, outs[0].rec.Headers[i].Value, h.Key, h.Value)
		}
	}
}

// TestReplayEqualsLive: a restart after any record — the state rebuilt by
// replaying the records before it, then live processing from it — writes
// exactly what an uninterrupted run wrote from that record on: no output
// lost, none repeated.
func TestReplayEqualsLive(t *testing.T) {
	cfg := testConfig()
	var recs []*kgo.Record
	for i := range 40 {
		at := time.Duration(i) * 7 * time.Minute
		id := fmt.Sprint(i % 7)
		if i%5 == 0 {
			recs = append(recs, indexRec("bolt", id, "10"+id, at))
		} else {
			recs = append(recs, refundRec("bolt", id, fmt.Sprint(500+i), at))
		}
	}
	full := run(newPartitionState(0), cfg, recs, 0)
	expired := 0
	for _, o := range full {
		if len(o) > 0 && o[len(o)-len(ReasonRefundOrderUnknown):] == ReasonRefundOrderUnknown {
			expired++
		}
	}
	if expired == 0 || len(full) <= expired {
		t.Fatalf("the sequence must route and expire: %q", full)
	}
	for k := range len(recs) + 1 {
		s := newPartitionState(0)
		run(s, cfg, recs[:k], 0) // the restore: outputs discarded
		got := run(s, cfg, recs, k)
		var want []string
		for _, o := range full {
			var off int
			fmt.Sscan(o, &off)
			if off >= k {
				want = append(want, o)
			}
		}
		if !reflect.DeepEqual(got, want) {
			t.Fatalf("restart at %d:\n%q\nwant\n%q", k, got, want)
		}
	}
}
