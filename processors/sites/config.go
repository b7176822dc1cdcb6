package sites

import (
	"fmt"
	"time"

	"purchasesync/schemas"
)

// Config configures a Registry.
type Config struct {
	// Topics names sites.v1 (prefix from -kafka.topicPrefix).
	Topics schemas.Topics
	// ReadyTimeout is how long Run may take to load the topic at start
	// before it logs an error (once); it keeps trying: Kafka may be
	// restarting, and a broker fault never ends a process. Until it has
	// loaded, Ready is false and ReadyErr says why.
	ReadyTimeout time.Duration
	// HealthInterval is how often the registry checks that Kafka answers,
	// so that ReadyErr follows an outage.
	HealthInterval time.Duration
	// VisibleTimeout bounds how long a Writer made by Registry.Writer
	// waits, after a write, until this registry shows it. The write is
	// durable in Kafka either way.
	VisibleTimeout time.Duration
}

// DefaultConfig returns the defaults.
func DefaultConfig() Config {
	return Config{Topics: schemas.Topics{Prefix: schemas.DefaultTopicPrefix}, ReadyTimeout: time.Minute,
		HealthInterval: 2 * time.Second, VisibleTimeout: 3 * time.Second}
}

// topic is the full name of sites.v1.
func (c Config) topic() string { return c.Topics.Name(schemas.TopicSites) }

// Validate checks the configuration.
func (c Config) Validate() error {
	if c.ReadyTimeout <= 0 || c.HealthInterval <= 0 || c.VisibleTimeout <= 0 {
		return fmt.Errorf("sites: ready timeout, health interval and visible timeout must be positive")
	}
	return nil
}
