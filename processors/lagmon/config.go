package lagmon

import (
	"errors"
	"time"
)

// Config configures a Monitor.
type Config struct {
	// Groups are the consumer groups to watch (-join.group, -sink.group).
	Groups []string
	// Interval is how often the lag is read. Each read costs four small
	// requests to the brokers, whatever the number of partitions.
	Interval time.Duration
	// Timeout bounds one read.
	Timeout time.Duration
}

// DefaultConfig reads the lag every 15 s; cmd sets the Groups.
func DefaultConfig() Config {
	return Config{Interval: 15 * time.Second, Timeout: 10 * time.Second}
}

// Validate checks the configuration.
func (c Config) Validate() error {
	switch {
	case len(c.Groups) == 0:
		return errors.New("lagmon: no consumer groups to watch")
	case c.Interval <= 0:
		return errors.New("lagmon: interval must be positive (-lagmon.interval)")
	case c.Timeout <= 0:
		return errors.New("lagmon: timeout must be positive")
	}
	for _, g := range c.Groups {
		if g == "" {
			return errors.New("lagmon: empty consumer group name")
		}
	}
	return nil
}
