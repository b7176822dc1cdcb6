package appauth

import (
	"bytes"
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"

	"purchasesync/processors/sites/sitestest"
	"purchasesync/schemas"
)

const (
	tokensTopic = "t.shopify.tokens.v1"
	appTopic    = "t.shopify.app.v1"
)

func cluster(t *testing.T) []kgo.Opt {
	t.Helper()
	c, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(1, tokensTopic, appTopic))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	return []kgo.Opt{kgo.SeedBrokers(c.ListenAddrs()...)}
}

func producer(t *testing.T, opts []kgo.Opt) *kgo.Client {
	t.Helper()
	cl, err := kgo.NewClient(append(opts, kgo.RequiredAcks(kgo.AllISRAcks()))...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cl.Close)
	return cl
}

// runStore starts a store on the cluster and waits until it has loaded.
func runStore(t *testing.T, opts []kgo.Opt, keys string, prod *kgo.Client) *Store {
	t.Helper()
	cfg := DefaultStoreConfig()
	cfg.Topics = schemas.Topics{Prefix: "t."}
	cfg.HealthInterval = 100 * time.Millisecond
	s, err := NewStore(cfg, mustKeys(t, keys), StoreDeps{KafkaOpts: opts, Producer: prod})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("store Run: %v", err)
		}
	})
	wctx, wcancel := context.WithTimeout(ctx, 10*time.Second)
	defer wcancel()
	if err := s.WaitReady(wctx); err != nil {
		t.Fatalf("store not loaded: %v", err)
	}
	return s
}

func eventually(t *testing.T, what string, f func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !f() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestStoreKafka(t *testing.T) {
	opts := cluster(t)
	oldKey, newK := newKey(t), newKey(t)
	w := runStore(t, opts, "old:"+oldKey, producer(t, opts))
	if err := w.Put(context.Background(), "Acme.myshopify.com", "shpat_acme", []string{"read_orders", "read_customers"}); err != nil {
		t.Fatal(err)
	}
	if tok, ok := w.Token("acme.myshopify.com"); !ok || tok != "shpat_acme" {
		t.Fatalf("the writer does not see its own Put at once: %q %v", tok, ok)
	}
	// Another process (no producer) reads it from the topic.
	r := runStore(t, opts, "old:"+oldKey, nil)
	if tok, ok := r.Token("acme.myshopify.com"); !ok || tok != "shpat_acme" || strings.Join(r.Scopes("acme.myshopify.com"), ",") != "read_orders,read_customers" {
		t.Fatalf("reader: %q %v %v", tok, ok, r.Scopes("acme.myshopify.com"))
	}
	if inst, ok := r.Installed("acme.myshopify.com"); !ok || time.Since(inst.InstalledAt) > time.Minute {
		t.Errorf("installed %+v %v", inst, ok)
	}
	// The token is not on Kafka in clear.
	raw := readTopic(t, opts, tokensTopic)
	if len(raw) != 1 || bytes.Contains(raw[0].Value, []byte("shpat_acme")) || string(raw[0].Key) != "acme.myshopify.com" {
		t.Fatalf("raw records %v", raw)
	}
	// Rotation: a process with the new key first still reads the old
	// record, and its own Put is written with the new key.
	rot := runStore(t, opts, "new:"+newK+",old:"+oldKey, producer(t, opts))
	if tok, _ := rot.Token("acme.myshopify.com"); tok != "shpat_acme" {
		t.Errorf("rotation: old record not read: %q", tok)
	}
	if err := rot.Put(context.Background(), "bolt.myshopify.com", "shpat_bolt", []string{"read_orders"}); err != nil {
		t.Fatal(err)
	}
	// A process with only the old key cannot read bolt: counted, logged
	// once, no token, no crash; acme still works.
	eventually(t, "the old-key reader to see bolt's record", func() bool { return testutil.ToFloat64(r.m.undecryptable) == 1 })
	if _, ok := r.Token("bolt.myshopify.com"); ok {
		t.Error("an undecryptable record gave a token")
	}
	if _, ok := r.Token("acme.myshopify.com"); !ok {
		t.Error("acme lost")
	}
	// A wrong key (same id, other bytes): every record undecryptable.
	wrong := runStore(t, opts, "old:"+newKey(t)+",new:"+newKey(t), nil)
	if got := testutil.ToFloat64(wrong.m.undecryptable); got != 2 {
		t.Errorf("wrong keys: %v undecryptable, want 2", got)
	}
	if _, ok := wrong.Token("acme.myshopify.com"); ok {
		t.Error("a wrong key gave a token")
	}
	// Forget: a tombstone; gone for the writer at once and for readers
	// soon.
	if err := w.Forget(context.Background(), "acme.myshopify.com"); err != nil {
		t.Fatal(err)
	}
	if _, ok := w.Token("acme.myshopify.com"); ok {
		t.Error("forgotten token still there for the writer")
	}
	eventually(t, "the reader to forget acme", func() bool { _, ok := r.Token("acme.myshopify.com"); return !ok })
	if err := r.Put(context.Background(), "acme.myshopify.com", "x", nil); err == nil {
		t.Error("Put without a producer succeeded")
	}
}

func readTopic(t *testing.T, opts []kgo.Opt, topic string) []*kgo.Record {
	t.Helper()
	cl, err := kgo.NewClient(append(opts, kgo.ConsumeTopics(topic), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))...)
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	var out []*kgo.Record
	for ctx.Err() == nil {
		cl.PollFetches(ctx).EachRecord(func(r *kgo.Record) { out = append(out, r) })
		if len(out) > 0 {
			break
		}
	}
	return out
}

func uninstallRecord(shop, topic string, at time.Time) *kgo.Record {
	return &kgo.Record{Topic: appTopic, Key: []byte(shop), Value: []byte(`{"myshopify_domain":"` + shop + `"}`),
		Headers: []kgo.RecordHeader{{Key: schemas.HeaderTopic, Value: []byte(topic)}, {Key: schemas.HeaderShopDomain, Value: []byte(shop)},
			{Key: schemas.HeaderReceivedAt, Value: []byte(at.UTC().Format(time.RFC3339Nano))}}}
}

func TestUninstallKafka(t *testing.T) {
	opts := cluster(t)
	prod := producer(t, opts)
	key := newKey(t)
	store := runStore(t, opts, key, prod)
	ctx := context.Background()
	for _, shop := range []string{"acme.myshopify.com", "bolt.myshopify.com", "cargo.myshopify.com"} {
		if err := store.Put(ctx, shop, "shpat_"+shop, []string{"read_orders"}); err != nil {
			t.Fatal(err)
		}
	}
	sites := sitestest.New(
		schemas.Site{Site: "acme", ShopDomain: "acme.myshopify.com", OrderKey: schemas.OrderKeyID, PurchaseSyncing: true, WebhookSubscriptionID: "gid://shopify/WebhookSubscription/1"},
		schemas.Site{Site: "bolt", ShopDomain: "bolt.myshopify.com", OrderKey: schemas.OrderKeyID, PurchaseSyncing: true, WebhookSubscriptionID: "gid://shopify/WebhookSubscription/2"},
	)
	// The first site write fails (Kafka away): retried until it works.
	sites.FailPuts(1, errors.New("kafka away"))
	now := time.Now()
	for _, r := range []*kgo.Record{
		uninstallRecord("acme.myshopify.com", "app/uninstalled", now),
		// cargo has no site: its token is still forgotten.
		uninstallRecord("cargo.myshopify.com", "app/uninstalled", now),
		// bolt installed again after this (old) uninstall: nothing undone.
		uninstallRecord("bolt.myshopify.com", "app/uninstalled", now.Add(-time.Hour)),
		uninstallRecord("acme.myshopify.com", "shop/update", now),
		// A redelivery changes nothing more.
		uninstallRecord("acme.myshopify.com", "app/uninstalled", now),
	} {
		if err := prod.ProduceSync(ctx, r).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}
	cfg := DefaultUninstallConfig()
	cfg.Topics = schemas.Topics{Prefix: "t."} // group t-appuninstall
	cfg.RetryInitial, cfg.RetryMax, cfg.HealthInterval = 10*time.Millisecond, 50*time.Millisecond, 100*time.Millisecond
	u, err := NewUninstaller(cfg, UninstallDeps{Tokens: store, Sites: sites, Writer: sites, KafkaOpts: opts})
	if err != nil {
		t.Fatal(err)
	}
	rctx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- u.Run(rctx) }()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
	}()
	count := func(o string) float64 { return testutil.ToFloat64(u.m.uninstalls.WithLabelValues(o)) }
	eventually(t, "five records handled", func() bool { return count(UninstallDone)+count(UninstallReinstalled)+count(UninstallInvalid) == 5 })
	if count(UninstallDone) != 3 || count(UninstallReinstalled) != 1 || count(UninstallInvalid) != 1 {
		t.Errorf("outcomes done %v reinstalled %v invalid %v", count(UninstallDone), count(UninstallReinstalled), count(UninstallInvalid))
	}
	acme, _ := sites.Get("acme")
	if acme.PurchaseSyncing || acme.WebhookSubscriptionID != "" {
		t.Errorf("acme after uninstall: %+v, want syncing off and no subscription id", acme)
	}
	if _, ok := store.Token("acme.myshopify.com"); ok {
		t.Error("acme's token not forgotten")
	}
	if _, ok := store.Token("cargo.myshopify.com"); ok {
		t.Error("cargo's token not forgotten")
	}
	bolt, _ := sites.Get("bolt")
	if _, ok := store.Token("bolt.myshopify.com"); !ok || !bolt.PurchaseSyncing {
		t.Errorf("bolt reinstalled after its uninstall lost its token or syncing: %+v", bolt)
	}
	// A new process reading the topic agrees: the tombstones are on Kafka.
	again := runStore(t, opts, key, nil)
	if _, ok := again.Token("acme.myshopify.com"); ok {
		t.Error("a new reader still finds acme's token")
	}
	if _, ok := again.Token("bolt.myshopify.com"); !ok {
		t.Error("a new reader lost bolt's token")
	}
	if got := sites.Puts(); got != 1 {
		t.Errorf("%d site writes, want 1 (acme once; the redelivery changes nothing)", got)
	}
}
