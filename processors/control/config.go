package control

import (
	"errors"
	"fmt"
	"net/url"
	"strings"
	"time"

	"purchasesync/schemas"
)

// WebhookPath is where ingest receives Shopify webhooks (DESIGN §6).
const WebhookPath = "/webhooks/shopify"

// Config configures the control plane.
type Config struct {
	// PublicBaseURL is the base URL Shopify reaches ingest at; the callback
	// is PublicBaseURL + WebhookPath. Empty: Enable and the watchdog refuse,
	// naming -public.baseURL.
	PublicBaseURL string
	// Topics names shopify.orders.v1 (followed, and where reconciled
	// orders go) and shopify.order_ids.v1: a reconciled order of a site not
	// keyed by order id gets its index record there too, as ingest gives a
	// webhook's, so that its refunds find it.
	Topics schemas.Topics

	// WatchdogInterval: how often subscriptions are verified; 0 disables.
	WatchdogInterval time.Duration
	// ReconcileInterval: how often orders are reconciled; 0 disables the
	// periodic passes (watchdog-triggered passes still run).
	ReconcileInterval time.Duration
	// ReconcileWindow: how far back a periodic pass looks.
	ReconcileWindow time.Duration
	// ReconcileMinAge: orders younger than this are left to their webhook,
	// which may still be on its way.
	ReconcileMinAge time.Duration
	// MaxLookback caps how far back any pass (including one after a
	// subscription gap) looks, and how much of shopify.orders.v1 is
	// followed to know what the pipeline saw. Without read_all_orders
	// Shopify shows only 60 days anyway.
	MaxLookback time.Duration
	// PageSize is orders per listing call. A listing asks only for ids,
	// names and numbers (one cost point per order); full orders are fetched
	// one by one, and only for orders the pipeline never saw, LineItems
	// line items per call (about 17 + 6 × LineItems points).
	PageSize  int
	LineItems int

	// A reconciliation pass triggered by a subscription gap that fails
	// (Kafka or Shopify away) is retried after RetryInitial, doubling up
	// to RetryMax, until it works: the periodic passes do not look back
	// as far.
	RetryInitial time.Duration
	RetryMax     time.Duration
	// HealthInterval is how often the follower of shopify.orders.v1 checks
	// that Kafka answers, so that Ready follows an outage while it is idle.
	HealthInterval time.Duration
}

// DefaultConfig returns the defaults.
func DefaultConfig() Config {
	return Config{
		Topics:            schemas.Topics{Prefix: schemas.DefaultTopicPrefix},
		WatchdogInterval:  10 * time.Minute,
		ReconcileInterval: 15 * time.Minute,
		ReconcileWindow:   6 * time.Hour,
		ReconcileMinAge:   15 * time.Minute,
		MaxLookback:       48 * time.Hour,
		PageSize:          250,
		LineItems:         50,
		RetryInitial:      5 * time.Second,
		RetryMax:          5 * time.Minute,
		HealthInterval:    2 * time.Second,
	}
}

// CallbackURL is the URL webhook subscriptions point at ("" if unset).
func (c Config) CallbackURL() string {
	if c.PublicBaseURL == "" {
		return ""
	}
	return strings.TrimSuffix(c.PublicBaseURL, "/") + WebhookPath
}

// Validate checks the configuration.
func (c Config) Validate() error {
	if c.PublicBaseURL != "" {
		u, err := url.Parse(c.PublicBaseURL)
		if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
			return fmt.Errorf("invalid public base URL %q (-public.baseURL / PURCHASESYNC_PUBLIC_BASEURL): want https://host[/prefix]", c.PublicBaseURL)
		}
	}
	switch {
	case c.WatchdogInterval < 0 || c.ReconcileInterval < 0:
		return errors.New("control: intervals must be 0 (off) or positive (-watchdog.interval, -reconcile.interval)")
	case c.ReconcileWindow <= c.ReconcileMinAge:
		return fmt.Errorf("control: -reconcile.window (%s) must exceed -reconcile.minAge (%s)", c.ReconcileWindow, c.ReconcileMinAge)
	case c.MaxLookback < c.ReconcileWindow:
		return fmt.Errorf("control: -reconcile.maxLookback (%s) must be at least -reconcile.window (%s)", c.MaxLookback, c.ReconcileWindow)
	case c.PageSize <= 0 || c.PageSize > 250 || c.LineItems <= 0 || c.LineItems > 250:
		return errors.New("control: page size and line items must be in 1..250")
	case c.RetryInitial <= 0 || c.RetryMax < c.RetryInitial || c.HealthInterval <= 0:
		return errors.New("control: retry backoff and health interval must be positive, with initial <= max")
	}
	return nil
}
