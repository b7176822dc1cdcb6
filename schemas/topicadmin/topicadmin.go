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
	Topics            schemas.Topics
	Partitions        int32 // for co-partitioned topics
	ReplicationFactor int16
	MinInsyncReplicas int
	// OtherPartitions is the partition count of the topics that are not
	// co-partitioned (unrouted, compliance, sites, dead letters).
	OtherPartitions int32
}

// DefaultConfig suits the local single-broker stack.
func DefaultConfig() Config {
	return Config{
		Topics:            schemas.Topics{Prefix: schemas.DefaultTopicPrefix},
		Partitions:        6,
		ReplicationFactor: 1,
		MinInsyncReplicas: 1,
		OtherPartitions:   1,
	}
}

// Validate checks the configuration.
func (c Config) Validate() error {
	switch {
	case c.Partitions < 1:
		return fmt.Errorf("partitions must be at least 1 (-kafka.partitions)")
	case c.OtherPartitions < 1:
		return fmt.Errorf("partitions of other topics must be at least 1")
	case c.ReplicationFactor < 1:
		return fmt.Errorf("replication factor must be at least 1 (-kafka.replicationFactor)")
	case c.MinInsyncReplicas < 1 || c.MinInsyncReplicas > int(c.ReplicationFactor):
		return fmt.Errorf("min.insync.replicas must be between 1 and the replication factor (-kafka.minInsyncReplicas)")
	}
	return nil
}

// Ensure creates every topic of schemas.TopicSpecs that does not exist yet,
// and reports which it created. Existing topics are left as they are (their
// partition count is checked by CheckCoPartitioned, not changed: adding
// partitions would move keys and break the join).
func Ensure(ctx context.Context, adm *kadm.Client, cfg Config) ([]string, error) {
	if err := cfg.Validate(); err != nil {
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
			return 0, fmt.Errorf("topics are not co-partitioned: %s has %d partitions, %s has %d; they must match (recreate with `purchasesync migrate -kafka.partitions`)", names[0], n, name, p)
		}
	}
	return n, nil
}

func ptr(s string) *string { return &s }
