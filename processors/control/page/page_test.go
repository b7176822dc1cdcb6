package page

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"syscall"
	"testing"
	"time"

	"purchasesync/processors/control"
	"purchasesync/processors/control/adminapi"
	"purchasesync/processors/sites/sitestest"
	"purchasesync/schemas"
)

const shop = "acme.myshopify.com"

type fakeSwitch struct {
	reg   *sitestest.Registry
	err   error
	calls []string
}

func (f *fakeSwitch) set(site string, on bool) (schemas.Site, error) {
	f.calls = append(f.calls, fmt.Sprintf("%s=%v", site, on))
	if f.err != nil {
		return schemas.Site{}, f.err
	}
	s, _ := f.reg.Get(site)
	s.PurchaseSyncing, s.WebhookSubscriptionID = on, map[bool]string{true: "gid://shopify/WebhookSubscription/1"}[on]
	f.reg.Seed(s)
	return s, nil
}
func (f *fakeSwitch) Enable(_ context.Context, site string) (schemas.Site, error) {
	return f.set(site, true)
}
func (f *fakeSwitch) Disable(_ context.Context, site string) (schemas.Site, error) {
	return f.set(site, false)
}

type fakeShopify struct {
	scopes []string
	err    error
}

func (f *fakeShopify) AccessScopes(context.Context, string) ([]string, error) { return f.scopes, f.err }
func (f *fakeShopify) WebhookSubscriptions(context.Context, string, string) ([]adminapi.WebhookSubscription, error) {
	return []adminapi.WebhookSubscription{{ID: "gid://shopify/WebhookSubscription/1"}}, f.err
}

type fakeStats struct{}

func (fakeStats) Merchant(context.Context, string, time.Time, int) (*schemas.MerchantStats, error) {
	at := time.Date(2026, 12, 6, 9, 30, 0, 0, time.UTC)
	return &schemas.MerchantStats{LastWebhookAt: &at, PurchasesToday: map[string]uint64{"storefront": 7, "webhook": 2},
		Discrepancies: []schemas.Discrepancy{{OrderNumber: "5837291049", Kind: "field_mismatch", Field: "email",
			StorefrontValue: "jane.doe@example.com", ShopifyValue: "john@example.org", DetectedAt: at}}}, nil
}

type fakeEvidence map[string]*schemas.KeyModeEvidence

func (f fakeEvidence) Evidence(site string) (*schemas.KeyModeEvidence, bool) {
	e, ok := f[site]
	return e, ok
}

type env struct {
	t    *testing.T
	srv  *httptest.Server
	reg  *sitestest.Registry
	sw   *fakeSwitch
	shop *fakeShopify
	ev   fakeEvidence
	p    *Page
	now  time.Time
}

func newEnv(t *testing.T) *env {
	reg := sitestest.New()
	reg.Seed(schemas.Site{Site: "acme", ShopDomain: shop, OrderKey: schemas.OrderKeyID})
	e := &env{t: t, reg: reg, sw: &fakeSwitch{reg: reg}, shop: &fakeShopify{scopes: []string{"read_orders", "write_script_tags"}}, ev: fakeEvidence{},
		now: time.Date(2026, 12, 6, 12, 0, 0, 0, time.UTC)}
	cfg := DefaultConfig()
	cfg.APIKey, cfg.APISecret = "api-key", "app-secret"
	p, err := New(cfg, Deps{Sites: reg, Switch: e.sw, Shopify: e.shop, Stats: fakeStats{}, Evidence: e.ev,
		VerifySession: func(tok string) (string, error) {
			if s, ok := strings.CutPrefix(tok, "valid:"); ok {
				return s, nil
			}
			return "", errors.New("bad signature")
		},
		Now: func() time.Time { return e.now }})
	if err != nil {
		t.Fatal(err)
	}
	e.p = p
	mux := http.NewServeMux()
	p.Register(mux)
	e.srv = httptest.NewServer(mux)
	t.Cleanup(e.srv.Close)
	return e
}

var noRedirect = &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}

func (e *env) get(path string) (int, string) {
	e.t.Helper()
	resp, err := noRedirect.Get(e.srv.URL + path)
	if err != nil {
		e.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func (e *env) post(form url.Values) (int, string) {
	e.t.Helper()
	resp, err := noRedirect.PostForm(e.srv.URL+"/app/syncing", form)
	if err != nil {
		e.t.Fatal(err)
	}
	defer resp.Body.Close()
	return resp.StatusCode, resp.Header.Get("Location")
}

// token reads the page token out of a rendered page.
func token(t *testing.T, body string) string {
	t.Helper()
	_, rest, ok := strings.Cut(body, `name="page_token" value="`)
	if !ok {
		t.Fatalf("no page token in the page:\n%s", body)
	}
	tok, _, _ := strings.Cut(rest, `"`)
	return tok
}

func TestPageNeedsShopifysSessionToken(t *testing.T) {
	e := newEnv(t)
	for _, path := range []string{"/app", "/app?shop=" + shop, "/app?id_token=forged", "/app?page_token=bm9wZQ.bm9wZQ"} {
		if code, body := e.get(path); code != 401 || strings.Contains(body, "Purchase Syncing</h2>") {
			t.Errorf("%s: %d, want 401 without the page", path, code)
		}
	}
	code, body := e.get("/app?id_token=valid:" + shop + "&host=YWRtaW4")
	if code != 200 {
		t.Fatalf("valid session token: %d\n%s", code, body)
	}
	for _, want := range []string{"acme.myshopify.com", "Talkable site <strong>acme</strong>", "<code>read_orders</code>", "Turn on Purchase Syncing",
		"none (Purchase Syncing is off)", "2026-12-06 09:30:00 UTC", `data-via="storefront"><td>by your checkout (browser)</td><td class="num">7`,
		`id="purchases-total">9<`, "j***@example.com", "j***@example.org"} {
		if !strings.Contains(body, want) {
			t.Errorf("page lacks %q", want)
		}
	}
	if strings.Contains(body, "jane.doe") || strings.Contains(body, "permission-banner") {
		t.Error("an unmasked email or a permission banner on the page")
	}
}

func TestSwitchWithPageToken(t *testing.T) {
	e := newEnv(t)
	_, body := e.get("/app?id_token=valid:" + shop + "&host=YWRtaW4")
	tok := token(t, body)
	code, loc := e.post(url.Values{"page_token": {tok}, "enabled": {"true"}, "host": {"YWRtaW4"}})
	if code != 303 || !strings.Contains(loc, "notice=enabled") || strings.Join(e.sw.calls, ",") != "acme=true" {
		t.Fatalf("enable: %d %s, calls %v", code, loc, e.sw.calls)
	}
	// The redirect's page token opens the page (post/redirect/get).
	code, body = e.get(loc)
	if code != 200 || !strings.Contains(body, "Purchase Syncing is on") || !strings.Contains(body, "Turn off Purchase Syncing") || !strings.Contains(body, "active: Shopify sends") {
		t.Fatalf("after enabling: %d\n%s", code, body)
	}
	// CSRF: a forged, a foreign (other secret) and an expired token are refused.
	forged := tok[:len(tok)-2] + "xx"
	if code, _ := e.post(url.Values{"page_token": {forged}, "enabled": {"false"}}); code != 403 {
		t.Errorf("forged page token: %d, want 403", code)
	}
	if code, _ := e.post(url.Values{"enabled": {"false"}}); code != 403 {
		t.Errorf("no page token: %d, want 403", code)
	}
	e.now = e.now.Add(2 * time.Hour)
	if code, _ := e.post(url.Values{"page_token": {tok}, "enabled": {"false"}}); code != 403 {
		t.Errorf("expired page token: %d, want 403", code)
	}
	if len(e.sw.calls) != 1 {
		t.Errorf("the switch ran for a refused form: %v", e.sw.calls)
	}
}

func TestMissingReadOrdersShowsUpdatePermissions(t *testing.T) {
	e := newEnv(t)
	e.shop.scopes = []string{"write_script_tags"}
	_, body := e.get("/app?id_token=valid:" + shop)
	if !strings.Contains(body, `id="update-permissions" href="/auth/shopify?shop=acme.myshopify.com" target="_top"`) ||
		!strings.Contains(body, "Update the permissions as shown on the next screen") || !strings.Contains(body, `disabled aria-disabled="true"`) {
		t.Fatalf("no permission banner or the switch is not disabled:\n%s", body)
	}
	// The flow itself refuses too (a form sent anyway): the merchant sees
	// the message.
	e.sw.err = &control.StatusError{Code: 409, Err: fmt.Errorf("cannot enable purchase syncing for site acme (%s): %w", shop, control.ErrMissingScope)}
	code, loc := e.post(url.Values{"page_token": {token(t, body)}, "enabled": {"true"}})
	if code != 303 || !strings.Contains(loc, "notice=missing_scope") {
		t.Fatalf("enable without read_orders: %d %s", code, loc)
	}
	_, body = e.get(loc)
	if !strings.Contains(body, "Talkable needs permission to read your orders") {
		t.Errorf("no missing-scope message:\n%s", body)
	}
}

func TestShopifyErrorsAreExplained(t *testing.T) {
	e := newEnv(t)
	for _, c := range []struct {
		err  error
		want string
	}{
		{fmt.Errorf("shopify accessScopes: %w", adminapi.ErrUnauthorized), "Install Talkable again"},
		{&adminapi.Error{Shop: shop, Operation: "accessScopes", Status: 200, Codes: []string{"THROTTLED"}}, "Shopify is busy"},
		{&adminapi.Error{Shop: shop, Operation: "accessScopes", Status: 429}, "Shopify is busy"},
		{fmt.Errorf("cannot reach Shopify for accessScopes %s: %w", shop, &url.Error{Op: "Post", URL: "https://" + shop, Err: syscall.ECONNREFUSED}), "Shopify could not be reached"},
		{&adminapi.Error{Shop: shop, Operation: "accessScopes", Status: 503}, "Shopify could not be reached"},
	} {
		e.shop.err = c.err
		code, body := e.get("/app?id_token=valid:" + shop)
		if code != 200 || !strings.Contains(body, c.want) {
			t.Errorf("%v: %d, page lacks %q", c.err, code, c.want)
		}
	}
}

func TestContradictedOrderKeyIsNotEnabled(t *testing.T) {
	e := newEnv(t)
	e.ev["acme"] = &schemas.KeyModeEvidence{Site: "acme", Matched: 30, Modes: map[schemas.OrderKey]schemas.KeyModeModeEvidence{schemas.OrderKeyName: {Matches: 30}}}
	_, body := e.get("/app?id_token=valid:" + shop)
	if !strings.Contains(body, `id="diagnosis" class="critical"`) {
		t.Fatalf("no diagnosis on the page:\n%s", body)
	}
	code, loc := e.post(url.Values{"page_token": {token(t, body)}, "enabled": {"true"}})
	if code != 303 || !strings.Contains(loc, "notice=order_key") || len(e.sw.calls) != 0 {
		t.Fatalf("enable a contradicted site: %d %s, calls %v", code, loc, e.sw.calls)
	}
	_, body = e.get(loc)
	if !strings.Contains(body, "order_name first") {
		t.Errorf("the refusal does not name the mode:\n%s", body)
	}
}

func TestShopWithoutSite(t *testing.T) {
	e := newEnv(t)
	code, body := e.get("/app?id_token=valid:other.myshopify.com")
	if code != 200 || !strings.Contains(body, "not linked to a Talkable site") || strings.Contains(body, "syncing-switch") {
		t.Errorf("unlinked shop: %d\n%s", code, body)
	}
}
