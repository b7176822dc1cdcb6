package clickhouse

import (
	"errors"
	"math/rand/v2"
	"reflect"
	"strings"
	"testing"
	"time"

	dec "github.com/shopspring/decimal"

	"purchasesync/schemas"
)

func TestParseMoneyRoundsInsteadOfTruncating(t *testing.T) {
	f := func(in, want string, wantRounded bool) {
		t.Helper()
		d, rounded, err := parseMoney("subtotal", in)
		if err != nil {
			t.Fatalf("parseMoney(%q): %v", in, err)
		}
		if got := d.decimal().StringFixed(4); got != want || rounded != wantRounded {
			t.Fatalf("parseMoney(%q) = %s (rounded %v), want %s (rounded %v)", in, got, rounded, want, wantRounded)
		}
	}
	f("12.34", "12.3400", false)
	f(" 7 ", "7.0000", false)
	f("12.34565", "12.3457", true) // the driver would store 12.3456
	f("12.34564", "12.3456", true)
	f("-0.00005", "-0.0001", true) // half away from zero, also below zero
	f("+1.5", "1.5000", false)
	f("99999999999999.9999", "99999999999999.9999", false)
	f("0.000049", "0.0000", true)

	d, _, err := parseMoney("tax", "")
	if d.valid || err != nil {
		t.Fatalf("empty money: got %v, %v; want NULL", d, err)
	}
	for _, bad := range []string{"1e5", "12,34", "1.2.3", "-", ".", "abc", "0x10", "100000000000000", "99999999999999.99995"} {
		if _, _, err := parseMoney("subtotal", bad); !errors.Is(err, errInvalid) || !strings.Contains(err.Error(), "subtotal") {
			t.Errorf("parseMoney(%q): got %v, want an errInvalid naming the field", bad, err)
		}
	}
}

func TestCheckTimeRange(t *testing.T) {
	f := func(tm time.Time, ok bool) {
		t.Helper()
		_, err := checkTime("registered_at", tm)
		if (err == nil) != ok {
			t.Fatalf("checkTime(%s): err = %v, want ok=%v", tm, err, ok)
		}
	}
	f(time.Time{}, false)
	f(time.Date(1969, 12, 31, 23, 59, 59, 0, time.UTC), false)
	f(time.Unix(0, 0), true)
	f(time.Date(2106, 2, 7, 6, 28, 15, 0, time.UTC), true)
	f(time.Date(2106, 2, 7, 6, 28, 16, 0, time.UTC), false)
}

func samplePurchase() *schemas.Purchase {
	id := "5837291049123456789" // above 2^53 and near int64's limit: kept as a string
	at := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	return &schemas.Purchase{
		Site: "acme", OrderNumber: "5837291049123456789", ShopifyOrderID: &id, ShopifyOrderName: "#1001",
		RegisteredVia: schemas.ViaStorefront, Matched: true, Email: "jane@example.com", Subtotal: "23.975",
		Currency: "USD", Tax: "", CouponCodes: nil, Items: []schemas.Item{
			{ProductID: "p1", SKU: "S1", Price: "9.99", Quantity: 2},
			{ProductID: "p2", Price: "", Quantity: 1},
		},
		OrderCreatedAt: time.Time{}, RegisteredAt: at, ReceivedAt: at.Add(-time.Second), UpdatedAt: at, Version: 2,
	}
}

func TestPurchaseRow(t *testing.T) {
	r, err := purchaseRowOf(samplePurchase())
	if err != nil {
		t.Fatal(err)
	}
	if *r.ShopifyOrderID != "5837291049123456789" {
		t.Errorf("shopify_order_id = %s", *r.ShopifyOrderID)
	}
	if r.Subtotal.decimal().StringFixed(4) != "23.9750" || r.Tax.valid {
		t.Errorf("subtotal = %v, tax = %v; want 23.9750 and NULL", r.Subtotal, r.Tax)
	}
	if r.Matched != 1 || r.Test != 0 || r.Version != 2 {
		t.Errorf("matched/test/version = %d/%d/%d", r.Matched, r.Test, r.Version)
	}
	if r.CouponCodes == nil || len(r.CouponCodes) != 0 {
		t.Errorf("coupon_codes = %#v, want an empty, non-nil slice", r.CouponCodes)
	}
	// Parallel item arrays must have equal lengths, else the whole batch fails.
	n := len(r.ItemsProductID)
	if n != 2 || len(r.ItemsVariantID) != n || len(r.ItemsSKU) != n || len(r.ItemsTitle) != n || len(r.ItemsPrice) != n || len(r.ItemsQuantity) != n {
		t.Fatalf("item arrays of unequal length: %+v", r)
	}
	if r.ItemsPrice[0].decimal().StringFixed(2) != "9.99" || r.ItemsPrice[1].valid || r.ItemsQuantity[0] != 2 {
		t.Errorf("items: price %v/%v quantity %v", r.ItemsPrice[0], r.ItemsPrice[1], r.ItemsQuantity)
	}
	if r.OrderCreatedAt != nil {
		t.Errorf("zero order_created_at should be NULL, got %v", r.OrderCreatedAt)
	}
	if r.ReceivedAt == nil || !r.ReceivedAt.Equal(time.Date(2026, 3, 1, 11, 59, 59, 0, time.UTC)) {
		t.Errorf("received_at = %v", r.ReceivedAt)
	}
}

func TestPurchaseRowRejects(t *testing.T) {
	f := func(name, wantField string, mutate func(p *schemas.Purchase)) {
		t.Helper()
		p := samplePurchase()
		mutate(p)
		b, err := schemas.MarshalPurchase(p)
		if err != nil {
			t.Fatal(err)
		}
		_, err = purchaseRowFrom(b)
		if err == nil || !strings.Contains(err.Error(), wantField) {
			t.Errorf("%s: got %v, want an error naming %s", name, err, wantField)
		}
	}
	f("bad subtotal", "subtotal", func(p *schemas.Purchase) { p.Subtotal = "12,50" })
	f("huge tax", "tax", func(p *schemas.Purchase) { p.Tax = "1000000000000000" })
	f("bad item price", "items[1].price", func(p *schemas.Purchase) { p.Items[1].Price = "free" })
	f("zero registered_at", "registered_at", func(p *schemas.Purchase) { p.RegisteredAt = time.Time{} })
	f("updated_at past 2106", "updated_at", func(p *schemas.Purchase) { p.UpdatedAt = time.Date(2200, 1, 1, 0, 0, 0, 0, time.UTC) })
	f("unknown registered_via", "registered_via", func(p *schemas.Purchase) { p.RegisteredVia = "fax" })
	f("version 0", "version", func(p *schemas.Purchase) { p.Version = 0 })

	if _, err := purchaseRowFrom([]byte(`{"site":`)); err == nil {
		t.Error("truncated JSON accepted")
	}
}

func TestDiscrepancyRow(t *testing.T) {
	at := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	b, _ := schemas.MarshalDiscrepancy(&schemas.Discrepancy{Site: "acme", OrderNumber: "1", Kind: schemas.KindFieldMismatch,
		Field: "email", StorefrontValue: "a@x.com", ShopifyValue: "b@x.com", Test: true, DetectedAt: at})
	r, err := discrepancyRowFrom(b)
	if err != nil {
		t.Fatal(err)
	}
	if r.Kind != "field_mismatch" || r.Test != 1 || !r.DetectedAt.Equal(at) {
		t.Errorf("row = %+v", r)
	}
	b, _ = schemas.MarshalDiscrepancy(&schemas.Discrepancy{Site: "acme", OrderNumber: "1", Kind: schemas.KindWebhookMissing})
	if _, err := discrepancyRowFrom(b); err == nil || !strings.Contains(err.Error(), "detected_at") {
		t.Errorf("zero detected_at: got %v", err)
	}
}

func TestRawRow(t *testing.T) {
	rec := rawRecord{Source: sourceShopify, Topic: "p.shopify.orders.v1", Partition: 2, Offset: 7, Key: "acme/1001",
		Value: []byte(`{"id":1,"created_at":"2026-03-01T07:00:00-05:00","line_items":[{"created_at":"1999-01-01T00:00:00Z"}]}`),
		Headers: schemas.WebhookHeaders{
			ReceivedAt:  []byte("2026-03-01T12:00:05.123Z"),
			Topic:       []byte("orders/create"),
			WebhookID:   []byte("wh-1"),
			ShopDomain:  []byte("acme.myshopify.com"),
			TriggeredAt: []byte("not a time"),
		}}
	r, err := rawRowFrom(rec)
	if err != nil {
		t.Fatal(err)
	}
	if r.Site != "acme" || r.OrderNumber != "1001" || r.WebhookID != "wh-1" || r.KafkaPartition != 2 || r.KafkaOffset != 7 {
		t.Errorf("row = %+v", r)
	}
	if !r.ReceivedAt.Equal(time.Date(2026, 3, 1, 12, 0, 5, 123e6, time.UTC)) {
		t.Errorf("received_at = %v", r.ReceivedAt)
	}
	if r.OrderCreatedAt == nil || !r.OrderCreatedAt.Equal(time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)) {
		t.Errorf("order_created_at = %v, want the top-level created_at in UTC", r.OrderCreatedAt)
	}
	if r.TriggeredAt != nil {
		t.Errorf("a malformed triggered-at should be dropped, got %v", r.TriggeredAt)
	}
	if r.Body != string(rec.Value) {
		t.Error("body not kept byte for byte")
	}

	rec.Headers.ReceivedAt = nil
	if _, err := rawRowFrom(rec); !errors.Is(err, errInvalid) || !strings.Contains(err.Error(), "received-at") {
		t.Errorf("missing received-at: got %v", err)
	}
	rec.Headers.ReceivedAt = []byte("2026-03-01T12:00:05Z")
	rec.Key = "no-slash"
	if _, err := rawRowFrom(rec); !errors.Is(err, errInvalid) {
		t.Errorf("malformed key: got %v", err)
	}
}

// The INSERT column lists come from the same declarations as the columns
// appended, and every table's columns are distinct.
func TestTableDeclarations(t *testing.T) {
	for _, tb := range []*table{&newPurchasesTable().table, &newDiscrepanciesTable().table, &newRawEventsTable().table} {
		seen := map[string]bool{}
		for _, c := range tb.cols {
			if seen[c.name()] {
				t.Errorf("%s: column %s declared twice", tb.name, c.name())
			}
			seen[c.name()] = true
		}
		if !strings.HasPrefix(tb.insertSQL(), "INSERT INTO "+tb.name+" (") {
			t.Errorf("insert SQL = %s", tb.insertSQL())
		}
	}
	p := newPurchasesTable()
	r, err := purchaseRowOf(samplePurchase())
	if err != nil {
		t.Fatal(err)
	}
	p.add(r, rowRef{}, 1)
	p.add(r, rowRef{}, 1)
	for _, c := range p.cols {
		if n := reflect.ValueOf(c.values()).Len(); n != 2 {
			t.Errorf("column %s has %d values after two adds", c.name(), n)
		}
	}
	p.cut(0)
	if p.len() != 1 || len(p.site.v) != 1 || len(p.version.v) != 1 {
		t.Errorf("cut left %d refs, %d sites", p.len(), len(p.site.v))
	}
}

// parseMoney agrees with shopspring/decimal's half-away-from-zero Round on
// random amounts of every shape it accepts.
func TestParseMoneyMatchesDecimalRound(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	digits := func(n int) string {
		b := make([]byte, n)
		for i := range b {
			b[i] = byte('0' + rng.IntN(10))
		}
		return string(b)
	}
	for range 20000 {
		s := digits(rng.IntN(15))
		if rng.IntN(3) > 0 {
			s += "." + digits(rng.IntN(9))
		}
		if rng.IntN(4) == 0 {
			s = "-" + s
		}
		if s == "" {
			continue // NULL by design
		}
		want, werr := dec.NewFromString(s)
		got, _, err := parseMoney("x", s)
		if werr != nil {
			if err == nil {
				t.Fatalf("parseMoney(%q) accepted what decimal refuses", s)
			}
			continue
		}
		w := want.Round(moneyScale)
		if w.Abs().GreaterThanOrEqual(dec.New(1, 14)) {
			if err == nil {
				t.Fatalf("parseMoney(%q) = %s, want an overflow error", s, got.decimal())
			}
			continue
		}
		if err != nil || !got.decimal().Equal(w) {
			t.Fatalf("parseMoney(%q) = %v, %v; want %s", s, got, err, w)
		}
	}
}
