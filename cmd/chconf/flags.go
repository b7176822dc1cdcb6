package chconf

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"os"
	"strings"

	"purchasesync/cmd/envflag"
	chsink "purchasesync/sinks/clickhouse"
)

// The flag names, as errors quote them.
const (
	flagAddr       = "-clickhouse.addr"
	flagDatabase   = "-clickhouse.database"
	flagUser       = "-clickhouse.user"
	flagPassword   = "-clickhouse.password"
	flagTLS        = "-clickhouse.tls"
	flagCAFile     = "-clickhouse.tls.caFile"
	flagServerName = "-clickhouse.tls.serverName"
)

// Flags are the connection flags of one command; Config turns them into a
// sinks/clickhouse Config after the flags are parsed.
type Flags struct {
	fs *envflag.FlagSet

	addr, database, user, password, cluster *string

	tls                *bool
	caFile, serverName *string
}

// AddFlags defines the connection flags on fs, with the defaults of
// sinks/clickhouse's DefaultConfig.
func AddFlags(fs *envflag.FlagSet) *Flags {
	d := chsink.DefaultConfig()
	return &Flags{
		fs: fs,
		addr: fs.String("clickhouse.addr", strings.Join(d.Addr, ","),
			"comma-separated ClickHouse native-protocol addresses (host:port; the secure port, 9440 by default, with -clickhouse.tls); later ones are failovers"),
		database: fs.String("clickhouse.database", d.Database, "ClickHouse database of the purchases, discrepancies and raw_events tables"),
		user:     fs.String("clickhouse.user", d.Username, "ClickHouse user"),
		password: fs.Secret("clickhouse.password", "ClickHouse password of -clickhouse.user"),
		cluster: fs.String("clickhouse.cluster", d.Cluster,
			"cluster (remote_servers) of a self-hosted replicated ClickHouse: migrations run ON CLUSTER and create Replicated local tables and Distributed tables; empty = one server, or ClickHouse Cloud (which replicates by itself)"),

		tls: fs.Bool("clickhouse.tls", false,
			"connect to ClickHouse's secure native port with TLS (1.2 or later), verifying its certificate against the system roots or -clickhouse.tls.caFile; any -clickhouse.tls.* flag implies it (ClickHouse Cloud needs it)"),
		caFile: fs.String("clickhouse.tls.caFile", "", "PEM file of the CA(s) that signed the ClickHouse servers' certificates; default: the system roots"),
		serverName: fs.String("clickhouse.tls.serverName", "",
			"name the ClickHouse servers' certificates must be valid for; default: the host of each address"),
	}
}

// Config is the parsed flags as sinks/clickhouse's DefaultConfig with this
// connection, validated. Any -clickhouse.tls.* flag turns TLS on;
// -clickhouse.tls=false given with one of them is an error.
func (f *Flags) Config() (chsink.Config, error) {
	cfg := chsink.DefaultConfig()
	cfg.Addr = envflag.SplitList(*f.addr)
	cfg.Database, cfg.Username, cfg.Password, cfg.Cluster = *f.database, *f.user, *f.password, *f.cluster
	implied := *f.caFile != "" || *f.serverName != ""
	if !*f.tls && implied && f.fs.IsSet("clickhouse.tls") {
		return cfg, fmt.Errorf("%s=false contradicts %s or %s, which imply TLS: unset one or the other", flagTLS, flagCAFile, flagServerName)
	}
	if *f.tls || implied {
		tc, err := tlsConfig(*f.caFile, *f.serverName)
		if err != nil {
			return cfg, err
		}
		cfg.TLS = tc
	}
	return cfg, cfg.Validate()
}

// tlsConfig is TLS 1.2 or later with the CA file's roots (else the
// system's) and the server name (else each address's host).
func tlsConfig(caFile, serverName string) (*tls.Config, error) {
	tc := &tls.Config{MinVersion: tls.VersionTLS12, ServerName: serverName}
	if caFile != "" {
		pem, err := os.ReadFile(caFile)
		if err != nil {
			return nil, fmt.Errorf("cannot read %s: %w", flagCAFile, err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("%s %s holds no PEM certificate", flagCAFile, caFile)
		}
		tc.RootCAs = pool
	}
	return tc, nil
}

// FromEnv is the Config of the PURCHASESYNC_CLICKHOUSE_* variables alone,
// for a child process or a test client.
func FromEnv(getenv func(string) string) (chsink.Config, error) {
	fs := envflag.New("env", getenv)
	f := AddFlags(fs)
	if err := fs.Parse(nil); err != nil {
		return chsink.Config{}, err
	}
	return f.Config()
}
