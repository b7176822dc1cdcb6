package ingest

import (
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/valyala/fasthttp"

	"purchasesync/ingest/shopify"
	"purchasesync/schemas"
)

// Shopify's request headers (case-insensitive; fasthttp normalizes them).
const (
	hdrHmac        = "X-Shopify-Hmac-Sha256"
	hdrTopic       = "X-Shopify-Topic"
	hdrShopDomain  = "X-Shopify-Shop-Domain"
	hdrWebhookID   = "X-Shopify-Webhook-Id"
	hdrEventID     = "X-Shopify-Event-Id"
	hdrAPIVersion  = "X-Shopify-Api-Version"
	hdrTriggeredAt = "X-Shopify-Triggered-At"
)

var destTopic = [...]int{shopify.ToOrders: tOrders, shopify.ToCompliance: tCompliance, shopify.ToUnrouted: tUnrouted, shopify.ToOrderIDs: tOrderIDs, shopify.ToApp: tApp}

// webhook handles POST /webhooks/shopify: verify, route, produce, and
// answer 200 only once Kafka holds the record.
func (s *Server) webhook(ctx *fasthttp.RequestCtx) error {
	receivedAt := time.Now()
	h := &ctx.Request.Header
	buf := s.bodies.get()
	defer s.bodies.put(buf)
	body, err := readBody(ctx, s.cfg.MaxWebhookBodyBytes, buf)
	if err != nil {
		return err
	}
	s.m.bodyBytes.WithLabelValues(endpointWebhook).Observe(float64(len(body)))
	if !s.verifier.Verify(body, h.Peek(hdrHmac), string(h.Peek(hdrShopDomain))) {
		s.m.signatureFailures.Inc()
		return statusErrorf(fasthttp.StatusUnauthorized, "missing or invalid %s", hdrHmac)
	}
	topic := h.Peek(hdrTopic)
	// Before the registry is loaded an order's shop may just not be known
	// yet; routing it to unrouted as unknown_shop would be wrong, and a 503
	// makes Shopify retry.
	if shopify.RouteTopic(string(topic)).Dest == shopify.ToOrders && !s.sites.Ready() {
		return &StatusError{Code: fasthttp.StatusServiceUnavailable, RetryAfter: s.cfg.RetryAfter,
			Err: errRegistryNotLoaded}
	}
	d := shopify.Decide(string(topic), string(h.Peek(hdrShopDomain)), body, s.sites)
	wh := schemas.WebhookHeaders{
		ShopDomain:  []byte(d.Shop),
		WebhookID:   h.Peek(hdrWebhookID),
		EventID:     h.Peek(hdrEventID),
		Topic:       topic,
		APIVersion:  h.Peek(hdrAPIVersion),
		TriggeredAt: h.Peek(hdrTriggeredAt),
	}
	if d.Dest == shopify.ToUnrouted {
		wh.Reason = []byte(d.Reason)
	}
	t := destTopic[d.Dest]
	hs, nh := schemas.WebhookHeaderList[kgo.RecordHeader](&wh)
	recs := [2]out{{newRecord(s.topics[t], d.Key, body, receivedAt, hs[:nh]), t}}
	n := 1
	if d.IndexKey != "" {
		// The order's index record goes with it, and the answer waits for
		// both: a 503 makes Shopify deliver the order again, which rewrites
		// both, so an acknowledged order always has its index.
		ix, nx := schemas.OrderIndexHeaders[kgo.RecordHeader](&wh)
		recs[1] = out{newRecord(s.topics[tOrderIDs], d.IndexKey, []byte(d.IndexValue), receivedAt, ix[:nx]), tOrderIDs}
		n = 2
	}
	if err := s.produce(recs[:n]...); err != nil {
		return err
	}
	if d.Dest == shopify.ToUnrouted {
		s.m.unrouted.WithLabelValues(d.Reason).Inc()
	}
	ctx.SetStatusCode(fasthttp.StatusOK)
	ctx.SetContentType("application/json")
	ctx.SetBodyString(`{"status":"accepted"}` + "\n")
	return nil
}
