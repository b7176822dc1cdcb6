package control

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"purchasesync/processors/internal/follow"
	"purchasesync/schemas"
	"purchasesync/schemas/health"
)

// seenIndex follows shopify.orders.v1 from now-horizon and remembers which
// keys it holds: the orders the pipeline saw.
type seenIndex struct {
	topic   string
	opts    []kgo.Opt
	horizon time.Duration
	now     func() time.Time
	log     *slog.Logger

	mu       sync.Mutex
	keys     map[string]int64 // key → record timestamp (ms)
	pos      map[int32]int64  // partition → next offset to read
	started  bool
	progress follow.Broadcast // whenever pos moves

	// Set by the service: the follower's Kafka health, called once the
	// start offsets are known, and how often to probe.
	kafka    *health.Dep
	onStart  func()
	interval time.Duration
}

func newSeenIndex(topic string, opts []kgo.Opt, horizon time.Duration, now func() time.Time, log *slog.Logger) *seenIndex {
	return &seenIndex{topic: topic, opts: opts, horizon: horizon, now: now, log: log,
		keys: map[string]int64{}, pos: map[int32]int64{}}
}

func (x *seenIndex) has(key string) bool {
	x.mu.Lock()
	defer x.mu.Unlock()
	_, ok := x.keys[key]
	return ok
}

func (x *seenIndex) add(key string) {
	x.mu.Lock()
	x.keys[key] = x.now().UnixMilli()
	x.mu.Unlock()
}

func (x *seenIndex) size() int {
	x.mu.Lock()
	defer x.mu.Unlock()
	return len(x.keys)
}

func (x *seenIndex) run(ctx context.Context) error {
	adm, err := kgo.NewClient(x.opts...)
	if err != nil {
		return fmt.Errorf("control: cannot create Kafka client: %w", err)
	}
	start, err := x.startOffsets(ctx, kadm.NewClient(adm))
	adm.Close()
	if err != nil {
		if ctx.Err() != nil {
			return nil
		}
		return err
	}
	parts := map[int32]kgo.Offset{}
	x.mu.Lock()
	for p, off := range start {
		parts[p] = kgo.NewOffset().At(off)
		x.pos[p] = off
	}
	x.started = true
	x.mu.Unlock()
	x.progress.Notify()

	cl, err := kgo.NewClient(append(append([]kgo.Opt{}, x.opts...),
		kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{x.topic: parts}),
		kgo.FetchMaxWait(500*time.Millisecond),
	)...)
	if err != nil {
		return fmt.Errorf("control: cannot create Kafka consumer of %s: %w", x.topic, err)
	}
	defer cl.Close()
	if x.kafka != nil {
		pctx, stopProbe := context.WithCancel(ctx)
		var probe sync.WaitGroup
		probe.Go(func() { x.kafka.Probe(pctx, x.interval, max(x.interval, 5*time.Second), cl.Ping) })
		defer probe.Wait()
		defer stopProbe()
	}
	if x.onStart != nil {
		x.onStart()
	}
	lastPrune := x.now()
	for {
		fs := cl.PollFetches(ctx)
		if ctx.Err() != nil {
			return nil
		}
		if x.kafka != nil {
			x.kafka.Fetches(fs) // one line per outage episode, not per error
		}
		x.mu.Lock()
		fs.EachRecord(func(r *kgo.Record) {
			if provesOrder(r) {
				x.keys[string(r.Key)] = r.Timestamp.UnixMilli()
			}
			x.pos[r.Partition] = r.Offset + 1
		})
		x.progress.Notify()
		if now := x.now(); now.Sub(lastPrune) > 10*time.Minute {
			cut := now.Add(-x.horizon - time.Hour).UnixMilli()
			for k, ts := range x.keys {
				if ts < cut {
					delete(x.keys, k)
				}
			}
			lastPrune = now
		}
		x.mu.Unlock()
	}
}

// startOffsets finds, per partition, the first offset at or after
// now-horizon, retrying until the topic exists (migrate may run later) and
// Kafka answers.
func (x *seenIndex) startOffsets(ctx context.Context, adm *kadm.Client) (map[int32]int64, error) {
	for warned := false; ; {
		listed, err := adm.ListOffsetsAfterMilli(ctx, x.now().Add(-x.horizon).UnixMilli(), x.topic)
		if err == nil {
			err = listed.Error()
		}
		if err == nil {
			out := map[int32]int64{}
			listed.Each(func(o kadm.ListedOffset) { out[o.Partition] = o.Offset })
			if len(out) > 0 {
				if x.kafka != nil {
					x.kafka.OK("start")
				}
				return out, nil
			}
			err = fmt.Errorf("topic %s has no partitions", x.topic)
		}
		switch {
		case ctx.Err() != nil:
		case x.kafka != nil:
			x.kafka.Fail("start", fmt.Errorf("cannot find the start offsets of %s (is Kafka up, has `purchasesync migrate` run?): %w", x.topic, err))
		case !warned:
			x.log.Warn("control: cannot find the orders topic yet (has `purchasesync migrate` run?); retrying", "topic", x.topic, "err", err)
			warned = true
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(time.Second):
		}
	}
}

// waitCaughtUp waits until the index has read everything the topic held
// when it was called, so that "not in the index" means "never produced".
// It counts records, so it assumes shopify.orders.v1 is written without
// transactions (ingest and reconciliation both are): a transaction marker
// at a partition's end would hold it until ctx ends, failing the pass
// visibly rather than deciding on a partial view.
func (x *seenIndex) waitCaughtUp(ctx context.Context, adm *kadm.Client) error {
	ends, err := adm.ListEndOffsets(ctx, x.topic)
	if err == nil {
		err = ends.Error()
	}
	if err != nil {
		return fmt.Errorf("cannot list end offsets of %s: %w", x.topic, err)
	}
	for {
		ch := x.progress.Wait() // before the check: a move after it wakes us
		x.mu.Lock()
		behind := !x.started
		if !behind {
			ends.Each(func(o kadm.ListedOffset) {
				if x.pos[o.Partition] < o.Offset {
					behind = true
				}
			})
		}
		x.mu.Unlock()
		if !behind {
			return nil
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return fmt.Errorf("the follower of %s has not caught up: %w", x.topic, ctx.Err())
		}
	}
}

// provesOrder: only an order record (a webhook, or reconciliation's own)
// shows that an order reached the pipeline. A refunds/create record shares
// the topic and, in order_id mode, the key: counting it would leave a lost
// order whose refund did arrive unreconciled for good. Everything else on
// the topic is an order, exactly as the join tells them apart.
func provesOrder(r *kgo.Record) bool {
	h := schemas.ParseWebhookHeaders(r.Headers)
	return !h.IsRefund()
}
