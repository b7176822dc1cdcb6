package sitestest

import (
	"context"
	"errors"
	"testing"
	"time"

	"purchasesync/schemas"
)

func TestRegistry(t *testing.T) {
	r := New(schemas.Site{Site: "acme", ShopDomain: "acme.myshopify.com"}, schemas.Site{Site: "gone", ShopDomain: "gone.myshopify.com"})
	if s, ok := r.ByShop("acme.myshopify.com"); !ok || s.Site != "acme" || s.OrderKey != schemas.OrderKeyID {
		t.Errorf("ByShop = %+v %t, want acme, normalised to order_id", s, ok)
	}
	if _, ok := r.ByShop("ACME.myshopify.com"); ok {
		t.Error("ByShop normalised the domain; the real registry leaves that to its callers")
	}
	if all := r.All(); len(all) != 2 || all[0].Site != "acme" {
		t.Errorf("All = %v", all)
	}
	if _, ok := r.Get("other"); ok {
		t.Error("Get found a site never stored")
	}

	r.Delay = 50 * time.Millisecond
	changed := r.Changed()
	if _, err := r.Put(context.Background(), schemas.Site{Site: "bolt", ShopDomain: "bolt.myshopify.com"}); err != nil {
		t.Fatal(err)
	}
	if _, ok := r.Get("bolt"); ok {
		t.Error("a write reached readers before Delay")
	}
	select {
	case <-changed:
	case <-time.After(5 * time.Second):
		t.Fatal("no change notification")
	}
	if _, ok := r.Get("bolt"); !ok || r.Puts() != 1 {
		t.Errorf("after Delay: found %t, %d puts; want the site and 1", ok, r.Puts())
	}

	down := errors.New("broker unavailable")
	r.FailPuts(1, down)
	if _, err := r.Put(context.Background(), schemas.Site{Site: "cargo", ShopDomain: "cargo.myshopify.com"}); !errors.Is(err, down) {
		t.Errorf("first Put after FailPuts(1): %v, want %v", err, down)
	}
	if _, err := r.Put(context.Background(), schemas.Site{Site: "cargo", ShopDomain: "cargo.myshopify.com"}); err != nil {
		t.Errorf("second Put: %v", err)
	}
	if _, err := r.Put(context.Background(), schemas.Site{Site: "BAD SLUG"}); err == nil {
		t.Error("an invalid site was accepted")
	}

	r.Any = func(site string) schemas.Site { return schemas.Site{Site: site} }
	if s, ok := r.Get("anything"); !ok || s.Site != "anything" {
		t.Errorf("Get with Any = %+v %t", s, ok)
	}
	r.SetReady(false)
	if r.Ready() {
		t.Error("Ready after SetReady(false)")
	}
}
