package control

import (
	"context"
	"fmt"
	"log/slog"
	"purchasesync/deploy/testenv"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"

	"purchasesync/deploy/testenv/kafkatest"
	"purchasesync/processors/control/adminapi"
	"purchasesync/processors/control/shopifyfake"
	"purchasesync/schemas"
)

// TestControlRidesOutBrokerRestart: the only broker goes away under the
// control plane. Its follower of shopify.orders.v1 is not ready meanwhile
// and ready after, Run does not return, and a reconciliation triggered by a
// subscription gap during the outage is not dropped: it is retried until
// Kafka is back, and recovers the lost order once.
func TestControlRidesOutBrokerRestart(t *testing.T) {
	const topic = "t.shopify.orders.v1"
	k := kafkatest.New(t, kfake.SeedTopics(2, topic))
	fake := shopifyfake.Start(t)
	fake.AddShop(shopDomain, shopToken, "read_orders")
	lost := fake.AddOrder(shopDomain, shopifyfake.Order{CreatedAt: time.Now().Add(-time.Hour), Email: "lost@example.com", Subtotal: shopifyfake.Money{Shop: "10.00"}})
	acfg := adminapi.DefaultConfig()
	acfg.URL = fake.URL()
	api, err := adminapi.New(acfg, adminapi.Deps{Tokens: adminapi.Tokens{shopDomain: shopToken}})
	if err != nil {
		t.Fatal(err)
	}
	// Short request timeouts, so that a pass fails fast while the broker
	// is gone (in production a pass may wait its 30 s).
	producer, err := kgo.NewClient(kgo.SeedBrokers(k.Addrs()...), kgo.RetryTimeout(time.Second), kgo.RecordDeliveryTimeout(time.Second))
	if err != nil {
		t.Fatal(err)
	}
	defer producer.Close()
	reg := newMemRegistry(schemas.Site{Site: "recon", ShopDomain: shopDomain, PurchaseSyncing: true})
	cfg := DefaultConfig()
	cfg.Topics = schemas.Topics{Prefix: "t."}
	cfg.PublicBaseURL = publicURL
	cfg.WatchdogInterval, cfg.ReconcileInterval = 0, 0
	cfg.RetryInitial, cfg.RetryMax, cfg.HealthInterval = 100*time.Millisecond, 500*time.Millisecond, 100*time.Millisecond
	logs := &testenv.Log{}
	svc, err := New(cfg, Deps{Sites: reg, Writer: reg, Shopify: api, Producer: producer,
		KafkaOpts: []kgo.Opt{kgo.SeedBrokers(k.Addrs()...)}, Registerer: prometheus.NewRegistry(), Logger: slog.New(slog.NewTextHandler(logs, nil))})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- svc.Run(ctx) }()
	ended := false
	defer func() {
		cancel()
		if ended {
			return
		}
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
	}()
	wait := func(d time.Duration, what string, cond func() bool) {
		t.Helper()
		deadline := time.Now().Add(d)
		for !cond() {
			select {
			case err := <-done:
				ended = true
				t.Fatalf("Run returned by itself: %v", err)
			default:
			}
			if time.Now().After(deadline) {
				t.Fatalf("timed out waiting for %s\n%s", what, logs)
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
	wait(10*time.Second, "ready", func() bool { return svc.Ready() == nil })

	k.Stop()
	wait(5*time.Second, "not ready with the broker gone", func() bool { return svc.Ready() != nil })
	svc.Trigger("recon", time.Now().Add(-2*time.Hour)) // a gap found meanwhile
	wait(10*time.Second, "the triggered pass to fail", func() bool { return testutil.ToFloat64(svc.m.passes.WithLabelValues("error")) >= 2 })
	k.Start()
	wait(15*time.Second, "the lost order recovered and ready again", func() bool { return testutil.ToFloat64(svc.m.recovered) == 1 && svc.Ready() == nil })

	recs := readAll(t, context.Background(), k.Addrs(), topic)
	want := schemas.Key("recon", fmt.Sprint(lost.ID))
	if len(recs) != 1 || string(recs[0].Key) != want {
		t.Errorf("%d records in %s, want the lost order %s once", len(recs), topic, want)
	}
	if b, e := logs.Count("Kafka outage began"), logs.Count("Kafka outage over"); b != 1 || e != 1 {
		t.Errorf("%d start and %d end lines for one outage, want 1 and 1:\n%s", b, e, logs)
	}
	if n := logs.Count("subscription gap failed"); n != 1 {
		t.Errorf("%d lines for the failing triggered pass, want 1 however many retries:\n%s", n, logs)
	}
}
