package join

import (
	"io"
	"log/slog"
	"reflect"
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"purchasesync/schemas"
)

// The transactional session may report several assignments without a
// revoke in between (rebalances while idle). Each assignment is the whole
// set under the range balancer, so the processor must replace its set: a
// member that kept adding would tick partitions another member owns.
func TestAssignmentReplacesPartitions(t *testing.T) {
	topics := schemas.Topics{Prefix: "x."}
	p, err := New(configFor(topics, "a"), Deps{Sites: staticSites(0), Registerer: prometheus.NewRegistry(),
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	assign := func(parts ...int32) {
		p.onAssigned(map[string][]int32{topics.Name(schemas.TopicShopifyOrders): parts, topics.Name(schemas.TopicStorefrontPurchases): parts})
	}
	assign(0, 1, 2, 3)
	assign(2, 3)
	assign(3)
	if want := map[int32]bool{3: true}; !reflect.DeepEqual(p.assigned, want) {
		t.Fatalf("assigned = %v, want %v", p.assigned, want)
	}
}
