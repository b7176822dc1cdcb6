package compliance

import (
	"regexp"
	"slices"
	"strings"
	"testing"

	"purchasesync/schemas"
	"purchasesync/sinks/internal/chschema"
)

// The fast tier of what a customers/redact and a customers/data_request do
// to the sink's tables; the functional tests run them on ClickHouse.

func TestRedactSQL(t *testing.T) {
	got := map[string]string{}
	for _, r := range redactions {
		got[r.table] = redactSQL(r.table, r.cols, r.personalOnly)
	}
	want := map[string]string{
		"purchases":     "ALTER TABLE purchases UPDATE email = '', customer_id = '', first_name = '', last_name = '', shipping_zip = '', shipping_address = '', ip_address = '' WHERE site = ? AND order_number IN ?",
		"raw_events":    "ALTER TABLE raw_events UPDATE body = '' WHERE site = ? AND order_number IN ?",
		"discrepancies": "ALTER TABLE discrepancies UPDATE storefront_value = '', shopify_value = '' WHERE site = ? AND order_number IN ? AND field IN ?",
	}
	for table, w := range want {
		if got[table] != w {
			t.Errorf("%s:\n got %q\nwant %q", table, got[table], w)
		}
	}
	if len(got) != len(want) {
		t.Errorf("redactions cover %d tables, want %d", len(got), len(want))
	}
}

// TestReportHasEveryPersonalColumn: a data request returns all the personal
// data a redaction would blank.
func TestReportHasEveryPersonalColumn(t *testing.T) {
	m := regexp.MustCompile(`^SELECT (.*) FROM purchases FINAL `).FindStringSubmatch(reportQuery)
	if m == nil {
		t.Fatalf("report query not understood: %s", reportQuery)
	}
	cols := strings.Split(m[1], ", ")
	for _, c := range chschema.PurchasesPersonal {
		if !slices.Contains(cols, c) {
			t.Errorf("the data request report does not read purchases.%s", c)
		}
	}
}

// TestRedactsEveryPersonalField: customers/redact blanks the discrepancy
// values of every compared field that is personal data
// (schemas.ComparedFields), and only of those (the functional test runs it).
func TestRedactsEveryPersonalField(t *testing.T) {
	i := slices.IndexFunc(redactions, func(r struct {
		table        string
		cols         []string
		personalOnly bool
	}) bool {
		return r.table == chschema.Discrepancies
	})
	if i < 0 || !redactions[i].personalOnly {
		t.Fatal("discrepancies are not redacted by field")
	}
	for _, f := range schemas.ComparedFields {
		if slices.Contains(piiFields, f.Name) != f.PII {
			t.Errorf("%s (personal data: %v): redacted %v", f.Name, f.PII, !f.PII)
		}
	}
}
