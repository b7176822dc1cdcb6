package clickhouse

import (
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/twmb/franz-go/pkg/kgo"

	"purchasesync/schemas"
	"purchasesync/sinks/sinktest"
)

// TestSinkConformance: the sink keeps the committing consumers' promises
// (sinks/sinktest) with fakeWriter standing in for ClickHouse. Its
// input items are purchases; the other three topics are read the same way.
func TestSinkConformance(t *testing.T) {
	topics := schemas.Topics{Prefix: "t."}
	var all []string
	for _, n := range []string{schemas.TopicPurchases, schemas.TopicDiscrepancies, schemas.TopicShopifyOrders,
		schemas.TopicStorefrontPurchases, schemas.TopicDeadLetter} {
		all = append(all, topics.Name(n))
	}
	sinktest.Run(t, sinktest.Features{Idempotent: true, DeadLetters: true, FlushesOnCancel: true, Destination: "ClickHouse"},
		sinktest.Harness[*fakeWriter]{
			Input:      topics.Name(schemas.TopicPurchases),
			Topics:     all,
			DeadLetter: topics.Name(schemas.TopicDeadLetter),
			Item: func(i int) (string, *kgo.Record) {
				r := purchaseRecord(t, topics, "acme", i)
				return string(r.Key), r
			},
			Poison: func() *kgo.Record {
				return &kgo.Record{Topic: topics.Name(schemas.TopicPurchases), Key: []byte("acme/bad"), Value: []byte(`{"site":`)}
			},
			Destination: func(*testing.T) *fakeWriter { return newFakeWriter() },
			New: func(t *testing.T, env sinktest.Env, w *fakeWriter) sinktest.Consumer {
				cfg := DefaultConfig()
				cfg.Topics, cfg.Group = topics, env.Group
				cfg.FlushInterval = 50 * time.Millisecond
				if env.Hold {
					cfg.FlushInterval = time.Hour
				}
				cfg.RetryInitial, cfg.RetryMax = 20*time.Millisecond, 200*time.Millisecond
				cfg.ShutdownTimeout, cfg.HealthInterval = 2*time.Second, 100*time.Millisecond
				s, err := New(cfg, Deps{KafkaOpts: env.KafkaOpts, Registerer: prometheus.NewRegistry(), Logger: env.Logger, writer: w})
				if err != nil {
					t.Fatal(err)
				}
				return s
			},
		})
}
