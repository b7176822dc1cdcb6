// Package testenv gives tests the real services that deploy/local/stack.sh
// starts. A functional test calls Kafka(t) or ClickHouse(t): when the service
// is absent the test is skipped with a message saying how to run it, unless
// PURCHASESYNC_FUNCTIONAL_TESTS=1 (set by deploy/local/test.sh and CI), in
// which case it fails: CI must never pass by skipping.
package testenv

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"sort"
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
	needHow(t, what, env, addr, howTo)
}

func needHow(t testing.TB, what, env, addr, howTo string) {
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

const clusterHowTo = "run deploy/local/test.sh, which starts it with " +
	"`deploy/local/stack.sh up --kafka-brokers 3 --kafka-security sasl_ssl` and exports its lines with the prefix PURCHASESYNC_CLUSTER_"

// Cluster is the local stack's secured three-broker Kafka (test.sh's PURCHASESYNC_CLUSTER_* variables).
type Cluster struct {
	Brokers []string
	Env     []string // PURCHASESYNC_KAFKA_*=value lines for a subprocess (the CLUSTER_ prefix removed)
	Profile []string // stack.sh options of the profile, e.g. --kafka-brokers 3 --kafka-security sasl_ssl
	// mTLS client certificate and key files (signed by the cluster's CA; the brokers request a
	// client certificate but do not require one).
	ClientCert, ClientKey string
}

// defaultClusterProfile is test.sh's, for when PURCHASESYNC_CLUSTER_PROFILE is unset.
var defaultClusterProfile = []string{"--kafka-brokers", "3", "--kafka-security", "sasl_ssl"}

// KafkaCluster returns the secured three-broker Kafka of the local stack, or skips/fails like Kafka(t)
// when PURCHASESYNC_CLUSTER_KAFKA_BROKERS is unset or its first broker unreachable.
func KafkaCluster(t testing.TB) Cluster {
	t.Helper()
	c := clusterFromEnv(os.Environ())
	first := ""
	if len(c.Brokers) > 0 {
		first = c.Brokers[0]
	}
	needHow(t, "Kafka cluster", "PURCHASESYNC_CLUSTER_KAFKA_BROKERS", first, clusterHowTo)
	return c
}

// clusterFromEnv maps test.sh's PURCHASESYNC_CLUSTER_* variables (environ: os.Environ's form) to a Cluster.
func clusterFromEnv(environ []string) Cluster {
	const prefix = "PURCHASESYNC_CLUSTER_"
	var c Cluster
	seen := map[string]int{} // a later duplicate wins, as in a shell
	for _, kv := range environ {
		name, value, ok := strings.Cut(kv, "=")
		if !ok {
			continue
		}
		switch {
		case name == prefix+"PROFILE":
			c.Profile = strings.Fields(value)
		case name == prefix+"STACK_KAFKA_CLIENT_CERT":
			c.ClientCert = value
		case name == prefix+"STACK_KAFKA_CLIENT_KEY":
			c.ClientKey = value
		case strings.HasPrefix(name, prefix+"KAFKA_"):
			line := "PURCHASESYNC_" + strings.TrimPrefix(name, prefix) + "=" + value
			if i, dup := seen[name]; dup {
				c.Env[i] = line
			} else {
				seen[name] = len(c.Env)
				c.Env = append(c.Env, line)
			}
		}
	}
	sort.Strings(c.Env)
	if len(c.Profile) == 0 {
		c.Profile = append([]string(nil), defaultClusterProfile...)
	}
	for _, b := range strings.Split(c.Getenv("PURCHASESYNC_KAFKA_BROKERS"), ",") {
		if b = strings.TrimSpace(b); b != "" {
			c.Brokers = append(c.Brokers, b)
		}
	}
	return c
}

// Getenv is os.Getenv for a program configured for this cluster, usable wherever a getenv func is
// taken: a PURCHASESYNC_KAFKA_* name gets the cluster's value ("" if the cluster has none, so the
// single broker's settings never leak in); any other name is looked up in the process environment.
func (c Cluster) Getenv(name string) string { return scopedGetenv(c.Env, "PURCHASESYNC_KAFKA_", name) }

// scopedGetenv looks a name with prefix up in env only (KEY=value lines,
// "" when absent), and any other name in the process environment.
func scopedGetenv(env []string, prefix, name string) string {
	if !strings.HasPrefix(name, prefix) {
		return os.Getenv(name)
	}
	for _, kv := range env {
		if n, v, _ := strings.Cut(kv, "="); n == name {
			return v
		}
	}
	return ""
}

// Stack runs `bash deploy/local/stack.sh args...` (e.g. Stack(t, append([]string{"stop-kafka",
// "--node", "2"}, c.Profile...)...)) and fails the test if it fails, logging its stdout and stderr.
// Tests that stop a service must start it again.
func Stack(t testing.TB, args ...string) {
	t.Helper()
	cmd := exec.Command("bash", append([]string{filepath.Join(RepoRoot(), "deploy", "local", "stack.sh")}, args...)...)
	var stdout, stderr strings.Builder
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Logf("stack.sh %s stdout:\n%s", strings.Join(args, " "), stdout.String())
		t.Logf("stack.sh %s stderr:\n%s", strings.Join(args, " "), stderr.String())
		t.Fatalf("stack.sh %s: %v", strings.Join(args, " "), err)
	}
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

const chClusterHowTo = "run deploy/local/test.sh, which starts it with " +
	"`deploy/local/stack.sh up --clickhouse-replicas 2 --clickhouse-tls` and exports its lines with the prefix PURCHASESYNC_CHCLUSTER_"

// CHCluster is the local stack's two-replica ClickHouse over TLS with a password (test.sh's
// PURCHASESYNC_CHCLUSTER_* variables).
type CHCluster struct {
	Addrs   []string // secure native ports, one per replica
	HTTP    []string // plaintext HTTP URL of each replica (loopback), for checks behind the client's back
	Env     []string // PURCHASESYNC_CLICKHOUSE_*=value lines for a subprocess (the CHCLUSTER_ prefix removed)
	Profile []string // stack.sh options of the profile
}

// ClickHouseCluster returns the two-replica TLS ClickHouse of the local stack, or skips/fails like
// ClickHouse(t) when PURCHASESYNC_CHCLUSTER_CLICKHOUSE_ADDR is unset or its first address unreachable.
func ClickHouseCluster(t testing.TB) CHCluster {
	t.Helper()
	const prefix = "PURCHASESYNC_CHCLUSTER_"
	c := CHCluster{Profile: []string{"--clickhouse-replicas", "2", "--clickhouse-tls"}}
	for _, kv := range os.Environ() {
		name, value, _ := strings.Cut(kv, "=")
		switch {
		case name == prefix+"PROFILE":
			c.Profile = strings.Fields(value)
		case name == prefix+"STACK_CLICKHOUSE_HTTP_ALL":
			c.HTTP = strings.Split(value, ",")
		case strings.HasPrefix(name, prefix+"CLICKHOUSE_"):
			c.Env = append(c.Env, "PURCHASESYNC_"+strings.TrimPrefix(name, prefix)+"="+value)
		}
	}
	sort.Strings(c.Env)
	for _, a := range strings.Split(c.Getenv("PURCHASESYNC_CLICKHOUSE_ADDR"), ",") {
		if a = strings.TrimSpace(a); a != "" {
			c.Addrs = append(c.Addrs, a)
		}
	}
	first := ""
	if len(c.Addrs) > 0 {
		first = c.Addrs[0]
	}
	needHow(t, "ClickHouse cluster", prefix+"CLICKHOUSE_ADDR", first, chClusterHowTo)
	return c
}

// Getenv is os.Getenv for a program configured for this cluster: a PURCHASESYNC_CLICKHOUSE_* name
// gets the cluster's value ("" if it has none, so the single node's settings never leak in).
func (c CHCluster) Getenv(name string) string {
	return scopedGetenv(c.Env, "PURCHASESYNC_CLICKHOUSE_", name)
}

// CHClusterTLS is the TLS configuration of the cluster's clients: its throwaway CA.
func CHClusterTLS(t testing.TB, c CHCluster) *tls.Config {
	t.Helper()
	pem, err := os.ReadFile(c.Getenv("PURCHASESYNC_CLICKHOUSE_TLS_CAFILE"))
	if err != nil {
		t.Fatalf("the ClickHouse cluster's CA (PURCHASESYNC_CHCLUSTER_CLICKHOUSE_TLS_CAFILE): %v", err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pem) {
		t.Fatal("the ClickHouse cluster's CA file holds no certificate")
	}
	return &tls.Config{MinVersion: tls.VersionTLS12, RootCAs: pool}
}
