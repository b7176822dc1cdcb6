package health

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"purchasesync/deploy/testenv/kafkatest"
)

// logBuf collects log lines.
type logBuf struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *logBuf) Write(p []byte) (int, error) { l.mu.Lock(); defer l.mu.Unlock(); return l.b.Write(p) }

func (l *logBuf) lines(substr string) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return strings.Count(l.b.String(), substr)
}

// value reads a gauge or counter (prometheus/testutil would pull in a
// module the repository does not otherwise need).
func value(c prometheus.Metric) float64 {
	var m dto.Metric
	if err := c.Write(&m); err != nil {
		panic(err)
	}
	if m.Gauge != nil {
		return m.GetGauge().GetValue()
	}
	return m.GetCounter().GetValue()
}

func newTest(t *testing.T) (*Health, *prometheus.Registry, *logBuf) {
	lb := &logBuf{}
	reg := prometheus.NewRegistry()
	return New("sink", "x_", reg, slog.New(slog.NewTextHandler(lb, nil))), reg, lb
}

func TestEpisodeLogsOnceAndReadinessFollows(t *testing.T) {
	h, _, lb := newTest(t)
	kafka := h.Dep("Kafka")
	if err := h.Err(); err == nil || !strings.Contains(err.Error(), "starting") {
		t.Fatalf("before Started: %v", err)
	}
	if value(h.ready) != 0 {
		t.Fatal("ready gauge 1 before Started")
	}
	h.Started()
	if err := h.Err(); err != nil || value(h.ready) != 1 {
		t.Fatalf("after Started: %v, gauge %v", err, value(h.ready))
	}
	for range 20 {
		kafka.Fail(Probe, errors.New("dial tcp: connection refused"))
		kafka.Fail("commit", errors.New("cannot commit offsets: NOT_COORDINATOR"))
	}
	err := h.Err()
	if err == nil || !strings.Contains(err.Error(), "Kafka not reachable") || !strings.Contains(err.Error(), "connection refused") {
		t.Fatalf("during the outage: %v", err)
	}
	if value(h.ready) != 0 || value(h.outages.WithLabelValues("kafka")) != 1 {
		t.Fatalf("gauge %v, outages %v; want 0 and 1", value(h.ready), value(h.outages.WithLabelValues("kafka")))
	}
	kafka.OK(Probe)
	if err := h.Err(); err == nil || !strings.Contains(err.Error(), "Kafka failing") || !strings.Contains(err.Error(), "NOT_COORDINATOR") {
		t.Fatalf("with only the commit failing: %v", err)
	}
	kafka.OK("commit")
	if err := h.Err(); err != nil || value(h.ready) != 1 {
		t.Fatalf("after recovery: %v", err)
	}
	if n := lb.lines("outage began"); n != 1 {
		t.Errorf("%d lines for the start of one episode, want 1:\n%s", n, lb.b.String())
	}
	if n := lb.lines("outage over"); n != 1 || lb.lines("failed_attempts=40") != 1 || lb.lines("lasted=") != 1 {
		t.Errorf("want one end line with the attempts and how long it lasted:\n%s", lb.b.String())
	}
	kafka.Fail("commit", errors.New("again"))
	kafka.OK("commit")
	if value(h.outages.WithLabelValues("kafka")) != 2 || lb.lines("outage began") != 2 {
		t.Errorf("a second episode is counted and logged once more")
	}
}

func TestQuietSourceClearsItself(t *testing.T) {
	h, _, lb := newTest(t)
	h.Started()
	kafka := h.Dep("Kafka")
	kafka.FailQuiet("fetch", errors.New("UNKNOWN_TOPIC_OR_PARTITION"), 50*time.Millisecond)
	kafka.expire(time.Now())
	if h.Err() == nil {
		t.Fatal("a fresh quiet failure expired at once")
	}
	kafka.expire(time.Now().Add(time.Second))
	if err := h.Err(); err != nil || lb.lines("outage over") != 1 {
		t.Fatalf("after the quiet period: %v\n%s", err, lb.b.String())
	}
}

func TestUncommittedMergesAndForgets(t *testing.T) {
	var u Uncommitted
	u.Failed(Offsets{"a": {0: {Offset: 5}, 1: {Offset: 7}}})
	u.Failed(Offsets{"a": {0: {Offset: 3}}}) // lower: covered already
	got := u.With(Offsets{"a": {1: {Offset: 9}}, "b": {0: {Offset: 1}}})
	if got["a"][0].Offset != 5 || got["a"][1].Offset != 9 || got["b"][0].Offset != 1 {
		t.Fatalf("With = %v", got)
	}
	u.Committed(Offsets{"a": {1: {Offset: 9}}})
	if u.Len() != 1 {
		t.Fatalf("after committing a[1]: %d owed, want a[0]", u.Len())
	}
	u.Committed(Offsets{"a": {0: {Offset: 4}}}) // below what is owed: still owed
	if u.Len() != 1 {
		t.Fatal("a commit below the owed offset forgot it")
	}
	if took := u.Take(map[string][]int32{"a": {0, 3}}); took["a"][0].Offset != 5 || u.Len() != 0 {
		t.Fatalf("Take = %v, %d left", took, u.Len())
	}
}

// Commit must report a partition's error: CommitOffsetsSync passes those
// only in the response, and a stage that took them for success would
// never commit those offsets again.
func TestCommitReportsPartitionErrors(t *testing.T) {
	c, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(1, "t"))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	cl, err := kgo.NewClient(kgo.SeedBrokers(c.ListenAddrs()...), kgo.ConsumerGroup("g"), kgo.ConsumeTopics("t"))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	c.ControlKey(kmsg.OffsetCommit.Int16(), func(r kmsg.Request) (kmsg.Response, error, bool) {
		req := r.(*kmsg.OffsetCommitRequest)
		resp := req.ResponseKind().(*kmsg.OffsetCommitResponse)
		for _, rt := range req.Topics {
			st := kmsg.NewOffsetCommitResponseTopic()
			st.Topic = rt.Topic
			for _, rp := range rt.Partitions {
				sp := kmsg.NewOffsetCommitResponseTopicPartition()
				sp.Partition, sp.ErrorCode = rp.Partition, kerr.OffsetMetadataTooLarge.Code
				st.Partitions = append(st.Partitions, sp)
			}
			resp.Topics = append(resp.Topics, st)
		}
		return resp, nil, true
	})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	err = Commit(ctx, cl, Offsets{"t": {0: {Epoch: -1, Offset: 1}}})
	if !errors.Is(err, kerr.OffsetMetadataTooLarge) {
		t.Fatalf("Commit = %v, want the partition's OFFSET_METADATA_TOO_LARGE", err)
	}
	if err := Commit(ctx, cl, Offsets{"t": {0: {Epoch: -1, Offset: 1}}}); err != nil {
		t.Fatalf("second Commit: %v", err)
	}
}

// The probe notices a broker that goes away while the stage is idle, and
// that it came back.
func TestProbeFollowsTheBroker(t *testing.T) {
	k := kafkatest.New(t)
	cl, err := kgo.NewClient(kgo.SeedBrokers(k.Addrs()...))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	h, _, lb := newTest(t)
	h.Started()
	kafka := h.Dep("Kafka")
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { kafka.Probe(ctx, 50*time.Millisecond, time.Second, cl.Ping); close(done) }()
	defer func() { cancel(); <-done }()
	waitUntil(t, "ready", func() bool { return h.Err() == nil })
	k.Stop()
	waitUntil(t, "not ready with the broker gone", func() bool { return h.Err() != nil })
	time.Sleep(300 * time.Millisecond)
	k.Start()
	waitUntil(t, "ready again", func() bool { return h.Err() == nil })
	if lb.lines("outage began") != 1 || lb.lines("outage over") != 1 {
		t.Errorf("want one line each for the start and end of the episode:\n%s", lb.b.String())
	}
}

func waitUntil(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting until %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestOffsetsOf(t *testing.T) {
	got := OffsetsOf([]*kgo.Record{
		{Topic: "a", Partition: 0, Offset: 4, LeaderEpoch: 1},
		{Topic: "a", Partition: 0, Offset: 2},
		{Topic: "a", Partition: 1, Offset: 0},
	})
	if got["a"][0] != (kgo.EpochOffset{Epoch: 1, Offset: 5}) || got["a"][1].Offset != 1 || len(got["a"]) != 2 {
		t.Fatalf("OffsetsOf = %v", got)
	}
}
