package join

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"os"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"

	"purchasesync/schemas"
)

// The processor's fast tier: the same Processor on franz-go's in-process
// kfake cluster, so that its Kafka guarantees (transactions committed,
// range co-assignment, read_committed restore) are checked by the unit
// suite too; the real-broker tests (functional_test.go, fault_test.go)
// stay.

// fakeCluster starts kfake with every topic of the join at partitions
// partitions.
func fakeCluster(t *testing.T, partitions int) (*kfake.Cluster, schemas.Topics) {
	t.Helper()
	topics := schemas.Topics{Prefix: "kfake."}
	var names []string
	for _, s := range schemas.TopicSpecs() {
		names = append(names, topics.Name(s.Name))
	}
	c, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(int32(partitions), names...))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	return c, topics
}

// startFake runs a processor named instance against the fake cluster.
func startFake(t *testing.T, c *kfake.Cluster, topics schemas.Topics, instance string) *Processor {
	t.Helper()
	cfg := configFor(topics, instance)
	cfg.Group = "kfake-join"
	cfg.TickInterval = 50 * time.Millisecond
	cfg.TransactionTimeout = 5 * time.Second
	cfg.SessionTimeout = 6 * time.Second
	p, err := New(cfg, Deps{KafkaOpts: []kgo.Opt{kgo.SeedBrokers(c.ListenAddrs()...)}, Sites: staticSites(time.Hour),
		Registerer: prometheus.NewRegistry(), Logger: slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))})
	if err != nil {
		t.Fatal(err)
	}
	ctx, stop := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- p.Run(ctx) }()
	t.Cleanup(func() {
		stop()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("Run %s: %v", instance, err)
			}
		case <-time.After(20 * time.Second):
			t.Errorf("Run %s did not return", instance)
		}
	})
	return p
}

func storefrontRecord(topics schemas.Topics, id string, partition int32) *kgo.Record {
	body := `{"purchase":{"order_number":"` + id + `","subtotal":"23.97","currency_iso_code":"USD"},"customer":{"email":"buyer@example.com"}}`
	return &kgo.Record{Topic: topics.Name(schemas.TopicStorefrontPurchases), Key: []byte(schemas.Key("demo", id)), Value: []byte(body), Partition: partition,
		Headers: []kgo.RecordHeader{{Key: schemas.HeaderReceivedAt, Value: []byte(time.Now().UTC().Format(time.RFC3339Nano))}}}
}

func produceManual(t *testing.T, c *kfake.Cluster, recs ...*kgo.Record) {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(c.ListenAddrs()...), kgo.RecordPartitioner(kgo.ManualPartitioner()))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	if err := cl.ProduceSync(context.Background(), recs...).FirstErr(); err != nil {
		t.Fatal(err)
	}
}

// registered returns the keys with a committed version-1 purchase
// (read_committed: what an aborted transaction wrote is not there).
func registered(t *testing.T, c *kfake.Cluster, topics schemas.Topics) []string {
	t.Helper()
	var keys []string
	for _, r := range readAll(t, c.ListenAddrs(), topics.Name(schemas.TopicPurchases)) {
		if p, err := schemas.UnmarshalPurchase(r.Value); err == nil && p.Version == 1 {
			keys = append(keys, p.Key())
		}
	}
	sort.Strings(keys)
	return keys
}

func waitFor(t *testing.T, d time.Duration, what string, ok func() bool) {
	t.Helper()
	for deadline := time.Now().Add(d); time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
		if ok() {
			return
		}
	}
	t.Fatalf("timed out after %s waiting for %s", d, what)
}

// TestFakeCommitsAndRestoresCommittedState: the processor's transactions
// commit (registrations visible to read_committed readers, input offsets
// committed), and a restarted processor restores only committed state: a
// state record of an aborted transaction in join.state.v1 must not make it
// believe an order is already registered.
func TestFakeCommitsAndRestoresCommittedState(t *testing.T) {
	c, topics := fakeCluster(t, 1)
	// An aborted transaction left a state that says demo/2001 is
	// registered: a read_uncommitted restore would take it for real.
	ghost := State{Site: "demo", OrderNumber: "2001", Purchase: &schemas.Purchase{Site: "demo", OrderNumber: "2001", RegisteredVia: schemas.ViaStorefront, Version: 1},
		Storefront: facts(t, "email", "ghost@example.com"), ExpiresAt: time.Now().Add(time.Hour)}
	ghostValue, err := json.Marshal(&ghost)
	if err != nil {
		t.Fatal(err)
	}
	tx, err := kgo.NewClient(kgo.SeedBrokers(c.ListenAddrs()...), kgo.TransactionalID("ghost"), kgo.RecordPartitioner(kgo.ManualPartitioner()))
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if err := tx.BeginTransaction(); err != nil {
		t.Fatal(err)
	}
	if err := tx.ProduceSync(ctx, &kgo.Record{Topic: topics.Name(schemas.TopicJoinState), Key: []byte("demo/2001"), Value: ghostValue}).FirstErr(); err != nil {
		t.Fatal(err)
	}
	if err := tx.EndTransaction(ctx, kgo.TryAbort); err != nil {
		t.Fatal(err)
	}
	tx.Close()

	produceManual(t, c, storefrontRecord(topics, "1001", 0), storefrontRecord(topics, "1002", 0))
	startFake(t, c, topics, "a")
	waitFor(t, 20*time.Second, "demo/1001 and demo/1002 registered and committed", func() bool {
		return fmt.Sprint(registered(t, c, topics)) == "[demo/1001 demo/1002]"
	})
	adm := kadm.NewClient(mustClient(t, c))
	waitFor(t, 10*time.Second, "the storefront input committed to 2", func() bool {
		offs, err := adm.FetchOffsets(ctx, "kfake-join")
		if err != nil {
			return false
		}
		o, ok := offs.Lookup(topics.Name(schemas.TopicStorefrontPurchases), 0)
		return ok && o.At == 2
	})

	// demo/2001's event arrives: nothing committed knows it, so it
	// registers.
	produceManual(t, c, storefrontRecord(topics, "2001", 0))
	waitFor(t, 20*time.Second, "demo/2001 registered despite the aborted state", func() bool {
		return fmt.Sprint(registered(t, c, topics)) == "[demo/1001 demo/2001 demo/1002]" ||
			fmt.Sprint(registered(t, c, topics)) == "[demo/1001 demo/1002 demo/2001]"
	})
}

func mustClient(t *testing.T, c *kfake.Cluster) *kgo.Client {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(c.ListenAddrs()...))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cl.Close)
	return cl
}

// TestFakeRangeCoAssignment: with several members in the join's group,
// each member owns partition p of both inputs or of neither (DESIGN §2:
// the join needs no repartitioning only if the group co-assigns them),
// also after members join an existing group (a sticky balancer moves as
// few topic-partitions as it can, which splits them).
func TestFakeRangeCoAssignment(t *testing.T) {
	c, topics := fakeCluster(t, 6)
	adm := kadm.NewClient(mustClient(t, c))
	shop, sf := topics.Name(schemas.TopicShopifyOrders), topics.Name(schemas.TopicStorefrontPurchases)
	coAssigned := func(members int) {
		t.Helper()
		waitFor(t, 30*time.Second, fmt.Sprintf("%d members owning all 6 partitions", members), func() bool {
			groups, err := adm.DescribeGroups(context.Background(), "kfake-join")
			if err != nil {
				return false
			}
			g := groups["kfake-join"]
			if g.State != "Stable" || len(g.Members) != members {
				return false
			}
			owned := 0
			for _, m := range g.Members {
				ca, ok := m.Assigned.AsConsumer()
				if !ok {
					return false
				}
				parts := map[string][]int32{}
				for _, tp := range ca.Topics {
					ps := append([]int32(nil), tp.Partitions...)
					sort.Slice(ps, func(i, j int) bool { return ps[i] < ps[j] })
					parts[tp.Topic] = ps
				}
				if fmt.Sprint(parts[shop]) != fmt.Sprint(parts[sf]) {
					t.Fatalf("%d members: member %s owns %s %v but %s %v", members, m.MemberID, shop, parts[shop], sf, parts[sf])
				}
				owned += len(parts[sf])
			}
			return owned == 6
		})
	}
	startFake(t, c, topics, "a")
	coAssigned(1)
	startFake(t, c, topics, "b")
	coAssigned(2)
	startFake(t, c, topics, "c")
	coAssigned(3)
	startFake(t, c, topics, "d")
	coAssigned(4)
}

// TestFakeUndecodableStateNamesItsOffset: a join.state.v1 value that does
// not decode stalls the partition (going on without it could register the
// key twice) with an error naming the key, the offset and the way out, a
// tombstone; after the tombstone the join goes on (L13 of the security
// review).
func TestFakeUndecodableStateNamesItsOffset(t *testing.T) {
	c, topics := fakeCluster(t, 1)
	state := topics.Name(schemas.TopicJoinState)
	produceManual(t, c,
		&kgo.Record{Topic: state, Key: []byte("demo/1"), Value: []byte(`{"site":"demo","order_number":"1"}`)},
		&kgo.Record{Topic: state, Key: []byte("demo/7"), Value: []byte(`{not json`)},
		storefrontRecord(topics, "1001", 0))
	p := startFake(t, c, topics, "a")
	waitFor(t, 20*time.Second, "the restore error in Ready", func() bool {
		err := p.Ready()
		return err != nil && strings.Contains(err.Error(), `"demo/7" at offset 1`) && strings.Contains(err.Error(), "tombstone")
	})
	if got := registered(t, c, topics); len(got) != 0 {
		t.Fatalf("registered %v while the partition's state is not restored", got)
	}
	produceManual(t, c, &kgo.Record{Topic: state, Key: []byte("demo/7")})
	waitFor(t, 20*time.Second, "demo/1001 registered after the tombstone", func() bool {
		return fmt.Sprint(registered(t, c, topics)) == "[demo/1001]"
	})
}
