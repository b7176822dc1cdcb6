package control

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"purchasesync/processors/control/adminapi"
	"purchasesync/processors/control/shopifyfake"
	"purchasesync/processors/sites/sitestest"
	"purchasesync/schemas"
)

// newMemRegistry is an in-memory sites.v1 whose writes show up to readers
// a little later, as with the real topic.
func newMemRegistry(sites ...schemas.Site) *sitestest.Registry {
	r := sitestest.New(sites...)
	r.Delay = 20 * time.Millisecond
	return r
}

// errBrokerDown is a failed write to sites.v1 (Kafka down after Shopify
// was changed).
var errBrokerDown = errors.New("cannot write site to sites.v1: broker unavailable")

const (
	shopDomain = "demo.myshopify.com"
	shopToken  = "shpat_test_token"
	publicURL  = "https://hooks.example.com"
	callback   = publicURL + "/webhooks/shopify"
)

type fixture struct {
	t    *testing.T
	fake *shopifyfake.Server
	reg  *sitestest.Registry
	svc  *Service
}

func newFixture(t *testing.T, scopes []string, mod func(*Config)) *fixture {
	t.Helper()
	fake := shopifyfake.Start(t)
	fake.AddShop(shopDomain, shopToken, scopes...)
	acfg := adminapi.DefaultConfig()
	acfg.URL = fake.URL()
	acfg.MinBackoff, acfg.MaxBackoff = time.Millisecond, 5*time.Millisecond
	api, err := adminapi.New(acfg, adminapi.Deps{Tokens: adminapi.Tokens{shopDomain: shopToken}})
	if err != nil {
		t.Fatal(err)
	}
	reg := newMemRegistry(schemas.Site{Site: "demo", ShopDomain: shopDomain})
	cfg := DefaultConfig()
	cfg.Topics = schemas.Topics{Prefix: "t."}
	cfg.PublicBaseURL = publicURL
	if mod != nil {
		mod(&cfg)
	}
	svc, err := New(cfg, Deps{Sites: reg, Writer: reg, Shopify: api, Registerer: prometheus.NewRegistry(), Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	return &fixture{t: t, fake: fake, reg: reg, svc: svc}
}

// subs returns the fake's subscriptions by topic.
func (f *fixture) subs() map[string][]shopifyfake.Subscription {
	out := map[string][]shopifyfake.Subscription{}
	for _, s := range f.fake.Subscriptions(shopDomain) {
		out[s.Topic] = append(out[s.Topic], s)
	}
	return out
}

func (f *fixture) site() schemas.Site {
	s, _ := f.reg.Get("demo")
	return s
}

func statusOf(err error) int {
	var se interface{ HTTPStatus() int }
	if errors.As(err, &se) {
		return se.HTTPStatus()
	}
	return 0
}

func TestEnableWithoutReadOrdersChangesNothing(t *testing.T) {
	f := newFixture(t, []string{"read_products", "read_customers"}, nil)
	_, err := f.svc.Enable(context.Background(), "demo")
	if !errors.Is(err, ErrMissingScope) || statusOf(err) != http.StatusConflict {
		t.Fatalf("got %v (status %d), want ErrMissingScope with 409", err, statusOf(err))
	}
	for _, want := range []string{"read_orders", "update", "permissions", shopDomain} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("message %q does not mention %q", err, want)
		}
	}
	if n := len(f.fake.Subscriptions(shopDomain)); n != 0 {
		t.Errorf("%d subscriptions created", n)
	}
	if f.fake.Calls("webhookSubscriptionCreate") != 0 || f.reg.Puts() != 0 || f.site().PurchaseSyncing {
		t.Errorf("something changed: creates=%d puts=%d syncing=%v", f.fake.Calls("webhookSubscriptionCreate"), f.reg.Puts(), f.site().PurchaseSyncing)
	}
	// The merchant grants the permission: the same call now works.
	f.fake.SetScopes(shopDomain, "read_orders")
	if _, err := f.svc.Enable(context.Background(), "demo"); err != nil {
		t.Fatalf("after the grant: %v", err)
	}
}

func TestEnableTwiceMakesOneSubscriptionPerTopic(t *testing.T) {
	f := newFixture(t, []string{"read_orders"}, nil)
	ctx := context.Background()
	got, err := f.svc.Enable(ctx, "demo")
	if err != nil {
		t.Fatal(err)
	}
	subs := f.subs()
	if len(subs["ORDERS_CREATE"]) != 1 || len(subs["REFUNDS_CREATE"]) != 1 || subs["ORDERS_CREATE"][0].URI != callback {
		t.Fatalf("subscriptions after enable: %+v", subs)
	}
	if !got.PurchaseSyncing || got.WebhookSubscriptionID != subs["ORDERS_CREATE"][0].ID {
		t.Errorf("returned record %+v", got)
	}
	if s := f.site(); !s.PurchaseSyncing || s.WebhookSubscriptionID != subs["ORDERS_CREATE"][0].ID {
		t.Errorf("the registry does not show the enabled record right after Enable: %+v", s)
	}
	if _, err := f.svc.Enable(ctx, "demo"); err != nil {
		t.Fatal(err)
	}
	if again := f.subs(); len(again["ORDERS_CREATE"]) != 1 || len(again["REFUNDS_CREATE"]) != 1 {
		t.Errorf("after a second enable: %+v", again)
	}
	if f.reg.Puts() != 1 {
		t.Errorf("%d writes, want 1 (the second enable has nothing to change)", f.reg.Puts())
	}
	if n := testutil.ToFloat64(f.svc.m.switches.WithLabelValues("enable", "ok")); n != 2 {
		t.Errorf("switch_total{enable,ok} = %v", n)
	}
}

func TestDisableLeavesNone(t *testing.T) {
	f := newFixture(t, []string{"read_orders"}, nil)
	ctx := context.Background()
	if _, err := f.svc.Enable(ctx, "demo"); err != nil {
		t.Fatal(err)
	}
	// Someone else's subscription to the same topic is left alone.
	other := f.fake.AddSubscription(shopDomain, "ORDERS_CREATE", "https://other-app.example.com/hook")
	got, err := f.svc.Disable(ctx, "demo")
	if err != nil {
		t.Fatal(err)
	}
	if got.PurchaseSyncing || got.WebhookSubscriptionID != "" || f.site().PurchaseSyncing {
		t.Errorf("record after disable: %+v", got)
	}
	left := f.fake.Subscriptions(shopDomain)
	if len(left) != 1 || left[0].ID != other.ID {
		t.Errorf("left after disable: %+v, want only the other app's", left)
	}
	puts := f.reg.Puts()
	if _, err := f.svc.Disable(ctx, "demo"); err != nil {
		t.Fatalf("second disable: %v", err)
	}
	if f.reg.Puts() != puts {
		t.Error("a second disable wrote again")
	}
}

func TestRetryAfterFailureBetweenSubscriptionAndFlag(t *testing.T) {
	f := newFixture(t, []string{"read_orders"}, nil)
	ctx := context.Background()
	f.reg.FailPuts(1, errBrokerDown)
	_, err := f.svc.Enable(ctx, "demo")
	if err == nil || statusOf(err) != http.StatusServiceUnavailable || !strings.Contains(err.Error(), "retry") {
		t.Fatalf("got %v (status %d), want a 503 telling to retry", err, statusOf(err))
	}
	if len(f.subs()["ORDERS_CREATE"]) != 1 || f.site().PurchaseSyncing {
		t.Fatalf("half-way state: subs %+v, syncing %v", f.subs(), f.site().PurchaseSyncing)
	}
	got, err := f.svc.Enable(ctx, "demo")
	if err != nil {
		t.Fatal(err)
	}
	subs := f.subs()
	if len(subs["ORDERS_CREATE"]) != 1 || len(subs["REFUNDS_CREATE"]) != 1 {
		t.Errorf("after retry: %+v, want one per topic", subs)
	}
	if !got.PurchaseSyncing || got.WebhookSubscriptionID != subs["ORDERS_CREATE"][0].ID || !f.site().PurchaseSyncing {
		t.Errorf("after retry: %+v", got)
	}

	// The same for disable: subscriptions deleted, then the write fails.
	f.reg.FailPuts(1, errBrokerDown)
	if _, err := f.svc.Disable(ctx, "demo"); statusOf(err) != http.StatusServiceUnavailable {
		t.Fatalf("disable with a failing write: %v", err)
	}
	if _, err := f.svc.Disable(ctx, "demo"); err != nil {
		t.Fatal(err)
	}
	if n := len(f.fake.Subscriptions(shopDomain)); n != 0 || f.site().PurchaseSyncing {
		t.Errorf("after disable retry: %d subscriptions, syncing %v", n, f.site().PurchaseSyncing)
	}
}

func TestEnableRemovesDuplicates(t *testing.T) {
	f := newFixture(t, []string{"read_orders"}, nil)
	f.fake.AddSubscription(shopDomain, "ORDERS_CREATE", callback)
	f.fake.AddSubscription(shopDomain, "ORDERS_CREATE", callback) // the fake allows what Shopify would refuse
	if _, err := f.svc.Enable(context.Background(), "demo"); err != nil {
		t.Fatal(err)
	}
	if n := len(f.subs()["ORDERS_CREATE"]); n != 1 {
		t.Errorf("%d orders/create subscriptions, want 1", n)
	}
}

func TestPreconditionErrors(t *testing.T) {
	f := newFixture(t, []string{"read_orders"}, func(c *Config) { c.PublicBaseURL = "" })
	_, err := f.svc.Enable(context.Background(), "demo")
	if !errors.Is(err, ErrNoCallbackURL) || statusOf(err) != 409 || !strings.Contains(err.Error(), "PURCHASESYNC_PUBLIC_BASEURL") {
		t.Errorf("no public URL: %v", err)
	}
	_, err = f.svc.Enable(context.Background(), "nope")
	if !errors.Is(err, ErrUnknownSite) || statusOf(err) != 404 {
		t.Errorf("unknown site: %v", err)
	}

	g := newFixture(t, []string{"read_orders"}, nil)
	g.reg.Seed(schemas.Site{Site: "other", ShopDomain: "other.myshopify.com", OrderKey: schemas.OrderKeyID})
	_, err = g.svc.Enable(context.Background(), "other")
	if !errors.Is(err, adminapi.ErrNoToken) || statusOf(err) != 409 || !strings.Contains(err.Error(), "-shopify.accessTokensFile") {
		t.Errorf("no token: %v", err)
	}
}

func TestShopifyOutageIs502(t *testing.T) {
	f := newFixture(t, []string{"read_orders"}, nil)
	f.fake.FailNext(100, 503)
	_, err := f.svc.Enable(context.Background(), "demo")
	if statusOf(err) != http.StatusBadGateway || f.site().PurchaseSyncing {
		t.Errorf("got %v (status %d)", err, statusOf(err))
	}
}

func TestDisableWithRevokedTokenStillTurnsOff(t *testing.T) {
	f := newFixture(t, []string{"read_orders"}, nil)
	if _, err := f.svc.Enable(context.Background(), "demo"); err != nil {
		t.Fatal(err)
	}
	f.fake.AddShop(shopDomain, "a-new-token-after-reinstall") // ours is now rejected
	got, err := f.svc.Disable(context.Background(), "demo")
	if err != nil || got.PurchaseSyncing || got.WebhookSubscriptionID != "" {
		t.Fatalf("got %+v %v", got, err)
	}
}

func TestWatchdogRecreatesRemovedSubscription(t *testing.T) {
	f := newFixture(t, []string{"read_orders"}, nil)
	f.svc.seen = newSeenIndex("x", nil, time.Hour, time.Now, f.svc.log) // lets Trigger queue
	ctx := context.Background()
	site, err := f.svc.Enable(ctx, "demo")
	if err != nil {
		t.Fatal(err)
	}
	enabledAt := time.Now()
	// A healthy check changes nothing.
	if err := f.svc.CheckSubscriptions(ctx); err != nil {
		t.Fatal(err)
	}
	if testutil.ToFloat64(f.svc.m.recreated.WithLabelValues("ORDERS_CREATE")) != 0 || len(f.svc.triggers) != 0 {
		t.Fatal("a healthy check recreated or triggered something")
	}
	// Shopify drops the subscription after failed deliveries.
	if !f.fake.RemoveSubscription(shopDomain, site.WebhookSubscriptionID) {
		t.Fatal("fake: subscription not found")
	}
	if err := f.svc.CheckSubscriptions(ctx); err != nil {
		t.Fatal(err)
	}
	subs := f.subs()["ORDERS_CREATE"]
	if len(subs) != 1 || subs[0].ID == site.WebhookSubscriptionID || subs[0].URI != callback {
		t.Fatalf("after the watchdog: %+v, want one new subscription", subs)
	}
	if got := f.site().WebhookSubscriptionID; got != subs[0].ID {
		t.Errorf("record id %q, want the new %q", got, subs[0].ID)
	}
	if testutil.ToFloat64(f.svc.m.recreated.WithLabelValues("ORDERS_CREATE")) != 1 || testutil.ToFloat64(f.svc.m.gaps) != 1 {
		t.Error("recreation or gap not counted")
	}
	select {
	case tr := <-f.svc.triggers:
		// The gap reaches back before the last time the subscription was
		// seen in place (the check right after enabling).
		if tr.site != "demo" || tr.since.After(enabledAt.Add(-gapLead+time.Second)) || tr.since.Before(enabledAt.Add(-gapLead-time.Minute)) {
			t.Errorf("trigger %+v, want demo since about %s", tr, enabledAt.Add(-gapLead))
		}
	default:
		t.Error("no reconciliation triggered for the gap")
	}
	// The refunds subscription is also watched.
	f.fake.RemoveSubscription(shopDomain, f.subs()["REFUNDS_CREATE"][0].ID)
	if err := f.svc.CheckSubscriptions(ctx); err != nil {
		t.Fatal(err)
	}
	if len(f.subs()["REFUNDS_CREATE"]) != 1 || testutil.ToFloat64(f.svc.m.recreated.WithLabelValues("REFUNDS_CREATE")) != 1 {
		t.Error("refunds subscription not recreated")
	}
}

func TestWatchdogSkipsDisabledSitesAndReportsErrors(t *testing.T) {
	f := newFixture(t, []string{"read_orders"}, nil)
	if err := f.svc.CheckSubscriptions(context.Background()); err != nil || f.fake.Calls("webhookSubscriptions") != 0 {
		t.Fatalf("disabled site checked: %v, %d calls", err, f.fake.Calls("webhookSubscriptions"))
	}
	if _, err := f.svc.Enable(context.Background(), "demo"); err != nil {
		t.Fatal(err)
	}
	f.fake.FailNext(100, 500)
	if err := f.svc.CheckSubscriptions(context.Background()); err == nil || !strings.Contains(err.Error(), "site demo") {
		t.Errorf("got %v, want an error naming the site", err)
	}
	if testutil.ToFloat64(f.svc.m.watchdogChecks.WithLabelValues("error")) != 1 {
		t.Error("error not counted")
	}
}

func TestEnableMovesSubscriptionToNewCallback(t *testing.T) {
	f := newFixture(t, []string{"read_orders"}, func(c *Config) { c.PublicBaseURL = "https://old.example.com" })
	old, err := f.svc.Enable(context.Background(), "demo")
	if err != nil {
		t.Fatal(err)
	}
	f.svc.cfg.PublicBaseURL = publicURL // redeployed behind a new URL
	got, err := f.svc.Enable(context.Background(), "demo")
	if err != nil {
		t.Fatal(err)
	}
	subs := f.subs()["ORDERS_CREATE"]
	if len(subs) != 1 || subs[0].URI != callback || got.WebhookSubscriptionID != subs[0].ID || got.WebhookSubscriptionID == old.WebhookSubscriptionID {
		t.Errorf("after the move: %+v, record %q", subs, got.WebhookSubscriptionID)
	}
}
