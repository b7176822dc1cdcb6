package lagmon

import (
	"context"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"purchasesync/deploy/testenv"
)

// TestFunctionalLag on the real Kafka: a running member of a group that
// has read and committed everything of a topic written in transactions
// shows as one member with (almost) no lag; after it leaves and more
// records arrive, the lag shows them and the member count drops to 0.
func TestFunctionalLag(t *testing.T) {
	brokers := testenv.Kafka(t)
	name := testenv.Name(t)
	topic, group := name+".in", name+"-g"
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()

	admCl, err := kgo.NewClient(kgo.SeedBrokers(brokers...))
	if err != nil {
		t.Fatal(err)
	}
	defer admCl.Close()
	adm := kadm.NewClient(admCl)
	if _, err := adm.CreateTopic(ctx, 2, 1, nil, topic); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { adm.DeleteTopics(context.Background(), topic); adm.DeleteGroup(context.Background(), group) })

	// Ten records in two transactions, like the join writes purchases.v1.
	prod, err := kgo.NewClient(kgo.SeedBrokers(brokers...), kgo.TransactionalID(name), kgo.DefaultProduceTopic(topic))
	if err != nil {
		t.Fatal(err)
	}
	produceTxn := func(n int) {
		t.Helper()
		if err := prod.BeginTransaction(); err != nil {
			t.Fatal(err)
		}
		for range n {
			prod.Produce(ctx, &kgo.Record{Value: []byte("x")}, nil)
		}
		if err := prod.Flush(ctx); err != nil {
			t.Fatal(err)
		}
		if err := prod.EndTransaction(ctx, kgo.TryCommit); err != nil {
			t.Fatal(err)
		}
	}
	produceTxn(5)
	produceTxn(5)
	defer prod.Close()

	cons, err := kgo.NewClient(kgo.SeedBrokers(brokers...), kgo.ConsumerGroup(group), kgo.ConsumeTopics(topic),
		kgo.FetchIsolationLevel(kgo.ReadCommitted()), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()), kgo.DisableAutoCommit())
	if err != nil {
		t.Fatal(err)
	}
	read := 0
	for read < 10 {
		fs := cons.PollFetches(ctx)
		if err := fs.Err0(); err != nil {
			t.Fatal(err)
		}
		read += fs.NumRecords()
	}
	if err := cons.CommitUncommittedOffsets(ctx); err != nil {
		t.Fatal(err)
	}

	m, err := New(Config{Groups: []string{group}, Interval: time.Second, Timeout: 10 * time.Second},
		Deps{Registerer: prometheus.NewRegistry()})
	if err != nil {
		t.Fatal(err)
	}
	m.Poll(ctx, adm)
	if got := value(m.m.members.WithLabelValues(group)); got != 1 {
		t.Errorf("members = %v while consuming, want 1", got)
	}
	total := value(m.m.lag)
	// Each partition's last transaction ends in a commit marker the
	// consumer never returns: at most one record of lag per partition.
	if total > 2 {
		t.Errorf("lag = %v after reading and committing everything, want at most one marker per partition (2)", total)
	}
	t.Logf("lag after reading everything: %v (transaction markers)", total)

	cons.Close() // leaves the group
	produceTxn(7)
	m.Poll(ctx, adm)
	if got := value(m.m.members.WithLabelValues(group)); got != 0 {
		t.Errorf("members = %v after the consumer left, want 0", got)
	}
	if got := value(m.m.lag); got < 7 || got > total+7+2 { // + a marker per partition
		t.Errorf("lag = %v after 7 more records, want %v plus up to 2 markers", got, total+7)
	}
	if got := value(m.m.committed); got < 10 {
		t.Errorf("committed offsets sum to %v, want at least the 10 records read", got)
	}
	if got := value(m.m.errors); got != 0 {
		t.Errorf("lag_errors_total = %v, want 0", got)
	}
}
