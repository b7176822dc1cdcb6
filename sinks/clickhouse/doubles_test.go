package clickhouse

import (
	"testing"
	"time"
)

// TestFunctionalDoublesRepair: after a site's order_key was wrong, its
// doubles are found and marked, never deleted; marking twice marks once.
func TestFunctionalDoublesRepair(t *testing.T) {
	cfg := testConfig(t)
	ctx := ctxT(t)
	if _, err := Migrate(ctx, cfg, quiet); err != nil {
		t.Fatal(err)
	}
	conn := openDB(t, cfg)
	w := &chWriter{conn: conn}
	ps, ds, raws := sampleData(time.Now())
	for _, tb := range fillTables(t, ps, ds, raws) {
		if err := w.insert(ctx, tb); err != nil {
			t.Fatal(err)
		}
	}
	d := Doubles{Conn: conn}
	for _, site := range []string{"example-store", "other-store"} {
		if got, err := d.List(ctx, site); err != nil || len(got) != 0 {
			t.Fatalf("%s: %v, %v; want no doubles (unmatched purchases without a storefront twin, or test orders)", site, got, err)
		}
	}
	got, err := d.List(ctx, "twin-store")
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 1 || got[0].ShopifyOrderNumber != "5837291070" || got[0].StorefrontOrderNumber != "#1070" || got[0].ShopifyOrderID != "5837291070" || got[0].Marked {
		t.Fatalf("twin-store doubles: %+v", got)
	}
	now := time.Date(2026, 12, 6, 12, 0, 0, 0, time.UTC)
	marked, err := d.Mark(ctx, "twin-store", "ops@example.com", "order_key was order_id, storefront sent the name", now)
	if err != nil || len(marked) != 1 || !marked[0].Marked {
		t.Fatalf("mark: %+v, %v", marked, err)
	}
	if again, err := d.Mark(ctx, "twin-store", "ops@example.com", "again", now.Add(time.Hour)); err != nil || len(again) != 0 {
		t.Fatalf("second mark: %+v, %v; want nothing left to mark", again, err)
	}
	got, err = d.List(ctx, "twin-store")
	if err != nil || len(got) != 1 || !got[0].Marked || got[0].MarkedAt == nil || !got[0].MarkedAt.Equal(now) {
		t.Fatalf("after marking: %+v, %v", got, err)
	}
	// Nothing was deleted: both purchases are still there, unchanged.
	var n uint64
	if err := conn.QueryRow(ctx, "SELECT count() FROM purchases FINAL WHERE site = 'twin-store'").Scan(&n); err != nil || n != 2 {
		t.Fatalf("twin-store purchases after marking: %d, %v; want 2", n, err)
	}
	// What the merchant page reads (sampleData's day is yesterday).
	st, err := Merchant{Conn: conn}.Merchant(ctx, "example-store", time.Now().UTC().Add(-24*time.Hour), 1)
	if err != nil || st.LastWebhookAt == nil || st.PurchasesToday["storefront"] != 2 || st.PurchasesToday["webhook"] != 1 || len(st.Discrepancies) != 1 {
		t.Fatalf("merchant stats: %+v, %v", st, err)
	}
	if d := st.Discrepancies[0]; d.Kind != "field_mismatch" || d.StorefrontValue == "" {
		t.Errorf("latest discrepancy %+v", d)
	}
	if st, err := (Merchant{Conn: conn}).Merchant(ctx, "no-such-site", time.Now(), 5); err != nil || st.LastWebhookAt != nil || len(st.PurchasesToday) != 0 || len(st.Discrepancies) != 0 {
		t.Errorf("unknown site: %+v, %v", st, err)
	}
	var daily, markedDaily uint64
	if err := conn.QueryRow(ctx, "SELECT sum(suspected_doubles), sum(marked_doubles) FROM suspected_double_registrations_daily WHERE site = 'twin-store'").Scan(&daily, &markedDaily); err != nil || daily != 1 || markedDaily != 1 {
		t.Fatalf("daily view: %d doubles, %d marked, %v; want 1, 1", daily, markedDaily, err)
	}
}
