package clickhouse

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"testing"
	"time"

	"purchasesync/deploy/testenv"
	"purchasesync/schemas"
)

// sampleData is a small day of traffic on two sites, recent enough for the
// queries' "last 7 days" filters: storefront and webhook registrations,
// matches, a test order, discrepancies, and the raw webhooks behind them.
func sampleData(now time.Time) (ps []*schemas.Purchase, ds []*schemas.Discrepancy, raws []*rawRow) {
	day := now.UTC().Truncate(24 * time.Hour).Add(-24 * time.Hour).Add(10 * time.Hour)
	add := func(site, order, via string, matched, test bool, version uint64) {
		id := order
		p := &schemas.Purchase{Site: site, OrderNumber: order, ShopifyOrderID: &id, RegisteredVia: via, Matched: matched,
			Email: "jane@example.com", Subtotal: "19.99", Currency: "EUR", Test: test, Items: []schemas.Item{{ProductID: "p", Price: "19.99", Quantity: 1}},
			OrderCreatedAt: day, RegisteredAt: day.Add(time.Minute), ReceivedAt: day.Add(time.Minute), UpdatedAt: day.Add(time.Minute), Version: version}
		ps = append(ps, p)
		created := day
		raws = append(raws, &rawRow{Source: sourceShopify, Site: site, OrderNumber: order, ReceivedAt: day.Add(time.Duration(len(raws)+3) * time.Second),
			ShopifyTopic: "orders/create", WebhookID: "wh-" + order, OrderCreatedAt: &created, KafkaTopic: "t", KafkaOffset: int64(len(raws)), Body: "{}"})
	}
	add("example-store", "5837291049", schemas.ViaStorefront, true, false, 2)
	add("example-store", "5837291050", schemas.ViaStorefront, true, false, 2)
	add("example-store", "5837291051", schemas.ViaWebhook, false, false, 1)
	add("example-store", "5837291052", schemas.ViaStorefront, false, true, 1)
	add("other-store", "1001", schemas.ViaReconciliation, false, false, 1)
	add("other-store", "1002", schemas.ViaStorefront, true, false, 2)
	// A site whose storefront sends the order name while its order_key is
	// order_id: one order registered twice, under '#1070' and its id.
	add("twin-store", "5837291070", schemas.ViaWebhook, false, false, 1)
	ps[len(ps)-1].ShopifyOrderName = "#1070"
	add("twin-store", "#1070", schemas.ViaStorefront, false, false, 1)
	ps[len(ps)-1].ShopifyOrderID = nil
	// A redelivered webhook: a second record of the same webhook id.
	again := *raws[0]
	again.KafkaOffset, again.ReceivedAt = 99, again.ReceivedAt.Add(time.Minute)
	raws = append(raws, &again)
	ds = []*schemas.Discrepancy{
		{Site: "example-store", OrderNumber: "5837291049", Kind: schemas.KindFieldMismatch, Field: "email", StorefrontValue: "a@x.com", ShopifyValue: "b@x.com", DetectedAt: day.Add(2 * time.Minute)},
		{Site: "example-store", OrderNumber: "5837291050", Kind: schemas.KindFieldMismatch, Field: "subtotal", StorefrontValue: "1", ShopifyValue: "2", DetectedAt: day.Add(2 * time.Minute)},
		{Site: "other-store", OrderNumber: "1002", Kind: schemas.KindWebhookMissing, DetectedAt: day.Add(3 * time.Minute)},
	}
	return ps, ds, raws
}

// fillTables converts the sample into the sink's tables.
func fillTables(t *testing.T, ps []*schemas.Purchase, ds []*schemas.Discrepancy, raws []*rawRow) []*table {
	t.Helper()
	pt, dt, rt := newPurchasesTable(), newDiscrepanciesTable(), newRawEventsTable()
	for _, p := range ps {
		r, err := purchaseRowOf(p)
		if err != nil {
			t.Fatal(err)
		}
		pt.add(r, rowRef{}, 1)
	}
	for _, d := range ds {
		b, _ := schemas.MarshalDiscrepancy(d)
		r, err := discrepancyRowFrom(b)
		if err != nil {
			t.Fatal(err)
		}
		dt.add(r, rowRef{}, 1)
	}
	for _, r := range raws {
		rt.add(r, rowRef{}, 1)
	}
	return []*table{&pt.table, &dt.table, &rt.table}
}

// jsonEachRow renders a table's rows for INSERT … FORMAT JSONEachRow.
func jsonEachRow(tb *table) []map[string]any {
	var out []map[string]any
	for i := range tb.len() {
		row := map[string]any{}
		for _, c := range tb.cols {
			row[c.name()] = jsonValue(c.at(i))
		}
		out = append(out, row)
	}
	return out
}

func jsonValue(v any) any {
	switch v := v.(type) {
	case *decimal:
		if v == nil {
			return nil
		}
		// A number, not a string: 18.16's JSONEachRow takes no quoted decimals.
		return json.Number(v.String())
	case []*decimal:
		out := make([]any, len(v))
		for i, d := range v {
			out[i] = jsonValue(d)
		}
		return out
	case time.Time:
		return v.UTC().Format(time.DateTime)
	case *time.Time:
		if v == nil {
			return nil
		}
		return v.UTC().Format(time.DateTime)
	case *string:
		if v == nil {
			return nil
		}
		return *v
	}
	return v
}

// decimalZeros strips trailing zeros of decimals: 18.16 prints 9.9900, current
// ClickHouse 9.99.
var decimalZeros = regexp.MustCompile(`(\d+\.\d*?)0+\b`)

func normalizeTSV(s string) string {
	s = decimalZeros.ReplaceAllString(s, "$1")
	return strings.ReplaceAll(s, ".\t", "\t")
}

// TestFunctionalAnalystQueries runs every migration and every README query on
// current ClickHouse (chdb) and on the stack's server with the same sample
// data, and wants the same answers from both.
func TestFunctionalAnalystQueries(t *testing.T) {
	if err := exec.Command("python3", "-c", "import chdb").Run(); err != nil {
		if testenv.Required() {
			t.Fatalf("chdb is required (PURCHASESYNC_FUNCTIONAL_TESTS=1) but `python3 -c 'import chdb'` fails: %v; install it with `python3 -m pip install chdb-core`", err)
		}
		t.Skip("chdb not importable: `python3 -m pip install chdb-core` to run this test")
	}
	ms, err := Migrations()
	if err != nil {
		t.Fatal(err)
	}
	queries, err := Queries()
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	ps, ds, raws := sampleData(now)
	tables := fillTables(t, ps, ds, raws)
	sample := map[string][]map[string]any{}
	for _, tb := range tables {
		sample[tb.name] = jsonEachRow(tb)
	}
	plan, _ := json.Marshal(map[string]any{"migrations": ms, "queries": queries, "sample": sample})
	planFile := filepath.Join(t.TempDir(), "plan.json")
	if err := os.WriteFile(planFile, plan, 0o600); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	cmd := exec.Command("python3", filepath.Join("testdata", "chdb_check.py"), planFile)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("chdb_check.py: %v\n%s", err, stderr.String())
	}
	var report struct {
		Version string
		Errors  []string
		Schemas map[string]string
		Results map[string]string
	}
	if err := json.Unmarshal(out, &report); err != nil {
		t.Fatalf("chdb_check.py output: %v\n%s", err, out)
	}
	t.Logf("chdb (ClickHouse %s) ran %d migrations %d times and %d queries in %s", report.Version, len(ms), len(ms)+2, len(queries), time.Since(start).Round(time.Millisecond))
	for _, e := range report.Errors {
		t.Error("current ClickHouse: " + e)
	}
	for db, s := range report.Schemas {
		if s != report.Schemas["ref"] {
			t.Errorf("current ClickHouse: database %s reached a different schema:\n%s\nwant:\n%s", db, s, report.Schemas["ref"])
		}
	}
	if len(report.Results) != len(queries) {
		t.Fatalf("chdb ran %d of %d queries", len(report.Results), len(queries))
	}
	for name, res := range report.Results {
		if strings.TrimSpace(res) == "" {
			t.Errorf("%s returned no rows on chdb; the sample data is meant to give every query an answer", name)
		}
	}
	if !strings.Contains(report.Results["02_browser_misses.sql"], "example-store") {
		t.Errorf("02_browser_misses.sql on chdb did not find the webhook-registered purchase:\n%s", report.Results["02_browser_misses.sql"])
	}
	// Exactly one pair: twin-store's; other-store's unmatched
	// reconciliation purchase 1001 has no storefront twin.
	if got := strings.TrimSpace(report.Results["09_suspected_doubles.sql"]); !strings.HasPrefix(got, "twin-store\t1\t0\t") || strings.Contains(got, "\n") {
		t.Errorf("09_suspected_doubles.sql on chdb: got %q, want one row for twin-store with 1 double, 0 marked", got)
	}

	// The same data and queries on the stack's server (18.16 locally).
	cfg := testConfig(t)
	ctx := ctxT(t)
	if _, err := Migrate(ctx, cfg, quiet); err != nil {
		t.Fatal(err)
	}
	w := &chWriter{conn: openDB(t, cfg)}
	for _, tb := range tables {
		if err := w.insert(ctx, tb); err != nil {
			t.Fatal(err)
		}
	}
	httpURL := os.Getenv("PURCHASESYNC_CLICKHOUSE_HTTP")
	names := make([]string, 0, len(queries))
	for n := range queries {
		names = append(names, n)
	}
	sort.Strings(names)
	single := map[string]string{}
	for _, name := range names {
		var got string
		if httpURL != "" {
			got = httpQuery(t, httpURL, cfg.Database, queries[name])
			single[name] = got
		} else {
			// Without the HTTP address, only check that the query runs.
			rows, err := w.conn.Query(ctx, queries[name])
			if err != nil {
				t.Errorf("%s on the server: %v", name, err)
				continue
			}
			rows.Close()
			continue
		}
		if normalizeTSV(got) != normalizeTSV(report.Results[name]) {
			t.Errorf("%s: the server and current ClickHouse disagree\nserver:\n%s\nchdb:\n%s", name, got, report.Results[name])
		}
	}

	// The same data on the two-replica cluster in cluster mode (Distributed
	// tables, the views over them): every query, on either replica, gives
	// the single server's answer.
	if httpURL == "" {
		return
	}
	ccfg, cl := clusterConfig(t)
	if _, err := Migrate(ctx, ccfg, quiet); err != nil {
		t.Fatal(err)
	}
	cw := &chWriter{conn: openDB(t, ccfg), cluster: true}
	for _, tb := range tables {
		if err := cw.insert(ctx, tb); err != nil {
			t.Fatal(err)
		}
	}
	// A replica serves reads from its own parts: wait until each has
	// fetched what the other took (analysts see the same lag, usually
	// well under a second).
	syncReplicas(t, ccfg)
	if len(cl.HTTP) != 2 {
		t.Fatalf("the cluster's HTTP addresses: %v, want two (PURCHASESYNC_CHCLUSTER_STACK_CLICKHOUSE_HTTP_ALL)", cl.HTTP)
	}
	for i, name := range names {
		node := i % 2
		got := httpQueryAs(t, cl.HTTP[node], ccfg.Database, ccfg.Username, ccfg.Password, queries[name])
		if normalizeTSV(got) != normalizeTSV(single[name]) {
			t.Errorf("%s: the cluster (node %d) and the single server disagree\ncluster:\n%s\nsingle:\n%s", name, node+1, got, single[name])
		}
	}
	t.Logf("%d analyst queries on the two-replica cluster, alternating replicas: the single server's answers", len(names))
}

func httpQuery(t *testing.T, base, db, sql string) string {
	t.Helper()
	return httpQueryAs(t, base, db, "", "", sql)
}

// httpQueryAs is httpQuery as user (basic authentication; "" for none).
func httpQueryAs(t *testing.T, base, db, user, password, sql string) string {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, base+"/?database="+url.QueryEscape(db)+"&default_format=TSV", strings.NewReader(sql))
	if err != nil {
		t.Fatal(err)
	}
	if user != "" {
		req.SetBasicAuth(user, password)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 {
		t.Fatalf("query on the server: HTTP %d: %s\n%s", resp.StatusCode, b, sql)
	}
	return string(b)
}

// The README's queries are the files of sql/queries, verbatim, so that the
// tests above run exactly what analysts read.
func TestReadmeQuotesEveryQuery(t *testing.T) {
	readme, err := os.ReadFile("README.md")
	if err != nil {
		t.Fatal(err)
	}
	queries, err := Queries()
	if err != nil {
		t.Fatal(err)
	}
	blocks := regexp.MustCompile("(?s)```sql\n(.*?)```").FindAllStringSubmatch(string(readme), -1)
	quoted := map[string]bool{}
	for _, b := range blocks {
		quoted[strings.TrimSpace(b[1])] = true
	}
	for name, q := range queries {
		if !quoted[strings.TrimSpace(q)] {
			t.Errorf("README.md does not quote sql/queries/%s verbatim", name)
		}
	}
	if len(queries) < 5 {
		t.Fatalf("only %d analyst queries", len(queries))
	}
}
