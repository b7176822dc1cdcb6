package kafkaconf

import (
	"context"
	"crypto/tls"
	"encoding/base64"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"purchasesync/cmd/kafkaconf/kafkaconftest"
	"purchasesync/deploy/testenv"
)

// The same cases as the kfake tests, against the stack's three-broker
// SASL_SSL cluster (testenv.KafkaCluster; deploy/local/test.sh exports its
// PURCHASESYNC_CLUSTER_* lines). Its brokers offer SCRAM-SHA-512,
// SCRAM-SHA-256, PLAIN and OAUTHBEARER (unsecured tokens), and request, but
// do not require, a client certificate.

// clusterConfig is the cluster's connection, as FromEnv reads it.
func clusterConfig(t *testing.T) (Config, testenv.Cluster) {
	t.Helper()
	cluster := testenv.KafkaCluster(t)
	c, err := FromEnv(cluster.Getenv)
	if err != nil {
		t.Fatalf("the cluster's PURCHASESYNC_KAFKA_* lines: %v", err)
	}
	if !c.TLS.On() || c.SASL.Mechanism == "" || len(c.Brokers) != 3 {
		t.Fatalf("the cluster's lines are not a three-broker SASL_SSL connection: brokers %v, TLS %v, SASL %q", c.Brokers, c.TLS.On(), c.SASL.Mechanism)
	}
	return c, cluster
}

func TestFunctionalCheck(t *testing.T) {
	base, _ := clusterConfig(t)
	noSecret := func(t *testing.T, err error) {
		t.Helper()
		if err != nil && strings.Contains(err.Error(), base.SASL.Password) {
			t.Errorf("the error contains the password: %v", err)
		}
	}
	with := func(change func(*Config)) Config {
		c := base
		change(&c)
		return c
	}
	ok := map[string]Config{
		"scram-sha-512":    base,
		"scram-sha-256":    with(func(c *Config) { c.SASL.Mechanism = MechanismSCRAMSHA256 }),
		"plain":            with(func(c *Config) { c.SASL.Mechanism = MechanismPlain }),
		"one broker":       with(func(c *Config) { c.Brokers = c.Brokers[2:] }),
		"one broker down":  with(func(c *Config) { c.Brokers = append([]string{"127.0.0.1:1"}, c.Brokers[0]) }),
		"server name":      with(func(c *Config) { c.Brokers, c.TLS.ServerName = c.Brokers[:1], "localhost" }),
		"TLS flag implied": with(func(c *Config) { c.TLS.Enabled = false }),
	}
	for name, c := range ok {
		t.Run(name, func(t *testing.T) {
			if err := check(t, c); err != nil {
				t.Fatal(err)
			}
		})
	}

	otherCA := kafkaconftest.NewCA(t, "not-the-cluster")
	bad := []struct {
		name string
		conf Config
		flag string
		is   error
	}{
		{"wrong password", with(func(c *Config) { c.SASL.Password = "hunter2-wrong" }), "-kafka.sasl.password", kerr.SaslAuthenticationFailed},
		{"wrong password, plain", with(func(c *Config) { c.SASL.Mechanism, c.SASL.Password = MechanismPlain, "hunter2-wrong" }), "-kafka.sasl.password", kerr.SaslAuthenticationFailed},
		{"unknown user", with(func(c *Config) { c.SASL.Username = "nobody" }), "-kafka.sasl.password", kerr.SaslAuthenticationFailed},
		{"wrong CA", with(func(c *Config) { c.TLS.CAFile = otherCA.File }), "-kafka.tls.caFile", nil},
		{"system roots", with(func(c *Config) { c.TLS.CAFile = "" }), "-kafka.tls.caFile", nil},
		{"wrong server name", with(func(c *Config) { c.TLS.ServerName = "kafka.invalid" }), "-kafka.tls.serverName", nil},
		{"plaintext, no SASL", Config{Brokers: base.Brokers}, "-kafka.tls", nil},
		{"plaintext with SASL", with(func(c *Config) { c.TLS = TLS{} }), "-kafka.tls", nil},
		{"TLS without SASL", with(func(c *Config) { c.SASL = SASL{} }), "-kafka.sasl.mechanism", nil},
		{"mechanism not offered", with(func(c *Config) {
			c.SASL = SASL{Mechanism: MechanismAWSMSKIAM}
			c.Getenv = func(k string) string {
				return map[string]string{EnvAWSAccessKeyID: "AKIA", EnvAWSSecretAccessKey: "x"}[k]
			}
		}), "-kafka.sasl.mechanism", kerr.UnsupportedSaslMechanism},
	}
	for _, b := range bad {
		t.Run(b.name, func(t *testing.T) {
			err := check(t, b.conf)
			wantConfigError(t, err, b.flag)
			if b.is != nil && !errors.Is(err, b.is) {
				t.Errorf("%v, want %v", err, b.is)
			}
			noSecret(t, err)
		})
	}
}

// TestFunctionalTLSAgainstPlaintext: TLS to the stack's plaintext broker.
func TestFunctionalTLSAgainstPlaintext(t *testing.T) {
	brokers := testenv.Kafka(t)
	err := check(t, Config{Brokers: brokers, TLS: TLS{Enabled: true}})
	wantConfigError(t, err, "-kafka.tls")
}

// TestFunctionalMutualTLS connects with the stack's client certificate (the
// brokers ask for one, so it is sent) and with one of another CA (refused).
func TestFunctionalMutualTLS(t *testing.T) {
	base, cluster := clusterConfig(t)
	if cluster.ClientCert == "" || cluster.ClientKey == "" {
		t.Fatal("the cluster has no client certificate (PURCHASESYNC_CLUSTER_STACK_KAFKA_CLIENT_CERT/_KEY)")
	}
	c := base
	c.TLS.CertFile, c.TLS.KeyFile = cluster.ClientCert, cluster.ClientKey
	if err := check(t, c); err != nil {
		t.Fatal(err)
	}
	// The certificate goes out: franz-go's handshakes call
	// GetClientCertificate only when the broker asks for one.
	tc, err := c.TLS.config()
	if err != nil {
		t.Fatal(err)
	}
	var asked atomic.Int32
	get := tc.GetClientCertificate
	tc.GetClientCertificate = func(r *tls.CertificateRequestInfo) (*tls.Certificate, error) {
		asked.Add(1)
		return get(r)
	}
	mech, err := c.mechanism()
	if err != nil {
		t.Fatal(err)
	}
	cl, err := kgo.NewClient(kgo.SeedBrokers(c.Brokers[0]), kgo.DialTLSConfig(tc), kgo.SASL(mech))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := cl.SeedBrokers()[0].Request(ctx, kmsg.NewPtrMetadataRequest()); err != nil {
		t.Fatal(err)
	}
	if asked.Load() == 0 {
		t.Error("the broker never asked for the client certificate")
	}

	other := kafkaconftest.NewCA(t, "other-clients")
	c.TLS.CertFile, c.TLS.KeyFile = kafkaconftest.WriteKeyPair(t, t.TempDir(), "client", other.Leaf(t, "intruder"))
	wantConfigError(t, check(t, c), "-kafka.tls.certFile")
}

// TestFunctionalOAuthBearer: an unsecured token from -kafka.sasl.tokenFile;
// a refused token names the flag, and a fixed file is used by the next
// authentication of the same client, without a restart.
func TestFunctionalOAuthBearer(t *testing.T) {
	base, _ := clusterConfig(t)
	tokenFile := filepath.Join(t.TempDir(), "token")
	write := func(s string) {
		t.Helper()
		if err := os.WriteFile(tokenFile, []byte(s+"\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		later := time.Now().Add(time.Duration(len(s)) * time.Second) // another stamp whatever the size
		os.Chtimes(tokenFile, later, later)
	}
	write(unsecuredJWT("purchasesync", time.Hour))
	c := base
	c.SASL = SASL{Mechanism: MechanismOAuthBearer, TokenFile: tokenFile}
	if err := check(t, c); err != nil {
		t.Fatal(err)
	}
	write(unsecuredJWT("purchasesync", -time.Hour)) // expired
	err := check(t, c)
	wantConfigError(t, err, "-kafka.sasl.tokenFile")
	if !errors.Is(err, kerr.SaslAuthenticationFailed) {
		t.Errorf("%v, want SASL_AUTHENTICATION_FAILED", err)
	}

	opts, err := c.Opts() // one mechanism for both connections
	if err != nil {
		t.Fatal(err)
	}
	cl, err := kgo.NewClient(append(opts, kgo.SeedBrokers(c.Brokers[0]))...)
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	metadata := func() error {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_, err := cl.SeedBrokers()[0].Request(ctx, kmsg.NewPtrMetadataRequest())
		return err
	}
	if err := metadata(); !errors.Is(err, kerr.SaslAuthenticationFailed) {
		t.Fatalf("expired token: %v", err)
	}
	write(unsecuredJWT("purchasesync", 2*time.Hour)) // refreshed by a sidecar
	if err := metadata(); err != nil {
		t.Fatalf("after the refresh: %v", err)
	}
}

// unsecuredJWT is a token for Kafka's unsecured OAUTHBEARER validator
// (alg "none"), valid from a minute ago for life.
func unsecuredJWT(sub string, life time.Duration) string {
	enc := base64.RawURLEncoding.EncodeToString
	now := time.Now()
	claims := fmt.Sprintf(`{"sub":%q,"iat":%d,"exp":%d}`, sub, now.Add(-time.Minute).Unix(), now.Add(life).Unix())
	return enc([]byte(`{"alg":"none"}`)) + "." + enc([]byte(claims)) + "."
}
