package keymode

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"purchasesync/schemas"
	"purchasesync/schemas/health"
	"purchasesync/schemas/retry"
	"purchasesync/schemas/topicadmin"
)

// SiteLookup is what the detector needs of the site registry.
type SiteLookup interface {
	Get(site string) (schemas.Site, bool)
}

// Deps are the detector's collaborators.
type Deps struct {
	// KafkaOpts connect to Kafka (seeds, TLS, SASL); the detector adds its
	// own consumer and producer options.
	KafkaOpts  []kgo.Opt
	Sites      SiteLookup
	Registerer prometheus.Registerer
	Logger     *slog.Logger // nil: discard
	Now        func() time.Time
}

// Detector is the order-key detector: see the package documentation.
type Detector struct {
	cfg    Config
	deps   Deps
	m      *metrics
	log    *slog.Logger
	health *health.Health
	kafka  *health.Dep

	mu sync.Mutex
	// parts holds the windows of the assigned partitions of
	// keymode.observations.v1; pending are assigned partitions whose
	// windows are not restored yet.
	parts   map[int32]map[string]*window
	pending map[int32]bool
	dirty   map[string]int32 // site → partition, changed since the last flush
	// evidence is each held site's latest summary; contradicted the held
	// syncing sites whose evidence contradicts their mode, with the mode
	// that fits.
	evidence     map[string]*schemas.KeyModeEvidence
	contradicted map[string]schemas.OrderKey
}

// New builds a detector.
func New(cfg Config, deps Deps) (*Detector, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg = cfg.withGroups()
	if deps.Sites == nil {
		return nil, errors.New("keymode: Sites is required")
	}
	if deps.Registerer == nil {
		deps.Registerer = prometheus.NewRegistry()
	}
	if deps.Logger == nil {
		deps.Logger = slog.New(slog.DiscardHandler)
	}
	if deps.Now == nil {
		deps.Now = time.Now
	}
	h := health.New("keymode", "", deps.Registerer, deps.Logger)
	h.Starting("windows not restored yet")
	return &Detector{cfg: cfg, deps: deps, m: newMetrics(deps.Registerer), log: deps.Logger, health: h, kafka: h.Dep("kafka"),
		parts: map[int32]map[string]*window{}, pending: map[int32]bool{}, dirty: map[string]int32{}, evidence: map[string]*schemas.KeyModeEvidence{}, contradicted: map[string]schemas.OrderKey{}}, nil
}

// Ready is nil once the detector runs and while Kafka answers.
func (d *Detector) Ready() error { return d.health.Err() }

func (d *Detector) topic(t string) string { return d.cfg.Topics.Name(t) }

// Run observes and judges until ctx ends. Kafka faults never end it: each
// stage restarts its session after a backoff and re-reads from its
// committed offsets.
func (d *Detector) Run(ctx context.Context) error {
	if err := d.checkTopics(ctx); err != nil {
		return err
	}
	var wg sync.WaitGroup
	wg.Go(func() { d.loop(ctx, "observe", d.observe) })
	wg.Go(func() { d.loop(ctx, "judge", d.judge) })
	wg.Wait()
	return nil
}

// checkTopics: a window is restored from the state partition with the
// observations partition's number, so the two must have one partition
// count. Only a definite mismatch ends Run.
func (d *Detector) checkTopics(ctx context.Context) error {
	cl, err := kgo.NewClient(d.deps.KafkaOpts...)
	if err != nil {
		return fmt.Errorf("keymode: cannot create Kafka client: %w", err)
	}
	defer cl.Close()
	adm := kadm.NewClient(cl)
	bo := retry.Backoff{Initial: retryInitial, Max: retryMax}
	for {
		_, err := topicadmin.CheckCoPartitioned(ctx, adm, d.topic(schemas.TopicKeyModeObservations), d.topic(schemas.TopicKeyModeState))
		if err == nil {
			d.kafka.OK("start")
			return nil
		}
		if errors.Is(err, topicadmin.ErrNotCoPartitioned) {
			return fmt.Errorf("keymode: %w", err)
		}
		d.kafka.Fail("start", fmt.Errorf("cannot check the detector's topics: %w", err))
		if retry.Sleep(ctx, bo.Next()) != nil {
			return nil
		}
	}
}

// shutdownFlush bounds the last flush when Run stops.
const shutdownFlush = 5 * time.Second

// verdictInterval is how often every held site's verdict is judged again
// against its current configuration.
const verdictInterval = 10 * time.Second

const (
	retryInitial = 250 * time.Millisecond
	retryMax     = 5 * time.Second
)

// loop runs one stage's sessions, with backoff between them.
func (d *Detector) loop(ctx context.Context, name string, session func(context.Context) error) {
	bo := retry.Backoff{Initial: retryInitial, Max: retryMax}
	for ctx.Err() == nil {
		started := time.Now()
		err := session(ctx)
		if ctx.Err() != nil {
			return
		}
		if err != nil {
			d.kafka.Fail(name, err)
		}
		retry.Sleep(ctx, bo.AfterRun(time.Since(started)))
	}
}

// observe re-keys the raw topics by site: one observation per orders/create
// webhook (or reconciled order) and per storefront event, committed after
// the observations are written (at least once: the window ignores what it
// holds already). A new group starts MaxAge back, the window's span.
func (d *Detector) observe(ctx context.Context) error {
	orders, sf := d.topic(schemas.TopicShopifyOrders), d.topic(schemas.TopicStorefrontPurchases)
	out := d.topic(schemas.TopicKeyModeObservations)
	cl, err := kgo.NewClient(append(append([]kgo.Opt{}, d.deps.KafkaOpts...),
		kgo.ConsumerGroup(d.cfg.ObserveGroup),
		kgo.ConsumeTopics(orders, sf),
		kgo.ConsumeResetOffset(kgo.NewOffset().AfterMilli(d.deps.Now().Add(-d.cfg.MaxAge).UnixMilli())),
		kgo.FetchIsolationLevel(kgo.ReadCommitted()),
		kgo.DisableAutoCommit(),
		kgo.BlockRebalanceOnPoll(),
		kgo.SessionTimeout(d.cfg.SessionTimeout),
	)...)
	if err != nil {
		return fmt.Errorf("cannot create the observe client: %w", err)
	}
	defer cl.CloseAllowingRebalance()
	for {
		fs := cl.PollRecords(ctx, d.cfg.MaxPollRecords)
		if ctx.Err() != nil {
			return nil
		}
		d.kafka.Fetches(fs)
		var recs []*kgo.Record
		fs.EachRecord(func(r *kgo.Record) {
			o, reason := observationOf(r, sf)
			if reason != "" {
				d.m.skipped.WithLabelValues(reason).Inc()
				return
			}
			v, _ := json.Marshal(o)
			recs = append(recs, &kgo.Record{Topic: out, Key: []byte(o.Site), Value: v})
			d.m.observations.WithLabelValues(o.Side).Inc()
		})
		if len(recs) > 0 {
			if err := cl.ProduceSync(ctx, recs...).FirstErr(); err != nil {
				cl.AllowRebalance()
				return fmt.Errorf("cannot write observations: %w", err) // re-read from the committed offsets
			}
		}
		if fs.NumRecords() > 0 {
			if err := cl.CommitUncommittedOffsets(ctx); err != nil {
				cl.AllowRebalance()
				return fmt.Errorf("cannot commit the observe group's offsets: %w", err)
			}
			d.kafka.OK("observe")
		}
		cl.AllowRebalance()
	}
}

// observationOf reads one raw record's identifiers; reason says why there
// is none.
func observationOf(r *kgo.Record, storefrontTopic string) (*schemas.KeyModeObservation, string) {
	site, _, err := schemas.SplitKey(string(r.Key))
	if err != nil {
		return nil, skipNoSite
	}
	o := &schemas.KeyModeObservation{Site: site, At: r.Timestamp.UTC()}
	if t, ok := schemas.ReceivedAtOf(r.Headers); ok {
		o.At = t.UTC()
	}
	if r.Topic == storefrontTopic {
		p, err := schemas.ParseStorefrontPurchase(r.Value)
		if err != nil {
			return nil, skipUndecodable
		}
		o.Side, o.Value = schemas.SideStorefront, strings.TrimSpace(string(p.Purchase.OrderNumber))
		return o, ""
	}
	if wh := schemas.ParseWebhookHeaders(r.Headers); wh.IsRefund() {
		return nil, skipRefund
	}
	id, number, name, err := schemas.ShopifyOrderIdentifiers(r.Value)
	if err != nil {
		return nil, skipUndecodable
	}
	o.Side, o.ID, o.Number, o.Name = schemas.SideWebhook, id, number, name
	return o, ""
}

// judge keeps the windows of its partitions of the observations: restored
// from keymode.state.v1 on assignment, changed ones written back (with the
// evidence) every FlushInterval, after which the input offsets are
// committed. A crash between the two replays observations the window holds
// already, which changes nothing.
func (d *Detector) judge(ctx context.Context) error {
	in := d.topic(schemas.TopicKeyModeObservations)
	cl, err := kgo.NewClient(append(append([]kgo.Opt{}, d.deps.KafkaOpts...),
		kgo.ConsumerGroup(d.cfg.Group),
		kgo.ConsumeTopics(in),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
		kgo.FetchIsolationLevel(kgo.ReadCommitted()),
		kgo.DisableAutoCommit(),
		kgo.BlockRebalanceOnPoll(),
		kgo.SessionTimeout(d.cfg.SessionTimeout),
		kgo.OnPartitionsAssigned(func(_ context.Context, _ *kgo.Client, m map[string][]int32) {
			d.mu.Lock()
			defer d.mu.Unlock()
			for _, p := range m[in] {
				d.pending[p] = true
			}
		}),
		kgo.OnPartitionsRevoked(func(ctx context.Context, cl *kgo.Client, m map[string][]int32) {
			d.mu.Lock()
			defer d.mu.Unlock()
			// Hand over what is done: the next owner restores it. Bounded,
			// since a revoke can come with Kafka half away (or at Close).
			fctx, cancel := context.WithTimeout(ctx, shutdownFlush)
			defer cancel()
			if err := d.flushLocked(fctx, cl); err != nil {
				d.log.Warn("keymode: could not write the windows before giving partitions away; the next owner replays them", "err", err)
			}
			d.dropLocked(m[in])
		}),
		kgo.OnPartitionsLost(func(_ context.Context, _ *kgo.Client, m map[string][]int32) {
			d.mu.Lock()
			defer d.mu.Unlock()
			d.dropLocked(m[in])
		}),
	)...)
	if err != nil {
		return fmt.Errorf("cannot create the judge client: %w", err)
	}
	defer func() {
		d.mu.Lock()
		d.dropLocked(nil)
		d.mu.Unlock()
		cl.CloseAllowingRebalance()
	}()
	lastFlush, lastVerdicts := time.Now(), time.Now()
	for {
		pctx, cancel := context.WithTimeout(ctx, d.cfg.FlushInterval)
		fs := cl.PollRecords(pctx, d.cfg.MaxPollRecords)
		cancel()
		if ctx.Err() != nil {
			// A last flush, bounded: with Kafka away it must not hold up
			// the process's shutdown (what is not written is replayed).
			fctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), shutdownFlush)
			d.mu.Lock()
			err := d.flushLocked(fctx, cl)
			d.mu.Unlock()
			cancel()
			if err != nil {
				d.log.Warn("keymode: could not write the windows at shutdown; they are replayed at the next start", "err", err)
			}
			return nil
		}
		d.kafka.Fetches(fs)
		d.mu.Lock()
		if err := d.restorePendingLocked(ctx); err != nil {
			d.mu.Unlock()
			cl.AllowRebalance()
			return err
		}
		fs.EachRecord(func(r *kgo.Record) { d.applyLocked(r) })
		var ferr error
		if time.Since(lastFlush) >= d.cfg.FlushInterval {
			lastFlush = time.Now()
			ferr = d.flushLocked(ctx, cl)
		}
		if time.Since(lastVerdicts) >= verdictInterval {
			// A site's configuration changes without observations: its
			// verdict follows within this interval.
			lastVerdicts = time.Now()
			for site, ev := range d.evidence {
				d.setVerdictLocked(site, ev)
			}
		}
		d.mu.Unlock()
		cl.AllowRebalance()
		if ferr != nil {
			return ferr // the new session restores what was written and replays the rest
		}
	}
}

func (d *Detector) applyLocked(r *kgo.Record) {
	part, ok := d.parts[r.Partition]
	if !ok {
		return // revoked meanwhile
	}
	var o schemas.KeyModeObservation
	if err := json.Unmarshal(r.Value, &o); err != nil || o.Site == "" {
		d.m.skipped.WithLabelValues(skipUndecodable).Inc()
		return
	}
	w := part[o.Site]
	if w == nil {
		w = newWindow(o.Site)
		part[o.Site] = w
	}
	mode := siteMode{mode: schemas.OrderKeyID}
	if s, ok := d.deps.Sites.Get(o.Site); ok {
		mode = siteMode{mode: s.OrderKey, syncing: s.PurchaseSyncing}
		if mode.mode == "" {
			mode.mode = schemas.OrderKeyID
		}
	}
	changed, double := w.apply(&o, mode, d.cfg.limits())
	if double {
		d.m.doubles.Inc()
	}
	if changed {
		d.dirty[o.Site] = r.Partition
	}
}

// restorePendingLocked restores the windows of newly assigned partitions
// from keymode.state.v1, before any of their observations is applied.
func (d *Detector) restorePendingLocked(ctx context.Context) error {
	if len(d.pending) == 0 {
		return nil
	}
	start := time.Now()
	ps := make([]int32, 0, len(d.pending))
	for p := range d.pending {
		ps = append(ps, p)
	}
	latest, err := readCompacted(ctx, d.deps.KafkaOpts, d.topic(schemas.TopicKeyModeState), ps)
	if err != nil {
		return fmt.Errorf("cannot restore the detector's windows: %w", err)
	}
	for _, p := range ps {
		d.parts[p] = map[string]*window{}
		delete(d.pending, p)
	}
	n := 0
	for site, v := range latest {
		w, err := unmarshalWindow(v.value)
		if err != nil {
			d.log.Warn("keymode: ignoring an undecodable window; it starts empty", "site", site, "err", err)
			continue
		}
		if d.parts[v.partition] != nil {
			d.parts[v.partition][site] = w
			d.evidence[site] = w.evidence(d.deps.Now())
			d.setVerdictLocked(site, d.evidence[site])
			n++
		}
	}
	d.m.sites.Set(float64(d.heldSites()))
	d.m.restore.Observe(time.Since(start).Seconds())
	d.health.Started()
	d.log.Debug("keymode: windows restored", "partitions", len(ps), "sites", n, "took", time.Since(start).String())
	return nil
}

// flushLocked writes the changed windows and their evidence, then commits
// the input offsets, and refreshes the contradicted gauges of the changed
// sites.
func (d *Detector) flushLocked(ctx context.Context, cl *kgo.Client) error {
	d.m.sites.Set(float64(d.heldSites()))
	if len(d.dirty) == 0 {
		if err := cl.CommitUncommittedOffsets(ctx); err != nil {
			return fmt.Errorf("cannot commit the judge group's offsets: %w", err)
		}
		return nil
	}
	now := d.deps.Now()
	recs := make([]*kgo.Record, 0, 2*len(d.dirty))
	evs := make(map[string]*schemas.KeyModeEvidence, len(d.dirty))
	for site, p := range d.dirty {
		w := d.parts[p][site]
		if w == nil {
			continue
		}
		state, err := w.marshal()
		if err != nil {
			return fmt.Errorf("cannot encode the window of %s: %w", site, err)
		}
		ev := w.evidence(now)
		evs[site] = ev
		evb, _ := json.Marshal(ev)
		recs = append(recs,
			&kgo.Record{Topic: d.topic(schemas.TopicKeyModeState), Key: []byte(site), Value: state},
			&kgo.Record{Topic: d.topic(schemas.TopicKeyModeEvidence), Key: []byte(site), Value: evb})
	}
	if err := cl.ProduceSync(ctx, recs...).FirstErr(); err != nil {
		d.m.flushes.WithLabelValues("failed").Inc()
		return fmt.Errorf("cannot write the detector's windows: %w", err)
	}
	if err := cl.CommitUncommittedOffsets(ctx); err != nil {
		d.m.flushes.WithLabelValues("failed").Inc()
		return fmt.Errorf("cannot commit the judge group's offsets: %w", err)
	}
	d.m.flushes.WithLabelValues("ok").Inc()
	d.kafka.OK("judge")
	clear(d.dirty)
	for site, ev := range evs {
		d.evidence[site] = ev
		d.setVerdictLocked(site, ev)
	}
	return nil
}

// setVerdictLocked judges a site again: a syncing site whose evidence
// contradicts its mode is counted and logged (once per change of verdict).
func (d *Detector) setVerdictLocked(site string, ev *schemas.KeyModeEvidence) {
	var suggested schemas.OrderKey
	s, ok := d.deps.Sites.Get(site)
	if ok && s.PurchaseSyncing {
		if dg := schemas.DiagnoseKeyMode(s, ev, d.cfg.MinMatches); dg.Verdict == schemas.VerdictContradicted {
			suggested = *dg.SuggestedOrderKey
		}
	}
	old, was := d.contradicted[site]
	switch {
	case suggested == "" && was:
		delete(d.contradicted, site)
		d.log.Info("order key no longer contradicted", "site", site)
	case suggested != "" && (!was || old != suggested):
		d.contradicted[site] = suggested
		d.log.Warn("order key contradicted: the storefront sends another identifier than the site's order_key, so its purchases are registered twice; see purchasesync sites diagnose",
			"site", site, "configured", s.OrderKey, "suggested", suggested)
	}
	d.m.contradicted.Set(float64(len(d.contradicted)))
}

// heldSites is the number of windows this instance holds.
func (d *Detector) heldSites() int {
	n := 0
	for _, part := range d.parts {
		n += len(part)
	}
	return n
}

// dropLocked forgets the windows of ps (nil: all).
func (d *Detector) dropLocked(ps []int32) {
	if ps == nil {
		for p := range d.parts {
			ps = append(ps, p)
		}
		clear(d.pending)
	}
	for _, p := range ps {
		for site := range d.parts[p] {
			delete(d.dirty, site)
			delete(d.evidence, site)
			delete(d.contradicted, site)
		}
		delete(d.parts, p)
		delete(d.pending, p)
	}
	d.m.contradicted.Set(float64(len(d.contradicted)))
	d.m.sites.Set(float64(d.heldSites()))
}
