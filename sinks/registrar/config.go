package registrar

import (
	"fmt"
	"net/url"
	"time"

	"purchasesync/schemas"
)

// Config configures the registrar.
type Config struct {
	// URL is the registry's base URL (https://www.talkable.com); requests go
	// to URL + "/api/v2/origins".
	URL    string
	APIKey string // sent as a bearer token; never logged
	Topics schemas.Topics
	// Group stays purchasesync-registrar whatever the topic prefix (unlike
	// compliance's): a deployment with its own prefix that upgraded into a
	// new group would read its input again from the start and forward
	// (post) it all again.
	Group string
	// Via lists the registered_via values to forward.
	Via []string
	// ForwardTest also forwards Shopify test orders.
	ForwardTest bool
	// Concurrency is how many requests run at once.
	Concurrency int
	// Timeout bounds one request.
	Timeout time.Duration
	// MaxAttempts bounds the attempts for a retryable failure before the
	// purchase is dead-lettered.
	MaxAttempts  int
	RetryInitial time.Duration
	RetryMax     time.Duration
	// MaxRetryAfter caps how long a Retry-After answer can make it wait.
	MaxRetryAfter time.Duration
	// RememberKeys bounds the memory of forwarded keys.
	RememberKeys int
	// HealthInterval is how often the registrar checks that Kafka answers,
	// so that Ready follows an outage while it is idle.
	HealthInterval time.Duration
}

// DefaultConfig returns the defaults (URL empty: off).
func DefaultConfig() Config {
	return Config{
		Topics:         schemas.Topics{Prefix: schemas.DefaultTopicPrefix},
		Group:          "purchasesync-registrar",
		Via:            []string{schemas.ViaStorefront, schemas.ViaWebhook, schemas.ViaReconciliation},
		Concurrency:    4,
		Timeout:        10 * time.Second,
		MaxAttempts:    8,
		RetryInitial:   time.Second,
		RetryMax:       time.Minute,
		MaxRetryAfter:  5 * time.Minute,
		RememberKeys:   1_000_000,
		HealthInterval: 2 * time.Second,
	}
}

// Validate checks the configuration.
func (c Config) Validate() error {
	u, err := url.Parse(c.URL)
	switch {
	case c.URL == "" || err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "":
		return fmt.Errorf("invalid -registrar.url %q: want http(s)://host", c.URL)
	case c.APIKey == "":
		return fmt.Errorf("-registrar.apiKey (PURCHASESYNC_REGISTRAR_APIKEY) is required with -registrar.url")
	case c.Group == "":
		return fmt.Errorf("empty registrar consumer group")
	case c.Concurrency < 1 || c.MaxAttempts < 1 || c.RememberKeys < 2:
		return fmt.Errorf("registrar concurrency, attempts and remembered keys must be positive")
	case c.Timeout <= 0 || c.RetryInitial <= 0 || c.RetryMax < c.RetryInitial || c.MaxRetryAfter <= 0 || c.HealthInterval <= 0:
		return fmt.Errorf("registrar timeouts and backoff must be positive, with initial <= max")
	}
	return nil
}
