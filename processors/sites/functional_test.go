package sites

import (
	"context"
	"io"
	"log/slog"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/twmb/franz-go/pkg/kgo"

	"purchasesync/deploy/testenv"
	"purchasesync/schemas"
)

// TestFunctionalRegistryFollowsTopic: a registry started after some writes
// loads them before it says Ready, then follows puts, invalid records and
// tombstones live.
func TestFunctionalRegistryFollowsTopic(t *testing.T) {
	brokers := testenv.Kafka(t)
	topics := testenv.Topics(t, brokers, 1)
	topic := topics.Name(schemas.TopicSites)
	cl, err := kgo.NewClient(kgo.SeedBrokers(brokers...))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ctx := context.Background()
	w := Writer{Client: cl, Topic: topic}
	if _, err := w.Put(ctx, schemas.Site{Site: "early", ShopDomain: "Early.myshopify.com"}); err != nil {
		t.Fatal(err)
	}
	if _, err := w.Put(ctx, schemas.Site{Site: "Bad Slug", ShopDomain: "x.myshopify.com"}); err == nil {
		t.Fatal("Put accepted an invalid slug")
	}
	// A malformed record written by someone else is ignored, not fatal.
	if err := cl.ProduceSync(ctx, &kgo.Record{Topic: topic, Key: []byte("junk"), Value: []byte("{")}).FirstErr(); err != nil {
		t.Fatal(err)
	}

	cfg := DefaultConfig()
	cfg.Topics = topics
	reg, err := New(cfg, Deps{KafkaOpts: []kgo.Opt{kgo.SeedBrokers(brokers...)}, Registerer: prometheus.NewRegistry(), Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	rctx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- reg.Run(rctx) }()
	wctx, wcancel := context.WithTimeout(ctx, 30*time.Second)
	defer wcancel()
	if err := reg.WaitReady(wctx); err != nil {
		t.Fatal(err)
	}
	s, ok := reg.ByShop("early.myshopify.com")
	if !ok || s.Site != "early" || s.OrderKey != schemas.OrderKeyID || time.Duration(s.Grace) != schemas.DefaultGrace {
		t.Fatalf("after Ready: ByShop = %+v, %v; want site early with defaults", s, ok)
	}
	if _, ok := reg.Get("junk"); ok {
		t.Fatal("a malformed record became a site")
	}

	if _, err := w.Put(ctx, schemas.Site{Site: "late", ShopDomain: "late.myshopify.com", PurchaseSyncing: true}); err != nil {
		t.Fatal(err)
	}
	testenv.Eventually(t, 10*time.Second, "live put visible", func() bool { s, ok := reg.Get("late"); return ok && s.PurchaseSyncing })
	if err := w.Delete(ctx, "early"); err != nil {
		t.Fatal(err)
	}
	testenv.Eventually(t, 10*time.Second, "tombstone applied", func() bool { _, ok := reg.ByShop("early.myshopify.com"); return !ok })
	if all := reg.All(); len(all) != 1 || all[0].Site != "late" {
		t.Fatalf("All = %+v, want only late", all)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("Run after cancel: %v", err)
	}
}
