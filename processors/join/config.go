package join

import (
	"fmt"
	"os"
	"time"

	"purchasesync/schemas"
)

// Config configures the processor.
type Config struct {
	Topics schemas.Topics
	Group  string
	// TransactionalID must be stable per instance (and unique across
	// instances): a restarted instance fences its predecessor's open
	// transaction instead of waiting for it to time out.
	TransactionalID string
	// InstanceID is the static group membership id (KIP-345): a member
	// restarted under the same id takes its partitions back at once, without
	// waiting for the old session to expire.
	InstanceID string
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

// DefaultConfig returns the defaults of DESIGN §3.
func DefaultConfig(topics schemas.Topics, instance string) Config {
	return Config{
		Topics:             topics,
		Group:              "purchasesync-join",
		TransactionalID:    "purchasesync-join-" + instance,
		InstanceID:         "purchasesync-join-" + instance,
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
	case c.TransactionalID == "":
		return fmt.Errorf("join: transactional id is empty (-join.instance)")
	case c.SessionTimeout < time.Second:
		return fmt.Errorf("join: session timeout must be at least 1s (-join.sessionTimeout)")
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
