package clickhouse

import (
	"bufio"
	"context"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"purchasesync/deploy/testenv"
	"purchasesync/schemas"
)

// announcingWriter tells the parent test (on stdout) about every insert that
// succeeded, then optionally pauses before the sink commits, so that the
// parent can kill the process between an insert and its commit.
type announcingWriter struct {
	inner writer
	pause time.Duration
	mu    sync.Mutex
}

func (w *announcingWriter) insert(ctx context.Context, t *table) error {
	if err := w.inner.insert(ctx, t); err != nil {
		return err
	}
	w.mu.Lock()
	fmt.Printf("INSERTED %s %d\n", t.name, t.len())
	w.mu.Unlock()
	time.Sleep(w.pause)
	return nil
}

// TestHelperSinkProcess is the sink as a separate process for the tests
// below (kill -9 needs a process of its own). It is not a test by itself.
func TestHelperSinkProcess(t *testing.T) {
	if os.Getenv("PURCHASESYNC_SINK_HELPER") != "1" {
		t.Skip("helper process for the durability tests")
	}
	env := func(k string) string { return os.Getenv("HELPER_" + k) }
	cfg := DefaultConfig()
	cfg.Addr, cfg.Database, cfg.Group = []string{env("CH_ADDR")}, env("DB"), env("GROUP")
	cfg.Topics = schemas.Topics{Prefix: env("PREFIX")}
	cfg.BatchRows, _ = strconv.Atoi(env("BATCH_ROWS"))
	cfg.BatchBytes = 4 << 20
	cfg.FlushInterval = 200 * time.Millisecond
	cfg.RetryInitial, cfg.RetryMax = 50*time.Millisecond, 500*time.Millisecond
	cfg.Migrate = false
	conn, err := Open(cfg, cfg.Database)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	pause, _ := time.ParseDuration(env("PAUSE"))
	deps := Deps{
		// A killed member holds its partitions until its session times out;
		// the broker's minimum (6 s) keeps the restart test short.
		KafkaOpts: []kgo.Opt{kgo.SeedBrokers(strings.Split(env("BROKERS"), ",")...),
			kgo.SessionTimeout(6 * time.Second), kgo.HeartbeatInterval(time.Second)},
		Logger: slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelInfo})),
		writer: &announcingWriter{inner: &chWriter{conn: conn}, pause: pause},
	}
	s, err := New(cfg, deps)
	if err != nil {
		t.Fatal(err)
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	defer stop()
	if err := s.Run(ctx); err != nil {
		t.Fatal(err)
	}
}

type sinkProc struct {
	*testenv.Process
	inserted chan string // "table rows" per successful insert
	read     chan struct{}
}

func startSinkProc(t *testing.T, env map[string]string) *sinkProc {
	t.Helper()
	cmd := testenv.Self("TestHelperSinkProcess", "PURCHASESYNC_SINK_HELPER=1")
	cmd.Args = append(cmd.Args, "-test.v")
	for k, v := range env {
		cmd.Env = append(cmd.Env, "HELPER_"+k+"="+v)
	}
	// A pipe of our own rather than StdoutPipe: the process is reaped in
	// the background, and Wait would close StdoutPipe under the reader.
	stdout, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stdout = w
	p := &sinkProc{inserted: make(chan string, 100000), read: make(chan struct{})}
	p.Process = testenv.StartCmd(t, cmd)
	w.Close()
	p.Grace, p.LogLines = 0, 60 // a test that wants a clean stop asks for it
	go func() {
		defer close(p.read)
		defer stdout.Close()
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			if rest, ok := strings.CutPrefix(sc.Text(), "INSERTED "); ok {
				select {
				case p.inserted <- rest:
				default:
				}
			}
		}
	}()
	return p
}

func (p *sinkProc) rssBytes() int64 {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", p.Pid()))
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			kb, _ := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
			return kb << 10
		}
	}
	return 0
}

// stop sends SIGTERM and wants a clean exit (Run flushed and returned nil).
func (p *sinkProc) stop(t *testing.T) {
	t.Helper()
	_ = p.Cmd.Process.Signal(syscall.SIGTERM)
	if !p.WaitFor(60 * time.Second) {
		t.Fatal("sink process did not stop within 60 s of SIGTERM")
	}
	if err := p.Wait(); err != nil {
		t.Fatalf("sink process exited with %v after SIGTERM", err)
	}
	<-p.read
}

// producer writes purchases (and a storefront raw event per purchase) to
// the test's topics.
type producer struct {
	t      *testing.T
	cl     *kgo.Client
	topics schemas.Topics
}

func newProducer(t *testing.T, brokers []string, topics schemas.Topics) *producer {
	cl, err := kgo.NewClient(kgo.SeedBrokers(brokers...), kgo.ProducerLinger(5*time.Millisecond), kgo.MaxBufferedRecords(200000))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cl.Close)
	return &producer{t: t, cl: cl, topics: topics}
}

// send writes purchases from..to-1 at version v, plus raw events if raw.
func (p *producer) send(from, to int, v uint64, raw bool) {
	p.t.Helper()
	base := samplePurchase()
	var wg sync.WaitGroup
	var firstErr error
	var mu sync.Mutex
	cb := func(_ *kgo.Record, err error) {
		if err != nil {
			mu.Lock()
			firstErr = cmpErr(firstErr, err)
			mu.Unlock()
		}
		wg.Done()
	}
	ctx := context.Background()
	for i := from; i < to; i++ {
		pu := *base
		pu.Site, pu.OrderNumber, pu.Version = fmt.Sprintf("site-%d", i%50), strconv.Itoa(i), v
		b, _ := schemas.MarshalPurchase(&pu)
		wg.Add(1)
		p.cl.Produce(ctx, &kgo.Record{Topic: p.topics.Name(schemas.TopicPurchases), Key: []byte(pu.Key()), Value: b}, cb)
		if raw {
			wg.Add(1)
			p.cl.Produce(ctx, &kgo.Record{Topic: p.topics.Name(schemas.TopicStorefrontPurchases), Key: []byte(pu.Key()),
				Value:   []byte(`{"purchase":{"order_number":"` + pu.OrderNumber + `"}}`),
				Headers: []kgo.RecordHeader{{Key: schemas.HeaderReceivedAt, Value: []byte(time.Now().UTC().Format(time.RFC3339Nano))}}}, cb)
		}
	}
	wg.Wait()
	if firstErr != nil {
		p.t.Fatal(firstErr)
	}
}

type counts struct{ final, unique, physical, v2, raw uint64 }

func countRows(t *testing.T, conn driver.Conn) (counts, error) {
	var c counts
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	err := conn.QueryRow(ctx, "SELECT count(), uniqExact(site, order_number), countIf(version = 2) FROM purchases FINAL").Scan(&c.final, &c.unique, &c.v2)
	if err != nil {
		return c, err
	}
	if err := conn.QueryRow(ctx, "SELECT count() FROM purchases").Scan(&c.physical); err != nil {
		return c, err
	}
	err = conn.QueryRow(ctx, "SELECT count() FROM raw_events FINAL").Scan(&c.raw)
	return c, err
}

func waitRows(t *testing.T, conn driver.Conn, timeout time.Duration, want func(counts) bool) counts {
	t.Helper()
	deadline := time.Now().Add(timeout)
	var c counts
	var err error
	for time.Now().Before(deadline) {
		if c, err = countRows(t, conn); err == nil && want(c) {
			return c
		}
		time.Sleep(200 * time.Millisecond)
	}
	t.Fatalf("timed out after %s: last counts %+v (err %v)", timeout, c, err)
	return c
}

func committedTotal(t *testing.T, brokers []string, group string) int64 {
	cl, err := kgo.NewClient(kgo.SeedBrokers(brokers...))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	offs, err := kadm.NewClient(cl).FetchOffsets(context.Background(), group)
	if err != nil {
		t.Fatal(err)
	}
	var n int64
	offs.Each(func(o kadm.OffsetResponse) { n += o.At })
	return n
}

// ClickHouse is killed while rows stream in, stays down while a backlog
// builds up, then comes back: every row arrives, none twice in FINAL, and the
// sink's memory stays flat while it waits.
func TestFunctionalClickHouseOutage(t *testing.T) {
	brokers := testenv.Kafka(t)
	srv := startPrivateClickHouse(t)
	cfg := DefaultConfig()
	cfg.Addr, cfg.Database = []string{srv.addr()}, "outage"
	ctx := ctxT(t)
	if _, err := Migrate(ctx, cfg, quiet); err != nil {
		t.Fatal(err)
	}
	conn := openDB(t, cfg)
	topics := testenv.Topics(t, brokers, 4)
	group := testenv.Name(t)
	prod := newProducer(t, brokers, topics)
	sink := startSinkProc(t, map[string]string{"CH_ADDR": srv.addr(), "DB": cfg.Database, "GROUP": group,
		"PREFIX": topics.Prefix, "BATCH_ROWS": "5000", "BROKERS": strings.Join(brokers, ",")})

	const a, b, c = 10_000, 20_000, 120_000
	prod.send(0, a, 1, true)
	waitRows(t, conn, 60*time.Second, func(c counts) bool { return c.final == a && c.raw == a })
	baseline := sink.rssBytes()

	// Kill ClickHouse while the next records stream in.
	go prod.send(a, b, 1, true)
	select {
	case <-sink.inserted: // drain what was announced so far
	default:
	}
	time.Sleep(150 * time.Millisecond)
	srv.stop(syscall.SIGKILL)
	outageStart := time.Now()
	// A backlog of 100,000 purchases (~70 MB of JSON) piles up in Kafka.
	prod.send(b, c, 1, false)
	prod.send(0, 1000, 2, false) // later versions of earlier purchases
	var peak int64
	for time.Since(outageStart) < 3*time.Second {
		peak = max(peak, sink.rssBytes())
		time.Sleep(100 * time.Millisecond)
	}
	committedDuring := committedTotal(t, brokers, group)
	srv.start()
	t.Logf("outage %.1fs: sink RSS %d MiB before, peak %d MiB while ClickHouse was down; committed offsets %d of %d records",
		time.Since(outageStart).Seconds(), baseline>>20, peak>>20, committedDuring, c+1000+b)
	if committedDuring >= c+1000+b {
		t.Errorf("all offsets committed although ClickHouse was down")
	}
	if peak-baseline > 48<<20 {
		t.Errorf("sink memory grew by %d MiB while ClickHouse was down: consumption was not held", (peak-baseline)>>20)
	}

	got := waitRows(t, conn, 90*time.Second, func(x counts) bool { return x.final == c && x.v2 == 1000 && x.raw == b })
	if got.unique != c {
		t.Errorf("FINAL has %d rows but %d distinct purchases", got.final, got.unique)
	}
	sink.stop(t)
	if n := committedTotal(t, brokers, group); n != c+1000+b {
		t.Errorf("committed %d offsets at the end, want %d", n, c+1000+b)
	}
	t.Logf("after restart: %+v", got)
}

// The sink is killed with SIGKILL after an insert and before its commit;
// a new sink reads those records again and FINAL still has each row once.
func TestFunctionalSinkKilledMidBatch(t *testing.T) {
	brokers := testenv.Kafka(t)
	cfg := testConfig(t)
	ctx := ctxT(t)
	if _, err := Migrate(ctx, cfg, quiet); err != nil {
		t.Fatal(err)
	}
	conn := openDB(t, cfg)
	topics := testenv.Topics(t, brokers, 4)
	group := testenv.Name(t)
	const n = 20_000
	newProducer(t, brokers, topics).send(0, n, 1, true)
	env := map[string]string{"CH_ADDR": cfg.Addr[0], "DB": cfg.Database, "GROUP": group, "PREFIX": topics.Prefix,
		"BATCH_ROWS": "3000", "BROKERS": strings.Join(brokers, ","), "PAUSE": "3s"}
	first := startSinkProc(t, env)
	select {
	case what := <-first.inserted:
		first.Kill()
		t.Logf("killed the sink right after inserting %s, before its commit", what)
	case <-time.After(60 * time.Second):
		t.Fatal("the sink inserted nothing within 60 s")
	}
	before, err := countRows(t, conn)
	if err != nil {
		t.Fatal(err)
	}
	if before.physical+before.raw == 0 {
		t.Fatal("nothing was inserted before the kill")
	}
	if c := committedTotal(t, brokers, group); c != 0 {
		t.Fatalf("%d offsets committed before the kill; the test wants a kill between insert and commit", c)
	}

	env["PAUSE"] = "0s"
	second := startSinkProc(t, env)
	got := waitRows(t, conn, 90*time.Second, func(x counts) bool { return x.final == n && x.raw == n })
	if got.unique != n {
		t.Errorf("FINAL has %d rows but %d distinct purchases", got.final, got.unique)
	}
	second.stop(t)
	t.Logf("rows before restart %+v, after %+v (physical counts the re-read batch until a merge collapses it)", before, got)
}
