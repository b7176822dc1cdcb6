package clickhouse

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strings"

	"github.com/ClickHouse/ch-go/proto"
	"github.com/ClickHouse/clickhouse-go/v2"
	chcol "github.com/ClickHouse/clickhouse-go/v2/lib/column"
	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"

	"purchasesync/sinks/internal/chschema"
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
	// cluster: the tables are Distributed, whose inserts must be
	// synchronous, else an acknowledged batch (and its committed offsets)
	// would wait in the server's local queue for its shards.
	cluster bool
	log     *slog.Logger
	buf     []byte        // scratch for native column encodings
	src     bytes.Reader  // reads buf for rd
	rd      *proto.Reader // created once, see appendNative
	native  int           // columns loaded in Native format so far (tests check the path is taken)
	// nativeOff is set after a native load failed; the driver's Append
	// then does all the work.
	nativeOff bool
}

func (w *chWriter) insert(ctx context.Context, t *table) error {
	if !w.probed {
		v, err := w.conn.ServerVersion()
		if err != nil {
			return fmt.Errorf("cannot read ClickHouse server version: %w", err)
		}
		w.settings, w.probed = chschema.InsertSettings(v), true
		if w.cluster {
			w.settings = clusterInsertSettings(w.settings)
		}
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
		// Not a bad row: the schema and this build disagree. Retrying (and
		// holding consumption) is right until an operator migrates.
		_ = b.Abort()
		return fmt.Errorf("insert into %s: the server announced %d columns for a list of %d", t.name, len(cols), len(t.cols))
	}
	for i, c := range t.cols {
		native, err := w.appendNative(cols[i], c, t.len())
		if err != nil {
			// A bug or a driver change, not bad data: log it once, use
			// the driver's Append from now on, and retry this batch at once.
			w.nativeOff = true
			if w.log != nil {
				w.log.Error("sink: loading a column in Native format failed; using the driver's Append from now on", "table", t.name, "err", err)
			}
			_ = b.Abort()
			return w.insert(ctx, t)
		}
		if !native {
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
// Append. Decode appends to some column types and overwrites others, so it
// is only used on a column still empty, and it must consume exactly the
// bytes written.
func (w *chWriter) appendNative(col chcol.Interface, c column, rows int) (bool, error) {
	want := nativeTypeOf(c.values())
	if w.nativeOff || want == "" || !sameType(string(col.Type()), want) || col.Rows() != 0 {
		return false, nil
	}
	if col.Name() != c.name() {
		return false, fmt.Errorf("the server's column %s stands where this build has %s", col.Name(), c.name())
	}
	buf, _ := encodeNative(w.buf[:0], c.values()) // ok: nativeTypeOf named the type
	w.buf = buf[:0]                               // reused by the next column and batch
	// One reader for the writer's life: proto.NewReader allocates a 128 KiB
	// buffer, and a batch has a dozen native columns.
	w.src.Reset(buf)
	if w.rd == nil {
		w.rd = proto.NewReader(&w.src)
	}
	if err := col.Decode(w.rd, rows); err != nil {
		return false, fmt.Errorf("column %s: cannot load its native encoding: %w", col.Name(), err)
	}
	if _, err := w.rd.ReadByte(); !errors.Is(err, io.EOF) {
		return false, fmt.Errorf("column %s: its native encoding has bytes left over after %d rows", col.Name(), rows)
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
