package kafkaconf

import (
	"fmt"
	"strings"

	"purchasesync/cmd/envflag"
)

// Flags are the connection flags of one command; Config turns them into a
// Config after the flags are parsed.
type Flags struct {
	fs *envflag.FlagSet

	brokers, clientID *string

	tls                                   *bool
	caFile, certFile, keyFile, serverName *string

	mechanism, username, password, tokenFile *string
}

// AddFlags defines the connection flags on fs. clientID is the default of
// -kafka.clientID.
func AddFlags(fs *envflag.FlagSet, clientID string) *Flags {
	return &Flags{
		fs:       fs,
		brokers:  fs.String("kafka.brokers", DefaultBrokers, "comma-separated Kafka bootstrap brokers, host:port"),
		clientID: fs.String("kafka.clientID", clientID, "Kafka client id (shown in broker logs and quotas)"),

		tls: fs.Bool("kafka.tls", false,
			"connect to Kafka with TLS (1.2 or later), verifying the brokers' certificates against the system roots or -kafka.tls.caFile; any -kafka.tls.* flag implies it"),
		caFile:   fs.String("kafka.tls.caFile", "", "PEM file of the CA(s) that signed the brokers' certificates; default: the system roots"),
		certFile: fs.String("kafka.tls.certFile", "", "PEM client certificate for mutual TLS, with -kafka.tls.keyFile; both are re-read when they change"),
		keyFile:  fs.String("kafka.tls.keyFile", "", "PEM private key of -kafka.tls.certFile"),
		serverName: fs.String("kafka.tls.serverName", "",
			"name the brokers' certificates must be valid for; default: the host of each broker's address"),

		mechanism: fs.String("kafka.sasl.mechanism", "",
			"SASL mechanism: plain, scram-sha-256, scram-sha-512 (these take -kafka.sasl.username and -kafka.sasl.password), oauthbearer (-kafka.sasl.tokenFile) or aws-msk-iam (AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_SESSION_TOKEN, read at each authentication); empty: no SASL. See also -kafka.tls"),
		username: fs.String("kafka.sasl.username", "", "SASL user name of plain and scram-*"),
		password: fs.Secret("kafka.sasl.password", "SASL password of plain and scram-*"),
		tokenFile: fs.String("kafka.sasl.tokenFile", "",
			"file holding the OAUTHBEARER token; re-read when it changes, so a sidecar can refresh it"),
	}
}

// Config is the parsed flags as a validated Config. Any -kafka.tls.* flag
// turns TLS on; -kafka.tls=false given with one of them is an error.
func (f *Flags) Config() (Config, error) {
	c := Config{
		Brokers:  envflag.SplitList(*f.brokers),
		ClientID: *f.clientID,
		TLS: TLS{
			Enabled: *f.tls,
			CAFile:  *f.caFile, CertFile: *f.certFile, KeyFile: *f.keyFile,
			ServerName: *f.serverName,
		},
		SASL: SASL{
			Mechanism: *f.mechanism,
			Username:  *f.username, Password: *f.password,
			TokenFile: *f.tokenFile,
		},
		Getenv: f.fs.Getenv,
	}
	if !*f.tls && f.fs.IsSet("kafka.tls") {
		var set []string
		for _, kv := range [][2]string{{flagCAFile, c.TLS.CAFile}, {flagCertFile, c.TLS.CertFile}, {flagKeyFile, c.TLS.KeyFile}, {flagServerName, c.TLS.ServerName}} {
			if kv[1] != "" {
				set = append(set, kv[0])
			}
		}
		if len(set) > 0 {
			return c, fmt.Errorf("%s=false contradicts %s, which imply TLS: unset one or the other", flagTLS, strings.Join(set, ", "))
		}
	}
	return c, c.Validate()
}

// FromEnv is the Config of the PURCHASESYNC_KAFKA_* variables alone (see
// Environ), for a child process or a test client: cluster.Getenv of
// deploy/testenv, say.
func FromEnv(getenv func(string) string) (Config, error) {
	fs := envflag.New("env", getenv)
	f := AddFlags(fs, "")
	if err := fs.Parse(nil); err != nil {
		return Config{}, err
	}
	return f.Config()
}

func envName(flag string) string { return envflag.EnvName(flag) }
