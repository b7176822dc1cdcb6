package ingest

import (
	"bufio"
	"fmt"
	"net"
	"purchasesync/ingest/shopify"
	"runtime"
	"strings"
	"testing"
	"time"
)

// TestAnnouncedBodiesReserveNothing: connections that announce a large
// Content-Length and send nothing more make the server reserve nothing for
// the body, on any path (H2 of the security review: fasthttp used to
// allocate the announced length, ~1 MiB per connection, on every path but
// the storefront's). deploy/local/bench-idle-conns.sh measures the same on
// the built binary's RSS.
func TestAnnouncedBodiesReserveNothing(t *testing.T) {
	e := startInproc(t, func(c *Config) { c.ReadTimeout = 20 * time.Second })
	paths := []string{"/webhooks/shopify", "/healthz", "/nosuch", "/v1/sites/acme/purchases"}
	const conns = 200
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	var cs []net.Conn
	for i := range conns {
		c, err := e.ln.Dial()
		if err != nil {
			t.Fatal(err)
		}
		cs = append(cs, c)
		fmt.Fprintf(c, "POST %s HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n", paths[i%len(paths)], MaxRecordBodyBytes)
	}
	time.Sleep(500 * time.Millisecond) // every connection's headers are parsed by now
	runtime.GC()
	runtime.ReadMemStats(&after)
	perConn := (int64(after.HeapInuse) - int64(before.HeapInuse)) / conns
	t.Logf("%d connections announcing %d bytes: %+d bytes of heap in use per connection", conns, MaxRecordBodyBytes, perConn)
	if perConn > 64<<10 {
		t.Errorf("%d bytes of heap per idle connection announcing %d bytes; want < 64 KiB", perConn, MaxRecordBodyBytes)
	}
	// Paths without a body refuse it once it starts (and close); the
	// webhook waits for it.
	for i, c := range cs[:len(paths)] {
		c.Write([]byte("{"))
		wait := 5 * time.Second
		if i == 0 {
			wait = 300 * time.Millisecond
		}
		_ = c.SetReadDeadline(time.Now().Add(wait))
		line, err := bufio.NewReader(c).ReadString('\n')
		want := map[int]string{0: "", 1: "413", 2: "413", 3: "413"}[i]
		if i == 0 {
			if err == nil {
				t.Errorf("%s answered %q before its body arrived", paths[i], line)
			}
			continue
		}
		if !strings.Contains(line, want) {
			t.Errorf("%s with a body: %q (%v), want %s", paths[i], line, err, want)
		}
	}
	for _, c := range cs {
		c.Close()
	}
}

// TestRequestTargetSpellings: spellings of the request-target that
// fasthttp normalizes to a route neither escape the storefront's body
// limit nor reach the route (M1 of the security review: they used to get
// the webhook's 960 KiB limit).
func TestRequestTargetSpellings(t *testing.T) {
	e := startInproc(t, nil)
	const announced = 500 << 10 // over the storefront's 64 KiB, under the webhook's
	for target, want := range map[string]int{
		"/v1/sites/acme/purchases":          413,
		"http://x/v1/sites/acme/purchases":  413, // absolute-form: legal, same route, same limit
		"//v1/sites/acme/purchases":         400,
		"/%761/sites/acme/purchases":        400,
		"/x/../v1/sites/acme/purchases":     400,
		"/v1/sites/acme/./purchases":        400,
		"/v1/sites//acme/purchases":         400,
		"/webhooks//shopify":                400,
		"/v1/sites/acme/purchases?x=/../..": 413,
	} {
		if got := e.partial(t, target, announced); got != want {
			t.Errorf("POST %s announcing %d bytes: %d, want %d", target, announced, got, want)
		}
	}
	if r := e.do(t, req{method: "GET", path: "/healthz?probe=1"}); r.code != 200 {
		t.Errorf("GET /healthz?probe=1: %d, want 200", r.code)
	}
}

// TestCustomAppSecretIsBoundToItsShop: a webhook for shop B signed with
// shop A's custom-app secret gets 401 and writes nothing; A's own webhooks
// verify, and so do every shop's under the public secret (H5).
func TestCustomAppSecretIsBoundToItsShop(t *testing.T) {
	const custom = "shpss_custom_bolt"
	e := startInproc(t, func(c *Config) { c.ShopSecrets = map[string][][]byte{"bolt.myshopify.com": {[]byte(custom)}} })
	body := []byte(`{"id":820982911946154508,"name":"#1001","order_number":1001,"email":"jane@example.com"}`)
	signed := func(shop, secret string) req {
		r := webhook("orders/create", shop, body)
		r.headers["X-Shopify-Hmac-Sha256"] = shopify.Sign([]byte(secret), body)
		return r
	}
	if r := e.do(t, signed("acme.myshopify.com", custom)); r.code != 401 {
		t.Errorf("acme's webhook signed with bolt's custom secret: %d, want 401", r.code)
	}
	if r := e.do(t, signed("bolt.myshopify.com", custom)); r.code != 200 {
		t.Errorf("bolt's webhook signed with its custom secret: %d (%s), want 200", r.code, r.body)
	}
	if r := e.do(t, signed("acme.myshopify.com", testSecret)); r.code != 200 {
		t.Errorf("acme's webhook signed with the public secret: %d (%s), want 200", r.code, r.body)
	}
	recs := readAll(t, e.seeds, rawTopics(e.topics)[:4]) // bolt's order index record aside
	if len(recs) != 2 {
		t.Fatalf("%d records, want 2 (the forged one must not be written)", len(recs))
	}
}
