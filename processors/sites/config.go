package sites

import (
	"fmt"
	"time"
)

// Config configures a Registry.
type Config struct {
	Topic string // full name of sites.v1
	// ReadyTimeout is how long Run may take to load the topic at start
	// before it logs an error (once); it keeps trying: Kafka may be
	// restarting, and a broker fault never ends a process. Until it has
	// loaded, Ready is false and ReadyErr says why.
	ReadyTimeout time.Duration
	// HealthInterval is how often the registry checks that Kafka answers,
	// so that ReadyErr follows an outage.
	HealthInterval time.Duration
}

// DefaultConfig returns the defaults for topic.
func DefaultConfig(topic string) Config {
	return Config{Topic: topic, ReadyTimeout: time.Minute, HealthInterval: 2 * time.Second}
}

// Validate checks the configuration.
func (c Config) Validate() error {
	if c.Topic == "" {
		return fmt.Errorf("sites: topic is empty")
	}
	if c.ReadyTimeout <= 0 || c.HealthInterval <= 0 {
		return fmt.Errorf("sites: ready timeout and health interval must be positive")
	}
	return nil
}
