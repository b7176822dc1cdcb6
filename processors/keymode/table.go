package keymode

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"purchasesync/schemas"
)

// Table follows keymode.evidence.v1 into memory: every site's latest
// evidence, for the admin API's diagnosis and the enable guard. Any
// process may hold one; it reads the whole (compacted, one small record per
// site) topic at start and then follows it.
type Table struct {
	topic string
	opts  []kgo.Opt
	log   *slog.Logger
	sites prometheus.Gauge

	mu     sync.RWMutex
	bySite map[string]*schemas.KeyModeEvidence
	loaded atomic.Bool
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
	return &Table{topic: cfg.Topics.Name(schemas.TopicKeyModeEvidence), opts: deps.KafkaOpts, log: log, bySite: map[string]*schemas.KeyModeEvidence{},
		sites: promauto.With(reg).NewGauge(prometheus.GaugeOpts{Name: "evidence_sites", Help: "Sites in this process's order-key evidence table (the admin API's diagnosis)."})}
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
func (t *Table) Loaded() bool { return t.loaded.Load() }

// Ready is nil once loaded. The table is advisory: a process does not stop
// serving because it is not loaded yet.
func (t *Table) Ready() error {
	if !t.Loaded() {
		return fmt.Errorf("order-key evidence not loaded yet")
	}
	return nil
}

// Run follows the topic until ctx ends; Kafka faults are retried.
func (t *Table) Run(ctx context.Context) error {
	cl, err := kgo.NewClient(append(append([]kgo.Opt{}, t.opts...),
		kgo.ConsumeTopics(t.topic),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
		kgo.FetchMaxWait(500*time.Millisecond),
	)...)
	if err != nil {
		return fmt.Errorf("keymode: cannot create the evidence table's client: %w", err)
	}
	defer cl.Close()
	var ends map[int32]int64
	for ctx.Err() == nil && ends == nil {
		listed, err := kadm.NewClient(cl).ListEndOffsets(ctx, t.topic)
		if err == nil {
			err = listed.Error()
		}
		if err == nil {
			ends = map[int32]int64{}
			listed.Each(func(o kadm.ListedOffset) { ends[o.Partition] = o.Offset })
			break
		}
		select {
		case <-ctx.Done():
		case <-time.After(time.Second):
		}
	}
	pos := map[int32]int64{}
	caughtUp := func() bool {
		for p, end := range ends {
			if pos[p] < end {
				return false
			}
		}
		return true
	}
	for ctx.Err() == nil {
		if !t.Loaded() && caughtUp() {
			t.loaded.Store(true)
		}
		fs := cl.PollFetches(ctx)
		fs.EachRecord(func(r *kgo.Record) {
			pos[r.Partition] = r.Offset + 1
			t.apply(r)
		})
	}
	return nil
}

func (t *Table) apply(r *kgo.Record) {
	site := string(r.Key)
	t.mu.Lock()
	defer t.mu.Unlock()
	if r.Value == nil {
		delete(t.bySite, site)
	} else {
		var ev schemas.KeyModeEvidence
		if err := json.Unmarshal(r.Value, &ev); err != nil || ev.Site != site {
			t.log.Warn("keymode: ignoring an invalid evidence record", "site", site, "offset", r.Offset, "err", err)
			return
		}
		t.bySite[site] = &ev
	}
	t.sites.Set(float64(len(t.bySite)))
}
