package refundroute

import (
	"fmt"
	"time"

	"purchasesync/schemas"
)

// Config configures the router.
type Config struct {
	Topics schemas.Topics
	// Group is the consumer group; empty: Topics.Group("refundroute").
	Group string
	// Instance is the stable, unique name of this instance (the join's
	// -join.instance): TransactionalID and InstanceID left empty are
	// purchasesync-refundroute-<Instance>.
	Instance string
	// TransactionalID must be stable per instance and unique across
	// instances: a restarted instance fences its predecessor's open
	// transaction instead of waiting for it to time out.
	TransactionalID string
	// InstanceID is the static group membership id (KIP-345).
	InstanceID     string
	SessionTimeout time.Duration
	// OrderWait is how long (event time: the received-at of the partition's
	// later records) a refund waits for its order's index record before it
	// goes to shopify.unrouted.v1 (-refundroute.orderWait). Shopify retries
	// a failed orders/create for 4 hours and delivers late "up to a day".
	OrderWait time.Duration
	// IndexHorizon is how long an order's index is remembered
	// (-refundroute.indexHorizon): longer than the join remembers a
	// purchase (-join.dedupeHorizon), since a refund routed to a forgotten
	// purchase is not applied anyway.
	IndexHorizon time.Duration
	// PollInterval bounds how long a poll waits for records.
	PollInterval   time.Duration
	MaxPollRecords int
	// TransactionTimeout bounds how long a dead instance's open transaction
	// blocks read_committed readers of shopify.orders.v1.
	TransactionTimeout time.Duration
}

// DefaultConfig returns the defaults.
func DefaultConfig() Config {
	return Config{
		Topics:             schemas.Topics{Prefix: schemas.DefaultTopicPrefix},
		SessionTimeout:     15 * time.Second,
		OrderWait:          48 * time.Hour,
		IndexHorizon:       14 * 24 * time.Hour,
		PollInterval:       time.Second,
		MaxPollRecords:     5000,
		TransactionTimeout: 20 * time.Second,
	}
}

// withNames fills the group and ids left empty from Topics and Instance.
func (c Config) withNames() Config {
	if c.Group == "" {
		c.Group = c.Topics.Group("refundroute")
	}
	if c.Instance != "" {
		if c.TransactionalID == "" {
			c.TransactionalID = "purchasesync-refundroute-" + c.Instance
		}
		if c.InstanceID == "" {
			c.InstanceID = "purchasesync-refundroute-" + c.Instance
		}
	}
	return c
}

// Validate checks the configuration. The input topic is the router's
// changelog (a restore replays it from its start), so everything the state
// can still need must be within the topic's retention.
func (c Config) Validate() error {
	c = c.withNames()
	retention := time.Duration(0)
	for _, s := range schemas.TopicSpecs() {
		if s.Name == schemas.TopicShopifyOrderIDs {
			retention = s.Retention
		}
	}
	switch {
	case c.Group == "":
		return fmt.Errorf("refundroute: consumer group is empty (-refundroute.group)")
	case c.TransactionalID == "":
		return fmt.Errorf("refundroute: transactional id is empty (-join.instance)")
	case c.SessionTimeout < time.Second:
		return fmt.Errorf("refundroute: session timeout must be at least 1s")
	case c.OrderWait <= 0 || c.IndexHorizon <= 0:
		return fmt.Errorf("refundroute: order wait and index horizon must be positive (-refundroute.orderWait, -refundroute.indexHorizon)")
	case c.OrderWait+c.IndexHorizon > retention-24*time.Hour:
		return fmt.Errorf("refundroute: order wait %s + index horizon %s must stay a day below the retention of %s (%s): a restore replays that topic",
			c.OrderWait, c.IndexHorizon, schemas.TopicShopifyOrderIDs, retention)
	case c.PollInterval <= 0 || c.PollInterval > time.Minute:
		return fmt.Errorf("refundroute: poll interval must be in (0, 1m]")
	case c.MaxPollRecords < 1:
		return fmt.Errorf("refundroute: max poll records must be positive")
	case c.TransactionTimeout < time.Second:
		return fmt.Errorf("refundroute: transaction timeout must be at least 1s")
	}
	return nil
}
