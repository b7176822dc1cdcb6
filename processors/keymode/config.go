package keymode

import (
	"fmt"
	"time"

	"purchasesync/schemas"
)

// Config configures the Detector.
type Config struct {
	Topics schemas.Topics
	// ObserveGroup reads the raw topics into observations; Group judges
	// them per site. Empty: Topics.Group("keymode-observe") and
	// Topics.Group("keymode").
	ObserveGroup string
	Group        string
	// The window per site: at most MaxEntries webhooks and as many
	// storefront events, none older than MaxAge before the newest. A
	// storefront event and its webhook must both be inside it to meet.
	MaxEntries int
	MaxAge     time.Duration
	// MinMatches matched pairs make a verdict (schemas.DiagnoseKeyMode).
	MinMatches int
	// FlushInterval is how often changed windows are written to the
	// changelog and the evidence topic, and input offsets committed.
	FlushInterval  time.Duration
	MaxPollRecords int
	SessionTimeout time.Duration
}

// DefaultConfig returns the defaults. 200 of each side is two days of a
// store with a hundred orders a day and a few minutes of a large one:
// ten times the matches a verdict needs, at most about 200 KB of heap and
// 40 KB of state per site, whatever its volume (BenchmarkWindowBytes).
func DefaultConfig() Config {
	return Config{
		Topics:         schemas.Topics{Prefix: schemas.DefaultTopicPrefix},
		MaxEntries:     200,
		MaxAge:         72 * time.Hour,
		MinMatches:     schemas.DefaultKeyModeMinMatches,
		FlushInterval:  time.Second,
		MaxPollRecords: 5000,
		SessionTimeout: 15 * time.Second,
	}
}

// withGroups fills the groups left empty from Topics.
func (c Config) withGroups() Config {
	if c.ObserveGroup == "" {
		c.ObserveGroup = c.Topics.Group("keymode-observe")
	}
	if c.Group == "" {
		c.Group = c.Topics.Group("keymode")
	}
	return c
}

// Validate checks the configuration.
func (c Config) Validate() error {
	c = c.withGroups()
	switch {
	case c.ObserveGroup == "" || c.Group == "":
		return fmt.Errorf("keymode: consumer groups must not be empty (-keymode.group)")
	case c.ObserveGroup == c.Group:
		return fmt.Errorf("keymode: the observe and judge groups must differ (-keymode.group)")
	case c.MaxEntries < 1:
		return fmt.Errorf("keymode: window must hold at least one entry (-keymode.maxEntries)")
	case c.MaxAge <= 0:
		return fmt.Errorf("keymode: window age must be positive (-keymode.maxAge)")
	case c.MinMatches < 1:
		return fmt.Errorf("keymode: min matches must be positive (-keymode.minMatches)")
	case c.FlushInterval <= 0:
		return fmt.Errorf("keymode: flush interval must be positive")
	case c.MaxPollRecords < 1 || c.SessionTimeout < time.Second:
		return fmt.Errorf("keymode: max poll records must be positive and session timeout at least 1s")
	}
	return nil
}

func (c Config) limits() limits { return limits{maxEntries: c.MaxEntries, maxAge: c.MaxAge} }
