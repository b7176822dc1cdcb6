// Package chconf is the ClickHouse connection of every purchasesync
// process that talks to ClickHouse (sink, migrate, the control plane's
// compliance redactions, the freshness monitor): the flags (each with its
// PURCHASESYNC_* variable, see cmd/envflag), the one builder of the
// connection part of a sinks/clickhouse Config, and Check, which tells a
// configuration error from a server that is not up yet. It mirrors
// cmd/kafkaconf.
//
// The flags:
//
//	-clickhouse.addr            PURCHASESYNC_CLICKHOUSE_ADDR             host:port,... of the native protocol; later ones are failovers
//	-clickhouse.database        PURCHASESYNC_CLICKHOUSE_DATABASE
//	-clickhouse.user            PURCHASESYNC_CLICKHOUSE_USER
//	-clickhouse.password        PURCHASESYNC_CLICKHOUSE_PASSWORD         or PURCHASESYNC_CLICKHOUSE_PASSWORD_FILE
//	-clickhouse.cluster         PURCHASESYNC_CLICKHOUSE_CLUSTER          remote_servers cluster of cluster mode (sinks/clickhouse cluster.go)
//	-clickhouse.tls             PURCHASESYNC_CLICKHOUSE_TLS              the secure native port (9440); implied by any -clickhouse.tls.* flag
//	-clickhouse.tls.caFile      PURCHASESYNC_CLICKHOUSE_TLS_CAFILE       PEM CA(s) of the servers; default: the system roots
//	-clickhouse.tls.serverName  PURCHASESYNC_CLICKHOUSE_TLS_SERVERNAME   name to verify instead of each address's host
//
// Check connects to every address at once and pings it (so TLS and the
// password are checked) and classifies what went wrong: a *ConfigError
// (wrong password, unknown CA, plaintext against the secure port, ...) is
// fatal and its one line names the flag that fixes it; ErrUnreachable
// (refused, timeouts) is a server that is not up yet, and the caller goes
// on, since the sink retries. No error of this package contains a secret.
package chconf
