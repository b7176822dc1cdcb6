package join

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"runtime"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"purchasesync/processors/internal/episode"
	"purchasesync/schemas/retry"
	"purchasesync/schemas/topicadmin"
)

// Deps are the processor's collaborators.
type Deps struct {
	KafkaOpts []kgo.Opt // base Kafka options (seeds, logger) of every client
	// SessionOpts are added to the transactional session's client only
	// (e.g. metrics hooks, which register once per client).
	SessionOpts []kgo.Opt
	Sites       SiteLookup
	Registerer  prometheus.Registerer
	Logger      *slog.Logger     // a discard logger when nil
	Now         func() time.Time // wall clock; time.Now when nil
}

// Processor is the join stage.
type Processor struct {
	cfg  Config
	top  topology
	deps Deps
	m    *metrics
	log  *slog.Logger

	mu       sync.Mutex
	assigned map[int32]bool // partitions of the current generation
	dirty    bool           // assignment changed: drop and restore state

	parts map[int32]*partition
	// spillWarned: the spill file's unavailability was logged.
	spillWarned bool
	// readBuf is decidePoll's buffer of one poll's records.
	readBuf []inputEvent
	adm     *kadm.Client
	ends    map[string]map[int32]int64

	health        *episode.Tracker
	started       bool
	topicsChecked bool
	// Inputs (and timer keys) whose outputs Kafka refused for good, to be
	// dead-lettered on the next attempt; see poison.
	poisoned     map[position]poisonedInput
	poisonedKeys map[string]string
}

// poisonedInput is an input to dead-letter on the next attempt.
type poisonedInput struct {
	reason    string
	dropValue bool // the dead letter with the body was refused too
}

// New creates the processor.
func New(cfg Config, deps Deps) (*Processor, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if deps.Sites == nil || deps.Registerer == nil {
		return nil, errors.New("join: Sites and Registerer are required")
	}
	if deps.Logger == nil {
		deps.Logger = slog.New(slog.DiscardHandler)
	}
	if deps.Now == nil {
		deps.Now = time.Now
	}
	return &Processor{cfg: cfg, top: newTopology(cfg.Topics), deps: deps, m: newMetrics(deps.Registerer), log: deps.Logger,
		assigned: map[int32]bool{}, parts: map[int32]*partition{},
		health: episode.New("join", deps.Logger, newHealthMetric(deps.Registerer)), poisoned: map[position]poisonedInput{}, poisonedKeys: map[string]string{}}, nil
}

// Run consumes until ctx ends. It returns nil after a clean stop: the open
// transaction is aborted (its input is re-read by whoever owns the
// partitions next), nothing is half-written.
//
// Kafka faults never end it: a broker restart, a lost coordinator, a failed
// begin or end of a transaction or a failed produce closes the
// transactional session, drops the in-memory state and starts a new session
// after a backoff. The new session's InitProducerID fences whatever the old
// one left open, and state is restored from the changelog, so nothing
// committed is lost and nothing is decided twice. Only a configuration the
// join cannot run on (inputs not co-partitioned) is returned as an error.
func (p *Processor) Run(ctx context.Context) error {
	admCl, err := kgo.NewClient(p.deps.KafkaOpts...)
	if err != nil {
		return fmt.Errorf("join: cannot create admin client: %w", err)
	}
	defer admCl.Close()
	p.adm = kadm.NewClient(admCl)
	bo := retry.Backoff{Initial: retryInitial, Max: retryMax}
	for ctx.Err() == nil {
		started := time.Now()
		err := p.runSession(ctx)
		if ctx.Err() != nil {
			break
		}
		var fatal *fatalError
		if errors.As(err, &fatal) {
			p.health.Set(err)
			return fatal.err
		}
		p.dropAll()
		p.health.Set(err)
		p.m.sessionRestarts.Inc()
		retry.Sleep(ctx, bo.AfterRun(time.Since(started)))
	}
	return nil
}

// restoreFetchBytes bounds one fetch of a restore (the broker caps it too,
// at fetch.max.bytes, 55 MiB by default).
const restoreFetchBytes = 8 << 20

// Backoff between transactional sessions: short enough to resume within a
// few seconds of a broker's return, long enough not to hammer a cluster
// that is down.
const (
	retryInitial = 250 * time.Millisecond
	retryMax     = 5 * time.Second
)

// fatalError is a configuration the join cannot run on; Run returns it.
type fatalError struct{ err error }

func (e *fatalError) Error() string { return e.err.Error() }

// checkTopics verifies co-partitioning. Topics just created may take a
// moment to show in metadata, and an unreachable cluster is not a verdict:
// only a definite mismatch is fatal.
func (p *Processor) checkTopics(ctx context.Context) error {
	_, err := topicadmin.CheckCoPartitioned(ctx, p.adm, p.top.coPartitioned()...)
	if err == nil {
		p.topicsChecked = true
		return nil
	}
	if errors.Is(err, topicadmin.ErrNotCoPartitioned) {
		return &fatalError{fmt.Errorf("join: %w", err)}
	}
	return fmt.Errorf("join: cannot check the topics: %w", err)
}

// session is one transactional session: a member of the join's group and
// a transactional producer, fenced against its predecessor.
type session struct {
	*kgo.GroupTransactSession
	lastTick time.Time // when timers were last run
}

// runSession runs one transactional session until ctx ends (nil) or a
// Kafka fault breaks it (the error says which).
func (p *Processor) runSession(ctx context.Context) error {
	s, err := p.openSession(ctx)
	if err != nil {
		return err
	}
	defer s.Close()
	for ctx.Err() == nil {
		if err := p.step(ctx, s); err != nil {
			return err
		}
	}
	return nil
}

// openSession checks the topics (once), joins the group and fences the
// instance's predecessor.
func (p *Processor) openSession(ctx context.Context) (*session, error) {
	if !p.topicsChecked {
		if err := p.checkTopics(ctx); err != nil {
			return nil, err
		}
	}
	limits, err := p.outputLimits(ctx)
	if err != nil {
		return nil, err
	}
	// Nothing is ours until this session's group assigns it: ticking a
	// partition of the previous session's assignment could decide on a
	// partition another member now owns.
	p.mu.Lock()
	p.assigned, p.dirty = map[int32]bool{}, true
	p.mu.Unlock()
	sess, err := kgo.NewGroupTransactSession(p.sessionOpts(limits)...)
	if err != nil {
		return nil, &fatalError{fmt.Errorf("join: cannot create transactional session: %w", err)}
	}
	// Initialise the producer id now: this fences a predecessor with the
	// same transactional id (its open transaction is aborted, or a commit
	// it had prepared is completed) before we restore, instead of at our
	// first produce.
	if _, _, err := sess.Client().ProducerID(ctx); err != nil {
		sess.Close()
		return nil, fmt.Errorf("join: cannot initialise transactional producer %s: %w", p.cfg.kafkaID(), err)
	}
	p.log.Debug("join: transactional session started", "group", p.cfg.Group, "transactional_id", p.cfg.kafkaID())
	if !p.started {
		p.started = true
		p.log.Info("join processor started", "group", p.cfg.Group, "transactional_id", p.cfg.kafkaID())
	}
	return &session{GroupTransactSession: sess}, nil
}

// sessionOpts are the options of a transactional session's client.
func (p *Processor) sessionOpts(limits topicLimits) []kgo.Opt {
	return append(append(append([]kgo.Opt{}, p.deps.KafkaOpts...), p.deps.SessionOpts...),
		kgo.ConsumerGroup(p.cfg.Group),
		kgo.ConsumeTopics(p.top.inputs()...),
		// Range assignment gives partition p of both co-partitioned inputs
		// to the same member; cooperative-sticky would not guarantee it.
		kgo.Balancers(kgo.RangeBalancer()),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
		kgo.FetchIsolationLevel(kgo.ReadCommitted()),
		kgo.RequireStableFetchOffsets(),
		kgo.InstanceID(p.cfg.kafkaID()),
		kgo.SessionTimeout(p.cfg.SessionTimeout),
		kgo.TransactionalID(p.cfg.kafkaID()),
		kgo.TransactionTimeout(p.cfg.TransactionTimeout),
		kgo.RecordPartitioner(kgo.ManualPartitioner()),
		// A record larger than its topic's max.message.bytes fails at once,
		// on its own, in the client, instead of failing a whole batch of
		// innocent records at the broker: so the failed record names the
		// input that made it (see poisoned).
		kgo.ProducerBatchMaxBytesFn(limits.of),
		kgo.OnPartitionsAssigned(func(_ context.Context, _ *kgo.Client, m map[string][]int32) { p.onAssigned(m) }),
		kgo.OnPartitionsRevoked(func(_ context.Context, _ *kgo.Client, m map[string][]int32) { p.onRevoked(m) }),
		kgo.OnPartitionsLost(func(_ context.Context, _ *kgo.Client, m map[string][]int32) { p.onRevoked(m) }),
	)
}

// step polls once and, when the poll brought records or a tick has timers
// due, runs one transaction.
func (p *Processor) step(ctx context.Context, s *session) error {
	p.throttle(s.Client())
	pctx, cancel := context.WithTimeout(ctx, p.cfg.TickInterval)
	fs := s.PollRecords(pctx, p.cfg.MaxPollRecords)
	cancel()
	if ctx.Err() != nil {
		return nil // nothing of this poll was processed or committed
	}
	// After the poll: an assignment made during it started fetching at
	// the committed offsets, so the state, and the inputs waiting in
	// it, must be the committed ones before this poll is applied.
	if err := p.syncAssignment(ctx); err != nil {
		return err
	}
	p.noteFetchErrors(fs)
	now := p.deps.Now()
	doTick := now.Sub(s.lastTick) >= p.cfg.TickInterval
	if fs.NumRecords() == 0 && !(doTick && p.hasDueTimers(now)) {
		if doTick {
			s.lastTick = now
			p.health.Set(p.refreshLag(ctx))
		}
		return nil
	}
	return p.transact(ctx, s, fs, now, doTick)
}

// transact decides on a poll's records and, at a tick, runs the due
// timers, all in one transaction; then it commits, or aborts (see
// aborted).
func (p *Processor) transact(ctx context.Context, s *session, fs kgo.Fetches, now time.Time, doTick bool) error {
	if err := s.Begin(); err != nil {
		return fmt.Errorf("join: cannot begin transaction: %w", err)
	}
	tx := &txnOutput{ctx: ctx, sess: s.GroupTransactSession}
	restoreErr := p.decidePoll(ctx, fs, p.top.storefront, tx.use, tx.out)
	tx.use(nil)
	var lagErr error
	if restoreErr == nil && doTick {
		s.lastTick = now
		// Without fresh end offsets the watermarks could call a
		// partition caught up that is not (rule 9): timers wait for
		// the next tick.
		if lagErr = p.refreshLag(ctx); lagErr == nil {
			p.tickAll(now, tx)
			restoreErr = p.faulted()
		}
	}
	// A fresh context: on shutdown the transaction must still end (an
	// open one would stall read_committed readers until it times out).
	start := time.Now()
	ectx, ecancel := context.WithTimeout(context.WithoutCancel(ctx), p.cfg.TransactionTimeout)
	commit := kgo.TryCommit
	if restoreErr != nil || ctx.Err() != nil {
		commit = kgo.TryAbort
	} else if err := s.Client().Flush(ectx); err != nil {
		// Not delivered within the transaction timeout: the cluster is
		// in trouble. A new session fences this transaction.
		ecancel()
		return fmt.Errorf("join: cannot deliver the transaction's records: %w", err)
	}
	// Every record's promise has run once Flush returned. One that
	// failed aborts the transaction: franz-go would commit without it,
	// moving the input offset past a record that was never written.
	if len(tx.failures()) > 0 {
		commit = kgo.TryAbort
	}
	// Inputs read but not applied yet (pending) stay uncommitted, so
	// that a restart or an abort reads them again.
	committed, err := s.End(p.keepPending(ectx), commit)
	ecancel()
	p.m.txn.Observe(time.Since(start).Seconds())
	fails := tx.failures()
	if committed && err == nil && len(fails) > 0 {
		// Cannot happen: a failure known after the flush above aborts.
		// Say so loudly if a promise ever runs later than that.
		p.log.Error("BUG: join committed a transaction with failed produces", "failed", len(fails), "err", fails[0].err)
	}
	if committed && err == nil {
		p.forgetPoison(fs)
		p.health.Set(lagErr)
		p.log.Debug("join: transaction committed", "records", fs.NumRecords(), "took", time.Since(start).String())
		p.updateGauges()
		return nil
	}
	return p.aborted(ctx, err, restoreErr, fails)
}

// tickAll runs every partition's timers due at now: a caught-up input
// advances by wall time, one behind only as far as it has been read.
func (p *Processor) tickAll(now time.Time, tx *txnOutput) {
	for _, part := range p.parts {
		part.raise(p.watermark(p.top.storefront, part, now), p.watermark(p.top.shopify, part, now))
		tx.use(part)
		part.advance(tx.out)
		tx.use(nil)
		part.tick(minTime(now, part.sfWM, part.whWM), part.sfWM, part.whWM, clockWall, tx.out)
	}
}

// aborted follows a transaction that did not commit: endErr is End's
// error, restoreErr a partition's fault, fails the records Kafka did not
// take. It returns nil to go on with the same session, or why the session
// must restart.
func (p *Processor) aborted(ctx context.Context, endErr, restoreErr error, fails []produceFailure) error {
	// The in-memory state may include changes that were rolled back:
	// forget it all and restore from the changelog.
	p.m.aborts.Inc()
	p.dropAll()
	if ctx.Err() != nil {
		return nil
	}
	if n := p.poison(fails); n > 0 && endErr == nil && restoreErr == nil {
		return nil // re-read at once; the poisoned inputs go to the dead-letter topic
	}
	switch {
	case endErr != nil:
		// franz-go: no error of End is retryable on the same session.
		return fmt.Errorf("join: cannot end transaction: %w", endErr)
	case restoreErr != nil:
		return restoreErr
	case len(fails) > 0:
		return fmt.Errorf("join: %d records failed to produce: %w", len(fails), fails[0].err)
	}
	// Aborted without an error: a rebalance or a lost group. State is
	// restored and input re-read on the same session.
	p.log.Info("join: transaction aborted by a rebalance; state will be restored")
	return nil
}

// txnOutput produces a transaction's records and collects those Kafka did
// not take (their promises run on the client's goroutines).
type txnOutput struct {
	ctx  context.Context
	sess *kgo.GroupTransactSession
	cur  *partition // the partition whose outputs are being produced

	mu     sync.Mutex
	failed []produceFailure
}

// use names the partition whose outputs follow (nil: none).
func (t *txnOutput) use(part *partition) { t.cur = part }

func (t *txnOutput) out(r *kgo.Record) {
	var from *kgo.Record // the input whose outputs these are; nil for timers
	if t.cur != nil {
		from = t.cur.input
	}
	t.sess.Produce(t.ctx, r, func(r *kgo.Record, err error) {
		if err != nil {
			t.mu.Lock()
			t.failed = append(t.failed, produceFailure{input: from, key: string(r.Key), topic: r.Topic, size: len(r.Key) + len(r.Value), err: err})
			t.mu.Unlock()
		}
	})
}

// failures are the records that failed so far.
func (t *txnOutput) failures() []produceFailure {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.failed
}

// decidePoll reads one poll's records into their partitions and applies
// what the partitions' event clocks allow (partition.read, advance); use is
// told which partition is producing. The watermarks are what has been
// read, never "now": an input that looked caught up at the last tick's end
// offsets may since have taken records received before a hold's deadline
// (an ingest retrying its produce through a broker restart). Only the
// periodic tick, with fresh end offsets, moves a quiet input to now.
func (p *Processor) decidePoll(ctx context.Context, fs kgo.Fetches, sfTopic string, use func(*partition), out output) error {
	// Each input partition is read on its own (read queues it); only once
	// the whole poll is read are the partitions advanced, so both of their
	// watermarks cover this poll. Bodies are decoded as they are applied
	// (partition.decodeAhead).
	type span struct {
		part       *partition
		start, end int
	}
	var spans []span
	evs := p.readBuf[:0]
	var err error
	fs.EachPartition(func(ftp kgo.FetchTopicPartition) {
		if err != nil || len(ftp.Records) == 0 {
			return
		}
		var part *partition
		if part, err = p.partitionFor(ctx, ftp.Partition); err != nil {
			return
		}
		storefront := ftp.Topic == sfTopic
		start := len(evs)
		for _, rec := range ftp.Records {
			e := inputEvent{rec: rec, storefront: storefront, raw: true}
			e.ev.ReceivedAt = receivedAt(rec) // all the merge needs
			if pz, ok := p.poisoned[positionOf(rec)]; ok {
				// Still merged by its received-at, as far as it is known.
				e.poison, e.dropValue, e.raw = pz.reason, pz.dropValue, false
			}
			evs = append(evs, e)
		}
		spans = append(spans, span{part, start, len(evs)})
	})
	if err != nil {
		clear(evs)
		p.readBuf = evs[:0]
		return err
	}
	var touched []*partition
	for _, sp := range spans {
		sp.part.read(evs[sp.start:sp.end])
		if !slices.Contains(touched, sp.part) {
			touched = append(touched, sp.part)
		}
	}
	clear(evs) // read copied them; the buffer keeps no record reachable
	p.readBuf = evs[:0]
	for _, part := range touched {
		use(part)
		part.advance(out)
	}
	return p.faulted()
}

// faulted returns the first partition fault (a spilled state that could
// not be read back): the transaction is aborted and the session restarts,
// restoring every partition from the changelog.
func (p *Processor) faulted() error {
	for _, part := range p.parts {
		if part.fault != nil {
			return part.fault
		}
	}
	return nil
}

func minTime(t time.Time, more ...time.Time) time.Time {
	for _, u := range more {
		if u.Before(t) {
			t = u
		}
	}
	return t
}

// produceFailure is one output record that Kafka did not take.
type produceFailure struct {
	input *kgo.Record // nil for records of a timer
	key   string      // the output's key: the join key, also for a timer's records
	topic string
	size  int
	err   error
}

// position names one input record.
type position struct {
	topic     string
	partition int32
	offset    int64
}

func positionOf(r *kgo.Record) position { return position{r.Topic, r.Partition, r.Offset} }

// poison remembers the inputs (or timer keys) whose outputs Kafka refused
// for good (too large for their topic): the next attempt sends them to the
// dead-letter topic instead of deciding on them, so one bad record cannot
// stall its partition, and nothing else of the transaction is lost. It
// returns how many it remembered.
func (p *Processor) poison(fails []produceFailure) int {
	n := 0
	for _, f := range fails {
		if !permanentRecordError(f.err) {
			continue
		}
		reason := fmt.Sprintf("output to %s of %d bytes refused: %v", f.topic, f.size, f.err)
		switch {
		case f.input != nil:
			pos := positionOf(f.input)
			if pz, ok := p.poisoned[pos]; ok {
				if f.topic != p.top.deadLetter || pz.dropValue {
					continue
				}
				// The input is too large for the dead-letter topic
				// itself: dead-letter it without its body.
				pz.dropValue = true
				p.poisoned[pos] = pz
				n++
				continue
			}
			p.poisoned[pos] = poisonedInput{reason: reason}
			p.log.Error("join: an input's output is too large for Kafka; the input goes to the dead-letter topic",
				"topic", pos.topic, "partition", pos.partition, "offset", pos.offset, "key", string(f.input.Key), "reason", reason)
		case f.key != "":
			if _, ok := p.poisonedKeys[f.key]; ok {
				continue
			}
			p.poisonedKeys[f.key] = reason
			p.log.Error("join: a timer's output is too large for Kafka; the key's state goes to the dead-letter topic",
				"key", f.key, "reason", reason)
		default:
			continue
		}
		p.m.produceRefused.WithLabelValues(f.topic).Inc()
		n++
	}
	return n
}

// forgetPoison drops the poisoned inputs a committed transaction consumed.
func (p *Processor) forgetPoison(fs kgo.Fetches) {
	if len(p.poisoned) == 0 && len(p.poisonedKeys) == 0 {
		return
	}
	fs.EachRecord(func(r *kgo.Record) { delete(p.poisoned, positionOf(r)) })
	for k := range p.poisonedKeys {
		found := false
		for _, part := range p.parts {
			if part.has(k) {
				found = true
			}
		}
		if !found {
			delete(p.poisonedKeys, k)
		}
	}
}

// permanentRecordError: Kafka will never take this record as it is.
func permanentRecordError(err error) bool {
	return errors.Is(err, kerr.MessageTooLarge) || errors.Is(err, kerr.RecordListTooLarge) ||
		errors.Is(err, kerr.InvalidRecord) || errors.Is(err, kerr.CorruptMessage)
}

// topicLimits are the max.message.bytes of the output topics.
type topicLimits map[string]int32

// of is franz-go's per-topic batch cap: the topic's limit, or franz-go's own
// default (Kafka's default max.message.bytes) for topics not described.
func (l topicLimits) of(topic string) int32 {
	if n, ok := l[topic]; ok {
		return n
	}
	return 1000012
}

// outputLimits reads max.message.bytes of every topic the join writes.
func (p *Processor) outputLimits(ctx context.Context) (topicLimits, error) {
	rcs, err := p.adm.DescribeTopicConfigs(ctx, p.top.written()...)
	if err != nil {
		return nil, fmt.Errorf("join: cannot describe the output topics: %w", err)
	}
	limits := topicLimits{}
	for _, rc := range rcs {
		if rc.Err != nil {
			return nil, fmt.Errorf("join: cannot describe topic %s: %w", rc.Name, rc.Err)
		}
		for _, c := range rc.Configs {
			if c.Key != "max.message.bytes" || c.Value == nil {
				continue
			}
			n, err := strconv.ParseInt(*c.Value, 10, 32)
			if err != nil || n < 512 {
				continue
			}
			limits[rc.Name] = int32(min(n, 1<<30))
		}
	}
	return limits, nil
}

// noteFetchErrors reports fetch errors other than the poll's own deadline;
// franz-go retries them by itself, so they only mark the join unhealthy.
func (p *Processor) noteFetchErrors(fs kgo.Fetches) {
	for _, fe := range fs.Errors() {
		if errors.Is(fe.Err, context.DeadlineExceeded) || errors.Is(fe.Err, context.Canceled) {
			continue
		}
		p.health.Set(fmt.Errorf("join: fetch from %s/%d: %w", fe.Topic, fe.Partition, fe.Err))
		return
	}
}

// Ready reports nil while the join is processing normally, and why not
// during a Kafka fault episode (or before its first session started).
func (p *Processor) Ready() error {
	if err := p.health.Err(); err != nil {
		return err
	}
	if !p.health.EverOK() {
		return errors.New("join: not started yet")
	}
	return nil
}

func (p *Processor) onAssigned(m map[string][]int32) {
	p.mu.Lock()
	defer p.mu.Unlock()
	shop, sf := p.top.shopify, p.top.storefront
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
	for _, part := range m[p.top.shopify] {
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
	var missing []int32
	for _, id := range want {
		if _, ok := p.parts[id]; !ok {
			missing = append(missing, id)
		}
	}
	if len(missing) < 2 {
		for _, id := range missing {
			if _, err := p.partitionFor(ctx, id); err != nil {
				return err
			}
		}
		return nil
	}
	parts, err := p.restoreParallel(ctx, missing)
	if err != nil {
		return err
	}
	for _, part := range parts {
		p.parts[part.id] = part
	}
	p.updateGauges()
	return nil
}

// restoreParallel restores partitions side by side: each reads its own
// changelog partition and checks what it reads, so a member taking several
// partitions (every start, every rebalance) is back in about the time of
// its largest.
func (p *Processor) restoreParallel(ctx context.Context, ids []int32) ([]*partition, error) {
	parts := make([]*partition, len(ids))
	errs := make([]error, len(ids))
	sem := make(chan struct{}, max(2, runtime.GOMAXPROCS(0)))
	var wg sync.WaitGroup
	for i, id := range ids {
		wg.Add(1)
		go func() {
			defer wg.Done()
			sem <- struct{}{}
			defer func() { <-sem }()
			parts[i] = p.newPartition(id)
			errs[i] = p.restore(ctx, parts[i])
		}()
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		for _, part := range parts {
			part.close()
		}
		return nil, err
	}
	return parts, nil
}

func (p *Processor) newPartition(id int32) *partition {
	part := newPartition(id, p.cfg, p.deps.Sites, p.m)
	part.poisonedKeys = p.poisonedKeys
	return part
}

func (p *Processor) dropAll() {
	for _, part := range p.parts {
		part.close()
	}
	p.parts = map[int32]*partition{}
	p.m.held.Set(0)
	p.m.pending.Set(0)
	p.m.paused.Set(0)
	p.m.stateKeys.Set(0)
	p.m.overdue.Set(0)
	p.m.oldestOverdue.Set(0)
}

func (p *Processor) partitionFor(ctx context.Context, id int32) (*partition, error) {
	if part, ok := p.parts[id]; ok {
		return part, nil
	}
	part := p.newPartition(id)
	if err := p.restore(ctx, part); err != nil {
		part.close()
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
	topic := p.top.state
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
		cl, err := kgo.NewClient(append(append([]kgo.Opt{}, p.deps.KafkaOpts...),
			kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{topic: {part.id: kgo.NewOffset().AtStart()}}),
			kgo.FetchIsolationLevel(kgo.ReadCommitted()),
			kgo.KeepControlRecords(),
			// Large fetches: a restore reads one partition from its start,
			// and at the default 1 MiB per partition it waits on a round
			// trip per few thousand states.
			kgo.FetchMaxPartitionBytes(restoreFetchBytes),
			kgo.FetchMaxBytes(restoreFetchBytes),
		)...)
		if err != nil {
			return fmt.Errorf("join: cannot create restore client: %w", err)
		}
		defer cl.Close()
		// Each key's last value is its state (the changelog is compacted
		// lazily); values are checked as they come, while the client
		// fetches what follows.
		// Sized for a changelog compacted to about two values a key:
		// growing a map of a million keys step by step costs more than
		// reading them.
		part.presize((end - begin.Offset) / 2)
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
				part.restoreValue(string(r.Key), r.Value, r.Offset)
			})
		}
		if de := part.restoreErr(); de != nil {
			// The partition stalls (sessions retry; /readyz says why):
			// going on without the key's state could register it twice.
			// The error says where the record is and how an operator
			// skips it.
			return fmt.Errorf("join: cannot restore %s/%d: the value of key %q at offset %d does not decode (%v); "+
				"to go on without it, produce a tombstone (null value) for that key to %s partition %d: the key's past decisions are then forgotten",
				topic, part.id, de.key, de.offset, de.err, topic, part.id)
		}
	}
	part.finishRestore()
	if err := p.initPositions(ctx, part); err != nil {
		return err
	}
	p.m.restore.Observe(time.Since(start).Seconds())
	p.m.restoredKeys.Add(float64(part.keys())) // keys, not the records read (n)
	p.log.Info("join: partition restored", "partition", part.id, "records", n, "keys", part.keys(), "spilled", len(part.coldRefs), "held", part.held, "took", time.Since(start).String())
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
	for _, t := range []string{p.top.storefront, p.top.shopify} {
		next := int64(0)
		if o, ok := offs.Lookup(t, part.id); ok && o.Err == nil && o.At >= 0 {
			next = o.At
		}
		if t == p.top.storefront {
			part.sfNext = next
		} else {
			part.whNext = next
		}
	}
	return nil
}

func (p *Processor) hasDueTimers(now time.Time) bool {
	for _, part := range p.parts {
		if len(part.blocked) > 0 || part.pendingLen() > 0 || (len(part.timers) > 0 && part.timers[0].due(now)) {
			return true
		}
	}
	return false
}

// refreshLag reads the inputs' end offsets (once per tick) for the lag
// metric and the watermarks.
func (p *Processor) refreshLag(ctx context.Context) error {
	ends, err := p.adm.ListEndOffsets(ctx, p.top.inputs()...)
	if err == nil {
		err = ends.Error()
	}
	if err != nil {
		return fmt.Errorf("join: cannot list input end offsets: %w", err)
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
		for _, t := range []string{p.top.storefront, p.top.shopify} {
			next := part.whNext
			if t == p.top.storefront {
				next = part.sfNext
			}
			if end, ok := m[t][id]; ok && next >= 0 {
				p.m.lag.WithLabelValues(t, strconv.Itoa(int(id))).Set(float64(max(end-next, 0)))
			}
		}
	}
	return nil
}

// watermark is the time up to which an input partition has been read: now
// when it is caught up with the end offset seen at this tick, else its
// watermark so far (the latest received-at read).
func (p *Processor) watermark(t string, part *partition, now time.Time) time.Time {
	next, wm := part.whNext, part.whWM
	if t == p.top.storefront {
		next, wm = part.sfNext, part.sfWM
	}
	end, ok := p.ends[t][part.id]
	if ok && next >= end {
		return now
	}
	return wm
}

// keepPending rewrites a transaction's offset commit so that each input
// partition commits its first pending record's offset instead of the end of
// what was polled. Without pending records it leaves ctx as it is.
func (p *Processor) keepPending(ctx context.Context) context.Context {
	from := map[string]map[int32]*kgo.Record{}
	add := func(topic string, id int32, r *kgo.Record) {
		if r == nil {
			return
		}
		if from[topic] == nil {
			from[topic] = map[int32]*kgo.Record{}
		}
		from[topic][id] = r
	}
	for id, part := range p.parts {
		s, w := part.pendingFrom()
		add(p.top.storefront, id, s)
		add(p.top.shopify, id, w)
	}
	if len(from) == 0 {
		return ctx
	}
	return kgo.PreTxnCommitFnContext(ctx, func(req *kmsg.TxnOffsetCommitRequest) error {
		for i := range req.Topics {
			t := &req.Topics[i]
			for j := range t.Partitions {
				pp := &t.Partitions[j]
				if r, ok := from[t.Topic][pp.Partition]; ok && r.Offset < pp.Offset {
					pp.Offset, pp.LeaderEpoch = r.Offset, r.LeaderEpoch
				}
			}
		}
		return nil
	})
}

// throttle bounds the pending inputs: a partition holding more than
// MaxPollRecords stops fetching the input that is ahead until it has
// applied half of them; the other input, the one it waits for, goes on.
func (p *Processor) throttle(cl *kgo.Client) {
	limit := p.cfg.MaxPollRecords
	var want map[string][]int32
	for id, part := range p.parts {
		n := part.pendingLen()
		if n <= limit/2 || (n <= limit && !part.paused) {
			part.paused = false
			continue
		}
		part.paused = true
		t := p.top.shopify
		if part.sfQ.len() > part.whQ.len() {
			t = p.top.storefront
		}
		if want == nil {
			want = map[string][]int32{}
		}
		want[t] = append(want[t], id)
	}
	now := cl.PauseFetchPartitions(nil)
	if len(now) == 0 && len(want) == 0 {
		return // the usual case: nothing paused, nothing to pause
	}
	resume := map[string][]int32{}
	for t, ids := range now {
		for _, id := range ids {
			if !slices.Contains(want[t], id) {
				resume[t] = append(resume[t], id)
			}
		}
	}
	if len(resume) > 0 {
		cl.ResumeFetchPartitions(resume)
	}
	if len(want) > 0 {
		cl.PauseFetchPartitions(want)
	}
}

func (p *Processor) updateGauges() {
	keys, held, pending, paused, overdue, oldest, now := 0, 0, 0, 0, 0, time.Duration(0), p.deps.Now()
	spilled, spillBytes := 0, int64(0)
	for _, part := range p.parts {
		keys += part.keys()
		spilled += len(part.coldRefs)
		if part.spill != nil {
			spillBytes += part.spill.size()
			if err := part.spill.err; err != nil && !p.spillWarned {
				p.spillWarned = true
				p.log.Warn("join: settled states stay in memory: the spill file is unavailable (-join.stateDir)", "dir", p.cfg.StateDir, "err", err)
			}
		}
		held += part.held
		pending += part.pendingLen()
		if part.paused {
			paused++
		}
		n, o := part.overdueHolds(now)
		overdue, oldest = overdue+n, max(oldest, o)
	}
	p.m.stateKeys.Set(float64(keys))
	p.m.spilledKeys.Set(float64(spilled))
	p.m.spillBytes.Set(float64(spillBytes))
	p.m.held.Set(float64(held))
	p.m.pending.Set(float64(pending))
	p.m.paused.Set(float64(paused))
	p.m.overdue.Set(float64(overdue))
	p.m.oldestOverdue.Set(oldest.Seconds())
}
