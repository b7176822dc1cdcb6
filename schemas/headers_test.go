package schemas_test

import (
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"purchasesync/schemas"
)

func keys(hs []kgo.RecordHeader) []string {
	var out []string
	for _, h := range hs {
		out = append(out, h.Key)
	}
	return out
}

// The builders write the header order the ingest and reconciliation wrote
// by hand, and the parser reads back what they wrote.
func TestWebhookHeadersRoundTrip(t *testing.T) {
	at := time.Date(2026, 3, 1, 12, 0, 0, 5, time.UTC)
	in := schemas.WebhookHeaders{ShopDomain: []byte("acme.myshopify.com"), WebhookID: []byte("w"), EventID: []byte("e"),
		Topic: []byte(schemas.WebhookOrdersCreate), APIVersion: []byte("2025-10"), TriggeredAt: []byte("t"),
		ReceivedAt: schemas.AppendReceivedAt(nil, at), Reconciled: true}
	hs := schemas.AppendWebhookHeaders([]kgo.RecordHeader(nil), &in)
	want := []string{"shop-domain", "webhook-id", "event-id", "topic", "api-version", "triggered-at", "received-at", "reconciled"}
	if got := keys(hs); len(got) != len(want) {
		t.Fatalf("keys %v, want %v", got, want)
	} else {
		for i := range want {
			if got[i] != want[i] {
				t.Fatalf("keys %v, want %v", got, want)
			}
		}
	}
	out := schemas.ParseWebhookHeaders(hs)
	if string(out.ShopDomain) != "acme.myshopify.com" || !out.Reconciled || out.IsRefund() || out.IsOrderIndex() {
		t.Fatalf("parsed %+v", out)
	}
	if got, ok := out.Received(); !ok || !got.Equal(at) {
		t.Fatalf("received %v %v", got, ok)
	}
	ix, n := schemas.OrderIndexHeaders[kgo.RecordHeader](&in)
	if got := schemas.ParseWebhookHeaders(ix[:n]); !got.IsOrderIndex() || string(got.Topic) != schemas.WebhookOrdersCreate || len(got.APIVersion) != 0 {
		t.Fatalf("index headers %v", keys(ix[:n]))
	}
	sh, n := schemas.StorefrontHeaderList[kgo.RecordHeader](&schemas.StorefrontHeaders{Site: []byte("acme"), ReceivedAt: in.ReceivedAt})
	if got := schemas.ParseStorefrontHeaders(sh[:n]); string(got.Site) != "acme" || string(got.ReceivedAt) != string(in.ReceivedAt) {
		t.Fatalf("storefront headers %+v", got)
	}
}

// IsRefund: refunds by the webhook table; everything else on
// shopify.orders.v1 (no topic header, orders/create, unknown) is an order.
func TestIsRefund(t *testing.T) {
	for topic, want := range map[string]bool{
		schemas.WebhookRefundsCreate: true, " " + schemas.WebhookRefundsCreate + " ": true,
		schemas.WebhookOrdersCreate: false, "": false, "orders/updated": false,
	} {
		h := schemas.WebhookHeaders{Topic: []byte(topic)}
		if got := h.IsRefund(); got != want {
			t.Errorf("IsRefund(%q) = %v, want %v", topic, got, want)
		}
	}
}
