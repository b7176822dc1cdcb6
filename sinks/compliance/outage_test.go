package compliance

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"

	"purchasesync/schemas"
	"purchasesync/sinks/internal/kafkatest"
)

// Outage tests, in process: kfake for Kafka and fakeConn for ClickHouse.
// Through a broker restart, refused commits or ClickHouse failing, the
// processor must not return from Run, must be not ready meanwhile and ready
// after, must complete every request, and must never commit past a request
// it has not completed.

// fakeConn is the part of a ClickHouse connection the processor uses, for
// shop/redact requests of shops without sites: it records the completed
// requests and fails everything while down.
type fakeConn struct {
	driver.Conn
	mu        sync.Mutex
	down      bool
	completed map[string]int // request id → completed rows written
}

var errDown = errors.New("dial tcp 127.0.0.1:9000: connect: connection refused")

func (c *fakeConn) isDown() bool { c.mu.Lock(); defer c.mu.Unlock(); return c.down }

func (c *fakeConn) setDown(d bool) { c.mu.Lock(); c.down = d; c.mu.Unlock() }

func (c *fakeConn) done(id string) int { c.mu.Lock(); defer c.mu.Unlock(); return c.completed[id] }

func (c *fakeConn) Ping(context.Context) error {
	if c.isDown() {
		return errDown
	}
	return nil
}

func (c *fakeConn) ServerVersion() (*driver.ServerVersion, error) {
	if c.isDown() {
		return nil, errDown
	}
	return &driver.ServerVersion{}, nil
}

func (c *fakeConn) Exec(context.Context, string, ...any) error {
	if c.isDown() {
		return errDown
	}
	return nil
}

func (c *fakeConn) Query(context.Context, string, ...any) (driver.Rows, error) {
	if c.isDown() {
		return nil, errDown
	}
	return noRows{}, nil
}

func (c *fakeConn) QueryRow(context.Context, string, ...any) driver.Row {
	if c.isDown() {
		return zeroRow{err: errDown}
	}
	return zeroRow{}
}

func (c *fakeConn) PrepareBatch(context.Context, string, ...driver.PrepareBatchOption) (driver.Batch, error) {
	if c.isDown() {
		return nil, errDown
	}
	return &fakeBatch{c: c}, nil
}

type noRows struct{ driver.Rows }

func (noRows) Next() bool   { return false }
func (noRows) Err() error   { return nil }
func (noRows) Close() error { return nil }

type zeroRow struct {
	driver.Row
	err error
}

func (r zeroRow) Err() error { return r.err }
func (r zeroRow) Scan(dest ...any) error {
	if r.err != nil {
		return r.err
	}
	*dest[0].(*uint64) = 0 // no pending mutation
	return nil
}

type fakeBatch struct {
	driver.Batch
	c    *fakeConn
	rows [][]any
}

func (b *fakeBatch) Append(v ...any) error { b.rows = append(b.rows, v); return nil }
func (b *fakeBatch) Abort() error          { return nil }
func (b *fakeBatch) Send() error {
	b.c.mu.Lock()
	defer b.c.mu.Unlock()
	if b.c.down {
		return errDown
	}
	for _, r := range b.rows {
		if r[4] == "completed" {
			b.c.completed[r[0].(string)]++
		}
	}
	return nil
}

type noSites struct{}

func (noSites) ByShop(string) (schemas.Site, bool) { return schemas.Site{}, false }

type syncLog struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *syncLog) Write(p []byte) (int, error) { l.mu.Lock(); defer l.mu.Unlock(); return l.b.Write(p) }
func (l *syncLog) count(s string) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return strings.Count(l.b.String(), s)
}
func (l *syncLog) String() string { l.mu.Lock(); defer l.mu.Unlock(); return l.b.String() }

type outage struct {
	k      *kafkatest.Cluster
	client *kgo.Client
	topic  string
	conn   *fakeConn
	logs   *syncLog

	mu    sync.Mutex
	ahead []string
}

func newOutage(t *testing.T) *outage {
	o := &outage{topic: "t.compliance.v1", conn: &fakeConn{completed: map[string]int{}}, logs: &syncLog{}}
	o.k = kafkatest.New(t, kfake.SeedTopics(1, o.topic))
	cl, err := kgo.NewClient(kgo.SeedBrokers(o.k.Addrs()...))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cl.Close)
	o.client = cl
	o.k.WatchCommits(func(topic string, p int32, offset int64) {
		for off := range offset {
			if id := fmt.Sprintf("%s/%d/%d", topic, p, off); o.conn.done(id) == 0 {
				o.mu.Lock()
				o.ahead = append(o.ahead, fmt.Sprintf("commit at %d before request %s completed", offset, id))
				o.mu.Unlock()
				return
			}
		}
	})
	return o
}

func (o *outage) produce(t *testing.T, n int) {
	t.Helper()
	var recs []*kgo.Record
	for i := range n {
		shop := fmt.Sprintf("shop-%d.myshopify.com", i)
		recs = append(recs, &kgo.Record{Topic: o.topic, Key: []byte(shop),
			Value:   fmt.Appendf(nil, `{"shop_id":%d,"shop_domain":%q}`, i+1, shop),
			Headers: []kgo.RecordHeader{{Key: schemas.HeaderTopic, Value: []byte(schemas.ComplianceShopRedact)}}})
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := o.client.ProduceSync(ctx, recs...).FirstErr(); err != nil {
		t.Fatal(err)
	}
}

func (o *outage) committed(group string) int64 {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	offs, err := kadm.NewClient(o.client).FetchOffsets(ctx, group)
	if err == nil {
		err = offs.Error()
	}
	if err != nil {
		return -1
	}
	var n int64
	offs.Each(func(r kadm.OffsetResponse) { n += r.At })
	return n
}

func (o *outage) completed() int {
	o.conn.mu.Lock()
	defer o.conn.mu.Unlock()
	return len(o.conn.completed)
}

func (o *outage) start(t *testing.T) (p *Processor, stop func(), returned func()) {
	cfg := DefaultConfig()
	cfg.Topics = schemas.Topics{Prefix: "t."} // o.topic
	cfg.Group = "c-" + t.Name()
	cfg.RetryInitial, cfg.RetryMax, cfg.HealthInterval = 20*time.Millisecond, 200*time.Millisecond, 100*time.Millisecond
	p, err := New(cfg, Deps{Conn: o.conn, Sites: noSites{}, KafkaOpts: []kgo.Opt{kgo.SeedBrokers(o.k.Addrs()...)},
		Registerer: prometheus.NewRegistry(), Logger: slog.New(slog.NewTextHandler(o.logs, nil))})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- p.Run(ctx) }()
	var once sync.Once
	stop = func() {
		once.Do(func() {
			cancel()
			select {
			case err := <-done:
				if err != nil {
					t.Errorf("Run: %v", err)
				}
			case <-time.After(15 * time.Second):
				t.Error("Run did not return within 15 s of cancel")
			}
		})
	}
	t.Cleanup(stop)
	returned = func() {
		select {
		case err := <-done:
			t.Fatalf("Run returned by itself: %v", err)
		default:
		}
	}
	return p, stop, returned
}

func waitOrFail(t *testing.T, returned func(), d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		returned()
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func (o *outage) check(t *testing.T) {
	o.mu.Lock()
	defer o.mu.Unlock()
	for _, e := range o.ahead {
		t.Error(e)
	}
}

// TestComplianceRidesOutBrokerRestart: the only broker goes away and comes
// back; the processor stays up, is not ready meanwhile, logs the episode
// once each way and completes every request.
func TestComplianceRidesOutBrokerRestart(t *testing.T) {
	o := newOutage(t)
	o.produce(t, 3)
	p, stop, returned := o.start(t)
	waitOrFail(t, returned, 10*time.Second, "3 completed, committed, ready", func() bool {
		return o.completed() == 3 && o.committed(p.cfg.Group) == 3 && p.Ready() == nil
	})
	o.k.Stop()
	waitOrFail(t, returned, 5*time.Second, "not ready with the broker gone", func() bool { return p.Ready() != nil })
	if err := p.Ready(); !strings.Contains(err.Error(), "Kafka") {
		t.Errorf("Ready = %v, want it to name Kafka", err)
	}
	time.Sleep(2 * time.Second)
	returned()
	o.k.Start()
	o.produce(t, 6) // shops 0-2 again (new requests) and 3-5
	waitOrFail(t, returned, 15*time.Second, "9 completed, committed, ready again", func() bool {
		return o.completed() == 9 && o.committed(p.cfg.Group) == 9 && p.Ready() == nil
	})
	stop()
	o.check(t)
	if b, e := o.logs.count("Kafka outage began"), o.logs.count("Kafka outage over"); b != 1 || e != 1 {
		t.Errorf("%d start and %d end lines for one outage, want 1 and 1:\n%s", b, e, o.logs)
	}
	if w := o.logs.count("level=WARN"); w != 1 {
		t.Errorf("%d warnings for one outage, want the episode line:\n%s", w, o.logs)
	}
}

// TestComplianceRecommitsAfterFailedCommit: the commits after completed
// requests fail and nothing else arrives; the processor commits again by
// itself and does not redo the requests.
func TestComplianceRecommitsAfterFailedCommit(t *testing.T) {
	o := newOutage(t)
	p, stop, returned := o.start(t)
	waitOrFail(t, returned, 10*time.Second, "ready", func() bool { return p.Ready() == nil })
	o.k.FailCommits(3, kerr.UnknownServerError.Code)
	o.produce(t, 2)
	waitOrFail(t, returned, 10*time.Second, "2 completed and not ready", func() bool { return o.completed() == 2 && p.Ready() != nil })
	waitOrFail(t, returned, 5*time.Second, "2 committed and ready", func() bool { return o.committed(p.cfg.Group) == 2 && p.Ready() == nil })
	stop()
	o.check(t)
	for id, n := range o.conn.completed {
		if n != 1 {
			t.Errorf("request %s completed %d times", id, n)
		}
	}
}

// TestComplianceHoldsThroughClickHouseOutage: while ClickHouse fails, the
// request is retried (one line for the episode each way, not one per
// retry), nothing is committed, and the processor is not ready.
func TestComplianceHoldsThroughClickHouseOutage(t *testing.T) {
	o := newOutage(t)
	p, stop, returned := o.start(t)
	waitOrFail(t, returned, 10*time.Second, "ready", func() bool { return p.Ready() == nil })
	o.conn.setDown(true)
	o.produce(t, 2)
	waitOrFail(t, returned, 5*time.Second, "not ready naming ClickHouse", func() bool {
		err := p.Ready()
		return err != nil && strings.Contains(err.Error(), "ClickHouse")
	})
	time.Sleep(time.Second) // several retries
	if c := o.committed(p.cfg.Group); c > 0 {
		t.Errorf("committed %d offsets while ClickHouse was down", c)
	}
	o.conn.setDown(false)
	waitOrFail(t, returned, 10*time.Second, "2 completed, committed, ready", func() bool {
		return o.completed() == 2 && o.committed(p.cfg.Group) == 2 && p.Ready() == nil
	})
	stop()
	o.check(t)
	if b, e := o.logs.count("ClickHouse outage began"), o.logs.count("ClickHouse outage over"); b != 1 || e != 1 {
		t.Errorf("%d start and %d end lines, want 1 and 1:\n%s", b, e, o.logs)
	}
	if n := o.logs.count("compliance request received"); n != 2 {
		t.Errorf("%d 'received' lines for 2 requests, want one each, not one per retry", n)
	}
}
