package main

import (
	"strings"
	"testing"

	"github.com/twmb/franz-go/pkg/kgo"

	"purchasesync/cmd/kafkaconf"
	"purchasesync/deploy/testenv"
)

// buildBinary is cmd/purchasesync, built once per test run.
func buildBinary(t *testing.T) string {
	t.Helper()
	return testenv.Build(t, "purchasesync/cmd/purchasesync")
}

// kafkaTarget is the Kafka a process test uses (the plaintext single broker
// or the secured cluster): its client settings, for the processes and the
// test's own clients, and how to stop and start it (chaos tests).
type kafkaTarget struct {
	name    string   // for subtest names
	env     []string // PURCHASESYNC_KAFKA_* lines for the processes
	getenv  func(string) string
	profile []string // stack.sh options
	nodes   int
}

func singleBroker(t *testing.T) kafkaTarget {
	brokers := testenv.Kafka(t)
	line := "PURCHASESYNC_KAFKA_BROKERS=" + strings.Join(brokers, ",")
	return kafkaTarget{name: "single-broker", env: []string{line}, nodes: 1, getenv: func(k string) string {
		if k == "PURCHASESYNC_KAFKA_BROKERS" {
			return strings.Join(brokers, ",")
		}
		return ""
	}}
}

func secureCluster(t *testing.T) kafkaTarget {
	c := testenv.KafkaCluster(t)
	return kafkaTarget{name: "cluster", env: c.Env, getenv: c.Getenv, profile: c.Profile, nodes: len(c.Brokers)}
}

// opts are a test client's options for this Kafka.
func (k kafkaTarget) opts(t *testing.T) []kgo.Opt {
	t.Helper()
	opts, err := kgoOptsFrom(k.getenv)
	if err != nil {
		t.Fatal(err)
	}
	return opts
}

func (k kafkaTarget) stack(t *testing.T, args ...string) {
	t.Helper()
	testenv.Stack(t, append(args, k.profile...)...)
}

// kgoOptsFrom builds a test client's options from PURCHASESYNC_KAFKA_*
// values, with the same builder the processes use.
func kgoOptsFrom(getenv func(string) string) ([]kgo.Opt, error) {
	cfg, err := kafkaconf.FromEnv(getenv)
	if err != nil {
		return nil, err
	}
	return cfg.Opts()
}
