// Package follow keeps a stage's in-memory view of a compacted topic (goka's
// View): the site registry (sites.v1), the token store (shopify.tokens.v1)
// and the order-key evidence table (keymode.evidence.v1) each hold one. The
// stage keeps its snapshot, its metrics and its log lines; the loop they
// share lives here, written once: read the topic from its start, learn its
// end offsets at start (retrying until Kafka answers), hand every batch of
// records to the stage, say when the view holds everything the topic held
// at start, then follow the topic through outages. A Kafka fault never ends
// Run.
package follow

import (
	"context"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"purchasesync/schemas/health"
)

// retryEvery is how often Run asks again for the end offsets while Kafka
// (or the topic: `purchasesync migrate` may run later) is not there.
const retryEvery = 500 * time.Millisecond

// Topic is the topic a Follower reads and what it does with it.
type Topic struct {
	// Name is the topic's full name (with its prefix).
	Name string
	// KafkaOpts are the base Kafka options (seeds, logging); the follower
	// builds its own consumer from them.
	KafkaOpts []kgo.Opt
	// Apply takes each polled batch of records, never empty, in offset
	// order within a partition. Run calls it on its own goroutine, so the
	// stage's view has one writer.
	Apply func([]*kgo.Record)
	// OnLoaded, if set, is called once, on Run's goroutine, when the view
	// first holds everything the topic held when Run started (after
	// Health is Started): for the stage's "loaded" log line.
	OnLoaded func()

	// Health, if set, is the stage's readiness: Starting ("not loaded
	// yet: …") until loaded, Started then, and a Kafka dependency (New
	// adds it) that fails through outages, one log line each way per
	// episode, probed every HealthInterval. Without it (an advisory view)
	// faults are retried silently.
	Health         *health.Health
	HealthInterval time.Duration
	// ReadyTimeout, if positive, is how long loading may fail before Log
	// gets one error line ("<Stage> still not loaded; retrying …"); it
	// keeps trying.
	ReadyTimeout time.Duration
	Stage        string       // "site registry": names the stage in that line
	Log          *slog.Logger // nil: discard
}

// Follower reads a Topic into its stage's view; see the package doc.
type Follower struct {
	t      Topic
	kafka  *health.Dep // nil without t.Health
	loaded atomic.Bool
	done   chan struct{} // closed once loaded
}

// New makes a follower of t; Run reads it.
func New(t Topic) *Follower {
	if t.Log == nil {
		t.Log = slog.New(slog.DiscardHandler)
	}
	f := &Follower{t: t, done: make(chan struct{})}
	if t.Health != nil {
		f.kafka = t.Health.Dep("Kafka")
		t.Health.Starting("not loaded yet (reading " + t.Name + ")")
	}
	return f
}

// Loaded reports whether the view has read the topic up to its end as of
// Run's start. It stays true through outages (the view then answers from
// its last state).
func (f *Follower) Loaded() bool { return f.loaded.Load() }

// WaitLoaded blocks until Loaded or ctx ends (then it returns ctx.Err()).
func (f *Follower) WaitLoaded(ctx context.Context) error {
	select {
	case <-f.done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Run reads the topic from its start and follows it until ctx ends, then
// returns nil. Kafka faults never end it, not even at start: it retries
// until it has loaded the topic, then follows it through outages. Only a
// client that cannot be built (bad options) is an error.
func (f *Follower) Run(ctx context.Context) error {
	cl, err := kgo.NewClient(append(slices.Clone(f.t.KafkaOpts),
		kgo.ConsumeTopics(f.t.Name),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
		kgo.FetchMaxWait(500*time.Millisecond),
	)...)
	if err != nil {
		return fmt.Errorf("cannot create the Kafka client following %s: %w", f.t.Name, err)
	}
	defer cl.Close()
	if f.kafka != nil {
		pctx, stopProbe := context.WithCancel(ctx)
		var probe sync.WaitGroup
		probe.Go(func() { f.kafka.Probe(pctx, f.t.HealthInterval, max(f.t.HealthInterval, 5*time.Second), cl.Ping) })
		defer probe.Wait()
		defer stopProbe()
	}

	// The end offsets at start say when the view has caught up.
	ends, err := f.endOffsets(ctx, cl)
	if err != nil {
		return nil // ctx ended
	}
	pos := map[int32]int64{}
	for {
		if !f.Loaded() && caughtUp(pos, ends) {
			f.markLoaded()
		}
		fs := cl.PollFetches(ctx)
		if ctx.Err() != nil {
			return nil
		}
		if f.kafka != nil {
			f.kafka.Fetches(fs) // one line per outage episode, not per error
		}
		var recs []*kgo.Record
		fs.EachRecord(func(r *kgo.Record) {
			recs = append(recs, r)
			pos[r.Partition] = r.Offset + 1
		})
		if len(recs) > 0 {
			f.t.Apply(recs)
		}
	}
}

func caughtUp(pos, ends map[int32]int64) bool {
	for p, end := range ends {
		if pos[p] < end {
			return false
		}
	}
	return true
}

func (f *Follower) markLoaded() {
	if f.t.Health != nil {
		f.t.Health.Started()
	}
	f.loaded.Store(true)
	close(f.done)
	if f.t.OnLoaded != nil {
		f.t.OnLoaded()
	}
}

// endOffsets retries until it has the topic's end offsets or ctx ends.
func (f *Follower) endOffsets(ctx context.Context, cl *kgo.Client) (map[int32]int64, error) {
	start := time.Now()
	for late := false; ; {
		ends, err := kadm.NewClient(cl).ListEndOffsets(ctx, f.t.Name)
		if err == nil {
			err = ends.Error()
		}
		if err == nil {
			out := map[int32]int64{}
			ends.Each(func(o kadm.ListedOffset) { out[o.Partition] = o.Offset })
			if len(out) > 0 {
				if f.kafka != nil {
					f.kafka.OK("start")
				}
				return out, nil
			}
			err = fmt.Errorf("topic %s has no partitions", f.t.Name)
		}
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		err = fmt.Errorf("cannot read the end offsets of %s (is Kafka up and `purchasesync migrate` run?): %w", f.t.Name, err)
		if f.kafka != nil {
			f.kafka.Fail("start", err)
			f.t.Health.Starting("not loaded yet: " + err.Error())
		}
		if !late && f.t.ReadyTimeout > 0 && time.Since(start) > f.t.ReadyTimeout {
			late = true
			f.t.Log.Error(f.t.Stage+" still not loaded; retrying (the process stays not ready)", "after", f.t.ReadyTimeout.String(), "err", err)
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(retryEvery):
		}
	}
}
