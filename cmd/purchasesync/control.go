package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
	"github.com/twmb/franz-go/pkg/kgo"

	"purchasesync/ingest/admin"
	"purchasesync/processors/control"
	"purchasesync/processors/control/adminapi"
	"purchasesync/processors/control/page"
	"purchasesync/processors/keymode"
	chsink "purchasesync/sinks/clickhouse"
	"purchasesync/sinks/compliance"
)

// controlFlags configure the admin API and the Shopify control plane
// (DESIGN §6, §7). A process that serves the admin API registers them.
type controlFlags struct {
	adminToken        *string
	apiVersion        *string
	adminURL          *string
	accessTokensFile  *string
	accessTokens      *string
	publicBaseURL     *string
	watchdogInterval  *time.Duration
	reconcileInterval *time.Duration
	reconcileWindow   *time.Duration
	reconcileMinAge   *time.Duration
	maxLookback       *time.Duration
	reportDir         *string
	keymodeOn         *bool
	keymodeGroup      *string
	keymodeMaxEntries *int
	keymodeMaxAge     *time.Duration
	keymodeMinMatches *int
	// app is the merchant's side (token store, OAuth, uninstalls); nil in
	// tests that build the admin API alone.
	app *appFlags
}

func addControlFlags(fs *flagSet) *controlFlags {
	d := control.DefaultConfig()
	km := keymode.DefaultConfig()
	return &controlFlags{
		keymodeOn:         fs.Bool("keymode.detect", true, "run the order-key detector in this process (it finds sites whose storefront sends another Shopify identifier than their order_key; the admin API's diagnosis reads its evidence either way)"),
		keymodeGroup:      fs.String("keymode.group", "", "consumer group of the order-key detector's judge (its observe stage uses <group>-observe); empty: <-kafka.topicPrefix without its dot>-keymode, so purchasesync-keymode by default"),
		keymodeMaxEntries: fs.Int("keymode.maxEntries", km.MaxEntries, "the detector's window per site: at most this many webhooks and as many storefront events"),
		keymodeMaxAge:     fs.Duration("keymode.maxAge", km.MaxAge, "the detector's window per site: nothing older than this before the newest event"),
		keymodeMinMatches: fs.Int("keymode.minMatches", km.MinMatches, "matched purchases needed for an order-key verdict (diagnosis, the enable guard, the contradicted metric)"),
		adminToken:        fs.Secret("admin.token", "bearer token of the admin API under /admin/v1/ on the ops listener; empty disables the admin API (503)"),
		apiVersion:        fs.String("shopify.apiVersion", adminapi.DefaultAPIVersion, "Shopify Admin API version, pinned (supported for 12 months; bump it deliberately)"),
		adminURL:          fs.String("shopify.adminURL", adminapi.DefaultURL, "Admin GraphQL endpoint template with {shop} and {version}; override only for tests and fakes"),
		accessTokensFile:  fs.String("shopify.accessTokensFile", "", "JSON file {\"shop.myshopify.com\": \"token\"} of per-shop Admin API access tokens; re-read when it changes. See also -shopify.accessTokens"),
		accessTokens:      fs.Secret("shopify.accessTokens", "per-shop Admin API access tokens, shop.myshopify.com=token,... or a JSON object, read once at start (-shopify.accessTokensFile is re-read)"),
		publicBaseURL:     fs.String("public.baseURL", "", "public HTTPS base URL of ingest as Shopify reaches it; webhook subscriptions point at it + /webhooks/shopify. Required to enable Purchase Syncing"),
		watchdogInterval: fs.Duration("watchdog.interval", d.WatchdogInterval,
			"how often enabled sites' webhook subscriptions are verified and recreated if Shopify removed them; 0 turns the watchdog off (run it in one process only)"),
		reconcileInterval: fs.Duration("reconcile.interval", d.ReconcileInterval,
			"how often recent orders are listed through the Admin API to recover those whose webhook never came; 0 turns periodic reconciliation off (run it in one process only)"),
		reconcileWindow: fs.Duration("reconcile.window", d.ReconcileWindow, "how far back a periodic reconciliation looks. See also -reconcile.minAge"),
		reconcileMinAge: fs.Duration("reconcile.minAge", d.ReconcileMinAge, "orders younger than this are left to their webhook, which may still be on its way"),
		maxLookback: fs.Duration("reconcile.maxLookback", d.MaxLookback,
			"the furthest back any reconciliation looks (also after a subscription gap); this much of shopify.orders.v1 is kept in memory as keys"),
		reportDir: fs.String("compliance.reportDir", "", "directory for customers/data_request reports (JSON, mode 0600) for the store owner; empty logs counts only"),
	}
}

// tokens combines the file and the environment/flag; the file wins for a
// shop in both, since it is the one a rotation job keeps fresh.
func (f *controlFlags) tokens(log *slog.Logger) (adminapi.TokenSource, error) {
	var srcs adminapi.MultiTokens
	if *f.accessTokensFile != "" {
		tf, err := adminapi.NewTokenFile(*f.accessTokensFile)
		if err != nil {
			return nil, fmt.Errorf("-shopify.accessTokensFile (PURCHASESYNC_SHOPIFY_ACCESSTOKENSFILE): %w", err)
		}
		if mode, exposed := tf.Exposed(); exposed {
			log.Warn("the access tokens file is readable by other users; chmod 600 it (or set the secret volume's defaultMode)",
				"file", *f.accessTokensFile, "mode", mode.String())
		}
		srcs = append(srcs, tf)
	}
	if *f.accessTokens != "" {
		t, err := adminapi.ParseTokens(*f.accessTokens)
		if err != nil {
			return nil, fmt.Errorf("-shopify.accessTokens (PURCHASESYNC_SHOPIFY_ACCESSTOKENS): %w", err)
		}
		srcs = append(srcs, t)
	}
	return srcs, nil
}

// controlConfig is the control plane's configuration from the flags.
func (f *controlFlags) controlConfig(c *common) control.Config {
	cfg := control.DefaultConfig()
	cfg.Topics = c.topics
	cfg.PublicBaseURL = *f.publicBaseURL
	cfg.WatchdogInterval, cfg.ReconcileInterval = *f.watchdogInterval, *f.reconcileInterval
	cfg.ReconcileWindow, cfg.ReconcileMinAge, cfg.MaxLookback = *f.reconcileWindow, *f.reconcileMinAge, *f.maxLookback
	return cfg
}

// keymodeConfig is the order-key detector's configuration from the flags.
func (f *controlFlags) keymodeConfig(c *common) keymode.Config {
	cfg := keymode.DefaultConfig()
	cfg.Topics = c.topics
	cfg.MaxEntries, cfg.MaxAge, cfg.MinMatches = *f.keymodeMaxEntries, *f.keymodeMaxAge, *f.keymodeMinMatches
	if *f.keymodeGroup != "" {
		cfg.Group, cfg.ObserveGroup = *f.keymodeGroup, *f.keymodeGroup+"-observe"
	}
	return cfg
}

// controlParts is what adminHandler builds for a control-plane process.
type controlParts struct {
	admin    http.Handler // the admin API, for /admin/v1/ on the ops listener
	gating   []actor      // the control plane (watchdog, reconciliation)
	advisory []actor      // the order-key evidence table and detector, the app's parts
	// close releases what adminHandler made (its producer); call it after
	// the actors stopped.
	close func()
}

// adminHandler builds the admin API and the control plane behind its
// purchase-syncing switch, with the order-key evidence table and detector
// and the app's parts. producer writes sites.v1 and reconciled orders
// (acks=all); nil makes one that parts.close closes. The site registry
// c.sites must run as its own actor.
func adminHandler(c *common, f *controlFlags, producer *kgo.Client, doubles admin.Doubles, stats page.Stats) (_ controlParts, err error) {
	var cl closers
	defer func() {
		if err != nil {
			cl.closeAll()
		}
	}()
	if producer == nil {
		opts, err := c.kafka.producerOpts(c.log, c.reg, "control", 10*time.Second)
		if err != nil {
			return controlParts{}, err
		}
		if producer, err = kgo.NewClient(opts...); err != nil {
			return controlParts{}, fmt.Errorf("cannot create the control plane's Kafka producer: %w", err)
		}
		cl.add(producer.Close)
	}
	tokens, err := f.tokens(c.log)
	if err != nil {
		return controlParts{}, err
	}
	// Tokens that OAuth stored come after the operator's (file, then
	// environment), which thus override them.
	store, err := f.app.tokenStore(c, producer)
	if err != nil {
		return controlParts{}, err
	}
	if store != nil {
		tokens = append(tokens.(adminapi.MultiTokens), store)
	}
	acfg := adminapi.DefaultConfig()
	acfg.APIVersion, acfg.URL = *f.apiVersion, *f.adminURL
	api, err := adminapi.New(acfg, adminapi.Deps{Tokens: tokens, Registerer: c.stageReg("control"), Logger: c.log.With("component", "shopify")})
	if err != nil {
		return controlParts{}, err
	}
	ccfg := f.controlConfig(c)
	writer := c.sites.Writer(producer)
	svc, err := control.New(ccfg, control.Deps{
		Sites:      c.sites,
		Writer:     writer,
		Shopify:    api,
		Producer:   producer,
		KafkaOpts:  c.kafka.baseOpts(c.log, nil, "control"),
		Registerer: c.stageReg("control"),
		Logger:     c.log.With("component", "control"),
	})
	if err != nil {
		return controlParts{}, fmt.Errorf("cannot configure the control plane: %w", err)
	}
	evidence := keymode.NewTable(f.keymodeConfig(c), keymode.Deps{KafkaOpts: c.kafka.baseOpts(c.log, nil, "keymode-evidence"),
		Registerer: c.stageReg("keymode"), Logger: c.log.With("component", "keymode")})
	hcfg := admin.DefaultConfig()
	hcfg.Token, hcfg.MinMatches = *f.adminToken, *f.keymodeMinMatches
	h, err := admin.New(hcfg, admin.Deps{
		Sites: c.sites, Writer: writer, Syncing: svc, Evidence: evidence, Doubles: doubles,
		Registerer: c.stageReg("admin"), Logger: c.log.With("component", "admin"),
	})
	if err != nil {
		return controlParts{}, err
	}
	if hcfg.Token == "" {
		c.log.Warn("admin API disabled: no admin token; set PURCHASESYNC_ADMIN_TOKEN to manage sites")
	}
	if ccfg.PublicBaseURL == "" {
		c.log.Warn("no public base URL: Purchase Syncing cannot be enabled and the watchdog cannot check subscriptions; set PURCHASESYNC_PUBLIC_BASEURL")
	}
	appParts, err := f.app.buildApp(c, store, api, writer, ccfg.PublicBaseURL, pageDeps{sw: svc, stats: stats, evidence: evidence, minMatches: *f.keymodeMinMatches})
	if err != nil {
		return controlParts{}, err
	}
	advisory := []actor{{"order-key evidence", evidence.Run, evidence.Ready}}
	if *f.keymodeOn {
		det, err := keymode.New(f.keymodeConfig(c), keymode.Deps{
			KafkaOpts:  c.kafka.baseOpts(c.log, nil, "keymode"),
			Sites:      c.sites,
			Registerer: c.stageReg("keymode"),
			Logger:     c.log.With("component", "keymode"),
		})
		if err != nil {
			return controlParts{}, fmt.Errorf("cannot configure the order-key detector: %w", err)
		}
		advisory = append(advisory, c.afterSites("order-key detector", det.Run, det.Ready))
	}
	return controlParts{
		admin:    h,
		gating:   []actor{c.afterSites("control plane", svc.Run, svc.Ready)},
		advisory: append(advisory, appParts.actors...),
		close:    cl.closeAll,
	}, nil
}

// complianceProcessor builds the privacy-request processor: compliance.v1 →
// ClickHouse redactions (DESIGN §7). conn must be a connection to the
// purchasesync database (the sink's tables). Run it in one process: its
// consumer group shares the topic, so more instances are safe but idle.
//
// In cluster mode (chCfg.Cluster) its mutations go ON CLUSTER to the local
// tables, and it waits for them on a connection to each address of
// -clickhouse.addr, which must therefore list every replica; close the
// returned func after the actor stopped.
func complianceProcessor(c *common, f *controlFlags, conn driver.Conn, chCfg chsink.Config) (actor, func(), error) {
	cfg := compliance.DefaultConfig()
	cfg.Topics = c.topics
	cfg.ReportDir = *f.reportDir
	cfg.Cluster, cfg.Database = chCfg.Cluster, chCfg.Database
	var replicas []driver.Conn
	closeAll := func() {
		for _, r := range replicas {
			r.Close()
		}
	}
	if chCfg.Cluster != "" {
		for _, a := range chCfg.Addr {
			one := chCfg
			one.Addr = []string{a}
			r, err := chsink.Open(one, one.Database)
			if err != nil {
				closeAll()
				return actor{}, nil, fmt.Errorf("cannot connect to ClickHouse replica %s for compliance redactions (-clickhouse.addr): %w", a, err)
			}
			replicas = append(replicas, r)
		}
	}
	p, err := compliance.New(cfg, compliance.Deps{
		Conn:       conn,
		Replicas:   replicas,
		Sites:      c.sites,
		KafkaOpts:  c.kafka.baseOpts(c.log, nil, "compliance"),
		Registerer: c.stageReg("control"),
		Logger:     c.log.With("component", "compliance"),
	})
	if err != nil {
		closeAll()
		return actor{}, nil, fmt.Errorf("cannot configure the compliance processor: %w", err)
	}
	return c.afterSites("compliance", p.Run, p.Ready), closeAll, nil
}

// cmdControl runs the control plane on its own, for deployments that run
// each stage as its own process: the admin API (the site registry's only
// writer and the Purchase Syncing switch), the subscription watchdog,
// reconciliation and the compliance processor, with the ops listener that
// serves the admin API. `run` includes all of it; with separate ingest,
// join and sink processes, run one control process beside them.
func cmdControl(ctx context.Context, args []string, getenv func(string) string, stdout io.Writer) error {
	fs := newFlagSet("control", getenv)
	fs.addDump(stdout)
	kf := addKafkaFlags(fs)
	lf := addLogFlags(fs)
	cf := addControlFlags(fs)
	cf.app = addAppFlags(fs, nil)
	chf := addClickHouseFlags(fs)
	of := addOpsFlags(fs, defaultOpsAddr)
	if err := fs.parse(args); err != nil {
		return err
	}
	c, err := startCommon(ctx, kf, lf, fs.checking())
	if err != nil {
		return err
	}
	chCfg, err := chf.Config()
	if err != nil {
		return err
	}
	if err := checkClickHouse(ctx, c.log, chCfg, fs.checking()); err != nil {
		return err
	}
	conn, err := chsink.Open(chCfg, chCfg.Database)
	if err != nil {
		return fmt.Errorf("cannot connect to ClickHouse for compliance redactions (-clickhouse.addr): %w", err)
	}
	defer conn.Close()
	parts, err := adminHandler(c, cf, nil, chsink.Doubles{Conn: conn, Cluster: chCfg.Cluster != ""}, chsink.Merchant{Conn: conn})
	if err != nil {
		return err
	}
	defer parts.close()
	compl, closeReplicas, err := complianceProcessor(c, cf, conn, chCfg)
	if err != nil {
		return err
	}
	defer closeReplicas()
	if fs.checking() {
		return fs.checked()
	}
	// The admin API and the switch need the registry and the control plane;
	// compliance redactions wait in compliance.v1 while ClickHouse is down.
	gating := append([]actor{c.sitesActor()}, parts.gating...)
	advisory := append([]actor{compl}, parts.advisory...)
	checks := append(checksOf(false, gating...), checksOf(true, advisory...)...)
	actors := append(append(gating, of.actor(c, checks, parts.admin, *cf.adminToken)), advisory...)
	c.log.Info("purchasesync control plane running", "ops", *of.addr, "app", *cf.app.addr)
	return runActors(ctx, c.log, actors...)
}
