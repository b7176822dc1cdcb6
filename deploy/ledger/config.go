package ledger

import (
	"errors"
	"fmt"
	"io"
	"net/url"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"purchasesync/schemas"
	chsink "purchasesync/sinks/clickhouse"
)

// Config is one ledger check.
type Config struct {
	// Targets are the ingest base URLs (http://host:port); requests go
	// round robin, as through a load balancer, and a webhook's retry goes
	// to the next one.
	Targets []string
	// AdminURL is the control plane's ops listener (its admin API creates
	// the check's sites); AdminToken its bearer token.
	AdminURL, AdminToken string
	// Secret is the Shopify app secret the ingest verifies webhooks with.
	Secret string

	Orders int     // how many orders
	Rate   float64 // orders per second
	// RunID names the check's three sites, ledger-<RunID>-{id,number,name},
	// one per order_key mode, so runs never share keys.
	RunID string
	Seed  uint64
	// Grace is the grace of the sites the check creates (DESIGN §3 rule 3).
	Grace time.Duration
	// WebhookWait is the join's -join.webhookWait. When set, the check waits
	// for it and expects a webhook_missing discrepancy for each purchase
	// registered from the storefront alone; 0 leaves webhook_missing
	// unchecked (a production join waits 24 h).
	WebhookWait time.Duration
	// Redeliver: each webhook is delivered up to this many times with its
	// X-Shopify-Webhook-Id, as Shopify redelivers what it did not see
	// acknowledged in time.
	Redeliver int
	// RetryFor is how long an unacknowledged webhook is retried (Shopify
	// retries for hours; a check has to end).
	RetryFor time.Duration
	// Timeout is each request's timeout (Shopify's is 5 s).
	Timeout time.Duration
	// Settle bounds the wait for ClickHouse to hold every outcome.
	Settle time.Duration
	// SourceAddrs sends each shopper's storefront events from its own
	// 127.x.y.z address, so per-IP rate limits see real shoppers; loopback
	// targets only.
	SourceAddrs bool

	// ClickHouse is where the outcome is read; Database its database.
	ClickHouse chsink.Config
	// Kafka, when set, also counts the version-1 records of purchases.v1
	// per order (read_committed): a second registration that ClickHouse's
	// ReplacingMergeTree would fold away is still a double there.
	Kafka  []kgo.Opt
	Topics schemas.Topics

	// SentFile, when set, is created once every order has been sent (the
	// chaos run stops injecting faults then).
	SentFile string
	// WaitFor, when set, is a file the check waits for before it judges:
	// the chaos run creates it once its last fault is over, so that a
	// pipeline still recovering is not judged too early.
	WaitFor string
	// MaxRefused is the fraction of storefront events that may be refused
	// (503 or no answer, not landed) before the run is an error: each such
	// refusal is honest, but a pipeline that refuses many shoppers is not
	// working.
	MaxRefused float64
	// Progress gets the progress bar; Out the report.
	Progress, Out io.Writer
	// Terminal redraws the progress bar in place; otherwise a line is
	// printed every few seconds (CI logs).
	Terminal bool
}

// DefaultConfig is a check of 1,000 orders at 50 per second against the
// local defaults of DESIGN §6.
func DefaultConfig() Config {
	return Config{
		Targets:    []string{"http://127.0.0.1:8080"},
		AdminURL:   "http://127.0.0.1:9464",
		Orders:     1000,
		Rate:       50,
		Seed:       1,
		Grace:      6 * time.Second,
		Redeliver:  3,
		MaxRefused: 0.05,
		RetryFor:   10 * time.Minute,
		Timeout:    5 * time.Second,
		Settle:     5 * time.Minute,
		Topics:     schemas.Topics{Prefix: schemas.DefaultTopicPrefix},
	}
}

// rules are the settings the ground truth depends on.
func (c Config) rules() rules {
	return rules{grace: c.Grace, webhookWait: c.WebhookWait, ownAddrs: c.SourceAddrs}
}

// Validate names the flag that fixes a mistake.
func (c Config) Validate() error {
	if len(c.Targets) == 0 {
		return errors.New("ledger: no ingest to send to (-target)")
	}
	for _, t := range append([]string{c.AdminURL}, c.Targets...) {
		u, err := url.Parse(t)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return fmt.Errorf("ledger: %q is not an http(s)://host:port URL (-target, -admin.url)", t)
		}
	}
	switch {
	case c.AdminToken == "":
		return errors.New("ledger: the admin API needs its token (PURCHASESYNC_ADMIN_TOKEN or _FILE)")
	case c.Secret == "":
		return errors.New("ledger: webhooks need the Shopify app secret (PURCHASESYNC_SHOPIFY_API_SECRET or _FILE, or -shopify.apiSecret)")
	case c.Rate <= 0:
		return errors.New("ledger: -rate must be positive")
	case c.Grace < 2*time.Second:
		// Stamps are kept to the second in raw_events: a shorter grace
		// would leave most close orders ambiguous.
		return errors.New("ledger: -grace must be at least 2s")
	case c.Orders < len(scenarios)*len(modes):
		return fmt.Errorf("ledger: -orders must be at least %d, one of each scenario on each order_key mode", len(scenarios)*len(modes))
	case c.Redeliver < 1:
		return errors.New("ledger: -redeliver must be at least 1")
	case c.Timeout <= 0 || c.RetryFor <= 0 || c.Settle <= 0:
		return errors.New("ledger: -timeout, -retryFor and -settle must be positive")
	case c.MaxRefused < 0 || c.MaxRefused > 1:
		return errors.New("ledger: -maxRefused is a fraction between 0 and 1")
	case !schemas.ValidSiteSlug(siteName(c.RunID, schemas.OrderKeyNumber)):
		return fmt.Errorf("ledger: -runID %q does not make a site slug", c.RunID)
	case len(c.ClickHouse.Addr) == 0:
		return errors.New("ledger: the outcome is read from ClickHouse (-clickhouse.addr)")
	}
	return nil
}
