package compliance

import (
	"errors"
	"log/slog"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/twmb/franz-go/pkg/kgo"

	"purchasesync/schemas"
)

// Config configures the processor.
type Config struct {
	Topics schemas.Topics // names compliance.v1
	// Group is the consumer group; empty: Topics.Group("compliance"), so
	// purchasesync-compliance under the default prefix and a group of its
	// own for every other prefix (two deployments, or tests, on one cluster
	// never share one by accident).
	Group string
	// ReportDir receives customers/data_request reports; "" logs counts only.
	ReportDir string
	// MutationTimeout bounds the wait for ClickHouse to finish a request's
	// mutations before the request is retried.
	MutationTimeout time.Duration
	// A failed request (or offset commit) is retried after RetryInitial,
	// doubling up to RetryMax.
	RetryInitial time.Duration
	RetryMax     time.Duration
	// HealthInterval is how often the processor checks that Kafka and
	// ClickHouse answer, so that Ready follows an outage while it is idle.
	HealthInterval time.Duration
	// Cluster is the ClickHouse cluster of the sink's cluster mode (its
	// tables are Distributed over replicated <table>_local tables), and
	// Database the database of Conn: the mutations then go to the local
	// tables ON CLUSTER, and a request completes only when every replica in
	// Deps.Replicas has applied them. Empty: one server.
	Cluster, Database string
}

// DefaultConfig returns the defaults.
func DefaultConfig() Config {
	return Config{Topics: schemas.Topics{Prefix: schemas.DefaultTopicPrefix}, MutationTimeout: 10 * time.Minute,
		RetryInitial: time.Second, RetryMax: 5 * time.Minute, HealthInterval: 2 * time.Second}
}

// withGroup fills the group left empty from Topics.
func (c Config) withGroup() Config {
	if c.Group == "" {
		c.Group = c.Topics.Group("compliance")
	}
	return c
}

// Validate checks the configuration.
func (c Config) Validate() error {
	switch {
	case c.Cluster != "" && c.Database == "":
		return errors.New("compliance: cluster mode needs the database")
	case c.MutationTimeout <= 0 || c.RetryInitial <= 0 || c.RetryMax < c.RetryInitial || c.HealthInterval <= 0:
		return errors.New("compliance: timeouts must be positive")
	}
	return nil
}

// Deps are the processor's collaborators.
type Deps struct {
	Conn driver.Conn // the purchasesync database (tables of DESIGN §5)
	// Replicas, in cluster mode, are connections to every replica (each to
	// the database), on which waitMutations checks that a request's
	// mutations are done; empty: Conn alone.
	Replicas []driver.Conn
	Sites    SiteLookup
	// KafkaOpts are the base Kafka options (seeds, logging).
	KafkaOpts  []kgo.Opt
	Registerer prometheus.Registerer
	Logger     *slog.Logger // nil: discard
}
