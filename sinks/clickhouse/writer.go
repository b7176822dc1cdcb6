package clickhouse

import (
	"context"
	"fmt"

	"github.com/ClickHouse/clickhouse-go/v2"
	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
)

// writer inserts one table's buffered rows. The sink calls it again with the
// same rows after a failure, so an implementation must send exactly what the
// table holds each time.
type writer interface {
	insert(ctx context.Context, t *table) error
}

// badRowError says that the driver refused row Row of a batch while
// converting it. The sink drops that row (dead-lettering its record) and
// retries the rest at once: one bad value would otherwise fail every attempt.
type badRowError struct {
	Row int
	Err error
}

func (e *badRowError) Error() string { return fmt.Sprintf("row %d: %v", e.Row, e.Err) }
func (e *badRowError) Unwrap() error { return e.Err }

// chWriter inserts through clickhouse-go's batch API, column by column (about
// a third cheaper than row by row).
type chWriter struct {
	conn     driver.Conn
	settings clickhouse.Settings
	probed   bool
}

func (w *chWriter) insert(ctx context.Context, t *table) error {
	if !w.probed {
		v, err := w.conn.ServerVersion()
		if err != nil {
			return fmt.Errorf("cannot read ClickHouse server version: %w", err)
		}
		w.settings, w.probed = InsertSettings(v), true
	}
	if w.settings != nil {
		ctx = clickhouse.Context(ctx, clickhouse.WithSettings(w.settings))
	}
	b, err := w.conn.PrepareBatch(ctx, t.insertSQL(), driver.WithReleaseConnection())
	if err != nil {
		return fmt.Errorf("cannot prepare insert into %s: %w", t.name, err)
	}
	for i, c := range t.cols {
		if err := c.appendTo(b.Column(i)); err != nil {
			_ = b.Abort()
			return w.insertRowByRow(ctx, t, err)
		}
	}
	if err := b.Send(); err != nil {
		return fmt.Errorf("cannot insert %d rows into %s: %w", t.len(), t.name, err)
	}
	return nil
}

// insertRowByRow finds the row a columnar append refused. Validation in
// rows.go should make this unreachable; it exists so that a value it misses
// costs one dead letter, not a stalled sink.
func (w *chWriter) insertRowByRow(ctx context.Context, t *table, colErr error) error {
	b, err := w.conn.PrepareBatch(ctx, t.insertSQL(), driver.WithReleaseConnection())
	if err != nil {
		return fmt.Errorf("cannot prepare insert into %s: %w", t.name, err)
	}
	vals := make([]any, len(t.cols))
	for r := range t.len() {
		for i, c := range t.cols {
			vals[i] = c.at(r)
		}
		if err := b.Append(vals...); err != nil {
			_ = b.Abort()
			return &badRowError{Row: r, Err: err}
		}
	}
	if err := b.Send(); err != nil {
		return fmt.Errorf("cannot insert %d rows into %s after a columnar append failed (%v): %w", t.len(), t.name, colErr, err)
	}
	return nil
}
