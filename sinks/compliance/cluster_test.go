package compliance

import (
	"context"
	"log/slog"
	"testing"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2"
	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
	"github.com/prometheus/client_golang/prometheus"

	"purchasesync/deploy/testenv"
	"purchasesync/processors/sites/sitestest"
	"purchasesync/schemas"
	chsink "purchasesync/sinks/clickhouse"
)

// TestFunctionalRedactionOnCluster: on the stack's two-replica TLS cluster
// in the sink's cluster mode (Distributed over replicated local tables,
// built by the sink's own migrations: a test may cross the stage line the
// code does not), customers/redact and shop/redact leave nothing of the
// customer or the shop on either replica, and Handle returns only once both
// replicas applied the mutations.
func TestFunctionalRedactionOnCluster(t *testing.T) {
	cl := testenv.ClickHouseCluster(t)
	cfg := chsink.DefaultConfig()
	cfg.Addr, cfg.Database = cl.Addrs, testenv.Name(t)
	cfg.Username, cfg.Password = cl.Getenv("PURCHASESYNC_CLICKHOUSE_USER"), cl.Getenv("PURCHASESYNC_CLICKHOUSE_PASSWORD")
	cfg.Cluster = cl.Getenv("PURCHASESYNC_CLICKHOUSE_CLUSTER")
	cfg.TLS = testenv.CHClusterTLS(t, cl)
	ctx, cancel := context.WithTimeout(context.Background(), 120*time.Second)
	defer cancel()
	if _, err := chsink.Migrate(ctx, cfg, slog.New(slog.DiscardHandler)); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if c, err := chsink.Open(cfg, ""); err == nil {
			_ = c.Exec(context.Background(), "DROP DATABASE IF EXISTS `"+cfg.Database+"` ON CLUSTER `"+cfg.Cluster+"`")
			c.Close()
		}
	})
	open := func(addrs ...string) driver.Conn {
		c := cfg
		c.Addr = addrs
		conn, err := chsink.Open(c, c.Database)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { conn.Close() })
		return conn
	}
	conn := open(cfg.Addr...)
	replicas := []driver.Conn{open(cfg.Addr[0]), open(cfg.Addr[1])}
	// The fixture's INSERT … SELECT into the Distributed tables, synchronous
	// so that both replicas hold the rows before the requests.
	seed(t, syncInserts{conn})

	pcfg := DefaultConfig()
	pcfg.Cluster, pcfg.Database = cfg.Cluster, cfg.Database
	sites := sitestest.New(schemas.Site{Site: "acme", ShopDomain: acmeShop, OrderKey: schemas.OrderKeyID}, schemas.Site{Site: "gone", ShopDomain: otherShop})
	p, err := New(pcfg, Deps{Conn: conn, Replicas: replicas, Sites: sites, Registerer: prometheus.NewRegistry(), Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	if err := p.Handle(ctx, RequestRef{ID: "compliance.v1/0/1"}, schemas.ComplianceCustomersRedact,
		[]byte(`{"shop_id":1,"shop_domain":"acme.myshopify.com","customer":{"id":77,"email":"Jane@example.com"},"orders_to_redact":[5003]}`)); err != nil {
		t.Fatal(err)
	}
	if err := p.Handle(ctx, RequestRef{ID: "compliance.v1/0/2"}, schemas.ComplianceShopRedact,
		[]byte(`{"shop_id":2,"shop_domain":"gone.myshopify.com"}`)); err != nil {
		t.Fatal(err)
	}
	// Right after Handle, on each replica's own tables (the request rows
	// once the replica has fetched them).
	for i, r := range replicas {
		exec(t, r, "SYSTEM SYNC REPLICA compliance_requests_local")
		for _, q := range []string{
			"SELECT count() FROM purchases_local WHERE positionCaseInsensitive(email, 'jane') > 0 OR first_name = 'Jane' OR customer_id = '77'",
			// 5005 and 5006 belong to customers whose emails only contain
			// Jane's: they stay (below).
			"SELECT count() FROM raw_events_local WHERE positionCaseInsensitive(body, 'jane') > 0 AND order_number NOT IN ('5005', '5006')",
			"SELECT count() FROM discrepancies_local WHERE positionCaseInsensitive(storefront_value, 'jane') > 0 OR positionCaseInsensitive(shopify_value, 'jane') > 0",
			"SELECT count() FROM purchases_local WHERE site = 'gone'",
			"SELECT count() FROM raw_events_local WHERE shop_domain = 'gone.myshopify.com' OR site = 'gone'",
			"SELECT count() FROM discrepancies_local WHERE site = 'gone'",
		} {
			if n := count(t, r, q); n != 0 {
				t.Errorf("replica %d: %s = %d, want 0", i+1, q, n)
			}
		}
		if n := count(t, r, "SELECT count() FROM purchases_local WHERE email = 'bob@example.com' AND first_name = 'Bob'"); n != 1 {
			t.Errorf("replica %d: Bob's purchase was touched (%d rows)", i+1, n)
		}
		if n := count(t, r, "SELECT count() FROM raw_events_local WHERE order_number IN ('5005', '5006') AND positionCaseInsensitive(body, 'jane') > 0"); n != 2 {
			t.Errorf("replica %d: raw events of customers whose email only contains Jane's were redacted: %d of 2 left", i+1, n)
		}
		if n := count(t, r, "SELECT count() FROM compliance_requests_local FINAL WHERE status = 'completed'"); n != 2 {
			t.Errorf("replica %d: %d completed requests, want 2", i+1, n)
		}
	}
}

// syncInserts runs Exec with insert_distributed_sync.
type syncInserts struct{ driver.Conn }

func (c syncInserts) Exec(ctx context.Context, q string, args ...any) error {
	return c.Conn.Exec(clickhouse.Context(ctx, clickhouse.WithSettings(clickhouse.Settings{"insert_distributed_sync": 1})), q, args...)
}
