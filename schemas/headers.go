package schemas

import (
	"bytes"
	"strconv"
	"time"
)

// The headers of each raw topic, as one typed struct per record shape with
// one builder (Append…) and one parser (Parse…): the ingest, reconciliation,
// the refund router, the join, the ClickHouse sink, the order-key detector,
// the uninstall and compliance processors all read or write them here, so a
// header added or renamed is added or renamed once.
//
// Package schemas stays free of the Kafka client (see schemas/deadletter),
// so the builders and parsers are generic over any header type shaped like
// franz-go's kgo.RecordHeader ({Key string; Value []byte}): callers pass
// and get []kgo.RecordHeader directly, with no conversion and no copy at
// the edges, which keeps the ingest's hot path at the allocations it had.
//
// Values are []byte aliasing the record (parse) or the caller's buffers
// (build): a parser allocates nothing, a builder only grows dst. A header
// that occurs twice is read as its last occurrence (as kgo's producers and
// deadletter.Header do); none of the pipeline's writers repeats one.

// KafkaHeader is the shape of a Kafka record header (kgo.RecordHeader).
type KafkaHeader interface {
	~struct {
		Key   string
		Value []byte
	}
}

// rawHeader is KafkaHeader's one underlying type, for reading a header's
// fields through a type parameter.
type rawHeader = struct {
	Key   string
	Value []byte
}

// WebhookHeaders are the headers of a verified Shopify webhook's record
// (shopify.orders.v1, shopify.order_ids.v1, shopify.unrouted.v1,
// compliance.v1, shopify.app.v1), of reconciliation's recovered orders and
// of the refund router's routed refunds; AppendIndex writes the order index
// record's. The X-Shopify-* request headers give ShopDomain (normalized),
// WebhookID, EventID, Topic, APIVersion and TriggeredAt.
type WebhookHeaders struct {
	// RecordKind is RecordKindOrderIndex on an order index record
	// (AppendIndex writes it), else empty.
	RecordKind  []byte
	ShopDomain  []byte
	WebhookID   []byte
	EventID     []byte
	Topic       []byte // X-Shopify-Topic, byte for byte
	APIVersion  []byte
	TriggeredAt []byte
	// Reason is set on shopify.unrouted.v1 only (ingest/shopify.Reasons,
	// refundroute's reasons).
	Reason []byte
	// ReceivedAt is the ingest's RFC 3339 (nanoseconds, UTC) stamp.
	ReceivedAt []byte
	// Reconciled marks an order reconciliation fetched from the Admin API.
	Reconciled bool
	// RoutedFrom is the refund router's mark: the refund's key on
	// shopify.order_ids.v1.
	RoutedFrom []byte
}

// MaxWebhookHeaders is how many headers WebhookHeaderList can return.
const MaxWebhookHeaders = 11

// WebhookHeaderList is the one builder of a webhook record's headers: the
// six Shopify headers always (empty when Shopify sent none, as the ingest
// always wrote them), then reason, received-at, reconciled and routed-from
// when set, with record-kind first on an order index record. This order is
// the one the ingest and reconciliation wrote before this builder existed.
//
// It returns an array and a count rather than appending to a slice: Go's
// escape analysis moves anything stored through a slice to the heap, and
// the ingest builds these on its hot path from stack buffers
// (hs[:n] is the list; AppendWebhookHeaders is the convenient form).
func WebhookHeaderList[H KafkaHeader](h *WebhookHeaders) (hs [MaxWebhookHeaders]H, n int) {
	if len(h.RecordKind) > 0 {
		hs[n] = H{Key: HeaderRecordKind, Value: h.RecordKind}
		n++
	}
	hs[n+0] = H{Key: HeaderShopDomain, Value: h.ShopDomain}
	hs[n+1] = H{Key: HeaderWebhookID, Value: h.WebhookID}
	hs[n+2] = H{Key: HeaderEventID, Value: h.EventID}
	hs[n+3] = H{Key: HeaderTopic, Value: h.Topic}
	hs[n+4] = H{Key: HeaderAPIVersion, Value: h.APIVersion}
	hs[n+5] = H{Key: HeaderTriggeredAt, Value: h.TriggeredAt}
	n += 6
	if len(h.Reason) > 0 {
		hs[n] = H{Key: HeaderReason, Value: h.Reason}
		n++
	}
	if len(h.ReceivedAt) > 0 {
		hs[n] = H{Key: HeaderReceivedAt, Value: h.ReceivedAt}
		n++
	}
	if h.Reconciled {
		hs[n] = H{Key: HeaderReconciled, Value: trueValue}
		n++
	}
	if len(h.RoutedFrom) > 0 {
		hs[n] = H{Key: HeaderRoutedFrom, Value: h.RoutedFrom}
		n++
	}
	return hs, n
}

// AppendWebhookHeaders appends WebhookHeaderList(h) to dst.
func AppendWebhookHeaders[H KafkaHeader](dst []H, h *WebhookHeaders) []H {
	hs, n := WebhookHeaderList[H](h)
	return append(dst, hs[:n]...)
}

var trueValue = []byte("true")

// OrderIndexHeaders are the headers of the order index record that goes
// with an order (its headers) on shopify.order_ids.v1: record-kind, then
// the order's shop domain, webhook and event ids, topic and received-at
// (no API version or triggered-at: the index is not a webhook). Like
// WebhookHeaderList it returns an array: hs[:n] is the list.
func OrderIndexHeaders[H KafkaHeader](order *WebhookHeaders) (hs [6]H, n int) {
	hs[0] = H{Key: HeaderRecordKind, Value: orderIndexKind}
	hs[1] = H{Key: HeaderShopDomain, Value: order.ShopDomain}
	hs[2] = H{Key: HeaderWebhookID, Value: order.WebhookID}
	hs[3] = H{Key: HeaderEventID, Value: order.EventID}
	hs[4] = H{Key: HeaderTopic, Value: order.Topic}
	n = 5
	if len(order.ReceivedAt) > 0 {
		hs[n] = H{Key: HeaderReceivedAt, Value: order.ReceivedAt}
		n++
	}
	return hs, n
}

var orderIndexKind = []byte(RecordKindOrderIndex)

// ParseWebhookHeaders reads a webhook record's headers; unknown ones are
// ignored, and a reconciled header that does not parse as a bool is false.
func ParseWebhookHeaders[H KafkaHeader](hs []H) WebhookHeaders {
	var h WebhookHeaders
	for _, x := range hs {
		r := rawHeader(x)
		switch r.Key {
		case HeaderRecordKind:
			h.RecordKind = r.Value
		case HeaderShopDomain:
			h.ShopDomain = r.Value
		case HeaderWebhookID:
			h.WebhookID = r.Value
		case HeaderEventID:
			h.EventID = r.Value
		case HeaderTopic:
			h.Topic = r.Value
		case HeaderAPIVersion:
			h.APIVersion = r.Value
		case HeaderTriggeredAt:
			h.TriggeredAt = r.Value
		case HeaderReason:
			h.Reason = r.Value
		case HeaderReceivedAt:
			h.ReceivedAt = r.Value
		case HeaderReconciled:
			h.Reconciled, _ = strconv.ParseBool(string(r.Value))
		case HeaderRoutedFrom:
			h.RoutedFrom = r.Value
		}
	}
	return h
}

// IsOrderIndex reports whether the record is an order index record, not a
// raw webhook, on shopify.order_ids.v1.
func (h *WebhookHeaders) IsOrderIndex() bool {
	return string(h.RecordKind) == RecordKindOrderIndex
}

// IsRefund is the one test of what a webhook record on shopify.orders.v1
// is: a refund (its topic is one WebhookTopics marks Refund) or else an
// order. Every record there that is not a refund is an order, whatever its
// topic header (none, on records older than the header), so the join,
// reconciliation's "seen" index and the sink agree on every record.
func (h *WebhookHeaders) IsRefund() bool {
	t, ok := lookupWebhookTopic(h.Topic)
	return ok && t.Refund
}

// Received parses ReceivedAt; ok is false when it is missing or malformed,
// and callers fall back to the record's timestamp.
func (h *WebhookHeaders) Received() (time.Time, bool) { return parseReceivedAt(h.ReceivedAt) }

// StorefrontHeaders are the headers of a storefront purchase event's record
// on storefront.purchases.v1.
type StorefrontHeaders struct {
	Site       []byte
	ClientIP   []byte // the client's address as the ingest saw it (after trusted proxies)
	UserAgent  []byte // truncated by the ingest
	Origin     []byte // the page's Origin header, possibly empty
	ReceivedAt []byte // RFC 3339, nanoseconds, UTC
}

// StorefrontHeaderList is the one builder of a storefront record's
// headers: site, client-ip, user-agent and origin always, then received-at
// when set. It returns an array for the reason WebhookHeaderList does.
func StorefrontHeaderList[H KafkaHeader](h *StorefrontHeaders) (hs [5]H, n int) {
	hs[0] = H{Key: HeaderSite, Value: h.Site}
	hs[1] = H{Key: HeaderClientIP, Value: h.ClientIP}
	hs[2] = H{Key: HeaderUserAgent, Value: h.UserAgent}
	hs[3] = H{Key: HeaderOrigin, Value: h.Origin}
	n = 4
	if len(h.ReceivedAt) > 0 {
		hs[n] = H{Key: HeaderReceivedAt, Value: h.ReceivedAt}
		n++
	}
	return hs, n
}

// ParseStorefrontHeaders reads a storefront record's headers.
func ParseStorefrontHeaders[H KafkaHeader](hs []H) StorefrontHeaders {
	var h StorefrontHeaders
	for _, x := range hs {
		r := rawHeader(x)
		switch r.Key {
		case HeaderSite:
			h.Site = r.Value
		case HeaderClientIP:
			h.ClientIP = r.Value
		case HeaderUserAgent:
			h.UserAgent = r.Value
		case HeaderOrigin:
			h.Origin = r.Value
		case HeaderReceivedAt:
			h.ReceivedAt = r.Value
		}
	}
	return h
}

// Received parses ReceivedAt, as WebhookHeaders.Received.
func (h *StorefrontHeaders) Received() (time.Time, bool) { return parseReceivedAt(h.ReceivedAt) }

// ReceivedAtOf reads only the received-at header of a raw record of either
// kind (both carry it); ok is false when it is missing or malformed.
func ReceivedAtOf[H KafkaHeader](hs []H) (time.Time, bool) {
	var v []byte
	for _, x := range hs {
		if r := rawHeader(x); r.Key == HeaderReceivedAt {
			v = r.Value
		}
	}
	return parseReceivedAt(v)
}

// AppendReceivedAt formats t as the received-at header value (RFC 3339,
// nanoseconds, UTC) into dst.
func AppendReceivedAt(dst []byte, t time.Time) []byte {
	return t.UTC().AppendFormat(dst, time.RFC3339Nano)
}

func parseReceivedAt(v []byte) (time.Time, bool) {
	if len(v) == 0 {
		return time.Time{}, false
	}
	t, err := time.Parse(time.RFC3339Nano, string(v))
	return t, err == nil
}

// lookupWebhookTopic is LookupWebhookTopic for a header value, without
// converting it to a string (a per-record allocation in the join).
func lookupWebhookTopic(name []byte) (WebhookTopic, bool) {
	name = bytes.TrimSpace(name)
	for _, t := range WebhookTopics {
		if string(name) == t.Name {
			return t, true
		}
	}
	return WebhookTopic{}, false
}
