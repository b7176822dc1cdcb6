package clickhouse

import (
	"crypto/tls"
	"fmt"
	"regexp"
	"runtime"
	"time"

	"purchasesync/schemas"
)

// Config configures the ClickHouse sink and its migrations.
type Config struct {
	// Addr lists ClickHouse native-protocol addresses (host:port); the
	// driver fails over to the next one when a server is unreachable.
	Addr     []string
	Database string
	Username string
	Password string // never logged
	// TLS, when not nil, is the client TLS configuration of the native
	// protocol's secure port (9440 by default): every address in Addr
	// must then be a secure port. cmd/chconf builds it from the flags.
	TLS *tls.Config
	// Cluster, when set, is the remote_servers cluster of cluster mode
	// (cluster.go): migrations ON CLUSTER, Replicated local tables and
	// Distributed tables, synchronous distributed inserts. Empty: one
	// server (or ClickHouse Cloud, which replicates by itself).
	Cluster string
	// DialTimeout also bounds the wait for a pooled connection.
	DialTimeout time.Duration
	// ReadTimeout bounds one server answer; the driver's 300 s default would
	// hide a hung insert for five minutes.
	ReadTimeout time.Duration

	Topics schemas.Topics
	// Group is the Kafka consumer group; every sink instance in it shares the
	// partitions of the four input topics.
	Group string

	// A batch is inserted when it holds BatchRows rows, or its records'
	// values add up to BatchBytes, or FlushInterval has passed since its first
	// record, whichever comes first. The sink holds at most two batches
	// (one being written, one filling), also while ClickHouse is down.
	BatchRows     int
	BatchBytes    int
	FlushInterval time.Duration

	// DecodeWorkers is how many goroutines convert the records of one poll
	// (-sink.decodeWorkers); converting is most of the sink's CPU.
	DecodeWorkers int

	// Failed inserts are retried after RetryInitial, doubling up to RetryMax,
	// for as long as the sink runs; consumption waits meanwhile.
	RetryInitial time.Duration
	RetryMax     time.Duration
	// ShutdownTimeout bounds the final flush after Run's context ends.
	ShutdownTimeout time.Duration
	// HealthInterval is how often the sink checks that Kafka and ClickHouse
	// answer, so that Ready follows an outage (and its end) while the sink
	// is idle or blocked in a retry.
	HealthInterval time.Duration

	// Migrate applies the schema migrations before consuming (retrying while
	// ClickHouse is unreachable), so a fresh deployment needs no separate
	// `purchasesync migrate` step.
	Migrate bool
}

// DefaultConfig returns the defaults: the local stack's ClickHouse, database
// purchasesync, 50,000-row or 32 MiB batches at most once a second.
func DefaultConfig() Config {
	return Config{
		Addr:            []string{"127.0.0.1:19000"},
		Database:        "purchasesync",
		Username:        "default",
		DialTimeout:     5 * time.Second,
		ReadTimeout:     60 * time.Second,
		Topics:          schemas.Topics{Prefix: schemas.DefaultTopicPrefix},
		Group:           "purchasesync-sink",
		BatchRows:       50_000,
		BatchBytes:      32 << 20,
		FlushInterval:   time.Second,
		DecodeWorkers:   runtime.GOMAXPROCS(0),
		RetryInitial:    100 * time.Millisecond,
		RetryMax:        30 * time.Second,
		ShutdownTimeout: 30 * time.Second,
		HealthInterval:  2 * time.Second,
		Migrate:         true,
	}
}

var databaseRE = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]{0,63}$`)

// Validate checks the configuration; errors name the flag that fixes them.
func (c Config) Validate() error {
	switch {
	case len(c.Addr) == 0:
		return fmt.Errorf("no ClickHouse address: set -clickhouse.addr")
	case !databaseRE.MatchString(c.Database):
		return fmt.Errorf("invalid ClickHouse database %q (-clickhouse.database): want letters, digits and _", c.Database)
	case c.Cluster != "" && !databaseRE.MatchString(c.Cluster):
		return fmt.Errorf("invalid ClickHouse cluster %q (-clickhouse.cluster): want letters, digits and _, as in remote_servers", c.Cluster)
	case c.Group == "":
		return fmt.Errorf("empty consumer group")
	case c.BatchRows < 1:
		return fmt.Errorf("-sink.batchRows must be at least 1, got %d", c.BatchRows)
	case c.BatchBytes < 1<<10:
		return fmt.Errorf("-sink.batchBytes must be at least 1024, got %d", c.BatchBytes)
	case c.FlushInterval < 10*time.Millisecond:
		return fmt.Errorf("-sink.flushInterval must be at least 10ms, got %s", c.FlushInterval)
	case c.DecodeWorkers < 1:
		return fmt.Errorf("-sink.decodeWorkers must be at least 1, got %d", c.DecodeWorkers)
	case c.RetryInitial <= 0 || c.RetryMax < c.RetryInitial:
		return fmt.Errorf("retry backoff must satisfy 0 < initial (%s) <= max (%s)", c.RetryInitial, c.RetryMax)
	case c.ShutdownTimeout <= 0 || c.HealthInterval <= 0:
		return fmt.Errorf("shutdown timeout and health interval must be positive")
	case c.DialTimeout <= 0 || c.ReadTimeout <= 0:
		return fmt.Errorf("ClickHouse dial and read timeouts must be positive")
	}
	return nil
}
