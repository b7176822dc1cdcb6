package registrar

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"net/http/httptest"
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
	"purchasesync/sinks/registrar/registrartest"
)

// Outage tests: the broker goes away (or refuses commits or dead letters)
// under the registrar, which must not return from Run, must be not ready
// meanwhile and ready after, must forward every purchase once, and must
// never commit past a purchase it has not finished.

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
	topics schemas.Topics
	tk     *registrartest.Talkable
	srv    *httptest.Server
	logs   *syncLog

	mu    sync.Mutex
	keyAt map[string]string // "partition/offset" → purchase key
	dead  map[string]bool   // "partition/offset" of records expected in the dead-letter topic once allowed
	ahead []string
}

func newOutage(t *testing.T) *outage {
	topics := schemas.Topics{Prefix: "t."}
	o := &outage{topics: topics, tk: registrartest.New("k3y"), logs: &syncLog{}, keyAt: map[string]string{}, dead: map[string]bool{},
		k: kafkatest.New(t, kfake.SeedTopics(2, topics.Name(schemas.TopicPurchases), topics.Name(schemas.TopicDeadLetter)))}
	o.srv = httptest.NewServer(o.tk)
	t.Cleanup(o.srv.Close)
	cl, err := kgo.NewClient(kgo.SeedBrokers(o.k.Addrs()...))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cl.Close)
	o.client = cl
	o.k.WatchCommits(o.checkCommit)
	return o
}

// checkCommit: every purchase below a committed offset was forwarded (or
// is an allowed dead letter).
func (o *outage) checkCommit(topic string, p int32, offset int64) {
	if topic != o.topics.Name(schemas.TopicPurchases) {
		return
	}
	o.mu.Lock()
	defer o.mu.Unlock()
	o.tk.Mu.Lock()
	defer o.tk.Mu.Unlock()
	for off := int64(0); off < offset; off++ {
		pos := fmt.Sprintf("%d/%d", p, off)
		if key, ok := o.keyAt[pos]; ok && o.tk.Origins[key] == nil && !o.dead[pos] {
			o.ahead = append(o.ahead, fmt.Sprintf("commit of partition %d at %d before %s (offset %d) was forwarded", p, offset, key, off))
			return
		}
	}
}

func (o *outage) produce(t *testing.T, recs ...*kgo.Record) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for _, r := range o.client.ProduceSync(ctx, recs...) {
		if r.Err != nil {
			t.Fatal(r.Err)
		}
		o.mu.Lock()
		o.keyAt[fmt.Sprintf("%d/%d", r.Record.Partition, r.Record.Offset)] = string(r.Record.Key)
		o.mu.Unlock()
	}
}

func (o *outage) purchases(from, to int) []*kgo.Record {
	var recs []*kgo.Record
	for i := from; i < to; i++ {
		p := purchase("acme", fmt.Sprint(1000+i), 1)
		b, _ := schemas.MarshalPurchase(p)
		recs = append(recs, &kgo.Record{Topic: o.topics.Name(schemas.TopicPurchases), Key: []byte(p.Key()), Value: b})
	}
	return recs
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

func (o *outage) start(t *testing.T, opts ...kgo.Opt) (r *Registrar, stop func(), returned func()) {
	cfg := DefaultConfig()
	cfg.URL, cfg.APIKey, cfg.Topics, cfg.Group = o.srv.URL, "k3y", o.topics, "reg-"+t.Name()
	cfg.RetryInitial, cfg.RetryMax, cfg.HealthInterval = 20*time.Millisecond, 200*time.Millisecond, 100*time.Millisecond
	r, err := New(cfg, Deps{KafkaOpts: append([]kgo.Opt{kgo.SeedBrokers(o.k.Addrs()...)}, opts...), Registerer: prometheus.NewRegistry(),
		Logger: slog.New(slog.NewTextHandler(o.logs, nil))})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- r.Run(ctx) }()
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
	return r, stop, returned
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

// check: no commit ahead of a forward, every purchase forwarded once.
func (o *outage) check(t *testing.T, n int) {
	t.Helper()
	o.mu.Lock()
	for _, e := range o.ahead {
		t.Error(e)
	}
	o.mu.Unlock()
	o.tk.Mu.Lock()
	defer o.tk.Mu.Unlock()
	for i := range n {
		key := fmt.Sprintf("acme/%d", 1000+i)
		if o.tk.Origins[key] == nil || o.tk.Attempts[key] != 1 {
			t.Errorf("%s: forwarded %v, %d requests; want once", key, o.tk.Origins[key] != nil, o.tk.Attempts[key])
		}
	}
}

func (o *outage) forwarded() int {
	o.tk.Mu.Lock()
	defer o.tk.Mu.Unlock()
	return len(o.tk.Origins)
}

// TestRegistrarRidesOutBrokerRestart: the only broker goes away and comes
// back; the registrar stays up, is not ready meanwhile, logs the episode
// once each way and forwards every purchase once.
func TestRegistrarRidesOutBrokerRestart(t *testing.T) {
	o := newOutage(t)
	o.produce(t, o.purchases(0, 20)...)
	r, stop, returned := o.start(t)
	waitOrFail(t, returned, 10*time.Second, "20 forwarded, committed, ready", func() bool {
		return o.forwarded() == 20 && o.committed(r.cfg.Group) == 20 && r.Ready() == nil
	})
	o.k.Stop()
	waitOrFail(t, returned, 5*time.Second, "not ready with the broker gone", func() bool { return r.Ready() != nil })
	if err := r.Ready(); !strings.Contains(err.Error(), "Kafka") {
		t.Errorf("Ready = %v, want it to name Kafka", err)
	}
	time.Sleep(2 * time.Second)
	returned()
	o.k.Start()
	o.produce(t, o.purchases(20, 40)...)
	waitOrFail(t, returned, 15*time.Second, "40 forwarded, committed, ready again", func() bool {
		return o.forwarded() == 40 && o.committed(r.cfg.Group) == 40 && r.Ready() == nil
	})
	stop()
	o.check(t, 40)
	if b, e := o.logs.count("Kafka outage began"), o.logs.count("Kafka outage over"); b != 1 || e != 1 {
		t.Errorf("%d start and %d end lines for one outage, want 1 and 1:\n%s", b, e, o.logs)
	}
	if n := o.logs.count("level=WARN"); n != 1 {
		t.Errorf("%d warnings for one outage, want the one episode line:\n%s", n, o.logs)
	}
}

// TestRegistrarRecommitsAfterFailedCommit: the commits after forwarding
// fail and nothing else arrives; the registrar commits again by itself
// (else a restart would post every purchase again) and is not ready until
// it has.
func TestRegistrarRecommitsAfterFailedCommit(t *testing.T) {
	o := newOutage(t)
	r, stop, returned := o.start(t)
	waitOrFail(t, returned, 10*time.Second, "ready", func() bool { return r.Ready() == nil })
	o.k.FailCommits(3, kerr.UnknownServerError.Code)
	o.produce(t, o.purchases(0, 10)...)
	waitOrFail(t, returned, 10*time.Second, "10 forwarded and not ready", func() bool { return o.forwarded() == 10 && r.Ready() != nil })
	waitOrFail(t, returned, 5*time.Second, "10 committed and ready", func() bool { return o.committed(r.cfg.Group) == 10 && r.Ready() == nil })
	stop()
	o.check(t, 10)
}

// TestRegistrarHoldsDeadLettersUntilKafkaTakesThem: while Kafka refuses the
// dead-letter topic, the poll's offsets are not committed and the
// registrar is not ready; then the dead letter goes out and all commits.
func TestRegistrarHoldsDeadLettersUntilKafkaTakesThem(t *testing.T) {
	o := newOutage(t)
	r, stop, returned := o.start(t, kgo.RecordDeliveryTimeout(time.Second))
	waitOrFail(t, returned, 10*time.Second, "ready", func() bool { return r.Ready() == nil })
	allow := o.k.RefuseProduce(o.topics.Name(schemas.TopicDeadLetter), kerr.NotEnoughReplicas.Code)
	bad := &kgo.Record{Topic: o.topics.Name(schemas.TopicPurchases), Key: []byte("acme/bad"), Value: []byte("{"), Partition: 0}
	o.produce(t, append(o.purchases(0, 5), bad)...)
	var badPos string
	o.mu.Lock()
	for pos, key := range o.keyAt {
		if key == "acme/bad" {
			badPos = pos
		}
	}
	o.mu.Unlock()
	waitOrFail(t, returned, 10*time.Second, "not ready while the dead letter is refused", func() bool { return r.Ready() != nil })
	time.Sleep(1500 * time.Millisecond) // a delivery timeout or more: the retry must not time out at once
	o.mu.Lock()
	o.dead[badPos] = true // from now on the dead letter may be written
	o.mu.Unlock()
	allow()
	waitOrFail(t, returned, 10*time.Second, "6 committed and ready", func() bool { return o.committed(r.cfg.Group) == 6 && r.Ready() == nil })
	stop()
	o.check(t, 5)
}
