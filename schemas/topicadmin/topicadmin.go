// Package topicadmin creates and checks the Kafka topics that package schemas
// declares. It is the one place (besides the stages' clients) that talks to
// Kafka about topics: `purchasesync migrate`, stages' start-up checks and
// tests all call it, so every topic gets the same explicit configuration.
package topicadmin

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"

	"purchasesync/schemas"
)

// Config says how topics are created.
type Config struct {
	Topics     schemas.Topics
	Partitions int32 // for co-partitioned topics
	// ReplicationFactor of new topics; 0 picks it from the cluster's size:
	// 3 on three brokers or more (production), else one per broker.
	ReplicationFactor int16
	// MinInsyncReplicas of new topics; 0 picks ReplicationFactor-1 (at
	// least 1): 2 with RF 3, so acks=all survives one broker down.
	MinInsyncReplicas int
	// OtherPartitions is the partition count of the topics that are not
	// co-partitioned (unrouted, compliance, sites, dead letters).
	OtherPartitions int32
}

// DefaultConfig picks replication from the cluster (see Config).
func DefaultConfig() Config {
	return Config{
		Topics:          schemas.Topics{Prefix: schemas.DefaultTopicPrefix},
		Partitions:      6,
		OtherPartitions: 1,
	}
}

// Validate checks the configuration.
func (c Config) Validate() error {
	switch {
	case c.Partitions < 1:
		return fmt.Errorf("partitions must be at least 1 (-kafka.partitions)")
	case c.OtherPartitions < 1:
		return fmt.Errorf("partitions of other topics must be at least 1")
	case c.ReplicationFactor < 0:
		return fmt.Errorf("replication factor must be at least 1, or 0 to pick it from the cluster (-kafka.replicationFactor)")
	case c.MinInsyncReplicas < 0 || c.ReplicationFactor > 0 && c.MinInsyncReplicas > int(c.ReplicationFactor):
		return fmt.Errorf("min.insync.replicas must be between 1 and the replication factor, or 0 to pick it (-kafka.minInsyncReplicas)")
	}
	return nil
}

// ForBrokers fills in what was left to the cluster's size (see Config) and
// refuses a replication factor the cluster cannot place.
func (c Config) ForBrokers(brokers int) (Config, error) {
	if c.ReplicationFactor == 0 {
		c.ReplicationFactor = int16(max(1, min(3, brokers)))
	}
	if c.MinInsyncReplicas == 0 {
		c.MinInsyncReplicas = max(1, int(c.ReplicationFactor)-1)
	}
	if int(c.ReplicationFactor) > brokers {
		return c, fmt.Errorf("replication factor %d (-kafka.replicationFactor) is more than the %d broker(s) of the cluster: lower it, or leave it at 0 to pick it from the cluster", c.ReplicationFactor, brokers)
	}
	return c, c.Validate()
}

// Ensure creates every topic of schemas.TopicSpecs that does not exist yet,
// and reports which it created. Existing topics are left as they are (their
// partition count is checked by CheckCoPartitioned, not changed: adding
// partitions would move keys and break the join).
func Ensure(ctx context.Context, adm *kadm.Client, cfg Config) ([]string, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	brokers, err := adm.ListBrokers(ctx)
	if err != nil {
		return nil, fmt.Errorf("cannot list the cluster's brokers: %w", err)
	}
	if cfg, err = cfg.ForBrokers(len(brokers)); err != nil {
		return nil, err
	}
	var created []string
	for _, spec := range schemas.TopicSpecs() {
		name := cfg.Topics.Name(spec.Name)
		parts := cfg.OtherPartitions
		if spec.CoPartitioned {
			parts = cfg.Partitions
		}
		conf := map[string]*string{
			"min.insync.replicas": ptr(strconv.Itoa(cfg.MinInsyncReplicas)),
		}
		if spec.Compacted {
			conf["cleanup.policy"] = ptr("compact")
			// Tombstones must outlive a restore that starts right before
			// they are cleaned, or a forgotten key could come back.
			conf["delete.retention.ms"] = ptr(strconv.FormatInt((24 * time.Hour).Milliseconds(), 10))
		} else {
			conf["cleanup.policy"] = ptr("delete")
			if spec.Retention > 0 {
				conf["retention.ms"] = ptr(strconv.FormatInt(spec.Retention.Milliseconds(), 10))
			}
		}
		resp, err := adm.CreateTopic(ctx, parts, cfg.ReplicationFactor, conf, name)
		if err == nil {
			err = resp.Err
		}
		switch {
		case err == nil:
			created = append(created, name)
		case errors.Is(err, kerr.TopicAlreadyExists):
		default:
			return created, fmt.Errorf("cannot create topic %s: %w", name, err)
		}
	}
	return created, nil
}

// CheckCoPartitioned verifies that the given topics exist and have one
// partition count, and returns it. The join refuses to run otherwise: with
// different counts the two events of one purchase land in different
// partition numbers and would never meet.
// ErrNotCoPartitioned is a definite verdict of CheckCoPartitioned (not a
// failure to ask): a join cannot run on such topics.
var ErrNotCoPartitioned = errors.New("topics are not co-partitioned")

func CheckCoPartitioned(ctx context.Context, adm *kadm.Client, names ...string) (int32, error) {
	details, err := adm.ListTopics(ctx, names...)
	if err != nil {
		return 0, fmt.Errorf("cannot list topics: %w", err)
	}
	var n int32 = -1
	for _, name := range names {
		d, ok := details[name]
		if !ok || d.Err != nil {
			return 0, fmt.Errorf("topic %s is missing: run `purchasesync migrate` first", name)
		}
		p := int32(len(d.Partitions))
		if n == -1 {
			n = p
		} else if p != n {
			return 0, fmt.Errorf("%w: %s has %d partitions, %s has %d; they must match (recreate with `purchasesync migrate -kafka.partitions`)", ErrNotCoPartitioned, names[0], n, name, p)
		}
	}
	return n, nil
}

func ptr(s string) *string { return &s }
