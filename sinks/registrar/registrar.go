package registrar

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/twmb/franz-go/pkg/kgo"

	"purchasesync/schemas"
	"purchasesync/schemas/deadletter"
	"purchasesync/schemas/health"
	"purchasesync/schemas/retry"
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

	// Readiness through Kafka faults, and commits that failed.
	health    *health.Health
	kafka     *health.Dep
	owed      health.Uncommitted
	commitBo  retry.Backoff // Run's goroutine
	owedRetry time.Time
}

// New checks cfg and prepares a registrar.
func New(cfg Config, deps Deps) (*Registrar, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if deps.Logger == nil {
		deps.Logger = slog.New(slog.DiscardHandler)
	}
	if deps.Registerer == nil {
		deps.Registerer = prometheus.NewRegistry()
	}
	if deps.HTTP == nil {
		deps.HTTP = &http.Client{Timeout: cfg.Timeout}
	}
	r := &Registrar{cfg: cfg, log: deps.Logger, m: newMetrics(deps.Registerer), http: deps.HTTP,
		endpoint: strings.TrimRight(cfg.URL, "/") + "/api/v2/origins", dlq: cfg.Topics.Name(schemas.TopicDeadLetter),
		via: map[string]bool{}, seen: map[string]struct{}{}, old: map[string]struct{}{}}
	for _, v := range cfg.Via {
		r.via[v] = true
	}
	r.health = health.New("registrar", "", deps.Registerer, r.log)
	r.kafka = r.health.Dep("Kafka")
	r.health.Starting("not consuming yet (joining consumer group " + cfg.Group + ")")
	r.commitBo = retry.Backoff{Initial: cfg.RetryInitial, Max: cfg.RetryMax}
	r.opts = append(append([]kgo.Opt{}, deps.KafkaOpts...),
		kgo.ConsumerGroup(cfg.Group),
		kgo.ConsumeTopics(cfg.Topics.Name(schemas.TopicPurchases)),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
		kgo.FetchIsolationLevel(kgo.ReadCommitted()),
		kgo.DisableAutoCommit(),
		// Callbacks run between polls, never while a poll's purchases are
		// being forwarded or committed.
		kgo.BlockRebalanceOnPoll(),
		kgo.OnPartitionsAssigned(func(context.Context, *kgo.Client, map[string][]int32) {
			r.kafka.OK("group")
			r.health.Started()
		}),
		kgo.OnPartitionsRevoked(r.revoked),
		kgo.OnPartitionsLost(r.lost),
	)
	if err := kgo.ValidateOpts(r.opts...); err != nil {
		return nil, fmt.Errorf("invalid Kafka options for the registrar: %w", err)
	}
	return r, nil
}

// Ready reports nil while the registrar consumes normally, and why not
// before it first joined its consumer group and during a Kafka outage
// episode (unreachable, a lost group session, failed commits or dead
// letters).
func (r *Registrar) Ready() error { return r.health.Err() }

// Run forwards purchases until ctx ends. Records of a poll are finished
// (forwarded, skipped or dead-lettered) before their offsets are committed.
// Kafka faults never end it.
func (r *Registrar) Run(ctx context.Context) error {
	cl, err := kgo.NewClient(r.opts...)
	if err != nil {
		return fmt.Errorf("cannot create the registrar's Kafka client: %w", err)
	}
	defer func() { cl.AllowRebalance(); cl.Close() }()
	pctx, stopProbe := context.WithCancel(ctx)
	var probe sync.WaitGroup
	probe.Go(func() { r.kafka.Probe(pctx, r.cfg.HealthInterval, max(r.cfg.HealthInterval, 5*time.Second), cl.Ping) })
	defer probe.Wait()
	defer stopProbe()
	r.log.Info("registrar forwarding purchases", "endpoint", r.endpoint, "group", r.cfg.Group)
	for {
		fs := r.poll(ctx, cl)
		if ctx.Err() != nil {
			return nil
		}
		r.kafka.Fetches(fs)
		recs := fs.Records()
		if len(recs) > 0 {
			dead, err := r.process(ctx, recs)
			if err != nil {
				return nil // ctx ended mid-poll: nothing committed, records read again
			}
			if err := r.produce(ctx, cl, dead); err != nil {
				return nil
			}
		}
		if len(recs) > 0 || (r.owed.Len() > 0 && !time.Now().Before(r.owedRetry)) {
			r.commit(ctx, cl, health.OffsetsOf(recs))
		}
		cl.AllowRebalance()
	}
}

// poll waits for records, or, while commits are owed, until they are to be
// retried.
func (r *Registrar) poll(ctx context.Context, cl *kgo.Client) kgo.Fetches {
	if r.owed.Len() == 0 {
		return cl.PollRecords(ctx, 500)
	}
	pctx, cancel := context.WithDeadline(ctx, r.owedRetry)
	defer cancel()
	return cl.PollRecords(pctx, 500)
}

// commit commits the offsets of finished records, with those earlier
// commits failed to commit; a failure leaves them owed, to be committed
// again after a backoff (a restart would re-read them, and the remembered
// or the registry's own duplicate check would skip them, but only after a
// request per purchase).
func (r *Registrar) commit(ctx context.Context, cl *kgo.Client, offsets health.Offsets) {
	offs := r.owed.With(offsets)
	if len(offs) == 0 {
		return
	}
	if err := health.Commit(ctx, cl, offs); err != nil {
		r.owed.Failed(offs)
		r.owedRetry = time.Now().Add(r.commitBo.Next())
		if ctx.Err() == nil {
			r.kafka.Fail("commit", fmt.Errorf("%w (the purchases were forwarded; retrying the commit)", err))
		}
		return
	}
	r.owed.Committed(offs)
	r.commitBo.Reset()
	if r.owed.Len() == 0 {
		r.kafka.OK("commit")
	}
}

// revoked commits what is owed for the revoked partitions, once, before
// their next owner starts from the committed offsets.
func (r *Registrar) revoked(ctx context.Context, cl *kgo.Client, parts map[string][]int32) {
	if owed := r.owed.Take(parts); len(owed) > 0 {
		_ = health.Commit(ctx, cl, owed) // else the next owner re-reads them
	}
	if r.owed.Len() == 0 {
		r.kafka.OK("commit")
	}
}

// lost drops what is owed for partitions another member may own already.
func (r *Registrar) lost(_ context.Context, _ *kgo.Client, parts map[string][]int32) {
	r.owed.Take(parts)
	if r.owed.Len() == 0 {
		r.kafka.OK("commit")
	}
}

// job is one request to the registry: a purchase to register, or a refund
// of one.
type job struct {
	rec    *kgo.Record
	keys   []string // what remember keeps once it is done
	url    string
	body   []byte
	refund bool
	// purchase is a refund's purchase key.
	purchase string
}

// process forwards what needs forwarding and returns the dead letters.
func (r *Registrar) process(ctx context.Context, recs []*kgo.Record) ([]*kgo.Record, error) {
	var dead []*kgo.Record
	var origins, refunds []job
	batch := map[string]bool{}
	refundOf := map[string]int{} // purchase key → its job in refunds
	for _, rec := range recs {
		p, err := schemas.UnmarshalPurchase(rec.Value)
		if err != nil {
			r.m.deadLetters.WithLabelValues("decode").Inc()
			dead = append(dead, deadletter.Record(r.dlq, rec, err.Error()))
			continue
		}
		key, refundKey := p.Key(), refundKeyOf(p)
		switch {
		case p.Test && !r.cfg.ForwardTest:
			r.m.skipped.WithLabelValues("test").Inc()
			continue
		case !r.via[p.RegisteredVia]:
			r.m.skipped.WithLabelValues("via").Inc()
			continue
		case p.Version == 1 && (r.remembered(key) || batch[key]):
			r.m.skipped.WithLabelValues("already_forwarded").Inc()
		case p.Version == 1:
			batch[key] = true
			origins = append(origins, job{rec: rec, keys: []string{key}, url: r.endpoint, body: mustJSON(newOriginRequest(p))})
		}
		// Any version that carries a refund total not forwarded yet, the
		// first one included (a refund that came before the purchase was
		// registered, as when reconciliation recovers a lost order), marks
		// the purchase refunded. Of several in one poll only the latest is
		// sent (the registry keeps one refunded_at), standing for the rest.
		switch {
		case refundKey == "":
			if p.Version != 1 {
				r.m.skipped.WithLabelValues("later_version").Inc()
			}
		case r.remembered(refundKey) || batch[refundKey]:
			if p.Version != 1 {
				r.m.skipped.WithLabelValues("already_forwarded").Inc()
			}
		default:
			batch[refundKey] = true
			j := job{rec: rec, keys: []string{refundKey}, refund: true, purchase: key,
				url: r.endpoint + "/" + url.PathEscape(p.OrderNumber) + "/refund", body: mustJSON(newRefundRequest(p))}
			if i, ok := refundOf[key]; ok {
				r.m.skipped.WithLabelValues("superseded").Inc()
				j.keys = append(j.keys, refunds[i].keys...)
				refunds[i] = j
			} else {
				refundOf[key] = len(refunds)
				refunds = append(refunds, j)
			}
		}
	}
	// A purchase's refund must reach the registry after the purchase: the
	// refunds of a poll go once its registrations are done, and not at all
	// for a purchase whose registration in this poll failed (it went to
	// the dead-letter topic; its refund follows it there at once).
	failed := map[string]bool{}
	for _, d := range r.run(ctx, origins) {
		dead = append(dead, d)
		failed[string(d.Key)] = true
	}
	if ctx.Err() != nil {
		return dead, ctx.Err()
	}
	var send []job
	for _, j := range refunds {
		if failed[j.purchase] {
			r.m.deadLetters.WithLabelValues("rejected").Inc()
			dead = append(dead, deadletter.Record(r.dlq, j.rec, "refund: the purchase was not registered"))
			continue
		}
		send = append(send, j)
	}
	return append(dead, r.run(ctx, send)...), ctx.Err()
}

// refundKeyOf names a purchase's refund state for remember: a new refund
// changes the total and the time. Empty when nothing was refunded.
func refundKeyOf(p *schemas.Purchase) string {
	if p.RefundedAt == nil {
		return ""
	}
	return p.Key() + "|refund|" + p.RefundedAt.UTC().Format(time.RFC3339Nano) + "|" + p.RefundedAmount
}

func mustJSON(v any) []byte {
	b, err := json.Marshal(v)
	if err != nil {
		panic("BUG: cannot encode a registry request: " + err.Error())
	}
	return b
}

// run sends jobs, Concurrency at a time, and returns the dead letters of
// those that failed for good.
func (r *Registrar) run(ctx context.Context, jobs []job) []*kgo.Record {
	var dead []*kgo.Record
	var mu sync.Mutex
	var wg sync.WaitGroup
	sem := make(chan struct{}, r.cfg.Concurrency)
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
			case ok:
				for _, k := range j.keys {
					r.remember(k)
				}
			default:
				if j.refund {
					reason = "refund: " + reason
				}
				dead = append(dead, deadletter.Record(r.dlq, j.rec, reason))
			}
		}()
	}
	wg.Wait()
	return dead
}

// forward posts one purchase with retries. It reports success, or the
// dead-letter reason, or ctx's error.
func (r *Registrar) forward(ctx context.Context, j job) (bool, string, error) {
	bo := retry.Backoff{Initial: r.cfg.RetryInitial, Max: r.cfg.RetryMax}
	failures := 0
	for {
		res := r.post(ctx, j.url, j.body)
		r.m.requests.WithLabelValues(res.label).Inc()
		switch res.outcome {
		case created, exists:
			if j.refund {
				r.m.refundsForwarded.Inc()
			} else {
				r.m.forwarded.Inc()
			}
			return true, "", nil
		case rejected:
			r.m.deadLetters.WithLabelValues("rejected").Inc()
			r.log.Warn("registry refused a request; sending its purchase to the dead-letter topic", "key", j.rec.Key, "refund", j.refund, "err", res.err)
			return false, res.err.Error(), nil
		case retryable:
			failures++
			if failures >= r.cfg.MaxAttempts {
				r.m.deadLetters.WithLabelValues("attempts").Inc()
				r.log.Warn("giving up on a request after repeated failures; sending its purchase to the dead-letter topic",
					"key", j.rec.Key, "refund", j.refund, "attempts", failures, "err", res.err)
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

// produce writes the dead letters, retrying until Kafka took them all (the
// poll's offsets are committed only then).
func (r *Registrar) produce(ctx context.Context, cl *kgo.Client, dead []*kgo.Record) error {
	bo := retry.Backoff{Initial: r.cfg.RetryInitial, Max: r.cfg.RetryMax}
	for len(dead) > 0 {
		var failed []*kgo.Record
		var last error
		for _, res := range cl.ProduceSync(ctx, dead...) {
			if res.Err != nil {
				// franz-go times a record out from its Timestamp, which the
				// failed attempt set: a retry must start the clock again.
				res.Record.Timestamp = time.Time{}
				failed, last = append(failed, res.Record), res.Err
			}
		}
		if dead = failed; len(dead) == 0 {
			r.kafka.OK("produce")
			return nil
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		r.kafka.Fail("produce", fmt.Errorf("cannot produce %d dead letters (retrying; the poll's offsets wait): %w", len(dead), last))
		if err := retry.Sleep(ctx, bo.Next()); err != nil {
			return err
		}
	}
	return nil
}
