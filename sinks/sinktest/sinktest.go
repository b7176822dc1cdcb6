// Package sinktest is the conformance suite of the committing consumers:
// the ClickHouse sink, the registrar, the notifier and compliance. Each
// promises the same things about its offsets (commit only what its
// destination took; flush and return nil on cancel; set poison records
// aside without blocking the rest; lose nothing through a rebalance or a
// Kafka outage; say so through Ready), and each proves them here, the same
// way, from its own test file (watermill's pubsub/tests.TestPubSub habit).
//
// Run drives a consumer in process: a kfake broker that can be stopped and
// restarted (deploy/testenv/kafkatest), and the consumer's own in-memory
// double of its destination. Features says which guarantees the consumer
// claims where they differ; Harness says how to build it and its input.
// Tests only.
package sinktest

import (
	"context"
	"log/slog"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
)

// Consumer is what the suite drives: a committing consumer built for one
// Env.
type Consumer interface {
	// Run consumes until ctx ends; it returns nil after a cancel, and never
	// returns by itself through an outage.
	Run(ctx context.Context) error
	// Ready is nil while the consumer works normally, else why not.
	Ready() error
}

// Destination is a consumer's in-memory double of what it writes to,
// shared by the consumers of one subtest (the members of one group).
type Destination interface {
	// SetDown makes every write fail as an unreachable (or 5xx) destination
	// does, until SetDown(false).
	SetDown(down bool)
	// Written is how many times the destination took each item, by the id
	// Harness.Item gave it.
	Written() map[string]int
}

// Features are the guarantees in which the consumers differ.
type Features struct {
	// Idempotent: the destination collapses an item written twice (rows in
	// FINAL, the registry's duplicate check, compliance_requests by request
	// id), so repeats are accepted. Otherwise every item must arrive
	// exactly once wherever no commit was lost.
	Idempotent bool
	// DeadLetters: a poison record goes to the dead-letter topic with the
	// standard headers (schemas/deadletter), and no commit passes it until
	// Kafka took its dead letter. Otherwise it is logged and skipped.
	DeadLetters bool
	// FlushesOnCancel: the consumer buffers writes (Env.Hold makes it keep
	// them), and writes and commits them when Run's context ends.
	FlushesOnCancel bool
	// Destination is the name Ready gives the destination while its writes
	// fail ("ClickHouse"); empty when readiness follows Kafka alone.
	Destination string
}

// Env is what the suite gives a consumer it builds.
type Env struct {
	// KafkaOpts are the base client options: the broker, a client id,
	// short heartbeats and delivery timeouts. The consumer adds its group.
	KafkaOpts []kgo.Opt
	Group     string
	Logger    *slog.Logger
	// Hold asks the consumer to keep what it reads buffered as long as it
	// can (a long flush interval), so that a cancel has something to flush.
	Hold bool
}

// Harness builds one kind of consumer and its input for the suite.
type Harness[D Destination] struct {
	// Input is the full name of the topic the items go to; Topics are every
	// topic the consumer reads or writes, created empty for each subtest.
	Input  string
	Topics []string
	// DeadLetter is the full name of the dead-letter topic (DeadLetters).
	DeadLetter string
	// Item is the i-th valid record (Topic Input) and the id under which
	// the destination's Written counts it. Each i is a different item.
	Item func(i int) (id string, rec *kgo.Record)
	// Poison is a record the consumer can never write (Topic Input).
	Poison func() *kgo.Record
	// Destination returns a new double, in working order.
	Destination func(t *testing.T) D
	// New builds a consumer writing to dest.
	New func(t *testing.T, env Env, dest D) Consumer
}

// Run runs the suite, one subtest per guarantee.
func Run[D Destination](t *testing.T, f Features, h Harness[D]) {
	t.Helper()
	checks := []struct {
		name string
		fn   func(*testing.T, *fixture)
	}{
		{"CommitsOnlyWhatTheDestinationTook", destinationOutage},
		{"CancelFlushesAndReturnsNil", cancel},
		{"PoisonRecordsDoNotBlock", poison},
		{"RebalanceLosesNothing", rebalance},
		{"RidesOutBrokerRestart", brokerRestart},
		{"StartsWhileKafkaIsDown", startsWithoutKafka},
		{"RecommitsFailedCommit", failedCommit},
	}
	g := generic{
		input: h.Input, topics: h.Topics, dlq: h.DeadLetter, item: h.Item, poison: h.Poison,
		dest: func(t *testing.T) Destination { return h.Destination(t) },
		new:  func(t *testing.T, env Env, d Destination) Consumer { return h.New(t, env, d.(D)) },
	}
	for _, c := range checks {
		t.Run(c.name, func(t *testing.T) { c.fn(t, newFixture(t, f, g)) })
	}
}

// generic is a Harness with its destination type erased.
type generic struct {
	input, dlq string
	topics     []string
	item       func(int) (string, *kgo.Record)
	poison     func() *kgo.Record
	dest       func(*testing.T) Destination
	new        func(*testing.T, Env, Destination) Consumer
}

// running is one consumer's Run in progress.
type running struct {
	c        Consumer
	client   string // its Kafka client id
	cancel   context.CancelFunc
	done     chan error
	finished bool
	err      error
}

// stop cancels Run and fails the test unless it returns nil soon.
func (r *running) stop(t *testing.T) {
	t.Helper()
	if r.finished {
		return
	}
	r.cancel()
	select {
	case r.err = <-r.done:
		r.finished = true
		if r.err != nil {
			t.Errorf("Run after cancel: %v", r.err)
		}
	case <-time.After(15 * time.Second):
		t.Error("Run did not return within 15 s of cancel")
	}
}

// alive fails the test if Run returned by itself.
func (r *running) alive(t *testing.T) {
	t.Helper()
	if r.finished {
		t.Fatalf("Run returned by itself: %v", r.err)
	}
	select {
	case r.err = <-r.done:
		r.finished = true
		t.Fatalf("Run returned by itself: %v", r.err)
	default:
	}
}
