package control

import (
	"context"
	"errors"
	"log/slog"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/twmb/franz-go/pkg/kgo"
	"golang.org/x/sync/errgroup"

	"purchasesync/processors/control/adminapi"
	"purchasesync/schemas"
	"purchasesync/schemas/health"
)

// SiteReader is the live view of sites.v1 (processors/sites.Registry).
type SiteReader interface {
	Get(site string) (schemas.Site, bool)
	All() []schemas.Site
}

// SiteWriter stores a site record synchronously, then waits (bounded) until
// the registry shows it, so the next read — ours or an admin GET — sees it
// (processors/sites.Writer, as Registry.Writer makes it). visible is false
// when that wait timed out (the writer logs it): Kafka holds the record
// either way.
type SiteWriter interface {
	PutVisible(ctx context.Context, s schemas.Site) (stored schemas.Site, visible bool, err error)
}

// Deps are the service's collaborators.
type Deps struct {
	Sites   SiteReader
	Writer  SiteWriter
	Shopify *adminapi.Client
	// Producer writes reconciled orders (acks=all, idempotent). Nil turns
	// reconciliation off.
	Producer *kgo.Client
	// KafkaOpts are the base Kafka options (seeds, logging) from which
	// the service builds its follower of shopify.orders.v1.
	KafkaOpts  []kgo.Opt
	Registerer prometheus.Registerer
	Logger     *slog.Logger // nil: discard
	// Now is the clock (nil: time.Now); tests move it.
	Now func() time.Time
}

// Service is the control plane: the switch (Enable, Disable) is called by
// the admin API; Run runs the watchdog and reconciliation.
type Service struct {
	cfg      Config
	sites    SiteReader
	writer   SiteWriter
	shopify  *adminapi.Client
	producer *kgo.Client
	log      *slog.Logger
	m        *metrics
	now      func() time.Time

	locks    sync.Map // site → *sync.Mutex: one switch or watchdog action per site at a time
	seen     *seenIndex
	triggers chan trigger
	passMu   sync.Mutex // one reconciliation pass at a time

	okMu   sync.Mutex
	lastOK map[string]time.Time // site → when its subscription was last seen in place

	health *health.Health // readiness of the follower of shopify.orders.v1
}

// trigger asks for a reconciliation of one site from since.
type trigger struct {
	site     string
	since    time.Time
	attempts int // failed so far
}

// New builds the service.
func New(cfg Config, deps Deps) (*Service, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if deps.Sites == nil || deps.Writer == nil || deps.Shopify == nil {
		return nil, errors.New("control: Sites, Writer and Shopify are required")
	}
	s := &Service{
		cfg: cfg, sites: deps.Sites, writer: deps.Writer, shopify: deps.Shopify, producer: deps.Producer,
		log: deps.Logger, now: deps.Now, triggers: make(chan trigger, 64), lastOK: map[string]time.Time{},
	}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	if s.now == nil {
		s.now = time.Now
	}
	reg := deps.Registerer
	if reg == nil {
		reg = prometheus.NewRegistry()
	}
	s.m = newMetrics(reg)
	s.health = health.New("control plane", "", reg, s.log)
	if s.producer != nil {
		orders := cfg.Topics.Name(schemas.TopicShopifyOrders)
		s.health.Starting("not following " + orders + " yet")
		s.seen = newSeenIndex(orders, deps.KafkaOpts, cfg.MaxLookback, s.now, s.log)
		s.seen.kafka, s.seen.onStart, s.seen.interval = s.health.Dep("Kafka"), s.health.Started, cfg.HealthInterval
	}
	return s, nil
}

// Ready reports nil while the control plane works normally, and why not:
// before its follower of shopify.orders.v1 (what reconciliation compares
// with) has started, and during a Kafka outage episode of that follower.
// Without a producer (reconciliation off) it is ready once Run started.
func (s *Service) Ready() error { return s.health.Err() }

// Run runs the follower of shopify.orders.v1 and the reconciliation loop
// (when a producer was given) and the watchdog (when its interval is
// positive) until ctx ends; it returns nil then.
func (s *Service) Run(ctx context.Context) error {
	if s.seen == nil {
		s.health.Started()
	}
	g, gctx := errgroup.WithContext(ctx)
	if s.seen != nil {
		g.Go(func() error { return s.seen.run(gctx) })
		g.Go(func() error { return s.reconcileLoop(gctx) })
	}
	if s.cfg.WatchdogInterval > 0 {
		g.Go(func() error { return s.watchdogLoop(gctx) })
	}
	err := g.Wait()
	if ctx.Err() != nil {
		return nil
	}
	return err
}

// lock serializes the switch and the watchdog per site, so that a disable
// and a watchdog recreation cannot interleave.
// Lock takes the per-site lock that the switch and the watchdog hold
// around their read-modify-write of a site record; the admin API's PUT and
// DELETE take it too (ingest/admin.SiteLocker).
func (s *Service) Lock(site string) (unlock func()) { return s.lock(site) }

func (s *Service) lock(site string) func() {
	v, _ := s.locks.LoadOrStore(site, &sync.Mutex{})
	mu := v.(*sync.Mutex)
	mu.Lock()
	return mu.Unlock
}

func (s *Service) markOK(site string, t time.Time) {
	s.okMu.Lock()
	s.lastOK[site] = t
	s.okMu.Unlock()
}

func (s *Service) lastSeenOK(site string) (time.Time, bool) {
	s.okMu.Lock()
	defer s.okMu.Unlock()
	t, ok := s.lastOK[site]
	return t, ok
}

// store writes a site record with a fresh stamp (our clock, which tests
// move) and waits until the registry shows it.
func (s *Service) store(ctx context.Context, site schemas.Site) (schemas.Site, error) {
	site.UpdatedAt = s.now().UTC()
	stored, _, err := s.writer.PutVisible(ctx, site)
	return stored, err
}
