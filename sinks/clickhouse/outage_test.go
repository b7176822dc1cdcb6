package clickhouse

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"

	"purchasesync/schemas"
	"purchasesync/sinks/internal/kafkatest"
)

// Outage tests: the broker goes away (or refuses a commit or a produce)
// under the sink, which must not return from Run, must say it is not ready
// meanwhile and ready after, must load every record, and must never commit
// an offset past a record it has not written.

// syncLog collects log lines.
type syncLog struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *syncLog) Write(p []byte) (int, error) { l.mu.Lock(); defer l.mu.Unlock(); return l.b.Write(p) }

func (l *syncLog) count(s string) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return strings.Count(l.b.String(), s)
}

func (l *syncLog) String() string { l.mu.Lock(); defer l.mu.Unlock(); return l.b.String() }

type outageFixture struct {
	k      *kafkatest.Cluster
	topics schemas.Topics
	client *kgo.Client
	w      *fakeWriter
	logs   *syncLog

	mu          sync.Mutex
	aheadErrors []string // commits of offsets whose records were not written
	commits     int
}

func newOutageFixture(t *testing.T, partitions int32) *outageFixture {
	t.Helper()
	topics := schemas.Topics{Prefix: "t."}
	var names []string
	for _, n := range []string{schemas.TopicPurchases, schemas.TopicDiscrepancies, schemas.TopicShopifyOrders,
		schemas.TopicStorefrontPurchases, schemas.TopicDeadLetter} {
		names = append(names, topics.Name(n))
	}
	f := &outageFixture{k: kafkatest.New(t, kfake.SeedTopics(partitions, names...)), topics: topics, w: newFakeWriter(), logs: &syncLog{}}
	cl, err := kgo.NewClient(kgo.SeedBrokers(f.k.Addrs()...))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cl.Close)
	f.client = cl
	f.k.WatchCommits(f.checkCommit)
	return f
}

// committed is the sum of the group's committed offsets, -1 while Kafka
// cannot say.
func (f *outageFixture) committed(group string) int64 {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	offs, err := kadm.NewClient(f.client).FetchOffsets(ctx, group)
	if err == nil {
		err = offs.Error()
	}
	if err != nil {
		return -1
	}
	var n int64
	offs.Each(func(o kadm.OffsetResponse) { n += o.At })
	return n
}

// checkCommit checks every offset commit the broker receives: each offset
// below the committed one must be a row the writer inserted or a record
// that went to the dead-letter topic.
func (f *outageFixture) checkCommit(topic string, partition int32, offset int64) {
	f.w.mu.Lock()
	defer f.w.mu.Unlock()
	f.mu.Lock()
	defer f.mu.Unlock()
	f.commits++
	for o := int64(0); o < offset; o++ {
		key := fmt.Sprintf("%s/%d/%d", topic, partition, o)
		if f.w.rows[key] == 0 && !f.w.deadOK[key] {
			f.aheadErrors = append(f.aheadErrors, fmt.Sprintf("commit of %s[%d]=%d before offset %d was written", topic, partition, offset, o))
			return
		}
	}
}

func (f *outageFixture) produce(t *testing.T, from, to int) {
	t.Helper()
	var recs []*kgo.Record
	for i := from; i < to; i++ {
		recs = append(recs, purchaseRecord(t, f.topics, "acme", i))
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := f.client.ProduceSync(ctx, recs...).FirstErr(); err != nil {
		t.Fatal(err)
	}
}

func (f *outageFixture) sink(t *testing.T, mutate func(*Config), opts ...kgo.Opt) *Sink {
	t.Helper()
	cfg := DefaultConfig()
	cfg.Topics = f.topics
	cfg.Group = "sink-" + t.Name()
	cfg.FlushInterval = 50 * time.Millisecond
	cfg.RetryInitial, cfg.RetryMax = 20*time.Millisecond, 200*time.Millisecond
	cfg.ShutdownTimeout = 2 * time.Second
	cfg.HealthInterval = 100 * time.Millisecond
	if mutate != nil {
		mutate(&cfg)
	}
	s, err := New(cfg, Deps{KafkaOpts: append([]kgo.Opt{kgo.SeedBrokers(f.k.Addrs()...)}, opts...),
		Registerer: prometheus.NewRegistry(), Logger: slog.New(slog.NewTextHandler(f.logs, nil)), writer: f.w})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// runUntil runs s and fails the test if Run returns before stop is called.
func runUntil(t *testing.T, s *Sink) (stop func(), returned func() bool) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx) }()
	var once sync.Once
	stop = func() {
		once.Do(func() {
			cancel()
			select {
			case err := <-done:
				if err != nil {
					t.Errorf("Run after cancel: %v", err)
				}
			case <-time.After(15 * time.Second):
				t.Error("Run did not return within 15 s of cancel")
			}
		})
	}
	t.Cleanup(stop)
	returned = func() bool {
		select {
		case err := <-done:
			t.Fatalf("Run returned by itself: %v", err)
			return true
		default:
			return false
		}
	}
	return stop, returned
}

func (f *outageFixture) check(t *testing.T, s *Sink, n int) {
	t.Helper()
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, e := range f.aheadErrors {
		t.Error(e)
	}
	f.w.mu.Lock()
	defer f.w.mu.Unlock()
	for i := range n {
		if f.w.byKey[fmt.Sprintf("acme/%d", 1000+i)] == 0 {
			t.Errorf("purchase acme/%d never inserted", 1000+i)
		}
	}
}

// waitOrFail waits for cond, failing the test if Run returns meanwhile.
func waitOrFail(t *testing.T, returned func() bool, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		returned()
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestSinkRidesOutBrokerRestart: the only broker goes away under load and
// comes back; the sink stays up, is not ready meanwhile, logs the episode
// once each way, and loads every record with no commit ahead of a write.
func TestSinkRidesOutBrokerRestart(t *testing.T) {
	f := newOutageFixture(t, 2)
	f.produce(t, 0, 100)
	s := f.sink(t, nil)
	stop, returned := runUntil(t, s)
	waitOrFail(t, returned, 10*time.Second, "100 rows, committed and ready", func() bool {
		return f.w.total() == 100 && f.committed(s.cfg.Group) == 100 && s.Ready() == nil
	})

	f.k.Stop()
	waitOrFail(t, returned, 5*time.Second, "not ready with the broker gone", func() bool { return s.Ready() != nil })
	if err := s.Ready(); !strings.Contains(err.Error(), "Kafka") {
		t.Errorf("Ready = %v, want it to name Kafka", err)
	}
	time.Sleep(2 * time.Second) // long enough for the group session and fetches to fail
	returned()
	f.k.Start()
	f.produce(t, 100, 200)
	waitOrFail(t, returned, 15*time.Second, "200 rows, committed and ready again", func() bool {
		return f.w.total() >= 200 && f.committed(s.cfg.Group) == 200 && s.Ready() == nil
	})
	stop()
	f.check(t, s, 200)
	if b, o := f.logs.count("Kafka outage began"), f.logs.count("Kafka outage over"); b != 1 || o != 1 {
		t.Errorf("%d episode-start and %d episode-end lines for one outage, want 1 and 1:\n%s", b, o, f.logs)
	}
	if n := f.logs.count("level=WARN"); n > 1 {
		t.Errorf("%d warnings for one outage, want the one episode line:\n%s", n, f.logs)
	}
}

// TestSinkStartsWhileKafkaIsDown: a sink started without a broker waits,
// not ready, and consumes once the broker is there.
func TestSinkStartsWhileKafkaIsDown(t *testing.T) {
	f := newOutageFixture(t, 1)
	f.produce(t, 0, 20)
	f.k.Stop()
	s := f.sink(t, nil)
	stop, returned := runUntil(t, s)
	time.Sleep(time.Second)
	returned()
	if err := s.Ready(); err == nil {
		t.Fatal("ready without a broker")
	}
	f.k.Start()
	waitOrFail(t, returned, 15*time.Second, "20 rows, committed and ready", func() bool {
		return f.w.total() == 20 && f.committed(s.cfg.Group) == 20 && s.Ready() == nil
	})
	stop()
	f.check(t, s, 20)
}

// TestSinkRecommitsAfterFailedCommit: commits fail after the rows were
// inserted, and no more records come. The sink must commit those offsets
// again by itself (else a restart re-reads the batch), report not ready
// until it has, and insert nothing twice.
func TestSinkRecommitsAfterFailedCommit(t *testing.T) {
	f := newOutageFixture(t, 2)
	s := f.sink(t, nil)
	stop, returned := runUntil(t, s)
	waitOrFail(t, returned, 10*time.Second, "ready", func() bool { return s.Ready() == nil })
	f.k.FailCommits(3, kerr.UnknownServerError.Code)
	f.produce(t, 0, 50)
	waitOrFail(t, returned, 10*time.Second, "50 rows and a failed commit", func() bool { return f.w.total() == 50 && metricValue(s.m.commitErrors) > 0 })
	defer func() {
		if t.Failed() {
			t.Log(f.logs)
		}
	}()
	waitOrFail(t, returned, 5*time.Second, "50 offsets committed again", func() bool {
		return f.committed(s.cfg.Group) == 50
	})
	waitOrFail(t, returned, 5*time.Second, "ready again", func() bool { return s.Ready() == nil })
	stop()
	f.check(t, s, 50)
	for key, n := range f.w.rows {
		if n != 1 {
			t.Errorf("%s inserted %d times", key, n)
		}
	}
	if b := f.logs.count("Kafka outage began"); b != 1 {
		t.Errorf("%d episode lines for three failed commits, want 1:\n%s", b, f.logs)
	}
}

// TestSinkHoldsDeadLettersUntilKafkaTakesThem: while Kafka refuses the
// dead letters, the sink retries them, is not ready, and commits nothing
// past the bad record; then it delivers them and commits.
func TestSinkHoldsDeadLettersUntilKafkaTakesThem(t *testing.T) {
	f := newOutageFixture(t, 1)
	s := f.sink(t, nil, kgo.RecordDeliveryTimeout(time.Second), kgo.RecordRetries(1))
	stop, returned := runUntil(t, s)
	waitOrFail(t, returned, 10*time.Second, "ready", func() bool { return s.Ready() == nil })

	dlq := f.topics.Name(schemas.TopicDeadLetter)
	allow := f.k.RefuseProduce(dlq, kerr.NotEnoughReplicas.Code)
	f.produce(t, 0, 10)
	bad := &kgo.Record{Topic: f.topics.Name(schemas.TopicPurchases), Key: []byte("acme/bad"), Value: []byte(`{"site":`)}
	if err := f.client.ProduceSync(context.Background(), bad).FirstErr(); err != nil {
		t.Fatal(err)
	}
	f.produce(t, 11, 20)
	waitOrFail(t, returned, 10*time.Second, "not ready while dead letters are refused", func() bool { return s.Ready() != nil })
	time.Sleep(500 * time.Millisecond)
	if c := f.committed(s.cfg.Group); c > 10 {
		t.Errorf("committed %d offsets while the dead letter of offset 10 was not written", c)
	}
	f.w.mu.Lock() // from now on the dead letter of offset 10 can be written, and commits may pass it
	f.w.deadOK[fmt.Sprintf("%s/0/10", f.topics.Name(schemas.TopicPurchases))] = true
	f.w.mu.Unlock()
	allow()
	waitOrFail(t, returned, 10*time.Second, "all committed and ready", func() bool {
		return f.committed(s.cfg.Group) == 20 && s.Ready() == nil
	})
	stop()
	f.check(t, s, 10)
	readAll(t, &kafkaFixture{cluster: f.k.Fake(), client: f.client}, dlq, 1)
}

// TestSinkReportsClickHouseOutage: while inserts fail, the sink is not
// ready and says ClickHouse; one line for the episode each way.
func TestSinkReportsClickHouseOutage(t *testing.T) {
	f := newOutageFixture(t, 1)
	f.w.mu.Lock()
	f.w.failures = 8
	f.w.mu.Unlock()
	s := f.sink(t, nil)
	stop, returned := runUntil(t, s)
	f.produce(t, 0, 5)
	waitOrFail(t, returned, 10*time.Second, "not ready naming ClickHouse", func() bool {
		err := s.Ready()
		return err != nil && strings.Contains(err.Error(), "ClickHouse")
	})
	waitOrFail(t, returned, 10*time.Second, "5 rows and ready", func() bool { return f.w.total() == 5 && s.Ready() == nil })
	stop()
	if b, o := f.logs.count("ClickHouse outage began"), f.logs.count("ClickHouse outage over"); b != 1 || o != 1 {
		t.Errorf("%d start and %d end lines for 8 failed inserts, want 1 and 1:\n%s", b, o, f.logs)
	}
}
