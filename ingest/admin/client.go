package admin

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"

	"purchasesync/schemas"
)

// Client is the admin API's HTTP client (the `purchasesync sites` CLI's):
// both ends of the wire format live in this package. Each call returns the
// raw JSON answer too, for callers that print it as it came.
type Client struct {
	base  string
	token string
	http  *http.Client
}

// ClientConfig configures a Client.
type ClientConfig struct {
	URL     string // base URL of the ops listener serving the admin API
	Token   string // the admin token (PURCHASESYNC_ADMIN_TOKEN)
	Timeout time.Duration
}

// DefaultClientConfig returns the defaults: a request may take a minute,
// since enabling waits for Shopify.
func DefaultClientConfig() ClientConfig {
	return ClientConfig{Timeout: 60 * time.Second}
}

// NewClient returns a client of the admin API at cfg.URL.
func NewClient(cfg ClientConfig) *Client {
	return &Client{base: strings.TrimSuffix(cfg.URL, "/"), token: cfg.Token, http: &http.Client{Timeout: cfg.Timeout}}
}

// APIError is an answer of the admin API other than 2xx: its HTTP status
// and the server's errorBody.
type APIError struct {
	Code  int
	Msg   string
	Field string // the input field at fault, if one is
}

func (e *APIError) Error() string {
	s := fmt.Sprintf("admin API: %s (HTTP %d)", e.Msg, e.Code)
	if e.Field != "" {
		s = fmt.Sprintf("admin API: field %s: %s (HTTP %d)", e.Field, strings.TrimPrefix(e.Msg, e.Field+": "), e.Code)
	}
	return s
}

// ErrNewSiteNeedsShop is Update's answer for a site that does not exist
// yet when the change sets no shop domain.
var ErrNewSiteNeedsShop = errors.New("a new site needs a shop domain")

// List returns every site.
func (c *Client) List(ctx context.Context) ([]byte, []schemas.Site, error) {
	var list SiteList
	raw, err := c.do(ctx, "GET", "/admin/v1/sites", nil, &list)
	return raw, list.Sites, err
}

// Get returns one site.
func (c *Client) Get(ctx context.Context, site string) ([]byte, schemas.Site, error) {
	return c.siteCall(ctx, "GET", sitePath(site), nil)
}

// SiteChange is a partial site record for Update: nil fields keep the
// stored values.
type SiteChange struct {
	ShopDomain      *string
	OrderKey        *string
	Grace           *string // a duration, "10m"
	PurchaseSyncing *bool
	CustomDomains   *[]string
}

// Update starts from the stored record, if any, applies change and writes
// the result back (read, change, write back), so that changing the grace
// keeps every other field. A new site needs change.ShopDomain
// (ErrNewSiteNeedsShop).
func (c *Client) Update(ctx context.Context, site string, change SiteChange) ([]byte, schemas.Site, error) {
	body := map[string]any{}
	var cur schemas.Site
	_, err := c.do(ctx, "GET", sitePath(site), nil, &cur)
	var ae *APIError
	switch {
	case err == nil:
		body["shop_domain"] = cur.ShopDomain
		body["order_key"] = cur.OrderKey
		body["purchase_syncing"] = cur.PurchaseSyncing
		body["grace"] = time.Duration(cur.Grace).String()
		if len(cur.CustomDomains) > 0 {
			body["custom_domains"] = cur.CustomDomains
		}
	case errors.As(err, &ae) && ae.Code == http.StatusNotFound:
		if change.ShopDomain == nil {
			return nil, schemas.Site{}, ErrNewSiteNeedsShop
		}
	default:
		return nil, schemas.Site{}, err
	}
	if change.ShopDomain != nil {
		body["shop_domain"] = *change.ShopDomain
	}
	if change.OrderKey != nil {
		body["order_key"] = *change.OrderKey
	}
	if change.Grace != nil {
		body["grace"] = *change.Grace
	}
	if change.PurchaseSyncing != nil {
		body["purchase_syncing"] = *change.PurchaseSyncing
	}
	if change.CustomDomains != nil {
		body["custom_domains"] = *change.CustomDomains
	}
	return c.siteCall(ctx, "PUT", sitePath(site), body)
}

// SetSyncing is the Purchase Syncing switch; force enables even though
// the order-key diagnosis contradicts the site's order_key.
func (c *Client) SetSyncing(ctx context.Context, site string, enabled, force bool) ([]byte, schemas.Site, error) {
	path := sitePath(site) + "/purchase-syncing"
	if force && enabled {
		path += "?force=true"
	}
	return c.siteCall(ctx, "POST", path, SyncingRequest{Enabled: &enabled})
}

// Delete removes a site; force deletes even while syncing is on.
func (c *Client) Delete(ctx context.Context, site string, force bool) error {
	path := sitePath(site)
	if force {
		path += "?force=true"
	}
	_, err := c.do(ctx, "DELETE", path, nil, nil)
	return err
}

// Diagnose returns a site's order-key diagnosis.
func (c *Client) Diagnose(ctx context.Context, site string) ([]byte, schemas.KeyModeDiagnosis, error) {
	var d schemas.KeyModeDiagnosis
	raw, err := c.do(ctx, "GET", sitePath(site)+"/diagnosis", nil, &d)
	return raw, d, err
}

// Doubles returns a site's suspected double registrations.
func (c *Client) Doubles(ctx context.Context, site string) ([]byte, []schemas.DoubleRegistration, error) {
	var out DoublesList
	raw, err := c.do(ctx, "GET", sitePath(site)+"/doubles", nil, &out)
	return raw, out.Doubles, err
}

// MarkDoubles marks a site's unmarked suspected double registrations, by
// whom and why, and returns them.
func (c *Client) MarkDoubles(ctx context.Context, site, by, note string) ([]byte, []schemas.DoubleRegistration, error) {
	var out DoublesList
	raw, err := c.do(ctx, "POST", sitePath(site)+"/doubles/mark", MarkRequest{By: by, Note: note}, &out)
	return raw, out.Doubles, err
}

func sitePath(site string) string { return "/admin/v1/sites/" + url.PathEscape(site) }

func (c *Client) siteCall(ctx context.Context, method, path string, body any) ([]byte, schemas.Site, error) {
	var s schemas.Site
	raw, err := c.do(ctx, method, path, body, &s)
	return raw, s, err
}

// do sends one request; out (may be nil) receives the JSON answer, and the
// raw answer is returned.
func (c *Client) do(ctx context.Context, method, path string, body, out any) ([]byte, error) {
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return nil, fmt.Errorf("cannot encode request: %w", err)
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, c.base+path, rd)
	if err != nil {
		return nil, fmt.Errorf("cannot build request (check -admin.url / PURCHASESYNC_ADMIN_URL): %w", err)
	}
	req.Header.Set("Authorization", "Bearer "+c.token)
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return nil, fmt.Errorf("cannot reach the admin API at %s (is `purchasesync run` up? set -admin.url / PURCHASESYNC_ADMIN_URL): %w", c.base, err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(resp.Body, 16<<20))
	if err != nil {
		return nil, fmt.Errorf("cannot read the admin API's answer: %w", err)
	}
	if resp.StatusCode >= 300 {
		var eb errorBody
		if json.Unmarshal(raw, &eb) != nil || eb.Error == "" {
			eb.Error = strings.TrimSpace(string(raw))
		}
		return nil, &APIError{Code: resp.StatusCode, Msg: eb.Error, Field: eb.Field}
	}
	if out != nil && len(raw) > 0 {
		if err := json.Unmarshal(raw, out); err != nil {
			return nil, fmt.Errorf("cannot decode the admin API's answer: %w", err)
		}
	}
	return raw, nil
}
