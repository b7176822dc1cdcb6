package admin

import (
	"context"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/twmb/franz-go/pkg/kgo"

	"purchasesync/deploy/testenv"
	"purchasesync/processors/sites"
)

// TestFunctionalRealKafka: a PUT through the real sites.v1 is visible to a
// GET right after, and a DELETE likewise, with the real registry.
func TestFunctionalRealKafka(t *testing.T) {
	brokers := testenv.Kafka(t)
	topics := testenv.Topics(t, brokers, 1)

	cl, err := kgo.NewClient(kgo.SeedBrokers(brokers...))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	scfg := sites.DefaultConfig()
	scfg.Topics = topics
	reg, err := sites.New(scfg, sites.Deps{KafkaOpts: []kgo.Opt{kgo.SeedBrokers(brokers...)}, Registerer: prometheus.NewRegistry()})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- reg.Run(ctx) }()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("registry run: %v", err)
		}
	}()
	rctx, rcancel := context.WithTimeout(ctx, 30*time.Second)
	defer rcancel()
	if err := reg.WaitReady(rctx); err != nil {
		t.Fatal(err)
	}

	cfg := DefaultConfig()
	cfg.Token = token
	h, err := New(cfg, Deps{Sites: reg, Writer: reg.Writer(cl), Registerer: prometheus.NewRegistry()})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(h)
	defer srv.Close()
	e := &env{t: t, srv: srv, h: h}

	code, put := e.do("PUT", "/admin/v1/sites/func-1", `{"shop_domain":"func-1.myshopify.com","order_key":"order_name","grace":"2m"}`)
	if code != 200 {
		t.Fatalf("put: %d %v", code, put)
	}
	code, got := e.do("GET", "/admin/v1/sites/func-1", "")
	if code != 200 || got["updated_at"] != put["updated_at"] || got["order_key"] != "order_name" {
		t.Fatalf("get right after put: %d %v, want %v", code, got, put)
	}
	if n := testutil.ToFloat64(h.m.visibleTimeouts); n != 0 {
		t.Errorf("the real registry took longer than %s to show the write", scfg.VisibleTimeout)
	}
	if code, _ := e.do("DELETE", "/admin/v1/sites/func-1", ""); code != 204 {
		t.Fatalf("delete: %d", code)
	}
	if code, _ := e.do("GET", "/admin/v1/sites/func-1", ""); code != 404 {
		t.Fatalf("get right after delete: %d, want 404", code)
	}
}
