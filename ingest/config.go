package ingest

import (
	"errors"
	"fmt"
	"net/netip"
	"time"

	"purchasesync/schemas"
)

// MaxRecordBodyBytes is the largest body the ingest accepts: Kafka's
// default record limit (1,000,012 bytes with the producer's default
// max.message.bytes) less room for key and headers. A larger body would be
// refused by the producer on every retry — a 503 loop that loses the order —
// so it gets an honest 413 instead.
const MaxRecordBodyBytes = 960 << 10

// MaxStorefrontBodyLimit caps -ingest.maxStorefrontBodyBytes. The join
// keeps up to ~1.2× a storefront body per key (purchase and facts) and
// writes it to join.state.v1 and purchases.v1, both limited to one Kafka
// record: 256 KiB keeps those records far below it, whatever the event.
const MaxStorefrontBodyLimit = 256 << 10

// Config configures the public HTTP ingest. cmd/purchasesync fills it from
// flags (named in each field's comment) and PURCHASESYNC_* variables.
type Config struct {
	// Addr is the public listen address (-ingest.addr). Ignored when
	// Deps.Listener is set.
	Addr string
	// Topics names the raw topics (prefix from -kafka.topicPrefix).
	Topics schemas.Topics
	// Secrets are the public Shopify app's secrets, which may sign webhooks
	// of every shop (-shopify.apiSecret, comma-separated for rotation).
	Secrets [][]byte
	// ShopSecrets are custom apps' secrets by shop domain
	// (-shopify.apiSecret entries "shop.myshopify.com=secret"): each
	// verifies only its shop's webhooks, because the merchant who owns a
	// custom app knows its secret. At least one of Secrets and ShopSecrets
	// is required.
	ShopSecrets map[string][][]byte

	// MaxWebhookBodyBytes bounds a webhook body (-ingest.maxWebhookBodyBytes);
	// larger ones get 413. Orders with hundreds of line items stay well below.
	MaxWebhookBodyBytes int
	// MaxStorefrontBodyBytes bounds a storefront event
	// (-ingest.maxStorefrontBodyBytes); larger ones get 413.
	MaxStorefrontBodyBytes int
	// MaxHeaderBytes bounds the request line and headers
	// (-ingest.maxHeaderBytes); larger ones get 431.
	MaxHeaderBytes int
	// ReadTimeout bounds reading one whole request, body included
	// (-ingest.readTimeout): a client that never finishes its body gets 408
	// and its connection closed, so it cannot hold a worker forever.
	ReadTimeout time.Duration
	// WriteTimeout bounds writing a response (-ingest.writeTimeout).
	WriteTimeout time.Duration
	// IdleTimeout closes keep-alive connections idle this long
	// (-ingest.idleTimeout).
	IdleTimeout time.Duration
	// MaxConns bounds concurrent connections (-ingest.maxConns). Past 7/8
	// of it the longest-idle keep-alive connections are closed to make
	// room (conns.go).
	MaxConns int
	// MaxConnsPerIP bounds connections from one client, an IPv4 address or
	// an IPv6 /64 (-ingest.maxConnsPerIP); 0 = unlimited. Behind a load
	// balancer every connection comes from its address: raise it there,
	// and cap connections per client at the balancer.
	MaxConnsPerIP int

	// ProduceTimeout bounds the wait for Kafka's acknowledgement
	// (-ingest.produceTimeout). It must stay well below Shopify's 5 s
	// delivery timeout, so that Shopify sees our 503 and retries instead of
	// timing out.
	ProduceTimeout time.Duration
	// MaxInflightProduces caps records handed to Kafka and not yet
	// acknowledged (-ingest.maxInflightProduces); it bounds memory when
	// Kafka is slow (at most this many bodies are held).
	MaxInflightProduces int
	// MaxQueueDuration is how long a request waits for an in-flight slot
	// before it gets 503 (-ingest.maxQueueDuration).
	MaxQueueDuration time.Duration
	// RetryAfter is sent with 503 (-ingest.retryAfter).
	RetryAfter time.Duration
	// ShutdownTimeout bounds graceful shutdown: finishing in-flight requests
	// and flushing the producer (-ingest.shutdownTimeout).
	ShutdownTimeout time.Duration
	// ReadyCheckInterval is how often Kafka is pinged for /readyz.
	ReadyCheckInterval time.Duration

	// TrustedProxies are the networks whose X-Forwarded-For is believed
	// (-ingest.trustedProxies); from anyone else it is ignored, so clients
	// cannot pick the IP their rate limit is charged to.
	TrustedProxies []netip.Prefix
	// IPRate and IPBurst are the storefront token bucket per client IP
	// (-ingest.ipRate, -ingest.ipBurst); IPRate 0 disables it.
	IPRate  float64
	IPBurst int
	// SiteRate and SiteBurst are the storefront token bucket per site
	// (-ingest.siteRate, -ingest.siteBurst); SiteRate 0 disables it. Over
	// it, only clients that have spent more than two events of their own
	// burst are refused, so a few flooding addresses shed their own
	// traffic instead of locking the site's shoppers out. IPv6 clients are
	// also limited per /48, at 16 times the per-client rate and burst.
	SiteRate  float64
	SiteBurst int
}

// DefaultConfig returns the defaults; Secrets must still be set.
func DefaultConfig() Config {
	return Config{
		Addr:                   "127.0.0.1:8080",
		Topics:                 schemas.Topics{Prefix: schemas.DefaultTopicPrefix},
		MaxWebhookBodyBytes:    MaxRecordBodyBytes,
		MaxStorefrontBodyBytes: 64 << 10,
		MaxHeaderBytes:         16 << 10,
		ReadTimeout:            5 * time.Second,
		WriteTimeout:           5 * time.Second,
		IdleTimeout:            60 * time.Second,
		MaxConns:               16384,
		MaxConnsPerIP:          1024,
		ProduceTimeout:         2 * time.Second,
		MaxInflightProduces:    2048,
		MaxQueueDuration:       500 * time.Millisecond,
		RetryAfter:             2 * time.Second,
		ShutdownTimeout:        10 * time.Second,
		ReadyCheckInterval:     2 * time.Second,
		TrustedProxies:         nil,
		// A shopper registers one purchase at a time; a burst of 20 leaves
		// room for a shared office or mobile-carrier NAT.
		IPRate:  5,
		IPBurst: 20,
		// A flash sale of a big store is hundreds of orders a second.
		SiteRate:  1000,
		SiteBurst: 2000,
	}
}

// Validate checks the configuration and names the flag that fixes a
// problem.
func (c Config) Validate() error {
	var errs []error
	bad := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }
	if len(c.Secrets) == 0 && len(c.ShopSecrets) == 0 {
		bad("no Shopify app secret: set -shopify.apiSecret or PURCHASESYNC_SHOPIFY_API_SECRET")
	}
	for shop, keys := range c.ShopSecrets {
		for _, k := range keys {
			if len(k) == 0 {
				bad("the Shopify app secret for %s is empty (-shopify.apiSecret)", shop)
			}
		}
	}
	for i, s := range c.Secrets {
		if len(s) == 0 {
			bad("Shopify app secret %d is empty (-shopify.apiSecret)", i+1)
		}
	}
	if c.MaxWebhookBodyBytes < 1<<10 || c.MaxWebhookBodyBytes > MaxRecordBodyBytes {
		bad("-ingest.maxWebhookBodyBytes must be between 1024 and %d (what one Kafka record can carry), got %d", MaxRecordBodyBytes, c.MaxWebhookBodyBytes)
	}
	if c.MaxStorefrontBodyBytes < 1<<10 || c.MaxStorefrontBodyBytes > MaxStorefrontBodyLimit {
		bad("-ingest.maxStorefrontBodyBytes must be between 1024 and %d (what the join's state records can carry), got %d", MaxStorefrontBodyLimit, c.MaxStorefrontBodyBytes)
	}
	if c.MaxHeaderBytes < 4<<10 {
		bad("-ingest.maxHeaderBytes must be at least 4096, got %d", c.MaxHeaderBytes)
	}
	for name, d := range map[string]time.Duration{
		"-ingest.readTimeout": c.ReadTimeout, "-ingest.writeTimeout": c.WriteTimeout,
		"-ingest.idleTimeout": c.IdleTimeout, "-ingest.produceTimeout": c.ProduceTimeout,
		"-ingest.maxQueueDuration": c.MaxQueueDuration, "-ingest.shutdownTimeout": c.ShutdownTimeout,
		"ReadyCheckInterval": c.ReadyCheckInterval,
	} {
		if d <= 0 {
			bad("%s must be positive, got %s", name, d)
		}
	}
	if c.ProduceTimeout >= 5*time.Second {
		bad("-ingest.produceTimeout must stay below Shopify's 5s delivery timeout, got %s", c.ProduceTimeout)
	}
	if c.RetryAfter < time.Second {
		bad("-ingest.retryAfter must be at least 1s (Retry-After has whole seconds), got %s", c.RetryAfter)
	}
	if c.MaxConns < 1 {
		bad("-ingest.maxConns must be at least 1, got %d", c.MaxConns)
	}
	if c.MaxConnsPerIP < 0 {
		bad("-ingest.maxConnsPerIP must not be negative, got %d", c.MaxConnsPerIP)
	}
	if c.MaxInflightProduces < 1 {
		bad("-ingest.maxInflightProduces must be at least 1, got %d", c.MaxInflightProduces)
	}
	if c.IPRate < 0 || (c.IPRate > 0 && c.IPBurst < 1) {
		bad("-ingest.ipRate must be >= 0 and -ingest.ipBurst >= 1 when it is set")
	}
	if c.SiteRate < 0 || (c.SiteRate > 0 && c.SiteBurst < 1) {
		bad("-ingest.siteRate must be >= 0 and -ingest.siteBurst >= 1 when it is set")
	}
	if len(errs) > 0 {
		return fmt.Errorf("invalid ingest configuration: %w", errors.Join(errs...))
	}
	return nil
}

// ParseTrustedProxies parses a comma-separated list of addresses and CIDR
// prefixes ("10.0.0.0/8,127.0.0.1").
func ParseTrustedProxies(list []string) ([]netip.Prefix, error) {
	var out []netip.Prefix
	for _, s := range list {
		if p, err := netip.ParsePrefix(s); err == nil {
			out = append(out, p.Masked())
			continue
		}
		a, err := netip.ParseAddr(s)
		if err != nil {
			return nil, fmt.Errorf("cannot parse trusted proxy %q (-ingest.trustedProxies): want an address or a CIDR prefix", s)
		}
		a = a.Unmap()
		out = append(out, netip.PrefixFrom(a, a.BitLen()))
	}
	return out, nil
}
