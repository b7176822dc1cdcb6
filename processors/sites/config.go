package sites

import (
	"fmt"
	"time"
)

// Config configures a Registry.
type Config struct {
	Topic string // full name of sites.v1
	// ReadyTimeout bounds how long Run waits to catch up at start before it
	// fails (a registry that never loads would leave /readyz red forever).
	ReadyTimeout time.Duration
}

// DefaultConfig returns the defaults for topic.
func DefaultConfig(topic string) Config {
	return Config{Topic: topic, ReadyTimeout: time.Minute}
}

// Validate checks the configuration.
func (c Config) Validate() error {
	if c.Topic == "" {
		return fmt.Errorf("sites: topic is empty")
	}
	if c.ReadyTimeout <= 0 {
		return fmt.Errorf("sites: ready timeout must be positive")
	}
	return nil
}
