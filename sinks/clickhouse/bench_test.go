package clickhouse

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"purchasesync/deploy/testenv"
	"purchasesync/schemas"
)

// benchPurchase is a realistic purchases.v1 value: two items, a coupon, an
// address, all money fields.
func benchPurchase(i int) *schemas.Purchase {
	id := strconv.Itoa(5837291049000 + i)
	at := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC).Add(time.Duration(i) * time.Millisecond)
	return &schemas.Purchase{
		Site: fmt.Sprintf("site-%d", i%200), OrderNumber: id, ShopifyOrderID: &id, ShopifyOrderName: "#" + strconv.Itoa(1000+i),
		RegisteredVia: schemas.ViaStorefront, Matched: i%3 != 0, Email: fmt.Sprintf("customer%d@example.com", i),
		CustomerID: strconv.Itoa(7000000 + i), FirstName: "Jane", LastName: "Doe", Subtotal: "123.45", Currency: "USD",
		Tax: "10.20", DiscountAmount: "5.00", ShippingCost: "4.99", CouponCodes: []string{"SPRING10"},
		ShippingZip: "94107", ShippingAddress: "1 Main St, San Francisco, CA, 94107, United States",
		Items: []schemas.Item{
			{ProductID: "632910392", VariantID: "808950810", SKU: "IPOD2008PINK", Title: "IPod Nano - 8GB", Price: "99.00", Quantity: 1},
			{ProductID: "632910393", VariantID: "808950811", SKU: "CASE-1", Title: "Case", Price: "24.45", Quantity: 1},
		},
		IPAddress: "203.0.113.7", TrafficSource: "", OrderCreatedAt: at, RegisteredAt: at, ReceivedAt: at, UpdatedAt: at, Version: 1,
	}
}

// TestFunctionalInsertThroughput compares rows/s into purchases through the
// sink's writer with clickhouse-client inserting the same rows natively
// (FORMAT JSONEachRow). It runs only with PURCHASESYNC_SINK_BENCH=1:
//
//	PURCHASESYNC_SINK_BENCH=1 go test ./sinks/clickhouse -run InsertThroughput -v
func TestFunctionalInsertThroughput(t *testing.T) {
	if os.Getenv("PURCHASESYNC_SINK_BENCH") != "1" {
		t.Skip("set PURCHASESYNC_SINK_BENCH=1 to measure insert throughput")
	}
	client, err := exec.LookPath("clickhouse-client")
	if err != nil {
		t.Fatal("clickhouse-client not found")
	}
	n, _ := strconv.Atoi(os.Getenv("PURCHASESYNC_SINK_BENCH_ROWS"))
	if n == 0 {
		n = 300_000
	}
	cfg := testConfig(t)
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Minute)
	defer cancel()
	if _, err := Migrate(ctx, cfg, quiet); err != nil {
		t.Fatal(err)
	}
	conn := openDB(t, cfg)
	_, port, _ := net.SplitHostPort(cfg.Addr[0])

	// The same rows three ways: Kafka values, converted rows, JSONEachRow.
	values := make([][]byte, n)
	file := filepath.Join(t.TempDir(), "purchases.jsonl")
	f, err := os.Create(file)
	if err != nil {
		t.Fatal(err)
	}
	bw := bufio.NewWriterSize(f, 1<<20)
	enc := json.NewEncoder(bw)
	one := newPurchasesTable()
	for i := range n {
		values[i], _ = schemas.MarshalPurchase(benchPurchase(i))
		r, err := purchaseRowFrom(values[i])
		if err != nil {
			t.Fatal(err)
		}
		one.reset()
		one.add(r, rowRef{}, 0)
		if err := enc.Encode(jsonEachRow(&one.table)[0]); err != nil {
			t.Fatal(err)
		}
	}
	if err := bw.Flush(); err != nil {
		t.Fatal(err)
	}
	f.Close()
	st, _ := os.Stat(file)
	t.Logf("%d rows; JSONEachRow file %d MiB; mean purchases.v1 value %d B", n, st.Size()>>20, len(values[0]))

	truncate := func() {
		if err := conn.Exec(ctx, "TRUNCATE TABLE purchases"); err != nil {
			t.Fatal(err)
		}
	}
	check := func(what string) {
		var got uint64
		if err := conn.QueryRow(ctx, "SELECT count() FROM purchases").Scan(&got); err != nil || got != uint64(n) {
			t.Fatalf("%s: %d rows in purchases (err %v), want %d", what, got, err, n)
		}
	}
	batchRows := DefaultConfig().BatchRows
	w := &chWriter{conn: conn}

	runClient := func() time.Duration {
		truncate()
		in, _ := os.Open(file)
		defer in.Close()
		cmd := exec.Command(client, "--port", port, "--database", cfg.Database, "--query",
			newPurchasesTable().insertSQL()+" FORMAT JSONEachRow")
		cmd.Stdin = in
		start := time.Now()
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("clickhouse-client: %v\n%s", err, out)
		}
		d := time.Since(start)
		check("clickhouse-client")
		return d
	}
	// runWriter decodes each purchases.v1 value, converts and validates it,
	// and inserts batches of BatchRows: the sink's path minus Kafka.
	runWriter := func() time.Duration {
		truncate()
		tb := newPurchasesTable()
		start := time.Now()
		for i, v := range values {
			r, err := purchaseRowFrom(v)
			if err != nil {
				t.Fatal(err)
			}
			tb.add(r, rowRef{}, len(v))
			if tb.len() == batchRows || i == len(values)-1 {
				if err := w.insert(ctx, &tb.table); err != nil {
					t.Fatal(err)
				}
				tb.reset()
			}
		}
		d := time.Since(start)
		check("writer")
		return d
	}
	// runInsertOnly times the writer alone on rows already decoded (what
	// the writer receives from the sink's consumer). The decoded rows are
	// dropped afterwards: left in the heap they would slow the next
	// phases' garbage collections, the whole sink's included.
	runInsertOnly := func() time.Duration {
		var batches []*purchasesTable
		for i, v := range values {
			if i%batchRows == 0 {
				batches = append(batches, newPurchasesTable())
			}
			r, _ := purchaseRowFrom(v)
			batches[len(batches)-1].add(r, rowRef{}, len(v))
		}
		truncate()
		start := time.Now()
		for _, b := range batches {
			if err := w.insert(ctx, &b.table); err != nil {
				t.Fatal(err)
			}
		}
		d := time.Since(start)
		check("writer (insert only)")
		return d
	}
	// runSink runs the whole sink (Kafka fetch, decode, validate, batch,
	// insert, commit) over the same purchases preloaded in Kafka, timed from
	// its first rows in ClickHouse (group join excluded) to the last.
	var runSink func() float64
	if brokers := os.Getenv("PURCHASESYNC_KAFKA_BROKERS"); brokers != "" {
		bs := testenv.Kafka(t)
		topics := testenv.Topics(t, bs, 6)
		prod := newProducer(t, bs, topics)
		for i, v := range values {
			prod.cl.Produce(ctx, &kgo.Record{Topic: topics.Name(schemas.TopicPurchases), Key: []byte(fmt.Sprint(i)), Value: v}, nil)
		}
		if err := prod.cl.Flush(ctx); err != nil {
			t.Fatal(err)
		}
		runSink = func() float64 {
			truncate()
			scfg := cfg
			scfg.Topics, scfg.Group, scfg.Migrate = topics, testenv.Name(t), false
			s, err := New(scfg, Deps{KafkaOpts: []kgo.Opt{kgo.SeedBrokers(bs...)}, Logger: quiet})
			if err != nil {
				t.Fatal(err)
			}
			rctx, stop := context.WithCancel(ctx)
			done := make(chan error, 1)
			go func() { done <- s.Run(rctx) }()
			defer func() { stop(); <-done }()
			var start time.Time
			var startRows uint64
			for {
				var got uint64
				if err := conn.QueryRow(ctx, "SELECT count() FROM purchases").Scan(&got); err != nil {
					t.Fatal(err)
				}
				if got > 0 && start.IsZero() {
					start, startRows = time.Now(), got
				}
				if got >= uint64(n) {
					return float64(uint64(n)-startRows) / time.Since(start).Seconds()
				}
				time.Sleep(20 * time.Millisecond)
			}
		}
	}
	rate := func(d time.Duration) float64 { return float64(n) / d.Seconds() }
	var client_, writer_, insert_, sink_ []float64
	for range 3 {
		client_ = append(client_, rate(runClient()))
		writer_ = append(writer_, rate(runWriter()))
		insert_ = append(insert_, rate(runInsertOnly()))
		if runSink != nil {
			sink_ = append(sink_, runSink())
		}
	}
	best := func(xs []float64) float64 {
		b := 0.0
		for _, x := range xs {
			b = max(b, x)
		}
		return b
	}
	t.Logf("clickhouse-client JSONEachRow: %.0f rows/s (runs %.0f)", best(client_), client_)
	t.Logf("sink writer (decode+validate+insert, %d-row batches): %.0f rows/s (runs %.0f)", batchRows, best(writer_), writer_)
	t.Logf("sink writer, insert only (rows already decoded): %.0f rows/s (runs %.0f)", best(insert_), insert_)
	if runSink != nil {
		t.Logf("whole sink from Kafka (fetch, decode, batch, insert, commit; decode overlaps insert): %.0f rows/s (runs %.0f)", best(sink_), sink_)
	}
	t.Logf("ratio to clickhouse-client: whole sink %.2f, writer decode+insert %.2f, insert only %.2f",
		best(sink_)/best(client_), best(writer_)/best(client_), best(insert_)/best(client_))
}

// latencyWriter records, for every row it inserts, the time from ingest's
// received-at to the end of the insert.
type latencyWriter struct {
	inner writer
	mu    sync.Mutex
	lat   []time.Duration
}

func (w *latencyWriter) insert(ctx context.Context, t *table) error {
	if err := w.inner.insert(ctx, t); err != nil {
		return err
	}
	now := time.Now()
	w.mu.Lock()
	for _, r := range t.refs {
		if !r.receivedAt.IsZero() {
			w.lat = append(w.lat, now.Sub(r.receivedAt))
		}
	}
	w.mu.Unlock()
	return nil
}

// TestFunctionalSteadyLatency feeds purchases.v1 and a raw topic at a steady
// rate (2,000 events/s each by default) through real Kafka into ClickHouse
// with the default batching, and reports the latency from received-at to
// insert. PURCHASESYNC_SINK_BENCH=1 only.
func TestFunctionalSteadyLatency(t *testing.T) {
	if os.Getenv("PURCHASESYNC_SINK_BENCH") != "1" {
		t.Skip("set PURCHASESYNC_SINK_BENCH=1 to measure steady-state latency")
	}
	brokers := testenv.Kafka(t)
	cfg := testConfig(t)
	ctx := ctxT(t)
	if _, err := Migrate(ctx, cfg, quiet); err != nil {
		t.Fatal(err)
	}
	topics := testenv.Topics(t, brokers, 6)
	cfg.Topics, cfg.Group, cfg.Migrate = topics, testenv.Name(t), false
	conn := openDB(t, cfg)
	lw := &latencyWriter{inner: &chWriter{conn: conn}}
	s, err := New(cfg, Deps{KafkaOpts: []kgo.Opt{kgo.SeedBrokers(brokers...)}, Logger: quiet, writer: lw})
	if err != nil {
		t.Fatal(err)
	}
	runCtx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Run(runCtx) }()

	prod := newProducer(t, brokers, topics)
	const rate, seconds = 2000, 20
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	base := samplePurchase()
	n := 0
	for start := time.Now(); time.Since(start) < seconds*time.Second; <-tick.C {
		for range rate / 100 {
			p := *base
			p.OrderNumber, p.ReceivedAt = strconv.Itoa(n), time.Now()
			b, _ := schemas.MarshalPurchase(&p)
			now := []byte(time.Now().UTC().Format(time.RFC3339Nano))
			prod.cl.Produce(ctx, &kgo.Record{Topic: topics.Name(schemas.TopicPurchases), Key: []byte(p.Key()), Value: b}, nil)
			prod.cl.Produce(ctx, &kgo.Record{Topic: topics.Name(schemas.TopicStorefrontPurchases), Key: []byte(p.Key()),
				Value: []byte(`{"purchase":{}}`), Headers: []kgo.RecordHeader{{Key: schemas.HeaderReceivedAt, Value: now}}}, nil)
			n++
		}
	}
	waitRows(t, conn, 60*time.Second, func(c counts) bool { return c.final == uint64(n) && c.raw == uint64(n) })
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	lw.mu.Lock()
	defer lw.mu.Unlock()
	slices.Sort(lw.lat)
	q := func(f float64) time.Duration { return lw.lat[int(f*float64(len(lw.lat)-1))].Round(time.Millisecond) }
	t.Logf("%d purchases + %d raw events at %d/s each for %d s; received-at → inserted: p50 %s, p99 %s, max %s",
		n, n, rate, seconds, q(0.5), q(0.99), q(1))
}
