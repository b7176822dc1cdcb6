package clickhouse

import (
	"context"
	"errors"
	"fmt"
	"net"
	"syscall"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2"
	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
)

// Open returns a native-protocol connection pool to cfg's database with LZ4
// compression (18.16 speaks no HTTP the driver understands), over TLS when
// cfg.TLS is set. database ""
// uses the server's default database, which the migrator needs before its
// own database exists. Open does not dial: the first query does.
func Open(cfg Config, database string) (driver.Conn, error) {
	conn, err := clickhouse.Open(&clickhouse.Options{
		Addr:             cfg.Addr,
		Auth:             clickhouse.Auth{Database: database, Username: cfg.Username, Password: cfg.Password},
		TLS:              cfg.TLS,
		Compression:      &clickhouse.Compression{Method: clickhouse.CompressionLZ4},
		DialTimeout:      cfg.DialTimeout,
		ReadTimeout:      cfg.ReadTimeout,
		MaxOpenConns:     4,
		MaxIdleConns:     2,
		ConnMaxLifetime:  30 * time.Minute,
		ConnOpenStrategy: clickhouse.ConnOpenInOrder,
	})
	if err != nil {
		return nil, fmt.Errorf("cannot open ClickHouse connection to %v: %w", cfg.Addr, err)
	}
	return conn, nil
}

// errorKind classifies an insert error for the insert_errors_total metric.
// Every kind is retried: a send error leaves the outcome unknown (the server
// may have committed the block before the connection broke), which is why
// retries must be idempotent.
func errorKind(err error) string {
	var ex *clickhouse.Exception
	var op *net.OpError
	switch {
	case errors.As(err, &ex):
		return "server"
	case errors.Is(err, syscall.ECONNREFUSED), errors.As(err, &op) && op.Op == "dial":
		return "connect"
	case errors.Is(err, context.DeadlineExceeded), errors.Is(err, context.Canceled):
		return "timeout"
	}
	return "send"
}

// clusterInsertSettings adds to s what inserts into Distributed tables need:
// insert_distributed_sync, so that the insert returns once the shards hold
// the rows (else the acknowledgement only means the server queued them).
func clusterInsertSettings(s clickhouse.Settings) clickhouse.Settings {
	out := clickhouse.Settings{"insert_distributed_sync": 1}
	for k, v := range s {
		out[k] = v
	}
	return out
}
