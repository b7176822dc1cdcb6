package page

import (
	"errors"
	"time"

	"purchasesync/schemas"
)

// Config configures the Shopify Integration page.
type Config struct {
	// APIKey is the app's API key (client id): the session token's
	// audience.
	APIKey string
	// APISecret signs Shopify's session tokens and our page tokens.
	APISecret string
	// PageTokenTTL bounds how long a rendered page's forms stay valid
	// (its page token is both the login and the CSRF token of its forms).
	PageTokenTTL time.Duration
	// Discrepancies is how many of the latest discrepancies the page shows.
	Discrepancies int
	// MinMatches is the order-key verdict's threshold
	// (schemas.DiagnoseKeyMode).
	MinMatches int
	// ShopifyTimeout bounds the Shopify calls one page view makes.
	ShopifyTimeout time.Duration
}

// DefaultConfig returns the defaults; APIKey and APISecret stay empty.
func DefaultConfig() Config {
	return Config{PageTokenTTL: time.Hour, Discrepancies: 10, MinMatches: schemas.DefaultKeyModeMinMatches, ShopifyTimeout: 10 * time.Second}
}

// Validate checks the configuration.
func (c Config) Validate() error {
	switch {
	case c.APIKey == "":
		return errors.New("page: the app's API key is empty (-shopify.apiKey)")
	case c.APISecret == "":
		return errors.New("page: the app's API secret is empty (PURCHASESYNC_SHOPIFY_API_SECRET)")
	case c.PageTokenTTL < time.Minute:
		return errors.New("page: page token lifetime must be at least 1m")
	case c.Discrepancies < 1 || c.MinMatches < 1 || c.ShopifyTimeout <= 0:
		return errors.New("page: discrepancies, min matches and Shopify timeout must be positive")
	}
	return nil
}
