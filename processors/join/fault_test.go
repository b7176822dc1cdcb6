package join

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"purchasesync/deploy/testenv"
	"purchasesync/schemas"
)

// TestFunctionalOversizedOutputAborts is the exactly-once hole of a record
// Kafka refuses: purchases.v1 is given a max.message.bytes that one
// purchase exceeds. The transaction holding it must abort (committing it
// would move the input offset past a purchase that was never written); the
// input that made it goes to the dead-letter topic with the reason; the
// orders before and after it are registered exactly once, and the join
// neither stops nor stalls.
func TestFunctionalOversizedOutputAborts(t *testing.T) {
	brokers := testenv.Kafka(t)
	topics := testenv.Topics(t, brokers, 1)
	cl, err := kgo.NewClient(kgo.SeedBrokers(brokers...))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ctx := context.Background()
	limit := "4096"
	if _, err := kadm.NewClient(cl).AlterTopicConfigs(ctx, []kadm.AlterConfig{{Op: kadm.SetConfig, Name: "max.message.bytes", Value: &limit}},
		topics.Name(schemas.TopicPurchases)); err != nil {
		t.Fatal(err)
	}
	// The join reads the limit once, when its session starts: it must see
	// the new one (the broker applies an altered config a moment after the
	// controller accepted it), or it would let lz4 squeeze the repetitive
	// purchase under 4 KiB and the broker take it.
	testenv.Eventually(t, 10*time.Second, "max.message.bytes 4096 visible", func() bool {
		rcs, err := kadm.NewClient(cl).DescribeTopicConfigs(ctx, topics.Name(schemas.TopicPurchases))
		if err != nil || len(rcs) != 1 {
			return false
		}
		for _, c := range rcs[0].Configs {
			if c.Key == "max.message.bytes" && c.Value != nil && *c.Value == limit {
				return true
			}
		}
		return false
	})

	sf := topics.Name(schemas.TopicStorefrontPurchases)
	now := []byte(time.Now().UTC().Format(time.RFC3339Nano))
	event := func(id, extra string) *kgo.Record {
		body := `{"purchase":{"order_number":"` + id + `","subtotal":"23.97","currency_iso_code":"USD"` + extra + `},"customer":{"email":"buyer@example.com"}}`
		return &kgo.Record{Topic: sf, Key: []byte(schemas.Key("demo", id)), Value: []byte(body),
			Headers: []kgo.RecordHeader{{Key: schemas.HeaderReceivedAt, Value: now}}}
	}
	// 200 items of ~40 bytes: a ~9 KB purchase, over the 4 KiB limit; the
	// storefront event itself fits its topic.
	items := `,"items":[` + strings.TrimSuffix(strings.Repeat(`{"product_id":"1234567","price":"1.00","quantity":1},`, 200), ",") + `]`
	if err := cl.ProduceSync(ctx, event("1001", ""), event("1002", items), event("1003", "")).FirstErr(); err != nil {
		t.Fatal(err)
	}

	reg := prometheus.NewRegistry()
	cfg := configFor(topics, testenv.Name(t))
	cfg.Group = testenv.Name(t)
	cfg.TickInterval = 100 * time.Millisecond
	cfg.TransactionTimeout = 5 * time.Second
	p, err := New(cfg, Deps{KafkaOpts: []kgo.Opt{kgo.SeedBrokers(brokers...)}, Sites: staticSites(time.Second),
		Registerer: reg, Logger: slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))})
	if err != nil {
		t.Fatal(err)
	}
	rctx, stop := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- p.Run(rctx) }()
	defer func() {
		stop()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
	}()

	var v ledgerView
	testenv.Eventually(t, 60*time.Second, "orders 1001 and 1003 registered", func() bool {
		select {
		case err := <-done:
			t.Fatalf("the join stopped: %v", err)
		default:
		}
		v = readLedger(t, brokers, topics)
		return v.total >= 2
	})
	if len(v.regs["demo/1001"]) != 1 || len(v.regs["demo/1003"]) != 1 || len(v.regs["demo/1002"]) != 0 || v.total != 2 {
		t.Fatalf("registrations %v, want demo/1001 and demo/1003 once each and not demo/1002", v.regs)
	}
	dl := readAll(t, brokers, topics.Name(schemas.TopicDeadLetter))
	if len(dl) != 1 || string(dl[0].Key) != "demo/1002" {
		t.Fatalf("dead letters %v, want the one input demo/1002", keysOf(dl))
	}
	reason := header(dl[0], schemas.HeaderReason)
	if !strings.Contains(reason, topics.Name(schemas.TopicPurchases)) || !strings.Contains(reason, "MESSAGE_TOO_LARGE") {
		t.Errorf("dead letter reason %q: want the refused topic and the error", reason)
	}
	if header(dl[0], schemas.HeaderSourceTopic) != sf || header(dl[0], schemas.HeaderSourceOffset) != "1" {
		t.Errorf("dead letter source %s@%s, want %s@1", header(dl[0], schemas.HeaderSourceTopic), header(dl[0], schemas.HeaderSourceOffset), sf)
	}
	// The refused input's state was never committed: the changelog knows
	// only the two registered orders.
	for _, r := range readAll(t, brokers, topics.Name(schemas.TopicJoinState)) {
		if string(r.Key) == "demo/1002" {
			t.Errorf("join.state.v1 holds demo/1002: the aborted transaction's state leaked")
		}
	}
	// The input offset moved past all three once the dead letter committed.
	testenv.Eventually(t, 10*time.Second, "storefront input committed to 3", func() bool {
		offs, err := kadm.NewClient(cl).FetchOffsets(ctx, cfg.Group)
		if err != nil {
			return false
		}
		o, ok := offs.Lookup(sf, 0)
		return ok && o.At == 3
	})
	if n := testutil.ToFloat64(p.m.produceRefused.WithLabelValues(topics.Name(schemas.TopicPurchases))); n != 1 {
		t.Errorf("produce_refused_total{purchases} = %v, want 1", n)
	}
	if n := testutil.ToFloat64(p.m.aborts); n < 1 {
		t.Errorf("transaction_aborts_total = %v, want at least 1", n)
	}
	if err := p.Ready(); err != nil {
		t.Errorf("Ready after the dead letter: %v", err)
	}
}

// readAll reads every committed record of a topic.
func readAll(t *testing.T, brokers []string, topic string) []*kgo.Record {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(brokers...), kgo.ConsumeTopics(topic),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()), kgo.FetchIsolationLevel(kgo.ReadCommitted()))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	var out []*kgo.Record
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		fs := cl.PollFetches(ctx)
		cancel()
		if fs.NumRecords() == 0 {
			return out
		}
		out = append(out, fs.Records()...)
	}
}

func keysOf(rs []*kgo.Record) []string {
	var ks []string
	for _, r := range rs {
		ks = append(ks, fmt.Sprintf("%s@%d", r.Key, r.Offset))
	}
	return ks
}

func header(r *kgo.Record, k string) string {
	for _, h := range r.Headers {
		if h.Key == k {
			return string(h.Value)
		}
	}
	return ""
}
