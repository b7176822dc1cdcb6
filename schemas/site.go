package schemas

import (
	"encoding/json"
	"fmt"
	"regexp"
	"strings"
	"time"
)

// OrderKey says which Shopify order field a site's storefront JavaScript
// sends as order_number (DESIGN §1).
type OrderKey string

// The order_key modes.
const (
	OrderKeyID     OrderKey = "order_id"     // Shopify's id, as a decimal string (default)
	OrderKeyNumber OrderKey = "order_number" // Shopify's order_number; a storefront '#' is stripped
	OrderKeyName   OrderKey = "order_name"   // Shopify's name ("#1001"), matched exactly after trimming
)

// Valid reports whether k is one of the known modes.
func (k OrderKey) Valid() bool {
	return k == OrderKeyID || k == OrderKeyNumber || k == OrderKeyName
}

// DefaultGrace is how long a webhook-only purchase is held for its storefront
// event before it is registered from the webhook.
const DefaultGrace = 10 * time.Minute

var shopDomainRE = regexp.MustCompile(`^[a-z0-9][a-z0-9-]*\.myshopify\.com$`)

// ValidSiteSlug reports whether s is a well-formed site slug: 1 to 63 of
// [a-z0-9-], not starting with '-'. It is checked on every storefront
// request and every purchase the sink loads, so it is a loop, not a regexp.
func ValidSiteSlug(s string) bool {
	if len(s) == 0 || len(s) > 63 || s[0] == '-' {
		return false
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-') {
			return false
		}
	}
	return true
}

// Duration is a time.Duration that reads and writes JSON as "10m".
type Duration time.Duration

// MarshalJSON writes the duration as a Go duration string.
func (d Duration) MarshalJSON() ([]byte, error) { return json.Marshal(time.Duration(d).String()) }

// UnmarshalJSON accepts a Go duration string ("90s", "10m").
func (d *Duration) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		return fmt.Errorf("duration must be a string such as \"10m\": %w", err)
	}
	v, err := time.ParseDuration(s)
	if err != nil {
		return fmt.Errorf("invalid duration %q: %w", s, err)
	}
	*d = Duration(v)
	return nil
}

// Site is one record of the compacted site registry sites.v1 (key: Site).
// Secrets never go here: HMAC secrets and access tokens come from flags/env.
type Site struct {
	Site                  string   `json:"site"`
	ShopDomain            string   `json:"shop_domain"`
	OrderKey              OrderKey `json:"order_key"`
	PurchaseSyncing       bool     `json:"purchase_syncing"`
	Grace                 Duration `json:"grace"`
	WebhookSubscriptionID string   `json:"webhook_subscription_id,omitempty"`
	// CustomDomains are storefront origins (besides the shop domain) allowed
	// to send storefront events from the browser (CORS).
	CustomDomains []string  `json:"custom_domains,omitempty"`
	UpdatedAt     time.Time `json:"updated_at"`
}

// FieldError is a validation error that names the offending field, so HTTP
// handlers can answer {"error": ..., "field": ...}.
type FieldError struct {
	Field  string
	Reason string
}

func (e *FieldError) Error() string { return e.Field + ": " + e.Reason }

// Normalize fills defaults (order_key, grace) and lower-cases the domains.
func (s *Site) Normalize() {
	s.ShopDomain = strings.ToLower(strings.TrimSpace(s.ShopDomain))
	for i, d := range s.CustomDomains {
		s.CustomDomains[i] = strings.ToLower(strings.TrimSpace(d))
	}
	if s.OrderKey == "" {
		s.OrderKey = OrderKeyID
	}
	if s.Grace == 0 {
		s.Grace = Duration(DefaultGrace)
	}
}

// Validate checks a normalized site record.
func (s *Site) Validate() error {
	switch {
	case !ValidSiteSlug(s.Site):
		return &FieldError{"site", "must match [a-z0-9][a-z0-9-]{0,62}"}
	case !shopDomainRE.MatchString(s.ShopDomain):
		return &FieldError{"shop_domain", "must be a name.myshopify.com domain"}
	case !s.OrderKey.Valid():
		return &FieldError{"order_key", "must be one of order_id, order_number, order_name"}
	case s.Grace < 0 || time.Duration(s.Grace) > 7*24*time.Hour:
		return &FieldError{"grace", "must be between 0s and 168h"}
	case len(s.CustomDomains) > maxCustomDomains:
		return &FieldError{"custom_domains", fmt.Sprintf("at most %d domains", maxCustomDomains)}
	}
	// Custom domains decide which pages may post storefront events (CORS),
	// so a record read from sites.v1 is held to the admin API's rules: a
	// host, or an http(s) origin, never a wildcard or a path.
	for _, d := range s.CustomDomains {
		if !ValidCustomDomain(d) {
			return &FieldError{"custom_domains", fmt.Sprintf("%q: want a host such as shop.example.com or an origin such as https://shop.example.com", d)}
		}
	}
	return nil
}

const maxCustomDomains = 32

var hostRE = regexp.MustCompile(`^([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?(:[0-9]{1,5})?$`)

// ValidCustomDomain reports whether d (lower-case) is a host[:port] or an
// http(s) origin of one, with at most a trailing slash.
func ValidCustomDomain(d string) bool {
	for _, scheme := range []string{"https://", "http://"} {
		if rest, ok := strings.CutPrefix(d, scheme); ok {
			d = strings.TrimSuffix(rest, "/")
			break
		}
	}
	return len(d) <= 253 && hostRE.MatchString(d)
}

// MarshalSite encodes a site record for sites.v1.
func MarshalSite(s Site) ([]byte, error) { return json.Marshal(s) }

// UnmarshalSite decodes, normalizes and validates a sites.v1 value.
func UnmarshalSite(b []byte) (Site, error) {
	var s Site
	if err := json.Unmarshal(b, &s); err != nil {
		return Site{}, fmt.Errorf("cannot decode site record: %w", err)
	}
	s.Normalize()
	if err := s.Validate(); err != nil {
		return Site{}, fmt.Errorf("invalid site record: %w", err)
	}
	return s, nil
}
