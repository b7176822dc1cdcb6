package kafkaconf

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"

	"purchasesync/cmd/kafkaconf/kafkaconftest"
)

const (
	scramUser, scramPass = "app", "s3cret-scram"
	plainUser, plainPass = "plainapp", "s3cret-plain"
)

// cluster starts a one-broker kfake with opts.
func cluster(t *testing.T, opts ...kfake.Opt) []string {
	t.Helper()
	c, err := kfake.NewCluster(append([]kfake.Opt{kfake.NumBrokers(1)}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	return c.ListenAddrs()
}

// saslOpts enable SASL with a SCRAM-SHA-512, a SCRAM-SHA-256 and a PLAIN user.
func saslOpts() []kfake.Opt {
	return []kfake.Opt{kfake.EnableSASL(),
		kfake.Superuser("SCRAM-SHA-512", scramUser, scramPass),
		kfake.Superuser("SCRAM-SHA-256", scramUser, scramPass),
		kfake.Superuser("PLAIN", plainUser, plainPass)}
}

func check(t *testing.T, c Config) error {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	start := time.Now()
	err := c.Check(ctx)
	t.Logf("Check: %v (%s)", err, time.Since(start).Round(time.Millisecond))
	return err
}

// wantConfigError asserts err is a one-line *ConfigError naming flag,
// without any password.
func wantConfigError(t *testing.T, err error, flag string) {
	t.Helper()
	var ce *ConfigError
	if !errors.As(err, &ce) {
		t.Fatalf("%v (%T), want a *ConfigError naming %s", err, err, flag)
	}
	if ce.Flag != flag || !strings.Contains(ce.Error(), flag) {
		t.Errorf("%q names %q, want %s", ce.Error(), ce.Flag, flag)
	}
	if errors.Is(err, ErrUnreachable) {
		t.Errorf("%v is also ErrUnreachable", err)
	}
	noSecret(t, err.Error())
}

func noSecret(t *testing.T, msg string) {
	t.Helper()
	if strings.Contains(msg, "\n") {
		t.Errorf("message on several lines: %q", msg)
	}
	for _, s := range []string{scramPass, plainPass, "wrong-password"} {
		if strings.Contains(msg, s) {
			t.Errorf("message contains a password: %q", msg)
		}
	}
}

func TestCheckSASL(t *testing.T) {
	brokers := cluster(t, saslOpts()...)
	for _, c := range []struct {
		mech, user, pass string
	}{
		{"scram-sha-512", scramUser, scramPass},
		{"scram-sha-256", scramUser, scramPass},
		{"plain", plainUser, plainPass},
	} {
		t.Run(c.mech, func(t *testing.T) {
			conf := Config{Brokers: brokers, SASL: SASL{Mechanism: c.mech, Username: c.user, Password: c.pass}}
			if err := check(t, conf); err != nil {
				t.Fatalf("right password: %v", err)
			}
			conf.SASL.Password = "wrong-password"
			err := check(t, conf)
			wantConfigError(t, err, "-kafka.sasl.password")
			if !strings.Contains(err.Error(), "-kafka.sasl.username") || !strings.Contains(err.Error(), fmt.Sprintf("%q", c.user)) {
				t.Errorf("%v: want the user and -kafka.sasl.username", err)
			}
		})
	}
	// A mechanism the listener does not offer.
	tokenFile := filepath.Join(t.TempDir(), "token")
	os.WriteFile(tokenFile, []byte("tok"), 0o600)
	err := check(t, Config{Brokers: brokers, SASL: SASL{Mechanism: "oauthbearer", TokenFile: tokenFile}})
	wantConfigError(t, err, "-kafka.sasl.mechanism")
	if !errors.Is(err, kerr.UnsupportedSaslMechanism) || !strings.Contains(err.Error(), "OAUTHBEARER") {
		t.Errorf("%v: want UNSUPPORTED_SASL_MECHANISM for OAUTHBEARER", err)
	}
	// No SASL against a SASL listener. (TLS against kfake's plaintext
	// listener gets no answer, unlike Kafka's: see
	// TestCheckTLSAgainstPlaintext.)
	wantConfigError(t, check(t, Config{Brokers: brokers}), "-kafka.sasl.mechanism")
}

func TestCheckTLS(t *testing.T) {
	ca := kafkaconftest.NewCA(t, "ca")
	brokers := cluster(t, kfake.TLS(ca.ServerTLS(t, nil)))
	if err := check(t, Config{Brokers: brokers, TLS: TLS{CAFile: ca.File}}); err != nil {
		t.Fatalf("the right CA: %v", err)
	}
	if err := check(t, Config{Brokers: brokers, TLS: TLS{CAFile: ca.File, ServerName: "kafka-1"}}); err != nil {
		t.Fatalf("the certificate's server name: %v", err)
	}
	// Another CA, and the system roots.
	wantConfigError(t, check(t, Config{Brokers: brokers, TLS: TLS{CAFile: kafkaconftest.NewCA(t, "other").File}}), "-kafka.tls.caFile")
	wantConfigError(t, check(t, Config{Brokers: brokers, TLS: TLS{Enabled: true}}), "-kafka.tls.caFile")
	// A name the certificate is not for.
	err := check(t, Config{Brokers: brokers, TLS: TLS{CAFile: ca.File, ServerName: "kafka-2"}})
	wantConfigError(t, err, "-kafka.tls.serverName")
	if !strings.Contains(err.Error(), "kafka-2") {
		t.Errorf("%v: want the name", err)
	}
	// Plaintext against TLS.
	wantConfigError(t, check(t, Config{Brokers: brokers}), "-kafka.tls")
	wantConfigError(t, check(t, Config{Brokers: brokers, SASL: SASL{Mechanism: "plain", Username: "u", Password: "wrong-password"}}), "-kafka.tls")
}

// TestCheckSASLSSL: SASL over TLS, and each half missing.
func TestCheckSASLSSL(t *testing.T) {
	ca := kafkaconftest.NewCA(t, "ca")
	brokers := cluster(t, append(saslOpts(), kfake.TLS(ca.ServerTLS(t, nil)))...)
	ok := Config{Brokers: brokers, TLS: TLS{CAFile: ca.File}, SASL: SASL{Mechanism: "scram-sha-512", Username: scramUser, Password: scramPass}}
	if err := check(t, ok); err != nil {
		t.Fatal(err)
	}
	noSASL := ok
	noSASL.SASL = SASL{}
	wantConfigError(t, check(t, noSASL), "-kafka.sasl.mechanism")
	noTLS := ok
	noTLS.TLS = TLS{}
	wantConfigError(t, check(t, noTLS), "-kafka.tls")
	wantConfigError(t, check(t, Config{Brokers: brokers}), "-kafka.tls")
}

func TestCheckMutualTLS(t *testing.T) {
	ca, clients := kafkaconftest.NewCA(t, "ca"), kafkaconftest.NewCA(t, "clients")
	brokers := cluster(t, kfake.TLS(ca.ServerTLS(t, clients)))
	dir := t.TempDir()
	certFile, keyFile := kafkaconftest.WriteKeyPair(t, dir, "client", clients.Leaf(t, "client"))
	if err := check(t, Config{Brokers: brokers, TLS: TLS{CAFile: ca.File, CertFile: certFile, KeyFile: keyFile}}); err != nil {
		t.Fatalf("mutual TLS: %v", err)
	}
	wantConfigError(t, check(t, Config{Brokers: brokers, TLS: TLS{CAFile: ca.File}}), "-kafka.tls.certFile")
	otherCert, otherKey := kafkaconftest.WriteKeyPair(t, dir, "other", kafkaconftest.NewCA(t, "other").Leaf(t, "client"))
	wantConfigError(t, check(t, Config{Brokers: brokers, TLS: TLS{CAFile: ca.File, CertFile: otherCert, KeyFile: otherKey}}), "-kafka.tls.certFile")
}

// listen serves each connection with serve on a loopback port.
func listen(t *testing.T, serve func(net.Conn)) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				serve(c)
			}()
		}
	}()
	return ln.Addr().String()
}

// TestCheckTLSAgainstPlaintext: a Kafka plaintext listener closes a
// connection whose first bytes (a TLS ClientHello) are no request; another
// server may answer in plaintext.
func TestCheckTLSAgainstPlaintext(t *testing.T) {
	closes := listen(t, func(c net.Conn) { c.Read(make([]byte, 4096)) })
	wantConfigError(t, check(t, Config{Brokers: []string{closes}, TLS: TLS{Enabled: true}}), "-kafka.tls")
	answers := listen(t, func(c net.Conn) {
		c.Read(make([]byte, 4096))
		c.Write([]byte("\x00\x00\x00\x10not a TLS record"))
	})
	err := check(t, Config{Brokers: []string{answers}, TLS: TLS{Enabled: true}})
	wantConfigError(t, err, "-kafka.tls")
	if !strings.Contains(err.Error(), "first record does not look like a TLS handshake") {
		t.Errorf("%v: want crypto/tls's reason", err)
	}
}

// TestCheckUnreachable: refused connections and silence are not
// configuration errors; a broker that answers wins over one that is down.
func TestCheckUnreachable(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	refused := ln.Addr().String()
	ln.Close()
	start := time.Now()
	err = check(t, Config{Brokers: []string{refused}, SASL: SASL{Mechanism: "plain", Username: "u", Password: "wrong-password"}})
	var ce *ConfigError
	if !errors.Is(err, ErrUnreachable) || errors.As(err, &ce) || !strings.Contains(err.Error(), refused) || !strings.Contains(err.Error(), "-kafka.brokers") {
		t.Errorf("refused: %v, want ErrUnreachable naming the broker and -kafka.brokers", err)
	}
	noSecret(t, err.Error())
	if took := time.Since(start); took > 2*time.Second {
		t.Errorf("refused took %s", took)
	}

	silent := listen(t, func(c net.Conn) { io.Copy(io.Discard, c) })
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	if err := (Config{Brokers: []string{silent}}).Check(ctx); !errors.Is(err, ErrUnreachable) || !strings.Contains(err.Error(), "no answer within 300ms") {
		t.Errorf("silent broker, the caller's deadline: %v, want ErrUnreachable after 300ms", err)
	}
	ctx, cancel = context.WithCancel(context.Background())
	cancel()
	if err := (Config{Brokers: []string{silent}}).Check(ctx); !errors.Is(err, context.Canceled) {
		t.Errorf("cancelled: %v", err)
	}

	if err := check(t, Config{Brokers: append([]string{refused}, cluster(t)...)}); err != nil {
		t.Errorf("one broker down, one up: %v", err)
	}
}

// TestFailuresDefaultPort: a broker given without a port is found under
// franz-go's default one.
func TestFailuresDefaultPort(t *testing.T) {
	f := &failures{}
	f.OnBrokerE2E(kgo.BrokerMetadata{Host: "kafka1", Port: 9092}, keySASLAuthenticate, kgo.BrokerE2E{ReadErr: io.EOF})
	f.OnBrokerConnect(kgo.BrokerMetadata{Host: "kafka1", Port: 9092}, 0, nil, io.EOF)
	f.OnBrokerConnect(kgo.BrokerMetadata{Host: "kafka2", Port: 9093}, 0, nil, io.EOF)
	if k := f.last("kafka1"); k != keySASLAuthenticate {
		t.Errorf("kafka1: key %d, want SASLAuthenticate, not overwritten by the connect", k)
	}
	if k := f.last("kafka2:9093"); k != keyDial {
		t.Errorf("kafka2:9093: key %d, want the dial", k)
	}
}

// TestClassify covers what kfake does not send: real Kafka's refusals.
func TestClassify(t *testing.T) {
	wrap := func(e error) error { return fmt.Errorf("%w: Authentication failed", e) }
	for _, c := range []struct {
		conf Config
		err  error
		key  int16
		flag string
	}{
		{Config{SASL: SASL{Mechanism: "scram-sha-512", Username: "u", Password: "wrong-password"}}, wrap(kerr.SaslAuthenticationFailed), keySASLAuthenticate, "-kafka.sasl.password"},
		{Config{SASL: SASL{Mechanism: "oauthbearer"}}, wrap(kerr.SaslAuthenticationFailed), keySASLAuthenticate, "-kafka.sasl.tokenFile"},
		{Config{SASL: SASL{Mechanism: "aws-msk-iam"}}, wrap(kerr.SaslAuthenticationFailed), keySASLAuthenticate, "AWS_ACCESS_KEY_ID"},
		{Config{SASL: SASL{Mechanism: "plain"}}, kerr.IllegalSaslState, keySASLHandshake, "-kafka.sasl.mechanism"},
		{Config{SASL: SASL{Mechanism: "plain"}}, kerr.UnsupportedSaslMechanism, keySASLHandshake, "-kafka.sasl.mechanism"},
		{Config{}, errors.New("invalid large response size 352518912 > limit 104857600; the first three bytes received appear to be a tls alert record for TLS v1.2; is this a plaintext connection speaking to a tls endpoint?"), keyAPIVersions, "-kafka.tls"},
		{Config{}, errors.New("invalid large response size 1213486160 > limit 104857600; the four size bytes are 'HTTP' in ascii, the beginning of an HTTP response; is your broker port correct?"), keyAPIVersions, "-kafka.brokers"},
		{Config{SASL: SASL{Mechanism: "aws-msk-iam"}}, errors.New("cannot determine the region in \"127.0.0.1\""), keySASLAuthenticate, "-kafka.brokers"},
	} {
		err := c.conf.classify("b:1", c.err, c.key)
		wantConfigError(t, err, c.flag)
	}
	for _, err := range []error{context.DeadlineExceeded, errors.New("unable to dial: dial tcp: lookup nope: no such host"), io.EOF} {
		if got := (Config{TLS: TLS{Enabled: true}, SASL: SASL{Mechanism: "plain"}}).classify("b:1", err, keyMetadata); got != nil {
			t.Errorf("classify(%v) = %v, want nil: not a configuration error", err, got)
		}
	}
}
