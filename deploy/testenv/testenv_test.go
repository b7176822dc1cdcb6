package testenv

import (
	"reflect"
	"testing"
)

// The PURCHASESYNC_CLUSTER_* variables of test.sh map to a Cluster; needs no stack.
func TestClusterFromEnv(t *testing.T) {
	t.Setenv("PURCHASESYNC_CLICKHOUSE_ADDR", "127.0.0.1:19000")
	c := clusterFromEnv([]string{
		"PATH=/usr/bin",
		"PURCHASESYNC_KAFKA_BROKERS=127.0.0.1:19092", // the single broker's: must not leak in
		"PURCHASESYNC_KAFKA_SASL_USERNAME=someone-else",
		"PURCHASESYNC_CLUSTER_KAFKA_BROKERS=127.0.0.1:19392, 127.0.0.1:19402,127.0.0.1:19412,",
		"PURCHASESYNC_CLUSTER_KAFKA_TLS=true",
		"PURCHASESYNC_CLUSTER_KAFKA_TLS_CAFILE=/state/tls/ca.pem",
		"PURCHASESYNC_CLUSTER_KAFKA_SASL_MECHANISM=scram-sha-512",
		"PURCHASESYNC_CLUSTER_KAFKA_SASL_USERNAME=purchasesync",
		"PURCHASESYNC_CLUSTER_KAFKA_SASL_PASSWORD=first",
		"PURCHASESYNC_CLUSTER_KAFKA_SASL_PASSWORD=pw=with=equals", // a later duplicate wins
		"PURCHASESYNC_CLUSTER_STACK_KAFKA_CLIENT_CERT=/state/tls/client.crt",
		"PURCHASESYNC_CLUSTER_STACK_KAFKA_CLIENT_KEY=/state/tls/client.key",
		"PURCHASESYNC_CLUSTER_PROFILE=--kafka-brokers 3  --kafka-security sasl_ssl",
		"PURCHASESYNC_CLUSTER_OTHER=ignored",
		"MALFORMED",
	})
	if want := []string{"127.0.0.1:19392", "127.0.0.1:19402", "127.0.0.1:19412"}; !reflect.DeepEqual(c.Brokers, want) {
		t.Errorf("Brokers = %q, want %q", c.Brokers, want)
	}
	wantEnv := []string{
		"PURCHASESYNC_KAFKA_BROKERS=127.0.0.1:19392, 127.0.0.1:19402,127.0.0.1:19412,",
		"PURCHASESYNC_KAFKA_SASL_MECHANISM=scram-sha-512",
		"PURCHASESYNC_KAFKA_SASL_PASSWORD=pw=with=equals",
		"PURCHASESYNC_KAFKA_SASL_USERNAME=purchasesync",
		"PURCHASESYNC_KAFKA_TLS=true",
		"PURCHASESYNC_KAFKA_TLS_CAFILE=/state/tls/ca.pem",
	}
	if !reflect.DeepEqual(c.Env, wantEnv) {
		t.Errorf("Env = %q, want %q", c.Env, wantEnv)
	}
	if want := []string{"--kafka-brokers", "3", "--kafka-security", "sasl_ssl"}; !reflect.DeepEqual(c.Profile, want) {
		t.Errorf("Profile = %q, want %q", c.Profile, want)
	}
	if c.ClientCert != "/state/tls/client.crt" || c.ClientKey != "/state/tls/client.key" {
		t.Errorf("ClientCert, ClientKey = %q, %q", c.ClientCert, c.ClientKey)
	}
	for name, want := range map[string]string{
		"PURCHASESYNC_KAFKA_SASL_PASSWORD": "pw=with=equals",
		"PURCHASESYNC_KAFKA_TLS":           "true",
		"PURCHASESYNC_KAFKA_TLS_CERTFILE":  "",                // absent in the cluster: empty, never the process's
		"PURCHASESYNC_CLICKHOUSE_ADDR":     "127.0.0.1:19000", // not Kafka: the process environment
	} {
		if got := c.Getenv(name); got != want {
			t.Errorf("Getenv(%s) = %q, want %q", name, got, want)
		}
	}
	var getenv func(string) string = c.Getenv // usable as a getenv func
	_ = getenv
}

func TestClusterFromEnvDefaults(t *testing.T) {
	c := clusterFromEnv([]string{"PURCHASESYNC_KAFKA_BROKERS=127.0.0.1:19092"})
	if len(c.Brokers) != 0 || len(c.Env) != 0 {
		t.Errorf("no cluster variables: Brokers %q, Env %q", c.Brokers, c.Env)
	}
	if want := []string{"--kafka-brokers", "3", "--kafka-security", "sasl_ssl"}; !reflect.DeepEqual(c.Profile, want) {
		t.Errorf("Profile = %q, want test.sh's %q", c.Profile, want)
	}
	if got := c.Getenv("PURCHASESYNC_KAFKA_BROKERS"); got != "" {
		t.Errorf("Getenv(PURCHASESYNC_KAFKA_BROKERS) = %q, want empty", got)
	}
}
