package join

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"purchasesync/schemas"
)

// ReplayConfig says what to re-run.
type ReplayConfig struct {
	Input schemas.Topics // where the raw topics are
	// Output is where purchases, discrepancies and state go; nil = dry run
	// (count only). It must not be the live topics' prefix.
	Output        *schemas.Topics
	From          time.Time // replay input received from this time on
	WebhookWait   time.Duration
	DedupeHorizon time.Duration
}

// ReplaySummary counts what the replay decided.
type ReplaySummary struct {
	Records       int64
	Outcomes      map[string]int64
	Registrations map[string]int64  // by registered_via
	Discrepancies map[string]int64  // by field ("none" for webhook_missing)
	Purchases     map[string]string // key → registered_via, for comparisons
}

// ReplayDeps are the replay's collaborators.
type ReplayDeps struct {
	KafkaOpts []kgo.Opt // base Kafka options (seeds, logger)
	Sites     SiteLookup
	// Progress, if not nil, is called with the phase (read, decide) and
	// counts.
	Progress func(phase string, done, total int64)
}

// Replay re-runs the join over the raw topics from cfg.From to their end as
// of the call. Within each partition both inputs are merged in received-at
// order and the clock is the input's own received-at, so the same input
// always gives the same ledger. At the end, timers run at the last
// received-at plus the webhook wait, so every pending hold resolves.
func Replay(ctx context.Context, cfg ReplayConfig, deps ReplayDeps) (*ReplaySummary, error) {
	if cfg.Output != nil && cfg.Output.Prefix == cfg.Input.Prefix {
		return nil, errors.New("replay: output prefix equals the input prefix; replay never writes to live topics (-replay.outputPrefix)")
	}
	progress := deps.Progress
	if progress == nil {
		progress = func(string, int64, int64) {}
	}
	cl, err := kgo.NewClient(append(append([]kgo.Opt{}, deps.KafkaOpts...), kgo.RecordPartitioner(kgo.ManualPartitioner()))...)
	if err != nil {
		return nil, fmt.Errorf("replay: cannot create Kafka client: %w", err)
	}
	defer cl.Close()
	in := newTopology(cfg.Input)
	span, err := replayOffsets(ctx, kadm.NewClient(cl), in.inputs(), cfg.From)
	if err != nil {
		return nil, err
	}
	r := newReplayer(ctx, cfg, in, deps.Sites, cl)
	if span.total == 0 {
		return r.sum, nil
	}
	byPart, err := readInputs(ctx, deps.KafkaOpts, span, progress)
	if err != nil {
		return nil, err
	}
	var done int64
	for _, id := range slices.Sorted(maps.Keys(byPart)) {
		if err := r.decidePartition(id, byPart[id]); err != nil {
			return nil, err
		}
		done += int64(len(byPart[id]))
		progress("decide", done, span.total)
	}
	if err := r.flush(); err != nil {
		return nil, err
	}
	progress("decide", span.total, span.total)
	return r.sum, nil
}

// replaySpan is what a replay reads: each input partition from the first
// record received at or after its From up to its end at the replay's start.
type replaySpan struct {
	from  map[string]map[int32]kgo.Offset
	ends  map[string]map[int32]int64 // readInputs consumes it
	total int64                      // records
}

// replayOffsets finds the span of the inputs to replay.
func replayOffsets(ctx context.Context, adm *kadm.Client, inputs []string, from time.Time) (replaySpan, error) {
	starts, err := adm.ListOffsetsAfterMilli(ctx, from.UnixMilli(), inputs...)
	if err == nil {
		err = starts.Error()
	}
	if err != nil {
		return replaySpan{}, fmt.Errorf("replay: cannot find offsets at %s: %w", from, err)
	}
	ends, err := adm.ListEndOffsets(ctx, inputs...)
	if err == nil {
		err = ends.Error()
	}
	if err != nil {
		return replaySpan{}, fmt.Errorf("replay: cannot list end offsets: %w", err)
	}
	span := replaySpan{from: map[string]map[int32]kgo.Offset{}, ends: map[string]map[int32]int64{}}
	starts.Each(func(o kadm.ListedOffset) {
		end, _ := ends.Lookup(o.Topic, o.Partition)
		if end.Offset > o.Offset {
			if span.from[o.Topic] == nil {
				span.from[o.Topic], span.ends[o.Topic] = map[int32]kgo.Offset{}, map[int32]int64{}
			}
			span.from[o.Topic][o.Partition] = kgo.NewOffset().At(o.Offset)
			span.ends[o.Topic][o.Partition] = end.Offset
			span.total += end.Offset - o.Offset
		}
	})
	return span, nil
}

// readInputs reads the span, by partition number. Everything is read first:
// replays are bounded by retention and run offline, and merging two topics
// by time needs both in hand.
func readInputs(ctx context.Context, opts []kgo.Opt, span replaySpan, progress func(phase string, done, total int64)) (map[int32][]*kgo.Record, error) {
	rd, err := kgo.NewClient(append(append([]kgo.Opt{}, opts...), kgo.ConsumePartitions(span.from), kgo.FetchIsolationLevel(kgo.ReadCommitted()))...)
	if err != nil {
		return nil, fmt.Errorf("replay: cannot create reader: %w", err)
	}
	defer rd.Close()
	remaining := span.ends // a partition leaves it once read to its end
	byPart := map[int32][]*kgo.Record{}
	var read int64
	for len(remaining) > 0 {
		fs := rd.PollFetches(ctx)
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		if err := fs.Err0(); err != nil {
			return nil, fmt.Errorf("replay: cannot read input: %w", err)
		}
		fs.EachRecord(func(r *kgo.Record) {
			end, ok := remaining[r.Topic][r.Partition]
			if !ok || r.Offset >= end {
				return
			}
			byPart[r.Partition] = append(byPart[r.Partition], r)
			read++
			if r.Offset+1 >= end {
				delete(remaining[r.Topic], r.Partition)
				if len(remaining[r.Topic]) == 0 {
					delete(remaining, r.Topic)
				}
			}
		})
		progress("read", read, span.total)
	}
	return byPart, nil
}

// replayer decides a replay's partitions, one after the other, and counts
// (and, unless it is a dry run, writes) what they decide.
type replayer struct {
	ctx        context.Context
	cfg        Config // the partitions' own
	in, out    topology
	sites      SiteLookup
	m          *metrics // registered nowhere: the summary tallies the decisions
	sum        *ReplaySummary
	cl         *kgo.Client // nil in a dry run
	produceErr error       // the first output Kafka refused
}

func newReplayer(ctx context.Context, cfg ReplayConfig, in topology, sites SiteLookup, cl *kgo.Client) *replayer {
	r := &replayer{ctx: ctx, in: in, sites: sites,
		sum: &ReplaySummary{Outcomes: map[string]int64{}, Registrations: map[string]int64{}, Discrepancies: map[string]int64{}, Purchases: map[string]string{}}}
	// The partitions write under the output's names (the input's in a dry
	// run, where nothing is produced).
	r.cfg = Config{Topics: cfg.Input, WebhookWait: cfg.WebhookWait, DedupeHorizon: cfg.DedupeHorizon}
	if cfg.Output != nil {
		r.cfg.Topics = *cfg.Output
		r.cl = cl
	}
	r.out = newTopology(r.cfg.Topics)
	r.m = newMetrics(nil)
	r.m.decisions.tally = r.sum.Outcomes
	return r
}

// decidePartition decides on one partition's whole input, both inputs
// merged in received-at order.
func (r *replayer) decidePartition(id int32, recs []*kgo.Record) error {
	events := make([]inputEvent, len(recs))
	var last time.Time
	for i, rec := range recs {
		at := receivedAt(rec)
		events[i] = inputEvent{rec: rec, ev: Event{ReceivedAt: at}, storefront: rec.Topic == r.in.storefront, raw: true}
		if at.After(last) {
			last = at
		}
	}
	// Both inputs were read to their end: each is complete up to the
	// end of the replay, and at the end timers run at the last
	// received-at plus the webhook wait, so every pending hold resolves.
	endAt := last.Add(r.cfg.WebhookWait)
	part := newPartition(id, r.cfg, r.sites, r.m)
	part.replay(events, endAt, r.output)
	part.close()
	if part.fault != nil {
		return fmt.Errorf("replay: %w", part.fault)
	}
	r.sum.Records += int64(len(events))
	return nil
}

// output counts one output record and produces it unless in a dry run.
func (r *replayer) output(rec *kgo.Record) {
	r.count(rec)
	if r.cl == nil {
		return
	}
	r.cl.Produce(r.ctx, rec, func(_ *kgo.Record, err error) {
		if err != nil && r.produceErr == nil {
			r.produceErr = err
		}
	})
}

// flush waits until every output is written.
func (r *replayer) flush() error {
	if r.cl == nil {
		return nil
	}
	if err := r.cl.Flush(r.ctx); err != nil {
		return fmt.Errorf("replay: cannot flush output: %w", err)
	}
	if r.produceErr != nil {
		return fmt.Errorf("replay: cannot write output: %w", r.produceErr)
	}
	return nil
}

// count adds an output's registration or discrepancy to the summary.
func (r *replayer) count(rec *kgo.Record) {
	switch rec.Topic {
	case r.out.purchases:
		p, err := schemas.UnmarshalPurchase(rec.Value)
		if err == nil && p.Version == 1 {
			r.sum.Registrations[p.RegisteredVia]++
			r.sum.Purchases[p.Key()] = p.RegisteredVia
		}
	case r.out.discrepancies:
		d, err := schemas.UnmarshalDiscrepancy(rec.Value)
		if err == nil {
			f := d.Field
			if f == "" {
				f = "none"
			}
			r.sum.Discrepancies[f]++
		}
	}
}
