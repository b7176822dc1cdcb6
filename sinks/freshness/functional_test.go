package freshness

import (
	"context"
	"log/slog"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"purchasesync/deploy/testenv"
	chsink "purchasesync/sinks/clickhouse"
)

// TestFunctionalNewestRow on the real ClickHouse with the sink's schema: the
// newest row of each table is found, an empty table has no series, and a
// database that is gone counts errors.
func TestFunctionalNewestRow(t *testing.T) {
	cfg := chsink.DefaultConfig()
	cfg.Addr = []string{testenv.ClickHouse(t)}
	cfg.Database = testenv.Name(t)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	if _, err := chsink.Migrate(ctx, cfg, slog.New(slog.DiscardHandler)); err != nil {
		t.Fatal(err)
	}
	conn, err := chsink.Open(cfg, cfg.Database)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	t.Cleanup(func() { _ = conn.Exec(context.Background(), "DROP DATABASE IF EXISTS `"+cfg.Database+"`") })
	for _, ts := range []int64{1_700_000_000, 1_700_000_500, 1_700_000_100} {
		if err := conn.Exec(ctx, `INSERT INTO discrepancies (site, order_number, kind, field, storefront_value, shopify_value, test, detected_at)
			SELECT 'shop', toString(?), 'field_mismatch', 'email', 'a', 'b', 0, toDateTime(?)`, ts, ts); err != nil {
			t.Fatal(err)
		}
	}

	m, err := New(DefaultConfig(), Deps{Conn: conn, Registerer: prometheus.NewRegistry()})
	if err != nil {
		t.Fatal(err)
	}
	m.Poll(ctx)
	if got := gauge(m.m.newest, "discrepancies"); got != 1_700_000_500 {
		t.Errorf("discrepancies newest = %v, want 1700000500", got)
	}
	if n := len(collect(m.m.newest)); n != 1 {
		t.Errorf("%d newest series, want 1 (purchases and raw_events are empty)", n)
	}
	for _, tb := range DefaultTables {
		if got := gauge(m.m.errors, tb.Name); got != 0 {
			t.Errorf("query_errors_total{%s} = %v, want 0", tb.Name, got)
		}
	}

	if err := conn.Exec(ctx, "DROP TABLE discrepancies"); err != nil {
		t.Fatal(err)
	}
	m.Poll(ctx)
	if got := gauge(m.m.errors, "discrepancies"); got != 1 {
		t.Errorf("query_errors_total{discrepancies} = %v after the table was dropped, want 1", got)
	}
}
