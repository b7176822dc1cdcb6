package lagmon

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	dto "github.com/prometheus/client_model/go"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// TestPollPublishesLag: a group with commits on a fake cluster shows its lag
// and committed offset per partition, its member count, and partitions it
// never committed count from the start; a failed read is counted and keeps
// the last values.
func TestPollPublishesLag(t *testing.T) {
	c, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(2, "in"))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	cl, err := kgo.NewClient(kgo.SeedBrokers(c.ListenAddrs()...), kgo.RecordPartitioner(kgo.ManualPartitioner()))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ctx := context.Background()
	for i := range 8 {
		p := int32(0)
		if i >= 5 {
			p = 1
		}
		if err := cl.ProduceSync(ctx, &kgo.Record{Topic: "in", Partition: p, Value: []byte("x")}).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}
	adm := kadm.NewClient(cl)
	commit := func(off int64) {
		t.Helper()
		var os kadm.Offsets
		os.AddOffset("in", 0, off, -1)
		if err := adm.CommitAllOffsets(ctx, "g", os); err != nil {
			t.Fatal(err)
		}
	}
	commit(2)

	reg := prometheus.NewRegistry()
	m, err := New(Config{Groups: []string{"g"}, Interval: time.Second, Timeout: 5 * time.Second}, Deps{Registerer: reg})
	if err != nil {
		t.Fatal(err)
	}
	m.Poll(ctx, adm)
	lag := func(p string) float64 { return value(m.m.lag.WithLabelValues("g", "in", p)) }
	if got := lag("0"); got != 3 {
		t.Errorf("lag of partition 0 = %v, want 3 (5 records, committed 2)", got)
	}
	if got := lag("1"); got != 3 {
		t.Errorf("lag of partition 1 = %v, want 3 (never committed: counted from the start)", got)
	}
	if got := value(m.m.committed.WithLabelValues("g", "in", "0")); got != 2 {
		t.Errorf("committed offset of partition 0 = %v, want 2", got)
	}
	if got := value(m.m.members.WithLabelValues("g")); got != 0 {
		t.Errorf("members = %v, want 0 (offsets committed by an admin, nobody consuming)", got)
	}

	commit(5)
	m.Poll(ctx, adm)
	if got := lag("0"); got != 0 {
		t.Errorf("after committing the end, lag = %v, want 0", got)
	}

	// A failing read: counted, last values kept.
	c.ControlKey(int16(kmsg.DescribeGroups), func(kmsg.Request) (kmsg.Response, error, bool) {
		c.KeepControl()
		return nil, errors.New("injected"), true
	})
	m.cfg.Timeout = 300 * time.Millisecond
	m.Poll(ctx, adm)
	if got := value(m.m.errors.WithLabelValues("g")); got < 1 {
		t.Errorf("lag_errors_total = %v after a failed read, want >= 1", got)
	}
	if got := lag("0"); got != 0 {
		t.Errorf("a failed read changed the lag to %v; want the last value 0", got)
	}
}

// TestPublishDropsVanishedPartitions: a partition the group no longer has
// loses its series instead of reporting a stale lag for ever.
func TestPublishDropsVanishedPartitions(t *testing.T) {
	reg := prometheus.NewRegistry()
	m, err := New(withGroups("g"), Deps{Registerer: reg})
	if err != nil {
		t.Fatal(err)
	}
	withParts := func(ps ...int32) kadm.DescribedGroupLag {
		l := kadm.DescribedGroupLag{Group: "g", Lag: kadm.GroupLag{"t": {}}}
		for _, p := range ps {
			l.Lag["t"][p] = kadm.GroupMemberLag{Topic: "t", Partition: p, Lag: 7, Commit: kadm.Offset{At: 10}}
		}
		return l
	}
	m.publish("g", withParts(0, 1))
	if n := testutil.CollectAndCount(m.m.lag); n != 2 {
		t.Fatalf("%d lag series, want 2", n)
	}
	m.publish("g", withParts(1))
	if n := testutil.CollectAndCount(m.m.lag); n != 1 {
		t.Errorf("%d lag series after partition 0 vanished, want 1", n)
	}
	if n := testutil.CollectAndCount(m.m.committed); n != 1 {
		t.Errorf("%d committed-offset series after partition 0 vanished, want 1", n)
	}
}

// withGroups is the default configuration watching groups.
func withGroups(groups ...string) Config {
	c := DefaultConfig()
	c.Groups = groups
	return c
}

func TestConfigValidate(t *testing.T) {
	f := func(c Config, ok bool) {
		t.Helper()
		if err := c.Validate(); (err == nil) != ok {
			t.Errorf("Validate(%+v) = %v, want ok=%v", c, err, ok)
		}
	}
	f(withGroups("a", "b"), true)
	f(DefaultConfig(), false)
	f(withGroups(""), false)
	c := withGroups("a")
	c.Interval = 0
	f(c, false)
}

// value reads a counter's or gauge's value, or the sum over a vector's
// series. (prometheus/testutil would pull in a module this repository does
// not otherwise need.)
func value(c prometheus.Collector) float64 {
	var sum float64
	for _, d := range collect(c) {
		sum += d.GetCounter().GetValue() + d.GetGauge().GetValue()
	}
	return sum
}

func collect(c prometheus.Collector) []*dto.Metric {
	ch := make(chan prometheus.Metric)
	go func() { c.Collect(ch); close(ch) }()
	var out []*dto.Metric
	for m := range ch {
		var d dto.Metric
		if err := m.Write(&d); err != nil {
			panic(err)
		}
		out = append(out, &d)
	}
	return out
}

// TestOneFailingGroupDoesNotFailOthers: a group whose read fails is counted
// alone.
func TestOneFailingGroupDoesNotFailOthers(t *testing.T) {
	c, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(1, "in"))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	cl, err := kgo.NewClient(kgo.SeedBrokers(c.ListenAddrs()...))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	adm := kadm.NewClient(cl)
	var os kadm.Offsets
	os.AddOffset("in", 0, 0, -1)
	for _, g := range []string{"a", "b"} {
		if err := adm.CommitAllOffsets(context.Background(), g, os); err != nil {
			t.Fatal(err)
		}
	}
	// Describing group a fails (INVALID_GROUP_ID, not retried); b is empty.
	c.ControlKey(int16(kmsg.DescribeGroups), func(req kmsg.Request) (kmsg.Response, error, bool) {
		c.KeepControl()
		r := req.(*kmsg.DescribeGroupsRequest)
		resp := r.ResponseKind().(*kmsg.DescribeGroupsResponse)
		for _, g := range r.Groups {
			rg := kmsg.NewDescribeGroupsResponseGroup()
			rg.Group, rg.State, rg.ProtocolType = g, "Empty", "consumer"
			if g == "a" {
				rg.ErrorCode = 24
			}
			resp.Groups = append(resp.Groups, rg)
		}
		return resp, nil, true
	})
	m, err := New(Config{Groups: []string{"a", "b"}, Interval: time.Second, Timeout: 2 * time.Second}, Deps{Registerer: prometheus.NewRegistry()})
	if err != nil {
		t.Fatal(err)
	}
	m.Poll(context.Background(), adm)
	if got := value(m.m.errors.WithLabelValues("b")); got != 0 {
		t.Errorf("lag_errors_total{group=b} = %v, want 0: only a failed", got)
	}
	if got := value(m.m.errors.WithLabelValues("a")); got != 1 {
		t.Errorf("lag_errors_total{group=a} = %v, want 1", got)
	}
}
