package keymode

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"sync"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"
	"github.com/twmb/franz-go/pkg/kgo"

	"purchasesync/processors/internal/follow"
	"purchasesync/schemas"
)

// Table follows keymode.evidence.v1 into memory: every site's latest
// evidence, for the admin API's diagnosis and the enable guard. Any
// process may hold one; it reads the whole (compacted, one small record per
// site) topic at start and then follows it.
type Table struct {
	log    *slog.Logger
	sites  prometheus.Gauge
	follow *follow.Follower

	mu     sync.RWMutex
	bySite map[string]*schemas.KeyModeEvidence
}

// NewTable builds a table of cfg.Topics' keymode.evidence.v1, the same
// (cfg, deps) as the detector's; it uses deps' KafkaOpts, Registerer and
// Logger.
func NewTable(cfg Config, deps Deps) *Table {
	reg, log := deps.Registerer, deps.Logger
	if reg == nil {
		reg = prometheus.NewRegistry()
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	t := &Table{log: log, bySite: map[string]*schemas.KeyModeEvidence{},
		sites: promauto.With(reg).NewGauge(prometheus.GaugeOpts{Name: "evidence_sites", Help: "Sites in this process's order-key evidence table (the admin API's diagnosis)."})}
	// Advisory: no health, so faults are retried without a word.
	t.follow = follow.New(follow.Topic{Name: cfg.Topics.Name(schemas.TopicKeyModeEvidence), KafkaOpts: deps.KafkaOpts, Apply: t.apply, Log: log})
	return t
}

// Evidence returns a site's latest evidence.
func (t *Table) Evidence(site string) (*schemas.KeyModeEvidence, bool) {
	t.mu.RLock()
	defer t.mu.RUnlock()
	ev, ok := t.bySite[site]
	return ev, ok
}

// Loaded reports whether the table has read the topic up to where it ended
// when Run started.
func (t *Table) Loaded() bool { return t.follow.Loaded() }

// Ready is nil once loaded. The table is advisory: a process does not stop
// serving because it is not loaded yet.
func (t *Table) Ready() error {
	if !t.Loaded() {
		return fmt.Errorf("order-key evidence not loaded yet")
	}
	return nil
}

// Run follows the topic until ctx ends; Kafka faults are retried.
func (t *Table) Run(ctx context.Context) error { return t.follow.Run(ctx) }

func (t *Table) apply(recs []*kgo.Record) {
	t.mu.Lock()
	defer t.mu.Unlock()
	for _, r := range recs {
		site := string(r.Key)
		if r.Value == nil {
			delete(t.bySite, site)
			continue
		}
		var ev schemas.KeyModeEvidence
		if err := json.Unmarshal(r.Value, &ev); err != nil || ev.Site != site {
			t.log.Warn("keymode: ignoring an invalid evidence record", "site", site, "offset", r.Offset, "err", err)
			continue
		}
		t.bySite[site] = &ev
	}
	t.sites.Set(float64(len(t.bySite)))
}
