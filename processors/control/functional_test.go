package control

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/twmb/franz-go/pkg/kgo"

	"purchasesync/deploy/testenv"
	"purchasesync/processors/control/adminapi"
	"purchasesync/processors/control/shopifyfake"
	"purchasesync/processors/sites"
	"purchasesync/schemas"
)

// TestFunctionalReconciliation, on the real Kafka: of three orders in the
// window, the two whose webhooks reached shopify.orders.v1 (one keyed by id,
// one by order number) are left alone, and the lost one is produced exactly
// once — also across a second pass and a restarted service — with the
// reconciled header and a body the join's parser reads.
func TestFunctionalReconciliation(t *testing.T) {
	brokers := testenv.Kafka(t)
	topics := testenv.Topics(t, brokers, 3)
	ordersTopic := topics.Name(schemas.TopicShopifyOrders)
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()

	fake := shopifyfake.Start(t)
	fake.AddShop(shopDomain, shopToken, "read_orders")
	fake.AddShop("second.myshopify.com", "second-token", "read_orders")
	created := time.Now().Add(-40 * time.Minute)
	seen := fake.AddOrder(shopDomain, shopifyfake.Order{CreatedAt: created, Email: "a@example.com", Subtotal: shopifyfake.Money{Shop: "10.00"}})
	lost := fake.AddOrder(shopDomain, shopifyfake.Order{
		CreatedAt: created.Add(time.Second), Email: "lost@example.com", Currency: "USD", PresentmentCurrency: "EUR",
		Subtotal: shopifyfake.Money{Shop: "22.00", Presentment: "20.00"}, DiscountCodes: []string{"WELCOME"},
		LineItems: []shopifyfake.LineItem{{ProductID: 7, VariantID: 8, SKU: "TEA-1", Title: "Tea", Quantity: 1, Price: shopifyfake.Money{Shop: "22.00", Presentment: "20.00"}}},
	})
	fake.AddOrder(shopDomain, shopifyfake.Order{CreatedAt: time.Now()}) // too young: its webhook may be on its way
	byNumber := fake.AddOrder("second.myshopify.com", shopifyfake.Order{CreatedAt: created})
	// Lost on an order_number site: recovered with its index record, so
	// that its refunds (which name it by id) find it.
	lostByNumber := fake.AddOrder("second.myshopify.com", shopifyfake.Order{CreatedAt: created.Add(2 * time.Second)})

	reg := newMemRegistry(
		schemas.Site{Site: "recon", ShopDomain: shopDomain, PurchaseSyncing: true},
		schemas.Site{Site: "second", ShopDomain: "second.myshopify.com", PurchaseSyncing: true, OrderKey: schemas.OrderKeyNumber},
		schemas.Site{Site: "off", ShopDomain: "off.myshopify.com"},
	)
	producer, err := kgo.NewClient(kgo.SeedBrokers(brokers...), kgo.DefaultProduceTopic(ordersTopic))
	if err != nil {
		t.Fatal(err)
	}
	defer producer.Close()
	// What ingest wrote: the webhooks that did arrive, and the refund of the
	// lost order (same topic and key), which is no proof that it arrived.
	topic := func(name string) []kgo.RecordHeader {
		return []kgo.RecordHeader{{Key: schemas.HeaderTopic, Value: []byte(name)}}
	}
	for _, r := range []*kgo.Record{
		{Key: []byte(schemas.Key("recon", fmt.Sprint(seen.ID))), Value: []byte(`{"id":1}`), Headers: topic(schemas.WebhookOrdersCreate)},
		{Key: []byte(schemas.Key("second", fmt.Sprint(byNumber.Number))), Value: []byte(`{"id":1}`), Headers: topic(schemas.WebhookOrdersCreate)},
		{Key: []byte(schemas.Key("recon", fmt.Sprint(lost.ID))), Value: []byte(`{"id":2,"order_id":1}`), Headers: topic(schemas.WebhookRefundsCreate)},
	} {
		if err := producer.ProduceSync(ctx, r).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}

	acfg := adminapi.DefaultConfig()
	acfg.URL = fake.URL()
	api, err := adminapi.New(acfg, adminapi.Deps{Tokens: adminapi.Tokens{shopDomain: shopToken, "second.myshopify.com": "second-token"}})
	if err != nil {
		t.Fatal(err)
	}
	newService := func() (*Service, func()) {
		cfg := DefaultConfig()
		cfg.Topics = topics
		cfg.PublicBaseURL = publicURL
		cfg.WatchdogInterval, cfg.ReconcileInterval = 0, 0 // passes are run by hand below
		svc, err := New(cfg, Deps{Sites: reg, Writer: reg, Shopify: api, Producer: producer,
			KafkaOpts: []kgo.Opt{kgo.SeedBrokers(brokers...)}, Registerer: prometheus.NewRegistry(), Logger: slog.New(slog.DiscardHandler)})
		if err != nil {
			t.Fatal(err)
		}
		rctx, rcancel := context.WithCancel(ctx)
		done := make(chan error, 1)
		go func() { done <- svc.Run(rctx) }()
		return svc, func() {
			rcancel()
			if err := <-done; err != nil {
				t.Errorf("Run: %v", err)
			}
		}
	}

	svc, stop := newService()
	if err := svc.ReconcileAll(ctx); err != nil {
		t.Fatal(err)
	}
	if c, r := testutil.ToFloat64(svc.m.checked), testutil.ToFloat64(svc.m.recovered); c != 4 || r != 2 {
		t.Fatalf("first pass: checked %v recovered %v, want 4 and 2", c, r)
	}
	if res, err := svc.Reconcile(ctx, "recon", time.Now().Add(-time.Hour), time.Now().Add(-time.Minute)); err != nil || res.Checked != 2 || res.Recovered != 0 {
		t.Fatalf("second pass: %+v %v, want 2 checked, none recovered", res, err)
	}
	if _, err := svc.Reconcile(ctx, "off", time.Now().Add(-time.Hour), time.Now()); err == nil {
		t.Error("a site with syncing off was reconciled")
	}
	stop()

	// A restarted service rebuilds what the pipeline saw from the topic.
	svc2, stop2 := newService()
	defer stop2()
	if res, err := svc2.Reconcile(ctx, "recon", time.Now().Add(-time.Hour), time.Now().Add(-time.Minute)); err != nil || res.Recovered != 0 {
		t.Fatalf("pass after restart: %+v %v, want none recovered", res, err)
	}

	recs := readAll(t, ctx, brokers, ordersTopic)
	byKey := map[string][]*kgo.Record{} // orders/create records only
	for _, r := range recs {
		if provesOrder(r) {
			byKey[string(r.Key)] = append(byKey[string(r.Key)], r)
		}
	}
	if len(recs) != 5 {
		t.Fatalf("%d records in %s, want 5 (2 webhooks, 1 refund, 2 recovered): %v", len(recs), ordersTopic, keys(byKey))
	}
	if n := len(byKey[schemas.Key("second", fmt.Sprint(lostByNumber.Number))]); n != 1 {
		t.Fatalf("the order_number site's lost order was produced %d times, want once", n)
	}
	// One index record, for the order_number site's recovered order only.
	idx := readAll(t, ctx, brokers, topics.Name(schemas.TopicShopifyOrderIDs))
	if len(idx) != 1 || string(idx[0].Key) != schemas.Key("second", fmt.Sprint(lostByNumber.ID)) || string(idx[0].Value) != fmt.Sprint(lostByNumber.Number) {
		t.Fatalf("index records: %v, want one: second/%d → %d", idx, lostByNumber.ID, lostByNumber.Number)
	}
	kind := ""
	for _, hd := range idx[0].Headers {
		if hd.Key == schemas.HeaderRecordKind {
			kind = string(hd.Value)
		}
	}
	if kind != schemas.RecordKindOrderIndex {
		t.Errorf("index record kind %q", kind)
	}
	lostKey := schemas.Key("recon", fmt.Sprint(lost.ID))
	if len(byKey[lostKey]) != 1 {
		t.Fatalf("lost order %s produced %d times, want once", lostKey, len(byKey[lostKey]))
	}
	r := byKey[lostKey][0]
	h := map[string]string{}
	for _, hd := range r.Headers {
		h[hd.Key] = string(hd.Value)
	}
	if h[schemas.HeaderReconciled] != "true" || h[schemas.HeaderShopDomain] != shopDomain || h[schemas.HeaderTopic] != "orders/create" ||
		h[schemas.HeaderAPIVersion] != adminapi.DefaultAPIVersion || h[schemas.HeaderReceivedAt] == "" || !strings.HasPrefix(h[schemas.HeaderWebhookID], "reconciled-") {
		t.Errorf("headers %v", h)
	}
	if _, err := time.Parse(time.RFC3339, h[schemas.HeaderReceivedAt]); err != nil {
		t.Errorf("received-at %q is not RFC 3339", h[schemas.HeaderReceivedAt])
	}
	o, err := schemas.ParseShopifyOrder(r.Value)
	if err != nil {
		t.Fatal(err)
	}
	if o.OrderEmail() != "lost@example.com" || o.PresentmentSubtotal() != "20.00" || o.PresentmentCurrencyCode() != "EUR" ||
		len(o.LineItems) != 1 || o.LineItems[0].SKU != "TEA-1" || len(o.DiscountCodes) != 1 {
		t.Errorf("body: %s", r.Value)
	}
	for _, k := range []string{schemas.Key("recon", fmt.Sprint(seen.ID)), schemas.Key("second", fmt.Sprint(byNumber.Number))} {
		for _, r := range byKey[k] {
			for _, hd := range r.Headers {
				if hd.Key == schemas.HeaderReconciled {
					t.Errorf("order %s, whose webhook arrived, was reconciled again", k)
				}
			}
		}
	}
}

func keys(m map[string][]*kgo.Record) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	return out
}

// readAll reads every record of topic up to its current end.
func readAll(t *testing.T, ctx context.Context, brokers []string, topic string) []*kgo.Record {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(brokers...), kgo.ConsumeTopics(topic),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()), kgo.FetchMaxWait(200*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	var out []*kgo.Record
	idle := 0
	for idle < 3 {
		pctx, cancel := context.WithTimeout(ctx, 500*time.Millisecond)
		fs := cl.PollFetches(pctx)
		cancel()
		n := 0
		fs.EachRecord(func(r *kgo.Record) { out = append(out, r); n++ })
		if n == 0 {
			idle++
		} else {
			idle = 0
		}
	}
	return out
}

// TestFunctionalSwitchRealRegistry: enable and disable through the real
// sites.v1, read back by the real registry the moment they return.
func TestFunctionalSwitchRealRegistry(t *testing.T) {
	brokers := testenv.Kafka(t)
	topics := testenv.Topics(t, brokers, 1)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cl, err := kgo.NewClient(kgo.SeedBrokers(brokers...))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	scfg := sites.DefaultConfig()
	scfg.Topics = topics
	reg, err := sites.New(scfg, sites.Deps{KafkaOpts: []kgo.Opt{kgo.SeedBrokers(brokers...)}, Registerer: prometheus.NewRegistry()})
	if err != nil {
		t.Fatal(err)
	}
	rctx, rcancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- reg.Run(rctx) }()
	defer func() { rcancel(); <-done }()
	if err := reg.WaitReady(ctx); err != nil {
		t.Fatal(err)
	}
	writer := reg.Writer(cl)
	if _, err := writer.Put(ctx, schemas.Site{Site: "live", ShopDomain: shopDomain}); err != nil {
		t.Fatal(err)
	}

	fake := shopifyfake.Start(t)
	fake.AddShop(shopDomain, shopToken, "read_orders")
	acfg := adminapi.DefaultConfig()
	acfg.URL = fake.URL()
	api, err := adminapi.New(acfg, adminapi.Deps{Tokens: adminapi.Tokens{shopDomain: shopToken}})
	if err != nil {
		t.Fatal(err)
	}
	cfg := DefaultConfig()
	cfg.Topics = topics
	cfg.PublicBaseURL = publicURL
	svc, err := New(cfg, Deps{Sites: reg, Writer: writer, Shopify: api})
	if err != nil {
		t.Fatal(err)
	}
	testenv.Eventually(t, 10*time.Second, "the site in the registry", func() bool { _, ok := reg.Get("live"); return ok })

	on, err := svc.Enable(ctx, "live")
	if err != nil {
		t.Fatal(err)
	}
	if got, _ := reg.Get("live"); !got.PurchaseSyncing || got.WebhookSubscriptionID == "" || got.WebhookSubscriptionID != on.WebhookSubscriptionID {
		t.Fatalf("registry right after Enable: %+v", got)
	}
	if _, err := svc.Disable(ctx, "live"); err != nil {
		t.Fatal(err)
	}
	if got, _ := reg.Get("live"); got.PurchaseSyncing || got.WebhookSubscriptionID != "" {
		t.Fatalf("registry right after Disable: %+v", got)
	}
	if n := len(fake.Subscriptions(shopDomain)); n != 0 {
		t.Errorf("%d subscriptions left", n)
	}
}
