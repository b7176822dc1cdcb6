package join

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"purchasesync/schemas"
	"purchasesync/schemas/topicadmin"
)

// Topology, in one place:
//
//	inputs   shopify.orders.v1, storefront.purchases.v1   (read_committed, range-assigned)
//	state    join.state.v1                                 (compacted changelog, same partition)
//	outputs  purchases.v1, discrepancies.v1                (same partition as the input)
//	         deadletter.v1                                 (undecodable input)
//	all writes and input offsets commit in one transaction per loop.

// Deps are the processor's collaborators.
type Deps struct {
	ClientOpts []kgo.Opt // base Kafka options (seeds, logger) of every client
	// SessionOpts are added to the transactional session's client only
	// (e.g. metrics hooks, which register once per client).
	SessionOpts []kgo.Opt
	Sites       SiteLookup
	Registerer  prometheus.Registerer
	Logger      *slog.Logger
	Now         func() time.Time // wall clock; time.Now when nil
}

// Processor is the join stage.
type Processor struct {
	cfg  Config
	deps Deps
	m    *metrics
	log  *slog.Logger

	mu       sync.Mutex
	assigned map[int32]bool // partitions of the current generation
	dirty    bool           // assignment changed: drop and restore state

	parts map[int32]*partition
	adm   *kadm.Client
	ends  map[string]map[int32]int64
}

// New creates the processor.
func New(cfg Config, deps Deps) (*Processor, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if deps.Sites == nil || deps.Logger == nil || deps.Registerer == nil {
		return nil, errors.New("join: Sites, Logger and Registerer are required")
	}
	if deps.Now == nil {
		deps.Now = time.Now
	}
	return &Processor{cfg: cfg, deps: deps, m: newMetrics(deps.Registerer), log: deps.Logger,
		assigned: map[int32]bool{}, parts: map[int32]*partition{}}, nil
}

func (p *Processor) topic(t string) string { return p.cfg.Topics.Name(t) }

// Run consumes until ctx ends. It returns nil after a clean stop: the open
// transaction is aborted (its input is re-read by whoever owns the
// partitions next), nothing is half-written.
func (p *Processor) Run(ctx context.Context) error {
	shop, sf := p.topic(schemas.TopicShopifyOrders), p.topic(schemas.TopicStorefrontPurchases)
	admCl, err := kgo.NewClient(p.deps.ClientOpts...)
	if err != nil {
		return fmt.Errorf("join: cannot create admin client: %w", err)
	}
	defer admCl.Close()
	p.adm = kadm.NewClient(admCl)
	// Topics just created may take a moment to show in metadata: retry
	// briefly before refusing to run.
	for attempt := 0; ; attempt++ {
		_, err := topicadmin.CheckCoPartitioned(ctx, p.adm, shop, sf, p.topic(schemas.TopicJoinState),
			p.topic(schemas.TopicPurchases), p.topic(schemas.TopicDiscrepancies))
		if err == nil {
			break
		}
		if attempt == 20 || ctx.Err() != nil {
			return fmt.Errorf("join: %w", err)
		}
		time.Sleep(500 * time.Millisecond)
	}

	opts := append(append(append([]kgo.Opt{}, p.deps.ClientOpts...), p.deps.SessionOpts...),
		kgo.ConsumerGroup(p.cfg.Group),
		kgo.ConsumeTopics(shop, sf),
		// Range assignment gives partition p of both co-partitioned inputs
		// to the same member; cooperative-sticky would not guarantee it.
		kgo.Balancers(kgo.RangeBalancer()),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
		kgo.FetchIsolationLevel(kgo.ReadCommitted()),
		kgo.RequireStableFetchOffsets(),
		kgo.InstanceID(p.cfg.InstanceID),
		kgo.SessionTimeout(p.cfg.SessionTimeout),
		kgo.TransactionalID(p.cfg.TransactionalID),
		kgo.TransactionTimeout(p.cfg.TransactionTimeout),
		kgo.RecordPartitioner(kgo.ManualPartitioner()),
		kgo.OnPartitionsAssigned(func(_ context.Context, _ *kgo.Client, m map[string][]int32) { p.onAssigned(m) }),
		kgo.OnPartitionsRevoked(func(_ context.Context, _ *kgo.Client, m map[string][]int32) { p.onRevoked(m) }),
		kgo.OnPartitionsLost(func(_ context.Context, _ *kgo.Client, m map[string][]int32) { p.onRevoked(m) }),
	)
	sess, err := kgo.NewGroupTransactSession(opts...)
	if err != nil {
		return fmt.Errorf("join: cannot create transactional session: %w", err)
	}
	defer sess.Close()
	// Initialise the producer id now: this fences a predecessor with the
	// same transactional id (its open transaction is aborted) before we
	// restore, instead of at our first produce.
	if _, _, err := sess.Client().ProducerID(ctx); err != nil {
		if ctx.Err() != nil {
			return nil
		}
		return fmt.Errorf("join: cannot initialise transactional producer %s: %w", p.cfg.TransactionalID, err)
	}
	p.log.Info("join processor started", "group", p.cfg.Group, "transactional_id", p.cfg.TransactionalID)

	lastTick := time.Time{}
	for {
		if ctx.Err() != nil {
			return nil
		}
		if err := p.syncAssignment(ctx); err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return err
		}
		pctx, cancel := context.WithTimeout(ctx, p.cfg.TickInterval)
		fs := sess.PollRecords(pctx, p.cfg.MaxPollRecords)
		cancel()
		if ctx.Err() != nil {
			return nil // nothing of this poll was processed or committed
		}
		for _, fe := range fs.Errors() {
			if errors.Is(fe.Err, context.DeadlineExceeded) || errors.Is(fe.Err, context.Canceled) {
				continue
			}
			p.log.Warn("join: fetch error", "topic", fe.Topic, "partition", fe.Partition, "err", fe.Err)
		}
		now := p.deps.Now()
		doTick := now.Sub(lastTick) >= p.cfg.TickInterval
		if fs.NumRecords() == 0 && !(doTick && p.hasDueTimers(now)) {
			if doTick {
				lastTick = now
				p.refreshLag(ctx)
			}
			continue
		}
		if err := sess.Begin(); err != nil {
			return fmt.Errorf("join: cannot begin transaction: %w", err)
		}
		var produceErr error
		var perr sync.Once
		out := func(r *kgo.Record) {
			sess.Produce(ctx, r, func(_ *kgo.Record, err error) {
				if err != nil {
					perr.Do(func() { produceErr = err })
				}
			})
		}
		var restoreErr error
		fs.EachRecord(func(rec *kgo.Record) {
			if restoreErr != nil {
				return
			}
			part, err := p.partitionFor(ctx, rec.Partition)
			if err != nil {
				restoreErr = err
				return
			}
			part.handle(rec, rec.Topic == sf, out)
		})
		if restoreErr == nil && doTick {
			lastTick = now
			p.refreshLag(ctx)
			for _, part := range p.parts {
				part.tick(now, p.watermark(schemas.TopicStorefrontPurchases, part, now), p.watermark(schemas.TopicShopifyOrders, part, now), out)
			}
		}
		start := time.Now()
		commit := kgo.TryCommit
		if restoreErr != nil || ctx.Err() != nil {
			commit = kgo.TryAbort
		}
		// A fresh context: on shutdown the transaction must still end (an
		// open one would stall read_committed readers until it times out).
		ectx, ecancel := context.WithTimeout(context.Background(), p.cfg.TransactionTimeout)
		committed, err := sess.End(ectx, commit)
		ecancel()
		p.m.txn.Observe(time.Since(start).Seconds())
		if restoreErr != nil {
			return restoreErr
		}
		if !committed || err != nil {
			// The in-memory state may include changes that were rolled
			// back: forget it all and restore from the changelog.
			p.m.aborts.Inc()
			p.dropAll()
			if ctx.Err() != nil {
				return nil
			}
			p.log.Warn("join: transaction aborted; state will be restored", "err", err, "produce_err", produceErr)
			// Aborts from rebalances and fencing are survivable: state
			// is restored and input re-read. A closed client is not.
			if errors.Is(err, kgo.ErrClientClosed) {
				return fmt.Errorf("join: cannot commit transaction: %w", err)
			}
		}
		p.log.Debug("join: transaction committed", "records", fs.NumRecords(), "took", time.Since(start).String())
		p.updateGauges()
	}
}

func (p *Processor) onAssigned(m map[string][]int32) {
	p.mu.Lock()
	defer p.mu.Unlock()
	shop, sf := p.topic(schemas.TopicShopifyOrders), p.topic(schemas.TopicStorefrontPurchases)
	a, b := fmt.Sprint(m[shop]), fmt.Sprint(m[sf])
	if a != b {
		// Cannot happen with the range balancer and equal partition counts;
		// if it does, joining would silently miss, so say it loudly.
		p.log.Error("BUG: inputs are not co-assigned", shop, a, sf, b)
	}
	// The range balancer hands out the whole assignment each time, and the
	// transactional session may not report a revoke between two rebalances
	// that happen while we are idle: replace the set, never add to it, or
	// we would go on ticking partitions another member owns.
	p.assigned = map[int32]bool{}
	for _, part := range m[shop] {
		p.assigned[part] = true
	}
	p.dirty = true
	p.log.Info("join: partitions assigned", "partitions", a)
}

func (p *Processor) onRevoked(m map[string][]int32) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, part := range m[p.topic(schemas.TopicShopifyOrders)] {
		delete(p.assigned, part)
	}
	p.dirty = true
}

// syncAssignment drops all state after any assignment change and restores
// every assigned partition before input is processed: holds of partitions
// without new input must still fire.
func (p *Processor) syncAssignment(ctx context.Context) error {
	p.mu.Lock()
	dirty := p.dirty
	p.dirty = false
	want := make([]int32, 0, len(p.assigned))
	for part := range p.assigned {
		want = append(want, part)
	}
	p.mu.Unlock()
	if dirty {
		p.dropAll()
	}
	for _, part := range want {
		if _, err := p.partitionFor(ctx, part); err != nil {
			return err
		}
	}
	return nil
}

func (p *Processor) dropAll() {
	p.parts = map[int32]*partition{}
	p.m.held.Set(0)
	p.m.stateKeys.Set(0)
	p.m.overdue.Set(0)
	p.m.oldestOverdue.Set(0)
}

func (p *Processor) partitionFor(ctx context.Context, id int32) (*partition, error) {
	if part, ok := p.parts[id]; ok {
		return part, nil
	}
	part := newPartition(id, p.cfg, p.deps.Sites, p.m)
	if err := p.restore(ctx, part); err != nil {
		return nil, err
	}
	p.parts[id] = part
	p.updateGauges()
	return part, nil
}

// restore reads partition id of join.state.v1 from the start up to its last
// stable offset. Control records are kept so that reaching the end is
// visible even when the partition ends with a commit marker.
func (p *Processor) restore(ctx context.Context, part *partition) error {
	start := time.Now()
	topic := p.topic(schemas.TopicJoinState)
	end, err := p.stableEnd(ctx, topic, part.id)
	if err != nil {
		return err
	}
	starts, err := p.adm.ListStartOffsets(ctx, topic)
	if err != nil {
		return fmt.Errorf("join: cannot list start offsets of %s: %w", topic, err)
	}
	begin, _ := starts.Lookup(topic, part.id)
	n := 0
	if end > begin.Offset {
		cl, err := kgo.NewClient(append(append([]kgo.Opt{}, p.deps.ClientOpts...),
			kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{topic: {part.id: kgo.NewOffset().AtStart()}}),
			kgo.FetchIsolationLevel(kgo.ReadCommitted()),
			kgo.KeepControlRecords(),
		)...)
		if err != nil {
			return fmt.Errorf("join: cannot create restore client: %w", err)
		}
		defer cl.Close()
		// Keep only each key's last value (the changelog is compacted
		// lazily), then decode them in parallel: decoding dominates.
		latest := map[string][]byte{}
		next := begin.Offset
		for next < end {
			fs := cl.PollFetches(ctx)
			if ctx.Err() != nil {
				return ctx.Err()
			}
			if err := fs.Err0(); err != nil {
				return fmt.Errorf("join: cannot restore %s/%d: %w", topic, part.id, err)
			}
			fs.EachRecord(func(r *kgo.Record) {
				next = r.Offset + 1
				if r.Attrs.IsControl() {
					return
				}
				n++
				if r.Value == nil {
					delete(latest, string(r.Key))
				} else {
					latest[string(r.Key)] = r.Value
				}
			})
		}
		if err := part.restoreAll(latest); err != nil {
			return err
		}
	}
	part.finishRestore()
	if err := p.initPositions(ctx, part); err != nil {
		return err
	}
	p.m.restore.Observe(time.Since(start).Seconds())
	p.m.restoredKeys.Add(float64(n))
	p.log.Info("join: partition restored", "partition", part.id, "records", n, "keys", len(part.states), "held", part.held, "took", time.Since(start).String())
	return nil
}

// stableEnd waits until partition id of topic has no transaction in flight
// (last stable offset = high watermark) and returns that offset. Only the
// partition's owner writes it, so what is in flight is the previous owner's
// last transaction: committed with its markers still being written, open
// and about to be fenced, or abandoned until the transaction timeout.
// Restoring before it resolves could miss committed state and register a
// purchase twice.
func (p *Processor) stableEnd(ctx context.Context, topic string, id int32) (int64, error) {
	deadline := time.Now().Add(2*p.cfg.TransactionTimeout + 10*time.Second)
	for {
		lso, err := p.adm.ListCommittedOffsets(ctx, topic)
		if err == nil {
			err = lso.Error()
		}
		if err != nil {
			return 0, fmt.Errorf("join: cannot list stable offsets of %s: %w", topic, err)
		}
		hwm, err := p.adm.ListEndOffsets(ctx, topic)
		if err == nil {
			err = hwm.Error()
		}
		if err != nil {
			return 0, fmt.Errorf("join: cannot list end offsets of %s: %w", topic, err)
		}
		a, _ := lso.Lookup(topic, id)
		b, _ := hwm.Lookup(topic, id)
		if a.Offset >= b.Offset {
			return a.Offset, nil
		}
		if time.Now().After(deadline) {
			return 0, fmt.Errorf("join: %s/%d has had a transaction in flight for too long (stable %d < end %d)", topic, id, a.Offset, b.Offset)
		}
		select {
		case <-ctx.Done():
			return 0, ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// initPositions sets where the inputs will be read from (the group's
// committed offsets), for the rule-9 watermarks.
func (p *Processor) initPositions(ctx context.Context, part *partition) error {
	offs, err := p.adm.FetchOffsets(ctx, p.cfg.Group)
	if err != nil {
		return fmt.Errorf("join: cannot fetch committed offsets of group %s: %w", p.cfg.Group, err)
	}
	for _, t := range []string{schemas.TopicStorefrontPurchases, schemas.TopicShopifyOrders} {
		next := int64(0)
		if o, ok := offs.Lookup(p.topic(t), part.id); ok && o.Err == nil && o.At >= 0 {
			next = o.At
		}
		if t == schemas.TopicStorefrontPurchases {
			part.sfNext = next
		} else {
			part.whNext = next
		}
	}
	return nil
}

func (p *Processor) hasDueTimers(now time.Time) bool {
	for _, part := range p.parts {
		if len(part.timers) > 0 && !part.timers[0].at.After(now) {
			return true
		}
	}
	return false
}

// refreshLag reads the inputs' end offsets (once per tick) for the lag
// metric and the watermarks.
func (p *Processor) refreshLag(ctx context.Context) {
	ends, err := p.adm.ListEndOffsets(ctx, p.topic(schemas.TopicShopifyOrders), p.topic(schemas.TopicStorefrontPurchases))
	if err != nil {
		p.log.Warn("join: cannot list input end offsets", "err", err)
		return
	}
	m := map[string]map[int32]int64{}
	ends.Each(func(o kadm.ListedOffset) {
		if o.Err != nil {
			return
		}
		if m[o.Topic] == nil {
			m[o.Topic] = map[int32]int64{}
		}
		m[o.Topic][o.Partition] = o.Offset
	})
	p.ends = m
	for id, part := range p.parts {
		for _, t := range []string{schemas.TopicStorefrontPurchases, schemas.TopicShopifyOrders} {
			next := part.whNext
			if t == schemas.TopicStorefrontPurchases {
				next = part.sfNext
			}
			if end, ok := m[p.topic(t)][id]; ok && next >= 0 {
				p.m.lag.WithLabelValues(p.topic(t), strconv.Itoa(int(id))).Set(float64(max(end-next, 0)))
			}
		}
	}
}

// watermark is the time up to which an input partition has been read: now
// when it is caught up with the end offset seen at this tick, else the
// received-at of the last record read (zero when nothing was read yet).
func (p *Processor) watermark(t string, part *partition, now time.Time) time.Time {
	next, last := part.whNext, part.whLast
	if t == schemas.TopicStorefrontPurchases {
		next, last = part.sfNext, part.sfLast
	}
	end, ok := p.ends[p.topic(t)][part.id]
	if ok && next >= end {
		return now
	}
	return last
}

func (p *Processor) updateGauges() {
	keys, held, overdue, oldest, now := 0, 0, 0, time.Duration(0), p.deps.Now()
	for _, part := range p.parts {
		keys += len(part.states)
		held += part.held
		n, o := part.overdueHolds(now)
		overdue, oldest = overdue+n, max(oldest, o)
	}
	p.m.stateKeys.Set(float64(keys))
	p.m.held.Set(float64(held))
	p.m.overdue.Set(float64(overdue))
	p.m.oldestOverdue.Set(oldest.Seconds())
}
