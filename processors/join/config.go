package join

import (
	"fmt"
	"os"
	"time"

	"purchasesync/schemas"
)

// Config configures the processor.
type Config struct {
	Topics schemas.Topics // set by cmd
	Group  string
	// Instance names this join instance (set by cmd); it must be stable
	// per instance and unique across instances. It makes the transactional
	// id, so a restarted instance fences its predecessor's open
	// transaction instead of waiting for it to time out, and the static
	// group membership id (KIP-345), so a member restarted under the same
	// name takes its partitions back at once, without waiting for the old
	// session to expire.
	Instance string
	// SessionTimeout is how long a silent member keeps its partitions.
	SessionTimeout time.Duration
	WebhookWait    time.Duration // rule 6
	DedupeHorizon  time.Duration // rule 8
	// TickInterval is how often timers are checked and how long a poll waits.
	TickInterval   time.Duration
	MaxPollRecords int
	// TransactionTimeout bounds how long a dead instance's open transaction
	// blocks readers (and restores) before the broker aborts it.
	TransactionTimeout time.Duration
	// StateDir is where each partition keeps the states of its settled
	// keys (cold.go): a file, unlinked as soon as it is created, rebuilt at
	// every restore. Empty keeps every state in memory; so does a
	// directory the join cannot write to (it says so once).
	StateDir string
}

// DefaultConfig returns the defaults of DESIGN §3. Topics and Instance
// are the caller's.
func DefaultConfig() Config {
	return Config{
		Group:              "purchasesync-join",
		SessionTimeout:     15 * time.Second,
		WebhookWait:        24 * time.Hour,
		DedupeHorizon:      7 * 24 * time.Hour,
		TickInterval:       500 * time.Millisecond,
		MaxPollRecords:     5000,
		TransactionTimeout: 20 * time.Second,
		StateDir:           os.TempDir(),
	}
}

// Validate checks the configuration.
func (c Config) Validate() error {
	switch {
	case c.Group == "":
		return fmt.Errorf("join: consumer group is empty (-join.group)")
	case c.Instance == "":
		return fmt.Errorf("join: instance is empty (-join.instance)")
	case c.SessionTimeout < time.Second:
		return fmt.Errorf("join: session timeout must be at least 1s")
	case c.WebhookWait <= 0:
		return fmt.Errorf("join: webhook wait must be positive (-join.webhookWait)")
	case c.DedupeHorizon < c.WebhookWait:
		return fmt.Errorf("join: dedupe horizon %s must be at least the webhook wait %s (-join.dedupeHorizon)", c.DedupeHorizon, c.WebhookWait)
	case c.TickInterval <= 0 || c.TickInterval > time.Minute:
		return fmt.Errorf("join: tick interval must be in (0, 1m] (-join.tickInterval)")
	case c.MaxPollRecords < 1:
		return fmt.Errorf("join: max poll records must be positive")
	case c.TransactionTimeout < time.Second:
		return fmt.Errorf("join: transaction timeout must be at least 1s")
	}
	return nil
}

// kafkaID is the instance's name in Kafka: both its transactional id and
// its static group membership id.
func (c Config) kafkaID() string { return "purchasesync-join-" + c.Instance }
