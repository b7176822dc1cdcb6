package appauth

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/twmb/franz-go/pkg/kgo"

	"purchasesync/schemas"
	"purchasesync/schemas/health"
	"purchasesync/schemas/retry"
)

// TokenForgetter is the part of the token store the uninstall processor
// uses (Store).
type TokenForgetter interface {
	Installed(shop string) (Installation, bool)
	Forget(ctx context.Context, shop string) error
}

// SiteLookup finds a shop's site (processors/sites.Registry).
type SiteLookup interface {
	ByShop(domain string) (schemas.Site, bool)
}

// SiteWriter stores a site record synchronously (processors/sites.Writer).
type SiteWriter interface {
	Put(ctx context.Context, s schemas.Site) (schemas.Site, error)
}

// UninstallDeps are the uninstall processor's collaborators.
type UninstallDeps struct {
	// Tokens is the token store; nil: only syncing is turned off (a
	// deployment without PURCHASESYNC_TOKEN_KEY keeps tokens in the file).
	Tokens     TokenForgetter
	Sites      SiteLookup
	Writer     SiteWriter
	KafkaOpts  []kgo.Opt
	Registerer prometheus.Registerer
	Logger     *slog.Logger
}

// Uninstaller consumes shopify.app.v1 and carries out each app/uninstalled.
type Uninstaller struct {
	cfg    UninstallConfig
	tokens TokenForgetter
	sites  SiteLookup
	writer SiteWriter
	opts   []kgo.Opt
	log    *slog.Logger
	m      *uninstallMetrics
	health *health.Health
	kafka  *health.Dep
}

// NewUninstaller builds the processor.
func NewUninstaller(cfg UninstallConfig, deps UninstallDeps) (*Uninstaller, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if deps.Sites == nil || deps.Writer == nil {
		return nil, errors.New("appauth: the uninstall processor needs Sites and Writer")
	}
	reg := deps.Registerer
	if reg == nil {
		reg = prometheus.NewRegistry()
	}
	log := deps.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	u := &Uninstaller{cfg: cfg, tokens: deps.Tokens, sites: deps.Sites, writer: deps.Writer, opts: deps.KafkaOpts,
		log: log, m: newUninstallMetrics(reg)}
	u.health = health.New("uninstall processor", "uninstall_", reg, log)
	u.kafka = u.health.Dep("Kafka")
	u.health.Starting("not consuming yet (joining consumer group " + cfg.group() + ")")
	return u, nil
}

// Ready is nil while the processor consumes normally.
func (u *Uninstaller) Ready() error { return u.health.Err() }

// Run consumes shopify.app.v1 until ctx ends. An offset is committed after
// its record was carried out; a failure (Kafka away) is retried until it
// works, so delivery is at least once, and the effects are idempotent.
func (u *Uninstaller) Run(ctx context.Context) error {
	cl, err := kgo.NewClient(append(append([]kgo.Opt{}, u.opts...),
		kgo.ConsumerGroup(u.cfg.group()),
		kgo.ConsumeTopics(u.cfg.topic()),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
		kgo.DisableAutoCommit(),
		kgo.FetchMaxWait(time.Second),
		kgo.OnPartitionsAssigned(func(context.Context, *kgo.Client, map[string][]int32) {
			u.kafka.OK("group")
			u.health.Started()
		}),
	)...)
	if err != nil {
		return fmt.Errorf("appauth: cannot create the uninstall processor's Kafka consumer: %w", err)
	}
	defer cl.Close()
	pctx, stop := context.WithCancel(ctx)
	var probe sync.WaitGroup
	probe.Go(func() { u.kafka.Probe(pctx, u.cfg.HealthInterval, max(u.cfg.HealthInterval, 5*time.Second), cl.Ping) })
	defer probe.Wait()
	defer stop()
	for {
		fs := cl.PollFetches(ctx)
		if ctx.Err() != nil {
			return nil
		}
		u.kafka.Fetches(fs)
		var recs []*kgo.Record
		fs.EachRecord(func(r *kgo.Record) { recs = append(recs, r) })
		for _, r := range recs {
			for attempt := 1; ; attempt++ {
				err := u.Handle(ctx, r)
				if err == nil {
					break
				}
				if ctx.Err() != nil {
					return nil
				}
				u.kafka.Fail("uninstall", err)
				if retry.Sleep(ctx, retry.Delay(attempt, u.cfg.RetryInitial, u.cfg.RetryMax)) != nil {
					return nil
				}
			}
			u.kafka.OK("uninstall")
			// Offsets are cumulative: a failed commit is carried by the
			// next one; a crash before it redoes idempotent work.
			if err := cl.CommitRecords(ctx, r); err != nil && ctx.Err() == nil {
				u.kafka.FailQuiet("commit", err, 30*time.Second)
			} else {
				u.kafka.OK("commit")
			}
		}
	}
}

// eventTime is when ingest received the webhook (its received-at header,
// else the record's timestamp).
func eventTime(r *kgo.Record) time.Time {
	if t, ok := schemas.ReceivedAtOf(r.Headers); ok {
		return t
	}
	return r.Timestamp
}

// Handle carries out one shopify.app.v1 record: for app/uninstalled it
// forgets the shop's token and turns Purchase Syncing off on its site
// (clearing the subscription id; Shopify is not called: the token is
// already revoked, and Shopify deletes the app's subscriptions itself).
// Repeating it changes nothing more. An uninstall older than the shop's
// stored install (the merchant installed again since) undoes nothing.
// Only Kafka errors are returned.
func (u *Uninstaller) Handle(ctx context.Context, r *kgo.Record) error {
	wh := schemas.ParseWebhookHeaders(r.Headers)
	topic := strings.TrimSpace(string(wh.Topic))
	shop, ok := schemas.NormalizeShopDomain(string(r.Key))
	if topic != schemas.WebhookAppUninstalled || !ok {
		u.m.uninstalls.WithLabelValues(UninstallInvalid).Inc()
		u.log.Warn("uninstall: skipping a record that is not an app/uninstalled of a shop", "topic", topic, "offset", r.Offset, "partition", r.Partition)
		return nil
	}
	at := eventTime(r)
	if u.tokens != nil {
		if inst, ok := u.tokens.Installed(shop); ok && inst.InstalledAt.After(at) {
			u.m.uninstalls.WithLabelValues(UninstallReinstalled).Inc()
			u.log.Info("uninstall: the shop installed the app again since; nothing undone", "shop", shop,
				"uninstalled_at", at.UTC().Format(time.RFC3339), "installed_at", inst.InstalledAt.UTC().Format(time.RFC3339))
			return nil
		}
		// A tombstone even when no token is known: it is idempotent, and the
		// shop's record may be one this process could not decrypt.
		if err := u.tokens.Forget(ctx, shop); err != nil {
			return err
		}
	}
	site, hasSite := u.sites.ByShop(shop)
	wasOn := hasSite && site.PurchaseSyncing
	if hasSite && (site.PurchaseSyncing || site.WebhookSubscriptionID != "") {
		site.PurchaseSyncing, site.WebhookSubscriptionID, site.UpdatedAt = false, "", time.Now().UTC()
		if _, err := u.writer.Put(ctx, site); err != nil {
			return err
		}
	}
	u.m.uninstalls.WithLabelValues(UninstallDone).Inc()
	u.log.Info("app uninstalled: token forgotten, Purchase Syncing off", "shop", shop, "site", site.Site,
		"syncing_was_on", wasOn, "uninstalled_at", at.UTC().Format(time.RFC3339))
	return nil
}
