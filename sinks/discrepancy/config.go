package discrepancy

import (
	"fmt"
	"net/url"
	"time"

	"purchasesync/schemas"
)

// Config configures the notifier.
type Config struct {
	// URL is the incoming-webhook URL (Slack or compatible).
	URL    string
	Topics schemas.Topics
	// Group stays purchasesync-notifier whatever the topic prefix (unlike
	// compliance's): a deployment with its own prefix that upgraded into a
	// new group would read its input again from the start and forward
	// (post) it all again.
	Group string
	// Interval is the shortest time between two messages about one site.
	Interval time.Duration
	// Examples is how many discrepancies a message shows in full.
	Examples int
	// Attempts bounds the posts of one digest per interval.
	Attempts     int
	Timeout      time.Duration
	RetryInitial time.Duration
	// IncludeTest also reports discrepancies of test orders.
	IncludeTest bool
	// HealthInterval is how often the notifier checks that Kafka answers,
	// so that Ready follows an outage while it is idle.
	HealthInterval time.Duration
}

// DefaultConfig returns the defaults (URL empty: off).
func DefaultConfig() Config {
	return Config{
		Topics:         schemas.Topics{Prefix: schemas.DefaultTopicPrefix},
		Group:          "purchasesync-notifier",
		Interval:       15 * time.Minute,
		Examples:       3,
		Attempts:       3,
		Timeout:        10 * time.Second,
		RetryInitial:   time.Second,
		HealthInterval: 2 * time.Second,
	}
}

// Validate checks the configuration.
func (c Config) Validate() error {
	u, err := url.Parse(c.URL)
	switch {
	case c.URL == "" || err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "":
		return fmt.Errorf("invalid -notifier.url: want http(s)://host/…")
	case c.Group == "":
		return fmt.Errorf("empty notifier consumer group")
	case c.Interval < time.Second:
		return fmt.Errorf("-notifier.interval must be at least 1s, got %s", c.Interval)
	case c.Examples < 0 || c.Attempts < 1 || c.Timeout <= 0 || c.RetryInitial <= 0 || c.HealthInterval <= 0:
		return fmt.Errorf("notifier examples, attempts, timeout and backoff must be positive")
	}
	return nil
}
