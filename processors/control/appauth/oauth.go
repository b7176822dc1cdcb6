package appauth

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"html"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"purchasesync/processors/control/adminapi"
	"purchasesync/schemas"
)

// StateCookie is the cookie binding an install's state to the browser that
// started it.
const StateCookie = "purchasesync_oauth_state"

// Token exchange grant (Shopify's token exchange for embedded apps).
const (
	grantTokenExchange  = "urn:ietf:params:oauth:grant-type:token-exchange"
	tokenTypeIDToken    = "urn:ietf:params:oauth:token-type:id_token"
	tokenTypeOfflineAcc = "urn:shopify:params:oauth:token-type:offline-access-token"
)

// TokenWriter stores a shop's token (Store).
type TokenWriter interface {
	Put(ctx context.Context, shop, token string, scopes []string) error
}

// Subscriber creates webhook subscriptions (adminapi.Client).
type Subscriber interface {
	CreateWebhookSubscription(ctx context.Context, shop, topic, uri string) (adminapi.WebhookSubscription, error)
}

// Deps are the handler's collaborators.
type Deps struct {
	Tokens TokenWriter
	// Shopify subscribes APP_UNINSTALLED once a token is stored (with that
	// token: the TokenSource of the client must include Tokens). Nil, or an
	// empty Config.WebhookURL, skips it.
	Shopify    Subscriber
	HTTPClient *http.Client // nil: one with Config.HTTPTimeout, no redirects
	Registerer prometheus.Registerer
	Logger     *slog.Logger
	Now        func() time.Time // nil: time.Now
}

// Handler serves Shopify's OAuth install and re-authorization, and the
// session-token exchange. See the package doc.
type Handler struct {
	cfg    Config
	tokens TokenWriter
	api    Subscriber
	http   *http.Client
	log    *slog.Logger
	m      *oauthMetrics
	now    func() time.Time

	mu     sync.Mutex
	states map[string]*state // nonce → state
}

// state is one install in flight.
type state struct {
	shop    string
	expires time.Time
	used    bool
}

// New builds the handler.
func New(cfg Config, deps Deps) (*Handler, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if deps.Tokens == nil {
		return nil, errors.New("appauth: Deps.Tokens is required")
	}
	h := &Handler{cfg: cfg, tokens: deps.Tokens, api: deps.Shopify, http: deps.HTTPClient, log: deps.Logger, now: deps.Now,
		states: map[string]*state{}}
	if h.http == nil {
		h.http = &http.Client{Timeout: cfg.HTTPTimeout,
			CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	}
	if h.log == nil {
		h.log = slog.New(slog.DiscardHandler)
	}
	if h.now == nil {
		h.now = time.Now
	}
	reg := deps.Registerer
	if reg == nil {
		reg = prometheus.NewRegistry()
	}
	h.m = newOAuthMetrics(reg, h.pending)
	return h, nil
}

// Mount registers the routes on mux: GET PathStart, GET PathCallback and
// POST PathTokenExchange.
func (h *Handler) Mount(mux *http.ServeMux) {
	mux.HandleFunc("GET "+PathStart, h.ServeStart)
	mux.HandleFunc("GET "+PathCallback, h.ServeCallback)
	mux.HandleFunc("POST "+PathTokenExchange, h.ServeTokenExchange)
}

// InstallURL is the app listener's path that starts (re-)authorization of
// shop: the target of an "Update permissions" button. An embedded page must
// open it at the top level (target="_top"), not inside Shopify admin's
// iframe, since Shopify's grant screen refuses to be framed.
// AdminAppURL is the app's page inside the shop's Shopify admin, derived
// from the OAuth endpoint (…/admin/oauth → …/admin/apps/{api key}), where
// Shopify opens the app with a session token.
func (h *Handler) AdminAppURL(shop string) string {
	return strings.TrimSuffix(h.oauthURL(shop), "/oauth") + "/apps/" + url.PathEscape(h.cfg.APIKey)
}

func InstallURL(shop string) string { return PathStart + "?" + url.Values{"shop": {shop}}.Encode() }

func (h *Handler) pending() float64 {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.pruneLocked()
	return float64(len(h.states))
}

func (h *Handler) pruneLocked() {
	now := h.now()
	for k, s := range h.states {
		if now.After(s.expires) {
			delete(h.states, k)
		}
	}
}

// oauthURL is the shop's OAuth endpoint base.
func (h *Handler) oauthURL(shop string) string {
	return strings.TrimSuffix(strings.ReplaceAll(h.cfg.OAuthURL, "{shop}", shop), "/")
}

// ServeStart is GET /auth/shopify?shop=...: it remembers a single-use state
// for the shop, binds it to the browser with a cookie, and redirects to the
// shop's grant screen.
func (h *Handler) ServeStart(w http.ResponseWriter, r *http.Request) {
	shop, ok := schemas.NormalizeShopDomain(r.URL.Query().Get("shop"))
	if !ok {
		h.m.starts.WithLabelValues(OutcomeBadShop).Inc()
		page(w, http.StatusBadRequest, "Missing or invalid shop", "Open the app from your Shopify admin, or add ?shop=your-store.myshopify.com to the address.")
		return
	}
	var b [24]byte
	_, _ = rand.Read(b[:])
	nonce := base64.RawURLEncoding.EncodeToString(b[:])
	h.mu.Lock()
	if len(h.states) >= h.cfg.MaxStates {
		h.pruneLocked()
	}
	if len(h.states) >= h.cfg.MaxStates {
		h.mu.Unlock()
		h.m.starts.WithLabelValues(OutcomeBusy).Inc()
		w.Header().Set("Retry-After", "60")
		page(w, http.StatusServiceUnavailable, "Too many installs in progress", "Please try again in a minute.")
		return
	}
	h.states[nonce] = &state{shop: shop, expires: h.now().Add(h.cfg.StateTTL)}
	h.mu.Unlock()
	http.SetCookie(w, &http.Cookie{Name: StateCookie, Value: nonce, Path: PathStart, MaxAge: int(h.cfg.StateTTL / time.Second),
		Secure: true, HttpOnly: true, SameSite: http.SameSiteLaxMode})
	q := url.Values{
		"client_id":    {h.cfg.APIKey},
		"scope":        {strings.Join(h.cfg.Scopes, ",")},
		"redirect_uri": {strings.TrimSuffix(h.cfg.AppBaseURL, "/") + PathCallback},
		"state":        {nonce},
		// No grant_options[]: an offline token, the kind background work
		// (the switch, the watchdog, reconciliation) needs.
	}
	h.m.starts.WithLabelValues(OutcomeRedirected).Inc()
	http.Redirect(w, r, h.oauthURL(shop)+"/authorize?"+q.Encode(), http.StatusFound)
}

// ServeCallback is GET /auth/shopify/callback: Shopify sends the merchant
// back with code, hmac, host, shop, state and timestamp. Every check fails
// with a 4xx page and nothing stored.
func (h *Handler) ServeCallback(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	fail := func(code int, outcome, title, detail string) {
		h.m.callbacks.WithLabelValues(outcome).Inc()
		h.log.Warn("oauth callback refused", "outcome", outcome, "shop", logShop(q.Get("shop")), "reason", title)
		page(w, code, title, detail)
	}
	shop, ok := schemas.NormalizeShopDomain(q.Get("shop"))
	if !ok || len(q["shop"]) != 1 {
		fail(http.StatusBadRequest, OutcomeBadShop, "Missing or invalid shop", "Start the installation again from your Shopify admin.")
		return
	}
	if !h.verifyQuery(q) {
		fail(http.StatusUnauthorized, OutcomeBadHMAC, "This request was not signed by Shopify", "Start the installation again from your Shopify admin.")
		return
	}
	ts, err := strconv.ParseInt(q.Get("timestamp"), 10, 64)
	if age := h.now().Sub(time.Unix(ts, 0)); err != nil || age > h.cfg.MaxClockSkew || age < -h.cfg.MaxClockSkew {
		fail(http.StatusBadRequest, OutcomeStale, "This sign-in link is too old", "Start the installation again from your Shopify admin.")
		return
	}
	if title := h.takeState(r, q.Get("state"), shop); title != "" {
		fail(http.StatusForbidden, OutcomeBadState, title, "Start the installation again from your Shopify admin, in this browser.")
		return
	}
	code := q.Get("code")
	if code == "" {
		fail(http.StatusBadRequest, OutcomeBadRequest, "Shopify sent no authorization code", "Start the installation again from your Shopify admin.")
		return
	}
	// The state is used: clear its cookie whatever happens next.
	http.SetCookie(w, &http.Cookie{Name: StateCookie, Value: "", Path: PathStart, MaxAge: -1, Secure: true, HttpOnly: true, SameSite: http.SameSiteLaxMode})
	g, err := h.requestToken(r.Context(), shop, map[string]string{"code": code})
	if err != nil {
		h.m.callbacks.WithLabelValues(OutcomeExchangeError).Inc()
		h.log.Error("oauth callback: Shopify did not give an access token", "shop", shop, "err", err)
		page(w, http.StatusBadGateway, "Shopify did not complete the installation", "Shopify could not be reached or refused the request. Start the installation again in a minute.")
		return
	}
	if outcome, err := h.install(r.Context(), shop, g); err != nil {
		h.m.callbacks.WithLabelValues(outcome).Inc()
		page(w, http.StatusServiceUnavailable, "The installation could not be saved", "Start the installation again in a minute.")
		return
	}
	h.m.callbacks.WithLabelValues(OutcomeInstalled).Inc()
	// Back into Shopify admin, which opens the embedded app with a fresh
	// session token (the page's only login): https://{shop}/admin/apps/{api key}.
	http.Redirect(w, r, h.AdminAppURL(shop), http.StatusFound)
}

// logShop is a shop parameter as logs may show it (valid domains only, so
// that a log line cannot be forged or bloated by the query).
func logShop(s string) string {
	if d, ok := schemas.NormalizeShopDomain(s); ok {
		return d
	}
	return "(invalid)"
}

func (h *Handler) verifyQuery(q url.Values) bool {
	ok := false
	for _, s := range h.cfg.APISecrets { // every secret, so timing says nothing of which
		if schemas.VerifyOAuthQuery(q, s) == nil {
			ok = true
		}
	}
	return ok
}

// takeState checks and uses the state: it must have been issued by this
// process, for this shop, not used, not expired, and be the browser's
// cookie. It returns the page title of a failure, or "".
func (h *Handler) takeState(r *http.Request, nonce, shop string) string {
	c, err := r.Cookie(StateCookie)
	if nonce == "" {
		return "Missing sign-in state"
	}
	if err != nil || subtle.ConstantTimeCompare([]byte(c.Value), []byte(nonce)) != 1 {
		return "This sign-in was started in another browser (or its cookie was blocked)"
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	s, ok := h.states[nonce]
	switch {
	case !ok:
		return "Unknown sign-in state"
	case s.used:
		return "This sign-in link was already used"
	case h.now().After(s.expires):
		delete(h.states, nonce)
		return "This sign-in link has expired"
	case s.shop != shop:
		return "This sign-in was started for another shop"
	}
	s.used = true // kept until it expires, so that a replay says so
	return ""
}

// grant is Shopify's access_token answer.
type grant struct {
	AccessToken string `json:"access_token"`
	Scope       string `json:"scope"`
}

// tokenError is Shopify's error answer of access_token (OAuth 2.0 shape).
type tokenError struct {
	Error       string `json:"error"`
	Description string `json:"error_description"`
}

// requestToken posts to the shop's access_token endpoint with the app's
// credentials and params (code, or the token-exchange grant's).
func (h *Handler) requestToken(ctx context.Context, shop string, params map[string]string) (grant, error) {
	body := map[string]string{"client_id": h.cfg.APIKey, "client_secret": h.cfg.APISecrets[0]}
	for k, v := range params {
		body[k] = v
	}
	b, _ := json.Marshal(body)
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, h.oauthURL(shop)+"/access_token", bytes.NewReader(b))
	if err != nil {
		return grant{}, fmt.Errorf("cannot build the access_token request (-shopify.oauthURL): %w", err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json")
	resp, err := h.http.Do(req)
	if err != nil {
		return grant{}, fmt.Errorf("shopify access_token: %w", err)
	}
	defer resp.Body.Close()
	rb, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	if resp.StatusCode != http.StatusOK {
		var te tokenError
		_ = json.Unmarshal(rb, &te)
		// error and error_description are Shopify's words, no secret.
		return grant{}, fmt.Errorf("shopify access_token answered %d %s: %.200s", resp.StatusCode, te.Error, te.Description)
	}
	var g grant
	if err := json.Unmarshal(rb, &g); err != nil || g.AccessToken == "" {
		return grant{}, fmt.Errorf("shopify access_token answered 200 without an access_token")
	}
	return g, nil
}

// install stores a granted token and subscribes APP_UNINSTALLED with it.
// It logs the episode (one line) and returns the outcome of a failure.
func (h *Handler) install(ctx context.Context, shop string, g grant) (string, error) {
	scopes := splitScopes(g.Scope)
	if err := h.tokens.Put(ctx, shop, g.AccessToken, scopes); err != nil {
		h.log.Error("app install: cannot store the access token", "shop", shop, "err", err)
		return OutcomeStoreError, err
	}
	subscribed := "no (no -public.baseURL)"
	if h.api != nil && h.cfg.WebhookURL != "" {
		subscribed = "yes"
		for _, topic := range schemas.InstallWebhookTopics() {
			if _, err := h.api.CreateWebhookSubscription(ctx, shop, topic, h.cfg.WebhookURL); err != nil && !adminapi.IsTaken(err) {
				// Not fatal: the token is stored, and the next install or
				// token exchange subscribes again.
				subscribed = "failed: " + err.Error()
			}
		}
	}
	if !adminapi.HasScope(scopes, "read_orders") {
		h.log.Warn("app installed without read_orders: Purchase Syncing cannot be enabled until the merchant grants it", "shop", shop, "scopes", g.Scope)
	}
	h.log.Info("app installed", "shop", shop, "scopes", g.Scope, "app_uninstalled_subscribed", subscribed)
	return "", nil
}

// VerifySessionToken checks a session token (from App Bridge, sent as
// "Authorization: Bearer <token>") against every configured secret and the
// API key, and returns its claims; Shop is the merchant's shop. This is how
// the app page authenticates a request.
func (h *Handler) VerifySessionToken(token string) (*schemas.SessionToken, error) {
	var last error
	for _, s := range h.cfg.APISecrets {
		st, err := schemas.VerifySessionToken(token, h.cfg.APIKey, s, h.now())
		if err == nil {
			return st, nil
		}
		last = err
		if !errors.Is(err, schemas.ErrSessionTokenSignature) {
			break
		}
	}
	return nil, last
}

// ErrBadSessionToken wraps a session token's refusal.
var ErrBadSessionToken = errors.New("invalid session token")

// ExchangeSessionToken trades a session token for the shop's offline access
// token (Shopify's token exchange), stores it and subscribes
// APP_UNINSTALLED, as an install does. The page calls it when the store has
// no token for the session's shop (an install that never went through the
// callback, or a token lost). Errors wrap ErrBadSessionToken when the
// token itself is refused.
func (h *Handler) ExchangeSessionToken(ctx context.Context, sessionToken string) (Installation, error) {
	st, err := h.VerifySessionToken(sessionToken)
	if err != nil {
		h.m.exchanges.WithLabelValues(OutcomeBadRequest).Inc()
		return Installation{}, fmt.Errorf("%w: %w", ErrBadSessionToken, err)
	}
	g, err := h.requestToken(ctx, st.Shop, map[string]string{
		"grant_type":           grantTokenExchange,
		"subject_token":        sessionToken,
		"subject_token_type":   tokenTypeIDToken,
		"requested_token_type": tokenTypeOfflineAcc,
	})
	if err != nil {
		h.m.exchanges.WithLabelValues(OutcomeExchangeError).Inc()
		h.log.Error("token exchange: Shopify did not give an access token", "shop", st.Shop, "err", err)
		return Installation{}, err
	}
	if outcome, err := h.install(ctx, st.Shop, g); err != nil {
		h.m.exchanges.WithLabelValues(outcome).Inc()
		return Installation{}, err
	}
	h.m.exchanges.WithLabelValues(OutcomeInstalled).Inc()
	return Installation{Shop: st.Shop, Scopes: splitScopes(g.Scope), InstalledAt: h.now().UTC()}, nil
}

// ServeTokenExchange is POST /auth/shopify/token-exchange with
// "Authorization: Bearer <session token>": ExchangeSessionToken, answering
// {"shop": ..., "scopes": [...]} (never the token). A header, not a cookie,
// carries the credential, so the route needs no CSRF token.
func (h *Handler) ServeTokenExchange(w http.ResponseWriter, r *http.Request) {
	tok, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	if !ok || tok == "" {
		h.m.exchanges.WithLabelValues(OutcomeBadRequest).Inc()
		w.WriteHeader(http.StatusUnauthorized)
		io.WriteString(w, `{"error":"missing session token"}`+"\n")
		return
	}
	inst, err := h.ExchangeSessionToken(r.Context(), strings.TrimSpace(tok))
	switch {
	case errors.Is(err, ErrBadSessionToken):
		w.WriteHeader(http.StatusUnauthorized)
		io.WriteString(w, `{"error":"invalid session token"}`+"\n")
		return
	case err != nil:
		w.WriteHeader(http.StatusBadGateway)
		io.WriteString(w, `{"error":"Shopify did not give an access token; try again"}`+"\n")
		return
	}
	json.NewEncoder(w).Encode(map[string]any{"shop": inst.Shop, "scopes": inst.Scopes})
}

// page writes a small self-contained HTML error page.
func page(w http.ResponseWriter, code int, title, detail string) {
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("Content-Security-Policy", "default-src 'none'; style-src 'unsafe-inline'")
	w.WriteHeader(code)
	fmt.Fprintf(w, `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>%[1]s</title>
<style>body{font:14px/20px -apple-system,BlinkMacSystemFont,"San Francisco","Segoe UI",Roboto,"Helvetica Neue",sans-serif;color:#303030;background:#f1f1f1;margin:0;padding:32px}
main{max-width:560px;margin:0 auto;background:#fff;border-radius:12px;padding:20px;box-shadow:0 1px 0 rgba(26,26,26,.07)}
h1{font-size:16px;line-height:24px;margin:0 0 8px}p{margin:0;color:#616161}</style></head>
<body><main role="alert"><h1>%[1]s</h1><p>%[2]s</p><p style="margin-top:12px;color:#8a8a8a">Error %[3]d</p></main></body></html>
`, html.EscapeString(title), html.EscapeString(detail), code)
}
