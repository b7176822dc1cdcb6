package registrar

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	dto "github.com/prometheus/client_model/go"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"

	"purchasesync/schemas"
	"purchasesync/schemas/deadletter"
	"purchasesync/sinks/registrar/registrartest"
)

func purchase(site, order string, version uint64) *schemas.Purchase {
	at := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	return &schemas.Purchase{Site: site, OrderNumber: order, RegisteredVia: schemas.ViaStorefront, Email: "jane@example.com",
		Subtotal: "23.975", Currency: "usd", CouponCodes: []string{"A", "B"},
		Items:        []schemas.Item{{ProductID: "p1", Price: "9.99", Quantity: 2}},
		RegisteredAt: at, UpdatedAt: at, Version: version}
}

type fixture struct {
	cluster *kfake.Cluster
	client  *kgo.Client
	topics  schemas.Topics
}

func newFixture(t *testing.T) *fixture {
	topics := schemas.Topics{Prefix: "t."}
	c, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(2, topics.Name(schemas.TopicPurchases), topics.Name(schemas.TopicDeadLetter)))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	cl, err := kgo.NewClient(kgo.SeedBrokers(c.ListenAddrs()...))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cl.Close)
	return &fixture{cluster: c, client: cl, topics: topics}
}

func (f *fixture) produce(t *testing.T, ps ...*schemas.Purchase) {
	t.Helper()
	for _, p := range ps {
		b, _ := schemas.MarshalPurchase(p)
		if err := f.client.ProduceSync(context.Background(), &kgo.Record{Topic: f.topics.Name(schemas.TopicPurchases), Key: []byte(p.Key()), Value: b}).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}
}

func (f *fixture) committed(t *testing.T, group string) int64 {
	offs, err := kadm.NewClient(f.client).FetchOffsets(context.Background(), group)
	if err != nil {
		return 0 // the group does not exist yet
	}
	var n int64
	offs.Each(func(o kadm.OffsetResponse) { n += o.At })
	return n
}

func run(t *testing.T, f *fixture, srv *httptest.Server, mutate func(*Config)) (*Registrar, func()) {
	cfg := DefaultConfig()
	cfg.URL, cfg.APIKey, cfg.Topics, cfg.Group = srv.URL, "k3y", f.topics, "reg-"+t.Name()
	cfg.RetryInitial, cfg.RetryMax, cfg.MaxAttempts = 10*time.Millisecond, 50*time.Millisecond, 3
	if mutate != nil {
		mutate(&cfg)
	}
	r, err := New(cfg, Deps{KafkaOpts: []kgo.Opt{kgo.SeedBrokers(f.cluster.ListenAddrs()...)}, Registerer: prometheus.NewRegistry(),
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- r.Run(ctx) }()
	stop := func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
	}
	t.Cleanup(func() { cancel() })
	return r, stop
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestForwardsEachPurchaseOnceThroughThrottling(t *testing.T) {
	f := newFixture(t)
	tk := registrartest.New("k3y")
	tk.Next = []int{429, 503, 503}
	srv := httptest.NewServer(tk)
	defer srv.Close()

	test := purchase("acme", "T1", 1)
	test.Test = true
	f.produce(t,
		purchase("acme", "1001", 1), purchase("acme", "1002", 1),
		purchase("acme", "1001", 2), // a later match: not a new registration
		purchase("acme", "1001", 1), // a replayed first version
		purchase("other", "1001", 1),
		test,
	)
	_, stop := run(t, f, srv, nil)
	waitFor(t, "6 committed offsets", func() bool { return f.committed(t, "reg-"+t.Name()) == 6 })
	stop()

	tk.Mu.Lock()
	defer tk.Mu.Unlock()
	if len(tk.Origins) != 3 {
		t.Fatalf("registered %d origins, want 3 (acme/1001, acme/1002, other/1001): %v", len(tk.Origins), tk.Origins)
	}
	if tk.Attempts["acme/T1"] != 0 {
		t.Errorf("a test order was forwarded")
	}
	// The three throttled/failed answers were retried, not dead-lettered.
	total := 0
	for _, n := range tk.Attempts {
		total += n
	}
	if total != 6 {
		t.Errorf("%d requests, want 6 (3 origins + 3 retried failures): %v", total, tk.Attempts)
	}
	d := tk.Origins["acme/1001"]
	if d["currency_iso_code"] != "USD" || d["coupon_code"] != "A,B" || d["subtotal"] != 23.975 || d["order_date"] != "2026-03-01T12:00:00Z" {
		t.Errorf("origin data = %v", d)
	}
	items, _ := d["items"].([]any)
	if len(items) != 1 || items[0].(map[string]any)["price"] != 9.99 || items[0].(map[string]any)["quantity"] != 2.0 {
		t.Errorf("items = %v", d["items"])
	}
}

func TestRetryAfterIsHonoured(t *testing.T) {
	f := newFixture(t)
	tk := registrartest.New("k3y")
	tk.Next = []int{429}
	srv := httptest.NewServer(tk)
	defer srv.Close()
	f.produce(t, purchase("acme", "1", 1))
	start := time.Now()
	_, stop := run(t, f, srv, nil)
	waitFor(t, "the origin", func() bool { tk.Mu.Lock(); defer tk.Mu.Unlock(); return len(tk.Origins) == 1 })
	stop()
	if d := time.Since(start); d < 900*time.Millisecond {
		t.Errorf("retried after %s, before Retry-After: 1", d)
	}
}

func TestDeadLettersRejectedAndExhausted(t *testing.T) {
	f := newFixture(t)
	tk := registrartest.New("k3y")
	tk.Always["bad"] = 422
	tk.Always["down"] = 503
	srv := httptest.NewServer(tk)
	defer srv.Close()
	f.produce(t, purchase("acme", "bad", 1), purchase("acme", "down", 1), purchase("acme", "ok", 1))
	f.client.ProduceSync(context.Background(), &kgo.Record{Topic: f.topics.Name(schemas.TopicPurchases), Key: []byte("acme/x"), Value: []byte("{")})
	r, stop := run(t, f, srv, nil)
	waitFor(t, "4 committed offsets", func() bool { return f.committed(t, r.cfg.Group) == 4 })
	stop()
	tk.Mu.Lock()
	if tk.Attempts["acme/bad"] != 1 || tk.Attempts["acme/down"] != 3 || len(tk.Origins) != 1 {
		t.Errorf("attempts %v, origins %d; want 1 for a refused purchase, MaxAttempts=3 for a failing one", tk.Attempts, len(tk.Origins))
	}
	tk.Mu.Unlock()

	cl, _ := kgo.NewClient(kgo.SeedBrokers(f.cluster.ListenAddrs()...), kgo.ConsumeTopics(f.topics.Name(schemas.TopicDeadLetter)))
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	reasons := map[string]string{}
	for len(reasons) < 3 && ctx.Err() == nil {
		cl.PollFetches(ctx).EachRecord(func(rec *kgo.Record) {
			reasons[string(rec.Key)] = deadletter.Header(rec, schemas.HeaderReason)
		})
	}
	if !strings.Contains(reasons["acme/bad"], "422") || !strings.Contains(reasons["acme/down"], "3 attempts") || reasons["acme/x"] == "" {
		t.Errorf("dead-letter reasons = %v", reasons)
	}
}

func TestWrongKeyHoldsInsteadOfDeadLettering(t *testing.T) {
	f := newFixture(t)
	tk := registrartest.New("right")
	srv := httptest.NewServer(tk)
	defer srv.Close()
	f.produce(t, purchase("acme", "1", 1))
	r, stop := run(t, f, srv, func(c *Config) { c.APIKey = "wrong" })
	time.Sleep(500 * time.Millisecond)
	if c := f.committed(t, r.cfg.Group); c != 0 {
		t.Errorf("committed %d offsets while the key was refused", c)
	}
	stop()
	if got := metricCount(r.m.deadLetters); got != 0 {
		t.Errorf("%v dead letters for an auth failure", got)
	}
	if got := metricCount(r.m.requests); got < 3 {
		t.Errorf("%v requests in 500 ms; want it to keep retrying", got)
	}
}

func metricCount(c prometheus.Collector) float64 {
	ch := make(chan prometheus.Metric, 16)
	go func() { c.Collect(ch); close(ch) }()
	var n float64
	for m := range ch {
		var d dto.Metric
		_ = m.Write(&d)
		n += d.GetCounter().GetValue()
	}
	return n
}

func TestNewOriginRequestOmitsMalformedMoney(t *testing.T) {
	p := purchase("acme", "1", 1)
	p.Subtotal = "12,50"
	b, _ := json.Marshal(newOriginRequest(p))
	if strings.Contains(string(b), "subtotal") {
		t.Errorf("malformed subtotal sent: %s", b)
	}
	p.Subtotal = "1234567890123456789.5"
	b, _ = json.Marshal(newOriginRequest(p))
	if !strings.Contains(string(b), `"subtotal":1234567890123456789.50`) {
		t.Errorf("large subtotal not exact: %s", b)
	}
}

// TestForwardsEachRefundOnceAfterItsPurchase: a refund version marks the
// registered purchase refunded, once, even when a later match carries the
// same refund, and after the purchase even in the same poll; a purchase of
// order_name mode ("#1001") gets its slug escaped; of two refunds in one
// poll the latest is marked; a later refund is marked again; a refund of a
// purchase the registry refused goes to the dead-letter topic.
func TestForwardsEachRefundOnceAfterItsPurchase(t *testing.T) {
	f := newFixture(t)
	tk := registrartest.New("k3y")
	tk.Always["#1003"] = 422
	srv := httptest.NewServer(tk)
	defer srv.Close()

	refunded := func(p *schemas.Purchase, at time.Time, amount string) *schemas.Purchase {
		p.RefundedAt, p.RefundedAmount = &at, amount
		return p
	}
	t1 := time.Date(2026, 3, 2, 9, 30, 0, 0, time.UTC)
	t2 := t1.Add(24 * time.Hour)
	f.produce(t,
		purchase("acme", "#1001", 1),
		refunded(purchase("acme", "#1001", 2), t1, "5.00"), // the refund, in the same poll as its purchase
		refunded(purchase("acme", "#1001", 3), t1, "5.00"), // a later match: the same refund
		purchase("acme", "1002", 1),
		purchase("acme", "1002", 2), // a match without a refund
		refunded(purchase("acme", "1002", 3), t1, "1.00"),
		refunded(purchase("acme", "1002", 4), t2, "3.00"), // a second refund
		purchase("acme", "#1003", 1),                      // refused by the registry
		refunded(purchase("acme", "#1003", 2), t1, "2.00"),
		refunded(purchase("acme", "1004", 1), t1, "7.00"), // refunded before it was registered
	)
	r, stop := run(t, f, srv, nil)
	waitFor(t, "10 committed offsets", func() bool { return f.committed(t, "reg-"+t.Name()) == 10 })
	t3 := t2.Add(24 * time.Hour)
	f.produce(t, refunded(purchase("acme", "1002", 5), t3, "4.00")) // a third refund, in a later poll
	waitFor(t, "11 committed offsets", func() bool { return f.committed(t, "reg-"+t.Name()) == 11 })
	stop()

	tk.Mu.Lock()
	defer tk.Mu.Unlock()
	if tk.Refunds["acme/#1001"] != 1 || tk.Refunds["acme/1002"] != 2 {
		t.Errorf("refund requests %v, want #1001 once, 1002 twice (the latest of two in one poll, then a third)", tk.Refunds)
	}
	if got := tk.Origins["acme/#1001"]["refunded_at"]; got != "2026-03-02T09:30:00Z" {
		t.Errorf("#1001 refunded_at = %v, want the refund's time", got)
	}
	if got := tk.Origins["acme/1002"]["refunded_at"]; got != t3.Format(time.RFC3339) {
		t.Errorf("1002 refunded_at = %v, want the last refund's time", got)
	}
	if tk.Refunds["acme/1004"] != 1 || tk.Origins["acme/1004"]["refunded_at"] != "2026-03-02T09:30:00Z" {
		t.Errorf("a purchase registered with its refund already in version 1: %d refund requests, origin %v; want one, after the origin",
			tk.Refunds["acme/1004"], tk.Origins["acme/1004"])
	}
	if tk.Refunds["acme/#1003"] != 0 {
		t.Errorf("the refund of a purchase the registry refused was sent (%d times)", tk.Refunds["acme/#1003"])
	}
	if n := testutil.ToFloat64(r.m.refundsForwarded); n != 4 {
		t.Errorf("refunds_forwarded_total = %v, want 4", n)
	}
	if n := testutil.ToFloat64(r.m.deadLetters.WithLabelValues("rejected")); n != 2 {
		t.Errorf("dead letters (rejected) = %v, want 2: #1003 and its refund", n)
	}
}

// TestMentionsExisting: "already registered" is success for a repeat, "does
// not exist" never is.
func TestMentionsExisting(t *testing.T) {
	for msg, want := range map[string]bool{
		"Origin with this order number already exists": true,
		"Duplicate order number":                       true,
		"Purchase already refunded":                    true,
		"Origin does not exist":                        false,
		"Origin not found":                             false,
		"Validation failed: email is invalid":          false,
	} {
		if got := mentionsExisting(msg); got != want {
			t.Errorf("mentionsExisting(%q) = %t, want %t", msg, got, want)
		}
	}
}
