package compliance

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"reflect"
	"strings"
	"sync"

	"github.com/ClickHouse/clickhouse-go/v2"
	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"

	"purchasesync/schemas"
)

// fakeConn is the part of a ClickHouse connection the processor uses. It
// answers queries from answer (nil, or nil rows: none) and system.mutations
// with "nothing pending", records the statements and the
// compliance_requests rows it is given, and fails everything while down.
type fakeConn struct {
	driver.Conn
	answer func(sql string, args []any) [][]any

	mu        sync.Mutex
	down      bool
	queries   []string       // lookups, rendered with their arguments
	execs     []string       // mutations, rendered with their arguments
	requests  [][]any        // compliance_requests rows
	completed map[string]int // shop domain → 'completed' rows written
}

func newFakeConn() *fakeConn { return &fakeConn{completed: map[string]int{}} }

var errDown = errors.New("dial tcp 127.0.0.1:9000: connect: connection refused")

// SetDown makes every call fail, as with ClickHouse unreachable, until
// SetDown(false) (sinktest.Destination).
func (c *fakeConn) SetDown(d bool) { c.mu.Lock(); c.down = d; c.mu.Unlock() }

// Written is how many requests of each shop completed (sinktest.Destination).
func (c *fakeConn) Written() map[string]int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return maps.Clone(c.completed)
}

func (c *fakeConn) isDown() bool { c.mu.Lock(); defer c.mu.Unlock(); return c.down }

func (c *fakeConn) Ping(context.Context) error {
	if c.isDown() {
		return errDown
	}
	return nil
}

func (c *fakeConn) ServerVersion() (*driver.ServerVersion, error) {
	if c.isDown() {
		return nil, errDown
	}
	return &driver.ServerVersion{}, nil
}

func (c *fakeConn) Exec(_ context.Context, sql string, args ...any) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.down {
		return errDown
	}
	c.execs = append(c.execs, render(sql, args))
	return nil
}

func (c *fakeConn) Query(_ context.Context, sql string, args ...any) (driver.Rows, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.down {
		return nil, errDown
	}
	c.queries = append(c.queries, render(sql, args))
	r := &fakeRows{}
	if c.answer != nil {
		r.rows = c.answer(sql, args)
	}
	return r, nil
}

func (c *fakeConn) QueryRow(context.Context, string, ...any) driver.Row {
	if c.isDown() {
		return zeroRow{err: errDown}
	}
	return zeroRow{}
}

func (c *fakeConn) PrepareBatch(context.Context, string, ...driver.PrepareBatchOption) (driver.Batch, error) {
	if c.isDown() {
		return nil, errDown
	}
	return &fakeBatch{c: c}, nil
}

// render writes a statement with its arguments, a bound set as (a, b).
func render(sql string, args []any) string {
	parts := []string{sql}
	for _, a := range args {
		if g, ok := a.(clickhouse.GroupSet); ok {
			vs := make([]string, len(g.Value))
			for i, v := range g.Value {
				vs[i] = fmt.Sprint(v)
			}
			a = "(" + strings.Join(vs, ", ") + ")"
		}
		parts = append(parts, fmt.Sprint(a))
	}
	return strings.Join(parts, " | ")
}

// fakeRows scans its rows into pointers of the values' types.
type fakeRows struct {
	driver.Rows
	rows [][]any
	next int
}

func (r *fakeRows) Next() bool   { r.next++; return r.next <= len(r.rows) }
func (r *fakeRows) Err() error   { return nil }
func (r *fakeRows) Close() error { return nil }
func (r *fakeRows) Scan(dest ...any) error {
	row := r.rows[r.next-1]
	if len(row) != len(dest) {
		return fmt.Errorf("fakeRows: %d values for %d columns", len(row), len(dest))
	}
	for i, v := range row {
		reflect.ValueOf(dest[i]).Elem().Set(reflect.ValueOf(v))
	}
	return nil
}

type zeroRow struct {
	driver.Row
	err error
}

func (r zeroRow) Err() error { return r.err }
func (r zeroRow) Scan(dest ...any) error {
	if r.err != nil {
		return r.err
	}
	*dest[0].(*uint64) = 0 // no pending mutation
	return nil
}

type fakeBatch struct {
	driver.Batch
	c    *fakeConn
	rows [][]any
}

func (b *fakeBatch) Append(v ...any) error { b.rows = append(b.rows, v); return nil }
func (b *fakeBatch) Abort() error          { return nil }
func (b *fakeBatch) Send() error {
	b.c.mu.Lock()
	defer b.c.mu.Unlock()
	if b.c.down {
		return errDown
	}
	for _, r := range b.rows { // request_id, topic, shop_domain, sites, status, …
		b.c.requests = append(b.c.requests, r)
		if r[4] == "completed" {
			b.c.completed[r[2].(string)]++
		}
	}
	return nil
}

type noSites struct{}

func (noSites) ByShop(string) (schemas.Site, bool) { return schemas.Site{}, false }
