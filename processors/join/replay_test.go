package join

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"purchasesync/schemas"
)

// TestFakeReplaySummary: a dry-run replay on the in-process cluster counts
// every decision of the scenario (produceOrders: both sides, a differing
// subtotal, webhook only, storefront only, each delivered twice) and the
// registrations and discrepancies they made, and it writes nothing.
func TestFakeReplaySummary(t *testing.T) {
	c, topics := fakeCluster(t, 2)
	cl, err := kgo.NewClient(kgo.SeedBrokers(c.ListenAddrs()...))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	const n = 40
	produceOrders(t, cl, topics, 0, n, 0)
	var phases []string
	cfg := ReplayConfig{Input: topics, From: time.Now().Add(-time.Hour), WebhookWait: time.Hour, DedupeHorizon: 24 * time.Hour}
	sum, err := Replay(context.Background(), cfg, ReplayDeps{KafkaOpts: []kgo.Opt{kgo.SeedBrokers(c.ListenAddrs()...)}, Sites: staticSites(time.Second),
		Progress: func(phase string, _, _ int64) { phases = append(phases, phase) }})
	if err != nil {
		t.Fatal(err)
	}
	// Per 4 orders: 7 storefront, 6 webhook records, each twice.
	if want := int64(n / 4 * 2 * 6); sum.Records != want {
		t.Errorf("replayed %d records, want %d", sum.Records, want)
	}
	want := map[string]string{
		"outcomes":      "map[duplicate:60 held:30 matched:20 registered_storefront:30 registered_webhook:10 webhook_missing:10]",
		"registrations": "map[storefront:30 webhook:10]",
		"discrepancies": "map[none:10 subtotal:10]",
	}
	got := map[string]string{"outcomes": fmt.Sprint(sum.Outcomes), "registrations": fmt.Sprint(sum.Registrations), "discrepancies": fmt.Sprint(sum.Discrepancies)}
	for k := range want {
		if got[k] != want[k] {
			t.Errorf("%s = %s, want %s", k, got[k], want[k])
		}
	}
	if len(sum.Purchases) != n {
		t.Errorf("%d purchases, want %d", len(sum.Purchases), n)
	}
	if len(phases) == 0 || phases[len(phases)-1] != "decide" {
		t.Errorf("progress phases %v, want read then decide", phases)
	}
	if recs := readAll(t, c.ListenAddrs(), topics.Name(schemas.TopicPurchases)); len(recs) != 0 {
		t.Errorf("a dry run wrote %d purchases", len(recs))
	}
}
