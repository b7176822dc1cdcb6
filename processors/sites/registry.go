package sites

import (
	"context"
	"fmt"
	"log/slog"
	"sort"
	"strings"
	"sync/atomic"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/twmb/franz-go/pkg/kgo"

	"purchasesync/processors/internal/follow"
	"purchasesync/schemas"
	"purchasesync/schemas/health"
)

// snapshot is immutable once published.
type snapshot struct {
	bySite map[string]schemas.Site
	byShop map[string]string // shop domain → site
}

// Registry is the in-memory view of sites.v1.
type Registry struct {
	cfg     Config
	log     *slog.Logger
	m       *metrics
	snap    atomic.Pointer[snapshot]
	follow  *follow.Follower
	changed follow.Broadcast // on every applied batch (Changed)
	health  *health.Health   // Started once loaded
	// conflicts is the number of shop conflicts last logged (apply runs on
	// the one consuming goroutine).
	conflicts int
}

// Deps are the registry's collaborators.
type Deps struct {
	// KafkaOpts are the base Kafka options (seeds, logging); the registry
	// builds its own consumer from them.
	KafkaOpts  []kgo.Opt
	Registerer prometheus.Registerer
	Logger     *slog.Logger // nil: discard
}

// New creates a registry.
func New(cfg Config, deps Deps) (*Registry, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	log := deps.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	r := &Registry{cfg: cfg, log: log, m: newMetrics(deps.Registerer)}
	r.snap.Store(&snapshot{bySite: map[string]schemas.Site{}, byShop: map[string]string{}})
	r.health = health.New("site registry", "", deps.Registerer, log)
	r.follow = follow.New(follow.Topic{
		Name: cfg.topic(), KafkaOpts: deps.KafkaOpts, Apply: r.apply,
		OnLoaded: func() { log.Info("site registry loaded", "sites", len(r.snap.Load().bySite)) },
		Health:   r.health, HealthInterval: cfg.HealthInterval, ReadyTimeout: cfg.ReadyTimeout,
		Stage: "site registry", Log: log,
	})
	return r, nil
}

// Ready reports whether the registry has read sites.v1 up to its end as of
// start. It stays true through Kafka outages (lookups answer from the last
// state); ReadyErr says more.
func (r *Registry) Ready() bool { return r.follow.Loaded() }

// ReadyErr is nil while the registry is loaded and follows sites.v1, and
// says why not: before it loaded, and during a Kafka outage episode (the
// sites it holds may then be stale).
func (r *Registry) ReadyErr() error { return r.health.Err() }

// WaitReady blocks until Ready or ctx ends.
func (r *Registry) WaitReady(ctx context.Context) error {
	if err := r.follow.WaitLoaded(ctx); err != nil {
		return fmt.Errorf("site registry not loaded: %w", err)
	}
	return nil
}

// Get returns a site by slug.
func (r *Registry) Get(site string) (schemas.Site, bool) {
	s, ok := r.snap.Load().bySite[site]
	return s, ok
}

// ByShop returns the site linked to a shop domain.
func (r *Registry) ByShop(domain string) (schemas.Site, bool) {
	snap := r.snap.Load()
	slug, ok := snap.byShop[domain]
	if !ok {
		return schemas.Site{}, false
	}
	s, ok := snap.bySite[slug]
	return s, ok
}

// All returns every site, sorted by slug.
func (r *Registry) All() []schemas.Site {
	snap := r.snap.Load()
	out := make([]schemas.Site, 0, len(snap.bySite))
	for _, s := range snap.bySite {
		out = append(out, s)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Site < out[j].Site })
	return out
}

// Changed returns a channel closed at the next applied change (for writers
// that wait until their write is visible).
func (r *Registry) Changed() <-chan struct{} { return r.changed.Wait() }

// Run reads sites.v1 from the beginning and follows it until ctx ends.
// Kafka faults never end it, not even at start: it retries until it has
// loaded the topic (logging an error once after ReadyTimeout), then follows
// it through outages.
func (r *Registry) Run(ctx context.Context) error { return r.follow.Run(ctx) }

// apply copies the snapshot once per batch of records.
func (r *Registry) apply(recs []*kgo.Record) {
	old := r.snap.Load()
	next := &snapshot{bySite: make(map[string]schemas.Site, len(old.bySite)+1), byShop: make(map[string]string, len(old.byShop)+1)}
	for k, v := range old.bySite {
		next.bySite[k] = v
	}
	for _, rec := range recs {
		r.m.records.Inc()
		slug := string(rec.Key)
		if rec.Value == nil {
			delete(next.bySite, slug)
			continue
		}
		s, err := schemas.UnmarshalSite(rec.Value)
		if err != nil || s.Site != slug {
			r.m.invalid.Inc()
			r.log.Warn("sites: ignoring invalid record", "site", slug, "offset", rec.Offset, "err", err)
			continue
		}
		next.bySite[slug] = s
	}
	conflicts := next.linkShops()
	if c := len(conflicts); c != r.conflicts {
		r.conflicts = c
		if c > 0 {
			// The admin API refuses a second site for a shop (409); this is
			// an old record or a direct write to sites.v1.
			r.log.Warn("sites: shop domains linked to more than one site; each routes to its most recently updated site", "conflicts", strings.Join(conflicts, "; "))
		}
	}
	r.m.shopConflicts.Set(float64(len(conflicts)))
	r.snap.Store(next)
	r.m.sites.Set(float64(len(next.bySite)))
	r.changed.Notify()
}

// linkShops fills byShop. A shop domain belongs to one site; if several
// records name it (written before the admin API refused that, or straight
// to sites.v1), the most recently updated one wins, then the smallest
// slug, so every process routes the shop to the same site whatever the
// order it read the records in. It returns the conflicts, as
// "shop: winner over loser, ...", sorted.
func (s *snapshot) linkShops() []string {
	losers := map[string][]string{}
	for slug, site := range s.bySite {
		cur, ok := s.byShop[site.ShopDomain]
		if !ok {
			s.byShop[site.ShopDomain] = slug
			continue
		}
		win, lose := cur, slug
		if c := s.bySite[cur]; site.UpdatedAt.After(c.UpdatedAt) || (site.UpdatedAt.Equal(c.UpdatedAt) && slug < cur) {
			win, lose = slug, cur
		}
		s.byShop[site.ShopDomain] = win
		losers[site.ShopDomain] = append(losers[site.ShopDomain], lose)
	}
	var out []string
	for shop, l := range losers {
		sort.Strings(l)
		out = append(out, fmt.Sprintf("%s: %s over %s", shop, s.byShop[shop], strings.Join(l, ", ")))
	}
	sort.Strings(out)
	return out
}
