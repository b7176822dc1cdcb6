package refundroute

import (
	"context"
	"log/slog"
	"os"
	"sort"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"

	"purchasesync/schemas"
)

// The router on franz-go's in-process kfake cluster: transactions,
// read_committed outputs, committed offsets and the restore are the real
// client's.

func fakeCluster(t *testing.T) (*kfake.Cluster, schemas.Topics) {
	t.Helper()
	tp := schemas.Topics{Prefix: "kfake."}
	var names []string
	for _, s := range schemas.TopicSpecs() {
		names = append(names, tp.Name(s.Name))
	}
	c, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(2, names...))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	return c, tp
}

// startRouter runs a router; the returned stop waits for Run to return.
func startRouter(t *testing.T, c *kfake.Cluster, tp schemas.Topics, instance string) (*Router, *prometheus.Registry, func()) {
	t.Helper()
	cfg := testConfig()
	cfg.Topics = tp
	cfg.Group, cfg.TransactionalID, cfg.InstanceID = "kfake-refundroute", "kfake-refundroute-"+instance, "kfake-refundroute-"+instance
	cfg.PollInterval, cfg.TransactionTimeout, cfg.SessionTimeout = 100*time.Millisecond, 5*time.Second, 6*time.Second
	reg := prometheus.NewRegistry()
	r, err := New(cfg, Deps{KafkaOpts: []kgo.Opt{kgo.SeedBrokers(c.ListenAddrs()...)}, Registerer: reg,
		Logger: slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- r.Run(ctx) }()
	stopped := false
	stop := func() {
		if stopped {
			return
		}
		stopped = true
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("Run: %v", err)
			}
		case <-time.After(20 * time.Second):
			t.Errorf("Run did not return")
		}
	}
	t.Cleanup(stop)
	return r, reg, stop
}

// produce writes recs to partition 0 of the input, as the ingest would
// (non-transactional, acks=all).
func produce(t *testing.T, c *kfake.Cluster, tp schemas.Topics, recs ...*kgo.Record) {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(c.ListenAddrs()...), kgo.RecordPartitioner(kgo.ManualPartitioner()))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	for _, r := range recs {
		r.Topic, r.Partition = tp.Name(schemas.TopicShopifyOrderIDs), 0
	}
	if err := cl.ProduceSync(context.Background(), recs...).FirstErr(); err != nil {
		t.Fatal(err)
	}
}

// committedOutputs reads topic (read_committed) and describes each record
// as "<key> <webhook-id>".
func committedOutputs(t *testing.T, c *kfake.Cluster, topic string) []string {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(c.ListenAddrs()...), kgo.ConsumeTopics(topic),
		kgo.FetchIsolationLevel(kgo.ReadCommitted()), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	var out []string
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
		fs := cl.PollFetches(ctx)
		cancel()
		n := 0
		fs.EachRecord(func(r *kgo.Record) {
			n++
			for _, h := range r.Headers {
				if h.Key == schemas.HeaderWebhookID {
					out = append(out, string(r.Key)+" "+string(h.Value))
				}
			}
		})
		if n == 0 {
			break
		}
	}
	sort.Strings(out)
	return out
}

func waitFor(t *testing.T, what string, ok func() bool) {
	t.Helper()
	for deadline := time.Now().Add(20 * time.Second); time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
		if ok() {
			return
		}
	}
	t.Fatalf("timed out waiting for %s", what)
}

func equal(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// TestFakeRoutesOnceAcrossRestart: index before and after its refund, a
// redelivered refund, a restart between a refund and its index (the
// waiting refund is restored, not lost, and routed once), a refund after
// the restart whose index came before it (restored), and a refund whose
// order never comes (to unrouted, once).
func TestFakeRoutesOnceAcrossRestart(t *testing.T) {
	c, tp := fakeCluster(t)
	orders, unrouted := tp.Name(schemas.TopicShopifyOrders), tp.Name(schemas.TopicShopifyUnrouted)
	produce(t, c, tp,
		indexRec("bolt", "11", "1001", 0),
		refundRec("bolt", "11", "501", time.Minute),
		refundRec("bolt", "11", "501", 2*time.Minute), // Shopify redelivered it
		refundRec("bolt", "22", "502", 3*time.Minute), // before its index
		refundRec("bolt", "33", "503", 4*time.Minute), // its order never comes
	)
	a, regA, stopA := startRouter(t, c, tp, "a")
	want := []string{"bolt/1001 w-501", "bolt/1001 w-501"}
	waitFor(t, "the first refunds routed", func() bool { return equal(committedOutputs(t, c, orders), want) })
	if err := a.Ready(); err != nil {
		t.Errorf("not ready: %v", err)
	}
	waitFor(t, "the waiting gauge", func() bool { return testutil.ToFloat64(a.m.waiting) == 2 })
	stopA()
	if got := testutil.ToFloat64(a.m.routed); got != 2 {
		t.Errorf("routed_total = %v, want 2", got)
	}
	_ = regA

	b, _, _ := startRouter(t, c, tp, "b")
	produce(t, c, tp,
		indexRec("bolt", "22", "1002", 5*time.Minute),
		refundRec("bolt", "11", "504", 6*time.Minute),
		indexRec("bolt", "44", "1004", 2*time.Hour), // an hour after refund 503: it expires
	)
	want = []string{"bolt/1001 w-501", "bolt/1001 w-501", "bolt/1001 w-504", "bolt/1002 w-502"}
	waitFor(t, "the restored refund and index used", func() bool { return equal(committedOutputs(t, c, orders), want) })
	waitFor(t, "the lost order's refund unrouted", func() bool {
		return equal(committedOutputs(t, c, unrouted), []string{"bolt.myshopify.com w-503"})
	})
	time.Sleep(500 * time.Millisecond) // nothing more comes
	if got := committedOutputs(t, c, orders); !equal(got, want) {
		t.Errorf("orders: %q, want %q", got, want)
	}
	if got := testutil.ToFloat64(b.m.expired); got != 1 {
		t.Errorf("expired_total = %v, want 1", got)
	}
	if got := testutil.ToFloat64(b.m.restoredRecords); got != 5 {
		t.Errorf("restored_records_total = %v, want 5 (what a had processed)", got)
	}
}
