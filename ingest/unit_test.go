package ingest

import (
	"bytes"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"purchasesync/schemas"
)

func TestClientIP(t *testing.T) {
	trusted := []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8"), netip.MustParsePrefix("2001:db8:ffff::/48")}
	f := func(peer string, xff []string, want string) {
		t.Helper()
		var hs [][]byte
		for _, h := range xff {
			hs = append(hs, []byte(h))
		}
		if got := clientIP(netip.MustParseAddr(peer), hs, trusted); got.String() != want {
			t.Errorf("clientIP(%s, %q) = %s, want %s", peer, xff, got, want)
		}
	}
	f("198.51.100.1", nil, "198.51.100.1")
	f("198.51.100.1", []string{"203.0.113.9"}, "198.51.100.1") // untrusted peer: header ignored
	f("::ffff:198.51.100.1", nil, "198.51.100.1")              // mapped addresses unmapped
	f("10.0.0.1", nil, "10.0.0.1")
	f("10.0.0.1", []string{"203.0.113.9"}, "203.0.113.9")
	f("10.0.0.1", []string{"1.1.1.1, 203.0.113.9"}, "203.0.113.9")           // right-most untrusted wins
	f("10.0.0.1", []string{"1.1.1.1, 203.0.113.9, 10.9.9.9"}, "203.0.113.9") // skipping our own proxies
	f("10.0.0.1", []string{"1.1.1.1", "203.0.113.9"}, "203.0.113.9")         // several headers in order
	f("10.0.0.1", []string{"10.1.1.1, 10.2.2.2"}, "10.1.1.1")                // all trusted: left-most
	f("10.0.0.1", []string{"1.1.1.1, garbage"}, "10.0.0.1")                  // unparsable: stop at what we vouch for
	f("10.0.0.1", []string{"203.0.113.9:4711"}, "203.0.113.9")
	f("10.0.0.1", []string{"[2001:db8::1]:443"}, "2001:db8::1")
	f("2001:db8:ffff::1", []string{"2001:db8:1::7"}, "2001:db8:1::7")
	f("10.0.0.1", []string{" , 203.0.113.9 ,"}, "203.0.113.9")
}

func TestRateKey(t *testing.T) {
	f := func(in, want string) {
		t.Helper()
		if got := rateKey(netip.MustParseAddr(in)); got.String() != want {
			t.Errorf("rateKey(%s) = %s, want %s", in, got, want)
		}
	}
	f("198.51.100.7", "198.51.100.7")
	f("::ffff:198.51.100.7", "198.51.100.7")
	f("2001:db8:1:2:aaaa::1", "2001:db8:1:2::") // an IPv6 client owns its /64
	f("2001:db8:1:2:bbbb::9", "2001:db8:1:2::")
}

func TestTokenBuckets(t *testing.T) {
	b := newTokenBuckets[string](2, 3) // 2/s, burst 3
	now := time.Unix(1000, 0)
	for i := range 3 {
		if ok, _ := b.allow("a", now); !ok {
			t.Fatalf("request %d of the burst refused", i)
		}
	}
	ok, wait := b.allow("a", now)
	if ok || wait != 500*time.Millisecond {
		t.Fatalf("over the burst: ok=%v wait=%s, want refused with 500ms", ok, wait)
	}
	if ok, _ := b.allow("b", now); !ok {
		t.Fatal("another key shares the bucket")
	}
	if ok, _ := b.allow("a", now.Add(500*time.Millisecond)); !ok {
		t.Fatal("no token after 500ms at 2/s")
	}
	if ok, _ := b.allow("a", now.Add(500*time.Millisecond)); ok {
		t.Fatal("two tokens after 500ms at 2/s")
	}
	b.sweep(now.Add(time.Hour))
	if n := b.len(); n != 0 {
		t.Fatalf("%d buckets after a sweep of refilled ones", n)
	}
	var off *tokenBuckets[string] // rate 0: disabled
	if newTokenBuckets[string](0, 1) != nil {
		t.Fatal("rate 0 did not disable the limit")
	}
	if ok, _ := off.allow("a", now); !ok {
		t.Fatal("a disabled limit refused")
	}
}

// A full table of active buckets refuses new keys; the sweep that looks for
// room runs at most once a second, not once per refused request, because it
// holds the lock every request needs.
func TestTokenBucketsFullTableSweepsOncePerSecond(t *testing.T) {
	b := newTokenBuckets[int](1, 2)
	b.capacity = 4
	now := time.Unix(1000, 0)
	for k := range 4 {
		b.allow(k, now) // each key spends a token: not refilled, not swept
	}
	for k := 4; k < 104; k++ {
		if ok, _ := b.allow(k, now.Add(time.Duration(k)*time.Millisecond)); ok {
			t.Fatalf("key %d admitted into a full table", k)
		}
	}
	if b.sweeps != 1 {
		t.Fatalf("%d sweeps for 100 refused keys within a second, want 1", b.sweeps)
	}
	// Two seconds on, the first keys have refilled: the next sweep makes room.
	if ok, _ := b.allow(500, now.Add(3*time.Second)); !ok {
		t.Fatal("a new key refused after the table's buckets refilled")
	}
	if b.sweeps != 2 {
		t.Fatalf("%d sweeps, want 2", b.sweeps)
	}
}

func TestAllowedOrigin(t *testing.T) {
	site := schemas.Site{Site: "acme", ShopDomain: "acme.myshopify.com",
		CustomDomains: []string{"shop.acme.example", "https://www.acme.example/", " eu.acme.example:8443 "}}
	f := func(origin string, want bool) {
		t.Helper()
		if got := allowedOrigin(site, []byte(origin)); got != want {
			t.Errorf("allowedOrigin(%q) = %v, want %v", origin, got, want)
		}
	}
	f("https://acme.myshopify.com", true)
	f("HTTPS://ACME.myshopify.com", true)
	f("https://shop.acme.example", true)
	f("https://www.acme.example", true)
	f("https://eu.acme.example:8443", true)
	f("https://eu.acme.example", false) // other port
	f("http://shop.acme.example", false)
	f("https://acme.example", false)
	f("https://shop.acme.example.evil", false)
	f("https://evil.example/https://shop.acme.example", false)
	f("null", false)
	f("https://", false)
	f("", false)
}

func TestIsJSON(t *testing.T) {
	for ct, want := range map[string]bool{
		"application/json": true, "Application/JSON; charset=utf-8": true, " application/json ;charset=UTF-8": true,
		"": false, "text/plain": false, "application/jsonx": false, "application/x-www-form-urlencoded": false,
		"multipart/form-data; boundary=x": false, "application/ld+json": false,
	} {
		if got := isJSON([]byte(ct)); got != want {
			t.Errorf("isJSON(%q) = %v, want %v", ct, got, want)
		}
	}
}

func TestNewRecordCopies(t *testing.T) {
	body := []byte(`{"id":1}`)
	ua := []byte("Mozilla")
	at := time.Date(2026, 3, 1, 12, 0, 0, 123456789, time.FixedZone("EST", -5*3600))
	hs, n := schemas.StorefrontHeaderList[kgo.RecordHeader](&schemas.StorefrontHeaders{UserAgent: ua})
	rec := newRecord("t", "acme/1", body, at, hs[:n])
	copy(body, "XXXXXXXX")
	copy(ua, "XXXXXXX")
	if string(rec.Value) != `{"id":1}` || string(rec.Key) != "acme/1" {
		t.Fatalf("record changed with the source buffers: key %q value %q", rec.Key, rec.Value)
	}
	h := headerMap(rec)
	if h[schemas.HeaderUserAgent] != "Mozilla" || h[schemas.HeaderOrigin] != "" {
		t.Fatalf("headers %v", h)
	}
	if got := h[schemas.HeaderReceivedAt]; got != "2026-03-01T17:00:00.123456789Z" {
		t.Fatalf("received-at %q, want RFC 3339 UTC with nanoseconds", got)
	}
	// Appending to one part must not overwrite the next.
	rec.Value = append(rec.Value, '!')
	if h2 := headerMap(rec); h2[schemas.HeaderUserAgent] != "Mozilla" {
		t.Fatal("record parts share capacity")
	}
}

func TestStorefrontKey(t *testing.T) {
	byID := schemas.Site{Site: "acme", OrderKey: schemas.OrderKeyID}
	byNumber := schemas.Site{Site: "bolt", OrderKey: schemas.OrderKeyNumber}
	f := func(site schemas.Site, body, want string) {
		t.Helper()
		got, err := storefrontKey(site, []byte(body))
		if err != nil || got != want {
			t.Errorf("storefrontKey(%s, %s) = %q, %v; want %q", site.Site, body, got, err, want)
		}
	}
	f(byID, `{"purchase":{"order_number":9007199254740993,"subtotal":1},"customer":{"email":"a@b.c"}}`, "acme/9007199254740993")
	f(byID, `{"purchase":{"order_number":" 5837291049 ","subtotal":"23.97"},"customer":{"email":"a@b.c"}}`, "acme/5837291049")
	f(byNumber, `{"purchase":{"order_number":"#1001","subtotal":"1"},"customer":{"email":"a@b.c"}}`, "bolt/1001")
	f(byID, `{"purchase":{"order_number":"#1001","subtotal":"1"},"customer":{"email":"a@b.c"}}`, "acme/#1001")
}

func TestConfigValidate(t *testing.T) {
	ok := DefaultConfig()
	ok.Secrets = [][]byte{[]byte("s")}
	if err := ok.Validate(); err != nil {
		t.Fatalf("defaults with a secret: %v", err)
	}
	f := func(mod func(*Config), wantFlag string) {
		t.Helper()
		c := ok
		mod(&c)
		err := c.Validate()
		if err == nil || !strings.Contains(err.Error(), wantFlag) {
			t.Errorf("Validate = %v, want an error naming %s", err, wantFlag)
		}
	}
	f(func(c *Config) { c.Secrets = nil }, "-shopify.apiSecret")
	f(func(c *Config) { c.Secrets = [][]byte{{}} }, "-shopify.apiSecret")
	f(func(c *Config) { c.ProduceTimeout = 6 * time.Second }, "-ingest.produceTimeout")
	f(func(c *Config) { c.ReadTimeout = 0 }, "-ingest.readTimeout")
	f(func(c *Config) { c.MaxStorefrontBodyBytes = 10 }, "-ingest.maxStorefrontBodyBytes")
	f(func(c *Config) { c.MaxStorefrontBodyBytes = MaxStorefrontBodyLimit + 1 }, "-ingest.maxStorefrontBodyBytes") // L9
	f(func(c *Config) { c.MaxInflightProduces = 0 }, "-ingest.maxInflightProduces")
	f(func(c *Config) { c.IPRate, c.IPBurst = 1, 0 }, "-ingest.ipBurst")
	f(func(c *Config) { c.RetryAfter = 10 * time.Millisecond }, "-ingest.retryAfter")
}

func TestParseTrustedProxies(t *testing.T) {
	got, err := ParseTrustedProxies([]string{"10.0.0.0/8", "127.0.0.1", "::1", "192.168.1.77/24"})
	if err != nil {
		t.Fatal(err)
	}
	var b bytes.Buffer
	for _, p := range got {
		b.WriteString(p.String() + " ")
	}
	if b.String() != "10.0.0.0/8 127.0.0.1/32 ::1/128 192.168.1.0/24 " {
		t.Fatalf("parsed %s", b.String())
	}
	if _, err := ParseTrustedProxies([]string{"10.0.0.300"}); err == nil || !strings.Contains(err.Error(), "-ingest.trustedProxies") {
		t.Fatalf("bad proxy: %v", err)
	}
}
