package kafkaconf

import (
	"fmt"
	"os"
	"strings"

	"github.com/twmb/franz-go/pkg/kgo"
)

// DefaultBrokers is the local stack's broker (deploy/local/stack.sh).
const DefaultBrokers = "127.0.0.1:19092"

// The SASL mechanisms, as -kafka.sasl.mechanism spells them.
const (
	MechanismPlain       = "plain"
	MechanismSCRAMSHA256 = "scram-sha-256"
	MechanismSCRAMSHA512 = "scram-sha-512"
	MechanismOAuthBearer = "oauthbearer"
	MechanismAWSMSKIAM   = "aws-msk-iam"
)

// Mechanisms lists the valid -kafka.sasl.mechanism values.
var Mechanisms = []string{MechanismPlain, MechanismSCRAMSHA256, MechanismSCRAMSHA512, MechanismOAuthBearer, MechanismAWSMSKIAM}

// The AWS credential variables of aws-msk-iam.
const (
	EnvAWSAccessKeyID     = "AWS_ACCESS_KEY_ID"
	EnvAWSSecretAccessKey = "AWS_SECRET_ACCESS_KEY"
	EnvAWSSessionToken    = "AWS_SESSION_TOKEN"
)

// Config is a Kafka connection. The zero value, with Brokers set, is a
// plaintext connection without SASL.
type Config struct {
	Brokers  []string // seed brokers, host:port
	ClientID string   // empty: franz-go's default
	TLS      TLS
	SASL     SASL
	// Getenv reads the AWS credentials of aws-msk-iam, at each
	// authentication; nil means os.Getenv.
	Getenv func(string) string
}

// TLS configures TLS to the brokers: TLS 1.2 or later, certificates verified.
type TLS struct {
	// Enabled turns TLS on; any of the other fields does too.
	Enabled bool
	// CAFile is a PEM file of the CA(s) that signed the brokers'
	// certificates; empty means the system roots.
	CAFile string
	// CertFile and KeyFile are the PEM client certificate and key of
	// mutual TLS: both or neither. They are re-read when they change.
	CertFile, KeyFile string
	// ServerName is the name the brokers' certificates are verified
	// against; empty means the host of each broker's address.
	ServerName string
}

// On reports whether TLS is used.
func (t TLS) On() bool {
	return t.Enabled || t.CAFile != "" || t.CertFile != "" || t.KeyFile != "" || t.ServerName != ""
}

// SASL configures SASL authentication.
type SASL struct {
	// Mechanism is one of Mechanisms, or empty for no SASL.
	Mechanism string
	// Username and Password are those of plain and scram-*.
	Username, Password string
	// TokenFile holds the token of oauthbearer. It is read at each
	// authentication if its size or modification time changed, so that
	// a sidecar can refresh it.
	TokenFile string
}

// Flag names, for errors.
const (
	flagBrokers    = "-kafka.brokers"
	flagTLS        = "-kafka.tls"
	flagCAFile     = "-kafka.tls.caFile"
	flagCertFile   = "-kafka.tls.certFile"
	flagKeyFile    = "-kafka.tls.keyFile"
	flagServerName = "-kafka.tls.serverName"
	flagMechanism  = "-kafka.sasl.mechanism"
	flagUsername   = "-kafka.sasl.username"
	flagPassword   = "-kafka.sasl.password"
	flagTokenFile  = "-kafka.sasl.tokenFile"
)

func (c Config) getenv(name string) string {
	if c.Getenv == nil {
		return os.Getenv(name)
	}
	return c.Getenv(name)
}

// mechanism is the normalised SASL mechanism ("SCRAM-SHA-512" is accepted).
func (s SASL) mechanism() string { return strings.ToLower(strings.TrimSpace(s.Mechanism)) }

// kafkaName is the mechanism as Kafka names it: SCRAM-SHA-512, AWS_MSK_IAM.
func (s SASL) kafkaName() string {
	return strings.ToUpper(strings.ReplaceAll(s.mechanism(), "aws-msk-iam", "aws_msk_iam"))
}

// Validate checks c without reading any file. Its errors name the flag to
// change and never quote a secret.
func (c Config) Validate() error {
	if len(c.Brokers) == 0 {
		return fmt.Errorf("no Kafka brokers: set %s or PURCHASESYNC_KAFKA_BROKERS", flagBrokers)
	}
	if (c.TLS.CertFile == "") != (c.TLS.KeyFile == "") {
		return fmt.Errorf("%s and %s go together (mutual TLS): set both or neither", flagCertFile, flagKeyFile)
	}
	s := c.SASL
	m := s.mechanism()
	userPass := s.Username != "" || s.Password != ""
	switch m {
	case "":
		switch {
		case s.Username != "":
			return fmt.Errorf("%s is set but %s is not: want one of %s", flagUsername, flagMechanism, strings.Join(Mechanisms, ", "))
		case s.Password != "":
			return fmt.Errorf("%s (PURCHASESYNC_KAFKA_SASL_PASSWORD) is set but %s is not: want one of %s", flagPassword, flagMechanism, strings.Join(Mechanisms, ", "))
		case s.TokenFile != "":
			return fmt.Errorf("%s is set but %s is not: want %s", flagTokenFile, flagMechanism, MechanismOAuthBearer)
		}
	case MechanismPlain, MechanismSCRAMSHA256, MechanismSCRAMSHA512:
		switch {
		case s.Username == "":
			return fmt.Errorf("%s %s needs %s", flagMechanism, m, flagUsername)
		case s.Password == "":
			return fmt.Errorf("%s %s needs %s (better: PURCHASESYNC_KAFKA_SASL_PASSWORD or PURCHASESYNC_KAFKA_SASL_PASSWORD_FILE)", flagMechanism, m, flagPassword)
		case s.TokenFile != "":
			return fmt.Errorf("%s is only for %s %s; unset it", flagTokenFile, flagMechanism, MechanismOAuthBearer)
		}
	case MechanismOAuthBearer:
		switch {
		case s.TokenFile == "":
			return fmt.Errorf("%s %s needs %s, the file holding the token", flagMechanism, m, flagTokenFile)
		case userPass:
			return fmt.Errorf("%s %s uses %s, not %s or %s; unset them", flagMechanism, m, flagTokenFile, flagUsername, flagPassword)
		}
	case MechanismAWSMSKIAM:
		switch {
		case c.getenv(EnvAWSAccessKeyID) == "" || c.getenv(EnvAWSSecretAccessKey) == "":
			return fmt.Errorf("%s %s needs %s and %s (and %s for temporary credentials) in the environment", flagMechanism, m, EnvAWSAccessKeyID, EnvAWSSecretAccessKey, EnvAWSSessionToken)
		case userPass || s.TokenFile != "":
			return fmt.Errorf("%s %s uses the AWS credentials of the environment, not %s, %s or %s; unset them", flagMechanism, m, flagUsername, flagPassword, flagTokenFile)
		}
	default:
		return fmt.Errorf("invalid %s %q (PURCHASESYNC_KAFKA_SASL_MECHANISM): want one of %s", flagMechanism, s.Mechanism, strings.Join(Mechanisms, ", "))
	}
	return nil
}

// Opts are franz-go's options for c: seed brokers, client id, TLS dialing
// and SASL. It reads the TLS files (so a missing or malformed one is an
// error now, not at the first connection) and validates c first.
func (c Config) Opts() ([]kgo.Opt, error) {
	if err := c.Validate(); err != nil {
		return nil, err
	}
	opts := []kgo.Opt{kgo.SeedBrokers(c.Brokers...)}
	if c.ClientID != "" {
		opts = append(opts, kgo.ClientID(c.ClientID))
	}
	if c.TLS.On() {
		tc, err := c.TLS.config()
		if err != nil {
			return nil, err
		}
		opts = append(opts, kgo.DialTLSConfig(tc))
	}
	mech, err := c.mechanism()
	if err != nil {
		return nil, err
	}
	if mech != nil {
		opts = append(opts, kgo.SASL(mech))
	}
	return opts, nil
}

// Warning is a line to log once at start, or "" if there is nothing to
// warn about: SASL without TLS.
func (c Config) Warning() string {
	m := c.SASL.mechanism()
	if m == "" || c.TLS.On() {
		return ""
	}
	what := "credentials and all Kafka traffic cross the network unencrypted"
	if m == MechanismPlain {
		what = "the password and all Kafka traffic cross the network unencrypted"
	}
	return fmt.Sprintf("Kafka SASL %s without TLS: %s; set %s unless the network is trusted", m, what, flagTLS)
}

// Environ is c as the PURCHASESYNC_KAFKA_* environment that FromEnv reads
// back, for a child process of this one (cmd/loadgen's floor server). It
// contains the password: give it to no other process. Every variable is
// there, empty when unset, so that variables the child would inherit
// (a PURCHASESYNC_KAFKA_SASL_PASSWORD_FILE, say) cannot mix in: os/exec
// keeps the last value of a variable. Getenv is not carried; the AWS
// variables are inherited as they are.
func (c Config) Environ() []string {
	b := func(v bool) string {
		if v {
			return "true"
		}
		return "false"
	}
	kv := [][2]string{
		{"kafka.brokers", strings.Join(c.Brokers, ",")},
		{"kafka.clientID", c.ClientID},
		{"kafka.tls", b(c.TLS.On())},
		{"kafka.tls.caFile", c.TLS.CAFile},
		{"kafka.tls.certFile", c.TLS.CertFile},
		{"kafka.tls.keyFile", c.TLS.KeyFile},
		{"kafka.tls.serverName", c.TLS.ServerName},
		{"kafka.sasl.mechanism", c.SASL.Mechanism},
		{"kafka.sasl.username", c.SASL.Username},
		{"kafka.sasl.password", c.SASL.Password},
		{"kafka.sasl.tokenFile", c.SASL.TokenFile},
	}
	env := make([]string, 0, len(kv)+1)
	for _, p := range kv {
		env = append(env, envName(p[0])+"="+p[1])
	}
	return append(env, envName("kafka.sasl.password")+"_FILE=")
}
