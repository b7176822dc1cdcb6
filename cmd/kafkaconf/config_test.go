package kafkaconf

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"io"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"purchasesync/cmd/envflag"
	"purchasesync/cmd/kafkaconf/kafkaconftest"
)

// configFrom parses args with env as the environment.
func configFrom(t *testing.T, env map[string]string, args ...string) (Config, error) {
	t.Helper()
	fs := envflag.New("test", func(k string) string { return env[k] })
	fs.SetOutput(&bytes.Buffer{})
	f := AddFlags(fs, "purchasesync")
	if err := fs.Parse(args); err != nil {
		return Config{}, err
	}
	return f.Config()
}

func TestFlags(t *testing.T) {
	c, err := configFrom(t, nil)
	if err != nil || !reflect.DeepEqual(c.Brokers, []string{DefaultBrokers}) || c.ClientID != "purchasesync" || c.TLS.On() || c.SASL.Mechanism != "" {
		t.Fatalf("defaults: %+v %v", c, err)
	}
	env := map[string]string{
		"PURCHASESYNC_KAFKA_BROKERS":        "a:9093, b:9093",
		"PURCHASESYNC_KAFKA_TLS_CAFILE":     "/ca.pem",
		"PURCHASESYNC_KAFKA_SASL_MECHANISM": "SCRAM-SHA-512", // Kafka's spelling is accepted
		"PURCHASESYNC_KAFKA_SASL_USERNAME":  "env-user",
		"PURCHASESYNC_KAFKA_SASL_PASSWORD":  "pw",
	}
	c, err = configFrom(t, env, "-kafka.sasl.username", "flag-user")
	if err != nil {
		t.Fatal(err)
	}
	want := TLS{CAFile: "/ca.pem"}
	if !reflect.DeepEqual(c.Brokers, []string{"a:9093", "b:9093"}) || c.TLS != want || !c.TLS.On() ||
		c.SASL.Username != "flag-user" || c.SASL.Password != "pw" || c.SASL.mechanism() != MechanismSCRAMSHA512 {
		t.Errorf("from the environment, the flag winning: %+v", c)
	}
	// Every -kafka.tls.* implies TLS.
	for _, args := range [][]string{{"-kafka.tls"}, {"-kafka.tls.serverName", "kafka"}, {"-kafka.tls.certFile", "c", "-kafka.tls.keyFile", "k"}} {
		if c, err := configFrom(t, nil, args...); err != nil || !c.TLS.On() {
			t.Errorf("%q: TLS on %v, %v", args, c.TLS.On(), err)
		}
	}
}

// TestFlagErrors: each error names the flag to change.
func TestFlagErrors(t *testing.T) {
	f := func(env map[string]string, args []string, want ...string) {
		t.Helper()
		_, err := configFrom(t, env, args...)
		if err == nil {
			t.Errorf("%q %v: no error, want one naming %q", args, env, want)
			return
		}
		for _, w := range want {
			if !strings.Contains(err.Error(), w) {
				t.Errorf("%q %v: %v, want it to name %q", args, env, err, w)
			}
		}
		if strings.Contains(err.Error(), "\n") {
			t.Errorf("%q: error on several lines: %q", args, err)
		}
	}
	f(nil, []string{"-kafka.brokers", " , "}, "-kafka.brokers", "PURCHASESYNC_KAFKA_BROKERS")
	f(nil, []string{"-kafka.sasl.mechanism", "gssapi"}, "-kafka.sasl.mechanism", "plain, scram-sha-256, scram-sha-512, oauthbearer, aws-msk-iam")
	f(nil, []string{"-kafka.sasl.mechanism", "plain", "-kafka.sasl.password", "p"}, "-kafka.sasl.username")
	f(nil, []string{"-kafka.sasl.mechanism", "scram-sha-256", "-kafka.sasl.username", "u"}, "-kafka.sasl.password", "PURCHASESYNC_KAFKA_SASL_PASSWORD_FILE")
	f(nil, []string{"-kafka.sasl.username", "u"}, "-kafka.sasl.mechanism")
	f(map[string]string{"PURCHASESYNC_KAFKA_SASL_PASSWORD": "p"}, nil, "-kafka.sasl.password", "-kafka.sasl.mechanism")
	f(nil, []string{"-kafka.sasl.tokenFile", "t"}, "-kafka.sasl.mechanism", "oauthbearer")
	f(nil, []string{"-kafka.sasl.mechanism", "oauthbearer"}, "-kafka.sasl.tokenFile")
	f(nil, []string{"-kafka.sasl.mechanism", "oauthbearer", "-kafka.sasl.tokenFile", "t", "-kafka.sasl.username", "u"}, "-kafka.sasl.username")
	f(nil, []string{"-kafka.sasl.mechanism", "plain", "-kafka.sasl.username", "u", "-kafka.sasl.password", "p", "-kafka.sasl.tokenFile", "t"}, "-kafka.sasl.tokenFile")
	f(nil, []string{"-kafka.sasl.mechanism", "aws-msk-iam"}, "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY")
	f(nil, []string{"-kafka.tls.certFile", "c"}, "-kafka.tls.certFile", "-kafka.tls.keyFile")
	f(nil, []string{"-kafka.tls=false", "-kafka.tls.caFile", "ca"}, "-kafka.tls=false", "-kafka.tls.caFile")
	f(map[string]string{"PURCHASESYNC_KAFKA_TLS": "no"}, []string{"-kafka.tls.serverName", "k"}, "-kafka.tls=false", "-kafka.tls.serverName")
	f(map[string]string{"PURCHASESYNC_KAFKA_TLS": "maybe"}, nil, "PURCHASESYNC_KAFKA_TLS")
}

// TestPasswordFile: PURCHASESYNC_KAFKA_SASL_PASSWORD_FILE holds the
// password (a mounted Kubernetes secret); both variables set is an error.
func TestPasswordFile(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "password")
	if err := os.WriteFile(file, []byte("from-file\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	env := map[string]string{
		"PURCHASESYNC_KAFKA_SASL_MECHANISM":     "plain",
		"PURCHASESYNC_KAFKA_SASL_USERNAME":      "u",
		"PURCHASESYNC_KAFKA_SASL_PASSWORD_FILE": file,
	}
	if c, err := configFrom(t, env); err != nil || c.SASL.Password != "from-file" {
		t.Fatalf("password %q, %v; want from-file without the newline", c.SASL.Password, err)
	}
	if c, err := configFrom(t, env, "-kafka.sasl.password", "flag"); err != nil || c.SASL.Password != "flag" {
		t.Errorf("the flag does not win: %q %v", c.SASL.Password, err)
	}
	env["PURCHASESYNC_KAFKA_SASL_PASSWORD"] = "from-env"
	_, err := configFrom(t, env)
	if err == nil || !strings.Contains(err.Error(), "PURCHASESYNC_KAFKA_SASL_PASSWORD and PURCHASESYNC_KAFKA_SASL_PASSWORD_FILE") ||
		strings.Contains(err.Error(), "from-") {
		t.Errorf("both set: %v, want an error naming both variables and no value", err)
	}
	delete(env, "PURCHASESYNC_KAFKA_SASL_PASSWORD")
	env["PURCHASESYNC_KAFKA_SASL_PASSWORD_FILE"] = filepath.Join(dir, "missing")
	if _, err := configFrom(t, env); err == nil || !strings.Contains(err.Error(), "PURCHASESYNC_KAFKA_SASL_PASSWORD_FILE") {
		t.Errorf("missing file: %v", err)
	}
}

// TestSecretNeverShown: neither -h nor any error quotes the password, from
// the environment or from its file.
func TestSecretNeverShown(t *testing.T) {
	const secret = "hunter2-kafka"
	file := filepath.Join(t.TempDir(), "pw")
	if err := os.WriteFile(file, []byte(secret+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, env := range []map[string]string{
		{"PURCHASESYNC_KAFKA_SASL_PASSWORD": secret},
		{"PURCHASESYNC_KAFKA_SASL_PASSWORD_FILE": file},
	} {
		var help bytes.Buffer
		fs := envflag.New("test", func(k string) string { return env[k] })
		fs.SetOutput(&help)
		f := AddFlags(fs, "x")
		if err := fs.Parse([]string{"-h"}); err == nil {
			t.Fatal("-h: no ErrHelp")
		}
		if strings.Contains(help.String(), secret) || !strings.Contains(help.String(), "PURCHASESYNC_KAFKA_SASL_PASSWORD_FILE") {
			t.Errorf("-h shows the password or omits its _FILE variable:\n%s", help.String())
		}
		if c, err := f.Config(); err == nil || c.SASL.Password != secret || strings.Contains(err.Error(), secret) {
			t.Errorf("password without mechanism: %v (password %v)", err, c.SASL.Password == secret)
		}
		var errs []error
		for _, args := range [][]string{
			{"-kafka.sasl.mechanism", "nope"},
			{"-kafka.sasl.mechanism", "plain"},
			{"-kafka.sasl.mechanism", "oauthbearer"},
			{"-kafka.sasl.mechanism", "aws-msk-iam"},
		} {
			_, err := configFrom(t, env, args...)
			errs = append(errs, err)
		}
		// The broker's refusal, as Check reports it.
		c := Config{Brokers: []string{"b:1"}, SASL: SASL{Mechanism: "plain", Username: "u", Password: secret}}
		errs = append(errs, c.classify("b:1", io.EOF, keySASLAuthenticate),
			c.refused("b:1", errors.New("SASL_AUTHENTICATION_FAILED"), "SASL_AUTHENTICATION_FAILED"))
		for _, err := range errs {
			if err == nil || strings.Contains(err.Error(), secret) {
				t.Errorf("error %v: want one, without the password", err)
			}
		}
	}
}

func TestEnvironRoundTrip(t *testing.T) {
	c := Config{
		Brokers: []string{"127.0.0.1:1", "127.0.0.1:2"}, ClientID: "id",
		TLS:  TLS{CAFile: "/ca", CertFile: "/c", KeyFile: "/k", ServerName: "kafka"},
		SASL: SASL{Mechanism: "scram-sha-512", Username: "u", Password: "p,=\n x"},
	}
	env := map[string]string{
		// Inherited by a child: Environ must override both.
		"PURCHASESYNC_KAFKA_SASL_PASSWORD_FILE": "/elsewhere",
		"PURCHASESYNC_KAFKA_SASL_TOKENFILE":     "/token",
	}
	for _, kv := range c.Environ() {
		k, v, _ := strings.Cut(kv, "=")
		env[k] = v
	}
	got, err := FromEnv(func(k string) string { return env[k] })
	if err != nil {
		t.Fatal(err)
	}
	got.Getenv = nil
	c.TLS.Enabled = true
	if !reflect.DeepEqual(got, c) {
		t.Errorf("FromEnv(Environ()) = %+v, want %+v", got, c)
	}
}

// TestMechanisms builds each mechanism and runs its first step, as franz-go
// does at each authentication.
func TestMechanisms(t *testing.T) {
	ctx := context.Background()
	first := func(c Config, host string) (string, []byte, error) {
		t.Helper()
		m, err := c.mechanism()
		if err != nil {
			t.Fatal(err)
		}
		_, msg, err := m.Authenticate(ctx, host)
		return m.Name(), msg, err
	}
	name, msg, err := first(Config{SASL: SASL{Mechanism: "plain", Username: "u", Password: "p"}}, "h:1")
	if name != "PLAIN" || string(msg) != "\x00u\x00p" || err != nil {
		t.Errorf("plain: %s %q %v", name, msg, err)
	}
	for mech, want := range map[string]string{"scram-sha-256": "SCRAM-SHA-256", "scram-sha-512": "SCRAM-SHA-512"} {
		name, msg, err := first(Config{SASL: SASL{Mechanism: mech, Username: "u", Password: "p"}}, "h:1")
		if name != want || !strings.HasPrefix(string(msg), "n,,n=u,r=") || err != nil {
			t.Errorf("%s: %s %q %v", mech, name, msg, err)
		}
	}
	if m, err := (Config{}).mechanism(); m != nil || err != nil {
		t.Errorf("no SASL: %v %v", m, err)
	}

	// OAUTHBEARER: the token file is read at each authentication once it
	// changed.
	tokenFile := filepath.Join(t.TempDir(), "token")
	write := func(s string) {
		if err := os.WriteFile(tokenFile, []byte(s), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	write("token-1\n")
	oc := Config{SASL: SASL{Mechanism: "oauthbearer", TokenFile: tokenFile}}
	m, err := oc.mechanism()
	if err != nil {
		t.Fatal(err)
	}
	token := func() string {
		t.Helper()
		_, msg, err := m.Authenticate(ctx, "h:1")
		if err != nil {
			t.Fatal(err)
		}
		return strings.TrimSuffix(strings.TrimPrefix(string(msg), "n,,\x01auth=Bearer "), "\x01\x01")
	}
	if tok := token(); m.Name() != "OAUTHBEARER" || tok != "token-1" {
		t.Errorf("oauthbearer: %s %q", m.Name(), tok)
	}
	write("token-22\n") // another size
	if tok := token(); tok != "token-22" {
		t.Errorf("after a refresh: %q, want token-22", tok)
	}
	write("token-33\n") // same size, later modification time
	later := time.Now().Add(time.Minute)
	if err := os.Chtimes(tokenFile, later, later); err != nil {
		t.Fatal(err)
	}
	if tok := token(); tok != "token-33" {
		t.Errorf("after a same-size refresh: %q, want token-33", tok)
	}
	write("") // mid-rotation: the token read before stays
	if tok := token(); tok != "token-33" {
		t.Errorf("empty file: %q, want the previous token", tok)
	}
	oc.SASL.TokenFile = filepath.Join(t.TempDir(), "missing")
	if _, err := oc.mechanism(); err == nil || !strings.Contains(err.Error(), "-kafka.sasl.tokenFile") {
		t.Errorf("missing token file: %v", err)
	}

	// AWS_MSK_IAM: the credentials are read at each authentication.
	const msk = "b-1.demo.abc123.c2.kafka.eu-west-1.amazonaws.com:9098"
	env := map[string]string{EnvAWSAccessKeyID: "AKIA1", EnvAWSSecretAccessKey: "s1"}
	ac := Config{Brokers: []string{msk}, SASL: SASL{Mechanism: "aws-msk-iam"}, Getenv: func(k string) string { return env[k] }}
	if err := ac.Validate(); err != nil {
		t.Fatal(err)
	}
	signed := func() map[string]string {
		t.Helper()
		name, msg, err := first(ac, msk)
		if err != nil || name != "AWS_MSK_IAM" {
			t.Fatalf("aws-msk-iam: %s %v", name, err)
		}
		var m map[string]string
		if err := json.Unmarshal(msg, &m); err != nil {
			t.Fatal(err)
		}
		return m
	}
	if m := signed(); !strings.HasPrefix(m["x-amz-credential"], "AKIA1/") || m["x-amz-security-token"] != "" || !strings.Contains(m["x-amz-credential"], "eu-west-1") {
		t.Errorf("aws-msk-iam: %v", m)
	}
	env[EnvAWSAccessKeyID], env[EnvAWSSessionToken] = "AKIA2", "session"
	if m := signed(); !strings.HasPrefix(m["x-amz-credential"], "AKIA2/") || m["x-amz-security-token"] != "session" {
		t.Errorf("aws-msk-iam after a rotation: %v", m)
	}
	delete(env, EnvAWSSecretAccessKey)
	_, _, err = first(ac, msk)
	var ce *credError
	if !errors.As(err, &ce) || !strings.Contains(err.Error(), EnvAWSSecretAccessKey) {
		t.Errorf("aws-msk-iam without credentials: %v", err)
	}
}

// TestTLSConfig: TLS 1.2 at least, system roots without a CA file, the
// client certificate re-read when it changes, and errors naming the flag.
func TestTLSConfig(t *testing.T) {
	tc, err := TLS{Enabled: true}.config()
	if err != nil || tc.MinVersion != tls.VersionTLS12 || tc.RootCAs != nil || tc.GetClientCertificate != nil || tc.ServerName != "" {
		t.Fatalf("plain TLS: %+v %v", tc, err)
	}
	ca := kafkaconftest.NewCA(t, "ca")
	dir := t.TempDir()
	certFile, keyFile := kafkaconftest.WriteKeyPair(t, dir, "client", ca.Leaf(t, "client-1"))
	tc, err = TLS{CAFile: ca.File, CertFile: certFile, KeyFile: keyFile, ServerName: "kafka"}.config()
	if err != nil || tc.RootCAs == nil || !tc.RootCAs.Equal(ca.Pool) || tc.ServerName != "kafka" {
		t.Fatalf("mTLS: %+v %v", tc, err)
	}
	cn := func() string {
		t.Helper()
		c, err := tc.GetClientCertificate(nil)
		if err != nil {
			t.Fatal(err)
		}
		leaf, err := x509.ParseCertificate(c.Certificate[0])
		if err != nil {
			t.Fatal(err)
		}
		return leaf.Subject.CommonName
	}
	if got := cn(); got != "client-1" {
		t.Errorf("client certificate %s", got)
	}
	kafkaconftest.WriteKeyPair(t, dir, "client", ca.Leaf(t, "client-2")) // a rotation
	later := time.Now().Add(time.Minute)
	os.Chtimes(certFile, later, later)
	if got := cn(); got != "client-2" {
		t.Errorf("after a rotation: %s, want client-2", got)
	}

	_, other := kafkaconftest.WriteKeyPair(t, dir, "other", ca.Leaf(t, "other"))
	for _, c := range []struct {
		tls  TLS
		want string
	}{
		{TLS{CAFile: filepath.Join(dir, "missing")}, "-kafka.tls.caFile"},
		{TLS{CAFile: keyFile}, "-kafka.tls.caFile"},
		{TLS{CertFile: certFile, KeyFile: other}, "-kafka.tls.keyFile"},
		{TLS{CertFile: filepath.Join(dir, "missing"), KeyFile: keyFile}, "-kafka.tls.certFile"},
	} {
		if _, err := c.tls.config(); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%+v: %v, want an error naming %s", c.tls, err, c.want)
		}
	}
}

// TestOpts: Opts validates and reads the files; its options make a client.
func TestOpts(t *testing.T) {
	ca := kafkaconftest.NewCA(t, "ca")
	c := Config{Brokers: []string{"127.0.0.1:1"}, ClientID: "id", TLS: TLS{CAFile: ca.File},
		SASL: SASL{Mechanism: "scram-sha-256", Username: "u", Password: "p"}}
	opts, err := c.Opts()
	if err != nil {
		t.Fatal(err)
	}
	if len(opts) != 4 { // seeds, client id, TLS, SASL
		t.Errorf("%d options", len(opts))
	}
	if err := kgo.ValidateOpts(opts...); err != nil {
		t.Error(err)
	}
	c.SASL.Mechanism = "kerberos"
	if _, err := c.Opts(); err == nil {
		t.Error("Opts does not validate")
	}
	if w := (Config{SASL: SASL{Mechanism: "plain"}}).Warning(); !strings.Contains(w, "password") || !strings.Contains(w, "-kafka.tls") {
		t.Errorf("plain without TLS: warning %q", w)
	}
	if w := (Config{SASL: SASL{Mechanism: "plain"}, TLS: TLS{Enabled: true}}).Warning(); w != "" {
		t.Errorf("plain with TLS: warning %q", w)
	}
}
