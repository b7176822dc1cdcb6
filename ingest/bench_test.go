package ingest

import (
	"math/rand/v2"
	"net"
	"testing"

	"github.com/valyala/fasthttp"

	"purchasesync/ingest/ingesttest"
	"purchasesync/schemas"
)

// The handler benchmarks call the route switch directly (no HTTP
// transport) and produce to kfake, so allocs/op is one request's work:
// routing, record building (key, body and headers in one arena) and the
// produce. They guard the hot path's allocations when the record shape
// changes; ns/op is dominated by kfake's acknowledgement.

func benchInproc(b *testing.B) *inproc {
	return startInproc(b, func(c *Config) {
		c.IPRate, c.IPBurst = 1e9, 1e9
		c.SiteRate, c.SiteBurst = 1e9, 1e9
	})
}

func benchHandle(b *testing.B, e *inproc, r req) {
	var ctx fasthttp.RequestCtx
	ctx.Init(&fasthttp.Request{}, &net.TCPAddr{IP: net.ParseIP("198.51.100.1"), Port: 40000}, nil)
	b.ReportAllocs()
	for b.Loop() {
		ctx.Request.Reset()
		ctx.Response.Reset()
		ctx.Request.Header.SetMethod(r.method)
		ctx.Request.SetRequestURI(r.path)
		for k, v := range r.headers {
			ctx.Request.Header.Set(k, v)
		}
		ctx.Request.SetBody(r.body)
		e.srv.handle(&ctx)
		if c := ctx.Response.StatusCode(); c != fasthttp.StatusOK && c != fasthttp.StatusAccepted {
			b.Fatalf("status %d: %s", c, ctx.Response.Body())
		}
	}
}

// BenchmarkWebhookOrder is an orders/create webhook for a syncing site:
// the order record and its index record.
func BenchmarkWebhookOrder(b *testing.B) {
	e := benchInproc(b)
	p := ingesttest.NewPurchase(rand.New(rand.NewPCG(3, 4)), 1, 3)
	benchHandle(b, e, webhook(schemas.WebhookOrdersCreate, "acme.myshopify.com", p.OrderBody()))
}

// BenchmarkStorefront is one storefront purchase event.
func BenchmarkStorefront(b *testing.B) {
	e := benchInproc(b)
	p := ingesttest.NewPurchase(rand.New(rand.NewPCG(5, 6)), 7, 2)
	benchHandle(b, e, storefrontReq("acme", p.StorefrontBody(schemas.OrderKeyID)))
}
