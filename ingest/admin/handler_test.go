package admin

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"purchasesync/processors/sites/sitestest"
	"purchasesync/schemas"
)

// newFakeRegistry is an in-memory sites.v1 whose writes become visible to
// readers only after delay, as with the real topic, so tests prove the
// handler waits.
func newFakeRegistry(delay time.Duration) *sitestest.Registry {
	r := sitestest.New()
	r.Delay = delay
	return r
}

type statusErr struct {
	code int
	msg  string
}

func (e statusErr) Error() string   { return e.msg }
func (e statusErr) HTTPStatus() int { return e.code }

type fakeSyncing struct {
	reg   *sitestest.Registry
	err   error
	calls []string
	mu    sync.Mutex // the per-site lock (one for all sites here)
}

func (f *fakeSyncing) Lock(string) func() { f.mu.Lock(); return f.mu.Unlock }

func (f *fakeSyncing) set(ctx context.Context, site string, on bool) (schemas.Site, error) {
	f.calls = append(f.calls, fmt.Sprintf("%s=%v", site, on))
	if f.err != nil {
		return schemas.Site{}, f.err
	}
	s, _ := f.reg.Get(site)
	s.PurchaseSyncing = on
	f.reg.Seed(s)
	return s, nil
}

func (f *fakeSyncing) Enable(ctx context.Context, site string) (schemas.Site, error) {
	return f.set(ctx, site, true)
}
func (f *fakeSyncing) Disable(ctx context.Context, site string) (schemas.Site, error) {
	return f.set(ctx, site, false)
}

const token = "s3cret-token"

type env struct {
	t   *testing.T
	srv *httptest.Server
	reg *sitestest.Registry
	syn *fakeSyncing
	h   *Handler
}

func newEnv(t *testing.T, cfg Config) *env {
	t.Helper()
	reg := newFakeRegistry(50 * time.Millisecond)
	syn := &fakeSyncing{reg: reg}
	h, err := New(cfg, Deps{Sites: reg, Writer: reg, Syncing: syn, Registerer: prometheus.NewRegistry()})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	return &env{t: t, srv: srv, reg: reg, syn: syn, h: h}
}

func defaultEnv(t *testing.T) *env {
	cfg := DefaultConfig()
	cfg.Token = token
	return newEnv(t, cfg)
}

// do sends a request with the right token and decodes the JSON answer.
func (e *env) do(method, path, body string) (int, map[string]any) {
	return e.doAuth(method, path, body, "Bearer "+token)
}

func (e *env) doAuth(method, path, body, auth string) (int, map[string]any) {
	e.t.Helper()
	req, err := http.NewRequest(method, e.srv.URL+path, strings.NewReader(body))
	if err != nil {
		e.t.Fatal(err)
	}
	if auth != "" {
		req.Header.Set("Authorization", auth)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	var out map[string]any
	if len(b) > 0 {
		if err := json.Unmarshal(b, &out); err != nil {
			e.t.Fatalf("%s %s: non-JSON body %q", method, path, b)
		}
	}
	return resp.StatusCode, out
}

func TestNoTokenConfiguredRefusesEverything(t *testing.T) {
	e := newEnv(t, DefaultConfig())
	for _, auth := range []string{"", "Bearer ", "Bearer anything"} {
		code, body := e.doAuth("GET", "/admin/v1/sites", "", auth)
		if code != http.StatusServiceUnavailable || !strings.Contains(body["error"].(string), "PURCHASESYNC_ADMIN_TOKEN") {
			t.Errorf("auth %q: got %d %v, want 503 naming PURCHASESYNC_ADMIN_TOKEN", auth, code, body)
		}
	}
}

func TestAuth(t *testing.T) {
	e := defaultEnv(t)
	f := func(auth string, want int) {
		t.Helper()
		if code, _ := e.doAuth("GET", "/admin/v1/sites", "", auth); code != want {
			t.Errorf("auth %q: got %d, want %d", auth, code, want)
		}
	}
	f("", 401)
	f("Bearer", 401)
	f("Basic "+token, 401)
	f("Bearer "+token+"x", 401)
	f("Bearer "+token[:len(token)-1], 401)
	f("Bearer "+token, 200)
	// An unknown path must not tell an unauthenticated caller it is unknown.
	if code, _ := e.doAuth("GET", "/admin/v1/nope", "", ""); code != 401 {
		t.Errorf("unknown path without token: got %d, want 401", code)
	}
	if code, _ := e.do("GET", "/admin/v1/nope", ""); code != 404 {
		t.Errorf("unknown path with token: got %d, want 404", code)
	}
}

func TestPutThenGetSeesIt(t *testing.T) {
	e := defaultEnv(t)
	code, body := e.do("PUT", "/admin/v1/sites/shop-1", `{"shop_domain":"Shop-1.myshopify.com","order_key":"order_number","purchase_syncing":true,"grace":"90s","custom_domains":["HTTPS://Shop.Example.com/","www.example.com"]}`)
	if code != 200 {
		t.Fatalf("put: %d %v", code, body)
	}
	if body["shop_domain"] != "shop-1.myshopify.com" || body["order_key"] != "order_number" || body["grace"] != "1m30s" || body["purchase_syncing"] != true {
		t.Errorf("stored record: %v", body)
	}
	if got := fmt.Sprint(body["custom_domains"]); got != "[https://shop.example.com www.example.com]" {
		t.Errorf("custom_domains: %s", got)
	}
	// The registry applies writes 50 ms late; the PUT must have waited.
	code, got := e.do("GET", "/admin/v1/sites/shop-1", "")
	if code != 200 || got["updated_at"] != body["updated_at"] {
		t.Fatalf("get right after put: %d %v, want the stored record %v", code, got, body)
	}
	code, list := e.do("GET", "/admin/v1/sites", "")
	if sites, _ := list["sites"].([]any); code != 200 || len(sites) != 1 {
		t.Fatalf("list: %d %v", code, list)
	}
}

func TestPutDefaultsAndRoundTrip(t *testing.T) {
	e := defaultEnv(t)
	code, body := e.do("PUT", "/admin/v1/sites/a", `{"shop_domain":"a.myshopify.com"}`)
	if code != 200 || body["order_key"] != "order_id" || body["grace"] != "10m0s" || body["purchase_syncing"] != false {
		t.Fatalf("defaults: %d %v", code, body)
	}
	// A GET result can be PUT back as is.
	b, _ := json.Marshal(body)
	if code, body := e.do("PUT", "/admin/v1/sites/a", string(b)); code != 200 {
		t.Fatalf("round trip: %d %v", code, body)
	}
}

func TestPutKeepsSubscriptionIDAndRefusesShopMove(t *testing.T) {
	e := defaultEnv(t)
	e.reg.Seed(schemas.Site{Site: "a", ShopDomain: "a.myshopify.com", PurchaseSyncing: true, WebhookSubscriptionID: "gid://shopify/WebhookSubscription/1"})
	code, body := e.do("PUT", "/admin/v1/sites/a", `{"shop_domain":"a.myshopify.com","purchase_syncing":true,"grace":"5m"}`)
	if code != 200 || body["webhook_subscription_id"] != "gid://shopify/WebhookSubscription/1" {
		t.Fatalf("put keeping id: %d %v", code, body)
	}
	code, body = e.do("PUT", "/admin/v1/sites/a", `{"shop_domain":"b.myshopify.com"}`)
	if code != 409 || body["field"] != "shop_domain" {
		t.Fatalf("shop move with a subscription: %d %v, want 409 on shop_domain", code, body)
	}
}

// TestPutRefusesASecondSiteForAShop: one shop domain belongs to at most
// one site (M5 of the security review).
func TestPutRefusesASecondSiteForAShop(t *testing.T) {
	e := defaultEnv(t)
	e.reg.Seed(schemas.Site{Site: "a", ShopDomain: "a.myshopify.com"})
	code, body := e.do("PUT", "/admin/v1/sites/b", `{"shop_domain":"A.myshopify.com"}`)
	if code != 409 || body["field"] != "shop_domain" || !strings.Contains(fmt.Sprint(body["error"]), "site a") {
		t.Fatalf("second site for a.myshopify.com: %d %v, want 409 on shop_domain naming site a", code, body)
	}
	if code, body := e.do("PUT", "/admin/v1/sites/a", `{"shop_domain":"a.myshopify.com","grace":"5m"}`); code != 200 {
		t.Fatalf("the site itself: %d %v", code, body)
	}
}

// TestPutTakesTheSiteLock: an admin PUT waits for the per-site lock the
// watchdog and the switch hold around their read-modify-write, so neither
// overwrites the other's change (L12 of the security review).
func TestPutTakesTheSiteLock(t *testing.T) {
	e := defaultEnv(t)
	unlock := e.syn.Lock("a")
	done := make(chan int, 1)
	go func() {
		code, _ := e.do("PUT", "/admin/v1/sites/a", `{"shop_domain":"a.myshopify.com"}`)
		done <- code
	}()
	select {
	case code := <-done:
		t.Fatalf("PUT answered %d while the site's lock was held", code)
	case <-time.After(300 * time.Millisecond):
	}
	unlock()
	if code := <-done; code != 200 {
		t.Fatalf("PUT after the lock was released: %d", code)
	}
}

func TestPutBadRequestsNameTheField(t *testing.T) {
	e := defaultEnv(t)
	f := func(path, body string, wantCode int, wantField string) {
		t.Helper()
		code, got := e.do("PUT", path, body)
		if code != wantCode || got["field"] != nilIfEmpty(wantField) {
			t.Errorf("PUT %s %s: got %d field=%v (%v), want %d field=%q", path, body, code, got["field"], got["error"], wantCode, wantField)
		}
		if got["error"] == "" || got["error"] == nil {
			t.Errorf("PUT %s %s: no error message", path, body)
		}
	}
	f("/admin/v1/sites/a", `{"shop_domain":"example.com"}`, 400, "shop_domain")
	f("/admin/v1/sites/a", `{}`, 400, "shop_domain")
	f("/admin/v1/sites/a", `{"shop_domain":"a.myshopify.com","order_key":"sku"}`, 400, "order_key")
	f("/admin/v1/sites/a", `{"shop_domain":"a.myshopify.com","grace":"ten minutes"}`, 400, "grace")
	f("/admin/v1/sites/a", `{"shop_domain":"a.myshopify.com","grace":"0s"}`, 400, "grace")
	f("/admin/v1/sites/a", `{"shop_domain":"a.myshopify.com","grace":"200h"}`, 400, "grace")
	f("/admin/v1/sites/a", `{"shop_domain":"a.myshopify.com","grace":600}`, 400, "grace")
	f("/admin/v1/sites/a", `{"shop_domain":"a.myshopify.com","purchase_syncing":"yes"}`, 400, "purchase_syncing")
	f("/admin/v1/sites/a", `{"shop_domain":"a.myshopify.com","custom_domains":["ftp://x.com"]}`, 400, "custom_domains")
	f("/admin/v1/sites/a", `{"shop_domain":"a.myshopify.com","custom_domains":[""]}`, 400, "custom_domains")
	f("/admin/v1/sites/a", `{"shop_domain":"a.myshopify.com","colour":"red"}`, 400, "colour")
	f("/admin/v1/sites/a", `{"site":"b","shop_domain":"a.myshopify.com"}`, 400, "site")
	f("/admin/v1/sites/Bad_Slug", `{"shop_domain":"a.myshopify.com"}`, 400, "site")
	f("/admin/v1/sites/a", `{"shop_domain":`, 400, "")
	f("/admin/v1/sites/a", ``, 400, "")
	f("/admin/v1/sites/a", `{"shop_domain":"a.myshopify.com"} {}`, 400, "")
	if e.reg.Puts() != 0 {
		t.Errorf("bad requests wrote %d records", e.reg.Puts())
	}
}

func nilIfEmpty(s string) any {
	if s == "" {
		return nil
	}
	return s
}

func TestBodyTooLarge(t *testing.T) {
	cfg := DefaultConfig()
	cfg.Token = token
	cfg.MaxBodyBytes = 100
	e := newEnv(t, cfg)
	code, _ := e.do("PUT", "/admin/v1/sites/a", `{"shop_domain":"a.myshopify.com","custom_domains":["`+strings.Repeat("x", 200)+`.com"]}`)
	if code != 413 {
		t.Fatalf("got %d, want 413", code)
	}
}

func TestWriterFailureIs502AndCounted(t *testing.T) {
	e := defaultEnv(t)
	e.reg.FailPuts(-1, errors.New("cannot write site a to sites.v1: broker down"))
	code, body := e.do("PUT", "/admin/v1/sites/a", `{"shop_domain":"a.myshopify.com"}`)
	if code != 502 || !strings.Contains(body["error"].(string), "broker down") {
		t.Fatalf("got %d %v", code, body)
	}
	if n := testutil.ToFloat64(e.h.m.requests.WithLabelValues("put", "502")); n != 1 {
		t.Errorf("requests_total{put,502} = %v, want 1", n)
	}
}

func TestGetAndDelete(t *testing.T) {
	e := defaultEnv(t)
	if code, body := e.do("GET", "/admin/v1/sites/missing", ""); code != 404 || body["field"] != "site" {
		t.Errorf("get missing: %d %v", code, body)
	}
	e.reg.Seed(schemas.Site{Site: "a", ShopDomain: "a.myshopify.com", PurchaseSyncing: true})
	if code, body := e.do("DELETE", "/admin/v1/sites/a", ""); code != 409 {
		t.Errorf("delete with syncing on: %d %v, want 409", code, body)
	}
	if _, ok := e.reg.Get("a"); !ok {
		t.Fatal("refused delete removed the site")
	}
	if code, body := e.do("DELETE", "/admin/v1/sites/a?force=true", ""); code != 204 {
		t.Fatalf("forced delete: %d %v", code, body)
	}
	if code, _ := e.do("GET", "/admin/v1/sites/a", ""); code != 404 {
		t.Errorf("get right after delete: %d, want 404", code)
	}
	if code, _ := e.do("DELETE", "/admin/v1/sites/a", ""); code != 404 {
		t.Errorf("second delete: %d, want 404", code)
	}
}

func TestSyncingSwitch(t *testing.T) {
	e := defaultEnv(t)
	e.reg.Seed(schemas.Site{Site: "a", ShopDomain: "a.myshopify.com"})
	if code, body := e.do("POST", "/admin/v1/sites/a/purchase-syncing", `{}`); code != 400 || body["field"] != "enabled" {
		t.Errorf("missing enabled: %d %v", code, body)
	}
	if code, body := e.do("POST", "/admin/v1/sites/nope/purchase-syncing", `{"enabled":true}`); code != 404 {
		t.Errorf("unknown site: %d %v", code, body)
	}
	code, body := e.do("POST", "/admin/v1/sites/a/purchase-syncing", `{"enabled":true}`)
	if code != 200 || body["purchase_syncing"] != true {
		t.Fatalf("enable: %d %v", code, body)
	}
	code, body = e.do("POST", "/admin/v1/sites/a/purchase-syncing", `{"enabled":false}`)
	if code != 200 || body["purchase_syncing"] != false {
		t.Fatalf("disable: %d %v", code, body)
	}
	if got := strings.Join(e.syn.calls, ","); got != "a=true,a=false" {
		t.Errorf("syncing calls %s", got)
	}
	// A controller error carrying its status (a missing Shopify scope) is
	// passed through with its message.
	e.syn.err = statusErr{409, "the shop has not granted read_orders"}
	code, body = e.do("POST", "/admin/v1/sites/a/purchase-syncing", `{"enabled":true}`)
	if code != 409 || body["error"] != "the shop has not granted read_orders" {
		t.Errorf("scope error: %d %v", code, body)
	}
	e.syn.err = errors.New("shopify down")
	if code, _ := e.do("POST", "/admin/v1/sites/a/purchase-syncing", `{"enabled":true}`); code != 502 {
		t.Errorf("plain error: %d, want 502", code)
	}
}

// fakeEvidence is the order-key detector's evidence table.
type fakeEvidence struct {
	loaded bool
	ev     map[string]*schemas.KeyModeEvidence
}

func (f *fakeEvidence) Evidence(site string) (*schemas.KeyModeEvidence, bool) {
	ev, ok := f.ev[site]
	return ev, ok
}
func (f *fakeEvidence) Loaded() bool { return f.loaded }

func TestDiagnosisAndEnableGuard(t *testing.T) {
	e := defaultEnv(t)
	e.reg.Seed(schemas.Site{Site: "a", ShopDomain: "a.myshopify.com", OrderKey: schemas.OrderKeyID})
	e.reg.Seed(schemas.Site{Site: "b", ShopDomain: "b.myshopify.com", OrderKey: schemas.OrderKeyID})
	if code, _ := e.do("GET", "/admin/v1/sites/a/diagnosis", ""); code != 501 {
		t.Errorf("without evidence: %d, want 501", code)
	}
	fe := &fakeEvidence{ev: map[string]*schemas.KeyModeEvidence{
		"a": {Site: "a", Matched: 30, StorefrontEvents: 32, Webhooks: 33, SuspectedDoubles: 30, Modes: map[schemas.OrderKey]schemas.KeyModeModeEvidence{
			schemas.OrderKeyName:   {Matches: 30, Samples: []schemas.KeyModeSample{{Storefront: "#1001", ShopifyID: "5837291049", Number: "1001", Name: "#1001"}}},
			schemas.OrderKeyNumber: {Matches: 30}}},
		"b": {Site: "b", Matched: 30, Modes: map[schemas.OrderKey]schemas.KeyModeModeEvidence{schemas.OrderKeyID: {Matches: 30}}},
	}}
	e.h.deps.Evidence = fe
	if code, _ := e.do("GET", "/admin/v1/sites/a/diagnosis", ""); code != 503 {
		t.Errorf("evidence not loaded: %d, want 503", code)
	}
	fe.loaded = true
	code, body := e.do("GET", "/admin/v1/sites/a/diagnosis", "")
	if code != 200 || body["configured_order_key"] != "order_id" || body["suggested_order_key"] != "order_number" ||
		body["suspected_double_registrations"] != 30.0 || body["verdict"] != "contradicted" {
		t.Fatalf("diagnosis of a: %d %v", code, body)
	}
	ev := body["evidence"].(map[string]any)
	if ev["order_name"].(map[string]any)["matches"] != 30.0 || len(ev["order_name"].(map[string]any)["samples"].([]any)) != 1 || ev["order_id"].(map[string]any)["matches"] != 0.0 {
		t.Errorf("evidence of a: %v", ev)
	}
	if code, body := e.do("GET", "/admin/v1/sites/b/diagnosis", ""); code != 200 || body["suggested_order_key"] != nil || body["verdict"] != "consistent" {
		t.Errorf("diagnosis of b: %d %v", code, body)
	}
	// The guard: a contradicted site is not enabled, and the message names
	// the mode that fits; -force overrides; a consistent site is enabled.
	code, body = e.do("POST", "/admin/v1/sites/a/purchase-syncing", `{"enabled":true}`)
	if code != 409 || body["field"] != "order_key" || !strings.Contains(body["error"].(string), "-order-key order_number") {
		t.Fatalf("enable a contradicted site: %d %v", code, body)
	}
	if len(e.syn.calls) != 0 {
		t.Fatalf("the switch was called: %v", e.syn.calls)
	}
	if code, body := e.do("POST", "/admin/v1/sites/a/purchase-syncing?force=true", `{"enabled":true}`); code != 200 || body["purchase_syncing"] != true {
		t.Errorf("forced enable: %d %v", code, body)
	}
	if code, _ := e.do("POST", "/admin/v1/sites/b/purchase-syncing", `{"enabled":true}`); code != 200 {
		t.Errorf("enable a consistent site: %d", code)
	}
	// Disabling is never guarded.
	if code, _ := e.do("POST", "/admin/v1/sites/a/purchase-syncing", `{"enabled":false}`); code != 200 {
		t.Errorf("disable: %d", code)
	}
}

func TestWaitVisibleTimesOutButAnswers(t *testing.T) {
	cfg := DefaultConfig()
	cfg.Token = token
	e := newEnv(t, cfg)
	e.reg.VisibleTimeout = 20 * time.Millisecond
	e.reg.Delay = time.Second
	start := time.Now()
	code, _ := e.do("PUT", "/admin/v1/sites/a", `{"shop_domain":"a.myshopify.com"}`)
	if code != 200 {
		t.Fatalf("got %d", code)
	}
	if d := time.Since(start); d > 500*time.Millisecond {
		t.Errorf("put took %s, want the 20ms bound", d)
	}
	if n := testutil.ToFloat64(e.h.m.visibleTimeouts); n != 1 {
		t.Errorf("visible timeouts = %v, want 1", n)
	}
	// The registry's delayed write must land within the test, or its
	// goroutine outlives it (goleak, main_test.go).
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		if _, ok := e.reg.Get("a"); ok {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the delayed write never reached the registry")
		}
	}
}

// counterValue reads a counter (client_golang's testutil would pull a new
// module into go.sum for this one call).
