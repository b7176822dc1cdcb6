package page

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"embed"
	"encoding/base64"
	"errors"
	"fmt"
	"html/template"
	"log/slog"
	"net/http"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"purchasesync/processors/control"
	"purchasesync/processors/control/adminapi"
	"purchasesync/schemas"
)

// Sites is what the page needs of the site registry.
type Sites interface {
	ByShop(domain string) (schemas.Site, bool)
}

// Switch is the Purchase Syncing switch (processors/control.Service): the
// same flow as the admin API's.
type Switch interface {
	Enable(ctx context.Context, site string) (schemas.Site, error)
	Disable(ctx context.Context, site string) (schemas.Site, error)
}

// Shopify is what the page asks the Admin API.
type Shopify interface {
	AccessScopes(ctx context.Context, shop string) ([]string, error)
	WebhookSubscriptions(ctx context.Context, shop, topic string) ([]adminapi.WebhookSubscription, error)
}

// Stats reads a site's traffic from ClickHouse (sinks/clickhouse).
type Stats interface {
	Merchant(ctx context.Context, site string, day time.Time, latest int) (*schemas.MerchantStats, error)
}

// Evidence is the order-key detector's evidence (processors/keymode.Table).
type Evidence interface {
	Evidence(site string) (*schemas.KeyModeEvidence, bool)
}

// Deps are the page's collaborators. Stats and Evidence may be nil (the
// page then leaves their sections out).
type Deps struct {
	Sites   Sites
	Switch  Switch
	Shopify Shopify
	Stats   Stats
	// Evidence backs the order-key diagnosis and the enable guard.
	Evidence Evidence
	// VerifySession checks a Shopify session token (schemas
	// .VerifySessionToken with the app's key and secret) and returns its
	// shop.
	VerifySession func(token string) (shop string, err error)
	// HasToken reports whether an offline access token is stored for the
	// shop; Exchange gets one for a session token (Shopify's token
	// exchange). Nil: tokens come from the operator only.
	HasToken func(shop string) bool
	Exchange func(ctx context.Context, sessionToken string) error
	// InstallPath is where the OAuth install and re-authorization start
	// (the app listener's /auth/shopify); the shop is added as ?shop=.
	InstallPath string
	Registerer  prometheus.Registerer
	Logger      *slog.Logger
	Now         func() time.Time
}

// Page serves the Shopify Integration page under /app.
type Page struct {
	cfg  Config
	deps Deps
	m    *metrics
	log  *slog.Logger
	tmpl *template.Template
}

//go:embed assets
var assets embed.FS

// New builds the page.
func New(cfg Config, deps Deps) (*Page, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if deps.Sites == nil || deps.Switch == nil || deps.Shopify == nil || deps.VerifySession == nil {
		return nil, errors.New("page: Sites, Switch, Shopify and VerifySession are required")
	}
	if deps.Registerer == nil {
		deps.Registerer = prometheus.NewRegistry()
	}
	if deps.Logger == nil {
		deps.Logger = slog.New(slog.DiscardHandler)
	}
	if deps.Now == nil {
		deps.Now = time.Now
	}
	if deps.InstallPath == "" {
		deps.InstallPath = "/auth/shopify"
	}
	tmpl, err := template.New("page.html").Funcs(template.FuncMap{
		"mask":  schemas.MaskValue,
		"label": viaLabel,
	}).ParseFS(assets, "assets/page.html")
	if err != nil {
		return nil, fmt.Errorf("page: %w", err)
	}
	return &Page{cfg: cfg, deps: deps, m: newMetrics(deps.Registerer), log: deps.Logger, tmpl: tmpl}, nil
}

// Register mounts the page on mux: GET /app, POST /app/syncing and its
// stylesheet (shipped with the binary: no CDN).
func (p *Page) Register(mux *http.ServeMux) {
	mux.HandleFunc("GET /app", p.view)
	mux.HandleFunc("POST /app/syncing", p.syncing)
	mux.Handle("GET /app/assets/page.css", http.StripPrefix("/app/", http.FileServerFS(assets)))
}

// view is the page. It is opened from Shopify admin with the session
// token as id_token (an embedded app's first load), or after one of its
// own forms with the page token.
func (p *Page) view(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	shop, err := p.authenticate(r.Context(), q.Get("id_token"), q.Get("page_token"))
	if err != nil {
		p.m.views.WithLabelValues("unauthenticated").Inc()
		p.render(w, http.StatusUnauthorized, &view{Title: "Open Talkable from your Shopify admin",
			Error: "This page only opens from your Shopify admin (Apps → Talkable), which signs you in. " + err.Error() + "."})
		return
	}
	v := p.build(r.Context(), shop, q.Get("host"))
	if n, ok := notices[q.Get("notice")]; ok {
		v.Notice, v.Error = n.text, n.err
	}
	if q.Get("notice") == "order_key" && v.Diagnosis != nil {
		v.Error = fmt.Sprintf("Purchase Syncing was not turned on: your store's checkout sends the %s, not the %s this site is set up for, so every purchase would be registered twice. Ask Talkable support to set the order key to %s first.",
			v.Diagnosis.SuggestedOrderKey.Describe(), v.Diagnosis.ConfiguredOrderKey.Describe(), *v.Diagnosis.SuggestedOrderKey)
	}
	status := http.StatusOK
	if v.Site == "" {
		p.m.views.WithLabelValues("no_site").Inc()
	} else if v.ShopifyError != "" {
		p.m.views.WithLabelValues("shopify_error").Inc()
	} else {
		p.m.views.WithLabelValues("ok").Inc()
	}
	p.render(w, status, v)
}

type notice struct{ text, err string }

// notices are the outcomes of the switch, shown after its redirect.
var notices = map[string]notice{
	"enabled":       {text: "Purchase Syncing is on: every purchase of your store now reaches Talkable, also when the browser misses it."},
	"disabled":      {text: "Purchase Syncing is off: Talkable's webhook subscriptions were removed from your store."},
	"missing_scope": {err: "Talkable needs permission to read your orders (read_orders) to sync purchases. Update the permissions, then turn Purchase Syncing on again."},
	"order_key":     {err: "Purchase Syncing was not turned on: your checkout sends another order identifier than this site is set up for."},
	"revoked":       {err: "Shopify rejected Talkable's access to your store (the app was uninstalled or its access revoked). Install the app again."},
	"throttled":     {err: "Shopify is busy (the store's API limit is used up). Nothing was changed; try again in a minute."},
	"unreachable":   {err: "Shopify could not be reached. Nothing was changed; try again in a minute."},
	"failed":        {err: "Purchase Syncing could not be switched; nothing was lost. Try again in a minute, or contact Talkable support."},
	"expired":       {err: "This page was open too long: it was reloaded, please try again."},
}

// syncing is the switch's form: enabled=true|false with the page token.
func (p *Page) syncing(w http.ResponseWriter, r *http.Request) {
	if err := r.ParseForm(); err != nil {
		http.Error(w, "bad form", http.StatusBadRequest)
		return
	}
	shop, err := p.checkPageToken(r.PostForm.Get("page_token"))
	if err != nil {
		// A forged or foreign form (CSRF), or one left open too long.
		p.m.switches.WithLabelValues("unknown", "refused").Inc()
		p.render(w, http.StatusForbidden, &view{Title: "Open Talkable from your Shopify admin",
			Error: "This form is not valid any more (" + err.Error() + "). Open the page again from your Shopify admin."})
		return
	}
	host := r.PostForm.Get("host")
	site, ok := p.deps.Sites.ByShop(shop)
	if !ok {
		p.redirect(w, r, shop, host, "failed")
		return
	}
	on := r.PostForm.Get("enabled") == "true"
	action := map[bool]string{true: "enable", false: "disable"}[on]
	if on {
		if d := p.diagnose(site); d != nil && d.Verdict == schemas.VerdictContradicted {
			p.m.switches.WithLabelValues(action, "order_key").Inc()
			p.redirect(w, r, shop, host, "order_key")
			return
		}
		_, err = p.deps.Switch.Enable(r.Context(), site.Site)
	} else {
		_, err = p.deps.Switch.Disable(r.Context(), site.Site)
	}
	code := map[bool]string{true: "enabled", false: "disabled"}[on]
	if err != nil {
		code = classify(err)
		p.log.Warn("purchase syncing switch from the merchant page failed", "site", site.Site, "action", action, "err", err)
	}
	outcome := "ok"
	if err != nil {
		outcome = code
	}
	p.m.switches.WithLabelValues(action, outcome).Inc()
	p.redirect(w, r, shop, host, code)
}

// classify names what went wrong for the merchant, from the control
// plane's and the Admin API client's own error kinds.
func classify(err error) string {
	switch {
	case errors.Is(err, control.ErrMissingScope):
		return "missing_scope"
	case errors.Is(err, adminapi.ErrUnauthorized), errors.Is(err, adminapi.ErrNoToken):
		return "revoked"
	case adminapi.IsThrottled(err):
		return "throttled"
	case adminapi.IsUnreachable(err):
		return "unreachable"
	}
	return "failed"
}

// redirect ends a form with a GET of the page (post/redirect/get), carrying
// a fresh page token and what happened.
func (p *Page) redirect(w http.ResponseWriter, r *http.Request, shop, host, notice string) {
	q := url.Values{"page_token": {p.pageToken(shop)}, "notice": {notice}}
	if host != "" {
		q.Set("host", host)
	}
	http.Redirect(w, r, "/app?"+q.Encode(), http.StatusSeeOther)
}

// authenticate returns the shop of a session token (Shopify's login) or of
// one of our page tokens. Without a stored offline token for the shop, the
// session token is exchanged for one first.
func (p *Page) authenticate(ctx context.Context, idToken, pageToken string) (string, error) {
	if idToken != "" {
		shop, err := p.deps.VerifySession(idToken)
		if err != nil {
			return "", fmt.Errorf("the session token was refused: %w", err)
		}
		if p.deps.HasToken != nil && p.deps.Exchange != nil && !p.deps.HasToken(shop) {
			if err := p.deps.Exchange(ctx, idToken); err != nil {
				p.log.Warn("merchant page: token exchange failed; the page asks to install again", "shop", shop, "err", err)
			}
		}
		return shop, nil
	}
	if pageToken != "" {
		return p.checkPageToken(pageToken)
	}
	return "", errors.New("no session token")
}

// Page tokens: base64url(shop|expiry|nonce) "." base64url(HMAC-SHA256). A
// token is the login of the page it was rendered into and the CSRF token
// of its forms: only our server can make one, and only for the shop whose
// session token it verified. No cookie is needed (the page runs in
// Shopify admin's iframe, where third-party cookies are unreliable).
func (p *Page) pageToken(shop string) string {
	nonce := make([]byte, 12)
	rand.Read(nonce)
	payload := shop + "|" + strconv.FormatInt(p.deps.Now().Add(p.cfg.PageTokenTTL).Unix(), 10) + "|" + base64.RawURLEncoding.EncodeToString(nonce)
	return base64.RawURLEncoding.EncodeToString([]byte(payload)) + "." + base64.RawURLEncoding.EncodeToString(p.sign(payload))
}

func (p *Page) sign(payload string) []byte {
	m := hmac.New(sha256.New, []byte(p.cfg.APISecret))
	m.Write([]byte("purchasesync page token|" + payload))
	return m.Sum(nil)
}

func (p *Page) checkPageToken(tok string) (string, error) {
	b64, sig, ok := strings.Cut(tok, ".")
	if !ok {
		return "", errors.New("malformed page token")
	}
	payload, err1 := base64.RawURLEncoding.DecodeString(b64)
	mac, err2 := base64.RawURLEncoding.DecodeString(sig)
	if err1 != nil || err2 != nil || !hmac.Equal(mac, p.sign(string(payload))) {
		return "", errors.New("forged page token")
	}
	parts := strings.Split(string(payload), "|")
	if len(parts) != 3 {
		return "", errors.New("malformed page token")
	}
	exp, err := strconv.ParseInt(parts[1], 10, 64)
	if err != nil || p.deps.Now().Unix() > exp {
		return "", errors.New("expired page token")
	}
	return parts[0], nil
}

func (p *Page) diagnose(site schemas.Site) *schemas.KeyModeDiagnosis {
	if p.deps.Evidence == nil {
		return nil
	}
	ev, ok := p.deps.Evidence.Evidence(site.Site)
	if !ok {
		return nil
	}
	d := schemas.DiagnoseKeyMode(site, ev, p.cfg.MinMatches)
	return &d
}

// view is what the template shows.
type view struct {
	Title, Shop, Site, Host, PageToken, InstallURL string
	Notice, Error                                  string
	// Shopify's side; ShopifyError says why it is missing.
	ShopifyError    string
	Scopes          []string
	HasReadOrders   bool
	Syncing         bool
	Subscription    string
	SubscriptionOK  bool
	LastWebhook     string
	Purchases       []viaCount
	PurchasesTotal  uint64
	Discrepancies   []schemas.Discrepancy
	StatsError      string
	Diagnosis       *schemas.KeyModeDiagnosis
	NeedsPermission bool
	NeedsInstall    bool
}

type viaCount struct {
	Via   string
	Count uint64
}

func viaLabel(via string) string {
	switch via {
	case schemas.ViaStorefront:
		return "by your checkout (browser)"
	case schemas.ViaWebhook:
		return "by Purchase Syncing (the browser missed them)"
	case schemas.ViaReconciliation:
		return "by reconciliation (webhook and browser both missed them)"
	}
	return via
}

func (p *Page) build(ctx context.Context, shop, host string) *view {
	v := &view{Title: "Shopify Integration", Shop: shop, Host: host, PageToken: p.pageToken(shop),
		InstallURL: p.deps.InstallPath + "?" + url.Values{"shop": {shop}}.Encode()}
	site, ok := p.deps.Sites.ByShop(shop)
	if !ok {
		v.Error = "Your store is not linked to a Talkable site yet. Contact Talkable support to link it; this page then shows Purchase Syncing."
		return v
	}
	v.Site, v.Syncing = site.Site, site.PurchaseSyncing
	sctx, cancel := context.WithTimeout(ctx, p.cfg.ShopifyTimeout)
	defer cancel()
	scopes, err := p.deps.Shopify.AccessScopes(sctx, shop)
	if err != nil {
		v.ShopifyError = notices[classify(err)].err
		if c := classify(err); c == "revoked" {
			v.NeedsInstall = true
		}
		p.log.Warn("merchant page: cannot read the granted permissions", "shop", shop, "err", err)
	} else {
		sort.Strings(scopes)
		v.Scopes, v.HasReadOrders = scopes, adminapi.HasScope(scopes, "read_orders")
		v.NeedsPermission = !v.HasReadOrders
	}
	switch {
	case !site.PurchaseSyncing:
		v.Subscription = "none (Purchase Syncing is off)"
	case v.ShopifyError != "":
		v.Subscription = "unknown (Shopify did not answer)"
	default:
		subs, err := p.deps.Shopify.WebhookSubscriptions(sctx, shop, adminapi.TopicOrdersCreate)
		switch {
		case err != nil:
			v.Subscription = "unknown (Shopify did not answer)"
		case hasSubscription(subs, site.WebhookSubscriptionID):
			v.Subscription, v.SubscriptionOK = "active: Shopify sends each new order to Talkable", true
		default:
			v.Subscription = "missing: Talkable's watchdog recreates it within minutes, and reconciliation fetches the orders of the gap"
		}
	}
	if p.deps.Stats != nil {
		now := p.deps.Now().UTC()
		st, err := p.deps.Stats.Merchant(ctx, site.Site, now, p.cfg.Discrepancies)
		if err != nil {
			v.StatsError = "Purchase figures are not available right now."
			p.log.Warn("merchant page: cannot read the site's figures", "site", site.Site, "err", err)
		} else {
			if st.LastWebhookAt != nil {
				v.LastWebhook = st.LastWebhookAt.UTC().Format("2006-01-02 15:04:05 UTC")
			}
			for _, via := range []string{schemas.ViaStorefront, schemas.ViaWebhook, schemas.ViaReconciliation} {
				v.Purchases = append(v.Purchases, viaCount{via, st.PurchasesToday[via]})
				v.PurchasesTotal += st.PurchasesToday[via]
			}
			v.Discrepancies = st.Discrepancies
		}
	}
	v.Diagnosis = p.diagnose(site)
	return v
}

func hasSubscription(subs []adminapi.WebhookSubscription, id string) bool {
	for _, s := range subs {
		if id != "" && s.ID == id {
			return true
		}
	}
	return false
}

func (p *Page) render(w http.ResponseWriter, status int, v *view) {
	h := w.Header()
	h.Set("Content-Type", "text/html; charset=utf-8")
	h.Set("Cache-Control", "no-store")
	// Framed only by Shopify admin (an embedded app's page).
	h.Set("Content-Security-Policy", "frame-ancestors https://"+cspShop(v.Shop)+" https://admin.shopify.com; default-src 'self'; form-action 'self'")
	h.Set("Referrer-Policy", "no-referrer")
	h.Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(status)
	if err := p.tmpl.Execute(w, v); err != nil {
		p.log.Error("merchant page: cannot render", "err", err)
	}
}

// cspShop is the shop for frame-ancestors; a domain that is not a shop's
// (none yet, or anything odd) gives a harmless placeholder.
func cspShop(shop string) string {
	if shop == "" || strings.ContainsAny(shop, " ;'\"") {
		return "admin.shopify.com"
	}
	return shop
}
