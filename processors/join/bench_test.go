package join

import (
	"context"
	"fmt"
	"hash/crc32"
	"io"
	"log/slog"
	"os"
	"runtime"
	"runtime/pprof"
	"strconv"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"purchasesync/deploy/testenv"
	"purchasesync/schemas"
)

// BenchmarkDecide: the state machine alone, per event (one storefront event
// and one webhook per key; the figure is per event).
func BenchmarkDecide(b *testing.B) {
	s := sf(b, "820982911946154508", 0, `,"coupon_code":"SAVE10"`, "")
	w := wh(b, "820982911946154508", time.Minute, "")
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i += 2 {
		d := Decide(nil, s, defaultSet)
		Decide(d.State, w, defaultSet)
	}
}

// BenchmarkHeldKeyBytes reports the memory and changelog bytes of one held
// key (a webhook waiting for its storefront event: the largest state).
func BenchmarkHeldKeyBytes(b *testing.B) {
	const n = 50000
	m := newMetrics(prometheus.NewRegistry())
	for i := 0; i < b.N; i++ {
		runtime.GC()
		var before, after runtime.MemStats
		runtime.ReadMemStats(&before)
		part := newPartition(0, DefaultConfig(), staticSites(time.Hour), m)
		var logBytes int
		for k := 0; k < n; k++ {
			e := wh(b, strconv.Itoa(1_000_000_000+k), 0, "")
			rec := &kgo.Record{Topic: "shopify.orders.v1", Key: []byte(schemas.Key("demo", e.OrderNumber)), Value: []byte(`{"id":` + e.OrderNumber + `,"email":"jane@example.com","subtotal_price_set":{"presentment_money":{"amount":"23.97"}},"line_items":[{"product_id":7,"title":"Mug","price":"23.97","quantity":1}]}`)}
			part.handle(rec, false, func(r *kgo.Record) { logBytes += len(r.Key) + len(r.Value) })
		}
		runtime.GC()
		runtime.ReadMemStats(&after)
		if part.held != n {
			b.Fatalf("%d held, want %d", part.held, n)
		}
		b.ReportMetric(float64(after.HeapAlloc-before.HeapAlloc)/n, "heap-bytes/held-key")
		b.ReportMetric(float64(logBytes)/n, "changelog-bytes/held-key")
		runtime.KeepAlive(part)
	}
}

// TestFunctionalBenchBacklog measures, on the real broker with EOS on, how
// fast the processor drains a pre-filled backlog, and how long restoring a
// partition's held keys takes. It runs only with JOIN_BENCH_EVENTS set
// (e.g. 1000000), as it is a measurement, not a check:
//
//	JOIN_BENCH_EVENTS=1000000 PURCHASESYNC_FUNCTIONAL_TESTS=1 go test ./processors/join -run BenchBacklog -v -timeout 30m
func TestFunctionalBenchBacklog(t *testing.T) {
	n, _ := strconv.Atoi(os.Getenv("JOIN_BENCH_EVENTS"))
	if n == 0 {
		t.Skip("set JOIN_BENCH_EVENTS to run this measurement")
	}
	brokers := testenv.Kafka(t)
	topics := testenv.Topics(t, brokers, 6)
	cl, err := kgo.NewClient(kgo.SeedBrokers(brokers...), kgo.ProducerLinger(5*time.Millisecond), kgo.MaxBufferedRecords(100000))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ctx := context.Background()
	start := time.Now()
	at := []byte(time.Now().UTC().Format(time.RFC3339Nano))
	hdr := []kgo.RecordHeader{{Key: schemas.HeaderReceivedAt, Value: at}}
	for i := 0; i < n/2; i++ {
		id := strconv.Itoa(2_000_000_000 + i)
		key := []byte(schemas.Key("demo", id))
		cl.Produce(ctx, &kgo.Record{Topic: topics.Name(schemas.TopicStorefrontPurchases), Key: key, Headers: hdr,
			Value: []byte(`{"purchase":{"order_number":"` + id + `","subtotal":"23.97","currency_iso_code":"USD"},"customer":{"email":"jane@example.com"}}`)}, nil)
		cl.Produce(ctx, &kgo.Record{Topic: topics.Name(schemas.TopicShopifyOrders), Key: key, Headers: hdr,
			Value: []byte(`{"id":` + id + `,"email":"jane@example.com","presentment_currency":"USD","subtotal_price_set":{"presentment_money":{"amount":"23.97"}}}`)}, nil)
	}
	if err := cl.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	t.Logf("produced %d events in %s", n, time.Since(start))

	reg := prometheus.NewRegistry()
	cfg := configFor(topics, "bench")
	cfg.Group = testenv.Name(t)
	p, err := New(cfg, Deps{KafkaOpts: []kgo.Opt{kgo.SeedBrokers(brokers...)}, Sites: staticSites(time.Hour),
		Registerer: reg, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	rctx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	start = time.Now()
	go func() { done <- p.Run(rctx) }()
	adm := kadm.NewClient(cl)
	testenv.Eventually(t, 30*time.Minute, "backlog drained", func() bool {
		lag, err := adm.Lag(ctx, cfg.Group)
		if err != nil {
			return false
		}
		l, ok := lag[cfg.Group]
		return ok && l.Error() == nil && l.Lag.Total() == 0 && len(l.Lag) > 0
	})
	took := time.Since(start)
	eosRate := float64(n) / took.Seconds()
	cancel()
	<-done
	t.Logf("EOS backlog: %d events in %s = %.0f events/s (%.0f matched purchases/s)", n, took, float64(n)/took.Seconds(), float64(n/2)/took.Seconds())

	fmt.Fprintf(os.Stderr, "BENCH events=%d eos_events_per_s=%.0f\n", n, eosRate)
}

// TestFunctionalRestoreMeasured times the restore of JOIN_BENCH_RESTORE_KEYS
// keys of production size (a tenth held webhooks, the rest matched
// purchases, as BenchmarkPartitionOrders leaves them) written as the join
// writes them, over JOIN_BENCH_RESTORE_PARTITIONS partitions (1 by
// default), restored as a member restores its assignment. A measurement,
// not a check:
//
//	JOIN_BENCH_RESTORE_KEYS=1000000 JOIN_BENCH_RESTORE_PARTITIONS=6 PURCHASESYNC_FUNCTIONAL_TESTS=1 go test ./processors/join -run RestoreMeasured -v -timeout 30m
func TestFunctionalRestoreMeasured(t *testing.T) {
	n, _ := strconv.Atoi(os.Getenv("JOIN_BENCH_RESTORE_KEYS"))
	if n == 0 {
		t.Skip("set JOIN_BENCH_RESTORE_KEYS to run this measurement")
	}
	nparts, _ := strconv.Atoi(os.Getenv("JOIN_BENCH_RESTORE_PARTITIONS"))
	nparts = max(nparts, 1)
	brokers := testenv.Kafka(t)
	topics := testenv.Topics(t, brokers, int32(nparts))
	cl, err := kgo.NewClient(kgo.SeedBrokers(brokers...), kgo.ProducerLinger(5*time.Millisecond), kgo.MaxBufferedRecords(100000))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ctx := context.Background()
	// The states come from deciding real records in one partition whose
	// changelog output goes to Kafka, spread over the partitions by key.
	src := newPartition(0, configFor(topics, "x"), staticSites(5*time.Second), newMetrics(prometheus.NewRegistry()))
	defer src.close()
	stateTopic := topics.Name(schemas.TopicJoinState)
	var valueBytes, records int
	out := func(r *kgo.Record) {
		if r.Topic == stateTopic && r.Value != nil {
			valueBytes += len(r.Value)
			records++
			r.Partition = int32(crc32.ChecksumIEEE(r.Key) % uint32(nparts))
			cl.Produce(ctx, r, nil)
		}
	}
	start := time.Now()
	for i := 0; i < n; i += 1000 {
		var evs []inputEvent
		for k := i; k < min(i+1000, n); k++ {
			evs = append(evs, benchInputs(k, k%10 == 0)...)
		}
		src.read(evs)
		src.advance(out)
	}
	if err := cl.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	t.Logf("wrote %d changelog records of %d keys (%d held; %.0f bytes per value) in %s", records, src.keys(), src.held, float64(valueBytes)/float64(records), time.Since(start))
	p, _ := New(configFor(topics, "restore"), Deps{KafkaOpts: []kgo.Opt{kgo.SeedBrokers(brokers...)}, Sites: staticSites(0),
		Registerer: prometheus.NewRegistry(), Logger: slog.New(slog.NewTextHandler(os.Stderr, nil))})
	p.adm = kadm.NewClient(cl)
	ids := make([]int32, nparts)
	for i := range ids {
		ids[i] = int32(i)
	}
	runtime.GC()
	if f := os.Getenv("JOIN_BENCH_RESTORE_PROFILE"); f != "" {
		pf, err := os.Create(f)
		if err != nil {
			t.Fatal(err)
		}
		pprof.StartCPUProfile(pf)
		defer pprof.StopCPUProfile()
	}
	start = time.Now()
	parts, err := p.restoreParallel(ctx, ids)
	if err != nil {
		t.Fatal(err)
	}
	took := time.Since(start)
	keys, held, spilled := 0, 0, 0
	for _, part := range parts {
		keys, held, spilled = keys+part.keys(), held+part.held, spilled+len(part.coldRefs)
		part.close()
	}
	if keys != src.keys() || held != src.held {
		t.Fatalf("restored %d keys (%d held), want %d (%d held)", keys, held, src.keys(), src.held)
	}
	t.Logf("restore: %d keys (%d spilled) from %d partitions in %s (%.0f keys/s)", keys, spilled, nparts, took, float64(keys)/took.Seconds())
	fmt.Fprintf(os.Stderr, "BENCH restore_keys=%d partitions=%d restore_s=%.2f\n", keys, nparts, took.Seconds())
}

// handle decodes one input record, decides, and writes the results (the
// processor decides through decide; tests feed records one at a time).
func (p *partition) handle(rec *kgo.Record, storefront bool, out output) {
	ev, err := decodeEvent(rec, storefront)
	p.handleDecoded(rec, ev, err, out)
}

// benchOrderBody is an orders/create body of about the size the join sees
// in production (1.4 KB records): customer, addresses, two line items.
func benchOrderBody(id uint64, n int) []byte {
	return fmt.Appendf(nil, `{"id":%d,"admin_graphql_api_id":"gid://shopify/Order/%d","name":"#%d","order_number":%d,"email":"buyer%d@example.com","created_at":"2026-11-25T11:59:00-05:00","updated_at":"2026-11-25T11:59:01-05:00","presentment_currency":"USD","currency":"USD","financial_status":"paid","fulfillment_status":null,"subtotal_price":"47.94","total_price":"55.33","total_tax":"3.40","total_discounts":"2.00","subtotal_price_set":{"shop_money":{"amount":"47.94","currency_code":"USD"},"presentment_money":{"amount":"47.94","currency_code":"USD"}},"total_shipping_price_set":{"shop_money":{"amount":"4.99","currency_code":"USD"},"presentment_money":{"amount":"4.99","currency_code":"USD"}},"discount_codes":[{"code":"WELCOME","amount":"2.00","type":"fixed_amount"}],"customer":{"id":%d,"email":"buyer%d@example.com","first_name":"Jane","last_name":"Doe","state":"enabled","verified_email":true},"shipping_address":{"first_name":"Jane","last_name":"Doe","address1":"1 Main St","city":"San Francisco","province":"California","country":"United States","zip":"94107","country_code":"US","province_code":"CA"},"billing_address":{"first_name":"Jane","last_name":"Doe","address1":"1 Main St","city":"San Francisco","province":"California","country":"United States","zip":"94107","country_code":"US","province_code":"CA"},"line_items":[{"id":1%d1,"product_id":7,"variant_id":9,"sku":"MUG-1","title":"Mug","name":"Mug - Blue","price":"23.97","quantity":1,"vendor":"Example"},{"id":1%d2,"product_id":8,"variant_id":10,"sku":"TEA-1","title":"Tea","name":"Tea - Green","price":"23.97","quantity":1,"vendor":"Example"}],"tags":"","note":null,"test":false}`,
		id, id, 1000+n, 1000+n, n, 7000000+n, n, n, n)
}

func benchStorefrontBody(id uint64, n int) []byte {
	return fmt.Appendf(nil, `{"purchase":{"order_number":"%d","subtotal":"47.94","coupon_code":["WELCOME"],"currency_iso_code":"USD","shipping_zip":"94107","shipping_address":"1 Main St, San Francisco","tax_amount":"3.40","discount_amount":"2.00","shipping_amount":"4.99","items":[{"product_id":"7","price":"23.97","quantity":"1","title":"Mug","url":"https://shop.example/mug","image_url":"https://cdn.example/mug.png"},{"product_id":"8","price":"23.97","quantity":"1","title":"Tea","url":"https://shop.example/tea","image_url":"https://cdn.example/tea.png"}]},"customer":{"email":"buyer%d@example.com","first_name":"Jane","last_name":"Doe","customer_id":"%d","traffic_source":"email"}}`,
		id, n, 7000000+n)
}

var benchBase = time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)

// benchInputs is order n's webhook (received n ms after benchBase) and,
// unless webhookOnly, its storefront event a second later.
func benchInputs(n int, webhookOnly bool) []inputEvent {
	id := uint64(5837291049000000000 + n)
	key := []byte(schemas.Key("demo", strconv.FormatUint(id, 10)))
	at := benchBase.Add(time.Duration(n) * time.Millisecond)
	hdr := func(t time.Time) []kgo.RecordHeader {
		return []kgo.RecordHeader{{Key: schemas.HeaderReceivedAt, Value: []byte(t.Format(time.RFC3339Nano))}}
	}
	evs := []inputEvent{{rec: &kgo.Record{Topic: "shopify.orders.v1", Key: key, Value: benchOrderBody(id, n), Headers: hdr(at), Offset: int64(n)}}}
	if !webhookOnly {
		evs = append(evs, inputEvent{rec: &kgo.Record{Topic: "storefront.purchases.v1", Key: key, Value: benchStorefrontBody(id, n), Headers: hdr(at.Add(time.Second)), Offset: int64(n)}, storefront: true})
	}
	for i := range evs {
		evs[i].ev.ReceivedAt, evs[i].raw = receivedAt(evs[i].rec), true
	}
	return evs
}

// BenchmarkPartitionOrders: the partition's whole per-record path (decode,
// decide, encode state and outputs) on orders of production size: 90 % with
// both sides, 10 % webhook-only; the figure is per order. Also reports the
// heap held per key once every order is decided, with the settled keys'
// states in a spill file (the default) and in memory.
func BenchmarkPartitionOrders(b *testing.B) {
	b.Run("spill", func(b *testing.B) { benchPartitionOrders(b, b.TempDir()) })
	b.Run("memory", func(b *testing.B) { benchPartitionOrders(b, "") })
}

func benchPartitionOrders(b *testing.B, stateDir string) {
	m := newMetrics(prometheus.NewRegistry())
	cfg := DefaultConfig()
	cfg.StateDir = stateDir
	part := newPartition(0, cfg, staticSites(5*time.Second), m)
	defer part.close()
	var outBytes int
	out := func(r *kgo.Record) { outBytes += len(r.Key) + len(r.Value) }
	base := benchBase
	runtime.GC()
	var before runtime.MemStats
	runtime.ReadMemStats(&before)
	b.ReportAllocs()
	b.ResetTimer()
	const batch = 500
	for i := 0; i < b.N; i += batch {
		b.StopTimer()
		var evs []inputEvent
		for n := i; n < min(i+batch, b.N); n++ {
			evs = append(evs, benchInputs(n, n%10 == 0)...)
		}
		b.StartTimer()
		part.read(evs)
		part.advance(out)
	}
	end := base.Add(time.Duration(b.N)*time.Millisecond + time.Minute)
	part.raise(end, end)
	part.tick(end, end, end, clockWall, out)
	b.StopTimer()
	runtime.GC()
	var after runtime.MemStats
	runtime.ReadMemStats(&after)
	b.ReportMetric(float64(after.HeapAlloc-before.HeapAlloc)/float64(part.keys()), "heap-bytes/key")
	b.ReportMetric(float64(outBytes)/float64(b.N), "out-bytes/order")
	var stateBytes int
	for _, v := range part.states {
		stateBytes += len(v)
	}
	b.ReportMetric(float64(stateBytes)/float64(part.keys()), "in-memory-state-bytes/key")
	b.ReportMetric(float64(len(part.coldRefs))/float64(part.keys()), "spilled/key")
	runtime.KeepAlive(part)
}
