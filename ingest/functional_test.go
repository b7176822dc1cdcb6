package ingest

import (
	"bufio"
	"context"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/valyala/fasthttp"

	"purchasesync/deploy/testenv"
	"purchasesync/ingest/ingesttest"
	"purchasesync/ingest/shopify"
	"purchasesync/processors/sites"
	"purchasesync/schemas"
)

// Functional tests run against the real Kafka of deploy/local/stack.sh
// (testenv.Kafka skips without it, and fails when
// PURCHASESYNC_FUNCTIONAL_TESTS=1). Each test uses its own topic prefix.

// realStack is one ingest on a real loopback socket, producing to the real
// broker, with a real site registry following the test's sites.v1.
type realStack struct {
	brokers []string
	topics  schemas.Topics
	addr    string
	srv     *Server
}

// putSites writes the test sites to sites.v1, as the admin API would.
func putSites(t *testing.T, brokers []string, tp schemas.Topics) {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(brokers...))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	w := sites.Writer{Client: cl, Topic: tp.Name(schemas.TopicSites)}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for _, s := range testSites().All() {
		if _, err := w.Put(ctx, s); err != nil {
			t.Fatal(err)
		}
	}
}

// startRegistry runs a site registry on tp until the test ends and waits
// until it has loaded.
func startRegistry(t *testing.T, brokers []string, tp schemas.Topics) *sites.Registry {
	t.Helper()
	cfg := sites.DefaultConfig()
	cfg.Topics = tp
	reg, err := sites.New(cfg, sites.Deps{KafkaOpts: []kgo.Opt{kgo.SeedBrokers(brokers...)},
		Registerer: prometheus.NewRegistry(), Logger: slog.New(slog.NewTextHandler(t.Output(), nil))})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- reg.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("site registry: %v", err)
		}
	})
	wctx, wcancel := context.WithTimeout(ctx, 30*time.Second)
	defer wcancel()
	if err := reg.WaitReady(wctx); err != nil {
		t.Fatal(err)
	}
	return reg
}

func startReal(t *testing.T, mod func(*Config)) *realStack {
	t.Helper()
	brokers := testenv.Kafka(t)
	tp := testenv.Topics(t, brokers, 3)
	putSites(t, brokers, tp)
	reg := startRegistry(t, brokers, tp)
	return serveReal(t, brokers, tp, reg, mod)
}

// serveReal runs an ingest on a loopback port with a producer seeded at
// seeds (the real brokers, or a dead address).
func serveReal(t *testing.T, seeds []string, tp schemas.Topics, s Sites, mod func(*Config)) *realStack {
	t.Helper()
	cl, err := kgo.NewClient(producerOpts(seeds)...)
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	cfg := testConfig()
	cfg.Topics = tp
	if mod != nil {
		mod(&cfg)
	}
	srv, err := New(cfg, Deps{Client: cl, Sites: s, Listener: ln,
		Logger: slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelDebug}))})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
		cl.Close()
	})
	return &realStack{brokers: seeds, topics: tp, addr: ln.Addr().String(), srv: srv}
}

func (r *realStack) do(t testing.TB, q req) resp {
	t.Helper()
	c := &fasthttp.Client{ReadTimeout: 10 * time.Second, MaxResponseBodySize: 1 << 20}
	return doWith(t, c, "http://"+r.addr, q)
}

// partial sends a request's headers announcing a body of contentLength
// bytes, then only prefix, and returns the status line of the answer and
// how long it took. An oversize announcement is refused at once (413); a
// body that never completes is refused after ReadTimeout (408). Writing an
// oversize body in full instead would race the server's refusal, which
// closes the connection while the client is still writing.
func partial(t *testing.T, addr, path, headers string, contentLength int, prefix string) (status string, took time.Duration) {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	start := time.Now()
	fmt.Fprintf(c, "POST %s HTTP/1.1\r\nHost: ingest\r\nContent-Type: application/json\r\n%sContent-Length: %d\r\n\r\n%s", path, headers, contentLength, prefix)
	_ = c.SetReadDeadline(time.Now().Add(10 * time.Second))
	line, err := bufio.NewReader(c).ReadString('\n')
	if err != nil {
		t.Fatalf("no answer to the partial request to %s: %v", path, err)
	}
	return strings.TrimSpace(line), time.Since(start)
}

// TestFunctionalBadInput sends the bad-input table to an ingest on the real
// stack; each request gets its code, and the topics then hold exactly the
// records the accepted requests should have left.
func TestFunctionalBadInput(t *testing.T) {
	r := startReal(t, func(c *Config) { c.ReadTimeout = time.Second })
	big := uint64(18446744073709551615) // above 2^53: a float64 would round it
	order := []byte(fmt.Sprintf(`{"id":%d,"order_number":1001,"name":"#1001","email":"a@b.example"}`, big))
	goodEvent := []byte(`{"purchase":{"order_number":9007199254740993,"subtotal":"23.97"},"customer":{"email":"a@b.example"}}`)
	withHeader := func(q req, k, v string) req {
		h := map[string]string{}
		for a, b := range q.headers {
			h[a] = b
		}
		if v == "" {
			delete(h, k)
		} else {
			h[k] = v
		}
		q.headers = h
		return q
	}
	type rec struct{ topic, key string }
	cases := []struct {
		name  string
		q     req
		code  int
		wrote *rec
	}{
		{"order, id above 2^53", webhook("orders/create", "acme.myshopify.com", order), 200,
			&rec{schemas.TopicShopifyOrders, fmt.Sprintf("acme/%d", big)}},
		{"event, order number above 2^53", storefrontReq("acme", goodEvent), 202,
			&rec{schemas.TopicStorefrontPurchases, "acme/9007199254740993"}},
		{"bad HMAC", withHeader(webhook("orders/create", "acme.myshopify.com", order), "X-Shopify-Hmac-Sha256", shopify.Sign([]byte("wrong"), order)), 401, nil},
		{"missing HMAC", withHeader(webhook("orders/create", "acme.myshopify.com", order), "X-Shopify-Hmac-Sha256", ""), 401, nil},
		{"signed truncated order", webhook("orders/create", "acme.myshopify.com", order[:20]), 200,
			&rec{schemas.TopicShopifyUnrouted, "acme.myshopify.com"}},
		{"truncated event", storefrontReq("acme", goodEvent[:30]), 400, nil},
		{"wrong content type", withHeader(storefrontReq("acme", goodEvent), "Content-Type", "text/plain"), 415, nil},
		{"unknown site", storefrontReq("nosuch", goodEvent), 404, nil},
		{"unknown shop", webhook("orders/create", "nobody.myshopify.com", order), 200,
			&rec{schemas.TopicShopifyUnrouted, "nobody.myshopify.com"}},
		{"missing email", storefrontReq("acme", []byte(`{"purchase":{"order_number":"1","subtotal":"1"},"customer":{}}`)), 400, nil},
		{"missing order number", storefrontReq("acme", []byte(`{"purchase":{"subtotal":"1"},"customer":{"email":"a@b.example"}}`)), 400, nil},
	}
	var want []string
	for _, c := range cases {
		got := r.do(t, c.q)
		if got.code != c.code {
			t.Errorf("%s: code %d (%s), want %d", c.name, got.code, got.body, c.code)
		}
		if c.wrote != nil {
			want = append(want, c.wrote.topic+" "+c.wrote.key)
		}
	}
	// Oversize bodies (413 at once) and a client that never finishes its
	// body (408 after ReadTimeout), on both endpoints; the webhook ones carry
	// a signature header so only the transport limits can refuse them.
	sig := "X-Shopify-Hmac-Sha256: " + shopify.Sign([]byte(testSecret), nil) + "\r\n"
	for _, c := range []struct {
		path    string
		length  int
		status  string
		minTook time.Duration
	}{
		{"/v1/sites/acme/purchases", 64<<10 + 1, "HTTP/1.1 413", 0},
		{"/webhooks/shopify", MaxRecordBodyBytes + 1, "HTTP/1.1 413", 0},
		{"/v1/sites/acme/purchases", 1000, "HTTP/1.1 408", 900 * time.Millisecond},
		{"/webhooks/shopify", 1000, "HTTP/1.1 408", 900 * time.Millisecond},
	} {
		status, took := partial(t, r.addr, c.path, sig, c.length, `{"purchase":`)
		if !strings.HasPrefix(status, c.status) || took < c.minTook || took > 5*time.Second {
			t.Errorf("%s with %d bytes announced: %q after %s, want %s", c.path, c.length, status, took, c.status)
		}
	}
	var got []string
	for _, rc := range readAll(t, r.brokers, rawTopics(r.topics)) {
		got = append(got, shortTopic(r.topics, rc.Topic)+" "+string(rc.Key))
	}
	sort.Strings(want)
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Fatalf("topics hold\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

// TestFunctionalKafkaUnavailable: with no broker behind its address the
// ingest answers 503 with Retry-After within its produce timeout and is not
// ready; an ingest with a working producer then takes the same request.
func TestFunctionalKafkaUnavailable(t *testing.T) {
	brokers := testenv.Kafka(t)
	tp := testenv.Topics(t, brokers, 3)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	dead := ln.Addr().String()
	ln.Close() // nothing listens there now: connections are refused at once
	down := serveReal(t, []string{dead}, tp, testSites(), func(c *Config) { c.ProduceTimeout = time.Second })
	p := ingesttest.NewPurchase(rand.New(rand.NewPCG(7, 7)), 1, 2)
	wh := webhook("orders/create", "acme.myshopify.com", p.OrderBody())
	for _, q := range []req{wh, storefrontReq("acme", p.StorefrontBody(schemas.OrderKeyID))} {
		start := time.Now()
		got := down.do(t, q)
		if took := time.Since(start); got.code != 503 || got.headers["Retry-After"] != "3" || took > 2*time.Second {
			t.Fatalf("%s with Kafka unavailable: %d Retry-After %q after %s", q.path, got.code, got.headers["Retry-After"], took)
		}
	}
	if got := down.do(t, req{method: "GET", path: "/readyz"}); got.code != 503 || !strings.Contains(got.body, "Kafka") {
		t.Errorf("readyz with Kafka unavailable: %d %s", got.code, got.body)
	}
	up := serveReal(t, brokers, tp, testSites(), nil)
	waitFor(t, 10*time.Second, "readyz", func() bool { return up.do(t, req{method: "GET", path: "/readyz"}).code == 200 })
	if got := up.do(t, wh); got.code != 200 {
		t.Fatalf("with Kafka available: %d %s", got.code, got.body)
	}
	recs := readAll(t, brokers, rawTopics(tp))
	if len(recs) != 1 || string(recs[0].Key) != p.Key("acme", schemas.OrderKeyID) || string(recs[0].Value) != string(wh.body) {
		t.Fatalf("Kafka holds %d records, want the one acknowledged webhook", len(recs))
	}
}
