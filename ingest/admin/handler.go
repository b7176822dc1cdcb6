package admin

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"purchasesync/schemas"
)

// SiteReader is the live view of sites.v1 (processors/sites.Registry).
type SiteReader interface {
	Get(site string) (schemas.Site, bool)
	// All returns every site, sorted by slug.
	All() []schemas.Site
}

// SiteWriter writes sites.v1 synchronously: nil means Kafka holds the record
// (processors/sites.Writer, as Registry.Writer makes it). Each call then
// waits, bounded, until the registry the handler reads shows the write, and
// says whether it did: a write that is not visible in time is counted, not
// an error, since Kafka holds it and every process will read it.
type SiteWriter interface {
	// PutVisible normalizes, validates and stores s, returning what was
	// stored. Validation failures are *schemas.FieldError.
	PutVisible(ctx context.Context, s schemas.Site) (stored schemas.Site, visible bool, err error)
	DeleteVisible(ctx context.Context, site string) (visible bool, err error)
}

// Syncing is the Purchase Syncing switch of DESIGN §7 (processors/control).
// Both calls are idempotent and return the stored record once the registry
// shows it. An error may carry the HTTP status to answer with by
// implementing HTTPStatus() int; other errors answer 502, since they come
// from Shopify or Kafka, not from the request.
type Syncing interface {
	Enable(ctx context.Context, site string) (schemas.Site, error)
	Disable(ctx context.Context, site string) (schemas.Site, error)
}

// Evidence is the order-key detector's evidence per site
// (processors/keymode.Table).
type Evidence interface {
	Evidence(site string) (*schemas.KeyModeEvidence, bool)
	// Loaded reports whether the evidence was read up to date once.
	Loaded() bool
}

// Doubles finds and marks suspected double registrations in ClickHouse
// (sinks/clickhouse.Doubles): the repair after a wrong order_key.
type Doubles interface {
	List(ctx context.Context, site string) ([]schemas.DoubleRegistration, error)
	Mark(ctx context.Context, site, by, note string, now time.Time) ([]schemas.DoubleRegistration, error)
}

// SiteLocker is what a Syncing may also offer: the per-site lock its switch
// and watchdog take around their read-modify-write of a site. The admin
// PUT and DELETE take it too, so that a watchdog store cannot overwrite
// an operator's change with the record it read before it, or the reverse.
type SiteLocker interface {
	Lock(site string) (unlock func())
}

// lockSite takes the site's lock when Syncing offers one.
func (h *Handler) lockSite(site string) func() {
	if l, ok := h.deps.Syncing.(SiteLocker); ok {
		return l.Lock(site)
	}
	return func() {}
}

// Deps are the handler's collaborators.
type Deps struct {
	Sites   SiteReader
	Writer  SiteWriter
	Syncing Syncing // nil: the switch answers 501
	// Evidence (nil: diagnosis answers 501, and enable is not guarded)
	// backs GET .../diagnosis and the enable guard.
	Evidence Evidence
	// Doubles (nil: the doubles endpoints answer 501).
	Doubles Doubles
	// Registerer receives the metrics (nil: not registered).
	Registerer prometheus.Registerer
	Logger     *slog.Logger
}

// Handler serves /admin/v1/.
type Handler struct {
	cfg       Config
	deps      Deps
	log       *slog.Logger
	m         *metrics
	mux       *http.ServeMux
	tokenHash [sha256.Size]byte
}

// New builds the handler.
func New(cfg Config, deps Deps) (*Handler, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if deps.Sites == nil || deps.Writer == nil {
		return nil, errors.New("admin: Sites and Writer are required")
	}
	reg := deps.Registerer
	if reg == nil {
		reg = prometheus.NewRegistry() // unexported, so tests need not care
	}
	log := deps.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	h := &Handler{cfg: cfg, deps: deps, log: log, m: newMetrics(reg), tokenHash: sha256.Sum256([]byte(cfg.Token))}
	// The one routing table: every endpoint of the admin API.
	mux := http.NewServeMux()
	mux.HandleFunc("GET /admin/v1/sites", h.route("list", h.list))
	mux.HandleFunc("GET /admin/v1/sites/{site}", h.route("get", h.get))
	mux.HandleFunc("PUT /admin/v1/sites/{site}", h.route("put", h.put))
	mux.HandleFunc("DELETE /admin/v1/sites/{site}", h.route("delete", h.delete))
	mux.HandleFunc("POST /admin/v1/sites/{site}/purchase-syncing", h.route("syncing", h.syncing))
	mux.HandleFunc("GET /admin/v1/sites/{site}/diagnosis", h.route("diagnosis", h.diagnosis))
	mux.HandleFunc("GET /admin/v1/sites/{site}/doubles", h.route("doubles", h.doubles))
	mux.HandleFunc("POST /admin/v1/sites/{site}/doubles/mark", h.route("mark", h.markDoubles))
	mux.HandleFunc("/", h.route("unknown", func(*http.Request) (int, any, error) {
		return 0, nil, &httpError{code: http.StatusNotFound, msg: "no such admin endpoint; see DESIGN §6"}
	}))
	h.mux = mux
	return h, nil
}

// ServeHTTP authenticates, then routes.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if h.cfg.Token == "" {
		h.m.requests.WithLabelValues("auth", "503").Inc()
		writeJSON(w, http.StatusServiceUnavailable, errorBody{Error: "the admin API is disabled: no admin token configured; set PURCHASESYNC_ADMIN_TOKEN (or -admin.token) and restart"})
		return
	}
	if !h.authorized(r) {
		h.m.requests.WithLabelValues("auth", "401").Inc()
		w.Header().Set("WWW-Authenticate", `Bearer realm="purchasesync admin"`)
		writeJSON(w, http.StatusUnauthorized, errorBody{Error: "missing or wrong bearer token (Authorization: Bearer $PURCHASESYNC_ADMIN_TOKEN)"})
		return
	}
	h.mux.ServeHTTP(w, r)
}

// authorized compares SHA-256 digests in constant time, so neither the
// token's content nor its length leaks through timing.
func (h *Handler) authorized(r *http.Request) bool {
	got, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	if !ok {
		return false
	}
	sum := sha256.Sum256([]byte(strings.TrimSpace(got)))
	return subtle.ConstantTimeCompare(sum[:], h.tokenHash[:]) == 1
}

// httpError is an error with the status and field the client gets.
type httpError struct {
	code  int
	field string
	msg   string
}

func (e *httpError) Error() string { return e.msg }

type errorBody struct {
	Error string `json:"error"`
	Field string `json:"field,omitempty"`
}

// route adapts an endpoint that returns (status, body, error) and counts it.
func (h *Handler) route(name string, fn func(r *http.Request) (int, any, error)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		code, body, err := fn(r)
		if err != nil {
			code, body = h.errorResponse(name, r, err)
		}
		h.m.requests.WithLabelValues(name, strconv.Itoa(code)).Inc()
		if code == http.StatusNoContent {
			w.WriteHeader(code)
			return
		}
		writeJSON(w, code, body)
	}
}

func (h *Handler) errorResponse(route string, r *http.Request, err error) (int, errorBody) {
	var he *httpError
	var fe *schemas.FieldError
	var st interface{ HTTPStatus() int }
	var mbe *http.MaxBytesError
	switch {
	case errors.As(err, &he):
		return he.code, errorBody{Error: he.msg, Field: he.field}
	case errors.As(err, &fe):
		return http.StatusBadRequest, errorBody{Error: fe.Error(), Field: fe.Field}
	case errors.As(err, &mbe):
		return http.StatusRequestEntityTooLarge, errorBody{Error: fmt.Sprintf("body over %d bytes", mbe.Limit)}
	case errors.As(err, &st):
		code := st.HTTPStatus()
		if code >= 500 {
			h.log.Warn("admin request failed", "route", route, "path", r.URL.Path, "err", err)
		}
		return code, errorBody{Error: err.Error()}
	}
	h.log.Error("admin request failed", "route", route, "path", r.URL.Path, "err", err)
	return http.StatusBadGateway, errorBody{Error: err.Error()}
}

func writeJSON(w http.ResponseWriter, code int, body any) {
	b, err := json.MarshalIndent(body, "", "  ")
	if err != nil {
		// Every body here is a plain struct; failing to encode one is a bug.
		panic("BUG: cannot encode admin response: " + err.Error())
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(code)
	w.Write(append(b, '\n'))
}

// SiteList is the body of GET /admin/v1/sites.
type SiteList struct {
	Sites []schemas.Site `json:"sites"`
}

func (h *Handler) list(*http.Request) (int, any, error) {
	all := h.deps.Sites.All()
	if all == nil {
		all = []schemas.Site{}
	}
	return http.StatusOK, SiteList{Sites: all}, nil
}

func (h *Handler) lookup(r *http.Request) (schemas.Site, error) {
	slug := r.PathValue("site")
	if !schemas.ValidSiteSlug(slug) {
		return schemas.Site{}, &httpError{code: http.StatusBadRequest, field: "site", msg: "site: must match [a-z0-9][a-z0-9-]{0,62}"}
	}
	s, ok := h.deps.Sites.Get(slug)
	if !ok {
		return schemas.Site{}, &httpError{code: http.StatusNotFound, field: "site", msg: fmt.Sprintf("unknown site %q", slug)}
	}
	return s, nil
}

func (h *Handler) get(r *http.Request) (int, any, error) {
	s, err := h.lookup(r)
	if err != nil {
		return 0, nil, err
	}
	return http.StatusOK, s, nil
}

// PutRequest is the body of PUT /admin/v1/sites/{site}. site,
// webhook_subscription_id and updated_at are accepted so that a record read
// with GET can be sent back, but the last two are ignored: the control plane
// owns the subscription id and the writer stamps updated_at.
type PutRequest struct {
	Site                  *string  `json:"site,omitempty"`
	ShopDomain            string   `json:"shop_domain"`
	OrderKey              string   `json:"order_key,omitempty"`
	PurchaseSyncing       bool     `json:"purchase_syncing"`
	Grace                 *string  `json:"grace,omitempty"`
	CustomDomains         []string `json:"custom_domains,omitempty"`
	WebhookSubscriptionID *string  `json:"webhook_subscription_id,omitempty"`
	UpdatedAt             *string  `json:"updated_at,omitempty"`
}

func (h *Handler) put(r *http.Request) (int, any, error) {
	slug := r.PathValue("site")
	if !schemas.ValidSiteSlug(slug) {
		return 0, nil, &schemas.FieldError{Field: "site", Reason: "must match [a-z0-9][a-z0-9-]{0,62}"}
	}
	var req PutRequest
	if err := h.decode(r, &req); err != nil {
		return 0, nil, err
	}
	s, err := req.site(slug)
	if err != nil {
		return 0, nil, err
	}
	defer h.lockSite(slug)()
	// One shop belongs to one site: a second site would split or steal
	// its webhooks and compliance requests.
	for _, other := range h.deps.Sites.All() {
		if other.Site != slug && other.ShopDomain == s.ShopDomain {
			return 0, nil, &httpError{code: http.StatusConflict, field: "shop_domain", msg: fmt.Sprintf(
				"%s is already linked to site %s; delete that site or change its shop_domain first", s.ShopDomain, other.Site)}
		}
	}
	old, exists := h.deps.Sites.Get(slug)
	if exists && old.WebhookSubscriptionID != "" {
		if old.ShopDomain != s.ShopDomain {
			// The subscription lives in the old shop: moving the site would
			// orphan it, still delivering orders we could no longer route.
			return 0, nil, &httpError{code: http.StatusConflict, field: "shop_domain", msg: fmt.Sprintf(
				"site %s has a webhook subscription in %s; disable purchase syncing first (purchasesync sites disable %s)", slug, old.ShopDomain, slug)}
		}
		s.WebhookSubscriptionID = old.WebhookSubscriptionID
	}
	// A fresh stamp is what tells the writer that the registry has this write.
	s.UpdatedAt = time.Now().UTC()
	stored, visible, err := h.deps.Writer.PutVisible(r.Context(), s)
	if err != nil {
		return 0, nil, err
	}
	h.countInvisible(r.Context(), visible)
	h.log.Info("site stored", "site", slug, "shop_domain", stored.ShopDomain, "order_key", stored.OrderKey, "purchase_syncing", stored.PurchaseSyncing)
	return http.StatusOK, stored, nil
}

// site builds the record from the request and checks what Site.Validate
// does not (the path/body slug, grace syntax, custom domains).
func (req PutRequest) site(slug string) (schemas.Site, error) {
	if req.Site != nil && *req.Site != slug {
		return schemas.Site{}, &schemas.FieldError{Field: "site", Reason: fmt.Sprintf("body says %q but the path says %q", *req.Site, slug)}
	}
	s := schemas.Site{
		Site:            slug,
		ShopDomain:      req.ShopDomain,
		OrderKey:        schemas.OrderKey(req.OrderKey),
		PurchaseSyncing: req.PurchaseSyncing,
	}
	if req.Grace != nil {
		d, err := time.ParseDuration(*req.Grace)
		if err != nil {
			return schemas.Site{}, &schemas.FieldError{Field: "grace", Reason: fmt.Sprintf("want a duration such as \"10m\", got %q", *req.Grace)}
		}
		if d == 0 {
			// Site.Normalize reads 0 as "default"; say so rather than
			// silently storing 10m for an explicit "0s".
			return schemas.Site{}, &schemas.FieldError{Field: "grace", Reason: "must be positive (omit it for the default 10m)"}
		}
		s.Grace = schemas.Duration(d)
	}
	for _, d := range req.CustomDomains {
		n, err := normalizeDomain(d)
		if err != nil {
			return schemas.Site{}, &schemas.FieldError{Field: "custom_domains", Reason: err.Error()}
		}
		s.CustomDomains = append(s.CustomDomains, n)
	}
	s.Normalize()
	if err := s.Validate(); err != nil {
		return schemas.Site{}, err
	}
	return s, nil
}

// normalizeDomain accepts a host ("shop.example.com") or an origin
// ("https://shop.example.com") and lower-cases it.
func normalizeDomain(d string) (string, error) {
	d = strings.ToLower(strings.TrimSuffix(strings.TrimSpace(d), "/"))
	if d == "" {
		return "", errors.New("empty domain")
	}
	host := d
	if strings.Contains(d, "://") {
		u, err := url.Parse(d)
		if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" || u.Path != "" || u.RawQuery != "" {
			return "", fmt.Errorf("%q: want a host such as shop.example.com or an origin such as https://shop.example.com", d)
		}
		host = u.Host
	}
	if strings.ContainsAny(host, " /\t?#@") {
		return "", fmt.Errorf("%q: want a host such as shop.example.com or an origin such as https://shop.example.com", d)
	}
	return d, nil
}

// decode reads a JSON body strictly and names the field at fault.
func (h *Handler) decode(r *http.Request, dst any) error {
	dec := json.NewDecoder(http.MaxBytesReader(nil, r.Body, h.cfg.MaxBodyBytes))
	dec.DisallowUnknownFields()
	err := dec.Decode(dst)
	if err == nil && dec.More() {
		err = errors.New("trailing data after the JSON object")
	}
	if err == nil {
		return nil
	}
	var te *json.UnmarshalTypeError
	var mbe *http.MaxBytesError
	switch {
	case errors.As(err, &mbe):
		return err
	case errors.As(err, &te):
		return &schemas.FieldError{Field: te.Field, Reason: fmt.Sprintf("want a JSON %s, got %s", te.Type, te.Value)}
	case errors.Is(err, io.EOF):
		return &httpError{code: http.StatusBadRequest, msg: "empty body: want a JSON object"}
	}
	if name, ok := strings.CutPrefix(err.Error(), "json: unknown field "); ok {
		name = strings.Trim(name, `"`)
		return &schemas.FieldError{Field: name, Reason: "unknown field"}
	}
	return &httpError{code: http.StatusBadRequest, msg: "malformed JSON body: " + err.Error()}
}

func (h *Handler) delete(r *http.Request) (int, any, error) {
	if schemas.ValidSiteSlug(r.PathValue("site")) {
		defer h.lockSite(r.PathValue("site"))()
	}
	s, err := h.lookup(r)
	if err != nil {
		return 0, nil, err
	}
	if (s.PurchaseSyncing || s.WebhookSubscriptionID != "") && r.URL.Query().Get("force") != "true" {
		// Deleting first would leave Shopify delivering orders for a shop
		// no site claims any more.
		return 0, nil, &httpError{code: http.StatusConflict, field: "purchase_syncing", msg: fmt.Sprintf(
			"site %s still has purchase syncing on or a webhook subscription; disable it first (purchasesync sites disable %s), or add ?force=true", s.Site, s.Site)}
	}
	visible, err := h.deps.Writer.DeleteVisible(r.Context(), s.Site)
	if err != nil {
		return 0, nil, err
	}
	h.countInvisible(r.Context(), visible)
	h.log.Info("site deleted", "site", s.Site)
	return http.StatusNoContent, nil, nil
}

// SyncingRequest is the body of POST /admin/v1/sites/{site}/purchase-syncing.
type SyncingRequest struct {
	Enabled *bool `json:"enabled"`
}

func (h *Handler) syncing(r *http.Request) (int, any, error) {
	s, err := h.lookup(r)
	if err != nil {
		return 0, nil, err
	}
	var req SyncingRequest
	if err := h.decode(r, &req); err != nil {
		return 0, nil, err
	}
	if req.Enabled == nil {
		return 0, nil, &schemas.FieldError{Field: "enabled", Reason: "required: true or false"}
	}
	if h.deps.Syncing == nil {
		return 0, nil, &httpError{code: http.StatusNotImplemented, msg: "the Shopify control plane is not configured in this process"}
	}
	var out schemas.Site
	if *req.Enabled {
		// The guard: enabling a site whose storefront sends another key
		// than its mode would register every purchase twice.
		if d, ok := h.diagnose(s); ok && d.Verdict == schemas.VerdictContradicted && r.URL.Query().Get("force") != "true" {
			return 0, nil, &httpError{code: http.StatusConflict, field: "order_key", msg: fmt.Sprintf(
				"order_key: site %s is configured %s, but its storefront sends the %s: %d of %d matched purchases fit order_key %s. "+
					"Set it first (purchasesync sites put %s -order-key %s), or enable anyway with ?force=true (sites enable -force)",
				s.Site, d.ConfiguredOrderKey, d.SuggestedOrderKey.Describe(), d.Evidence[*d.SuggestedOrderKey].Matches, d.Matched, *d.SuggestedOrderKey, s.Site, *d.SuggestedOrderKey)}
		}
		out, err = h.deps.Syncing.Enable(r.Context(), s.Site)
	} else {
		out, err = h.deps.Syncing.Disable(r.Context(), s.Site)
	}
	if err != nil {
		return 0, nil, err
	}
	return http.StatusOK, out, nil
}

// diagnose judges a site's order_key against the detector's evidence; ok
// is false when this process has no evidence table.
func (h *Handler) diagnose(s schemas.Site) (schemas.KeyModeDiagnosis, bool) {
	if h.deps.Evidence == nil {
		return schemas.KeyModeDiagnosis{}, false
	}
	ev, _ := h.deps.Evidence.Evidence(s.Site)
	return schemas.DiagnoseKeyMode(s, ev, h.cfg.MinMatches), true
}

func (h *Handler) diagnosis(r *http.Request) (int, any, error) {
	s, err := h.lookup(r)
	if err != nil {
		return 0, nil, err
	}
	if h.deps.Evidence == nil {
		return 0, nil, &httpError{code: http.StatusNotImplemented, msg: "the order-key detector's evidence is not read in this process"}
	}
	if !h.deps.Evidence.Loaded() {
		return 0, nil, &httpError{code: http.StatusServiceUnavailable, msg: "the order-key evidence is still loading; try again in a few seconds"}
	}
	d, _ := h.diagnose(s)
	return http.StatusOK, d, nil
}

// DoublesList is the body of GET .../doubles and POST .../doubles/mark.
type DoublesList struct {
	Doubles []schemas.DoubleRegistration `json:"doubles"`
}

// MarkRequest is the body of POST .../doubles/mark: who marks, and why.
type MarkRequest struct {
	By   string `json:"by"`
	Note string `json:"note"`
}

func (h *Handler) doubles(r *http.Request) (int, any, error) {
	s, err := h.lookup(r)
	if err != nil {
		return 0, nil, err
	}
	if h.deps.Doubles == nil {
		return 0, nil, &httpError{code: http.StatusNotImplemented, msg: "ClickHouse is not configured in this process"}
	}
	list, err := h.deps.Doubles.List(r.Context(), s.Site)
	if err != nil {
		return 0, nil, err
	}
	return http.StatusOK, DoublesList{Doubles: list}, nil
}

func (h *Handler) markDoubles(r *http.Request) (int, any, error) {
	s, err := h.lookup(r)
	if err != nil {
		return 0, nil, err
	}
	var req MarkRequest
	if err := h.decode(r, &req); err != nil {
		return 0, nil, err
	}
	if strings.TrimSpace(req.By) == "" {
		return 0, nil, &schemas.FieldError{Field: "by", Reason: "required: who marks the doubles"}
	}
	if h.deps.Doubles == nil {
		return 0, nil, &httpError{code: http.StatusNotImplemented, msg: "ClickHouse is not configured in this process"}
	}
	// Marking while the mode is still wrong would leave the doubles to
	// come unmarked: say so, but mark (the operator may be mid-change).
	if d, ok := h.diagnose(s); ok && d.Verdict == schemas.VerdictContradicted {
		h.log.Warn("marking doubles of a site whose order_key is still contradicted; new doubles keep coming until it is set", "site", s.Site, "suggested", *d.SuggestedOrderKey)
	}
	list, err := h.deps.Doubles.Mark(r.Context(), s.Site, req.By, req.Note, time.Now())
	if err != nil {
		return 0, nil, err
	}
	h.log.Info("suspected double registrations marked", "site", s.Site, "marked", len(list))
	return http.StatusOK, DoublesList{Doubles: list}, nil
}

// countInvisible counts a write the registry did not show in time (the
// writer logged it); a request that ended first is not counted.
func (h *Handler) countInvisible(ctx context.Context, visible bool) {
	if !visible && ctx.Err() == nil {
		h.m.visibleTimeouts.Inc()
	}
}
