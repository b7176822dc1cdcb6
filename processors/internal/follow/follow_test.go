package follow

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"

	"purchasesync/deploy/testenv"
	"purchasesync/deploy/testenv/kafkatest"
	"purchasesync/schemas/health"
)

// view is a stage's view in miniature: each key's last value, a tombstone
// removing it.
type view struct {
	mu      sync.Mutex
	vals    map[string]string
	atLoad  int // len(vals) when OnLoaded ran; -1 before
	onLoads int
}

func newView() *view { return &view{vals: map[string]string{}, atLoad: -1} }

func (v *view) apply(recs []*kgo.Record) {
	v.mu.Lock()
	defer v.mu.Unlock()
	for _, r := range recs {
		if r.Value == nil {
			delete(v.vals, string(r.Key))
		} else {
			v.vals[string(r.Key)] = string(r.Value)
		}
	}
}

func (v *view) loaded() {
	v.mu.Lock()
	defer v.mu.Unlock()
	v.atLoad, v.onLoads = len(v.vals), v.onLoads+1
}

func (v *view) get(k string) (string, bool) {
	v.mu.Lock()
	defer v.mu.Unlock()
	s, ok := v.vals[k]
	return s, ok
}

func produce(t *testing.T, cl *kgo.Client, topic, key string, value []byte) {
	t.Helper()
	if err := cl.ProduceSync(context.Background(), &kgo.Record{Topic: topic, Key: []byte(key), Value: value}).FirstErr(); err != nil {
		t.Fatal(err)
	}
}

// start runs f until the test ends, and then checks that Run returned nil.
func start(t *testing.T, f *Follower) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- f.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("Run after cancel: %v", err)
			}
		case <-time.After(10 * time.Second):
			t.Error("Run did not return after cancel")
		}
	})
}

// TestLoadedOnlyWhenCaughtUp: the follower says loaded only once the view
// holds everything the topic held at start (every partition read to its
// end), and then follows later records and tombstones.
func TestLoadedOnlyWhenCaughtUp(t *testing.T) {
	const topic, n = "t.view.v1", 300
	c, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(3, topic))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	cl, err := kgo.NewClient(kgo.SeedBrokers(c.ListenAddrs()...))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	for i := range n {
		produce(t, cl, topic, fmt.Sprintf("k%d", i), []byte("v"))
	}
	produce(t, cl, topic, "k7", []byte("later"))
	produce(t, cl, topic, "k9", nil)

	v := newView()
	f := New(Topic{Name: topic, KafkaOpts: []kgo.Opt{kgo.SeedBrokers(c.ListenAddrs()...)}, Apply: v.apply, OnLoaded: v.loaded})
	if f.Loaded() {
		t.Fatal("loaded before Run")
	}
	start(t, f)
	wctx, wcancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer wcancel()
	if err := f.WaitLoaded(wctx); err != nil {
		t.Fatal(err)
	}
	v.mu.Lock()
	atLoad := v.atLoad
	v.mu.Unlock()
	if !f.Loaded() || atLoad != n-1 {
		t.Fatalf("at load the view held %d keys, want %d (Loaded %v)", atLoad, n-1, f.Loaded())
	}
	if s, _ := v.get("k7"); s != "later" {
		t.Errorf("k7 = %q, want the later record", s)
	}

	produce(t, cl, topic, "new", []byte("v"))
	produce(t, cl, topic, "k1", nil)
	testenv.Eventually(t, 10*time.Second, "the later put and tombstone applied", func() bool {
		_, isNew := v.get("new")
		_, k1 := v.get("k1")
		return isNew && !k1
	})
	v.mu.Lock()
	defer v.mu.Unlock()
	if v.onLoads != 1 {
		t.Errorf("OnLoaded ran %d times, want once", v.onLoads)
	}
}

// TestEmptyTopicLoadedAtOnce: an empty topic holds nothing to wait for.
func TestEmptyTopicLoadedAtOnce(t *testing.T) {
	c, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(2, "t.empty.v1"))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	v := newView()
	f := New(Topic{Name: "t.empty.v1", KafkaOpts: []kgo.Opt{kgo.SeedBrokers(c.ListenAddrs()...)}, Apply: v.apply, OnLoaded: v.loaded})
	start(t, f)
	wctx, wcancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer wcancel()
	if err := f.WaitLoaded(wctx); err != nil {
		t.Fatal(err)
	}
}

// TestRidesOutKafka: started with the broker away for longer than
// ReadyTimeout, the follower keeps trying (one error line, Run does not
// return), loads once the broker is there, then follows the topic through
// a restart, its health saying so, one line each way per outage.
func TestRidesOutKafka(t *testing.T) {
	const topic = "t.view.v1"
	k := kafkatest.New(t, kfake.SeedTopics(1, topic))
	cl, err := kgo.NewClient(kgo.SeedBrokers(k.Addrs()...))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	produce(t, cl, topic, "early", []byte("v"))
	k.Stop()

	logs := &testenv.Log{}
	h := health.New("test view", "", prometheus.NewRegistry(), logs.Logger())
	v := newView()
	f := New(Topic{Name: topic, KafkaOpts: []kgo.Opt{kgo.SeedBrokers(k.Addrs()...)}, Apply: v.apply, OnLoaded: v.loaded,
		Health: h, HealthInterval: 100 * time.Millisecond, ReadyTimeout: 300 * time.Millisecond, Stage: "test view", Log: logs.Logger()})
	if err := h.Err(); err == nil || !strings.Contains(err.Error(), "not loaded yet (reading "+topic+")") {
		t.Errorf("before Run: health %v, want not loaded yet", err)
	}
	start(t, f)
	testenv.Eventually(t, 5*time.Second, "the still-not-loaded error", func() bool { return logs.Count("test view still not loaded") == 1 })
	time.Sleep(3 * retryEvery) // several more failed attempts: still one line
	if f.Loaded() || h.Err() == nil {
		t.Fatalf("loaded or healthy without a broker: %v", h.Err())
	}
	k.Start()
	testenv.Eventually(t, 10*time.Second, "loaded and healthy", func() bool { return f.Loaded() && h.Err() == nil })
	if _, ok := v.get("early"); !ok {
		t.Fatal("the record written before start is not there")
	}

	k.Stop()
	testenv.Eventually(t, 5*time.Second, "unhealthy during the outage", func() bool { return h.Err() != nil })
	if err := h.Err(); !strings.Contains(err.Error(), "Kafka") || !f.Loaded() {
		t.Errorf("during the outage: %v, Loaded %v; want Kafka named and still loaded", err, f.Loaded())
	}
	time.Sleep(time.Second)
	k.Start()
	produce(t, cl, topic, "late", []byte("v"))
	testenv.Eventually(t, 10*time.Second, "the put after the restart applied and healthy", func() bool {
		_, ok := v.get("late")
		return ok && h.Err() == nil
	})
	if n := logs.Count("still not loaded"); n != 1 {
		t.Errorf("%d 'still not loaded' lines, want 1:\n%s", n, logs)
	}
	if b, e := logs.Count("Kafka outage began"), logs.Count("Kafka outage over"); b != 2 || e != 2 {
		t.Errorf("%d start and %d end lines for two outages, want 2 and 2:\n%s", b, e, logs)
	}
}

// TestBroadcastWakesEveryWaiter: every channel taken before a Notify is
// closed by it; one taken after waits for the next.
func TestBroadcastWakesEveryWaiter(t *testing.T) {
	var b Broadcast
	b.Notify() // nobody waits: nothing to do
	a, c := b.Wait(), b.Wait()
	select {
	case <-a:
		t.Fatal("closed before Notify")
	default:
	}
	b.Notify()
	for _, ch := range []<-chan struct{}{a, c} {
		select {
		case <-ch:
		default:
			t.Fatal("a waiter was not woken")
		}
	}
	select {
	case <-b.Wait():
		t.Fatal("a channel taken after Notify is already closed")
	default:
	}
}
