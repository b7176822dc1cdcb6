package sites

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"

	"purchasesync/schemas"
)

// The fast tier of the registry's ready/follow logic, on kfake; the
// functional test does the same on Kafka, and outage_test.go rides out a
// broker restart.

func startRegistry(t *testing.T, topic string, partitions int32) (*Registry, Writer) {
	t.Helper()
	c, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(partitions, topic))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	cl, err := kgo.NewClient(kgo.SeedBrokers(c.ListenAddrs()...))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cl.Close)
	cfg := DefaultConfig()
	cfg.Topics = schemas.Topics{Prefix: strings.TrimSuffix(topic, schemas.TopicSites)}
	r, err := New(cfg, Deps{KafkaOpts: []kgo.Opt{kgo.SeedBrokers(c.ListenAddrs()...)}, Registerer: prometheus.NewRegistry()})
	if err != nil {
		t.Fatal(err)
	}
	return r, Writer{Client: cl, Topic: topic}
}

func run(t *testing.T, r *Registry) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- r.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run after cancel: %v", err)
		}
	})
	wctx, wcancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer wcancel()
	if err := r.WaitReady(wctx); err != nil {
		t.Fatal(err)
	}
}

// TestRegistryReadyOnlyWhenCaughtUp: the registry says ready only once it
// holds everything sites.v1 held at start (every partition read to its end),
// with later records, tombstones and invalid records applied in order.
func TestRegistryReadyOnlyWhenCaughtUp(t *testing.T) {
	r, w := startRegistry(t, "t.sites.v1", 3)
	ctx := context.Background()
	const n = 300
	for i := range n {
		if _, err := w.Put(ctx, schemas.Site{Site: fmt.Sprintf("site-%d", i), ShopDomain: fmt.Sprintf("shop-%d.myshopify.com", i)}); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := w.Put(ctx, schemas.Site{Site: "site-7", ShopDomain: "moved.myshopify.com"}); err != nil {
		t.Fatal(err)
	}
	if err := w.Delete(ctx, "site-9"); err != nil {
		t.Fatal(err)
	}
	if err := w.Client.ProduceSync(ctx, &kgo.Record{Topic: w.Topic, Key: []byte("junk"), Value: []byte("{")}).FirstErr(); err != nil {
		t.Fatal(err)
	}
	if r.Ready() || r.ReadyErr() == nil {
		t.Fatal("ready before Run")
	}
	run(t, r)
	if got := len(r.All()); got != n-1 || r.ReadyErr() != nil {
		t.Fatalf("at ready: %d sites (want %d), ReadyErr %v", got, n-1, r.ReadyErr())
	}
	if s, ok := r.ByShop("moved.myshopify.com"); !ok || s.Site != "site-7" {
		t.Errorf("the later record of site-7 is not the one applied: %+v %v", s, ok)
	}
	if _, ok := r.ByShop("shop-7.myshopify.com"); ok {
		t.Error("site-7's old shop still routes")
	}
	if _, ok := r.Get("site-9"); ok {
		t.Error("a site deleted before start is there")
	}
	if _, ok := r.Get("junk"); ok {
		t.Error("an invalid record became a site")
	}
}

// TestRegistryFollowsPutsAndTombstones: once ready, a put and a tombstone
// are visible, each announced on Changed.
func TestRegistryFollowsPutsAndTombstones(t *testing.T) {
	r, w := startRegistry(t, "t.sites.v1", 1)
	run(t, r) // an empty topic: ready at once
	ctx := context.Background()
	changed := func(what string, write func() error, visible func() bool) {
		t.Helper()
		ch := r.Changed()
		if err := write(); err != nil {
			t.Fatal(err)
		}
		select {
		case <-ch:
		case <-time.After(10 * time.Second):
			t.Fatalf("no change announced after %s", what)
		}
		if !visible() {
			t.Fatalf("%s announced but not visible", what)
		}
	}
	changed("a put", func() error {
		_, err := w.Put(ctx, schemas.Site{Site: "late", ShopDomain: "late.myshopify.com", PurchaseSyncing: true})
		return err
	}, func() bool { s, ok := r.ByShop("late.myshopify.com"); return ok && s.PurchaseSyncing })
	changed("a tombstone", func() error { return w.Delete(ctx, "late") }, func() bool {
		_, ok := r.Get("late")
		_, byShop := r.ByShop("late.myshopify.com")
		return !ok && !byShop && len(r.All()) == 0
	})
}
