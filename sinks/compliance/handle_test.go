package compliance

import (
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/twmb/franz-go/pkg/kgo"

	"purchasesync/deploy/testenv"
	"purchasesync/processors/sites/sitestest"
	"purchasesync/schemas"
)

// The fast tier of a request: parsing, the lookup of the customer's keys,
// and the statements it runs, against fakeConn's scripted answers. The
// functional tests run the same requests on ClickHouse.

const shop = "acme.myshopify.com"

// lookups answers the processor's queries: acme's registry site plus a
// site only raw_events remember, the customer's purchases by order id and
// by email or id, and raw events whose body has the email (one of them
// only as a substring).
func lookups(sql string, args []any) [][]any {
	switch {
	case strings.HasPrefix(sql, "SELECT DISTINCT site FROM raw_events"):
		return [][]any{{"acme"}, {"gone"}}
	case strings.Contains(sql, "shopify_order_id IN ?"):
		return [][]any{{"acme", "1001"}}
	case strings.HasPrefix(sql, "SELECT site, order_number FROM purchases"):
		return [][]any{{"acme", "1002"}, {"gone", "9"}}
	case strings.HasPrefix(sql, "SELECT site, order_number, body FROM raw_events"):
		return [][]any{{"acme", "1003", `{"email":"Bob@X.com"}`}, {"acme", "1004", `{"email":"jimbob@x.com"}`}}
	case strings.HasPrefix(sql, reportQuery):
		id := "5550"
		return [][]any{{args[0], "1002", &id, "bob@x.com", "7", "Bob", "B", "94107", "1 Main St", "1.2.3.4", []string{"SAVE"}, "USD"}}
	}
	return nil
}

func handled(t *testing.T, cfg Config, topic, body string) (*fakeConn, error) {
	t.Helper()
	conn := newFakeConn()
	conn.answer = lookups
	p, err := New(cfg, Deps{Conn: conn, Sites: sitestest.New(schemas.Site{Site: "acme", ShopDomain: shop, OrderKey: schemas.OrderKeyID}),
		Registerer: prometheus.NewRegistry()})
	if err != nil {
		t.Fatal(err)
	}
	return conn, p.Handle(context.Background(), RequestRef{ID: "t.compliance.v1/0/7"}, topic, []byte(body))
}

func sameList(t *testing.T, what string, got, want []string) {
	t.Helper()
	if !slices.Equal(got, want) {
		t.Errorf("%s:\n got %s\nwant %s", what, strings.Join(got, "\n     "), strings.Join(want, "\n     "))
	}
}

// TestHandleCustomersRedact: the customer's orders are the union of those
// found by order id (and, in order_id mode, the ids themselves), by email
// or customer id, and by raw events whose parsed email matches; each
// site's orders lose their personal columns in one statement per table.
func TestHandleCustomersRedact(t *testing.T) {
	conn, err := handled(t, DefaultConfig(), schemas.ComplianceCustomersRedact,
		`{"shop_domain":" ACME.myshopify.com ","customer":{"id":7,"email":" Bob@x.com "},"orders_to_redact":[111]}`)
	if err != nil {
		t.Fatal(err)
	}
	sameList(t, "lookups", conn.queries, []string{
		"SELECT DISTINCT site FROM raw_events WHERE shop_domain = ? | acme.myshopify.com",
		"SELECT site, order_number FROM purchases WHERE site IN ? AND shopify_order_id IN ? | (acme, gone) | (111)",
		"SELECT site, order_number FROM purchases WHERE site IN ? AND ((email != '' AND lower(email) = lower(?)) OR (customer_id != '' AND customer_id = ?)) | (acme, gone) | Bob@x.com | 7",
		"SELECT site, order_number, body FROM raw_events WHERE site IN ? AND positionCaseInsensitive(body, ?) > 0 | (acme, gone) | Bob@x.com",
	})
	// Sites in map order: compare sorted. jimbob's order 1004 is not his.
	// The discrepancy fields blanked are the table's personal ones, so a
	// row added to schemas.ComparedFields needs no edit here.
	personal := "(" + strings.Join(schemas.PersonalFieldNames(), ", ") + ")"
	got := slices.Sorted(slices.Values(conn.execs))
	sameList(t, "statements", got, []string{
		"ALTER TABLE discrepancies UPDATE storefront_value = '', shopify_value = '' WHERE site = ? AND order_number IN ? AND field IN ? | acme | (1001, 1002, 1003, 111) | " + personal,
		"ALTER TABLE discrepancies UPDATE storefront_value = '', shopify_value = '' WHERE site = ? AND order_number IN ? AND field IN ? | gone | (9) | " + personal,
		"ALTER TABLE purchases UPDATE email = '', customer_id = '', first_name = '', last_name = '', shipping_zip = '', shipping_address = '', ip_address = '' WHERE site = ? AND order_number IN ? | acme | (1001, 1002, 1003, 111)",
		"ALTER TABLE purchases UPDATE email = '', customer_id = '', first_name = '', last_name = '', shipping_zip = '', shipping_address = '', ip_address = '' WHERE site = ? AND order_number IN ? | gone | (9)",
		"ALTER TABLE raw_events UPDATE body = '' WHERE site = ? AND order_number IN ? | acme | (1001, 1002, 1003, 111)",
		"ALTER TABLE raw_events UPDATE body = '' WHERE site = ? AND order_number IN ? | gone | (9)",
	})
	checkRequestRows(t, conn, schemas.ComplianceCustomersRedact, 5)
}

// checkRequestRows: the request is recorded received before it is carried
// out and completed after, under its Kafka position, with its sites and
// how many orders it touched.
func checkRequestRows(t *testing.T, conn *fakeConn, topic string, orders uint64) {
	t.Helper()
	if len(conn.requests) != 2 {
		t.Fatalf("%d compliance_requests rows, want received and completed", len(conn.requests))
	}
	for i, want := range []struct {
		status string
		orders uint64
	}{{"received", 0}, {"completed", orders}} {
		r := conn.requests[i]
		if r[0] != "t.compliance.v1/0/7" || r[1] != topic || r[2] != shop || !slices.Equal(r[3].([]string), []string{"acme", "gone"}) ||
			r[4] != want.status || r[5] != want.orders {
			t.Errorf("compliance_requests row %d = %v, want %s with %d orders", i, r, want.status, want.orders)
		}
	}
}

// TestHandleShopRedact: every row of each of the shop's sites goes, and
// the shop's unrouted raw events.
func TestHandleShopRedact(t *testing.T) {
	conn, err := handled(t, DefaultConfig(), schemas.ComplianceShopRedact, `{"shop_id":1,"shop_domain":"acme.myshopify.com"}`)
	if err != nil {
		t.Fatal(err)
	}
	sameList(t, "statements", conn.execs, []string{
		"ALTER TABLE purchases DELETE WHERE site = ? | acme",
		"ALTER TABLE discrepancies DELETE WHERE site = ? | acme",
		"ALTER TABLE raw_events DELETE WHERE site = ? | acme",
		"ALTER TABLE purchases DELETE WHERE site = ? | gone",
		"ALTER TABLE discrepancies DELETE WHERE site = ? | gone",
		"ALTER TABLE raw_events DELETE WHERE site = ? | gone",
		"ALTER TABLE raw_events DELETE WHERE shop_domain = ? | acme.myshopify.com",
	})
	checkRequestRows(t, conn, schemas.ComplianceShopRedact, 0)
}

// TestHandleOnClusterMutatesLocalTables: in cluster mode the mutations go
// to the replicated local tables, on every shard.
func TestHandleOnClusterMutatesLocalTables(t *testing.T) {
	cfg := DefaultConfig()
	cfg.Cluster, cfg.Database = "events", "purchasesync"
	conn, err := handled(t, cfg, schemas.ComplianceShopRedact, `{"shop_domain":"acme.myshopify.com"}`)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := conn.execs[0], "ALTER TABLE `purchasesync`.`purchases_local` ON CLUSTER `events` DELETE WHERE site = ? | acme"; got != want {
		t.Errorf("first statement %q, want %q", got, want)
	}
}

// TestHandleDataRequest: a data request reads the customer's purchases
// into a report and changes nothing.
func TestHandleDataRequest(t *testing.T) {
	cfg := DefaultConfig()
	cfg.ReportDir = t.TempDir()
	conn, err := handled(t, cfg, schemas.ComplianceCustomersDataRequest,
		`{"shop_domain":"acme.myshopify.com","customer":{"id":7},"orders_requested":[111],"data_request":{"id":42}}`)
	if err != nil {
		t.Fatal(err)
	}
	if len(conn.execs) != 0 {
		t.Errorf("a data request ran mutations: %v", conn.execs)
	}
	b, err := os.ReadFile(filepath.Join(cfg.ReportDir, "acme.myshopify.com-42.json"))
	if err != nil {
		t.Fatal(err)
	}
	var report struct {
		CustomerID string      `json:"customer_id"`
		Purchases  []reportRow `json:"purchases"`
	}
	if err := json.Unmarshal(b, &report); err != nil {
		t.Fatal(err)
	}
	// One report query per site: acme (1001, 1002, 111) and gone (9).
	if report.CustomerID != "7" || len(report.Purchases) != 2 || report.Purchases[0].Site != "acme" || report.Purchases[0].ShippingAddress != "1 Main St" {
		t.Errorf("report = %s", b)
	}
	checkRequestRows(t, conn, schemas.ComplianceCustomersDataRequest, 2)
}

// TestHandleRefusesUnreadableRequests: a request that could match too much
// or names no shop is refused before it touches ClickHouse.
func TestHandleRefusesUnreadableRequests(t *testing.T) {
	for _, c := range []struct{ topic, body string }{
		{schemas.ComplianceCustomersRedact, `{"shop_domain":"acme.myshopify.com","customer":{"email":" "}}`},
		{schemas.ComplianceCustomersRedact, `{"shop_domain":"acme.myshopify.com","customer":{"id":7},"orders_to_redact":["1 OR 1=1"]}`},
		{schemas.ComplianceShopRedact, `{"shop_domain":""}`},
		{"customers/unknown", `{"shop_domain":"acme.myshopify.com"}`},
		{schemas.ComplianceShopRedact, `{`},
	} {
		conn, err := handled(t, DefaultConfig(), c.topic, c.body)
		var inv *InvalidRequestError
		if !errors.As(err, &inv) {
			t.Errorf("%s %s: err %v, want an InvalidRequestError", c.topic, c.body, err)
		}
		if len(conn.queries)+len(conn.execs)+len(conn.requests) != 0 {
			t.Errorf("%s %s: touched ClickHouse: %v %v %v", c.topic, c.body, conn.queries, conn.execs, conn.requests)
		}
	}
}

// TestRequestLoggedOnceThroughRetries: a request that fails while
// ClickHouse is down is retried; the log has one line for its arrival, one
// for its completion and one each way for the outage, not one per retry.
func TestRequestLoggedOnceThroughRetries(t *testing.T) {
	conn, logs := newFakeConn(), &testenv.Log{}
	cfg := DefaultConfig()
	cfg.RetryInitial, cfg.RetryMax = 5*time.Millisecond, 20*time.Millisecond
	p, err := New(cfg, Deps{Conn: conn, Sites: noSites{}, Registerer: prometheus.NewRegistry(), Logger: logs.Logger()})
	if err != nil {
		t.Fatal(err)
	}
	conn.SetDown(true)
	rec := &kgo.Record{Topic: cfg.Topics.Name(schemas.TopicCompliance), Key: []byte(shop), Value: []byte(`{"shop_domain":"acme.myshopify.com"}`),
		Headers: []kgo.RecordHeader{{Key: schemas.HeaderTopic, Value: []byte(schemas.ComplianceShopRedact)}}}
	done := make(chan error, 1)
	go func() { done <- p.handleWithRetry(context.Background(), rec) }()
	time.Sleep(300 * time.Millisecond) // a dozen retries
	if p.Ready() == nil || conn.Written()[shop] != 0 {
		t.Fatalf("while ClickHouse is down: ready %v, written %v", p.Ready(), conn.Written())
	}
	conn.SetDown(false)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	for line, want := range map[string]int{"compliance request received": 1, "compliance request completed": 1,
		"ClickHouse outage began": 1, "ClickHouse outage over": 1} {
		if n := logs.Count(line); n != want {
			t.Errorf("%d %q lines, want %d:\n%s", n, line, want, logs)
		}
	}
}
