package join

import (
	"fmt"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/twmb/franz-go/pkg/kgo"

	"purchasesync/schemas"
)

// TestStorefrontStatePerKeyBounded: what the join keeps for one key from an
// unauthenticated storefront event is bounded by a small multiple of the
// body (H1 of the security review). The review's worst case, a 64 KiB body
// of empty items (2.2 MiB of heap per key before), is dead-lettered
// without state; the worst event the parser accepts costs at most 4× its
// body in heap and in join.state.v1.
func TestStorefrontStatePerKeyBounded(t *testing.T) {
	const bodyCap = 64 << 10 // ingest's default -ingest.maxStorefrontBodyBytes
	body := func(items string) []byte {
		return []byte(`{"purchase":{"order_number":"1","subtotal":"1","items":[` + items + `]},"customer":{"email":"a@b.co"}}`)
	}
	rec := func(key string, v []byte) *kgo.Record {
		return &kgo.Record{Topic: "storefront", Key: []byte(key), Value: v, Timestamp: time.Unix(1e9, 0),
			Headers: []kgo.RecordHeader{{Key: schemas.HeaderReceivedAt, Value: []byte("2026-01-02T03:04:05Z")}}}
	}
	p := newPartition(0, DefaultConfig(), noSites{}, newMetrics(prometheus.NewRegistry()))

	empties := strings.TrimSuffix(strings.Repeat("{},", (bodyCap-100)/3), ",")
	var out []*kgo.Record
	p.handle(rec("acme/1", body(empties)), true, func(r *kgo.Record) { out = append(out, r) })
	if p.keys() != 0 || len(out) != 1 || !strings.Contains(string(headerValue(out[0], schemas.HeaderReason)), "purchase.items") {
		t.Fatalf("64 KiB of empty items: %d states, %d outputs (want none and one dead letter naming purchase.items)", p.keys(), len(out))
	}

	// The worst accepted event: as many items as allowed, each with as
	// much text as fits in the body cap.
	title := strings.Repeat("t", (bodyCap-200)/schemas.MaxStorefrontItems-len(`{"title":""},`))
	worst := body(strings.TrimSuffix(strings.Repeat(`{"title":"`+title+`"},`, schemas.MaxStorefrontItems), ","))
	if len(worst) > bodyCap {
		t.Fatalf("worst case is %d bytes, over the %d cap", len(worst), bodyCap)
	}
	const keys = 200
	var stateBytes int
	emit := func(r *kgo.Record) {
		if r.Topic == p.topics.Name(schemas.TopicJoinState) {
			stateBytes = max(stateBytes, len(r.Value))
		}
	}
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	for i := range keys {
		p.handle(rec(fmt.Sprintf("acme/%d", i), worst), true, emit)
	}
	runtime.GC()
	runtime.ReadMemStats(&after)
	if p.keys() != keys {
		t.Fatalf("%d states, want %d", p.keys(), keys)
	}
	perKey := (int64(after.HeapAlloc) - int64(before.HeapAlloc)) / keys
	t.Logf("worst accepted event: body %d B, heap %d B per key, state record %d B", len(worst), perKey, stateBytes)
	if perKey > 4*int64(len(worst)) {
		t.Errorf("join heap per key %d B > 4× the body (%d B)", perKey, len(worst))
	}
	if stateBytes > 4*len(worst) {
		t.Errorf("join.state.v1 record %d B > 4× the body (%d B)", stateBytes, len(worst))
	}
}

func headerValue(r *kgo.Record, key string) []byte {
	for _, h := range r.Headers {
		if h.Key == key {
			return h.Value
		}
	}
	return nil
}
