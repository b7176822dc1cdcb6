package topicadmin_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"purchasesync/deploy/testenv"
	"purchasesync/schemas"
	"purchasesync/schemas/topicadmin"
)

func TestFunctionalEnsureAndCoPartitioning(t *testing.T) {
	brokers := testenv.Kafka(t)
	cl, err := kgo.NewClient(kgo.SeedBrokers(brokers...))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	adm := kadm.NewClient(cl)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cfg := topicadmin.DefaultConfig()
	cfg.Topics = schemas.Topics{Prefix: testenv.Name(t) + "."}
	cfg.Partitions = 3
	created, err := topicadmin.Ensure(ctx, adm, cfg)
	if err != nil {
		t.Fatal(err)
	}
	if len(created) != len(schemas.TopicSpecs()) {
		t.Fatalf("created %d topics, want %d", len(created), len(schemas.TopicSpecs()))
	}
	again, err := topicadmin.Ensure(ctx, adm, cfg)
	if err != nil || len(again) != 0 {
		t.Fatalf("second Ensure created %v, err %v; want nothing", again, err)
	}
	// Compacted topics are compacted; raw topics keep their retention.
	rc, err := adm.DescribeTopicConfigs(ctx, cfg.Topics.Name(schemas.TopicJoinState), cfg.Topics.Name(schemas.TopicShopifyOrders))
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range rc {
		for _, c := range r.Configs {
			if c.Key == "cleanup.policy" {
				want := "delete"
				if strings.HasSuffix(r.Name, schemas.TopicJoinState) {
					want = "compact"
				}
				if c.MaybeValue() != want {
					t.Errorf("%s cleanup.policy = %s, want %s", r.Name, c.MaybeValue(), want)
				}
			}
		}
	}
	var n int32
	testenv.Eventually(t, 10*time.Second, "co-partitioned topics", func() bool {
		n, err = topicadmin.CheckCoPartitioned(ctx, adm, cfg.Topics.Name(schemas.TopicShopifyOrders), cfg.Topics.Name(schemas.TopicStorefrontPurchases), cfg.Topics.Name(schemas.TopicJoinState))
		return err == nil
	})
	if n != 3 {
		t.Fatalf("partitions = %d, want 3", n)
	}
	// A mismatch is refused with a message that says how to fix it.
	if _, err := topicadmin.CheckCoPartitioned(ctx, adm, cfg.Topics.Name(schemas.TopicShopifyOrders), cfg.Topics.Name(schemas.TopicSites)); err == nil || !strings.Contains(err.Error(), "not co-partitioned") {
		t.Fatalf("mismatched partition counts: err = %v", err)
	}
	if _, err := topicadmin.CheckCoPartitioned(ctx, adm, cfg.Topics.Name("nope.v1")); err == nil || !strings.Contains(err.Error(), "migrate") {
		t.Fatalf("missing topic: err = %v", err)
	}
}

func TestConfigValidate(t *testing.T) {
	c := topicadmin.DefaultConfig()
	c.ReplicationFactor, c.MinInsyncReplicas = 1, 2 // more than the replication factor
	if err := c.Validate(); err == nil {
		t.Fatal("min.insync.replicas above the replication factor accepted")
	}
	c = topicadmin.DefaultConfig()
	c.Partitions = 0
	if err := c.Validate(); err == nil {
		t.Fatal("zero partitions accepted")
	}
}
