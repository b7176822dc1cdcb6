package clickhouse

import (
	"testing"

	"purchasesync/sinks/internal/chschema"
)

// TestPersonalColumnsAreStringColumns: every column sinks/internal/chschema
// names as personal data (what sinks/compliance sets to the empty string)
// is a String column the sink writes, in the table chschema says; a renamed
// or retyped column fails here, not in a redaction.
func TestPersonalColumnsAreStringColumns(t *testing.T) {
	tables := map[string]*table{
		chschema.Purchases:     &newPurchasesTable().table,
		chschema.Discrepancies: &newDiscrepanciesTable().table,
		chschema.RawEvents:     &newRawEventsTable().table,
	}
	for name, tb := range tables {
		if tb.name != name {
			t.Errorf("buffer of %s writes table %s", name, tb.name)
		}
	}
	check := func(table string, cols []string) {
		t.Helper()
		for _, c := range cols {
			found := false
			for _, bc := range tables[table].cols {
				if bc.name() != c {
					continue
				}
				found = true
				if _, ok := bc.(*col[string]); !ok {
					t.Errorf("%s.%s is %T, not a String column", table, c, bc)
				}
			}
			if !found {
				t.Errorf("%s.%s is not a column the sink writes", table, c)
			}
		}
	}
	check(chschema.Purchases, chschema.PurchasesPersonal)
	check(chschema.Discrepancies, chschema.DiscrepanciesValues)
	check(chschema.RawEvents, chschema.RawEventsBody)
	for _, m := range chschema.Mutated {
		if tables[m] == nil {
			t.Errorf("privacy requests mutate %s, which the sink does not write", m)
		}
	}
}
