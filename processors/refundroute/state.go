package refundroute

// This file is the router's whole logic: apply is pure (no Kafka client, no
// clock, no goroutines), so a restore that replays a partition's records
// through it rebuilds exactly the state that live processing had built.

import (
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"purchasesync/schemas"
)

// ReasonRefundOrderUnknown is the "reason" header of a refund the router
// wrote to shopify.unrouted.v1: its order's index record did not come
// within Config.OrderWait (event time) of the refund. The order was never
// delivered to the ingest (Shopify gave up, or it came through
// reconciliation, which writes no index), or the site's order_key changed.
const ReasonRefundOrderUnknown = "refund_order_unknown"

// Kinds of input records.
const (
	kindIndex  = "index"
	kindRefund = "refund"
	kindOther  = "other" // neither; skipped and counted
)

// indexEntry is what an order's index record says.
type indexEntry struct {
	orderNumber string
	at          time.Time // received-at of the index record
}

// waitingRefund is a refund whose order's index has not come yet.
type waitingRefund struct {
	rec *kgo.Record
	at  time.Time
	seq uint64
}

// queued is an entry of an expiry queue, in arrival order.
type queued struct {
	key string
	at  time.Time
	seq uint64 // waiting refunds: which one; 0 for index entries
}

// partitionState is what the router remembers about one partition of
// shopify.order_ids.v1. Only the goroutine running the session touches it.
type partitionState struct {
	id int32
	// next is the offset after the last record applied: records below it
	// are in the state already (restored or processed).
	next int64
	// wm is the partition's event time: the latest received-at applied.
	wm      time.Time
	index   map[string]indexEntry
	waiting map[string][]waitingRefund
	nWait   int
	// Expiry queues in arrival order. received-at is nearly monotonic per
	// partition (several ingests stamp it), so an entry may be popped a
	// little late, never early, and a replay pops it at the same record.
	indexQ, waitQ []queued
	seq           uint64
}

func newPartitionState(id int32) *partitionState {
	return &partitionState{id: id, index: map[string]indexEntry{}, waiting: map[string][]waitingRefund{}}
}

// output is one record the router writes for an input, with what it means.
type output struct {
	rec     *kgo.Record
	expired bool   // to unrouted: the order never came
	from    []byte // the refund's key on shopify.order_ids.v1
}

// topics are the full names of the router's output topics.
type topics struct{ orders, unrouted string }

// apply applies one input record at its event time and returns the records
// to write. Before the record is applied, whatever expired at or before its
// received-at expires (in the same transaction as the record's offset):
// decisions depend only on the partition's records, so live = replay.
func (s *partitionState) apply(rec *kgo.Record, cfg Config, t topics) (outs []output, kind string) {
	s.next = rec.Offset + 1
	kind = classify(rec)
	at := receivedAt(rec)
	if at.After(s.wm) {
		s.wm = at
	}
	outs = s.expire(cfg, t)
	key := string(rec.Key)
	switch kind {
	case kindIndex:
		if _, _, err := schemas.SplitKey(key); err != nil || len(rec.Value) == 0 {
			return outs, kindOther
		}
		s.index[key] = indexEntry{orderNumber: string(rec.Value), at: at}
		s.indexQ = append(s.indexQ, queued{key: key, at: at})
		for _, w := range s.waiting[key] {
			outs = append(outs, output{rec: routed(w.rec, string(rec.Value), t), from: w.rec.Key})
		}
		s.nWait -= len(s.waiting[key])
		delete(s.waiting, key)
	case kindRefund:
		if _, _, err := schemas.SplitKey(key); err != nil {
			return outs, kindOther
		}
		if e, ok := s.index[key]; ok {
			outs = append(outs, output{rec: routed(rec, e.orderNumber, t), from: rec.Key})
			break
		}
		s.seq++
		s.waiting[key] = append(s.waiting[key], waitingRefund{rec: rec, at: at, seq: s.seq})
		s.waitQ = append(s.waitQ, queued{key: key, at: at, seq: s.seq})
		s.nWait++
	}
	return outs, kind
}

// expire forgets index entries older than IndexHorizon and sends refunds
// that waited OrderWait for their index to unrouted, by event time.
func (s *partitionState) expire(cfg Config, t topics) []output {
	var outs []output
	n := 0
	for _, q := range s.indexQ {
		if q.at.Add(cfg.IndexHorizon).After(s.wm) {
			break
		}
		n++
		// A repeated index record (a redelivered order) renewed the entry:
		// only the entry's latest record expires it.
		if e, ok := s.index[q.key]; ok && e.at.Equal(q.at) {
			delete(s.index, q.key)
		}
	}
	s.indexQ = drop(s.indexQ, n)
	n = 0
	for _, q := range s.waitQ {
		if q.at.Add(cfg.OrderWait).After(s.wm) {
			break
		}
		n++
		ws := s.waiting[q.key]
		for i, w := range ws {
			if w.seq != q.seq {
				continue
			}
			outs = append(outs, output{rec: unroutedRefund(w.rec, t), expired: true, from: w.rec.Key})
			ws = append(ws[:i:i], ws[i+1:]...)
			s.nWait--
			break
		}
		if len(ws) == 0 {
			delete(s.waiting, q.key)
		} else {
			s.waiting[q.key] = ws
		}
	}
	s.waitQ = drop(s.waitQ, n)
	return outs
}

// drop removes the first n entries, letting go of the array once it is
// mostly dead so the queue does not pin memory.
func drop(q []queued, n int) []queued {
	if n == 0 {
		return q
	}
	q = q[n:]
	if cap(q) > 1024 && len(q) < cap(q)/4 {
		q = append([]queued(nil), q...)
	}
	return q
}

func classify(rec *kgo.Record) string {
	h := schemas.ParseWebhookHeaders(rec.Headers)
	switch {
	case h.IsOrderIndex():
		return kindIndex
	case len(h.RecordKind) == 0 && h.IsRefund():
		return kindRefund
	}
	return kindOther
}

// receivedAt is the ingest's received-at header, else the record's
// timestamp (both are written by the ingest, so replays agree).
func receivedAt(rec *kgo.Record) time.Time {
	if t, ok := schemas.ReceivedAtOf(rec.Headers); ok {
		return t.UTC()
	}
	return rec.Timestamp.UTC()
}

// routed is the refund as the join expects it on shopify.orders.v1: the
// raw body and headers under its purchase's key, marked routed-from.
func routed(in *kgo.Record, orderNumber string, t topics) *kgo.Record {
	site, _, _ := schemas.SplitKey(string(in.Key))
	hs := make([]kgo.RecordHeader, 0, len(in.Headers)+1)
	hs = append(hs, in.Headers...)
	hs = append(hs, kgo.RecordHeader{Key: schemas.HeaderRoutedFrom, Value: in.Key})
	return &kgo.Record{Topic: t.orders, Key: []byte(schemas.Key(site, orderNumber)), Value: in.Value, Headers: hs}
}

// unroutedRefund is the refund as shopify.unrouted.v1 keeps it: keyed by
// shop domain, the raw body and headers, with a reason.
func unroutedRefund(in *kgo.Record, t topics) *kgo.Record {
	shop := ""
	hs := make([]kgo.RecordHeader, 0, len(in.Headers)+2)
	for _, h := range in.Headers {
		if h.Key == schemas.HeaderShopDomain {
			shop = string(h.Value)
		}
		hs = append(hs, h)
	}
	hs = append(hs, kgo.RecordHeader{Key: schemas.HeaderReason, Value: []byte(ReasonRefundOrderUnknown)},
		kgo.RecordHeader{Key: schemas.HeaderRoutedFrom, Value: in.Key})
	return &kgo.Record{Topic: t.unrouted, Key: []byte(shop), Value: in.Value, Headers: hs}
}
