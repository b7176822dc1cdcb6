package clickhouse

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"testing"
	"testing/fstest"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"

	"purchasesync/deploy/testenv"
	"purchasesync/schemas"
)

var quiet = slog.New(slog.NewTextHandler(io.Discard, nil))

// testConfig points at the stack's ClickHouse with a database of the test's
// own, dropped at the end.
func testConfig(t *testing.T) Config {
	t.Helper()
	addr := testenv.ClickHouse(t)
	cfg := DefaultConfig()
	cfg.Addr = []string{addr}
	cfg.Database = testenv.Name(t)
	t.Cleanup(func() {
		conn, err := Open(cfg, "")
		if err == nil {
			_ = conn.Exec(context.Background(), "DROP DATABASE IF EXISTS `"+cfg.Database+"`")
			conn.Close()
		}
	})
	return cfg
}

func openDB(t *testing.T, cfg Config) driver.Conn {
	t.Helper()
	conn, err := Open(cfg, cfg.Database)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return conn
}

func ctxT(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// schemaOf describes a database's tables and columns as comparable text.
func schemaOf(t *testing.T, conn driver.Conn, db string) string {
	t.Helper()
	ctx := ctxT(t)
	var b strings.Builder
	rows, err := conn.Query(ctx, "SELECT name, engine FROM system.tables WHERE database = ? ORDER BY name", db)
	if err != nil {
		t.Fatal(err)
	}
	for rows.Next() {
		var n, e string
		if err := rows.Scan(&n, &e); err != nil {
			t.Fatal(err)
		}
		fmt.Fprintf(&b, "table %s %s\n", n, e)
	}
	rows.Close()
	rows, err = conn.Query(ctx, "SELECT table, name, type FROM system.columns WHERE database = ? ORDER BY table, name", db)
	if err != nil {
		t.Fatal(err)
	}
	for rows.Next() {
		var tb, n, ty string
		if err := rows.Scan(&tb, &n, &ty); err != nil {
			t.Fatal(err)
		}
		fmt.Fprintf(&b, "column %s.%s %s\n", tb, n, ty)
	}
	rows.Close()
	return b.String()
}

func TestFunctionalMigrationsConverge(t *testing.T) {
	ms, err := Migrations()
	if err != nil {
		t.Fatal(err)
	}
	ctx := ctxT(t)
	ref := testConfig(t)
	v, err := Migrate(ctx, ref, quiet)
	if err != nil || v != len(ms) {
		t.Fatalf("fresh migrate: version %d, err %v; want %d", v, err, len(ms))
	}
	// Applied twice: nothing to do, same schema.
	if v, err := Migrate(ctx, ref, quiet); err != nil || v != len(ms) {
		t.Fatalf("second migrate: version %d, err %v", v, err)
	}
	refConn := openDB(t, ref)
	want := schemaOf(t, refConn, ref.Database)
	for _, tbl := range []string{"purchases", "discrepancies", "raw_events", "schema_migrations", "purchases_daily", "webhook_delay_daily"} {
		if !strings.Contains(want, "table "+tbl+" ") {
			t.Fatalf("table %s missing after migrate:\n%s", tbl, want)
		}
	}
	var recorded uint64
	if err := refConn.QueryRow(ctx, "SELECT count() FROM schema_migrations FINAL").Scan(&recorded); err != nil || int(recorded) != len(ms) {
		t.Fatalf("schema_migrations has %d rows (err %v), want %d", recorded, err, len(ms))
	}

	// A database at every earlier version reaches the same schema.
	for k := 0; k < len(ms); k++ {
		cfg := testConfig(t)
		if v, err := MigrateWith(ctx, cfg, ms[:k], quiet); err != nil || v != k {
			t.Fatalf("migrate to version %d: got %d, %v", k, v, err)
		}
		if v, err := Migrate(ctx, cfg, quiet); err != nil || v != len(ms) {
			t.Fatalf("from version %d: got %d, %v", k, v, err)
		}
		conn := openDB(t, cfg)
		if got := schemaOf(t, conn, cfg.Database); got != want {
			t.Errorf("from version %d the schema differs:\n got: %s\nwant: %s", k, got, want)
		}
	}
}

func TestFunctionalAddColumnIsSkippedWhenPresent(t *testing.T) {
	fsys := fstest.MapFS{
		"0001_t.sql":     {Data: []byte("CREATE TABLE IF NOT EXISTS t (a String) ENGINE = MergeTree ORDER BY a;\n")},
		"0002_add_b.sql": {Data: []byte("-- b arrived later\nALTER TABLE t ADD COLUMN b UInt8 DEFAULT 1;\n")},
	}
	ms, err := LoadMigrations(fsys)
	if err != nil {
		t.Fatal(err)
	}
	if ms[1].Statements[0].AddColumn == nil || *ms[1].Statements[0].AddColumn != (ColumnRef{"t", "b"}) {
		t.Fatalf("ADD COLUMN not recognised: %+v", ms[1].Statements)
	}
	ctx := ctxT(t)
	cfg := testConfig(t)
	if _, err := MigrateWith(ctx, cfg, ms[:1], quiet); err != nil {
		t.Fatal(err)
	}
	// A migrator that died after the ALTER but before recording it.
	conn := openDB(t, cfg)
	if err := conn.Exec(ctx, "ALTER TABLE t ADD COLUMN b UInt8 DEFAULT 1"); err != nil {
		t.Fatal(err)
	}
	if v, err := MigrateWith(ctx, cfg, ms, quiet); err != nil || v != 2 {
		t.Fatalf("re-running the ADD COLUMN: version %d, err %v", v, err)
	}
	// A changed applied migration is refused.
	ms[0].Checksum = "edited"
	if _, err := MigrateWith(ctx, cfg, ms, quiet); err == nil || !strings.Contains(err.Error(), "changed after it was applied") {
		t.Fatalf("edited migration: got %v", err)
	}
}

// The Go column declarations match the migrated tables, in table order.
func TestFunctionalColumnsMatchSchema(t *testing.T) {
	ctx := ctxT(t)
	cfg := testConfig(t)
	if _, err := Migrate(ctx, cfg, quiet); err != nil {
		t.Fatal(err)
	}
	conn := openDB(t, cfg)
	for _, tb := range []*table{&newPurchasesTable().table, &newDiscrepanciesTable().table, &newRawEventsTable().table} {
		var names []string
		rows, err := conn.Query(ctx, "SELECT name FROM system.columns WHERE database = ? AND table = ?", cfg.Database, tb.name)
		if err != nil {
			t.Fatal(err)
		}
		for rows.Next() {
			var n string
			_ = rows.Scan(&n)
			names = append(names, n)
		}
		rows.Close()
		var decl []string
		for _, c := range tb.cols {
			decl = append(decl, c.name())
		}
		if strings.Join(names, ",") != strings.Join(decl, ",") {
			t.Errorf("%s:\n schema: %v\n Go:     %v", tb.name, names, decl)
		}
	}
}

// insertOnce writes purchases through the real writer.
func insertPurchases(t *testing.T, conn driver.Conn, ps ...*schemas.Purchase) {
	t.Helper()
	tb := newPurchasesTable()
	for _, p := range ps {
		r, err := purchaseRowOf(p)
		if err != nil {
			t.Fatal(err)
		}
		tb.add(r, rowRef{}, 1)
	}
	w := &chWriter{conn: conn}
	if err := w.insert(ctxT(t), &tb.table); err != nil {
		t.Fatal(err)
	}
	// Every array and money column of purchases goes in Native format.
	if want := nativeColumns(&tb.table); w.native != want {
		t.Fatalf("%d of %d array and money columns took the native path; the server's column types no longer match native.go", w.native, want)
	}
}

func nativeColumns(t *table) (n int) {
	for _, c := range t.cols {
		if nativeTypeOf(c.values()) != "" {
			n++
		}
	}
	return n
}

func TestFunctionalWriterRoundTripAndRetryCollapses(t *testing.T) {
	ctx := ctxT(t)
	cfg := testConfig(t)
	if _, err := Migrate(ctx, cfg, quiet); err != nil {
		t.Fatal(err)
	}
	conn := openDB(t, cfg)
	p := samplePurchase()
	p.Subtotal = "10.00005" // the driver alone would store 10.0000
	insertPurchases(t, conn, p)
	insertPurchases(t, conn, p) // a retried batch: same key, same version
	p2 := *p
	p2.Version, p2.Matched = 3, false
	insertPurchases(t, conn, &p2)

	var n, all uint64
	if err := conn.QueryRow(ctx, "SELECT count() FROM purchases FINAL").Scan(&n); err != nil {
		t.Fatal(err)
	}
	if err := conn.QueryRow(ctx, "SELECT count() FROM purchases").Scan(&all); err != nil {
		t.Fatal(err)
	}
	if n != 1 || all < 2 {
		t.Fatalf("FINAL count = %d (physical %d), want 1 row from at least 2 inserts", n, all)
	}
	var id, sub, prices string
	var version uint64
	var matched uint8
	err := conn.QueryRow(ctx, `SELECT assumeNotNull(shopify_order_id), toString(assumeNotNull(subtotal)), toString(items_price), version, matched
		FROM purchases FINAL`).Scan(&id, &sub, &prices, &version, &matched)
	if err != nil {
		t.Fatal(err)
	}
	if id != "5837291049123456789" || sub != "10.0001" || version != 3 || matched != 0 {
		t.Errorf("got id %s subtotal %s version %d matched %d; want the big id, 10.0001 (rounded), version 3, unmatched", id, sub, version, matched)
	}
	if prices != "[9.9900,NULL]" && prices != "[9.99,NULL]" {
		t.Errorf("items_price = %s", prices)
	}
}

// TestFunctionalReinsertedBatchesCollapse: a batch inserted again (a commit
// that failed after the insert, then a re-read by the partition's next
// owner or a restart) must collapse in FINAL in every table the sink
// writes: purchases by (site, order_number) and version, discrepancies by
// (site, order_number, kind, field), raw_events by the record's Kafka
// position within the month of its received-at.
func TestFunctionalReinsertedBatchesCollapse(t *testing.T) {
	ctx := ctxT(t)
	cfg := testConfig(t)
	if _, err := Migrate(ctx, cfg, quiet); err != nil {
		t.Fatal(err)
	}
	conn := openDB(t, cfg)
	ps, ds, raws := sampleData(time.Now())
	w := &chWriter{conn: conn}
	for range 2 {
		for _, tb := range fillTables(t, ps, ds, raws) {
			if err := w.insert(ctx, tb); err != nil {
				t.Fatal(err)
			}
		}
	}
	for table, want := range map[string]int{"purchases": len(ps), "discrepancies": len(ds), "raw_events": len(raws)} {
		var final, physical uint64
		if err := conn.QueryRow(ctx, "SELECT count() FROM "+table+" FINAL").Scan(&final); err != nil {
			t.Fatal(err)
		}
		if err := conn.QueryRow(ctx, "SELECT count() FROM "+table).Scan(&physical); err != nil {
			t.Fatal(err)
		}
		if final != uint64(want) || physical < uint64(want) {
			t.Errorf("%s: %d rows in FINAL (%d physical) after inserting the same %d rows twice; want %d", table, final, physical, want, want)
		}
	}
}
