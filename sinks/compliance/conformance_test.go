package compliance

import (
	"fmt"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/twmb/franz-go/pkg/kgo"

	"purchasesync/schemas"
	"purchasesync/sinks/sinktest"
)

// TestComplianceConformance: the processor keeps the committing consumers'
// promises (sinks/sinktest) with fakeConn standing in for ClickHouse. Each
// item is a shop/redact of its own shop (no sites: a request is its two
// compliance_requests rows). A request redone is harmless (the rows
// collapse by request id); an unreadable one is logged and skipped.
func TestComplianceConformance(t *testing.T) {
	const in = "t.compliance.v1"
	sinktest.Run(t, sinktest.Features{Idempotent: true, Destination: "ClickHouse"},
		sinktest.Harness[*fakeConn]{
			Input:  in,
			Topics: []string{in},
			Item: func(i int) (string, *kgo.Record) {
				shop := fmt.Sprintf("shop-%d.myshopify.com", i)
				return shop, &kgo.Record{Topic: in, Key: []byte(shop),
					Value:   fmt.Appendf(nil, `{"shop_id":%d,"shop_domain":%q}`, i+1, shop),
					Headers: []kgo.RecordHeader{{Key: schemas.HeaderTopic, Value: []byte(schemas.ComplianceShopRedact)}}}
			},
			Poison: func() *kgo.Record {
				return &kgo.Record{Topic: in, Key: []byte("bad.myshopify.com"), Value: []byte("{"),
					Headers: []kgo.RecordHeader{{Key: schemas.HeaderTopic, Value: []byte(schemas.ComplianceCustomersRedact)}}}
			},
			Destination: func(*testing.T) *fakeConn { return newFakeConn() },
			New: func(t *testing.T, env sinktest.Env, conn *fakeConn) sinktest.Consumer {
				cfg := DefaultConfig()
				cfg.Topics = schemas.Topics{Prefix: "t."}
				cfg.Group = env.Group
				cfg.RetryInitial, cfg.RetryMax, cfg.HealthInterval = 20*time.Millisecond, 200*time.Millisecond, 100*time.Millisecond
				p, err := New(cfg, Deps{Conn: conn, Sites: noSites{}, KafkaOpts: env.KafkaOpts,
					Registerer: prometheus.NewRegistry(), Logger: env.Logger})
				if err != nil {
					t.Fatal(err)
				}
				return p
			},
		})
}
