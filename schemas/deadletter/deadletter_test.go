package deadletter

import (
	"strings"
	"testing"

	"github.com/twmb/franz-go/pkg/kgo"

	"purchasesync/schemas"
)

func TestRecordKeepsOriginalAndAddsProvenance(t *testing.T) {
	src := &kgo.Record{Topic: "p.purchases.v1", Partition: 3, Offset: 42, Key: []byte("acme/1"), Value: []byte(`{"x":1}`),
		Headers: []kgo.RecordHeader{{Key: schemas.HeaderReceivedAt, Value: []byte("2026-01-01T00:00:00Z")}}}
	dl := Record("p.deadletter.v1", src, strings.Repeat("r", 2000))
	if dl.Topic != "p.deadletter.v1" || string(dl.Key) != "acme/1" || string(dl.Value) != `{"x":1}` {
		t.Fatalf("dead letter lost the original: %+v", dl)
	}
	checks := map[string]string{
		schemas.HeaderReceivedAt:      "2026-01-01T00:00:00Z",
		schemas.HeaderSourceTopic:     "p.purchases.v1",
		schemas.HeaderSourcePartition: "3",
		schemas.HeaderSourceOffset:    "42",
	}
	for k, want := range checks {
		if got := Header(dl, k); got != want {
			t.Errorf("header %s = %q, want %q", k, got, want)
		}
	}
	if r := Header(dl, schemas.HeaderReason); len(r) > maxReason+len("…") {
		t.Errorf("reason not truncated: %d bytes", len(r))
	}
	if len(src.Headers) != 1 {
		t.Errorf("source headers modified: %v", src.Headers)
	}
}
