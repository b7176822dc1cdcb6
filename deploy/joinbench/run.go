package joinbench

import (
	"bufio"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"

	"purchasesync/deploy/proc"
	"purchasesync/processors/sites"
	"purchasesync/schemas"
	"purchasesync/schemas/topicadmin"
)

// Run runs the benchmark: scratch topics under a fresh prefix, the
// backlog, the join's drain (and restore), the peer's drain; the scratch
// topics and groups are deleted at the end whatever happened.
func Run(ctx context.Context, cfg Config, log *slog.Logger) (rep Report, err error) {
	if err := cfg.Validate(); err != nil {
		return rep, err
	}
	work := cfg.WorkDir
	if work == "" {
		if work, err = os.MkdirTemp("", "joinbench-"); err != nil {
			return rep, fmt.Errorf("cannot make a work directory: %w", err)
		}
		defer os.RemoveAll(work)
	} else if err := os.MkdirAll(work, 0o755); err != nil {
		return rep, fmt.Errorf("cannot make the work directory: %w", err)
	}
	var rnd [4]byte
	_, _ = rand.Read(rnd[:])
	b := &bench{cfg: cfg, log: log, work: work, id: "joinbench-" + hex.EncodeToString(rnd[:])}
	b.topics = schemas.Topics{Prefix: b.id + "."}
	codec, err := codecOf(cfg.Compression)
	if err != nil {
		return rep, err
	}
	cl, err := kgo.NewClient(kgo.SeedBrokers(cfg.Brokers...), kgo.ProducerLinger(5*time.Millisecond),
		kgo.MaxBufferedRecords(20000), kgo.ProducerBatchCompression(codec))
	if err != nil {
		return rep, fmt.Errorf("cannot create a Kafka client: %w", err)
	}
	defer cl.Close()
	b.cl, b.adm = cl, kadm.NewClient(cl)
	rep.Prefix = b.topics.Prefix
	if !cfg.KeepTopics {
		defer func() {
			// A fresh context: the run's may have ended (Ctrl-C), and the
			// scratch topics must go anyway (a 500k backlog is ~1.5 GB).
			cctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
			defer cancel()
			if cerr := b.cleanup(cctx); cerr != nil {
				err = errors.Join(err, cerr)
			}
		}()
	}
	if rep.Backlog, err = b.prepare(ctx); err != nil {
		return rep, err
	}
	if rep.Join, rep.Restore, err = b.runJoin(ctx); err != nil {
		return rep, err
	}
	if cfg.Peer == PeerKStreams {
		peer, err := b.runKStreams(ctx)
		if err != nil {
			return rep, err
		}
		rep.Peer = &peer
	}
	return rep, nil
}

func codecOf(name string) (kgo.CompressionCodec, error) {
	switch name {
	case "lz4", "":
		return kgo.Lz4Compression(), nil
	case "zstd":
		return kgo.ZstdCompression(), nil
	case "snappy":
		return kgo.SnappyCompression(), nil
	case "none":
		return kgo.NoCompression(), nil
	}
	return kgo.CompressionCodec{}, fmt.Errorf("compression %q: want lz4, zstd, snappy or none", name)
}

type bench struct {
	cfg    Config
	log    *slog.Logger
	work   string
	id     string // joinbench-<random>: the topic prefix without its dot, and the groups' stem
	topics schemas.Topics
	cl     *kgo.Client
	adm    *kadm.Client
	ends   Offsets // of both inputs, after the fill
}

func (b *bench) inputs() []string {
	return []string{b.topics.Name(schemas.TopicShopifyOrders), b.topics.Name(schemas.TopicStorefrontPurchases)}
}

func (b *bench) peerOutput() string { return b.topics.Name("kstreams.purchases.v1") }

// prepare creates the scratch topics as `purchasesync migrate` would,
// registers the sites and fills the backlog.
func (b *bench) prepare(ctx context.Context) (Backlog, error) {
	tc := topicadmin.DefaultConfig()
	tc.Topics, tc.Partitions = b.topics, b.cfg.Partitions
	if _, err := topicadmin.Ensure(ctx, b.adm, tc); err != nil {
		return Backlog{}, fmt.Errorf("cannot create the scratch topics under %s: %w", b.topics.Prefix, err)
	}
	if b.cfg.Peer == PeerKStreams {
		resp, err := b.adm.CreateTopic(ctx, b.cfg.Partitions, -1, nil, b.peerOutput())
		if err == nil {
			err = resp.Err
		}
		if err != nil {
			return Backlog{}, fmt.Errorf("cannot create %s: %w", b.peerOutput(), err)
		}
	}
	w := sites.Writer{Client: b.cl, Topic: b.topics.Name(schemas.TopicSites)}
	for _, s := range BenchSites(b.cfg) {
		if _, err := w.Put(ctx, s); err != nil {
			return Backlog{}, err
		}
	}
	b.log.Info("filling the backlog", "prefix", b.topics.Prefix, "orders", b.cfg.Orders)
	st, err := Fill(ctx, b.cl, b.cfg, b.topics, time.Now())
	if err != nil {
		return Backlog{}, err
	}
	if b.ends, err = EndOffsets(ctx, b.adm, b.inputs()...); err != nil {
		return Backlog{}, err
	}
	if got := b.ends.Total(); got != int64(st.Records()) {
		return Backlog{}, fmt.Errorf("the inputs hold %d records, %d were written", got, st.Records())
	}
	bl := Backlog{Orders: st.Orders, Webhooks: st.Webhooks, Storefront: st.Storefront, Bytes: st.Bytes,
		Partitions: b.cfg.Partitions, Sites: b.cfg.Sites, Grace: b.cfg.Grace, OrdersPerSecond: b.cfg.OrdersPerSecond,
		EventSpan: st.LastAt.Sub(st.FirstAt), Fill: st.Took}
	b.log.Info("backlog filled", "records", bl.Records(), "mean_record_bytes", int(bl.MeanRecordBytes()), "took", st.Took.Round(time.Millisecond).String())
	return bl, nil
}

// joinProc is one `purchasesync join` process of the benchmark.
type joinProc struct {
	*child
	ops string // its ops listener
}

func (b *bench) joinGroup() string { return b.topics.Group("join") }

func (b *bench) startJoin(logName string) (*joinProc, error) {
	ops, err := proc.FreeAddr()
	if err != nil {
		return nil, err
	}
	// The group and the instance are the benchmark's own: -join.group's
	// default does not follow the topic prefix, and the instance names the
	// transactional id, which must not fence another join on the broker.
	c, err := startChild("purchasesync join", filepath.Join(b.work, logName), nil, nil,
		b.cfg.PurchasesyncBin, "join",
		"-kafka.brokers", strings.Join(b.cfg.Brokers, ","),
		"-kafka.topicPrefix", b.topics.Prefix,
		"-join.group", b.joinGroup(),
		"-join.instance", b.id,
		"-ops.addr", ops,
		"-log.format", "json", "-log.level", "info")
	if err != nil {
		return nil, err
	}
	return &joinProc{child: c, ops: ops}, nil
}

// runJoin drains the backlog with `purchasesync join`, then (Restore)
// kills it and times its restart.
func (b *bench) runJoin(ctx context.Context) (Drain, *Restore, error) {
	d := Drain{Name: "purchasesync", Records: b.ends.Total(), HeapKind: "go_memstats_heap_inuse_bytes"}
	b.log.Info("running purchasesync join", "group", b.joinGroup())
	j, err := b.startJoin("join.log")
	if err != nil {
		return d, nil, err
	}
	defer j.stop(30 * time.Second)
	s := StartSampler(j.Pid(), b.cfg.Poll)
	wctx, cancel := context.WithTimeout(ctx, b.cfg.Timeout)
	defer cancel()
	done, err := WaitCommitted(wctx, b.adm, b.joinGroup(), b.ends, b.cfg.Poll, j.Exited())
	if err != nil {
		s.Stop()
		return d, nil, errors.Join(err, j.exitError())
	}
	d.Took = done.Sub(j.started)
	m, err := Scrape(ctx, "http://"+j.ops+"/metrics")
	d.PeakRSS, d.MaxSampledRSS, d.EndRSS = s.Stop()
	if err != nil {
		return d, nil, err
	}
	d.Heap, d.StateKeys = m["go_memstats_heap_inuse_bytes"], m["purchasesync_join_state_keys"]
	if m.Has("go_gc_heap_live_bytes") {
		d.LiveHeap = m["go_gc_heap_live_bytes"]
	}
	b.log.Info("purchasesync join drained the backlog", "took", d.Took.Round(time.Millisecond).String(),
		"records_per_s", int(d.RecordsPerSec()), "peak_rss_mb", d.PeakRSS>>20, "state_keys", int64(d.StateKeys))
	if !b.cfg.Restore {
		return d, nil, nil
	}
	r, err := b.restore(ctx, j)
	return d, r, err
}

// restore kills j with SIGKILL, starts the join again on the same group
// and instance, and times it until /readyz answers 200 and until every
// partition logged "join: partition restored".
func (b *bench) restore(ctx context.Context, j *joinProc) (*Restore, error) {
	j.Kill()
	b.log.Info("killed the join with SIGKILL; starting it again")
	j2, err := b.startJoin("join-restart.log")
	if err != nil {
		return nil, err
	}
	defer j2.stop(30 * time.Second)
	s := StartSampler(j2.Pid(), b.cfg.Poll/5)
	rctx, cancel := context.WithTimeout(ctx, b.cfg.Timeout)
	defer cancel()
	r := &Restore{}
	ready, err := proc.WaitHTTP200(rctx, "http://"+j2.ops+"/readyz", 50*time.Millisecond, j2.Exited())
	if err != nil {
		s.Stop()
		return nil, errors.Join(err, j2.exitError())
	}
	r.Ready = ready.Sub(j2.started)
	// /readyz follows the first assignment's restore; wait for every
	// partition's line besides, in case one came in a later assignment.
	for {
		lines, err := restoredLines(j2.log)
		if err == nil && len(lines) >= int(b.cfg.Partitions) {
			r.Restored = time.Since(j2.started)
			r.add(lines)
			break
		}
		select {
		case <-rctx.Done():
			s.Stop()
			return nil, fmt.Errorf("the restarted join logged %d of %d partitions restored: %w", len(lines), b.cfg.Partitions, rctx.Err())
		case <-j2.Exited():
			s.Stop()
			return nil, j2.exitError()
		case <-time.After(50 * time.Millisecond):
		}
	}
	m, err := Scrape(ctx, "http://"+j2.ops+"/metrics")
	r.PeakRSS, _, _ = s.Stop()
	if err != nil {
		return nil, err
	}
	r.RestoreSeconds = m["purchasesync_join_restore_seconds_sum"]
	r.RestoreCount = int(m["purchasesync_join_restore_seconds_count"])
	r.RestoredKeysTotal = m["purchasesync_join_restored_keys_total"]
	r.StateKeys = m["purchasesync_join_state_keys"]
	b.log.Info("the join restored its state", "ready", r.Ready.Round(time.Millisecond).String(),
		"restore_seconds", r.RestoreSeconds, "keys", r.Keys)
	return r, nil
}

// RestoredLine is one "join: partition restored" log line of the join.
type RestoredLine struct {
	Partition int32  `json:"partition"`
	Records   int64  `json:"records"`
	Keys      int64  `json:"keys"`
	Held      int64  `json:"held"`
	Took      string `json:"took"`
}

// ParseRestoredLines picks the "join: partition restored" lines out of the
// join's JSON log (slog's JSON handler, -log.format json).
func ParseRestoredLines(r io.Reader) ([]RestoredLine, error) {
	var out []RestoredLine
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64*1024), 1<<20)
	for sc.Scan() {
		line := sc.Bytes()
		if !strings.Contains(string(line), `"join: partition restored"`) {
			continue
		}
		var l struct {
			Msg string `json:"msg"`
			RestoredLine
		}
		if err := json.Unmarshal(line, &l); err != nil || l.Msg != "join: partition restored" {
			continue
		}
		out = append(out, l.RestoredLine)
	}
	return out, sc.Err()
}

func restoredLines(path string) ([]RestoredLine, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return ParseRestoredLines(f)
}

// runKStreams drains the same backlog with the Kafka Streams peer.
func (b *bench) runKStreams(ctx context.Context) (Drain, error) {
	d := Drain{Name: "kstreams", Records: b.ends.Total(), HeapKind: "JVM heap used after System.gc()"}
	app := b.id + "-kstreams"
	jar := filepath.Join(b.cfg.PeerDir, "target", "joinbench-kstreams.jar")
	if _, err := os.Stat(jar); err != nil {
		return d, fmt.Errorf("the peer is not built (%w): run mvn -q -B package in %s", err, b.cfg.PeerDir)
	}
	stdin, toPeer := io.Pipe()
	fromPeer, stdout := io.Pipe()
	b.log.Info("running the Kafka Streams peer", "application_id", app)
	c, err := startChild("kstreams peer", filepath.Join(b.work, "kstreams.log"), stdin, stdout,
		b.cfg.Java, "-Xmx"+b.cfg.PeerHeap,
		"-Dorg.slf4j.simpleLogger.defaultLogLevel=warn",
		"-cp", jar+string(os.PathListSeparator)+filepath.Join(b.cfg.PeerDir, "target", "lib", "*"),
		"purchasesync.joinbench.Main",
		"bootstrap="+strings.Join(b.cfg.Brokers, ","),
		"application.id="+app,
		"webhooks="+b.inputs()[0], "storefront="+b.inputs()[1], "output="+b.peerOutput(),
		"state.dir="+filepath.Join(b.work, "kstreams-state"),
		fmt.Sprintf("window.ms=%d", b.cfg.PeerWindow.Milliseconds()),
		fmt.Sprintf("grace.ms=%d", b.cfg.Grace.Milliseconds()),
		fmt.Sprintf("threads=%d", b.cfg.PeerThreads))
	if err != nil {
		return d, err
	}
	defer func() {
		toPeer.Close()
		c.stop(30 * time.Second)
		stdout.Close()
	}()
	stats := make(chan string, 4)
	go func() {
		sc := bufio.NewScanner(fromPeer)
		for sc.Scan() {
			if s, ok := strings.CutPrefix(sc.Text(), "STATS "); ok {
				stats <- s
			}
		}
	}()
	s := StartSampler(c.Pid(), b.cfg.Poll)
	wctx, cancel := context.WithTimeout(ctx, b.cfg.Timeout)
	defer cancel()
	done, err := WaitCommitted(wctx, b.adm, app, b.ends, b.cfg.Poll, c.Exited())
	if err != nil {
		s.Stop()
		return d, errors.Join(err, c.exitError())
	}
	d.Took = done.Sub(c.started)
	// The peak before asking for stats: the forced GC must not count.
	d.PeakRSS, d.MaxSampledRSS, d.EndRSS = s.Stop()
	if _, err := io.WriteString(toPeer, "stats\n"); err != nil {
		return d, fmt.Errorf("cannot ask the peer for its stats: %w", err)
	}
	select {
	case line := <-stats:
		var st struct {
			HeapUsed  float64 `json:"heap_used_bytes"`
			StateKeys float64 `json:"state_keys"`
		}
		if err := json.Unmarshal([]byte(line), &st); err != nil {
			return d, fmt.Errorf("peer stats %q: %w", line, err)
		}
		d.Heap, d.StateKeys = st.HeapUsed, st.StateKeys
	case <-time.After(time.Minute):
		return d, errors.New("the peer did not answer with its stats within a minute")
	}
	b.log.Info("the Kafka Streams peer drained the backlog", "took", d.Took.Round(time.Millisecond).String(),
		"records_per_s", int(d.RecordsPerSec()), "peak_rss_mb", d.PeakRSS>>20)
	return d, nil
}

// cleanup deletes every topic under the run's prefix (the scratch topics,
// the peer's output and its internal topics, which are named after its
// application id) and the run's consumer groups. It lists topics on a
// fresh client: kadm answers a listing of all topics from the client's
// metadata cache, which on the fill's client knows only the topics it
// produced to. The scratch topics are named besides, in case the listing
// misses one.
func (b *bench) cleanup(ctx context.Context) error {
	cl, err := kgo.NewClient(kgo.SeedBrokers(b.cfg.Brokers...))
	if err != nil {
		return fmt.Errorf("cannot create a client to delete the scratch topics (prefix %s): %w", b.id, err)
	}
	defer cl.Close()
	adm := kadm.NewClient(cl)
	mine := map[string]bool{}
	for _, spec := range schemas.TopicSpecs() {
		mine[b.topics.Name(spec.Name)] = true
	}
	if b.cfg.Peer == PeerKStreams {
		mine[b.peerOutput()] = true
	}
	var errs []error
	if topics, err := adm.ListTopics(ctx); err != nil {
		errs = append(errs, fmt.Errorf("cannot list topics (prefix %s): %w", b.id, err))
	} else {
		for _, t := range topics.Names() {
			if strings.HasPrefix(t, b.id) {
				mine[t] = true
			}
		}
	}
	names := make([]string, 0, len(mine))
	for t := range mine {
		names = append(names, t)
	}
	resp, err := adm.DeleteTopics(ctx, names...)
	deleted := 0
	if err == nil {
		for _, r := range resp {
			switch {
			case r.Err == nil:
				deleted++
			case !errors.Is(r.Err, kerr.UnknownTopicOrPartition):
				errs = append(errs, fmt.Errorf("cannot delete %s: %w", r.Topic, r.Err))
			}
		}
	} else {
		errs = append(errs, fmt.Errorf("cannot delete the scratch topics (prefix %s): %w", b.id, err))
	}
	groups, err := adm.ListGroups(ctx)
	if err != nil {
		errs = append(errs, fmt.Errorf("cannot list groups: %w", err))
	} else {
		var gs []string
		for _, g := range groups.Groups() {
			if strings.HasPrefix(g, b.id) {
				gs = append(gs, g)
			}
		}
		if err := deleteGroups(ctx, adm, gs); err != nil {
			errs = append(errs, err)
		}
	}
	b.log.Info("deleted the scratch topics and groups", "prefix", b.id, "topics", deleted)
	return errors.Join(errs...)
}

// deleteGroups deletes groups, retrying those still holding members for a
// minute: a member that did not leave (a killed process) stays until its
// session times out.
func deleteGroups(ctx context.Context, adm *kadm.Client, groups []string) error {
	deadline := time.Now().Add(time.Minute)
	for len(groups) > 0 {
		resp, err := adm.DeleteGroups(ctx, groups...)
		if err != nil {
			return fmt.Errorf("cannot delete groups %v: %w", groups, err)
		}
		var left []string
		var errs []error
		for g, r := range resp {
			switch {
			case r.Err == nil || errors.Is(r.Err, kerr.GroupIDNotFound):
			case errors.Is(r.Err, kerr.NonEmptyGroup) && time.Now().Before(deadline):
				left = append(left, g)
			default:
				errs = append(errs, fmt.Errorf("cannot delete group %s: %w", g, r.Err))
			}
		}
		if len(errs) > 0 || len(left) == 0 {
			return errors.Join(errs...)
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("cannot delete groups %v: %w", left, ctx.Err())
		case <-time.After(2 * time.Second):
		}
		groups = left
	}
	return nil
}
