package adminapi

import (
	"errors"
	"fmt"
	"regexp"
	"strings"
	"time"
)

// DefaultAPIVersion is the Admin API version pinned by default. Shopify
// supports a stable version for at least 12 months; bump it deliberately.
const DefaultAPIVersion = "2025-10"

// DefaultURL is the endpoint template; {shop} and {version} are replaced.
const DefaultURL = "https://{shop}/admin/api/{version}/graphql.json"

// Config configures a Client.
type Config struct {
	APIVersion string
	// URL is the GraphQL endpoint template ({shop}, {version}); tests point
	// it at a fake.
	URL string
	// Timeout bounds one HTTP request.
	Timeout time.Duration
	// MaxAttempts bounds tries on network errors, 5xx and 429.
	MaxAttempts int
	MinBackoff  time.Duration
	MaxBackoff  time.Duration
	// MaxThrottleWait bounds the total time one call spends waiting for the
	// cost bucket to refill.
	MaxThrottleWait time.Duration
}

// DefaultConfig returns the defaults.
func DefaultConfig() Config {
	return Config{
		APIVersion:      DefaultAPIVersion,
		URL:             DefaultURL,
		Timeout:         30 * time.Second,
		MaxAttempts:     5,
		MinBackoff:      500 * time.Millisecond,
		MaxBackoff:      20 * time.Second,
		MaxThrottleWait: 2 * time.Minute,
	}
}

var versionRE = regexp.MustCompile(`^(\d{4}-(01|04|07|10)|unstable)$`)

// Validate checks the configuration.
func (c Config) Validate() error {
	switch {
	case !versionRE.MatchString(c.APIVersion):
		return fmt.Errorf("invalid Shopify API version %q (-shopify.apiVersion): want YYYY-MM with a quarter month, e.g. %s", c.APIVersion, DefaultAPIVersion)
	case !strings.Contains(c.URL, "{shop}"):
		return fmt.Errorf("invalid Shopify Admin URL template %q (-shopify.adminURL): it must contain {shop} (and usually {version})", c.URL)
	case c.Timeout <= 0 || c.MaxAttempts <= 0 || c.MinBackoff <= 0 || c.MaxBackoff < c.MinBackoff || c.MaxThrottleWait < 0:
		return errors.New("adminapi: timeouts, attempts and backoffs must be positive")
	}
	return nil
}
