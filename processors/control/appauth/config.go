package appauth

import (
	"errors"
	"fmt"
	"net/url"
	"strings"
	"time"

	"purchasesync/processors/control/adminapi"
	"purchasesync/schemas"
)

// DefaultOAuthURL is the template of Shopify's OAuth endpoints for a shop;
// /authorize and /access_token are appended. Tests point it at a fake.
const DefaultOAuthURL = "https://{shop}/admin/oauth"

// Paths of the app listener's routes (Handler.Mount).
const (
	PathStart         = "/auth/shopify"
	PathCallback      = "/auth/shopify/callback"
	PathTokenExchange = "/auth/shopify/token-exchange"
	// PathApp is where the callback sends the merchant: the app page, with
	// ?shop=...&host=... (mounted by the page's package, not this one).
	PathApp = "/app"
)

// Config configures the OAuth handlers.
type Config struct {
	// APIKey is the app's client id (-shopify.apiKey); not a secret.
	APIKey string
	// APISecrets are the app's client secrets (PURCHASESYNC_SHOPIFY_API_SECRET):
	// the first is sent to Shopify as client_secret; all of them verify
	// callback HMACs and session tokens (during a secret rotation Shopify
	// may sign with either).
	APISecrets []string
	// Scopes requested at install and re-authorization (-shopify.scopes).
	Scopes []string
	// AppBaseURL is the public https base URL of the app listener
	// (-app.baseURL): the callback is AppBaseURL + PathCallback, and it must
	// be listed among the app's allowed redirection URLs.
	AppBaseURL string
	// OAuthURL is the template of the shop's OAuth endpoints, with {shop}
	// (-shopify.oauthURL).
	OAuthURL string
	// WebhookURL is where APP_UNINSTALLED is subscribed at install (the
	// ingest's public URL + /webhooks/shopify); empty: not subscribed (an
	// app whose shopify.app.toml declares it needs none).
	WebhookURL string
	// StateTTL is how long an install's state (and its cookie) is valid.
	StateTTL time.Duration
	// MaxStates bounds the installs in flight; beyond it /auth/shopify
	// answers 503 (it is unauthenticated: the bound is the memory).
	MaxStates int
	// MaxClockSkew bounds how old (or how far in the future) the callback's
	// timestamp may be.
	MaxClockSkew time.Duration
	// HTTPTimeout bounds one call to Shopify's access_token endpoint.
	HTTPTimeout time.Duration
}

// DefaultConfig returns the defaults; APIKey, APISecrets and AppBaseURL
// have none.
func DefaultConfig() Config {
	return Config{
		Scopes:       []string{"read_orders"},
		OAuthURL:     DefaultOAuthURL,
		StateTTL:     10 * time.Minute,
		MaxStates:    10000,
		MaxClockSkew: 5 * time.Minute,
		HTTPTimeout:  15 * time.Second,
	}
}

// Validate checks the configuration; errors name the flag.
func (c Config) Validate() error {
	switch {
	case c.APIKey == "":
		return errors.New("no Shopify API key (client id): set -shopify.apiKey (PURCHASESYNC_SHOPIFY_APIKEY)")
	case len(c.APISecrets) == 0 || c.APISecrets[0] == "":
		return errors.New("no Shopify app secret for OAuth: set PURCHASESYNC_SHOPIFY_API_SECRET (or its _FILE)")
	case !adminapi.HasScope(c.Scopes, "read_orders"):
		return fmt.Errorf("-shopify.scopes (PURCHASESYNC_SHOPIFY_SCOPES) %q must include read_orders (Purchase Syncing needs it)", strings.Join(c.Scopes, ","))
	case !strings.Contains(c.OAuthURL, "{shop}"):
		return fmt.Errorf("invalid -shopify.oauthURL %q (PURCHASESYNC_SHOPIFY_OAUTHURL): it must contain {shop}", c.OAuthURL)
	case c.StateTTL <= 0 || c.MaxStates <= 0 || c.MaxClockSkew <= 0 || c.HTTPTimeout <= 0:
		return errors.New("appauth: state TTL, max states, clock skew and HTTP timeout must be positive")
	}
	if err := checkBaseURL(c.AppBaseURL); err != nil {
		return fmt.Errorf("invalid -app.baseURL (PURCHASESYNC_APP_BASEURL): %w", err)
	}
	return nil
}

func checkBaseURL(s string) error {
	u, err := url.Parse(s)
	switch {
	case s == "":
		return errors.New("empty: the public https URL of the app listener is required for OAuth")
	case err != nil || u.Host == "" || (u.Scheme != "https" && u.Scheme != "http"):
		return errors.New("want an absolute URL such as https://app.example.com")
	case u.RawQuery != "" || u.Fragment != "":
		return errors.New("a base URL has no query or fragment")
	}
	return nil
}

// StoreConfig configures the token store.
type StoreConfig struct {
	Topics schemas.Topics // names shopify.tokens.v1
	// ReadyTimeout: how long Run may take to load the topic before it logs
	// an error (once); it keeps trying.
	ReadyTimeout time.Duration
	// HealthInterval is how often Kafka is probed while idle.
	HealthInterval time.Duration
}

// DefaultStoreConfig returns the defaults.
func DefaultStoreConfig() StoreConfig {
	return StoreConfig{Topics: schemas.Topics{Prefix: schemas.DefaultTopicPrefix}, ReadyTimeout: time.Minute, HealthInterval: 2 * time.Second}
}

func (c StoreConfig) topic() string { return c.Topics.Name(schemas.TopicShopifyTokens) }

// Validate checks the configuration.
func (c StoreConfig) Validate() error {
	if c.ReadyTimeout <= 0 || c.HealthInterval <= 0 {
		return errors.New("appauth: token store needs positive timeouts")
	}
	return nil
}

// UninstallConfig configures the uninstall processor.
type UninstallConfig struct {
	Topics schemas.Topics // names shopify.app.v1
	Group  string         // consumer group; empty: Topics.Group("appuninstall")
	// A failed uninstall (Kafka away) is retried after RetryInitial,
	// doubling up to RetryMax, until it works.
	RetryInitial, RetryMax time.Duration
	HealthInterval         time.Duration
}

// DefaultUninstallConfig returns the defaults.
func DefaultUninstallConfig() UninstallConfig {
	return UninstallConfig{Topics: schemas.Topics{Prefix: schemas.DefaultTopicPrefix}, RetryInitial: time.Second, RetryMax: time.Minute, HealthInterval: 2 * time.Second}
}

func (c UninstallConfig) topic() string { return c.Topics.Name(schemas.TopicShopifyApp) }

func (c UninstallConfig) group() string {
	if c.Group != "" {
		return c.Group
	}
	return c.Topics.Group("appuninstall")
}

// Validate checks the configuration.
func (c UninstallConfig) Validate() error {
	if c.RetryInitial <= 0 || c.RetryMax < c.RetryInitial || c.HealthInterval <= 0 {
		return errors.New("appauth: the uninstall processor needs positive retry intervals")
	}
	return nil
}
