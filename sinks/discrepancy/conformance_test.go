package discrepancy

import (
	"fmt"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/twmb/franz-go/pkg/kgo"

	"purchasesync/schemas"
	"purchasesync/sinks/sinktest"
)

// TestNotifierConformance: the notifier keeps the committing consumers'
// promises (sinks/sinktest) against a fake incoming webhook. Each item is
// a discrepancy of its own site, so that each has its own digest and no
// interval holds it back. A digest reported twice is not collapsed
// anywhere: every item must arrive once. Invalid discrepancies are
// skipped; readiness follows Kafka alone.
func TestNotifierConformance(t *testing.T) {
	topics := schemas.Topics{Prefix: "t."}
	in := topics.Name(schemas.TopicDiscrepancies)
	sinktest.Run(t, sinktest.Features{},
		sinktest.Harness[*receiver]{
			Input:  in,
			Topics: []string{in},
			Item: func(i int) (string, *kgo.Record) {
				site := fmt.Sprintf("site-%d", i)
				b, _ := schemas.MarshalDiscrepancy(&schemas.Discrepancy{Site: site, OrderNumber: "1000", Kind: schemas.KindFieldMismatch,
					Field: "subtotal", StorefrontValue: "1", ShopifyValue: "2", DetectedAt: time.Now()})
				return site, &kgo.Record{Topic: in, Key: []byte(site + "/1000"), Value: b}
			},
			Poison:      func() *kgo.Record { return &kgo.Record{Topic: in, Key: []byte("acme/bad"), Value: []byte("{")} },
			Destination: func(*testing.T) *receiver { return &receiver{} },
			New: func(t *testing.T, env sinktest.Env, rcv *receiver) sinktest.Consumer {
				srv := httptest.NewServer(rcv)
				t.Cleanup(srv.Close)
				cfg := DefaultConfig()
				cfg.URL, cfg.Topics, cfg.Group = srv.URL+"/hooks/x", topics, env.Group
				cfg.Interval, cfg.RetryInitial, cfg.HealthInterval = time.Second, 10*time.Millisecond, 100*time.Millisecond
				n, err := New(cfg, Deps{KafkaOpts: env.KafkaOpts, Registerer: prometheus.NewRegistry(), Logger: env.Logger})
				if err != nil {
					t.Fatal(err)
				}
				return n
			},
		})
}
