package main

import (
	"context"
	"fmt"
	"io"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"purchasesync/schemas/topicadmin"
)

type migrateFlags struct {
	partitions  *int
	replication *int
	minISR      *int
}

func addMigrateFlags(fs *flagSet) *migrateFlags {
	d := topicadmin.DefaultConfig()
	return &migrateFlags{
		partitions: fs.Int("kafka.partitions", int(d.Partitions),
			"partitions of the co-partitioned topics (raw inputs, join state, outputs); the join scales out to this many members. Never change it on existing topics"),
		replication: fs.Int("kafka.replicationFactor", int(d.ReplicationFactor), "replication factor of new topics; 0 = 3 on a cluster of three brokers or more, else one per broker"),
		minISR:      fs.Int("kafka.minInsyncReplicas", d.MinInsyncReplicas, "min.insync.replicas of new topics; 0 = the replication factor less one (2 with 3 replicas, so acks=all survives a broker down), at least 1"),
	}
}

// migrateKafka creates the topics of DESIGN §2.
func (f *migrateFlags) migrateKafka(ctx context.Context, c *common) error {
	cfg := topicadmin.DefaultConfig()
	cfg.Topics = c.topics
	cfg.Partitions = int32(*f.partitions)
	cfg.ReplicationFactor = int16(*f.replication)
	cfg.MinInsyncReplicas = *f.minISR
	cl, err := kgo.NewClient(c.kafka.baseOpts(c.log, nil, "migrate")...)
	if err != nil {
		return fmt.Errorf("cannot create Kafka client: %w", err)
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(ctx, 60*time.Second)
	defer cancel()
	created, err := topicadmin.Ensure(ctx, kadm.NewClient(cl), cfg)
	if err != nil {
		return fmt.Errorf("cannot create topics: %w", err)
	}
	c.log.Info("kafka topics ready", "created", created)
	return nil
}

func cmdMigrate(ctx context.Context, args []string, getenv func(string) string, stdout io.Writer) error {
	fs := newFlagSet("migrate", getenv)
	fs.addDump(stdout)
	kf, lf, mf, sf := addKafkaFlags(fs), addLogFlags(fs), addMigrateFlags(fs), addSinkFlags(fs)
	if err := fs.parse(args); err != nil {
		return err
	}
	c, err := startCommon(ctx, kf, lf, fs.checking())
	if err != nil {
		return err
	}
	if fs.checking() {
		cfg, err := sf.clickhouseConfig(nil)
		if err != nil {
			return err
		}
		if err := checkClickHouse(ctx, c.log, cfg, true); err != nil {
			return err
		}
		return fs.checked()
	}
	if err := mf.migrateKafka(ctx, c); err != nil {
		return err
	}
	if err := sf.migrate(ctx, c.log); err != nil {
		return err
	}
	fmt.Fprintln(stdout, "migrations applied")
	return nil
}
