// Package kafkatest is a kfake cluster for outage tests: it can be stopped
// and started again on the same address with the same data (topics,
// records, committed offsets), as a restarted broker would be, and it can
// refuse offset commits or produces, or watch commits. Tests only; the
// outage tests of processors and sinks share it.
package kafkatest

import (
	"context"
	"net"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// Cluster is a one-broker kfake cluster persisted to a temporary directory.
type Cluster struct {
	t    testing.TB
	opts []kfake.Opt
	addr string

	mu       sync.Mutex
	c        *kfake.Cluster // nil while stopped
	names    map[[16]byte]string
	watchers []func(topic string, partition int32, offset int64)
}

// New starts a cluster with opts (kfake.SeedTopics, …); the test's cleanup
// stops it.
func New(t testing.TB, opts ...kfake.Opt) *Cluster {
	t.Helper()
	base := append([]kfake.Opt{kfake.NumBrokers(1), kfake.DataDir(t.TempDir())}, opts...)
	c, err := kfake.NewCluster(base...)
	if err != nil {
		t.Fatal(err)
	}
	k := &Cluster{t: t, c: c, addr: c.ListenAddrs()[0], names: map[[16]byte]string{}}
	_, port, _ := net.SplitHostPort(k.addr)
	k.opts = append(base, kfake.Ports(atoi(port)))
	t.Cleanup(k.Stop)
	k.started()
	return k
}

// Addrs are the seed addresses; they stay the same across restarts.
func (k *Cluster) Addrs() []string { return []string{k.addr} }

// Fake is the running kfake cluster; nil while stopped.
func (k *Cluster) Fake() *kfake.Cluster {
	k.mu.Lock()
	defer k.mu.Unlock()
	return k.c
}

// Stop shuts the broker down: connections close, dials are refused.
func (k *Cluster) Stop() {
	k.mu.Lock()
	c := k.c
	k.c = nil
	k.mu.Unlock()
	if c != nil {
		c.Close() // not under k.mu: a control function may be waiting for it
	}
}

// Start brings the broker back on the same address with its data (and the
// commit watchers).
func (k *Cluster) Start() {
	k.t.Helper()
	k.mu.Lock()
	if k.c != nil {
		k.mu.Unlock()
		return
	}
	var err error
	for range 50 { // the port may linger a moment after Close
		if k.c, err = kfake.NewCluster(k.opts...); err == nil {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	k.mu.Unlock()
	if err != nil {
		k.t.Fatalf("cannot restart the kfake cluster on %s: %v", k.addr, err)
	}
	k.started()
}

// started learns the topic ids (requests name topics by id) and installs
// the commit watchers.
func (k *Cluster) started() {
	k.t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(k.addr))
	if err != nil {
		k.t.Fatal(err)
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	topics, err := kadm.NewClient(cl).ListTopics(ctx)
	if err != nil {
		k.t.Fatal(err)
	}
	k.mu.Lock()
	defer k.mu.Unlock()
	for _, d := range topics {
		k.names[d.ID] = d.Topic
	}
	c := k.c
	c.ControlKey(kmsg.OffsetCommit.Int16(), func(r kmsg.Request) (kmsg.Response, error, bool) {
		c.KeepControl()
		req := r.(*kmsg.OffsetCommitRequest)
		k.mu.Lock()
		ws := k.watchers
		k.mu.Unlock()
		for _, t := range req.Topics {
			name := k.name(t.Topic, t.TopicID)
			for _, p := range t.Partitions {
				for _, w := range ws {
					w(name, p.Partition, p.Offset)
				}
			}
		}
		return nil, nil, false
	})
}

func (k *Cluster) name(topic string, id [16]byte) string {
	if topic != "" {
		return topic
	}
	k.mu.Lock()
	defer k.mu.Unlock()
	return k.names[id]
}

// WatchCommits calls fn with every partition of every offset commit the
// broker receives, before it handles the commit (also a refused one).
func (k *Cluster) WatchCommits(fn func(topic string, partition int32, offset int64)) {
	k.mu.Lock()
	defer k.mu.Unlock()
	k.watchers = append(k.watchers, fn)
}

// FailCommits makes the broker answer the next n offset commits with code
// for every partition.
func (k *Cluster) FailCommits(n int, code int16) {
	c := k.Fake()
	left := n
	c.ControlKey(kmsg.OffsetCommit.Int16(), func(r kmsg.Request) (kmsg.Response, error, bool) {
		if left--; left > 0 {
			c.KeepControl()
		} else {
			c.DropControl() // a kept control stays kept otherwise
		}
		req := r.(*kmsg.OffsetCommitRequest)
		resp := req.ResponseKind().(*kmsg.OffsetCommitResponse)
		for _, rt := range req.Topics {
			st := kmsg.NewOffsetCommitResponseTopic()
			st.Topic, st.TopicID = rt.Topic, rt.TopicID
			for _, rp := range rt.Partitions {
				sp := kmsg.NewOffsetCommitResponseTopicPartition()
				sp.Partition, sp.ErrorCode = rp.Partition, code
				st.Partitions = append(st.Partitions, sp)
			}
			resp.Topics = append(resp.Topics, st)
		}
		return resp, nil, true
	})
}

// RefuseProduce makes the broker answer produces to topic with code until
// the returned function is called (which returns once no refusal is in
// progress: later produces are taken).
func (k *Cluster) RefuseProduce(topic string, code int16) (stop func()) {
	c := k.Fake()
	var mu sync.Mutex
	refusing := true
	c.ControlKey(kmsg.Produce.Int16(), func(r kmsg.Request) (kmsg.Response, error, bool) {
		mu.Lock()
		defer mu.Unlock()
		if !refusing {
			c.DropControl()
			return nil, nil, false
		}
		c.KeepControl()
		req := r.(*kmsg.ProduceRequest)
		mine := false
		for _, rt := range req.Topics {
			mine = mine || k.name(rt.Topic, rt.TopicID) == topic
		}
		if !mine {
			return nil, nil, false
		}
		resp := req.ResponseKind().(*kmsg.ProduceResponse)
		for _, rt := range req.Topics {
			st := kmsg.NewProduceResponseTopic()
			st.Topic, st.TopicID = rt.Topic, rt.TopicID
			for _, rp := range rt.Partitions {
				sp := kmsg.NewProduceResponseTopicPartition()
				sp.Partition, sp.ErrorCode = rp.Partition, code
				st.Partitions = append(st.Partitions, sp)
			}
			resp.Topics = append(resp.Topics, st)
		}
		return resp, nil, true
	})
	return func() {
		mu.Lock()
		refusing = false
		mu.Unlock()
	}
}

func atoi(s string) int {
	n, err := strconv.Atoi(s)
	if err != nil {
		panic("kafkatest: bad port " + s)
	}
	return n
}
