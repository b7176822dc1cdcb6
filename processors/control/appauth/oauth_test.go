package appauth

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"purchasesync/processors/control/adminapi"
	"purchasesync/processors/control/shopifyfake"
)

// memTokens is a TokenWriter and adminapi.TokenSource in memory.
type memTokens struct {
	mu     sync.Mutex
	tokens map[string]string
	scopes map[string][]string
	fail   error
}

func (m *memTokens) Put(_ context.Context, shop, token string, scopes []string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.fail != nil {
		return m.fail
	}
	m.tokens[shop], m.scopes[shop] = token, scopes
	return nil
}

func (m *memTokens) Token(shop string) (string, bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	t, ok := m.tokens[shop]
	return t, ok
}

type oauthEnv struct {
	fake   *shopifyfake.Server
	tokens *memTokens
	h      *Handler
	srv    *httptest.Server
	reg    *prometheus.Registry
	now    time.Time // the handler's clock = time.Now() + skew
	skew   time.Duration
	client *http.Client // follows no redirect
}

const testKey, testSecret = "api-key-1", "app-secret-1"

func newOAuthEnv(t *testing.T) *oauthEnv {
	t.Helper()
	e := &oauthEnv{fake: shopifyfake.Start(t), tokens: &memTokens{tokens: map[string]string{}, scopes: map[string][]string{}}, reg: prometheus.NewRegistry(),
		client: &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}}
	e.fake.SetApp(testKey, testSecret)
	e.fake.AddShop("acme.myshopify.com", "")
	e.fake.AddShop("bolt.myshopify.com", "")
	acfg := adminapi.DefaultConfig()
	acfg.URL = e.fake.URL()
	api, err := adminapi.New(acfg, adminapi.Deps{Tokens: e.tokens})
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	e.srv = httptest.NewServer(mux)
	t.Cleanup(e.srv.Close)
	cfg := DefaultConfig()
	cfg.APIKey, cfg.APISecrets, cfg.AppBaseURL, cfg.OAuthURL = testKey, []string{testSecret}, e.srv.URL, e.fake.OAuthURL()
	cfg.WebhookURL = "https://ingest.example.com/webhooks/shopify"
	e.h, err = New(cfg, Deps{Tokens: e.tokens, Shopify: api, Registerer: e.reg, Now: func() time.Time { return time.Now().Add(e.skew) }})
	if err != nil {
		t.Fatal(err)
	}
	e.h.Mount(mux)
	return e
}

func (e *oauthEnv) get(t *testing.T, u string, cookie *http.Cookie) *http.Response {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, u, nil)
	if cookie != nil {
		req.AddCookie(cookie)
	}
	resp, err := e.client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { resp.Body.Close() })
	return resp
}

// begin starts an install of shop and lets the fake merchant approve it:
// it returns the callback URL Shopify sends the browser to, and the
// browser's state cookie.
func (e *oauthEnv) begin(t *testing.T, shop string) (*url.URL, *http.Cookie) {
	t.Helper()
	r := e.get(t, e.srv.URL+InstallURL(shop), nil)
	if r.StatusCode != http.StatusFound {
		t.Fatalf("start: %d", r.StatusCode)
	}
	var cookie *http.Cookie
	for _, c := range r.Cookies() {
		if c.Name == StateCookie {
			cookie = c
		}
	}
	if cookie == nil || !cookie.Secure || !cookie.HttpOnly || cookie.SameSite != http.SameSiteLaxMode || cookie.MaxAge <= 0 {
		t.Fatalf("state cookie %+v: want Secure, HttpOnly, SameSite=Lax, with a max age", cookie)
	}
	auth, _ := url.Parse(r.Header.Get("Location"))
	aq := auth.Query()
	if !strings.HasSuffix(auth.Path, "/"+shop+"/admin/oauth/authorize") || aq.Get("client_id") != testKey || aq.Get("scope") != strings.Join(e.h.cfg.Scopes, ",") ||
		aq.Get("redirect_uri") != e.srv.URL+PathCallback || aq.Get("state") != cookie.Value || len(aq.Get("state")) < 32 {
		t.Fatalf("authorize URL %s (cookie %s)", auth, cookie.Value)
	}
	r = e.get(t, auth.String(), nil)
	if r.StatusCode != http.StatusFound {
		b, _ := io.ReadAll(r.Body)
		t.Fatalf("fake authorize: %d %s", r.StatusCode, b)
	}
	cb, _ := url.Parse(r.Header.Get("Location"))
	return cb, cookie
}

func (e *oauthEnv) outcome(o string) float64 {
	return testutil.ToFloat64(e.h.m.callbacks.WithLabelValues(o))
}

func TestOAuthInstall(t *testing.T) {
	e := newOAuthEnv(t)
	cb, cookie := e.begin(t, "acme.myshopify.com")
	r := e.get(t, cb.String(), cookie)
	if r.StatusCode != http.StatusFound {
		b, _ := io.ReadAll(r.Body)
		t.Fatalf("callback: %d %s", r.StatusCode, b)
	}
	// Back into the shop's admin, which opens the app with a session token.
	if next := r.Header.Get("Location"); next != e.fake.AdminAppURL("acme.myshopify.com") {
		t.Errorf("redirected to %s, want the app in Shopify admin %s", next, e.fake.AdminAppURL("acme.myshopify.com"))
	}
	tok, ok := e.tokens.Token("acme.myshopify.com")
	if !ok || tok != e.fake.Token("acme.myshopify.com") || strings.Join(e.tokens.scopes["acme.myshopify.com"], ",") != "read_orders" {
		t.Errorf("stored %q %v, fake has %q", tok, e.tokens.scopes, e.fake.Token("acme.myshopify.com"))
	}
	subs := e.fake.Subscriptions("acme.myshopify.com")
	if len(subs) != 1 || subs[0].Topic != "APP_UNINSTALLED" || subs[0].URI != "https://ingest.example.com/webhooks/shopify" {
		t.Errorf("subscriptions %+v, want APP_UNINSTALLED to the ingest", subs)
	}
	if e.outcome(OutcomeInstalled) != 1 {
		t.Error("installed not counted")
	}
	// Re-authorization (a new scope) replaces the token; the subscription
	// already exists ("taken"), which is fine.
	e.h.cfg.Scopes = []string{"read_orders", "read_customers"}
	cb, cookie = e.begin(t, "acme.myshopify.com")
	if r := e.get(t, cb.String(), cookie); r.StatusCode != http.StatusFound {
		t.Fatalf("re-authorization: %d", r.StatusCode)
	}
	if got := e.tokens.scopes["acme.myshopify.com"]; strings.Join(got, ",") != "read_orders,read_customers" {
		t.Errorf("scopes after re-authorization %v", got)
	}
	if len(e.fake.Subscriptions("acme.myshopify.com")) != 1 {
		t.Error("re-authorization subscribed twice")
	}
	// The merchant uninstalls: the token is revoked, and the Admin API
	// answers 401 as Shopify does.
	acfg := adminapi.DefaultConfig()
	acfg.URL, acfg.MaxAttempts = e.fake.URL(), 1
	api, _ := adminapi.New(acfg, adminapi.Deps{Tokens: e.tokens})
	if _, err := api.AccessScopes(context.Background(), "acme.myshopify.com"); err != nil {
		t.Fatalf("with the stored token: %v", err)
	}
	e.fake.Uninstall("acme.myshopify.com")
	if _, err := api.AccessScopes(context.Background(), "acme.myshopify.com"); !errors.Is(err, adminapi.ErrUnauthorized) {
		t.Errorf("after uninstall: %v, want adminapi.ErrUnauthorized", err)
	}
	if len(e.fake.Subscriptions("acme.myshopify.com")) != 0 {
		t.Error("uninstall left the app's subscriptions")
	}
}

func TestOAuthCallbackRefusals(t *testing.T) {
	e := newOAuthEnv(t)
	refused := func(name string, u *url.URL, cookie *http.Cookie, code int, outcome, text string) {
		t.Helper()
		before := e.outcome(outcome)
		r := e.get(t, u.String(), cookie)
		b, _ := io.ReadAll(r.Body)
		if r.StatusCode != code || !strings.Contains(string(b), text) || e.outcome(outcome) != before+1 {
			t.Errorf("%s: %d %q (outcome %s counted %v), want %d with %q", name, r.StatusCode, b, outcome, e.outcome(outcome)-before, code, text)
		}
		if len(e.tokens.tokens) != 0 {
			t.Fatalf("%s: a token was stored", name)
		}
	}
	with := func(u *url.URL, k, v string) *url.URL {
		c := *u
		q := c.Query()
		q.Set(k, v)
		c.RawQuery = q.Encode()
		return &c
	}

	// Forged: any change to a signed parameter, or no hmac.
	cb, cookie := e.begin(t, "acme.myshopify.com")
	refused("forged shop", with(cb, "shop", "bolt.myshopify.com"), cookie, 401, OutcomeBadHMAC, "not signed by Shopify")
	refused("forged code", with(cb, "code", "0000"), cookie, 401, OutcomeBadHMAC, "not signed by Shopify")
	refused("hmac of another secret", with(cb, "hmac", strings.Repeat("ab", 32)), cookie, 401, OutcomeBadHMAC, "not signed")
	noHMAC := *cb
	q := noHMAC.Query()
	q.Del("hmac")
	noHMAC.RawQuery = q.Encode()
	refused("no hmac", &noHMAC, cookie, 401, OutcomeBadHMAC, "not signed")
	refused("invalid shop", with(cb, "shop", "acme.example.com"), cookie, 400, OutcomeBadShop, "invalid shop")

	// The browser's cookie must be the state.
	refused("no cookie", cb, nil, 403, OutcomeBadState, "another browser")
	refused("another browser's cookie", cb, &http.Cookie{Name: StateCookie, Value: "someone-else"}, 403, OutcomeBadState, "another browser")

	// A state issued for another shop: the attacker's own, signed callback
	// (bolt) carried in the victim's browser whose state was for acme.
	cbBolt, _ := e.begin(t, "bolt.myshopify.com")
	refused("state of another shop", resign(t, cbBolt, "state", cookie.Value), cookie, 403, OutcomeBadState, "another shop")

	// Used once: the replay is refused.
	if r := e.get(t, cb.String(), cookie); r.StatusCode != http.StatusFound {
		t.Fatalf("the genuine callback: %d", r.StatusCode)
	}
	delete(e.tokens.tokens, "acme.myshopify.com")
	refused("replayed", cb, cookie, 403, OutcomeBadState, "already used")

	// Unknown state (not issued here), correctly signed and cookied.
	refused("unknown state", resign(t, cbBolt, "state", "forged-state"), &http.Cookie{Name: StateCookie, Value: "forged-state"}, 403, OutcomeBadState, "Unknown sign-in state")

	// Expired: the handler's clock moves past the state's TTL (the fake's
	// timestamp is refreshed so that only the state is too old).
	cb, cookie = e.begin(t, "acme.myshopify.com")
	e.skew = 11 * time.Minute
	refused("expired state", resign(t, cb, "timestamp", itoa(time.Now().Add(e.skew).Unix())), cookie, 403, OutcomeBadState, "expired")
	e.skew = 0

	// Stale timestamp.
	cb, cookie = e.begin(t, "acme.myshopify.com")
	refused("stale timestamp", resign(t, cb, "timestamp", itoa(time.Now().Add(-time.Hour).Unix())), cookie, 400, OutcomeStale, "too old")
	refused("future timestamp", resign(t, cb, "timestamp", itoa(time.Now().Add(time.Hour).Unix())), cookie, 400, OutcomeStale, "too old")

	// A code Shopify refuses (used already): 502, nothing stored.
	cb, cookie = e.begin(t, "acme.myshopify.com")
	code := cb.Query().Get("code")
	requestCode(t, e, code) // someone used the code first
	r := e.get(t, cb.String(), cookie)
	if r.StatusCode != http.StatusBadGateway || e.outcome(OutcomeExchangeError) != 1 {
		t.Errorf("used code: %d", r.StatusCode)
	}
}

func itoa(n int64) string { return strconvFormat(n) }

// resign sets k=v in a callback query and signs it again with the app
// secret, as Shopify would have signed such a query.
func resign(t *testing.T, u *url.URL, k, v string) *url.URL {
	t.Helper()
	c := *u
	q := c.Query()
	q.Set(k, v)
	q.Del("hmac")
	q.Set("hmac", hmacHex(testSecret, q))
	c.RawQuery = q.Encode()
	return &c
}

func requestCode(t *testing.T, e *oauthEnv, code string) {
	t.Helper()
	if _, err := e.h.requestToken(context.Background(), "acme.myshopify.com", map[string]string{"code": code}); err != nil {
		t.Fatal(err)
	}
	if _, err := e.h.requestToken(context.Background(), "acme.myshopify.com", map[string]string{"code": code}); err == nil ||
		!strings.Contains(err.Error(), "invalid_request") {
		t.Errorf("a code used twice: %v, want Shopify's invalid_request", err)
	}
}

func TestOAuthStartRefusals(t *testing.T) {
	e := newOAuthEnv(t)
	for _, shop := range []string{"", "acme.example.com", "https://acme.myshopify.com", "-acme.myshopify.com", "acme.myshopify.com.evil.com"} {
		r := e.get(t, e.srv.URL+PathStart+"?shop="+url.QueryEscape(shop), nil)
		if r.StatusCode != http.StatusBadRequest || r.Header.Get("Location") != "" {
			t.Errorf("shop %q: %d %s", shop, r.StatusCode, r.Header.Get("Location"))
		}
	}
	e.h.cfg.MaxStates = 2
	e.get(t, e.srv.URL+InstallURL("acme.myshopify.com"), nil)
	e.get(t, e.srv.URL+InstallURL("acme.myshopify.com"), nil)
	if r := e.get(t, e.srv.URL+InstallURL("acme.myshopify.com"), nil); r.StatusCode != http.StatusServiceUnavailable {
		t.Errorf("over MaxStates: %d", r.StatusCode)
	}
}

func TestOAuthWrongSecret(t *testing.T) {
	e := newOAuthEnv(t)
	cb, cookie := e.begin(t, "acme.myshopify.com")
	e.h.cfg.APISecrets = []string{"rotated-new", testSecret} // Shopify still has the old one
	// The callback verifies with either; the client_secret sent is the
	// first, which Shopify refuses: a 502 page, nothing stored, and no
	// secret in it.
	r := e.get(t, cb.String(), cookie)
	b, _ := io.ReadAll(r.Body)
	if r.StatusCode != http.StatusBadGateway || strings.Contains(string(b), "rotated-new") || len(e.tokens.tokens) != 0 {
		t.Errorf("wrong client secret: %d %s", r.StatusCode, b)
	}
}

func TestTokenExchange(t *testing.T) {
	e := newOAuthEnv(t)
	e.fake.SetScopes("acme.myshopify.com", "read_orders")
	st := e.fake.SessionToken("acme.myshopify.com", time.Minute)
	inst, err := e.h.ExchangeSessionToken(context.Background(), st)
	if err != nil || inst.Shop != "acme.myshopify.com" || strings.Join(inst.Scopes, ",") != "read_orders" {
		t.Fatalf("%+v %v", inst, err)
	}
	if tok, _ := e.tokens.Token("acme.myshopify.com"); tok == "" || tok != e.fake.Token("acme.myshopify.com") {
		t.Errorf("stored %q, fake %q", tok, e.fake.Token("acme.myshopify.com"))
	}
	if subs := e.fake.Subscriptions("acme.myshopify.com"); len(subs) != 1 || subs[0].Topic != "APP_UNINSTALLED" {
		t.Errorf("subscriptions %+v", subs)
	}
	// A session token of another app (another secret) is refused before
	// Shopify is asked.
	other := shopifyfake.New()
	defer other.Close()
	other.SetApp(testKey, "another-secret")
	calls := e.fake.Calls("access_token")
	if _, err := e.h.ExchangeSessionToken(context.Background(), other.SessionToken("acme.myshopify.com", time.Minute)); !errors.Is(err, ErrBadSessionToken) {
		t.Errorf("foreign session token: %v", err)
	}
	if e.fake.Calls("access_token") != calls {
		t.Error("a refused session token reached Shopify")
	}
	// Over HTTP: no bearer → 401; good one → 200 without the token.
	req, _ := http.NewRequest(http.MethodPost, e.srv.URL+PathTokenExchange, nil)
	r, err := e.client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	r.Body.Close() // an unread, unclosed body keeps its connection's goroutines
	if r.StatusCode != http.StatusUnauthorized {
		t.Errorf("no bearer: %d", r.StatusCode)
	}
	req, _ = http.NewRequest(http.MethodPost, e.srv.URL+PathTokenExchange, nil)
	req.Header.Set("Authorization", "Bearer "+e.fake.SessionToken("acme.myshopify.com", time.Minute))
	r, err = e.client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(r.Body)
	r.Body.Close()
	if r.StatusCode != 200 || !strings.Contains(string(b), `"shop":"acme.myshopify.com"`) || strings.Contains(string(b), "shpat_") {
		t.Errorf("token-exchange route: %d %s", r.StatusCode, b)
	}
}
