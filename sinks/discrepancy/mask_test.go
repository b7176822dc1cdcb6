package discrepancy

import (
	"io"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/twmb/franz-go/pkg/kgo"

	"purchasesync/schemas"
)

// TestDigestMasksEveryPersonalField: a discrepancy of each compared field
// (schemas.ComparedFields) reaches a digest with its values masked when the
// field is personal data, and as they are when it is not.
func TestDigestMasksEveryPersonalField(t *testing.T) {
	cfg := DefaultConfig()
	cfg.URL, cfg.Examples = "http://127.0.0.1:1/hooks", len(schemas.ComparedFields)
	n, err := New(cfg, Deps{Registerer: prometheus.NewRegistry(), Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	for i, f := range schemas.ComparedFields {
		b, err := schemas.MarshalDiscrepancy(&schemas.Discrepancy{Site: "acme", OrderNumber: "1001", Kind: schemas.KindFieldMismatch,
			Field: f.Name, StorefrontValue: f.Example, ShopifyValue: f.Example, DetectedAt: time.Unix(0, 0)})
		if err != nil {
			t.Fatal(err)
		}
		n.add(&kgo.Record{Value: b, Offset: int64(i)})
	}
	got := n.digest("acme", n.sites["acme"], time.Unix(60, 0))
	for _, f := range schemas.ComparedFields {
		if !strings.Contains(got, "• "+f.Name+": 1") {
			t.Errorf("the digest does not count %s:\n%s", f.Name, got)
		}
		if shown := strings.Contains(got, "`"+f.Example+"`"); shown == f.PII {
			t.Errorf("%s (personal data: %v): value shown %v in the digest:\n%s", f.Name, f.PII, shown, got)
		}
	}
}
