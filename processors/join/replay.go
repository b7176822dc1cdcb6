package join

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sort"
	"time"

	"github.com/prometheus/client_golang/prometheus"
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

// Replay re-runs the join over the raw topics from cfg.From to their end as
// of the call. Within each partition both inputs are merged in received-at
// order and the clock is the input's own received-at, so the same input
// always gives the same ledger. At the end, timers run at the last
// received-at plus the webhook wait, so every pending hold resolves.
// progress, if not nil, is called with the phase (read, decide) and counts.
func Replay(ctx context.Context, cfg ReplayConfig, clientOpts []kgo.Opt, sites SiteLookup, log *slog.Logger, progress func(phase string, done, total int64)) (*ReplaySummary, error) {
	if cfg.Output != nil && cfg.Output.Prefix == cfg.Input.Prefix {
		return nil, errors.New("replay: output prefix equals the input prefix; replay never writes to live topics (-replay.outputPrefix)")
	}
	cl, err := kgo.NewClient(append(append([]kgo.Opt{}, clientOpts...), kgo.RecordPartitioner(kgo.ManualPartitioner()))...)
	if err != nil {
		return nil, fmt.Errorf("replay: cannot create Kafka client: %w", err)
	}
	defer cl.Close()
	adm := kadm.NewClient(cl)
	inputs := []string{cfg.Input.Name(schemas.TopicShopifyOrders), cfg.Input.Name(schemas.TopicStorefrontPurchases)}
	starts, err := adm.ListOffsetsAfterMilli(ctx, cfg.From.UnixMilli(), inputs...)
	if err == nil {
		err = starts.Error()
	}
	if err != nil {
		return nil, fmt.Errorf("replay: cannot find offsets at %s: %w", cfg.From, err)
	}
	ends, err := adm.ListEndOffsets(ctx, inputs...)
	if err == nil {
		err = ends.Error()
	}
	if err != nil {
		return nil, fmt.Errorf("replay: cannot list end offsets: %w", err)
	}
	var total int64
	consume := map[string]map[int32]kgo.Offset{}
	remaining := map[string]map[int32]int64{}
	starts.Each(func(o kadm.ListedOffset) {
		end, _ := ends.Lookup(o.Topic, o.Partition)
		if end.Offset > o.Offset {
			if consume[o.Topic] == nil {
				consume[o.Topic], remaining[o.Topic] = map[int32]kgo.Offset{}, map[int32]int64{}
			}
			consume[o.Topic][o.Partition] = kgo.NewOffset().At(o.Offset)
			remaining[o.Topic][o.Partition] = end.Offset
			total += end.Offset - o.Offset
		}
	})
	sum := &ReplaySummary{Outcomes: map[string]int64{}, Registrations: map[string]int64{}, Discrepancies: map[string]int64{}, Purchases: map[string]string{}}
	if total == 0 {
		return sum, nil
	}
	// Read everything first: replays are bounded by retention and run
	// offline, and merging two topics by time needs both in hand.
	rd, err := kgo.NewClient(append(append([]kgo.Opt{}, clientOpts...), kgo.ConsumePartitions(consume), kgo.FetchIsolationLevel(kgo.ReadCommitted()))...)
	if err != nil {
		return nil, fmt.Errorf("replay: cannot create reader: %w", err)
	}
	defer rd.Close()
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
		if progress != nil {
			progress("read", read, total)
		}
	}

	// The partitions write under the output's names (the input's in a dry
	// run, where nothing is produced).
	cfgJoin := Config{Topics: cfg.Input, WebhookWait: cfg.WebhookWait, DedupeHorizon: cfg.DedupeHorizon}
	if cfg.Output != nil {
		cfgJoin.Topics = *cfg.Output
	}
	reg := prometheus.NewRegistry()
	m := newMetrics(reg)
	sfTopic := cfg.Input.Name(schemas.TopicStorefrontPurchases)
	var done int64
	var produceErr error
	out := func(r *kgo.Record) {
		countOutput(sum, r, cfgJoin.Topics)
		if cfg.Output == nil {
			return
		}
		cl.Produce(ctx, r, func(_ *kgo.Record, err error) {
			if err != nil && produceErr == nil {
				produceErr = err
			}
		})
	}
	parts := make([]int32, 0, len(byPart))
	for p := range byPart {
		parts = append(parts, p)
	}
	sort.Slice(parts, func(i, j int) bool { return parts[i] < parts[j] })
	for _, pid := range parts {
		recs := byPart[pid]
		events := make([]inputEvent, len(recs))
		var last time.Time
		for i, r := range recs {
			at := receivedAt(r)
			events[i] = inputEvent{rec: r, ev: Event{ReceivedAt: at}, storefront: r.Topic == sfTopic, raw: true}
			if at.After(last) {
				last = at
			}
		}
		// Both inputs were read to their end: each is complete up to the
		// end of the replay, and at the end timers run at the last
		// received-at plus the webhook wait, so every pending hold resolves.
		endAt := last.Add(cfg.WebhookWait)
		part := newPartition(pid, cfgJoin, sites, m)
		part.replay(events, endAt, out)
		part.close()
		if part.fault != nil {
			return nil, fmt.Errorf("replay: %w", part.fault)
		}
		sum.Records += int64(len(events))
		done += int64(len(events))
		if progress != nil {
			progress("decide", done, total)
		}
	}
	if cfg.Output != nil {
		if err := cl.Flush(ctx); err != nil {
			return nil, fmt.Errorf("replay: cannot flush output: %w", err)
		}
		if produceErr != nil {
			return nil, fmt.Errorf("replay: cannot write output: %w", produceErr)
		}
	}
	if err := collectOutcomes(sum, reg); err != nil {
		return nil, err
	}
	if progress != nil {
		progress("decide", total, total)
	}
	return sum, nil
}

func countOutput(sum *ReplaySummary, r *kgo.Record, topics schemas.Topics) {
	switch r.Topic {
	case topics.Name(schemas.TopicPurchases):
		p, err := schemas.UnmarshalPurchase(r.Value)
		if err == nil && p.Version == 1 {
			sum.Registrations[p.RegisteredVia]++
			sum.Purchases[p.Key()] = p.RegisteredVia
		}
	case topics.Name(schemas.TopicDiscrepancies):
		d, err := schemas.UnmarshalDiscrepancy(r.Value)
		if err == nil {
			f := d.Field
			if f == "" {
				f = "none"
			}
			sum.Discrepancies[f]++
		}
	}
}

// collectOutcomes copies the decision counters of the replay's own
// registry into the summary.
func collectOutcomes(sum *ReplaySummary, reg *prometheus.Registry) error {
	families, err := reg.Gather()
	if err != nil {
		return fmt.Errorf("replay: cannot read decision counts: %w", err)
	}
	for _, f := range families {
		if f.GetName() != "decisions_total" {
			continue
		}
		for _, metric := range f.GetMetric() {
			for _, l := range metric.GetLabel() {
				if l.GetName() == "outcome" {
					sum.Outcomes[l.GetValue()] = int64(metric.GetCounter().GetValue())
				}
			}
		}
	}
	return nil
}
