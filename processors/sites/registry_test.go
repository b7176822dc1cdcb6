package sites

import (
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/twmb/franz-go/pkg/kgo"

	"purchasesync/schemas"
)

func siteRecord(t *testing.T, s schemas.Site) *kgo.Record {
	t.Helper()
	b, err := schemas.MarshalSite(s)
	if err != nil {
		t.Fatal(err)
	}
	return &kgo.Record{Key: []byte(s.Site), Value: b}
}

// TestShopConflictIsDeterministic: when two records name one shop, every
// registry routes it to the most recently updated site, whatever the order
// it read them in, and counts the conflict (M5 of the security review: the
// winner came from Go's map order, per process and per change).
func TestShopConflictIsDeterministic(t *testing.T) {
	t0 := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	older := schemas.Site{Site: "a-old", ShopDomain: "acme.myshopify.com", UpdatedAt: t0}
	newer := schemas.Site{Site: "z-new", ShopDomain: "acme.myshopify.com", UpdatedAt: t0.Add(time.Minute)}
	tieA := schemas.Site{Site: "m-tie", ShopDomain: "bolt.myshopify.com", UpdatedAt: t0}
	tieB := schemas.Site{Site: "n-tie", ShopDomain: "bolt.myshopify.com", UpdatedAt: t0}
	for i := range 20 {
		recs := []*kgo.Record{siteRecord(t, older), siteRecord(t, newer), siteRecord(t, tieA), siteRecord(t, tieB)}
		if i%2 == 1 {
			recs[0], recs[1], recs[2], recs[3] = recs[3], recs[2], recs[1], recs[0]
		}
		reg := prometheus.NewRegistry()
		r, err := New(DefaultConfig(), Deps{Registerer: reg})
		if err != nil {
			t.Fatal(err)
		}
		r.apply(recs)
		if s, _ := r.ByShop("acme.myshopify.com"); s.Site != "z-new" {
			t.Fatalf("run %d: acme routes to %q, want z-new (the most recent)", i, s.Site)
		}
		if s, _ := r.ByShop("bolt.myshopify.com"); s.Site != "m-tie" {
			t.Fatalf("run %d: bolt routes to %q, want m-tie (same time: the smaller slug)", i, s.Site)
		}
		if got := testutil.ToFloat64(r.m.shopConflicts); got != 2 {
			t.Fatalf("shop_conflicts = %v, want 2", got)
		}
	}
}

// TestInvalidCustomDomainIgnoredOnRead: a sites.v1 record is validated
// when read as when written (M6): a wildcard custom domain makes it
// invalid, and the registry keeps the last good record.
func TestInvalidCustomDomainIgnoredOnRead(t *testing.T) {
	r, err := New(DefaultConfig(), Deps{Registerer: prometheus.NewRegistry()})
	if err != nil {
		t.Fatal(err)
	}
	good := schemas.Site{Site: "acme", ShopDomain: "acme.myshopify.com", CustomDomains: []string{"shop.acme.example", "https://www.acme.example/"}}
	r.apply([]*kgo.Record{siteRecord(t, good)})
	for _, bad := range []string{"*", "*.evil.example", "https://evil.example/path", "evil.example/x", "evil example", "javascript:alert(1)", ""} {
		b := good
		b.CustomDomains = []string{bad}
		r.apply([]*kgo.Record{siteRecord(t, b)})
		if s, _ := r.Get("acme"); len(s.CustomDomains) != 2 {
			t.Errorf("custom domain %q accepted from sites.v1: %v", bad, s.CustomDomains)
		}
	}
	if got := testutil.ToFloat64(r.m.invalid); got != 7 {
		t.Errorf("invalid_records_total = %v, want 7", got)
	}
}
