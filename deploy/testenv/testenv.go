// Package testenv gives tests the real services that deploy/local/stack.sh
// starts. A functional test calls Kafka(t) or ClickHouse(t): when the service
// is absent the test is skipped with a message saying how to run it, unless
// PURCHASESYNC_FUNCTIONAL_TESTS=1 (set by deploy/local/test.sh and CI), in
// which case it fails: CI must never pass by skipping.
package testenv

import (
	"context"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"runtime"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"purchasesync/schemas"
	"purchasesync/schemas/topicadmin"
)

const howTo = "start the stack with `eval \"$(deploy/local/stack.sh up)\"` (or run deploy/local/test.sh)"

// Required reports whether functional tests must run (fail, not skip).
func Required() bool { return os.Getenv("PURCHASESYNC_FUNCTIONAL_TESTS") == "1" }

func need(t testing.TB, what, env, addr string) {
	t.Helper()
	if testing.Short() && !Required() {
		t.Skipf("%s test skipped in -short mode", what)
	}
	if addr == "" {
		if Required() {
			t.Fatalf("%s is required (PURCHASESYNC_FUNCTIONAL_TESTS=1) but %s is not set: %s", what, env, howTo)
		}
		t.Skipf("%s not configured (%s unset): %s", what, env, howTo)
	}
	c, err := net.DialTimeout("tcp", addr, 2*time.Second)
	if err != nil {
		if Required() {
			t.Fatalf("%s at %s is not reachable: %v; %s", what, addr, err, howTo)
		}
		t.Skipf("%s at %s is not reachable: %v; %s", what, addr, err, howTo)
	}
	c.Close()
}

// Kafka returns the brokers of the real Kafka, or skips/fails.
func Kafka(t testing.TB) []string {
	t.Helper()
	v := os.Getenv("PURCHASESYNC_KAFKA_BROKERS")
	brokers := strings.Split(v, ",")
	need(t, "Kafka", "PURCHASESYNC_KAFKA_BROKERS", strings.TrimSpace(brokers[0]))
	return brokers
}

// ClickHouse returns the native address of the real ClickHouse, or skips/fails.
func ClickHouse(t testing.TB) string {
	t.Helper()
	v := os.Getenv("PURCHASESYNC_CLICKHOUSE_ADDR")
	need(t, "ClickHouse", "PURCHASESYNC_CLICKHOUSE_ADDR", v)
	return v
}

var seq atomic.Int64

// Name returns a name unique to this test run, usable as a topic prefix,
// consumer group or ClickHouse database ("t<pid>_<n>_<test>").
func Name(t testing.TB) string {
	clean := regexp.MustCompile(`[^a-z0-9]+`).ReplaceAllString(strings.ToLower(t.Name()), "_")
	if len(clean) > 40 {
		clean = clean[:40]
	}
	return fmt.Sprintf("t%d_%d_%s", os.Getpid(), seq.Add(1), clean)
}

// Topics creates every purchasesync topic under a fresh prefix with the given
// partition count and returns the prefix's Topics.
func Topics(t testing.TB, brokers []string, partitions int32) schemas.Topics {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(brokers...))
	if err != nil {
		t.Fatalf("kafka client: %v", err)
	}
	defer cl.Close()
	cfg := topicadmin.DefaultConfig()
	cfg.Topics = schemas.Topics{Prefix: Name(t) + "."}
	cfg.Partitions = partitions
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	if _, err := topicadmin.Ensure(ctx, kadm.NewClient(cl), cfg); err != nil {
		t.Fatalf("create topics: %v", err)
	}
	return cfg.Topics
}

// RepoRoot is the repository root (for scripts such as deploy/local/stack.sh).
func RepoRoot() string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Clean(filepath.Join(filepath.Dir(file), "..", ".."))
}

// Eventually polls cond every 100 ms until it returns true or timeout passes.
func Eventually(t testing.TB, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		if cond() {
			return
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatalf("timed out after %s waiting for %s", timeout, what)
}
