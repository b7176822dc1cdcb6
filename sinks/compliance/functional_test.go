package compliance

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2"
	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/twmb/franz-go/pkg/kgo"

	"purchasesync/deploy/testenv"
	"purchasesync/processors/sites/sitestest"
	"purchasesync/schemas"
)

// openTestDB creates a database of the test's own with the sink's schema,
// read from the sink's migration files (the contract of DESIGN §5; the
// analyst views are left out).
func openTestDB(t *testing.T) driver.Conn {
	t.Helper()
	addr := testenv.ClickHouse(t)
	db := testenv.Name(t)
	admin, err := clickhouse.Open(&clickhouse.Options{Addr: []string{addr}, ReadTimeout: 20 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if err := admin.Exec(ctx, "CREATE DATABASE `"+db+"`"); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { admin.Exec(context.Background(), "DROP DATABASE IF EXISTS `"+db+"`"); admin.Close() })
	conn, err := clickhouse.Open(&clickhouse.Options{Addr: []string{addr}, Auth: clickhouse.Auth{Database: db}, ReadTimeout: 20 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	all, _ := filepath.Glob(filepath.Join(testenv.RepoRoot(), "sinks", "clickhouse", "sql", "migrations", "*.sql"))
	var files []string
	for _, f := range all {
		if !strings.HasSuffix(f, "_analyst_views.sql") {
			files = append(files, f)
		}
	}
	sort.Strings(files)
	if len(files) < 4 || !strings.HasSuffix(files[3], "_compliance_requests.sql") {
		t.Fatalf("sink migrations not found: %v", files)
	}
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		// Comments go first: they may contain ';'.
		var lines []string
		for _, l := range strings.Split(string(b), "\n") {
			if i := strings.Index(l, "--"); i >= 0 {
				l = l[:i]
			}
			lines = append(lines, l)
		}
		for _, stmt := range strings.Split(strings.Join(lines, "\n"), ";") {
			if q := strings.TrimSpace(stmt); q != "" {
				if err := conn.Exec(ctx, q); err != nil {
					t.Fatalf("%s: %v", filepath.Base(f), err)
				}
			}
		}
	}
	return conn
}

// insert writes rows with INSERT … SELECT: a VALUES insert needs the
// driver's batch API, which is more than a fixture needs.
func insert(t *testing.T, conn driver.Conn, table, cols string, rows ...string) {
	t.Helper()
	for _, r := range rows {
		exec(t, conn, "INSERT INTO "+table+" ("+cols+") SELECT "+r)
	}
}

func exec(t *testing.T, conn driver.Conn, q string) {
	t.Helper()
	if err := conn.Exec(context.Background(), q); err != nil {
		t.Fatalf("%s: %v", q, err)
	}
}

func count(t *testing.T, conn driver.Conn, q string, args ...any) uint64 {
	t.Helper()
	var n uint64
	if err := conn.QueryRow(context.Background(), q, args...).Scan(&n); err != nil {
		t.Fatalf("%s: %v", q, err)
	}
	return n
}

const (
	acmeShop  = "acme.myshopify.com"
	otherShop = "gone.myshopify.com"
	jane      = "jane@example.com"
)

func seed(t *testing.T, conn driver.Conn) {
	insert(t, conn, "purchases", "site, order_number, shopify_order_id, email, customer_id, first_name, last_name, shipping_zip, shipping_address, ip_address, registered_at, updated_at, version",
		"'acme', '5001', '5001', 'Jane@Example.com', '77', 'Jane', 'Doe', '10115', 'Main St 1, Berlin', '203.0.113.9', now(), now(), 1",
		"'acme', '5002', '5002', 'bob@example.com', '88', 'Bob', 'Roe', '20095', 'Elm St 2, Hamburg', '203.0.113.10', now(), now(), 1",
		"'acme', '5003', '5003', '', '', 'Jane', 'Doe', '10115', 'Main St 1, Berlin', '', now(), now(), 1",
		"'gone', '9001', '9001', 'zed@example.com', '99', 'Zed', 'Z', '1', 'X', '', now(), now(), 1")
	insert(t, conn, "discrepancies", "site, order_number, kind, field, storefront_value, shopify_value, detected_at",
		"'acme', '5001', 'field_mismatch', 'email', 'jane@example.com', 'jane.doe@example.com', now()",
		"'acme', '5001', 'field_mismatch', 'subtotal', '10.00', '12.00', now()",
		"'gone', '9001', 'field_mismatch', 'email', 'zed@example.com', 'z@example.com', now()")
	insert(t, conn, "raw_events", "source, site, order_number, received_at, shop_domain, kafka_topic, kafka_partition, kafka_offset, body",
		`'shopify', 'acme', '5001', now(), 'acme.myshopify.com', 'o', 0, 1, '{"id":5001,"email":"jane@example.com"}'`,
		`'storefront', 'acme', '5001', now(), '', 's', 0, 1, '{"customer":{"email":"JANE@example.com"}}'`,
		`'shopify', 'acme', '5002', now(), 'acme.myshopify.com', 'o', 0, 2, '{"id":5002,"email":"bob@example.com"}'`,
		`'shopify', 'acme', '5004', now(), 'acme.myshopify.com', 'o', 0, 3, '{"id":5004,"email":"jane@example.com"}'`,
		`'shopify', 'gone', '9001', now(), 'gone.myshopify.com', 'o', 0, 4, '{"id":9001,"email":"zed@example.com"}'`,
		`'shopify', '', '', now(), 'gone.myshopify.com', 'u', 0, 5, '{"id":9002,"email":"zed@example.com"}'`,
		// Other customers whose emails contain Jane's (M4 of the security
		// review: a substring match redacted and reported them too).
		`'shopify', 'acme', '5005', now(), 'acme.myshopify.com', 'o', 0, 6, '{"id":5005,"email":"mary.jane@example.com","note":"not jane@example.com"}'`,
		`'storefront', 'acme', '5006', now(), '', 's', 0, 2, '{"customer":{"email":"jane@example.com.au"}}'`)
}

// TestFunctionalRedaction on the real ClickHouse: after customers/redact no
// row holds the customer's email (nor names, zip, IP of the listed order),
// other customers are untouched; after shop/redact nothing of that shop is
// left; a data request writes a report. The last request goes through Kafka.
func TestFunctionalRedaction(t *testing.T) {
	conn, p, dir := seededAcme(t)
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()

	// Jane: by email (5001), by the listed order id (5003, no email on it),
	// and a raw event of an order not in purchases (5004). Carried out twice
	// (a crash before the offset commit): still one request.
	janeRef := RequestRef{ID: "compliance.v1/0/1", ReceivedAt: time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)}
	// A discrepancy of every compared field on Jane's order 5003: the
	// personal ones are blanked, the others kept.
	for _, f := range schemas.ComparedFields {
		insert(t, conn, "discrepancies", "site, order_number, kind, field, storefront_value, shopify_value, detected_at",
			fmt.Sprintf("'acme', '5003', 'field_mismatch', '%s', '%s', '%s', now()", f.Name, f.Example, f.Example))
	}
	for i := range 2 {
		if err := p.Handle(ctx, janeRef, schemas.ComplianceCustomersRedact, []byte(`{"shop_id":1,"shop_domain":"acme.myshopify.com","customer":{"id":77,"email":"Jane@example.com"},"orders_to_redact":[5003]}`)); err != nil {
			t.Fatal(err)
		}
		orders := int64(3) // the second run finds only what is left by order id
		if i == 1 {
			orders = -1
		}
		checkRecorded(t, conn, janeRef.ID, schemas.ComplianceCustomersRedact, acmeShop, "acme", orders, janeRef.ReceivedAt)
	}
	if n := count(t, conn, "SELECT count() FROM compliance_requests WHERE positionCaseInsensitive(concat(request_id, '|', topic, '|', shop_domain, '|', arrayStringConcat(sites, '|')), 'jane') > 0"); n != 0 {
		t.Errorf("compliance_requests: %d rows hold the customer's email", n)
	}
	for _, q := range []string{
		"SELECT count() FROM purchases WHERE positionCaseInsensitive(email, ?) > 0",
		"SELECT count() FROM raw_events WHERE positionCaseInsensitive(body, ?) > 0 AND order_number NOT IN ('5005', '5006')",
		"SELECT count() FROM discrepancies WHERE positionCaseInsensitive(storefront_value, ?) > 0 OR positionCaseInsensitive(shopify_value, 'jane.doe') > 0",
	} {
		if n := count(t, conn, q, jane); n != 0 {
			t.Errorf("%s: %d rows still hold the email", q, n)
		}
	}
	if n := count(t, conn, "SELECT count() FROM purchases WHERE site = 'acme' AND (first_name = 'Jane' OR shipping_zip = '10115' OR ip_address = '203.0.113.9' OR customer_id = '77')"); n != 0 {
		t.Errorf("%d purchases keep Jane's other personal data", n)
	}
	if n := count(t, conn, "SELECT count() FROM purchases WHERE email = 'bob@example.com' AND first_name = 'Bob'"); n != 1 {
		t.Error("Bob's purchase was touched")
	}
	if n := count(t, conn, "SELECT count() FROM raw_events WHERE positionCaseInsensitive(body, 'bob@example.com') > 0"); n != 1 {
		t.Error("Bob's raw event was touched")
	}
	if n := count(t, conn, "SELECT count() FROM raw_events WHERE positionCaseInsensitive(body, 'mary.jane@example.com') > 0 OR positionCaseInsensitive(body, 'jane@example.com.au') > 0"); n != 2 {
		t.Errorf("raw events of customers whose email only contains Jane's were redacted: %d of 2 left", n)
	}
	if n := count(t, conn, "SELECT count() FROM discrepancies WHERE field = 'subtotal' AND storefront_value = '10.00'"); n != 1 {
		t.Error("a non-personal discrepancy value was blanked")
	}
	for _, f := range schemas.ComparedFields {
		kept := count(t, conn, "SELECT count() FROM discrepancies WHERE order_number = '5003' AND field = ? AND storefront_value = ? AND shopify_value = ?", f.Name, f.Example, f.Example)
		if (kept == 0) != f.PII {
			t.Errorf("discrepancy of %s (personal data: %v): %d rows keep its values", f.Name, f.PII, kept)
		}
	}
	if n := count(t, conn, "SELECT count() FROM purchases WHERE site = 'acme'"); n != 3 {
		t.Errorf("customers/redact removed purchases: %d left, want 3 (redacted, not deleted)", n)
	}

	// A data request for Bob.
	if err := p.Handle(ctx, RequestRef{ID: "compliance.v1/0/2"}, schemas.ComplianceCustomersDataRequest, []byte(`{"shop_domain":"acme.myshopify.com","customer":{"id":88,"email":"bob@example.com"},"orders_requested":[5002],"data_request":{"id":9999}}`)); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(filepath.Join(dir, "acme.myshopify.com-9999.json"))
	if err != nil || !strings.Contains(string(b), `"email": "bob@example.com"`) || strings.Contains(string(b), "5001") {
		t.Errorf("report: %v\n%s", err, b)
	}

	// Unreadable requests are refused as such (not retried forever).
	var inv *InvalidRequestError
	if err := p.Handle(ctx, RequestRef{ID: "compliance.v1/0/3"}, schemas.ComplianceCustomersRedact, []byte(`{"shop_domain":"acme.myshopify.com"}`)); !errors.As(err, &inv) {
		t.Errorf("customer-less redact: %v, want InvalidRequestError", err)
	}

	// shop/redact through Kafka, for a shop whose site is gone from the
	// registry: found through raw_events.
	brokers := testenv.Kafka(t)
	topics := testenv.Topics(t, brokers, 1)
	cl, err := kgo.NewClient(kgo.SeedBrokers(brokers...))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	rec := &kgo.Record{Topic: topics.Name(schemas.TopicCompliance), Key: []byte(otherShop), Value: []byte(`{"shop_id":2,"shop_domain":"gone.myshopify.com"}`),
		Headers: []kgo.RecordHeader{{Key: schemas.HeaderTopic, Value: []byte(schemas.ComplianceShopRedact)}}}
	produced, err := cl.ProduceSync(ctx, rec).First()
	if err != nil {
		t.Fatal(err)
	}
	kcfg := DefaultConfig()
	kcfg.Topics = topics
	kcfg.Group = testenv.Name(t)
	kp, err := New(kcfg, Deps{Conn: conn, Sites: acmeSites(), KafkaOpts: []kgo.Opt{kgo.SeedBrokers(brokers...)}})
	if err != nil {
		t.Fatal(err)
	}
	rctx, rcancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- kp.Run(rctx) }()
	// Done means counted as done: Handle returns only after ClickHouse
	// applied every mutation.
	testenv.Eventually(t, 60*time.Second, "shop/redact completed", func() bool {
		return testutil.ToFloat64(kp.m.requests.WithLabelValues(schemas.ComplianceShopRedact, "done")) == 1
	})
	rcancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	for _, table := range []string{"purchases", "discrepancies", "raw_events"} {
		if n := count(t, conn, "SELECT count() FROM "+table+" WHERE site = 'gone'"); n != 0 {
			t.Errorf("%s: %d rows of the redacted shop left", table, n)
		}
	}
	if n := count(t, conn, "SELECT count() FROM purchases WHERE site = 'acme'"); n != 3 {
		t.Errorf("shop/redact of another shop touched acme: %d purchases left", n)
	}
	if n := count(t, conn, "SELECT count() FROM raw_events WHERE positionCaseInsensitive(body, 'zed@example.com') > 0"); n != 0 {
		t.Errorf("%d raw events of the redacted shop left", n)
	}
	// Recorded under the record's Kafka position, received when produced.
	checkRecorded(t, conn, RefOf(produced).ID, schemas.ComplianceShopRedact, otherShop, "gone", 0, produced.Timestamp)
	if n := count(t, conn, "SELECT count() FROM compliance_requests FINAL"); n != 3 {
		t.Errorf("compliance_requests has %d requests, want 3 (the unreadable one is not recorded)", n)
	}
}

// checkRecorded wants exactly one row for request id in compliance_requests
// FINAL, completed, with the given fields (orders < 0: any).
func checkRecorded(t *testing.T, conn driver.Conn, id, topic, shop, site string, orders int64, receivedAt time.Time) {
	t.Helper()
	rows, err := conn.Query(context.Background(), "SELECT topic, shop_domain, sites, toString(status), orders_affected, received_at, completed_at, version FROM compliance_requests FINAL WHERE request_id = ?", id)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	n := 0
	for rows.Next() {
		n++
		var (
			gotTopic, gotShop, status string
			sites                     []string
			gotOrders, version        uint64
			recv, done                time.Time
		)
		if err := rows.Scan(&gotTopic, &gotShop, &sites, &status, &gotOrders, &recv, &done, &version); err != nil {
			t.Fatal(err)
		}
		if gotTopic != topic || gotShop != shop || strings.Join(sites, ",") != site || status != "completed" || version != 2 || (orders >= 0 && gotOrders != uint64(orders)) {
			t.Errorf("request %s: topic %q shop %q sites %v status %q version %d orders %d; want %q %q [%s] completed 2 %d", id, gotTopic, gotShop, sites, status, version, gotOrders, topic, shop, site, orders)
		}
		if !recv.Equal(receivedAt.Truncate(time.Second)) || done.Before(recv) {
			t.Errorf("request %s: received_at %v completed_at %v; want received_at %v, completed after", id, recv, done, receivedAt)
		}
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	if n != 1 {
		t.Errorf("compliance_requests FINAL has %d rows for request %s, want 1", n, id)
	}
}

// TestFunctionalLargeOrderLists: a customer with tens of thousands of
// order ids is looked up, reported and redacted in chunks; one IN list of
// them all would pass ClickHouse's max_query_size and fail at every retry,
// blocking compliance.v1 (L2 of the security review).
func TestFunctionalLargeOrderLists(t *testing.T) {
	conn, p, dir := seededAcme(t)
	ctx, cancel := context.WithTimeout(context.Background(), 120*time.Second)
	defer cancel()
	ids := []string{"5002"}
	for i := range 30000 {
		ids = append(ids, fmt.Sprint(1_000_000_000+i))
	}
	list := strings.Join(ids, ",")
	if err := p.Handle(ctx, RequestRef{ID: "compliance.v1/0/7"}, schemas.ComplianceCustomersDataRequest,
		[]byte(`{"shop_domain":"acme.myshopify.com","customer":{"id":88},"orders_requested":[`+list+`],"data_request":{"id":4242}}`)); err != nil {
		t.Fatalf("data request with %d order ids: %v", len(ids), err)
	}
	b, err := os.ReadFile(filepath.Join(dir, "acme.myshopify.com-4242.json"))
	if err != nil || !strings.Contains(string(b), `"email": "bob@example.com"`) {
		t.Errorf("report: %v\n%.300s", err, b)
	}
	if err := p.Handle(ctx, RequestRef{ID: "compliance.v1/0/8"}, schemas.ComplianceCustomersRedact,
		[]byte(`{"shop_domain":"acme.myshopify.com","customer":{"id":88},"orders_to_redact":[`+list+`]}`)); err != nil {
		t.Fatalf("redact with %d order ids: %v", len(ids), err)
	}
	if n := count(t, conn, "SELECT count() FROM purchases WHERE email = 'bob@example.com'"); n != 0 {
		t.Errorf("Bob's purchase not redacted")
	}
}

// seededAcme is the seeded test database and a processor for the acme site
// (order_id mode) writing its reports to the returned directory.
func seededAcme(t *testing.T) (driver.Conn, *Processor, string) {
	t.Helper()
	conn := openTestDB(t)
	seed(t, conn)
	cfg := DefaultConfig()
	cfg.ReportDir = t.TempDir()
	p, err := New(cfg, Deps{Conn: conn, Sites: acmeSites(), Registerer: prometheus.NewRegistry(), Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	return conn, p, cfg.ReportDir
}

// acmeSites is the registry of the seeded data: acme, in order_id mode.
func acmeSites() *sitestest.Registry {
	return sitestest.New(schemas.Site{Site: "acme", ShopDomain: acmeShop, OrderKey: schemas.OrderKeyID})
}
