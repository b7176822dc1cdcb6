package clickhouse

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/twmb/franz-go/pkg/kgo"

	"purchasesync/schemas"
	"purchasesync/schemas/deadletter"
	"purchasesync/schemas/health"
	"purchasesync/schemas/retry"
)

// Deps are what a Sink takes from its process.
type Deps struct {
	// KafkaOpts are the process's base client options (seeds, client id,
	// logger, metric hooks, producer settings). The sink adds its group
	// options and builds its own client, which also produces dead letters.
	// They must not configure buffer pools (kgo.WithPools) or recycle
	// records: decoded rows share the bytes of record values (decode.go).
	KafkaOpts  []kgo.Opt
	Registerer prometheus.Registerer // expected to prefix purchasesync_sink_
	Logger     *slog.Logger

	// writer replaces ClickHouse in in-process tests.
	writer writer
}

// input says which table a topic feeds.
type input int

const (
	inPurchases input = iota
	inDiscrepancies
	inShopify
	inStorefront
)

// Sink loads the four input topics into ClickHouse. Run drives it; a Sink
// is not safe for concurrent use and runs once.
type Sink struct {
	cfg    Config
	log    *slog.Logger
	m      *metrics
	w      writer
	conn   driver.Conn // nil with a test writer
	inputs map[string]input
	dlq    string

	// cur receives polled records; at most one older batch is being
	// written meanwhile (inflight), so decoding overlaps with inserting and
	// memory stays at two batches.
	cur, spare    *batch
	inflight      chan error
	inflightBatch *batch // owned by the flush goroutine until reaped
	inflightRows  int

	rebalanceWanted atomic.Bool
	lagMu           sync.Mutex
	lag             map[string]map[int32]int64
	kafkaOpts       []kgo.Opt
	decodeBuf       []decoded
	parallelPolls   int // polls converted on several goroutines (tests check the path is taken)

	// Readiness through outages of Kafka and ClickHouse.
	health    *health.Health
	kafka, ch *health.Dep
	owed      health.Uncommitted // written, but their commit failed
	commitBo  retry.Backoff      // between retries of owed commits; Run's goroutine
	owedRetry time.Time          // when to retry owed commits while idle
}

// batch is what the sink buffers between two inserts: rows per table, dead
// letters, and the offsets to commit once all of it is written (every
// consumed record is a buffered row or a dead letter).
type batch struct {
	purchases     *purchasesTable
	discrepancies *discrepanciesTable
	raw           *rawEventsTable
	tables        []*table
	dead          []*kgo.Record
	offsets       map[string]map[int32]kgo.EpochOffset
	pending       int
	bytes         int
	firstAt       time.Time
}

func newBatch() *batch {
	b := &batch{purchases: newPurchasesTable(), discrepancies: newDiscrepanciesTable(), raw: newRawEventsTable(),
		offsets: map[string]map[int32]kgo.EpochOffset{}}
	b.tables = []*table{&b.purchases.table, &b.discrepancies.table, &b.raw.table}
	return b
}

func (b *batch) reset() {
	for _, t := range b.tables {
		t.reset()
	}
	clear(b.dead)
	b.dead = b.dead[:0]
	clear(b.offsets)
	b.pending, b.bytes = 0, 0
}

// New checks cfg and prepares a sink; nothing connects until Run.
func New(cfg Config, deps Deps) (*Sink, error) {
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("invalid ClickHouse sink configuration: %w", err)
	}
	if deps.Logger == nil {
		deps.Logger = slog.New(slog.DiscardHandler)
	}
	if deps.Registerer == nil {
		deps.Registerer = prometheus.NewRegistry()
	}
	s := &Sink{
		cfg: cfg, log: deps.Logger, m: newMetrics(deps.Registerer), w: deps.writer,
		dlq: cfg.Topics.Name(schemas.TopicDeadLetter),
		cur: newBatch(),
		lag: map[string]map[int32]int64{},
		inputs: map[string]input{
			cfg.Topics.Name(schemas.TopicPurchases):           inPurchases,
			cfg.Topics.Name(schemas.TopicDiscrepancies):       inDiscrepancies,
			cfg.Topics.Name(schemas.TopicShopifyOrders):       inShopify,
			cfg.Topics.Name(schemas.TopicStorefrontPurchases): inStorefront,
		},
	}
	s.publishLagLocked() // every input topic shows up at 0 before its first record
	s.health = health.New("sink", "", deps.Registerer, s.log)
	s.kafka, s.ch = s.health.Dep("Kafka"), s.health.Dep("ClickHouse")
	s.health.Starting("not consuming yet (joining consumer group " + cfg.Group + ")")
	s.commitBo = retry.Backoff{Initial: cfg.RetryInitial, Max: cfg.RetryMax}
	if s.w == nil {
		conn, err := Open(cfg, cfg.Database)
		if err != nil {
			return nil, err
		}
		s.conn, s.w = conn, &chWriter{conn: conn, log: s.log, cluster: s.cfg.Cluster != ""}
	}
	s.kafkaOpts = append(append([]kgo.Opt{}, deps.KafkaOpts...), s.groupOpts()...)
	if err := kgo.ValidateOpts(s.kafkaOpts...); err != nil {
		return nil, fmt.Errorf("invalid Kafka options for the sink: %w", err)
	}
	return s, nil
}

func (s *Sink) groupOpts() []kgo.Opt {
	topics := make([]string, 0, len(s.inputs))
	for t := range s.inputs {
		topics = append(topics, t)
	}
	return []kgo.Opt{
		kgo.ConsumerGroup(s.cfg.Group),
		kgo.ConsumeTopics(topics...),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
		// purchases.v1 and discrepancies.v1 are written in the join's
		// transactions: an aborted one must never reach ClickHouse.
		kgo.FetchIsolationLevel(kgo.ReadCommitted()),
		kgo.DisableAutoCommit(),
		// Rebalances wait while rows are buffered, so offsets are only ever
		// committed for partitions this member still owns. Buffers empty at
		// least every FlushInterval, and OnPartitionsCallbackBlocked asks
		// for an early flush.
		kgo.BlockRebalanceOnPoll(),
		kgo.OnPartitionsCallbackBlocked(func(context.Context, *kgo.Client) { s.rebalanceWanted.Store(true) }),
		kgo.OnPartitionsAssigned(func(context.Context, *kgo.Client, map[string][]int32) {
			s.kafka.OK("group")
			s.health.Started()
		}),
		kgo.OnPartitionsRevoked(s.revoked),
		kgo.OnPartitionsLost(s.lost),
		// One buffered fetch per broker is at most about one batch, and a
		// single partition may fill it: with franz-go's 1 MiB default per
		// partition, a backlog arrives in many small round trips that the
		// sink waits for between batches.
		kgo.FetchMaxBytes(int32(min(s.cfg.BatchBytes, 1<<30))),
		kgo.FetchMaxPartitionBytes(int32(min(s.cfg.BatchBytes, 1<<30))),
	}
}

// Ready reports nil while the sink consumes and loads normally, and why not
// before it first joined its consumer group and during an outage of Kafka
// (unreachable, a lost group session, failed commits or dead letters) or of
// ClickHouse (unreachable, failed inserts or migrations).
func (s *Sink) Ready() error { return s.health.Err() }

// Run migrates (if configured), then consumes until ctx ends. It returns nil
// after a final flush and commit; an error means the sink could not do its
// job (then the uncommitted records are read again by the next owner and
// collapse in FINAL). Outages of Kafka or ClickHouse never end it: it holds,
// says so through Ready, and resumes by itself.
func (s *Sink) Run(ctx context.Context) error {
	if s.conn != nil {
		defer s.conn.Close()
	}
	// Probes end with Run, before the client closes.
	pctx, stopProbes := context.WithCancel(ctx)
	var probes sync.WaitGroup
	defer probes.Wait()
	defer stopProbes()
	if s.conn != nil {
		probes.Go(func() { s.ch.Probe(pctx, s.cfg.HealthInterval, s.cfg.DialTimeout, s.conn.Ping) })
	}
	if s.cfg.Migrate && s.conn != nil {
		s.health.Starting("migrating the ClickHouse schema")
		if err := s.migrate(ctx); err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return err
		}
		s.health.Starting("not consuming yet (joining consumer group " + s.cfg.Group + ")")
	}
	cl, err := kgo.NewClient(s.kafkaOpts...)
	if err != nil {
		return fmt.Errorf("cannot create the sink's Kafka client: %w", err)
	}
	defer func() {
		cl.AllowRebalance()
		cl.Close()
	}()
	probes.Go(func() { s.kafka.Probe(pctx, s.cfg.HealthInterval, max(s.cfg.HealthInterval, 5*time.Second), cl.Ping) })
	s.log.Info("sink consuming", "group", s.cfg.Group, "database", s.cfg.Database,
		"batch_rows", s.cfg.BatchRows, "flush_interval", s.cfg.FlushInterval.String())

	for ctx.Err() == nil {
		if s.rebalanceWanted.Load() {
			// A rebalance is waiting on us. Under steady load every poll
			// brings records, so the batch would never be empty: stop
			// polling, write and commit what we hold, then let it proceed.
			if err := s.reap(true); err != nil {
				break
			}
			if s.cur.pending > 0 {
				s.launch(ctx, cl)
				if err := s.reap(true); err != nil {
					break
				}
			}
			s.rebalanceWanted.Store(false)
			cl.AllowRebalance()
		}
		if s.inflight == nil && s.cur.pending == 0 && s.owed.Len() > 0 && !time.Now().Before(s.owedRetry) {
			s.launch(ctx, cl) // commits what earlier commits failed to
		}
		pctx, cancel := s.pollContext(ctx)
		fs := cl.PollRecords(pctx, max(1, s.cfg.BatchRows-s.cur.pending))
		cancel()
		s.kafka.Fetches(fs)
		s.updateLag(fs)
		s.addAll(fs)
		if err := s.reap(false); err != nil {
			break // only ctx ends a flush early; the final flush retries
		}
		if s.due() {
			if err := s.reap(true); err != nil {
				break
			}
			s.launch(ctx, cl)
		}
		if s.cur.pending == 0 && s.inflight == nil {
			s.rebalanceWanted.Store(false)
			cl.AllowRebalance()
		}
	}
	// The parent context is done; give what is left ShutdownTimeout, oldest
	// batch first so that no commit passes an unwritten record.
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), s.cfg.ShutdownTimeout)
	defer cancel()
	left := []*batch{s.cur}
	if s.inflight != nil {
		if err := <-s.inflight; err != nil {
			left = []*batch{s.inflightBatch, s.cur}
		}
		s.inflight = nil
	}
	for _, b := range left {
		if err := s.flush(sctx, cl, b); err != nil {
			return fmt.Errorf("cannot flush %d buffered records before stopping (they will be read again): %w", b.pending, err)
		}
	}
	return nil
}

// launch hands the current batch to a goroutine that writes and commits it,
// and starts a new one. The caller has reaped the previous flush.
func (s *Sink) launch(ctx context.Context, cl *kgo.Client) {
	b := s.cur
	s.cur, s.spare = s.spare, nil
	if s.cur == nil {
		s.cur = newBatch()
	}
	done := make(chan error, 1)
	s.inflight, s.inflightBatch, s.inflightRows = done, b, b.pending
	go func() { done <- s.flush(ctx, cl, b) }()
}

// reap collects the in-flight flush if it finished (or, with wait, when it
// finishes). An error means ctx ended before the batch was written.
func (s *Sink) reap(wait bool) error {
	if s.inflight == nil {
		return nil
	}
	var err error
	if wait {
		err = <-s.inflight
	} else {
		select {
		case err = <-s.inflight:
		default:
			return nil
		}
	}
	s.inflight = nil
	if err != nil {
		s.inflight = make(chan error, 1)
		s.inflight <- err // the final flush retries this batch
		return err
	}
	s.spare, s.inflightBatch, s.inflightRows = s.inflightBatch, nil, 0
	s.spare.reset()
	s.m.buffered.Set(float64(s.cur.pending))
	if s.owed.Len() > 0 {
		s.owedRetry = time.Now().Add(s.commitBo.Next())
	} else {
		s.commitBo.Reset()
	}
	return nil
}

func (s *Sink) migrate(ctx context.Context) error {
	bo := retry.Backoff{Initial: s.cfg.RetryInitial, Max: s.cfg.RetryMax}
	for {
		v, err := Migrate(ctx, s.cfg, s.log)
		if err == nil {
			s.ch.OK("migrate")
			s.log.Info("ClickHouse schema ready", "database", s.cfg.Database, "version", v)
			return nil
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		s.ch.Fail("migrate", fmt.Errorf("cannot migrate the ClickHouse schema: %w", err))
		if err := retry.Sleep(ctx, bo.Next()); err != nil {
			return err
		}
	}
}

// pollContext ends the poll when the oldest buffered record is due.
// (While a flush is in flight and nothing is buffered, it wakes up often to
// reap it and let a waiting rebalance go on; while commits are owed, when
// they are to be retried.)
func (s *Sink) pollContext(ctx context.Context) (context.Context, context.CancelFunc) {
	switch {
	case s.cur.pending > 0:
		return context.WithDeadline(ctx, s.cur.firstAt.Add(s.cfg.FlushInterval))
	case s.inflight != nil:
		return context.WithTimeout(ctx, min(s.cfg.FlushInterval, 50*time.Millisecond))
	case s.owed.Len() > 0:
		return context.WithDeadline(ctx, s.owedRetry)
	}
	return context.WithCancel(ctx)
}

func (s *Sink) due() bool {
	b := s.cur
	return b.pending > 0 && (b.pending >= s.cfg.BatchRows || b.bytes >= s.cfg.BatchBytes ||
		time.Since(b.firstAt) >= s.cfg.FlushInterval || s.rebalanceWanted.Load())
}

// decoded is one record converted to its table's row (one of the *Row
// types), or the error that sends it to the dead-letter topic.
type decoded struct {
	row any
	err error
}

// minDecodeShare is the fewest records worth a decoding goroutine: below it
// the hand-off costs more than the parallelism saves.
const minDecodeShare = 256

// addAll converts the records of one poll and buffers them in order.
// Converting (JSON decoding, money parsing, validation) is most of the
// sink's CPU and depends on nothing but the record, so large polls are
// split across cfg.DecodeWorkers goroutines; buffering, offsets and dead
// letters stay on this goroutine, in offset order.
func (s *Sink) addAll(fs kgo.Fetches) {
	recs := fs.Records()
	if len(recs) == 0 {
		return
	}
	out := s.decodeBuf[:0]
	out = slices.Grow(out, len(recs))[:len(recs)]
	workers := min(s.cfg.DecodeWorkers, len(recs)/minDecodeShare)
	if workers <= 1 {
		for i, rec := range recs {
			out[i] = s.decode(rec)
		}
	} else {
		s.parallelPolls++
		var wg sync.WaitGroup
		per := (len(recs) + workers - 1) / workers
		for lo := 0; lo < len(recs); lo += per {
			hi := min(lo+per, len(recs))
			wg.Go(func() {
				for i := lo; i < hi; i++ {
					out[i] = s.decode(recs[i])
				}
			})
		}
		wg.Wait()
	}
	for i, rec := range recs {
		s.add(rec, out[i])
	}
	clear(out) // the rows now live in the batch; don't pin them here too
	s.decodeBuf = out[:0]
}

// decode converts one record; it only reads s, so it runs concurrently.
func (s *Sink) decode(rec *kgo.Record) decoded {
	in, ok := s.inputs[rec.Topic]
	if !ok {
		panic("BUG: record from unsubscribed topic " + rec.Topic)
	}
	switch in {
	case inPurchases:
		r, err := purchaseRowFrom(rec.Value)
		return decoded{r, err}
	case inDiscrepancies:
		r, err := discrepancyRowFrom(rec.Value)
		return decoded{r, err}
	default:
		src := sourceShopify
		if in == inStorefront {
			src = sourceStorefront
		}
		r, err := rawRowFrom(rawRecord{Source: src, Topic: rec.Topic, Partition: rec.Partition, Offset: rec.Offset,
			Key: string(rec.Key), Value: rec.Value, Headers: schemas.ParseWebhookHeaders(rec.Headers)})
		return decoded{r, err}
	}
}

// add buffers one converted record as a row of its table, or a dead letter,
// and records its offset for the commit.
func (s *Sink) add(rec *kgo.Record, d decoded) {
	b := s.cur
	if b.pending == 0 {
		b.firstAt = time.Now()
	}
	tp := b.offsets[rec.Topic]
	if tp == nil {
		tp = map[int32]kgo.EpochOffset{}
		b.offsets[rec.Topic] = tp
	}
	tp[rec.Partition] = kgo.EpochOffset{Epoch: rec.LeaderEpoch, Offset: rec.Offset + 1}
	b.pending++
	size := len(rec.Key) + len(rec.Value) + 256
	b.bytes += size

	ref := rowRef{topic: rec.Topic, partition: rec.Partition, offset: rec.Offset, key: rec.Key}
	if err := d.err; err != nil {
		kind := "invalid"
		var se *json.SyntaxError
		var te *json.UnmarshalTypeError
		if errors.As(err, &se) || errors.As(err, &te) || len(rec.Value) == 0 {
			kind = "decode"
		}
		s.m.deadLetters.WithLabelValues(rec.Topic, kind).Inc()
		s.log.Warn("sink: record cannot be loaded; sending it to the dead-letter topic",
			"topic", rec.Topic, "partition", rec.Partition, "offset", rec.Offset, "err", err)
		b.dead = append(b.dead, deadletter.Record(s.dlq, rec, err.Error()))
	} else {
		switch r := d.row.(type) {
		case *purchaseRow:
			if r.ReceivedAt != nil {
				ref.receivedAt = *r.ReceivedAt
			}
			s.m.roundedValues.Add(float64(r.Rounded))
			b.purchases.add(r, ref, size)
		case *discrepancyRow:
			b.discrepancies.add(r, ref, size)
		case *rawRow:
			ref.receivedAt = r.ReceivedAt
			b.raw.add(r, ref, size)
		}
	}
	s.m.buffered.Set(float64(b.pending + s.inflightRows))
}

// flush writes every row and dead letter of b, retrying until it works or
// ctx ends, then commits the offsets of everything b consumed, with any
// that earlier commits failed to commit. A table that was written is
// emptied at once, so a retry after a later failure does not write it
// twice.
func (s *Sink) flush(ctx context.Context, cl *kgo.Client, b *batch) error {
	if b.pending == 0 && s.owed.Len() == 0 {
		return nil
	}
	for _, t := range b.tables {
		if t.len() == 0 {
			continue
		}
		if err := s.insert(ctx, t, b); err != nil {
			return err
		}
	}
	if err := s.produceDead(ctx, cl, b); err != nil {
		return err
	}
	s.commit(ctx, cl, b.offsets)
	b.reset()
	return nil
}

func (s *Sink) insert(ctx context.Context, t *table, b *batch) error {
	bo := retry.Backoff{Initial: s.cfg.RetryInitial, Max: s.cfg.RetryMax}
	for {
		start := time.Now()
		err := s.w.insert(ctx, t)
		if err == nil {
			now := time.Now()
			s.m.batchSeconds.WithLabelValues(t.name).Observe(now.Sub(start).Seconds())
			s.m.batches.WithLabelValues(t.name).Inc()
			s.m.rows.WithLabelValues(t.name).Add(float64(t.len()))
			e2e := s.m.e2e.WithLabelValues(t.name)
			for _, r := range t.refs {
				if !r.receivedAt.IsZero() {
					e2e.Observe(now.Sub(r.receivedAt).Seconds())
				}
			}
			if bo.Attempts() > 0 {
				s.m.retrying.Set(0)
			}
			s.ch.OK("insert")
			t.reset()
			return nil
		}
		var bad *badRowError
		if errors.As(err, &bad) {
			ref := t.refs[bad.Row]
			s.m.insertErrors.WithLabelValues(t.name, "append").Inc()
			s.m.deadLetters.WithLabelValues(ref.topic, "append").Inc()
			s.log.Error("BUG: ClickHouse driver refused a validated row; sending its record to the dead-letter topic",
				"table", t.name, "topic", ref.topic, "partition", ref.partition, "offset", ref.offset, "err", bad.Err)
			src := &kgo.Record{Topic: ref.topic, Partition: ref.partition, Offset: ref.offset, Key: ref.key}
			b.dead = append(b.dead, deadletter.Record(s.dlq, src, "append: "+bad.Err.Error()))
			t.cut(bad.Row)
			if t.len() == 0 {
				return nil
			}
			continue
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		s.m.insertErrors.WithLabelValues(t.name, errorKind(err)).Inc()
		s.m.retrying.Set(1)
		s.m.retries.Inc()
		s.ch.Fail("insert", fmt.Errorf("cannot insert into ClickHouse (%d rows of %s; consumption held, retrying the same rows): %w", t.len(), t.name, err))
		if err := retry.Sleep(ctx, bo.Next()); err != nil {
			return err
		}
	}
}

// produceDead writes the dead letters, retrying the ones Kafka refused.
func (s *Sink) produceDead(ctx context.Context, cl *kgo.Client, b *batch) error {
	bo := retry.Backoff{Initial: s.cfg.RetryInitial, Max: s.cfg.RetryMax}
	for len(b.dead) > 0 {
		var failed []*kgo.Record
		var firstErr error
		for _, r := range cl.ProduceSync(ctx, b.dead...) {
			if r.Err != nil {
				// franz-go times a record out from its Timestamp, which
				// the failed attempt set: a retry must start the clock
				// again, or it fails at once, for ever.
				r.Record.Timestamp = time.Time{}
				failed = append(failed, r.Record)
				firstErr = cmpErr(firstErr, r.Err)
			}
		}
		clear(b.dead)
		b.dead = append(b.dead[:0], failed...)
		if len(failed) == 0 {
			s.kafka.OK("produce")
			break
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		s.m.retrying.Set(1)
		s.m.retries.Inc()
		s.kafka.Fail("produce", fmt.Errorf("cannot produce %d dead letters (consumption held, retrying): %w", len(failed), firstErr))
		if err := retry.Sleep(ctx, bo.Next()); err != nil {
			return err
		}
	}
	s.m.retrying.Set(0)
	return nil
}

func cmpErr(a, b error) error {
	if a != nil {
		return a
	}
	return b
}

// commit commits the offsets of written records, with those that earlier
// commits failed to commit. A failure is not forgotten: the offsets stay
// owed, and the next flush, or Run's loop while idle, commits them again. If
// this member loses the partitions meanwhile (lost, below), their new owner
// reads the records again and the rows collapse in FINAL.
func (s *Sink) commit(ctx context.Context, cl *kgo.Client, offsets health.Offsets) {
	offs := s.owed.With(offsets)
	if len(offs) == 0 {
		return
	}
	if err := health.Commit(ctx, cl, offs); err != nil {
		s.owed.Failed(offs)
		if ctx.Err() == nil {
			s.m.commitErrors.Inc()
			s.kafka.Fail("commit", fmt.Errorf("%w (the rows are in ClickHouse; retrying the commit)", err))
		}
		return
	}
	s.owed.Committed(offs)
	if s.owed.Len() == 0 {
		s.kafka.OK("commit")
	}
}

// revoked runs while no batch is buffered or in flight (BlockRebalanceOnPoll
// and Run's loop see to it): it commits what is owed for the revoked
// partitions, once, before their next owner starts from the committed
// offsets. If that fails too, the next owner reads those records again.
func (s *Sink) revoked(ctx context.Context, cl *kgo.Client, parts map[string][]int32) {
	s.forgetLag(parts)
	if owed := s.owed.Take(parts); len(owed) > 0 {
		if err := health.Commit(ctx, cl, owed); err != nil {
			s.m.commitErrors.Inc()
		}
	}
	if s.owed.Len() == 0 {
		s.kafka.OK("commit")
	}
}

// lost drops what is owed for partitions another member may own already.
func (s *Sink) lost(_ context.Context, _ *kgo.Client, parts map[string][]int32) {
	s.forgetLag(parts)
	s.owed.Take(parts)
	if s.owed.Len() == 0 {
		s.kafka.OK("commit")
	}
}

func (s *Sink) updateLag(fs kgo.Fetches) {
	s.lagMu.Lock()
	defer s.lagMu.Unlock()
	changed := false
	fs.EachPartition(func(p kgo.FetchTopicPartition) {
		if len(p.Records) == 0 {
			return
		}
		last := p.Records[len(p.Records)-1]
		if s.lag[p.Topic] == nil {
			s.lag[p.Topic] = map[int32]int64{}
		}
		s.lag[p.Topic][p.Partition] = max(p.HighWatermark-last.Offset-1, 0)
		changed = true
	})
	if changed {
		s.publishLagLocked()
	}
}

func (s *Sink) forgetLag(parts map[string][]int32) {
	s.lagMu.Lock()
	defer s.lagMu.Unlock()
	for t, ps := range parts {
		for _, p := range ps {
			delete(s.lag[t], p)
		}
	}
	s.publishLagLocked()
}

func (s *Sink) publishLagLocked() {
	for t := range s.inputs {
		var sum int64
		for _, l := range s.lag[t] {
			sum += l
		}
		s.m.lag.WithLabelValues(t).Set(float64(sum))
	}
}
