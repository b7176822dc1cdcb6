package discrepancy

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/twmb/franz-go/pkg/kgo"

	"purchasesync/schemas"
	"purchasesync/schemas/health"
	"purchasesync/schemas/retry"
)

// Deps are what a Notifier takes from its process.
type Deps struct {
	KafkaOpts  []kgo.Opt
	Registerer prometheus.Registerer
	Logger     *slog.Logger
	HTTP       *http.Client // nil: a client with Config.Timeout
}

// example is one discrepancy shown in a message, already masked.
type example struct{ order, field, storefront, shopify string }

// partDigest is what one partition contributed to a site's digest. Kept per
// partition so that a revoked partition's part can be dropped: its new owner
// re-reads it from the committed offset.
type partDigest struct {
	counts   map[string]int
	examples []example
	first    int64 // offset of its first record: commits stop there
	since    time.Time
}

type siteState struct {
	parts    map[int32]*partDigest
	lastSent time.Time
}

// Notifier posts per-site discrepancy digests. Run drives it.
type Notifier struct {
	cfg   Config
	log   *slog.Logger
	m     *metrics
	http  *http.Client
	opts  []kgo.Opt
	topic string

	mu       sync.Mutex // the state below; rebalance callbacks take it too
	sites    map[string]*siteState
	consumed map[int32]kgo.EpochOffset // next offset per partition
	now      func() time.Time
	// lastCommit renders the offsets last committed, to skip idle commits.
	lastCommit string

	health *health.Health // readiness through Kafka faults
	kafka  *health.Dep
}

// New checks cfg and prepares a notifier.
func New(cfg Config, deps Deps) (*Notifier, error) {
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
	n := &Notifier{cfg: cfg, log: deps.Logger, m: newMetrics(deps.Registerer), http: deps.HTTP,
		topic: cfg.Topics.Name(schemas.TopicDiscrepancies), sites: map[string]*siteState{},
		consumed: map[int32]kgo.EpochOffset{}, now: time.Now}
	n.health = health.New("notifier", "", deps.Registerer, n.log)
	n.kafka = n.health.Dep("Kafka")
	n.health.Starting("not consuming yet (joining consumer group " + cfg.Group + ")")
	n.opts = append(append([]kgo.Opt{}, deps.KafkaOpts...),
		kgo.ConsumerGroup(cfg.Group),
		kgo.ConsumeTopics(n.topic),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
		kgo.FetchIsolationLevel(kgo.ReadCommitted()),
		kgo.DisableAutoCommit(),
		// Callbacks run only between polls, never while a poll's records are
		// being added.
		kgo.BlockRebalanceOnPoll(),
		kgo.OnPartitionsAssigned(func(context.Context, *kgo.Client, map[string][]int32) {
			n.kafka.OK("group")
			n.health.Started()
		}),
		kgo.OnPartitionsRevoked(n.revoked),
		kgo.OnPartitionsLost(n.lost),
	)
	if err := kgo.ValidateOpts(n.opts...); err != nil {
		return nil, fmt.Errorf("invalid Kafka options for the notifier: %w", err)
	}
	return n, nil
}

// Ready reports nil while the notifier consumes normally, and why not
// before it first joined its consumer group and during a Kafka outage
// episode (unreachable, a lost group session, failed commits).
func (n *Notifier) Ready() error { return n.health.Err() }

// Run reads discrepancies and posts digests until ctx ends. Kafka faults
// never end it; a failed commit is tried again at the next poll (a second).
func (n *Notifier) Run(ctx context.Context) error {
	cl, err := kgo.NewClient(n.opts...)
	if err != nil {
		return fmt.Errorf("cannot create the notifier's Kafka client: %w", err)
	}
	defer func() { cl.AllowRebalance(); cl.Close() }()
	pctx, stopProbe := context.WithCancel(ctx)
	var probe sync.WaitGroup
	probe.Go(func() { n.kafka.Probe(pctx, n.cfg.HealthInterval, max(n.cfg.HealthInterval, 5*time.Second), cl.Ping) })
	defer probe.Wait()
	defer stopProbe()
	n.log.Info("notifier posting discrepancy digests", "interval", n.cfg.Interval.String(), "group", n.cfg.Group)
	for {
		pctx, cancel := context.WithTimeout(ctx, time.Second)
		fs := cl.PollRecords(pctx, 1000)
		cancel()
		if ctx.Err() != nil {
			return nil
		}
		n.kafka.Fetches(fs)
		n.mu.Lock()
		fs.EachRecord(n.add)
		n.mu.Unlock()
		n.sendDue(ctx)
		n.commit(ctx, cl, nil)
		cl.AllowRebalance()
	}
}

func (n *Notifier) add(rec *kgo.Record) {
	n.consumed[rec.Partition] = kgo.EpochOffset{Epoch: rec.LeaderEpoch, Offset: rec.Offset + 1}
	d, err := schemas.UnmarshalDiscrepancy(rec.Value)
	if err != nil {
		n.log.Warn("notifier: ignoring an invalid discrepancy", "partition", rec.Partition, "offset", rec.Offset, "err", err)
		return
	}
	if d.Test && !n.cfg.IncludeTest {
		return
	}
	field := d.Field
	if d.Kind == schemas.KindWebhookMissing {
		field = "webhook_missing"
	}
	n.m.discrepancies.WithLabelValues(field).Inc()
	s := n.sites[d.Site]
	if s == nil {
		s = &siteState{parts: map[int32]*partDigest{}}
		n.sites[d.Site] = s
	}
	p := s.parts[rec.Partition]
	if p == nil {
		p = &partDigest{counts: map[string]int{}, first: rec.Offset, since: n.now()}
		s.parts[rec.Partition] = p
	}
	p.counts[field]++
	if len(p.examples) < n.cfg.Examples {
		p.examples = append(p.examples, example{order: d.OrderNumber, field: field,
			storefront: schemas.MaskValue(field, d.StorefrontValue), shopify: schemas.MaskValue(field, d.ShopifyValue)})
	}
	n.m.pending.Set(float64(n.pendingLocked()))
}

func (n *Notifier) pendingLocked() int {
	c := 0
	for _, s := range n.sites {
		if len(s.parts) > 0 {
			c++
		}
	}
	return c
}

// sendDue posts the digest of every site whose interval has passed.
func (n *Notifier) sendDue(ctx context.Context) {
	n.mu.Lock()
	now := n.now()
	type due struct {
		site  string
		text  string
		parts map[int32]*partDigest
	}
	var todo []due
	for site, s := range n.sites {
		if len(s.parts) > 0 && now.Sub(s.lastSent) >= n.cfg.Interval {
			todo = append(todo, due{site, n.digest(site, s, now), s.parts})
		}
	}
	n.mu.Unlock()
	sort.Slice(todo, func(i, j int) bool { return todo[i].site < todo[j].site })
	for _, d := range todo {
		err := n.post(ctx, d.text)
		n.mu.Lock()
		s := n.sites[d.site]
		s.lastSent = n.now() // also after a failure: retry next interval, not in a loop
		if err == nil {
			n.m.messages.WithLabelValues("sent").Inc()
			// Only the parts this message covered: a revoke may have dropped
			// some, and new records may have created others meanwhile.
			for p, part := range d.parts {
				if s.parts[p] == part {
					delete(s.parts, p)
				}
			}
		} else {
			n.m.messages.WithLabelValues("failed").Inc()
			n.log.Warn("cannot post discrepancy digest; keeping it for the next interval", "site", d.site, "err", err)
		}
		n.m.pending.Set(float64(n.pendingLocked()))
		n.mu.Unlock()
		if ctx.Err() != nil {
			return
		}
	}
}

// digest renders a site's message (Slack mrkdwn).
func (n *Notifier) digest(site string, s *siteState, now time.Time) string {
	counts := map[string]int{}
	var examples []example
	since := now
	total := 0
	parts := make([]int32, 0, len(s.parts))
	for p := range s.parts {
		parts = append(parts, p)
	}
	sort.Slice(parts, func(i, j int) bool { return parts[i] < parts[j] })
	for _, p := range parts {
		d := s.parts[p]
		for f, c := range d.counts {
			counts[f] += c
			total += c
		}
		examples = append(examples, d.examples...)
		if d.since.Before(since) {
			since = d.since
		}
	}
	fields := make([]string, 0, len(counts))
	for f := range counts {
		fields = append(fields, f)
	}
	sort.Slice(fields, func(i, j int) bool {
		if counts[fields[i]] != counts[fields[j]] {
			return counts[fields[i]] > counts[fields[j]]
		}
		return fields[i] < fields[j]
	})
	var b strings.Builder
	fmt.Fprintf(&b, "*purchasesync*: %d discrepanc%s on site *%s* since %s\n", total, plural(total, "y", "ies"), site, since.UTC().Format("2006-01-02 15:04 MST"))
	for _, f := range fields {
		fmt.Fprintf(&b, "• %s: %d\n", f, counts[f])
	}
	if len(examples) > n.cfg.Examples {
		examples = examples[:n.cfg.Examples]
	}
	if len(examples) > 0 {
		b.WriteString("Examples:\n")
		for _, e := range examples {
			if e.field == "webhook_missing" {
				fmt.Fprintf(&b, "• order %s: no Shopify webhook\n", mrkdwn(e.order))
				continue
			}
			fmt.Fprintf(&b, "• order %s %s: storefront `%s`, Shopify `%s`\n", mrkdwn(e.order), mrkdwn(e.field), mrkdwn(e.storefront), mrkdwn(e.shopify))
		}
	}
	return b.String()
}

// mrkdwnEscaper escapes text from events (order numbers and values come
// from unauthenticated storefront events) for Slack's mrkdwn: &, < and >
// as entities (else "<!channel>" pings everyone and "<url|text>" makes a
// link), backticks dropped (they would close the code span), line breaks
// as spaces.
var mrkdwnEscaper = strings.NewReplacer("&", "&amp;", "<", "&lt;", ">", "&gt;", "`", "", "\n", " ", "\r", " ")

func mrkdwn(s string) string { return mrkdwnEscaper.Replace(s) }

func plural(n int, one, many string) string {
	if n == 1 {
		return one
	}
	return many
}

// post sends one message, retrying a few times on 429, 5xx and network
// errors (honouring Retry-After).
func (n *Notifier) post(ctx context.Context, text string) error {
	body, _ := json.Marshal(map[string]string{"text": text})
	bo := retry.Backoff{Initial: n.cfg.RetryInitial, Max: 30 * time.Second}
	var last error
	for attempt := 1; ; attempt++ {
		retryAfter, err := n.postOnce(ctx, body)
		if err == nil {
			return nil
		}
		last = err
		if retryAfter < 0 || attempt >= n.cfg.Attempts || ctx.Err() != nil {
			return last
		}
		d := bo.Next()
		if retryAfter > 0 {
			d = min(retryAfter, n.cfg.Interval)
		}
		if err := retry.Sleep(ctx, d); err != nil {
			return last
		}
	}
}

// postOnce returns a negative retryAfter for answers not worth retrying.
func (n *Notifier) postOnce(ctx context.Context, body []byte) (time.Duration, error) {
	ctx, cancel := context.WithTimeout(ctx, n.cfg.Timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, n.cfg.URL, bytes.NewReader(body))
	if err != nil {
		return -1, fmt.Errorf("cannot build the webhook request: %w", err)
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := n.http.Do(req)
	if err != nil {
		// The URL carries the webhook's secret: report the error without it.
		return 0, fmt.Errorf("cannot reach the notifier webhook: %v", redact(err, n.cfg.URL))
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	if resp.StatusCode >= 200 && resp.StatusCode < 300 {
		return 0, nil
	}
	ra, _ := retry.ParseRetryAfter(resp.Header.Get("Retry-After"), time.Now())
	if resp.StatusCode == http.StatusTooManyRequests || resp.StatusCode >= 500 {
		return ra, fmt.Errorf("notifier webhook answered %d", resp.StatusCode)
	}
	return -1, fmt.Errorf("notifier webhook answered %d (check -notifier.url)", resp.StatusCode)
}

func redact(err error, secretURL string) string {
	return strings.ReplaceAll(err.Error(), secretURL, "<notifier.url>")
}

// commitOffsets computes, per partition, the offset that loses nothing: the
// first record of an undelivered digest part, else everything consumed.
// only limits it to some partitions (nil: all).
func (n *Notifier) commitOffsets(only map[int32]bool) map[string]map[int32]kgo.EpochOffset {
	out := map[int32]kgo.EpochOffset{}
	for p, eo := range n.consumed {
		if only == nil || only[p] {
			out[p] = eo
		}
	}
	for _, s := range n.sites {
		for p, d := range s.parts {
			if eo, ok := out[p]; ok && d.first < eo.Offset {
				out[p] = kgo.EpochOffset{Epoch: -1, Offset: d.first}
			}
		}
	}
	if len(out) == 0 {
		return nil
	}
	return map[string]map[int32]kgo.EpochOffset{n.topic: out}
}

func (n *Notifier) commit(ctx context.Context, cl *kgo.Client, only map[int32]bool) {
	n.mu.Lock()
	offs := n.commitOffsets(only)
	same := only == nil && fmt.Sprint(offs) == n.lastCommit
	n.mu.Unlock()
	if offs == nil || same {
		if only == nil {
			n.kafka.OK("commit") // nothing left to commit
		}
		return
	}
	// health.Commit also reports a partition's error: taking one for a
	// success would never commit those offsets again.
	cerr := health.Commit(ctx, cl, offs)
	if cerr == nil && only == nil {
		n.mu.Lock()
		n.lastCommit = fmt.Sprint(offs)
		n.mu.Unlock()
	}
	switch {
	case cerr == nil:
		if only == nil {
			n.kafka.OK("commit")
		}
	case ctx.Err() == nil:
		n.kafka.Fail("commit", fmt.Errorf("%w (retrying at the next poll; a restart meanwhile reports discrepancies again)", cerr))
	}
}

// revoked commits what the partitions' delivered digests allow, then drops
// their undelivered parts: the next owner re-reads them from there.
func (n *Notifier) revoked(ctx context.Context, cl *kgo.Client, parts map[string][]int32) {
	only := map[int32]bool{}
	for _, p := range parts[n.topic] {
		only[p] = true
	}
	n.commit(ctx, cl, only)
	n.drop(only)
}

// lost drops the partitions' state without committing: another member owns
// them already.
func (n *Notifier) lost(_ context.Context, _ *kgo.Client, parts map[string][]int32) {
	only := map[int32]bool{}
	for _, p := range parts[n.topic] {
		only[p] = true
	}
	n.drop(only)
}

func (n *Notifier) drop(only map[int32]bool) {
	n.mu.Lock()
	defer n.mu.Unlock()
	for p := range only {
		delete(n.consumed, p)
	}
	for site, s := range n.sites {
		for p := range only {
			delete(s.parts, p)
		}
		if len(s.parts) == 0 && n.now().Sub(s.lastSent) >= n.cfg.Interval {
			delete(n.sites, site)
		}
	}
	n.m.pending.Set(float64(n.pendingLocked()))
}
