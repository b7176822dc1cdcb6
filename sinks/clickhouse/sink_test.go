package clickhouse

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"

	"purchasesync/schemas"
	"purchasesync/schemas/deadletter"
)

// fakeWriter stands in for ClickHouse: it records what each insert attempt
// carried and fails while told to.
type fakeWriter struct {
	mu       sync.Mutex
	failures int            // attempts still to fail
	badRow   int            // >= 0: refuse this row once, as the driver would
	attempts []string       // table:rows:first key, per attempt
	rows     map[string]int // "topic/offset" → times inserted
	byTable  map[string]int
	byKey    map[string]int  // record key → times inserted
	deadOK   map[string]bool // "topic/partition/offset" of records expected in the dead-letter topic (outage tests)
	misfiled int             // purchases rows whose record (key) is not their own
}

func newFakeWriter() *fakeWriter {
	return &fakeWriter{badRow: -1, rows: map[string]int{}, byTable: map[string]int{}, byKey: map[string]int{}, deadOK: map[string]bool{}}
}

func (w *fakeWriter) insert(ctx context.Context, t *table) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.attempts = append(w.attempts, fmt.Sprintf("%s:%d:%s", t.name, t.len(), t.refs[0].key))
	if w.failures > 0 {
		w.failures--
		return errors.New("dial tcp 127.0.0.1:1: connect: connection refused")
	}
	if w.badRow >= 0 && w.badRow < t.len() {
		r := w.badRow
		w.badRow = -1
		return &badRowError{Row: r, Err: errors.New("value overflows")}
	}
	for _, r := range t.refs {
		w.rows[fmt.Sprintf("%s/%d/%d", r.topic, r.partition, r.offset)]++
		w.byKey[string(r.key)]++
	}
	if t.name == "purchases" { // columns 0 and 1 are site and order_number
		sites, numbers := t.cols[0].values().([]string), t.cols[1].values().([]string)
		for i, r := range t.refs {
			if string(r.key) != sites[i]+"/"+numbers[i] {
				w.misfiled++
			}
		}
	}
	w.byTable[t.name] += t.len()
	return nil
}

// SetDown makes every insert fail, as with ClickHouse unreachable, until
// SetDown(false) (sinktest.Destination).
func (w *fakeWriter) SetDown(down bool) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.failures = 0
	if down {
		w.failures = 1 << 30
	}
}

// Written is how many times each record key was inserted
// (sinktest.Destination).
func (w *fakeWriter) Written() map[string]int {
	w.mu.Lock()
	defer w.mu.Unlock()
	return maps.Clone(w.byKey)
}

func (w *fakeWriter) total() int {
	w.mu.Lock()
	defer w.mu.Unlock()
	n := 0
	for _, v := range w.byTable {
		n += v
	}
	return n
}

type kafkaFixture struct {
	cluster *kfake.Cluster
	topics  schemas.Topics
	client  *kgo.Client
}

func newKafka(t *testing.T, partitions int32) *kafkaFixture {
	t.Helper()
	topics := schemas.Topics{Prefix: "t."}
	var names []string
	for _, n := range []string{schemas.TopicPurchases, schemas.TopicDiscrepancies, schemas.TopicShopifyOrders,
		schemas.TopicStorefrontPurchases, schemas.TopicDeadLetter} {
		names = append(names, topics.Name(n))
	}
	c, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(partitions, names...))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	cl, err := kgo.NewClient(kgo.SeedBrokers(c.ListenAddrs()...), kgo.DefaultProduceTopic(topics.Name(schemas.TopicPurchases)))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cl.Close)
	return &kafkaFixture{cluster: c, topics: topics, client: cl}
}

func (k *kafkaFixture) produce(t *testing.T, recs ...*kgo.Record) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := k.client.ProduceSync(ctx, recs...).FirstErr(); err != nil {
		t.Fatal(err)
	}
}

func purchaseRecord(t *testing.T, topics schemas.Topics, site string, i int) *kgo.Record {
	p := samplePurchase()
	p.Site, p.OrderNumber = site, fmt.Sprint(1000+i)
	b, err := schemas.MarshalPurchase(p)
	if err != nil {
		t.Fatal(err)
	}
	return &kgo.Record{Topic: topics.Name(schemas.TopicPurchases), Key: []byte(p.Key()), Value: b}
}

func rawRecord_(topics schemas.Topics, topic string, i int) *kgo.Record {
	return &kgo.Record{Topic: topics.Name(topic), Key: []byte(fmt.Sprintf("acme/%d", 1000+i)), Value: []byte(`{"id":1}`),
		Headers: []kgo.RecordHeader{{Key: schemas.HeaderReceivedAt, Value: []byte(time.Now().UTC().Format(time.RFC3339Nano))}}}
}

func testSink(t *testing.T, k *kafkaFixture, w *fakeWriter, mutate func(*Config)) (*Sink, *prometheus.Registry) {
	t.Helper()
	cfg := DefaultConfig()
	cfg.Topics = k.topics
	cfg.Group = "sink-" + t.Name()
	cfg.FlushInterval = 50 * time.Millisecond
	cfg.RetryInitial, cfg.RetryMax = 10*time.Millisecond, 50*time.Millisecond
	cfg.ShutdownTimeout = 2 * time.Second
	if mutate != nil {
		mutate(&cfg)
	}
	reg := prometheus.NewRegistry()
	s, err := New(cfg, Deps{KafkaOpts: []kgo.Opt{kgo.SeedBrokers(k.cluster.ListenAddrs()...)}, Registerer: reg, Logger: quiet, writer: w})
	if err != nil {
		t.Fatal(err)
	}
	return s, reg
}

func runSink(t *testing.T, s *Sink) (cancel func() error) {
	ctx, stop := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx) }()
	var once sync.Once
	var err error
	cancel = func() error {
		once.Do(func() {
			stop()
			select {
			case err = <-done:
			case <-time.After(15 * time.Second):
				err = errors.New("Run did not return within 15 s of cancel")
			}
		})
		return err
	}
	t.Cleanup(func() { _ = cancel() })
	return cancel
}

func committed(t *testing.T, k *kafkaFixture, group string) int64 {
	t.Helper()
	offs, err := kadm.NewClient(k.client).FetchOffsets(context.Background(), group)
	if err != nil {
		t.Fatal(err)
	}
	var n int64
	offs.Each(func(o kadm.OffsetResponse) { n += o.At })
	return n
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestSinkLoadsEveryTableAndDeadLettersBadRecords(t *testing.T) {
	k := newKafka(t, 2)
	var recs []*kgo.Record
	for i := range 50 {
		recs = append(recs, purchaseRecord(t, k.topics, "acme", i))
		recs = append(recs, rawRecord_(k.topics, schemas.TopicShopifyOrders, i), rawRecord_(k.topics, schemas.TopicStorefrontPurchases, i))
	}
	d, _ := schemas.MarshalDiscrepancy(&schemas.Discrepancy{Site: "acme", OrderNumber: "1", Kind: schemas.KindWebhookMissing, DetectedAt: time.Now()})
	recs = append(recs,
		&kgo.Record{Topic: k.topics.Name(schemas.TopicDiscrepancies), Key: []byte("acme/1"), Value: d},
		&kgo.Record{Topic: k.topics.Name(schemas.TopicPurchases), Key: []byte("acme/bad"), Value: []byte(`{"site":"acme"`)},
		&kgo.Record{Topic: k.topics.Name(schemas.TopicShopifyOrders), Key: []byte("no-slash"), Value: []byte(`{}`)},
	)
	k.produce(t, recs...)
	w := newFakeWriter()
	s, reg := testSink(t, k, w, nil)
	cancel := runSink(t, s)
	waitFor(t, "151 rows and 153 committed offsets", func() bool { return w.total() == 151 && committed(t, k, s.cfg.Group) == 153 })
	if err := cancel(); err != nil {
		t.Fatalf("Run: %v", err)
	}
	if w.byTable["purchases"] != 50 || w.byTable["raw_events"] != 100 || w.byTable["discrepancies"] != 1 {
		t.Errorf("rows by table = %v", w.byTable)
	}
	dead := readAll(t, k, k.topics.Name(schemas.TopicDeadLetter), 2)
	reasons := map[string]string{}
	for _, r := range dead {
		reasons[deadletter.Header(r, schemas.HeaderSourceTopic)] = deadletter.Header(r, schemas.HeaderReason)
	}
	if reasons[k.topics.Name(schemas.TopicPurchases)] == "" || reasons[k.topics.Name(schemas.TopicShopifyOrders)] == "" {
		t.Errorf("dead letters = %v", reasons)
	}
	if got := metricValue(s.m.deadLetters.WithLabelValues(k.topics.Name(schemas.TopicPurchases), "decode")); got != 1 {
		t.Errorf("dead_letters_total{decode} = %v", got)
	}
	if got := metricValue(s.m.rows.WithLabelValues("purchases")); got != 50 {
		t.Errorf("rows_total{purchases} = %v", got)
	}
	if n := metricValue(s.m.e2e); n != 150 {
		t.Errorf("end-to-end latency observed %v times, want 150 (purchases and raw events carry received-at)", n)
	}
	if _, err := reg.Gather(); err != nil {
		t.Errorf("gather: %v", err)
	}
}

func readAll(t *testing.T, k *kafkaFixture, topic string, want int) []*kgo.Record {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(k.cluster.ListenAddrs()...), kgo.ConsumeTopics(topic))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var out []*kgo.Record
	for len(out) < want && ctx.Err() == nil {
		cl.PollFetches(ctx).EachRecord(func(r *kgo.Record) { out = append(out, r) })
	}
	if len(out) != want {
		t.Fatalf("read %d records from %s, want %d", len(out), topic, want)
	}
	return out
}

// While ClickHouse fails, the sink retries the same rows, holds consumption
// at one batch, and commits nothing; when it recovers every row arrives once.
func TestSinkHoldsAndRetriesSameBatch(t *testing.T) {
	k := newKafka(t, 1)
	var recs []*kgo.Record
	for i := range 500 {
		recs = append(recs, purchaseRecord(t, k.topics, "acme", i))
	}
	k.produce(t, recs...)
	w := newFakeWriter()
	w.failures = 1 << 30
	s, _ := testSink(t, k, w, func(c *Config) { c.BatchRows = 100 })
	cancel := runSink(t, s)
	waitFor(t, "10 failed attempts", func() bool { w.mu.Lock(); defer w.mu.Unlock(); return len(w.attempts) >= 10 })
	w.mu.Lock()
	first := w.attempts[0]
	for _, a := range w.attempts {
		if a != first {
			t.Errorf("retry carried %s, first attempt %s: a retry must resend the same rows", a, first)
		}
	}
	w.failures = 0
	w.mu.Unlock()
	if first != "purchases:100:acme/1000" {
		t.Errorf("first attempt = %s, want one batch of BatchRows=100", first)
	}
	if got := metricValue(s.m.retrying); got != 1 {
		t.Errorf("retrying = %v while failing", got)
	}
	if c := committed(t, k, s.cfg.Group); c > 0 {
		t.Errorf("committed %d offsets before any insert succeeded", c)
	}
	if b := metricValue(s.m.buffered); b > 200 {
		t.Errorf("buffered_rows = %v, above two batches of BatchRows", b)
	}
	waitFor(t, "all 500 rows", func() bool { return w.total() == 500 && committed(t, k, s.cfg.Group) == 500 })
	if err := cancel(); err != nil {
		t.Fatal(err)
	}
	for key, n := range w.rows {
		if n != 1 {
			t.Errorf("%s inserted %d times", key, n)
		}
	}
	if got := metricValue(s.m.retrying); got != 0 {
		t.Errorf("retrying = %v after recovery", got)
	}
}

// A flush that cannot finish before ShutdownTimeout is an error, and
// nothing is committed: the records are read again by the next owner.
func TestSinkShutdownWithClickHouseDown(t *testing.T) {
	k := newKafka(t, 1)
	k.produce(t, purchaseRecord(t, k.topics, "acme", 1))
	w := newFakeWriter()
	w.failures = 1 << 30
	s, _ := testSink(t, k, w, func(c *Config) { c.ShutdownTimeout = 200 * time.Millisecond })
	cancel := runSink(t, s)
	waitFor(t, "an attempt", func() bool { w.mu.Lock(); defer w.mu.Unlock(); return len(w.attempts) > 0 })
	if err := cancel(); err == nil {
		t.Fatal("Run returned nil although it could not flush")
	}
	if c := committed(t, k, s.cfg.Group); c != 0 {
		t.Errorf("committed %d offsets without an insert", c)
	}
}

// A row the driver refuses is dead-lettered; the rest of its batch loads.
func TestSinkDropsRowTheDriverRefuses(t *testing.T) {
	k := newKafka(t, 1)
	var recs []*kgo.Record
	for i := range 5 {
		recs = append(recs, purchaseRecord(t, k.topics, "acme", i))
	}
	k.produce(t, recs...)
	w := newFakeWriter()
	w.badRow = 2
	s, _ := testSink(t, k, w, nil)
	cancel := runSink(t, s)
	waitFor(t, "4 rows and 5 offsets", func() bool { return w.total() == 4 && committed(t, k, s.cfg.Group) == 5 })
	if err := cancel(); err != nil {
		t.Fatal(err)
	}
	dead := readAll(t, k, k.topics.Name(schemas.TopicDeadLetter), 1)
	if got := deadletter.Header(dead[0], schemas.HeaderSourceOffset); got != "2" || string(dead[0].Key) != "acme/1002" {
		t.Errorf("dead letter for offset %s key %s, want offset 2 key acme/1002", got, dead[0].Key)
	}
}

// TestSinkDecodesLargePollsInParallel: polls big enough to be split across
// decoding goroutines must still buffer every row next to its own record
// (offsets, dead letters and keys line up) and load each exactly once.
func TestSinkDecodesLargePollsInParallel(t *testing.T) {
	k := newKafka(t, 2)
	const n = 3000
	var recs []*kgo.Record
	bad := 0
	for i := range n {
		r := purchaseRecord(t, k.topics, "acme", i)
		if i%97 == 0 {
			r.Value = []byte(`{"site":"acme","order_number":`) // truncated: a dead letter
			bad++
		}
		recs = append(recs, r)
	}
	k.produce(t, recs...)
	w := newFakeWriter()
	s, _ := testSink(t, k, w, func(c *Config) { c.DecodeWorkers, c.BatchRows, c.FlushInterval = 4, 10_000, time.Second })
	cancel := runSink(t, s)
	waitFor(t, "every record committed", func() bool { return w.total() == n-bad && committed(t, k, s.cfg.Group) == n })
	if err := cancel(); err != nil {
		t.Fatalf("Run: %v", err)
	}
	if s.parallelPolls == 0 {
		t.Fatal("no poll was large enough to be converted in parallel: the test no longer tests that")
	}
	if w.byTable["purchases"] != n-bad || w.misfiled != 0 {
		t.Fatalf("purchases rows = %d (want %d), rows buffered against another record's ref = %d", w.byTable["purchases"], n-bad, w.misfiled)
	}
	for key, times := range w.rows {
		if times != 1 {
			t.Fatalf("%s inserted %d times", key, times)
		}
	}
	if dead := readAll(t, k, k.topics.Name(schemas.TopicDeadLetter), bad); len(dead) != bad {
		t.Fatalf("%d dead letters, want %d", len(dead), bad)
	}
}
