package refundroute

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"purchasesync/processors/internal/episode"
	"purchasesync/schemas"
	"purchasesync/schemas/retry"
)

// Topology, in one place:
//
//	input    shopify.order_ids.v1  (read_committed; order index records and
//	                                 refunds, keyed site/<order id>)
//	state    per partition, rebuilt by replaying the input (no changelog)
//	outputs  shopify.orders.v1     (routed refunds, key site/<order number>)
//	         shopify.unrouted.v1   (refunds whose order never came)
//	outputs and input offsets commit in one transaction per poll.

// Deps are the router's collaborators.
type Deps struct {
	KafkaOpts   []kgo.Opt // base Kafka options (seeds, logger) of every client
	SessionOpts []kgo.Opt // added to the transactional session's client only
	Registerer  prometheus.Registerer
	Logger      *slog.Logger // nil: discard
}

// Router is the refund router stage.
type Router struct {
	cfg  Config
	deps Deps
	m    *metrics
	log  *slog.Logger
	t    topics

	mu    sync.Mutex
	dirty bool // assignment changed: drop the state

	parts  map[int32]*partitionState
	health *episode.Tracker
	adm    *kadm.Client
}

// New creates the router.
func New(cfg Config, deps Deps) (*Router, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg = cfg.withNames()
	if deps.Registerer == nil {
		return nil, errors.New("refundroute: Registerer is required")
	}
	if deps.Logger == nil {
		deps.Logger = slog.New(slog.DiscardHandler)
	}
	m := newMetrics(deps.Registerer)
	return &Router{cfg: cfg, deps: deps, m: m, log: deps.Logger, parts: map[int32]*partitionState{},
		t:      topics{orders: cfg.Topics.Name(schemas.TopicShopifyOrders), unrouted: cfg.Topics.Name(schemas.TopicShopifyUnrouted)},
		health: episode.New("refund router", deps.Logger, m.ready)}, nil
}

// Backoff between transactional sessions.
const (
	retryInitial = 250 * time.Millisecond
	retryMax     = 5 * time.Second
)

// Run routes until ctx ends and returns nil then: the open transaction is
// aborted and its input is read again by whoever owns the partition next.
// Kafka faults never end it: the session is closed, the state dropped, and
// a new session (whose InitProducerID fences the old one) restores and goes
// on after a backoff; /readyz says not ready meanwhile.
func (r *Router) Run(ctx context.Context) error {
	admCl, err := kgo.NewClient(r.deps.KafkaOpts...)
	if err != nil {
		return fmt.Errorf("refundroute: cannot create admin client: %w", err)
	}
	defer admCl.Close()
	r.adm = kadm.NewClient(admCl)
	bo := retry.Backoff{Initial: retryInitial, Max: retryMax}
	for ctx.Err() == nil {
		started := time.Now()
		err := r.session(ctx)
		if ctx.Err() != nil {
			break
		}
		r.dropAll()
		r.health.Set(err)
		r.m.sessionRestarts.Inc()
		retry.Sleep(ctx, bo.AfterRun(time.Since(started)))
	}
	return nil
}

// Ready reports nil while the router processes normally.
func (r *Router) Ready() error {
	if err := r.health.Err(); err != nil {
		return err
	}
	if !r.health.EverOK() {
		return errors.New("refundroute: not started yet")
	}
	return nil
}

// session runs one transactional session until ctx ends (nil) or a Kafka
// fault breaks it.
func (r *Router) session(ctx context.Context) error {
	in := r.cfg.Topics.Name(schemas.TopicShopifyOrderIDs)
	r.mu.Lock()
	r.dirty = true
	r.mu.Unlock()
	opts := append(append(append([]kgo.Opt{}, r.deps.KafkaOpts...), r.deps.SessionOpts...),
		kgo.ConsumerGroup(r.cfg.Group),
		kgo.ConsumeTopics(in),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
		kgo.FetchIsolationLevel(kgo.ReadCommitted()),
		kgo.RequireStableFetchOffsets(),
		kgo.InstanceID(r.cfg.InstanceID),
		kgo.SessionTimeout(r.cfg.SessionTimeout),
		kgo.TransactionalID(r.cfg.TransactionalID),
		kgo.TransactionTimeout(r.cfg.TransactionTimeout),
		// Outputs keep the default partitioner (murmur2 on the key), the
		// ingest's: a routed refund lands in its purchase's partition of
		// shopify.orders.v1, as if the ingest had keyed it.
		kgo.OnPartitionsAssigned(func(context.Context, *kgo.Client, map[string][]int32) { r.markDirty() }),
		kgo.OnPartitionsRevoked(func(context.Context, *kgo.Client, map[string][]int32) { r.markDirty() }),
		kgo.OnPartitionsLost(func(context.Context, *kgo.Client, map[string][]int32) { r.markDirty() }),
	)
	sess, err := kgo.NewGroupTransactSession(opts...)
	if err != nil {
		return fmt.Errorf("refundroute: cannot create transactional session: %w", err)
	}
	defer sess.Close()
	if _, _, err := sess.Client().ProducerID(ctx); err != nil {
		return fmt.Errorf("refundroute: cannot initialise transactional producer %s: %w", r.cfg.TransactionalID, err)
	}
	r.health.Set(nil)
	r.log.Info("refund router started", "group", r.cfg.Group, "transactional_id", r.cfg.TransactionalID)
	for {
		pctx, cancel := context.WithTimeout(ctx, r.cfg.PollInterval)
		fs := sess.PollRecords(pctx, r.cfg.MaxPollRecords)
		cancel()
		if ctx.Err() != nil {
			return nil // nothing of this poll was processed or committed
		}
		r.mu.Lock()
		if r.dirty {
			// A partition may have moved: what we know of it may be
			// stale. Each is restored again at its next record.
			r.dirty = false
			r.dropAll()
		}
		r.mu.Unlock()
		fetchErr := false
		for _, fe := range fs.Errors() {
			if !errors.Is(fe.Err, context.DeadlineExceeded) && !errors.Is(fe.Err, context.Canceled) {
				fetchErr = true
				r.health.Set(fmt.Errorf("refundroute: fetch from %s/%d: %w", fe.Topic, fe.Partition, fe.Err))
			}
		}
		if fs.NumRecords() == 0 {
			if !fetchErr {
				// A quiet input polled without an error: the fault is
				// over. Without this, a router with nothing to route
				// would stay not ready after a broker restart, since only
				// a committed transaction cleared it (chaos test).
				r.health.Set(nil)
			}
			continue
		}
		if err := sess.Begin(); err != nil {
			return fmt.Errorf("refundroute: cannot begin transaction: %w", err)
		}
		var failMu sync.Mutex
		var failed error
		produce := func(rec *kgo.Record) {
			sess.Produce(ctx, rec, func(_ *kgo.Record, err error) {
				if err != nil {
					failMu.Lock()
					failed = err
					failMu.Unlock()
				}
			})
		}
		var routed, expired, indexed, skipped int
		var applyErr error
		fs.EachPartition(func(ftp kgo.FetchTopicPartition) {
			if applyErr != nil || len(ftp.Records) == 0 {
				return
			}
			part, err := r.partition(ctx, ftp.Partition, ftp.Records[0].Offset)
			if err != nil {
				applyErr = err
				return
			}
			for _, rec := range ftp.Records {
				if rec.Offset < part.next {
					continue // in the restored state already
				}
				outs, kind := part.apply(rec, r.cfg, r.t)
				for _, o := range outs {
					produce(o.rec)
					if o.expired {
						expired++
						r.log.Warn("refund router: a refund's order never came; the refund goes to unrouted",
							"key", string(o.from), "shop", string(o.rec.Key), "reason", ReasonRefundOrderUnknown, "order_wait", r.cfg.OrderWait.String())
					} else {
						routed++
					}
				}
				switch kind {
				case kindIndex:
					indexed++
				case kindOther:
					skipped++
				}
			}
		})
		ectx, ecancel := context.WithTimeout(context.WithoutCancel(ctx), r.cfg.TransactionTimeout)
		commit := kgo.TryCommit
		if applyErr != nil || ctx.Err() != nil {
			commit = kgo.TryAbort
		} else if err := sess.Client().Flush(ectx); err != nil {
			ecancel()
			return fmt.Errorf("refundroute: cannot deliver the transaction's records: %w", err)
		}
		failMu.Lock()
		if failed != nil {
			commit = kgo.TryAbort
		}
		fail := failed
		failMu.Unlock()
		committed, err := sess.End(ectx, commit)
		ecancel()
		if committed && err == nil {
			r.m.routed.Add(float64(routed))
			r.m.expired.Add(float64(expired))
			r.m.indexed.Add(float64(indexed))
			r.m.skipped.Add(float64(skipped))
			r.updateGauges()
			r.health.Set(nil)
			continue
		}
		// The state may hold changes that were rolled back: drop it; the
		// next poll re-reads from the committed offsets and restores.
		r.m.aborts.Inc()
		r.dropAll()
		switch {
		case ctx.Err() != nil:
			return nil
		case err != nil:
			return fmt.Errorf("refundroute: cannot end transaction: %w", err)
		case applyErr != nil:
			return applyErr
		case fail != nil:
			return fmt.Errorf("refundroute: a record failed to produce: %w", fail)
		}
		r.log.Info("refund router: transaction aborted by a rebalance; state will be restored")
	}
}

func (r *Router) markDirty() {
	r.mu.Lock()
	r.dirty = true
	r.mu.Unlock()
}

func (r *Router) dropAll() {
	r.parts = map[int32]*partitionState{}
	r.updateGauges()
}

func (r *Router) updateGauges() {
	waiting, keys := 0, 0
	for _, p := range r.parts {
		waiting += p.nWait
		keys += len(p.index)
	}
	r.m.waiting.Set(float64(waiting))
	r.m.indexKeys.Set(float64(keys))
}

// partition returns partition id's state, restoring it first when it is
// not known: first is the offset of the first record polled, so the state
// must be exactly that of every record before it.
func (r *Router) partition(ctx context.Context, id int32, first int64) (*partitionState, error) {
	if p, ok := r.parts[id]; ok && p.next >= first {
		return p, nil
	}
	p, err := r.restore(ctx, id, first)
	if err != nil {
		return nil, err
	}
	r.parts[id] = p
	return p, nil
}

// restore rebuilds partition id's state by replaying shopify.order_ids.v1
// from its start up to (not including) offset upTo, without writing
// anything: the topic is its own changelog. Replay gives the same state as
// live processing because apply depends only on the records, in order, and
// what retention has deleted was expired already (Config.Validate).
//
// Restoring up to the first record the session polled, rather than up to a
// committed offset read beforehand, cannot disagree with where the session
// actually reads from.
func (r *Router) restore(ctx context.Context, id int32, upTo int64) (*partitionState, error) {
	start := time.Now()
	topic := r.cfg.Topics.Name(schemas.TopicShopifyOrderIDs)
	p := newPartitionState(id)
	starts, err := r.adm.ListStartOffsets(ctx, topic)
	if err == nil {
		err = starts.Error()
	}
	if err != nil {
		return nil, fmt.Errorf("refundroute: cannot list start offsets of %s: %w", topic, err)
	}
	begin, _ := starts.Lookup(topic, id)
	n := 0
	if upTo > begin.Offset {
		cl, err := kgo.NewClient(append(append([]kgo.Opt{}, r.deps.KafkaOpts...),
			kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{topic: {id: kgo.NewOffset().AtStart()}}),
			kgo.FetchIsolationLevel(kgo.ReadCommitted()),
			kgo.KeepControlRecords(),
		)...)
		if err != nil {
			return nil, fmt.Errorf("refundroute: cannot create restore client: %w", err)
		}
		defer cl.Close()
		next := begin.Offset
		for next < upTo {
			fs := cl.PollFetches(ctx)
			if ctx.Err() != nil {
				return nil, ctx.Err()
			}
			if err := fs.Err0(); err != nil {
				return nil, fmt.Errorf("refundroute: cannot restore %s/%d: %w", topic, id, err)
			}
			fs.EachRecord(func(rec *kgo.Record) {
				if rec.Offset >= upTo {
					return
				}
				next = rec.Offset + 1
				if rec.Attrs.IsControl() {
					return
				}
				n++
				p.apply(rec, r.cfg, r.t) // outputs were written when it was live
			})
		}
	}
	p.next = upTo
	took := time.Since(start)
	r.m.restore.Observe(took.Seconds())
	r.m.restoredRecords.Add(float64(n))
	r.log.Info("refund router: partition restored", "partition", id, "records", n, "index_keys", len(p.index), "waiting", p.nWait, "took", took.String())
	return p, nil
}
