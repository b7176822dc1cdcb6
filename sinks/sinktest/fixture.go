package sinktest

import (
	"bytes"
	"context"
	"fmt"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"

	"purchasesync/deploy/testenv"
	"purchasesync/deploy/testenv/kafkatest"
	"purchasesync/schemas"
	"purchasesync/schemas/deadletter"
)

// partitions of every topic: enough for two members to share them.
const partitions = 4

// fixture is one subtest's broker, producer, destination and bookkeeping.
// The test produces every record of the input topic, so it knows which item
// (or poison record) sits at each offset, and the commit watcher can check
// each commit against what the destination holds.
type fixture struct {
	f       Features
	h       generic
	k       *kafkatest.Cluster
	cl      *kgo.Client
	dest    Destination
	logs    *testenv.Log
	group   string
	members int

	mu       sync.Mutex
	ids      []string               // items produced, in order
	repeats  map[string]bool        // items that may be written twice
	at       map[string]string      // "partition/offset" → item id
	poisons  map[string]*kgo.Record // "partition/offset" → poison record
	passable map[string]bool        // poison positions a commit may pass
	next     map[int32]int64        // next offset per partition
	ahead    []string               // commits past an unwritten record
}

func newFixture(t *testing.T, f Features, h generic) *fixture {
	t.Helper()
	x := &fixture{f: f, h: h, logs: &testenv.Log{}, group: "g-" + t.Name(),
		at: map[string]string{}, repeats: map[string]bool{}, poisons: map[string]*kgo.Record{}, passable: map[string]bool{},
		next: map[int32]int64{}}
	x.k = kafkatest.New(t, kfake.SeedTopics(partitions, h.topics...))
	cl, err := kgo.NewClient(kgo.SeedBrokers(x.k.Addrs()...), kgo.RecordPartitioner(kgo.ManualPartitioner()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cl.Close)
	x.cl = cl
	x.dest = h.dest(t)
	x.k.WatchCommits(x.checkCommit)
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("consumer log:\n%s", x.logs)
		}
	})
	return x
}

func pos(p int32, off int64) string { return fmt.Sprintf("%d/%d", p, off) }

// checkCommit runs on the broker before it handles each offset commit:
// every record below the committed offset must be written, or a poison
// record the consumer may pass by now.
func (x *fixture) checkCommit(topic string, p int32, offset int64) {
	if topic != x.h.input {
		return
	}
	written := x.dest.Written()
	x.mu.Lock()
	defer x.mu.Unlock()
	for off := range offset {
		at := pos(p, off)
		if id, ok := x.at[at]; ok {
			if written[id] == 0 {
				x.ahead = append(x.ahead, fmt.Sprintf("commit of %s[%d] at %d before item %s (offset %d) was written", topic, p, offset, id, off))
				return
			}
			continue
		}
		if _, ok := x.poisons[at]; ok && !x.passable[at] {
			x.ahead = append(x.ahead, fmt.Sprintf("commit of %s[%d] at %d past poison record %d before its dead letter could be written", topic, p, offset, off))
			return
		}
		if _, ok := x.poisons[at]; !ok {
			x.ahead = append(x.ahead, fmt.Sprintf("commit of %s[%d] at %d past offset %d, which the test never produced", topic, p, offset, off))
			return
		}
	}
}

// repeatable marks items produced while a member loses its session or
// stops: their commits may be lost, so even a consumer whose destination
// is not idempotent may write them twice.
const repeatable = true

// produce writes n new items, spread over the partitions, or all to p when
// p >= 0.
func (x *fixture) produce(t *testing.T, n int, p int32, repeatable ...bool) {
	t.Helper()
	recs := make([]*kgo.Record, 0, n)
	offs := make([]int64, 0, n)
	x.mu.Lock()
	for range n {
		id, r := x.h.item(len(x.ids))
		r.Partition = p
		if p < 0 {
			r.Partition = int32(len(x.ids) % partitions)
		}
		x.ids = append(x.ids, id)
		x.repeats[id] = len(repeatable) > 0 && repeatable[0]
		// Known before the consumer can read it: offsets follow from the
		// one producer.
		off := x.next[r.Partition]
		x.next[r.Partition]++
		x.at[pos(r.Partition, off)] = id
		recs, offs = append(recs, r), append(offs, off)
	}
	x.mu.Unlock()
	x.send(t, recs, offs)
}

// producePoison writes a poison record to partition p and returns its
// position; a commit may pass it at once when passable, else after pass.
func (x *fixture) producePoison(t *testing.T, p int32, passable bool) string {
	t.Helper()
	r := x.h.poison()
	r.Partition = p
	x.mu.Lock()
	off := x.next[p]
	x.next[p]++
	at := pos(p, off)
	x.poisons[at] = r
	x.passable[at] = passable
	x.mu.Unlock()
	x.send(t, []*kgo.Record{r}, []int64{off})
	return at
}

func (x *fixture) pass(at string) {
	x.mu.Lock()
	x.passable[at] = true
	x.mu.Unlock()
}

func (x *fixture) send(t *testing.T, recs []*kgo.Record, offs []int64) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	want := make(map[*kgo.Record]int64, len(recs))
	for i, r := range recs {
		want[r] = offs[i]
	}
	for _, res := range x.cl.ProduceSync(ctx, recs...) { // in the order they completed
		if res.Err != nil {
			t.Fatal(res.Err)
		}
		if r := res.Record; r.Offset != want[r] {
			t.Fatalf("record produced at %s[%d] offset %d, expected %d: the test's bookkeeping is off", r.Topic, r.Partition, r.Offset, want[r])
		}
	}
}

// records is how many records the input holds.
func (x *fixture) records() int64 {
	x.mu.Lock()
	defer x.mu.Unlock()
	var n int64
	for _, o := range x.next {
		n += o
	}
	return n
}

// committed is the sum of the group's committed offsets on the input (the
// records committed, as every partition starts at 0); -1 while the broker
// is stopped.
func (x *fixture) committed() int64 {
	c := x.k.Fake()
	if c == nil {
		return -1
	}
	g := c.GroupInfo(x.group)
	if g == nil {
		return 0
	}
	var n int64
	for _, gc := range g.Commits[x.h.input] {
		n += gc.Offset
	}
	return n
}

// done: every item written and every record committed.
func (x *fixture) done() bool { return x.allWritten() && x.committed() == x.records() }

func (x *fixture) allWritten() bool {
	w := x.dest.Written()
	x.mu.Lock()
	defer x.mu.Unlock()
	for _, id := range x.ids {
		if w[id] == 0 {
			return false
		}
	}
	return true
}

func (x *fixture) nothingWritten() bool { return len(x.dest.Written()) == 0 }

// start builds a consumer (a new member of the group) and runs it until
// stopped, or the test ends.
func (x *fixture) start(t *testing.T, hold bool) *running {
	t.Helper()
	x.members++
	env := Env{Group: x.group, Logger: x.logs.Logger(), Hold: hold, KafkaOpts: []kgo.Opt{
		kgo.SeedBrokers(x.k.Addrs()...),
		kgo.ClientID(fmt.Sprintf("member-%d", x.members)),
		kgo.HeartbeatInterval(100 * time.Millisecond),
		// kfake does not wake a waiting fetch for a produce that a control
		// function (RefuseProduce) let through.
		kgo.FetchMaxWait(200 * time.Millisecond),
		// A dead letter Kafka refuses fails soon, and the consumer retries.
		kgo.RecordDeliveryTimeout(time.Second), kgo.RecordRetries(1),
	}}
	c := x.h.new(t, env, x.dest)
	ctx, cancel := context.WithCancel(context.Background())
	r := &running{c: c, cancel: cancel, done: make(chan error, 1), client: fmt.Sprintf("member-%d", x.members)}
	go func() { r.done <- c.Run(ctx) }()
	t.Cleanup(func() { r.stop(t) })
	return r
}

// wait polls cond for up to d, failing the test if it stays false or if
// one of rs returns by itself meanwhile.
func (x *fixture) wait(t *testing.T, d time.Duration, what string, cond func() bool, rs ...*running) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		for _, r := range rs {
			r.alive(t)
		}
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s (%d of %d records committed)", d, what, x.committed(), x.records())
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// stable waits until the group has members members, each with partitions.
func (x *fixture) stable(t *testing.T, members int) *kfake.GroupInfo {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	g, err := x.k.Fake().WaitGroupInfo(ctx, x.group, func(g *kfake.GroupInfo) bool {
		if g == nil || g.State != "Stable" || len(g.Members) != members {
			return false
		}
		for i := range g.Members {
			if g.Members[i].NumAssigned() == 0 {
				return false
			}
		}
		return true
	})
	if err != nil {
		t.Fatalf("group %s not stable with %d members sharing the partitions: %v (%+v)", x.group, members, err, g)
	}
	return g
}

// check: no commit passed an unwritten record, every item was written, and
// once unless the destination is idempotent.
func (x *fixture) check(t *testing.T) {
	t.Helper()
	w := x.dest.Written()
	x.mu.Lock()
	defer x.mu.Unlock()
	for _, e := range x.ahead {
		t.Error(e)
	}
	for _, id := range x.ids {
		switch n := w[id]; {
		case n == 0:
			t.Errorf("item %s never written", id)
		case n > 1 && !x.f.Idempotent && !x.repeats[id]:
			t.Errorf("item %s written %d times", id, n)
		}
	}
}

// checkDeadLetters reads the dead-letter topic until it holds one dead
// letter per poison record, and checks each carries the original record
// and the standard headers.
func (x *fixture) checkDeadLetters(t *testing.T) {
	t.Helper()
	x.mu.Lock()
	want := len(x.poisons)
	x.mu.Unlock()
	cl, err := kgo.NewClient(kgo.SeedBrokers(x.k.Addrs()...), kgo.ConsumeTopics(x.h.dlq))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	got := map[string]*kgo.Record{}
	for len(got) < want && ctx.Err() == nil {
		cl.PollFetches(ctx).EachRecord(func(r *kgo.Record) {
			p, _ := strconv.Atoi(deadletter.Header(r, schemas.HeaderSourcePartition))
			off, _ := strconv.ParseInt(deadletter.Header(r, schemas.HeaderSourceOffset), 10, 64)
			got[pos(int32(p), off)] = r
		})
	}
	x.mu.Lock()
	defer x.mu.Unlock()
	for at, src := range x.poisons {
		dl := got[at]
		switch {
		case dl == nil:
			t.Errorf("no dead letter for the poison record at %s[%s] (dead letters by source: %v)", x.h.input, at, keys(got))
		case deadletter.Header(dl, schemas.HeaderSourceTopic) != x.h.input:
			t.Errorf("dead letter of %s: source topic %q, want %q", at, deadletter.Header(dl, schemas.HeaderSourceTopic), x.h.input)
		case deadletter.Header(dl, schemas.HeaderReason) == "":
			t.Errorf("dead letter of %s has no reason", at)
		case !bytes.Equal(dl.Key, src.Key) || !bytes.Equal(dl.Value, src.Value):
			t.Errorf("dead letter of %s is not the original record: key %q value %q", at, dl.Key, dl.Value)
		}
	}
	if len(got) != want {
		t.Errorf("%d dead letters, want %d (one per poison record)", len(got), want)
	}
}

func keys(m map[string]*kgo.Record) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	return out
}
