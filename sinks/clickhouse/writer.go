package clickhouse

import (
	"bytes"
	"context"
	"fmt"
	"strings"

	"github.com/ClickHouse/ch-go/proto"
	"github.com/ClickHouse/clickhouse-go/v2"
	chcol "github.com/ClickHouse/clickhouse-go/v2/lib/column"
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
	buf      []byte // scratch for native column encodings
	native   int    // columns loaded in Native format so far (tests check the path is taken)
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
	cols := b.Columns()
	if len(cols) != len(t.cols) {
		_ = b.Abort()
		return fmt.Errorf("insert into %s: the server announced %d columns for a list of %d", t.name, len(cols), len(t.cols))
	}
	for i, c := range t.cols {
		native, err := w.appendNative(cols[i], c.values(), t.len())
		if err == nil && !native {
			err = c.appendTo(b.Column(i))
		}
		if err != nil {
			_ = b.Abort()
			return w.insertRowByRow(ctx, t, err)
		}
	}
	if err := b.Send(); err != nil {
		return fmt.Errorf("cannot insert %d rows into %s: %w", t.len(), t.name, err)
	}
	return nil
}

// appendNative loads a whole column into the batch in Native format (see
// native.go) when the column's server type is the one encodeNative writes
// for its values; it reports false to leave the column to the driver's
// Append.
func (w *chWriter) appendNative(col chcol.Interface, values any, rows int) (bool, error) {
	want := nativeTypeOf(values)
	if want == "" || !sameType(string(col.Type()), want) {
		return false, nil
	}
	buf, ok := encodeNative(w.buf[:0], values)
	w.buf = buf[:0] // reused by the next column and batch
	if !ok {
		return false, nil
	}
	if err := col.Decode(proto.NewReader(bytes.NewReader(buf)), rows); err != nil {
		return false, fmt.Errorf("column %s: cannot load its native encoding: %w", col.Name(), err)
	}
	w.native++
	return true, nil
}

// sameType compares ClickHouse type names, ignoring spaces ("Decimal(18,4)"
// and "Decimal(18, 4)" are one type).
func sameType(a, b string) bool {
	return strings.ReplaceAll(a, " ", "") == strings.ReplaceAll(b, " ", "")
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
