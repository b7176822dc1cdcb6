package discrepancy

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"net/http/httptest"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"

	"purchasesync/schemas"
	"purchasesync/sinks/internal/kafkatest"
)

// Outage tests: the broker goes away (or refuses commits) under the
// notifier, which must not return from Run, must be not ready meanwhile and
// ready after, must report every discrepancy, and must never commit past a
// discrepancy whose digest was not delivered.

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

var digestTotal = regexp.MustCompile(`^\*purchasesync\*: (\d+) discrepanc`)

// delivered is how many discrepancies the received digests reported.
func (r *receiver) delivered() int {
	n := 0
	for _, m := range r.messages() {
		if g := digestTotal.FindStringSubmatch(m); g != nil {
			c, _ := strconv.Atoi(g[1])
			n += c
		}
	}
	return n
}

type outage struct {
	k      *kafkatest.Cluster
	client *kgo.Client
	topic  string
	rcv    *receiver
	logs   *syncLog

	mu    sync.Mutex
	ahead []string
}

// newOutage has one partition, so that a committed offset is a count of
// discrepancies that must have been delivered.
func newOutage(t *testing.T) *outage {
	topics := schemas.Topics{Prefix: "t."}
	o := &outage{topic: topics.Name(schemas.TopicDiscrepancies), rcv: &receiver{}, logs: &syncLog{}}
	o.k = kafkatest.New(t, kfake.SeedTopics(1, o.topic))
	cl, err := kgo.NewClient(kgo.SeedBrokers(o.k.Addrs()...))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cl.Close)
	o.client = cl
	o.k.WatchCommits(func(topic string, _ int32, offset int64) {
		if d := o.rcv.delivered(); topic == o.topic && int64(d) < offset {
			o.mu.Lock()
			o.ahead = append(o.ahead, fmt.Sprintf("commit at %d with %d discrepancies delivered", offset, d))
			o.mu.Unlock()
		}
	})
	return o
}

func (o *outage) produce(t *testing.T, from, to int) {
	t.Helper()
	var recs []*kgo.Record
	for i := from; i < to; i++ {
		b, _ := schemas.MarshalDiscrepancy(&schemas.Discrepancy{Site: "acme", OrderNumber: fmt.Sprint(1000 + i), Kind: schemas.KindFieldMismatch,
			Field: "subtotal", StorefrontValue: "1", ShopifyValue: "2", DetectedAt: time.Now()})
		recs = append(recs, &kgo.Record{Topic: o.topic, Key: fmt.Appendf(nil, "acme/%d", 1000+i), Value: b})
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

func (o *outage) start(t *testing.T) (n *Notifier, stop func(), returned func()) {
	srv := httptest.NewServer(o.rcv)
	t.Cleanup(srv.Close)
	cfg := DefaultConfig()
	cfg.URL, cfg.Topics, cfg.Group = srv.URL+"/hooks/x", schemas.Topics{Prefix: "t."}, "n-"+t.Name()
	cfg.Interval, cfg.RetryInitial, cfg.HealthInterval = time.Second, 10*time.Millisecond, 100*time.Millisecond
	n, err := New(cfg, Deps{KafkaOpts: []kgo.Opt{kgo.SeedBrokers(o.k.Addrs()...)}, Registerer: prometheus.NewRegistry(),
		Logger: slog.New(slog.NewTextHandler(o.logs, nil))})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- n.Run(ctx) }()
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
	return n, stop, returned
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

func (o *outage) noneAhead(t *testing.T) {
	o.mu.Lock()
	defer o.mu.Unlock()
	for _, e := range o.ahead {
		t.Error(e)
	}
}

// TestNotifierRidesOutBrokerRestart: the only broker goes away and comes
// back; the notifier stays up, is not ready meanwhile, logs the episode
// once each way, and reports every discrepancy.
func TestNotifierRidesOutBrokerRestart(t *testing.T) {
	o := newOutage(t)
	o.produce(t, 0, 5)
	n, stop, returned := o.start(t)
	waitOrFail(t, returned, 10*time.Second, "5 reported, committed, ready", func() bool {
		return o.rcv.delivered() == 5 && o.committed(n.cfg.Group) == 5 && n.Ready() == nil
	})
	// Three more within the interval: their digest waits, and so must the
	// commit of their offsets, through the outage.
	o.produce(t, 5, 8)
	time.Sleep(300 * time.Millisecond)
	o.k.Stop()
	waitOrFail(t, returned, 5*time.Second, "not ready with the broker gone", func() bool { return n.Ready() != nil })
	time.Sleep(2 * time.Second)
	returned()
	o.k.Start()
	o.produce(t, 8, 12)
	waitOrFail(t, returned, 15*time.Second, "12 reported, committed, ready again", func() bool {
		return o.rcv.delivered() >= 12 && o.committed(n.cfg.Group) == 12 && n.Ready() == nil
	})
	stop()
	o.noneAhead(t)
	if b, e := o.logs.count("Kafka outage began"), o.logs.count("Kafka outage over"); b != 1 || e != 1 {
		t.Errorf("%d start and %d end lines for one outage, want 1 and 1:\n%s", b, e, o.logs)
	}
	if w := o.logs.count("level=WARN"); w != 1 {
		t.Errorf("%d warnings for one outage, want the episode line:\n%s", w, o.logs)
	}
}

// TestNotifierRecommitsRefusedCommit: the broker refuses the commits of a
// delivered digest partition by partition (the request itself succeeds).
// The notifier must see that and commit again, else a restart reports the
// discrepancies a second time.
func TestNotifierRecommitsRefusedCommit(t *testing.T) {
	o := newOutage(t)
	n, stop, returned := o.start(t)
	waitOrFail(t, returned, 10*time.Second, "ready", func() bool { return n.Ready() == nil })
	o.k.FailCommits(3, kerr.UnknownServerError.Code)
	o.produce(t, 0, 4)
	waitOrFail(t, returned, 10*time.Second, "4 reported and not ready", func() bool { return o.rcv.delivered() == 4 && n.Ready() != nil })
	waitOrFail(t, returned, 10*time.Second, "4 committed and ready", func() bool { return o.committed(n.cfg.Group) == 4 && n.Ready() == nil })
	stop()
	o.noneAhead(t)
	if b := o.logs.count("Kafka outage began"); b != 1 {
		t.Errorf("%d episode lines for three refused commits, want 1:\n%s", b, o.logs)
	}
}
