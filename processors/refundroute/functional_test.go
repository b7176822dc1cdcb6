package refundroute

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"strconv"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/twmb/franz-go/pkg/kgo"

	"purchasesync/deploy/testenv"
	"purchasesync/schemas"
)

// TestFunctionalRestoreMeasured, on the real broker: a partition holding
// PURCHASESYNC_REFUNDROUTE_RESTORE_N (default 200,000) order index records
// is processed, the router stopped, and a new one routes a refund whose
// index it knows only from its restore, once. The restore's duration is
// logged (go test -v): it is the router's recovery time for that many
// orders in one partition.
func TestFunctionalRestoreMeasured(t *testing.T) {
	brokers := testenv.Kafka(t)
	tp := testenv.Topics(t, brokers, 1)
	n := 200000
	if v, err := strconv.Atoi(os.Getenv("PURCHASESYNC_REFUNDROUTE_RESTORE_N")); err == nil && v > 0 {
		n = v
	}
	cl, err := kgo.NewClient(kgo.SeedBrokers(brokers...), kgo.DefaultProduceTopic(tp.Name(schemas.TopicShopifyOrderIDs)),
		kgo.ProducerLinger(5*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	// Event times an hour apart at most: nothing expires (OrderWait 1 h,
	// IndexHorizon 10 h in testConfig).
	start := time.Now()
	batch := make([]*kgo.Record, 0, 10000)
	for i := range n {
		batch = append(batch, indexRec("bolt", strconv.Itoa(900000000+i), strconv.Itoa(1000+i), time.Duration(i)*time.Millisecond))
		if len(batch) == cap(batch) || i == n-1 {
			if err := cl.ProduceSync(context.Background(), batch...).FirstErr(); err != nil {
				t.Fatal(err)
			}
			batch = batch[:0]
		}
	}
	t.Logf("produced %d index records in %s", n, time.Since(start).Round(time.Millisecond))

	group := testenv.Name(t)
	run := func(instance string) (*Router, func()) {
		cfg := testConfig()
		cfg.Topics, cfg.Group = tp, group
		cfg.TransactionalID, cfg.InstanceID = cfg.Group+"-"+instance, cfg.Group+"-"+instance
		r, err := New(cfg, Deps{KafkaOpts: []kgo.Opt{kgo.SeedBrokers(brokers...)}, Registerer: prometheus.NewRegistry(),
			Logger: slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn})).With("instance", instance)})
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error, 1)
		go func() { done <- r.Run(ctx) }()
		return r, func() {
			cancel()
			if err := <-done; err != nil {
				t.Errorf("Run: %v", err)
			}
		}
	}
	start = time.Now()
	a, stopA := run("a")
	testenv.Eventually(t, 120*time.Second, "the first router to apply every index record", func() bool {
		return testutil.ToFloat64(a.m.indexed) == float64(n)
	})
	t.Logf("live: %d index records applied in %s", n, time.Since(start).Round(time.Millisecond))
	stopA()

	b, stopB := run("b")
	defer stopB()
	last := strconv.Itoa(900000000 + n - 1)
	start = time.Now()
	if err := cl.ProduceSync(context.Background(), refundRec("bolt", last, "501", time.Duration(n)*time.Millisecond)).FirstErr(); err != nil {
		t.Fatal(err)
	}
	testenv.Eventually(t, 120*time.Second, "the refund routed by the restored router", func() bool {
		return testutil.ToFloat64(b.m.routed) == 1
	})
	took := time.Since(start)
	// Each restore replays the n records before the refund; a transaction
	// aborted by the group's second rebalance round restores them again.
	restores, sum := histogramCountSum(t, b.m.restore)
	if got := testutil.ToFloat64(b.m.restoredRecords); restores < 1 || got != float64(restores)*float64(n) {
		t.Errorf("%d restores replayed %v records, want %d each", restores, got, n)
	}
	t.Logf("restore of %d records: %.3f s on average over %d restores (the refund routed %s after it was produced: the group waits for a's static membership to expire, -session timeout 15 s, before b gets the partition)",
		n, sum/float64(restores), restores, took.Round(time.Millisecond))
	if want := schemas.Key("bolt", strconv.Itoa(1000+n-1)); !routedOnce(t, brokers, tp, want) {
		t.Errorf("the refund is not once on shopify.orders.v1 under %s", want)
	}
}

func histogramCountSum(t *testing.T, h prometheus.Histogram) (uint64, float64) {
	t.Helper()
	reg := prometheus.NewRegistry()
	reg.MustRegister(h)
	mfs, err := reg.Gather()
	if err != nil || len(mfs) != 1 {
		t.Fatalf("gather: %v", err)
	}
	return mfs[0].Metric[0].Histogram.GetSampleCount(), mfs[0].Metric[0].Histogram.GetSampleSum()
}

func routedOnce(t *testing.T, brokers []string, tp schemas.Topics, key string) bool {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(brokers...), kgo.ConsumeTopics(tp.Name(schemas.TopicShopifyOrders)),
		kgo.FetchIsolationLevel(kgo.ReadCommitted()), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	var keys []string
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		fs := cl.PollFetches(ctx)
		cancel()
		if fs.NumRecords() == 0 {
			break
		}
		fs.EachRecord(func(r *kgo.Record) { keys = append(keys, string(r.Key)) })
	}
	return fmt.Sprint(keys) == fmt.Sprint([]string{key})
}
