package main

import (
	"context"
	"fmt"
	"io"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"purchasesync/ingest"
	"purchasesync/ingest/shopify"
)

// secretEnv is the variable DESIGN §6 names for the Shopify app secret(s).
// The generic mapping of "shopify.apiSecret" would give
// PURCHASESYNC_SHOPIFY_APISECRET, so the flag names its variable (and
// PURCHASESYNC_SHOPIFY_API_SECRET_FILE); as a secret, -h never shows it.
const secretEnv = "PURCHASESYNC_SHOPIFY_API_SECRET"

// ingestFlags are the public ingest's flags; `ingest` and `run` share them.
type ingestFlags struct {
	addr              *string
	secret            *string
	maxWebhookBody    *int
	maxStorefrontBody *int
	maxHeader         *int
	readTimeout       *time.Duration
	writeTimeout      *time.Duration
	idleTimeout       *time.Duration
	maxConns          *int
	maxConnsPerIP     *int
	produceTimeout    *time.Duration
	maxInflight       *int
	maxQueue          *time.Duration
	retryAfter        *time.Duration
	shutdownTimeout   *time.Duration
	trustedProxies    *string
	ipRate, ipBurst   *int
	siteRate          *int
	siteBurst         *int

	client *kgo.Client // set by build; closed by close
}

func addIngestFlags(fs *flagSet) *ingestFlags {
	d := ingest.DefaultConfig()
	return &ingestFlags{
		addr: fs.String("ingest.addr", d.Addr, "public listen address for webhooks and storefront events"),
		secret: fs.SecretEnv("shopify.apiSecret", secretEnv,
			"Shopify app secret(s) that sign webhooks, comma-separated during a rotation; a custom app's as shop.myshopify.com=secret, which verifies that shop's webhooks only"),
		maxWebhookBody:    fs.Int("ingest.maxWebhookBodyBytes", d.MaxWebhookBodyBytes, "largest webhook body accepted; larger get 413"),
		maxStorefrontBody: fs.Int("ingest.maxStorefrontBodyBytes", d.MaxStorefrontBodyBytes, "largest storefront event accepted; larger get 413"),
		maxHeader:         fs.Int("ingest.maxHeaderBytes", d.MaxHeaderBytes, "largest request line plus headers; larger get 431"),
		readTimeout:       fs.Duration("ingest.readTimeout", d.ReadTimeout, "time to receive a whole request; slower clients get 408"),
		writeTimeout:      fs.Duration("ingest.writeTimeout", d.WriteTimeout, "time to send a response"),
		idleTimeout:       fs.Duration("ingest.idleTimeout", d.IdleTimeout, "keep-alive connections idle this long are closed"),
		maxConns:          fs.Int("ingest.maxConns", d.MaxConns, "concurrent connections served"),
		maxConnsPerIP:     fs.Int("ingest.maxConnsPerIP", d.MaxConnsPerIP, "concurrent connections per client address, 0 = unlimited; raise it behind a load balancer"),
		produceTimeout:    fs.Duration("ingest.produceTimeout", d.ProduceTimeout, "wait for Kafka's acknowledgement before answering 503; keep well below Shopify's 5s"),
		maxInflight:       fs.Int("ingest.maxInflightProduces", d.MaxInflightProduces, "records awaiting Kafka's acknowledgement at once; bounds memory when Kafka is slow. See also -ingest.maxQueueDuration"),
		maxQueue:          fs.Duration("ingest.maxQueueDuration", d.MaxQueueDuration, "wait for an in-flight slot before answering 503. See also -ingest.maxInflightProduces"),
		retryAfter:        fs.Duration("ingest.retryAfter", d.RetryAfter, "Retry-After sent with 503"),
		shutdownTimeout:   fs.Duration("ingest.shutdownTimeout", d.ShutdownTimeout, "bound on graceful shutdown (in-flight requests, producer flush)"),
		trustedProxies:    fs.String("ingest.trustedProxies", "", "comma-separated addresses or CIDRs of proxies whose X-Forwarded-For is believed"),
		ipRate:            fs.Int("ingest.ipRate", int(d.IPRate), "storefront events per second per client address, 0 = unlimited. See also -ingest.ipBurst"),
		ipBurst:           fs.Int("ingest.ipBurst", d.IPBurst, "storefront events a client address may send at once"),
		siteRate:          fs.Int("ingest.siteRate", int(d.SiteRate), "storefront events per second per site, 0 = unlimited. See also -ingest.siteBurst"),
		siteBurst:         fs.Int("ingest.siteBurst", d.SiteBurst, "storefront events a site may receive at once"),
	}
}

// config turns the flags into an ingest.Config for topics of c.
func (f *ingestFlags) config(c *common) (ingest.Config, error) {
	cfg := ingest.DefaultConfig()
	var err error
	cfg.Secrets, cfg.ShopSecrets, err = shopify.ParseSecrets(splitList(*f.secret))
	if err != nil {
		return cfg, fmt.Errorf("-shopify.apiSecret (%s): %w", secretEnv, err)
	}
	if len(cfg.Secrets) == 0 && len(cfg.ShopSecrets) == 0 {
		return cfg, fmt.Errorf("no Shopify app secret: set %s or %s_FILE (comma-separated during a rotation), or -shopify.apiSecret", secretEnv, secretEnv)
	}
	proxies, err := ingest.ParseTrustedProxies(splitList(*f.trustedProxies))
	if err != nil {
		return cfg, err
	}
	cfg.Addr = *f.addr
	cfg.Topics = c.topics
	cfg.MaxWebhookBodyBytes = *f.maxWebhookBody
	cfg.MaxStorefrontBodyBytes = *f.maxStorefrontBody
	cfg.MaxHeaderBytes = *f.maxHeader
	cfg.ReadTimeout = *f.readTimeout
	cfg.WriteTimeout = *f.writeTimeout
	cfg.IdleTimeout = *f.idleTimeout
	cfg.MaxConns = *f.maxConns
	cfg.MaxConnsPerIP = *f.maxConnsPerIP
	cfg.ProduceTimeout = *f.produceTimeout
	cfg.MaxInflightProduces = *f.maxInflight
	cfg.MaxQueueDuration = *f.maxQueue
	cfg.RetryAfter = *f.retryAfter
	cfg.ShutdownTimeout = *f.shutdownTimeout
	cfg.TrustedProxies = proxies
	cfg.IPRate, cfg.IPBurst = float64(*f.ipRate), *f.ipBurst
	cfg.SiteRate, cfg.SiteBurst = float64(*f.siteRate), *f.siteBurst
	return cfg, cfg.Validate()
}

// build creates the ingest's producer and server. The caller runs the
// server and, after Run returns, calls close to close the producer.
func (f *ingestFlags) build(c *common) (*ingest.Server, error) {
	cfg, err := f.config(c)
	if err != nil {
		return nil, err
	}
	opts, err := c.kafka.producerOpts(c.log, c.reg, "ingest", cfg.ProduceTimeout)
	if err != nil {
		return nil, err
	}
	opts = append(opts, ingest.ProducerOpts()...)
	cl, err := kgo.NewClient(opts...)
	if err != nil {
		return nil, fmt.Errorf("cannot create the ingest's Kafka producer: %w", err)
	}
	srv, err := ingest.New(cfg, ingest.Deps{Client: cl, Sites: c.sites, Registerer: c.stageReg("ingest"), Logger: c.log})
	if err != nil {
		cl.Close()
		return nil, err
	}
	f.client = cl
	return srv, nil
}

// close closes the producer build made; call it after the server's Run
// returned (Run flushes it first).
func (f *ingestFlags) close() {
	if f.client != nil {
		f.client.Close()
	}
}

// cmdIngest serves the public ingest with its site registry and the ops
// listener (/metrics, /healthz, /readyz).
func cmdIngest(ctx context.Context, args []string, getenv func(string) string, stdout io.Writer) error {
	fs := newFlagSet("ingest", getenv)
	fs.addDump(stdout)
	kf := addKafkaFlags(fs)
	lf := addLogFlags(fs)
	inf := addIngestFlags(fs)
	of := addOpsFlags(fs, defaultOpsAddr)
	if err := fs.parse(args); err != nil {
		return err
	}
	c, err := startCommon(ctx, kf, lf, fs.checking())
	if err != nil {
		return err
	}
	srv, err := inf.build(c)
	if err != nil {
		return err
	}
	defer inf.close()
	if fs.checking() {
		return fs.checked()
	}
	stages := []actor{{"ingest", srv.Run, srv.Ready}}
	// The registry is advisory: the ingest's own check already needs it
	// loaded, and a registry that cannot follow sites.v1 for a while still
	// answers from what it holds.
	checks := append(checksOf(false, stages...), checksOf(true, c.sitesActor())...)
	return runActors(ctx, c.log, append(stages, c.sitesActor(), of.actor(c, checks, nil, ""))...)
}
