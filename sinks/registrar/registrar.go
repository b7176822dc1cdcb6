package registrar

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"sync"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/twmb/franz-go/pkg/kgo"

	"purchasesync/schemas"
	"purchasesync/sinks/internal/deadletter"
	"purchasesync/sinks/internal/retry"
)

// Deps are what a Registrar takes from its process.
type Deps struct {
	KafkaOpts  []kgo.Opt // base options incl. producer settings (dead letters)
	Registerer prometheus.Registerer
	Logger     *slog.Logger
	HTTP       *http.Client // nil: a client with Config.Timeout
}

// Registrar forwards purchases to the registry. Run drives it.
type Registrar struct {
	cfg       Config
	log       *slog.Logger
	m         *metrics
	http      *http.Client
	endpoint  string
	opts      []kgo.Opt
	dlq       string
	via       map[string]bool
	seen, old map[string]struct{} // two generations of forwarded keys
}

// New checks cfg and prepares a registrar.
func New(cfg Config, deps Deps) (*Registrar, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if deps.Logger == nil {
		deps.Logger = slog.Default()
	}
	if deps.Registerer == nil {
		deps.Registerer = prometheus.NewRegistry()
	}
	if deps.HTTP == nil {
		deps.HTTP = &http.Client{Timeout: cfg.Timeout}
	}
	r := &Registrar{cfg: cfg, log: deps.Logger.With("stage", "registrar"), m: newMetrics(deps.Registerer), http: deps.HTTP,
		endpoint: strings.TrimRight(cfg.URL, "/") + "/api/v2/origins", dlq: cfg.Topics.Name(schemas.TopicDeadLetter),
		via: map[string]bool{}, seen: map[string]struct{}{}, old: map[string]struct{}{}}
	for _, v := range cfg.Via {
		r.via[v] = true
	}
	r.opts = append(append([]kgo.Opt{}, deps.KafkaOpts...),
		kgo.ConsumerGroup(cfg.Group),
		kgo.ConsumeTopics(cfg.Topics.Name(schemas.TopicPurchases)),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
		kgo.FetchIsolationLevel(kgo.ReadCommitted()),
		kgo.DisableAutoCommit(),
		kgo.BlockRebalanceOnPoll(),
	)
	if err := kgo.ValidateOpts(r.opts...); err != nil {
		return nil, fmt.Errorf("invalid Kafka options for the registrar: %w", err)
	}
	return r, nil
}

// Run forwards purchases until ctx ends. Records of a poll are finished
// (forwarded, skipped or dead-lettered) before their offsets are committed.
func (r *Registrar) Run(ctx context.Context) error {
	cl, err := kgo.NewClient(r.opts...)
	if err != nil {
		return fmt.Errorf("cannot create the registrar's Kafka client: %w", err)
	}
	defer func() { cl.AllowRebalance(); cl.Close() }()
	r.log.Info("registrar forwarding purchases", "endpoint", r.endpoint, "group", r.cfg.Group)
	for {
		fs := cl.PollRecords(ctx, 500)
		if ctx.Err() != nil {
			return nil
		}
		fs.EachError(func(t string, p int32, err error) {
			r.log.Warn("registrar: fetch error", "topic", t, "partition", p, "err", err)
		})
		recs := fs.Records()
		if len(recs) > 0 {
			dead, err := r.process(ctx, recs)
			if err != nil {
				return nil // ctx ended mid-poll: nothing committed, records read again
			}
			if err := r.produce(ctx, cl, dead); err != nil {
				return nil
			}
			if err := cl.CommitRecords(ctx, recs...); err != nil {
				r.log.Warn("registrar: cannot commit offsets; the purchases will be read again (already forwarded ones are skipped)", "err", err)
			}
		}
		cl.AllowRebalance()
	}
}

// job is one purchase to forward.
type job struct {
	rec  *kgo.Record
	key  string
	body []byte
}

// process forwards what needs forwarding and returns the dead letters.
func (r *Registrar) process(ctx context.Context, recs []*kgo.Record) ([]*kgo.Record, error) {
	var dead []*kgo.Record
	var jobs []job
	batch := map[string]bool{}
	for _, rec := range recs {
		p, err := schemas.UnmarshalPurchase(rec.Value)
		if err != nil {
			r.m.deadLetters.WithLabelValues("decode").Inc()
			dead = append(dead, deadletter.Record(r.dlq, rec, err.Error()))
			continue
		}
		key := p.Key()
		switch {
		case p.Version != 1:
			r.m.skipped.WithLabelValues("later_version").Inc()
		case p.Test && !r.cfg.ForwardTest:
			r.m.skipped.WithLabelValues("test").Inc()
		case !r.via[p.RegisteredVia]:
			r.m.skipped.WithLabelValues("via").Inc()
		case r.remembered(key) || batch[key]:
			r.m.skipped.WithLabelValues("already_forwarded").Inc()
		default:
			batch[key] = true
			body, err := json.Marshal(newOriginRequest(p))
			if err != nil {
				panic("BUG: cannot encode an origin request: " + err.Error())
			}
			jobs = append(jobs, job{rec: rec, key: key, body: body})
		}
	}
	var mu sync.Mutex
	var wg sync.WaitGroup
	sem := make(chan struct{}, r.cfg.Concurrency)
	var ctxErr error
	for _, j := range jobs {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer func() { <-sem; wg.Done() }()
			ok, reason, err := r.forward(ctx, j)
			mu.Lock()
			defer mu.Unlock()
			switch {
			case err != nil:
				ctxErr = err
			case ok:
				r.remember(j.key)
			default:
				dead = append(dead, deadletter.Record(r.dlq, j.rec, reason))
			}
		}()
	}
	wg.Wait()
	return dead, ctxErr
}

// forward posts one purchase with retries. It reports success, or the
// dead-letter reason, or ctx's error.
func (r *Registrar) forward(ctx context.Context, j job) (bool, string, error) {
	bo := retry.Backoff{Initial: r.cfg.RetryInitial, Max: r.cfg.RetryMax}
	failures := 0
	for {
		res := r.post(ctx, j.body)
		r.m.requests.WithLabelValues(res.label).Inc()
		switch res.outcome {
		case created, exists:
			r.m.forwarded.Inc()
			return true, "", nil
		case rejected:
			r.m.deadLetters.WithLabelValues("rejected").Inc()
			r.log.Warn("registry refused a purchase; sending it to the dead-letter topic", "key", j.key, "err", res.err)
			return false, res.err.Error(), nil
		case retryable:
			failures++
			if failures >= r.cfg.MaxAttempts {
				r.m.deadLetters.WithLabelValues("attempts").Inc()
				r.log.Warn("giving up on a purchase after repeated failures; sending it to the dead-letter topic",
					"key", j.key, "attempts", failures, "err", res.err)
				return false, fmt.Sprintf("%d attempts failed; last: %v", failures, res.err), nil
			}
		case unauthorized:
			// Not counted: every purchase would fail the same way.
			r.log.Error("registry refused the API key; holding until it is fixed", "err", res.err)
		}
		if ctx.Err() != nil {
			return false, "", ctx.Err()
		}
		d := bo.Next()
		if res.retryAfter > 0 {
			d = min(res.retryAfter, r.cfg.MaxRetryAfter)
		}
		r.m.retries.Inc()
		if err := retry.Sleep(ctx, d); err != nil {
			return false, "", err
		}
	}
}

func (r *Registrar) remembered(key string) bool {
	if _, ok := r.seen[key]; ok {
		return true
	}
	_, ok := r.old[key]
	return ok
}

// remember keeps at most RememberKeys keys: when the current generation is
// full it becomes the old one and the oldest is dropped.
func (r *Registrar) remember(key string) {
	if len(r.seen) >= r.cfg.RememberKeys/2 {
		r.old, r.seen = r.seen, make(map[string]struct{}, r.cfg.RememberKeys/2)
	}
	r.seen[key] = struct{}{}
}

func (r *Registrar) produce(ctx context.Context, cl *kgo.Client, dead []*kgo.Record) error {
	bo := retry.Backoff{Initial: r.cfg.RetryInitial, Max: r.cfg.RetryMax}
	for len(dead) > 0 {
		var failed []*kgo.Record
		var last error
		for _, res := range cl.ProduceSync(ctx, dead...) {
			if res.Err != nil {
				failed, last = append(failed, res.Record), res.Err
			}
		}
		if dead = failed; len(dead) == 0 {
			return nil
		}
		r.log.Warn("registrar: cannot produce dead letters; retrying", "records", len(dead), "err", last)
		if err := retry.Sleep(ctx, bo.Next()); err != nil {
			return err
		}
	}
	return nil
}
