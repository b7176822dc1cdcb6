package ingest

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"log/slog"
	"math/rand/v2"
	"net/netip"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil/promlint"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"purchasesync/ingest/ingesttest"
	"purchasesync/ingest/shopify"
	"purchasesync/schemas"
)

// TestWebhookRouting sends one signed webhook per route and checks the
// answer and the one record it must leave, byte for byte, with DESIGN §2's
// headers.
func TestWebhookRouting(t *testing.T) {
	e := startInproc(t, nil)
	rng := rand.New(rand.NewPCG(3, 4))
	p := ingesttest.NewPurchase(rng, 1, 3)
	order := p.OrderBody()
	type want struct {
		topic, key, reason string
	}
	cases := []struct {
		name  string
		topic string
		shop  string
		body  []byte
		want  want
	}{
		{"order", "orders/create", "acme.myshopify.com", order, want{schemas.TopicShopifyOrders, p.Key("acme", schemas.OrderKeyID), ""}},
		{"order by order_number", "orders/create", "BOLT.myshopify.com", order, want{schemas.TopicShopifyOrders, p.Key("bolt", schemas.OrderKeyNumber), ""}},
		{"unknown shop", "orders/create", "nobody.myshopify.com", order, want{schemas.TopicShopifyUnrouted, "nobody.myshopify.com", shopify.ReasonUnknownShop}},
		{"syncing off", "orders/create", "dormant.myshopify.com", order, want{schemas.TopicShopifyUnrouted, "dormant.myshopify.com", shopify.ReasonSyncingDisabled}},
		{"no key", "orders/create", "acme.myshopify.com", []byte(`{"name":"#1"}`), want{schemas.TopicShopifyUnrouted, "acme.myshopify.com", shopify.ReasonUnparsable}},
		{"truncated", "orders/create", "acme.myshopify.com", order[:len(order)/2], want{schemas.TopicShopifyUnrouted, "acme.myshopify.com", shopify.ReasonUnparsable}},
		{"redact", "customers/redact", "acme.myshopify.com", []byte(`{"shop_id":954889,"customer":{"id":191167}}`), want{schemas.TopicCompliance, "acme.myshopify.com", ""}},
		{"refund", "refunds/create", "acme.myshopify.com", []byte(`{"id":1,"order_id":450789469}`), want{schemas.TopicShopifyOrders, "acme/450789469", ""}},
		{"refund by order id for the router", "refunds/create", "bolt.myshopify.com", []byte(`{"id":1,"order_id":450789469}`), want{schemas.TopicShopifyOrderIDs, "bolt/450789469", ""}},
		{"other topic", "orders/updated", "acme.myshopify.com", []byte(`{}`), want{schemas.TopicShopifyUnrouted, "acme.myshopify.com", shopify.ReasonTopicNotHandled}},
		{"uninstall", "app/uninstalled", "acme.myshopify.com", []byte(`{"id":1,"myshopify_domain":"acme.myshopify.com"}`), want{schemas.TopicShopifyApp, "acme.myshopify.com", ""}},
		{"uninstall, syncing off", "app/uninstalled", "dormant.myshopify.com", []byte(`{"id":2,"myshopify_domain":"dormant.myshopify.com"}`), want{schemas.TopicShopifyApp, "dormant.myshopify.com", ""}},
		{"uninstall, no site", "app/uninstalled", "nobody.myshopify.com", []byte(`{"id":3,"myshopify_domain":"nobody.myshopify.com"}`), want{schemas.TopicShopifyApp, "nobody.myshopify.com", ""}},
	}
	before := time.Now().UTC()
	for _, c := range cases {
		r := e.do(t, webhook(c.topic, c.shop, c.body))
		if r.code != 200 {
			t.Fatalf("%s: code %d (%s), want 200", c.name, r.code, r.body)
		}
	}
	after := time.Now().UTC()
	recs := readAll(t, e.seeds, rawTopics(e.topics))
	if len(recs) != len(cases)+1 {
		t.Fatalf("%d records, want %d (one per case, and the order_number order's index record)", len(recs), len(cases)+1)
	}
	// The order_number site's order is indexed by its id, for its refunds.
	var index *kgo.Record
	for _, r := range recs {
		if r.Topic == e.topics.Name(schemas.TopicShopifyOrderIDs) && headerMap(r)[schemas.HeaderRecordKind] != "" {
			index = r
		}
	}
	if index == nil || string(index.Key) != p.Key("bolt", schemas.OrderKeyID) || "bolt/"+string(index.Value) != p.Key("bolt", schemas.OrderKeyNumber) ||
		headerMap(index)[schemas.HeaderRecordKind] != schemas.RecordKindOrderIndex || headerMap(index)[schemas.HeaderReceivedAt] == "" ||
		headerMap(index)[schemas.HeaderTopic] != "orders/create" {
		t.Fatalf("order index record: %+v", index)
	}
	byKey := map[string]*kgo.Record{}
	for _, r := range recs {
		byKey[shortTopic(e.topics, r.Topic)+" "+string(r.Key)+" "+headerMap(r)["reason"]+" "+string(r.Value)] = r
	}
	for _, c := range cases {
		// The value is the body byte for byte.
		r := byKey[c.want.topic+" "+c.want.key+" "+c.want.reason+" "+string(c.body)]
		if r == nil {
			t.Errorf("%s: no record on %s keyed %q with reason %q and the body as value", c.name, c.want.topic, c.want.key, c.want.reason)
			continue
		}
		h := headerMap(r)
		for k, v := range map[string]string{
			schemas.HeaderShopDomain: strings.ToLower(c.shop), schemas.HeaderTopic: c.topic,
			schemas.HeaderWebhookID: "b54557e4-bdd9-4b37-8a5f-bf7d70bcd043", schemas.HeaderEventID: "98880550-7158-44d4-b7cd-2c97c8a091b5",
			schemas.HeaderAPIVersion: "2025-10", schemas.HeaderTriggeredAt: "2026-03-01T12:00:00.123456789Z",
		} {
			if h[k] != v {
				t.Errorf("%s: header %s = %q, want %q", c.name, k, h[k], v)
			}
		}
		if _, ok := h[schemas.HeaderReason]; ok != (c.want.reason != "") {
			t.Errorf("%s: reason header present = %v", c.name, ok)
		}
		at, err := time.Parse(time.RFC3339Nano, h[schemas.HeaderReceivedAt])
		if err != nil || at.Before(before) || at.After(after) || !strings.HasSuffix(h[schemas.HeaderReceivedAt], "Z") {
			t.Errorf("%s: received-at %q not an RFC 3339 UTC time within the test (%v)", c.name, h[schemas.HeaderReceivedAt], err)
		}
	}
	if got := testutil.ToFloat64(e.srv.m.unrouted.WithLabelValues(shopify.ReasonUnparsable)); got != 2 {
		t.Errorf("unrouted_total{reason=unparsable_body} = %v, want 2", got)
	}
	if got := testutil.ToFloat64(e.srv.m.requests.WithLabelValues(endpointWebhook, "200")); got != float64(len(cases)) {
		t.Errorf("requests_total{webhook,200} = %v, want %d", got, len(cases))
	}
}

// TestWebhookSignature: a webhook without a valid signature is refused and
// leaves nothing in Kafka.
func TestWebhookSignature(t *testing.T) {
	e := startInproc(t, func(c *Config) { c.Secrets = [][]byte{[]byte("new"), []byte(testSecret)} })
	body := []byte(`{"id":820982911946154508}`)
	bad := []func(r *req){
		func(r *req) { delete(r.headers, "X-Shopify-Hmac-Sha256") },
		func(r *req) { r.headers["X-Shopify-Hmac-Sha256"] = shopify.Sign([]byte("other"), body) },
		func(r *req) { r.headers["X-Shopify-Hmac-Sha256"] = "" },
		func(r *req) { r.body = append([]byte(nil), `{"id":820982911946154509}`...) }, // body changed after signing
	}
	for i, mod := range bad {
		r := webhook("orders/create", "acme.myshopify.com", body)
		mod(&r)
		got := e.do(t, r)
		if got.code != 401 {
			t.Errorf("case %d: code %d, want 401", i, got.code)
		}
		var eb errorBody
		if err := json.Unmarshal([]byte(got.body), &eb); err != nil || eb.Error == "" {
			t.Errorf("case %d: body %q is not a JSON error", i, got.body)
		}
	}
	if got := testutil.ToFloat64(e.srv.m.signatureFailures); got != float64(len(bad)) {
		t.Errorf("signature_failures_total = %v, want %d", got, len(bad))
	}
	if recs := readAll(t, e.seeds, rawTopics(e.topics)); len(recs) != 0 {
		t.Fatalf("%d records written for unsigned webhooks", len(recs))
	}
	// Both secrets of a rotation are accepted.
	r := webhook("orders/create", "acme.myshopify.com", body)
	if got := e.do(t, r); got.code != 200 {
		t.Fatalf("old secret: code %d", got.code)
	}
	r.headers["X-Shopify-Hmac-Sha256"] = shopify.Sign([]byte("new"), body)
	if got := e.do(t, r); got.code != 200 {
		t.Fatalf("new secret: code %d", got.code)
	}
}

func TestStorefront(t *testing.T) {
	e := startInproc(t, nil)
	p := ingesttest.NewPurchase(rand.New(rand.NewPCG(5, 6)), 7, 2)
	ok := storefrontReq("acme", p.StorefrontBody(schemas.OrderKeyID))
	ok.headers["Origin"] = "https://shop.acme.example"
	r := e.do(t, ok)
	if r.code != 202 || r.headers["Access-Control-Allow-Origin"] != "https://shop.acme.example" {
		t.Fatalf("storefront event: %d %v %s", r.code, r.headers, r.body)
	}
	// "#1008" in order_number mode is stored as 1008.
	hashed := storefrontReq("bolt", []byte(`{"purchase":{"order_number":"#1008","subtotal":12.5},"customer":{"email":"a@b.example"}}`))
	if r := e.do(t, hashed); r.code != 202 {
		t.Fatalf("bolt event: %d %s", r.code, r.body)
	}
	recs := readAll(t, e.seeds, rawTopics(e.topics))
	if len(recs) != 2 {
		t.Fatalf("%d records, want 2", len(recs))
	}
	got := map[string]*kgo.Record{}
	for _, r := range recs {
		if shortTopic(e.topics, r.Topic) != schemas.TopicStorefrontPurchases {
			t.Fatalf("record on %s", r.Topic)
		}
		got[string(r.Key)] = r
	}
	rec := got[p.Key("acme", schemas.OrderKeyID)]
	if rec == nil || !bytes.Equal(rec.Value, ok.body) {
		t.Fatalf("no record keyed %s with the body; have %v", p.Key("acme", schemas.OrderKeyID), got)
	}
	h := headerMap(rec)
	for k, v := range map[string]string{
		schemas.HeaderSite: "acme", schemas.HeaderClientIP: "198.51.100.1",
		schemas.HeaderUserAgent: "Mozilla/5.0 (test)", schemas.HeaderOrigin: "https://shop.acme.example",
	} {
		if h[k] != v {
			t.Errorf("header %s = %q, want %q", k, h[k], v)
		}
	}
	if _, err := time.Parse(time.RFC3339Nano, h[schemas.HeaderReceivedAt]); err != nil {
		t.Errorf("received-at: %v", err)
	}
	if got["bolt/1008"] == nil {
		t.Errorf("no record keyed bolt/1008")
	}
}

// TestStorefrontRefusals: each bad request gets its code (and the field for
// 400s) and nothing is written.
func TestStorefrontRefusals(t *testing.T) {
	e := startInproc(t, nil)
	good := `{"purchase":{"order_number":"100011","subtotal":"23.97"},"customer":{"email":"a@b.example"}}`
	cases := []struct {
		name  string
		r     req
		code  int
		field string
	}{
		{"unknown site", storefrontReq("nosuch", []byte(good)), 404, ""},
		{"bad slug", storefrontReq("Bad_Slug", []byte(good)), 404, ""},
		{"no site", req{method: "POST", path: "/v1/sites/purchases", body: []byte(good)}, 404, ""},
		{"text/plain", func() req {
			r := storefrontReq("acme", []byte(good))
			r.headers["Content-Type"] = "text/plain"
			return r
		}(), 415, ""},
		{"no content type", func() req { r := storefrontReq("acme", []byte(good)); delete(r.headers, "Content-Type"); return r }(), 415, ""},
		{"GET", req{method: "GET", path: "/v1/sites/acme/purchases"}, 405, ""},
		{"truncated", storefrontReq("acme", []byte(good[:40])), 400, "body"},
		{"not an object", storefrontReq("acme", []byte(`[1]`)), 400, "body"},
		{"no purchase", storefrontReq("acme", []byte(`{"customer":{"email":"a@b.example"}}`)), 400, "purchase"},
		{"no order number", storefrontReq("acme", []byte(`{"purchase":{"subtotal":"1"},"customer":{"email":"a@b.example"}}`)), 400, "purchase.order_number"},
		{"no subtotal", storefrontReq("acme", []byte(`{"purchase":{"order_number":"1"},"customer":{"email":"a@b.example"}}`)), 400, "purchase.subtotal"},
		{"bad subtotal", storefrontReq("acme", []byte(`{"purchase":{"order_number":"1","subtotal":"1,5"},"customer":{"email":"a@b.example"}}`)), 400, "purchase.subtotal"},
		{"no email", storefrontReq("acme", []byte(`{"purchase":{"order_number":"1","subtotal":"1"},"customer":{}}`)), 400, "customer.email"},
		{"wrong type", storefrontReq("acme", []byte(`{"purchase":{"order_number":"1","subtotal":"1","items":{}},"customer":{"email":"a@b.example"}}`)), 400, "purchase.items"},
		{"only #", storefrontReq("bolt", []byte(`{"purchase":{"order_number":"#","subtotal":"1"},"customer":{"email":"a@b.example"}}`)), 400, "purchase.order_number"},
	}
	for _, c := range cases {
		r := e.do(t, c.r)
		if r.code != c.code {
			t.Errorf("%s: code %d (%s), want %d", c.name, r.code, r.body, c.code)
			continue
		}
		var eb errorBody
		if err := json.Unmarshal([]byte(r.body), &eb); err != nil || eb.Error == "" {
			t.Errorf("%s: body %q is not a JSON error", c.name, r.body)
		}
		if eb.Field != c.field {
			t.Errorf("%s: field %q, want %q", c.name, eb.Field, c.field)
		}
	}
	for n, want := range map[int]int{64<<10 + 1: 413, 1000: 408} {
		if got := e.partial(t, "/v1/sites/acme/purchases", n); got != want {
			t.Errorf("%d-byte body announced, 1 sent: %d, want %d", n, got, want)
		}
	}
	if recs := readAll(t, e.seeds, rawTopics(e.topics)); len(recs) != 0 {
		t.Fatalf("%d records written for refused requests", len(recs))
	}
}

func TestCORS(t *testing.T) {
	e := startInproc(t, nil)
	f := func(site, origin string, code int, allowed bool) {
		t.Helper()
		r := e.do(t, req{method: "OPTIONS", path: "/v1/sites/" + site + "/purchases", headers: map[string]string{
			"Origin": origin, "Access-Control-Request-Method": "POST", "Access-Control-Request-Headers": "content-type"}})
		if r.code != code {
			t.Errorf("preflight %s from %q: code %d, want %d", site, origin, r.code, code)
		}
		if got := r.headers["Access-Control-Allow-Origin"]; (allowed && got != origin) || (!allowed && got != "") {
			t.Errorf("preflight %s from %q: Allow-Origin %q", site, origin, got)
		}
		if allowed && (!strings.Contains(r.headers["Access-Control-Allow-Methods"], "POST") || r.headers["Access-Control-Allow-Headers"] != "Content-Type") {
			t.Errorf("preflight %s from %q: headers %v", site, origin, r.headers)
		}
	}
	f("acme", "https://acme.myshopify.com", 204, true)
	f("acme", "https://shop.acme.example", 204, true)
	f("acme", "https://WWW.acme.example", 204, true)
	f("acme", "http://shop.acme.example", 403, false) // storefronts are https
	f("acme", "https://evil.example", 403, false)
	f("acme", "https://shop.acme.example.evil.example", 403, false)
	f("acme", "https://bolt.myshopify.com", 403, false) // another site's shop
	f("acme", "", 403, false)
	f("nosuch", "https://acme.myshopify.com", 404, false)
	// A POST from a foreign origin is not given the header (the browser
	// hides the answer), but is not refused: CORS is not authentication.
	r := storefrontReq("acme", []byte(`{"purchase":{"order_number":"1","subtotal":"1"},"customer":{"email":"a@b.example"}}`))
	r.headers["Origin"] = "https://evil.example"
	if got := e.do(t, r); got.code != 202 || got.headers["Access-Control-Allow-Origin"] != "" {
		t.Errorf("foreign-origin POST: %d %v", got.code, got.headers)
	}
}

func TestRateLimits(t *testing.T) {
	e := startInproc(t, func(c *Config) {
		c.IPRate, c.IPBurst = 1, 3
		c.SiteRate, c.SiteBurst = 1, 5
		c.TrustedProxies = []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8")}
	})
	body := []byte(`{"purchase":{"order_number":"1","subtotal":"1"},"customer":{"email":"a@b.example"}}`)
	send := func(from, xff string) resp {
		r := storefrontReq("acme", body)
		r.from = from
		if xff != "" {
			r.headers["X-Forwarded-For"] = xff
		}
		return e.do(t, r)
	}
	for i := range 3 {
		if r := send("198.51.100.7", ""); r.code != 202 {
			t.Fatalf("request %d within the IP burst: %d", i, r.code)
		}
	}
	r := send("198.51.100.7", "")
	if r.code != 429 || r.headers["Retry-After"] == "" {
		t.Fatalf("over the IP burst: %d, Retry-After %q", r.code, r.headers["Retry-After"])
	}
	// X-Forwarded-For from an untrusted peer is ignored: still limited.
	if r := send("198.51.100.7", "203.0.113.50"); r.code != 429 {
		t.Fatalf("spoofed X-Forwarded-For: %d, want 429", r.code)
	}
	// Behind a trusted proxy the forwarded address is the client: a new bucket.
	if r := send("10.1.2.3", "198.51.100.7, 203.0.113.9"); r.code != 202 {
		t.Fatalf("via trusted proxy: %d, want 202", r.code)
	}
	// The site's bucket (5) is now empty. Over it, a shopper's event
	// still passes (M2: a few flooding addresses must not lock the site's
	// shoppers out); a client spending its burst is refused.
	if r := send("198.51.100.99", ""); r.code != 202 {
		t.Fatalf("fifth request of the site: %d", r.code)
	}
	if r := send("198.51.100.100", ""); r.code != 202 {
		t.Fatalf("a shopper's first event over the site burst: %d, want 202", r.code)
	}
	if r := send("198.51.100.100", ""); r.code != 202 {
		t.Fatalf("a shopper's reload over the site burst: %d, want 202", r.code)
	}
	if r := send("198.51.100.100", ""); r.code != 429 {
		t.Fatalf("a client's third event in a burst over the site's: %d, want 429", r.code)
	}
	if got := testutil.ToFloat64(e.srv.m.rateLimited.WithLabelValues("site")); got != 1 {
		t.Errorf("rate_limited_total{scope=site} = %v, want 1", got)
	}
	recs := readAll(t, e.seeds, rawTopics(e.topics))
	ips := map[string]int{}
	for _, r := range recs {
		ips[headerMap(r)[schemas.HeaderClientIP]]++
	}
	if len(recs) != 7 || ips["203.0.113.9"] != 1 || ips["198.51.100.7"] != 3 || ips["198.51.100.100"] != 2 {
		t.Fatalf("records by client-ip: %v", ips)
	}
}

// TestNotReady: before the site registry is loaded nothing that depends on
// it is answered; compliance webhooks still are.
func TestNotReady(t *testing.T) {
	e := startInproc(t, nil)
	e.sites.SetReady(false)
	p := ingesttest.NewPurchase(rand.New(rand.NewPCG(1, 1)), 1, 1)
	if r := e.do(t, webhook("orders/create", "acme.myshopify.com", p.OrderBody())); r.code != 503 || r.headers["Retry-After"] != "3" {
		t.Errorf("order before the registry loaded: %d Retry-After %q", r.code, r.headers["Retry-After"])
	}
	if r := e.do(t, storefrontReq("acme", p.StorefrontBody(schemas.OrderKeyID))); r.code != 503 {
		t.Errorf("storefront before the registry loaded: %d", r.code)
	}
	if r := e.do(t, webhook("shop/redact", "acme.myshopify.com", []byte(`{"shop_id":1}`))); r.code != 200 {
		t.Errorf("compliance before the registry loaded: %d", r.code)
	}
	if r := e.do(t, req{method: "GET", path: "/readyz"}); r.code != 503 || !strings.Contains(r.body, "site registry") {
		t.Errorf("readyz: %d %s", r.code, r.body)
	}
	e.sites.SetReady(true)
	waitFor(t, 3*time.Second, "readyz 200", func() bool { return e.do(t, req{method: "GET", path: "/readyz"}).code == 200 })
	if r := e.do(t, req{method: "GET", path: "/healthz"}); r.code != 200 {
		t.Errorf("healthz: %d", r.code)
	}
}

// TestKafkaDownThenBack: with the broker gone a webhook gets 503 with
// Retry-After within the produce timeout; once the broker is back the same
// request succeeds through the same server.
func TestKafkaDownThenBack(t *testing.T) {
	tp := schemas.Topics{Prefix: "test."}
	// A restarted broker keeps its topics (and their ids): kfake does when
	// it persists to a directory.
	dir := t.TempDir()
	cluster, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.DataDir(dir), kfake.SeedTopics(1, rawTopics(tp)...))
	if err != nil {
		t.Fatal(err)
	}
	addr := cluster.ListenAddrs()[0]
	e := startInprocOn(t, cluster.ListenAddrs(), tp, nil)
	wh := webhook("orders/create", "acme.myshopify.com", []byte(`{"id":9007199254740993}`))
	if r := e.do(t, wh); r.code != 200 {
		t.Fatalf("with Kafka up: %d", r.code)
	}
	cluster.Close()
	for range 3 {
		start := time.Now()
		r := e.do(t, wh)
		if took := time.Since(start); r.code != 503 || r.headers["Retry-After"] == "" || took > 2*time.Second {
			t.Fatalf("with Kafka down: %d Retry-After %q after %s", r.code, r.headers["Retry-After"], took)
		}
	}
	waitFor(t, 3*time.Second, "readyz to fail", func() bool { return e.do(t, req{method: "GET", path: "/readyz"}).code == 503 })
	port, _ := strconv.Atoi(addr[strings.LastIndexByte(addr, ':')+1:])
	back, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.Ports(port), kfake.DataDir(dir))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(back.Close)
	waitFor(t, 10*time.Second, "the webhook to succeed again", func() bool { return e.do(t, wh).code == 200 })
	recs := readAll(t, e.seeds, []string{tp.Name(schemas.TopicShopifyOrders)})
	if len(recs) == 0 || string(recs[len(recs)-1].Key) != "acme/9007199254740993" {
		t.Fatalf("after recovery: %d records", len(recs))
	}
	if got := testutil.ToFloat64(e.srv.m.produceErrors.WithLabelValues("shopify.orders", produceTimeout)); got < 3 {
		t.Errorf("produce_errors_total{timeout} = %v, want >= 3", got)
	}
}

// TestRecordsOwnTheirBytes: a record that Kafka acknowledges only after
// its request was answered 503 must still carry its own body, although
// fasthttp reused the request buffer for the next request on the
// connection. The first produce is held, then its connection is dropped:
// the producer cannot know whether it was written, so it must send the
// record again, encoding it after the buffer was reused.
func TestRecordsOwnTheirBytes(t *testing.T) {
	e := startInproc(t, func(c *Config) { c.ProduceTimeout = 200 * time.Millisecond })
	release := make(chan struct{})
	var held atomic.Bool
	e.cluster.ControlKey(int16(kmsg.Produce), func(kmsg.Request) (kmsg.Response, error, bool) {
		if !held.CompareAndSwap(false, true) {
			return nil, nil, false
		}
		e.cluster.SleepControl(func() { <-release })
		return nil, errors.New("connection dropped"), true // the producer cannot know if it was written
	})
	c := e.client("198.51.100.1") // one client, one keep-alive connection
	first := []byte(`{"id":1111111111111111111}`)
	if r := doWith(t, c, "http://ingest", webhook("orders/create", "acme.myshopify.com", first)); r.code != 503 {
		t.Fatalf("held produce: code %d, want 503", r.code)
	}
	// Same length, same connection: fasthttp reads it into the same buffer.
	second := []byte(`{"id":2222222222222222222}`)
	doWith(t, c, "http://ingest", webhook("orders/create", "acme.myshopify.com", second))
	close(release)
	topic := []string{e.topics.Name(schemas.TopicShopifyOrders)}
	waitFor(t, 5*time.Second, "the held record", func() bool {
		for _, r := range readAll(t, e.seeds, topic) {
			if string(r.Key) == "acme/1111111111111111111" {
				return true
			}
		}
		return false
	})
	for _, r := range readAll(t, e.seeds, topic) {
		want := `{"id":` + strings.TrimPrefix(string(r.Key), "acme/") + `}`
		if string(r.Value) != want {
			t.Errorf("record %s carries %s", r.Key, r.Value)
		}
	}
}

// TestGracefulShutdown: a request in flight when Run's context ends is
// answered after Kafka acknowledges it, and Run then returns nil.
func TestGracefulShutdown(t *testing.T) {
	e := startInproc(t, func(c *Config) { c.ProduceTimeout = 3 * time.Second })
	release := make(chan struct{})
	entered := make(chan struct{})
	var slept atomic.Bool
	e.cluster.ControlKey(int16(kmsg.Produce), func(kmsg.Request) (kmsg.Response, error, bool) {
		if slept.CompareAndSwap(false, true) {
			close(entered)
			e.cluster.SleepControl(func() { <-release })
		}
		return nil, nil, false
	})
	codes := make(chan int, 1)
	go func() { codes <- e.do(t, webhook("orders/create", "acme.myshopify.com", []byte(`{"id":42}`))).code }()
	<-entered
	stopped := make(chan error, 1)
	go func() { stopped <- e.stop() }()
	time.Sleep(200 * time.Millisecond)
	select {
	case err := <-stopped:
		t.Fatalf("Run returned (%v) with a request in flight", err)
	default:
	}
	if e.srv.Ready() == nil {
		t.Error("ready while shutting down")
	}
	close(release)
	if code := <-codes; code != 200 {
		t.Fatalf("in-flight request: %d, want 200", code)
	}
	if err := <-stopped; err != nil {
		t.Fatalf("Run: %v", err)
	}
	if recs := readAll(t, e.seeds, []string{e.topics.Name(schemas.TopicShopifyOrders)}); len(recs) != 1 {
		t.Fatalf("%d records after shutdown, want 1", len(recs))
	}
}

// TestInflightLimit: with one slot and a produce that never finishes, the
// second request waits MaxQueueDuration and gets 503.
func TestInflightLimit(t *testing.T) {
	e := startInproc(t, func(c *Config) {
		c.MaxInflightProduces = 1
		c.MaxQueueDuration = 100 * time.Millisecond
		c.ProduceTimeout = 2 * time.Second
	})
	release := make(chan struct{})
	defer close(release)
	e.cluster.ControlKey(int16(kmsg.Produce), func(kmsg.Request) (kmsg.Response, error, bool) {
		e.cluster.SleepControl(func() { <-release })
		return nil, nil, false
	})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		e.do(t, webhook("orders/create", "acme.myshopify.com", []byte(`{"id":1}`)))
	}()
	waitFor(t, 2*time.Second, "the first produce to take the slot", func() bool {
		return testutil.ToFloat64(e.srv.m.inflightCurrent) == 1
	})
	start := time.Now()
	r := e.do(t, webhook("orders/create", "acme.myshopify.com", []byte(`{"id":2}`)))
	if r.code != 503 || time.Since(start) > time.Second || !strings.Contains(r.body, "maxInflightProduces") {
		t.Fatalf("over the in-flight limit: %d after %s: %s", r.code, time.Since(start), r.body)
	}
	if got := testutil.ToFloat64(e.srv.m.limitTimeouts); got != 1 {
		t.Errorf("limit_timeouts_total = %v", got)
	}
	release <- struct{}{}
	wg.Wait()
}

func TestMetricsLint(t *testing.T) {
	e := startInproc(t, nil)
	e.do(t, req{method: "GET", path: "/healthz"})
	mfs, err := e.reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	if len(mfs) < 10 {
		t.Fatalf("gathered %d metric families, want every ingest metric", len(mfs))
	}
	for _, mf := range mfs {
		if !strings.HasPrefix(mf.GetName(), "purchasesync_ingest_") {
			t.Errorf("metric %s lacks the purchasesync_ingest_ prefix", mf.GetName())
		}
	}
	problems, err := promlint.NewWithMetricFamilies(mfs).Lint()
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range problems {
		t.Errorf("metric %s: %s", p.Metric, p.Text)
	}
}

func TestNewRefusesBadConfig(t *testing.T) {
	cfg := testConfig()
	cfg.Secrets = nil
	if _, err := New(cfg, Deps{Client: &kgo.Client{}, Sites: testSites()}); err == nil || !strings.Contains(err.Error(), "PURCHASESYNC_SHOPIFY_API_SECRET") {
		t.Fatalf("New without a secret: %v", err)
	}
	cfg = testConfig()
	cfg.ProduceTimeout = 5 * time.Second
	if _, err := New(cfg, Deps{Client: &kgo.Client{}, Sites: testSites()}); err == nil || !strings.Contains(err.Error(), "produceTimeout") {
		t.Fatalf("New with a 5s produce timeout: %v", err)
	}
}

func waitFor(t testing.TB, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		if cond() {
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("timed out after %s waiting for %s", timeout, what)
}

// TestRunCancelledAtOnce: a Run whose context ends before Serve is up must
// still return (and free its port).
func TestRunCancelledAtOnce(t *testing.T) {
	cluster, err := kfake.NewCluster(kfake.NumBrokers(1))
	if err != nil {
		t.Fatal(err)
	}
	defer cluster.Close()
	cl, err := kgo.NewClient(producerOpts(cluster.ListenAddrs())...)
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	for range 20 {
		cfg := testConfig()
		cfg.Addr = "127.0.0.1:0"
		srv, err := New(cfg, Deps{Client: cl, Sites: testSites(), Logger: slog.New(slog.NewTextHandler(t.Output(), nil))})
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		done := make(chan error, 1)
		go func() { done <- srv.Run(ctx) }()
		select {
		case err := <-done:
			if err != nil {
				t.Fatalf("Run: %v", err)
			}
		case <-time.After(5 * time.Second):
			t.Fatal("Run did not return after its context was cancelled")
		}
	}
}
