package join

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"os"
	"runtime"
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
		part := newPartition(0, DefaultConfig(schemas.Topics{}, "x"), staticSites(time.Hour), m)
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
	cfg := DefaultConfig(topics, "bench")
	cfg.Group = testenv.Name(t)
	p, err := New(cfg, Deps{ClientOpts: []kgo.Opt{kgo.SeedBrokers(brokers...)}, Sites: staticSites(time.Hour),
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

	// Restore of held keys: n/2 held states in one partition of a fresh
	// changelog, then time a restore of that partition.
	held := n
	stTopics := testenv.Topics(t, brokers, 1)
	st := newPartition(0, cfg, staticSites(time.Hour), newMetrics(prometheus.NewRegistry()))
	e := wh(t, "1", 0, "")
	start = time.Now()
	for i := 0; i < held; i++ {
		e.OrderNumber = strconv.Itoa(3_000_000_000 + i)
		d := Decide(nil, e, Settings{Grace: time.Hour, DedupeHorizon: 7 * 24 * time.Hour, WebhookWait: 24 * time.Hour})
		v, _ := json.Marshal(d.State)
		cl.Produce(ctx, &kgo.Record{Topic: stTopics.Name(schemas.TopicJoinState), Key: []byte(schemas.Key("demo", e.OrderNumber)), Value: v}, nil)
	}
	if err := cl.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	t.Logf("wrote %d held states in %s", held, time.Since(start))
	p2, _ := New(DefaultConfig(stTopics, "restore"), Deps{ClientOpts: []kgo.Opt{kgo.SeedBrokers(brokers...)}, Sites: staticSites(0),
		Registerer: prometheus.NewRegistry(), Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	p2.adm = adm
	start = time.Now()
	if err := p2.restore(ctx, st); err != nil {
		t.Fatal(err)
	}
	took = time.Since(start)
	if st.held != held {
		t.Fatalf("restored %d held keys, want %d", st.held, held)
	}
	t.Logf("restore: %d held keys in %s (%.0f keys/s)", held, took, float64(held)/took.Seconds())
	fmt.Fprintf(os.Stderr, "BENCH events=%d eos_events_per_s=%.0f restore_keys=%d restore_s=%.2f\n", n, eosRate, held, took.Seconds())
}

// handle decodes one input record, decides, and writes the results (the
// processor decides through decide; tests feed records one at a time).
func (p *partition) handle(rec *kgo.Record, storefront bool, out output) {
	ev, err := decodeEvent(rec, storefront)
	p.handleDecoded(rec, ev, err, out)
}
