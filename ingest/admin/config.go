package admin

import (
	"errors"

	"purchasesync/schemas"
)

// Config configures the admin API.
type Config struct {
	// Token is the bearer token every request must carry. Empty disables
	// the API (every request gets 503 naming PURCHASESYNC_ADMIN_TOKEN).
	Token string
	// MaxBodyBytes caps request bodies.
	MaxBodyBytes int64
	// MinMatches is how many matched purchases make an order-key verdict
	// (schemas.DiagnoseKeyMode).
	MinMatches int
}

// DefaultConfig returns the defaults; the token stays empty (disabled).
func DefaultConfig() Config {
	return Config{MaxBodyBytes: 64 << 10, MinMatches: schemas.DefaultKeyModeMinMatches}
}

// Validate checks the configuration. An empty token is valid: it disables
// the API rather than stopping the process that serves metrics.
func (c Config) Validate() error {
	if c.MaxBodyBytes <= 0 {
		return errors.New("admin: max body bytes must be positive")
	}
	if c.MinMatches < 1 {
		return errors.New("admin: min matches must be positive (-keymode.minMatches)")
	}
	return nil
}
