package ingest

import (
	"bufio"
	"context"
	"fmt"
	"log/slog"
	"net"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/valyala/fasthttp"
	"github.com/valyala/fasthttp/fasthttputil"

	"purchasesync/ingest/shopify"
	"purchasesync/processors/sites/sitestest"
	"purchasesync/schemas"
)

const testSecret = "hush"

// testSites are the sites every in-process test knows.
func testSites() *sitestest.Registry {
	return sitestest.New(
		schemas.Site{Site: "acme", ShopDomain: "acme.myshopify.com", PurchaseSyncing: true,
			CustomDomains: []string{"shop.acme.example", "https://www.acme.example/"}},
		schemas.Site{Site: "bolt", ShopDomain: "bolt.myshopify.com", OrderKey: schemas.OrderKeyNumber, PurchaseSyncing: true},
		schemas.Site{Site: "dormant", ShopDomain: "dormant.myshopify.com"},
	)
}

// rawTopics are the six topics the ingest writes, in a prefix.
func rawTopics(tp schemas.Topics) []string {
	return []string{
		tp.Name(schemas.TopicShopifyOrders), tp.Name(schemas.TopicStorefrontPurchases),
		tp.Name(schemas.TopicShopifyUnrouted), tp.Name(schemas.TopicCompliance),
		tp.Name(schemas.TopicShopifyOrderIDs), tp.Name(schemas.TopicShopifyApp),
	}
}

// testConfig is DefaultConfig with short timeouts for tests.
func testConfig() Config {
	cfg := DefaultConfig()
	cfg.Secrets = [][]byte{[]byte(testSecret)}
	cfg.ProduceTimeout = 500 * time.Millisecond
	cfg.ReadTimeout = 500 * time.Millisecond
	cfg.ReadyCheckInterval = 100 * time.Millisecond
	cfg.ShutdownTimeout = 5 * time.Second
	cfg.RetryAfter = 3 * time.Second
	cfg.IPRate, cfg.IPBurst = 1000, 1000
	return cfg
}

// producerOpts mirror cmd/purchasesync's producer: acks=all, idempotent.
func producerOpts(seeds []string) []kgo.Opt {
	return []kgo.Opt{
		kgo.SeedBrokers(seeds...),
		kgo.RequiredAcks(kgo.AllISRAcks()),
		kgo.ProducerLinger(time.Millisecond),
		kgo.RetryBackoffFn(func(int) time.Duration { return 50 * time.Millisecond }),
		kgo.MetadataMinAge(250 * time.Millisecond), // retry soon after a dropped connection
	}
}

// inproc is an ingest served on an in-memory listener, producing to kfake.
type inproc struct {
	srv     *Server
	ln      *fasthttputil.InmemoryListener
	cluster *kfake.Cluster
	seeds   []string
	sites   *sitestest.Registry
	reg     *prometheus.Registry
	topics  schemas.Topics
	stop    func() error // cancels Run and returns its error
}

func startInproc(t testing.TB, mod func(*Config)) *inproc {
	t.Helper()
	tp := schemas.Topics{Prefix: "test."}
	cluster, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(3, rawTopics(tp)...))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cluster.Close)
	e := startInprocOn(t, cluster.ListenAddrs(), tp, mod)
	e.cluster = cluster
	return e
}

func startInprocOn(t testing.TB, seeds []string, tp schemas.Topics, mod func(*Config)) *inproc {
	t.Helper()
	cl, err := kgo.NewClient(producerOpts(seeds)...)
	if err != nil {
		t.Fatal(err)
	}
	cfg := testConfig()
	cfg.Topics = tp
	if mod != nil {
		mod(&cfg)
	}
	e := &inproc{ln: fasthttputil.NewInmemoryListener(), seeds: seeds, sites: testSites(), reg: prometheus.NewRegistry(), topics: tp}
	level := slog.LevelDebug
	if _, bench := t.(*testing.B); bench {
		level = slog.LevelInfo // a debug line per request would be most of what a benchmark measures
	}
	e.srv, err = New(cfg, Deps{Client: cl, Sites: e.sites, Listener: e.ln, Logger: slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: level})),
		Registerer: prometheus.WrapRegistererWithPrefix("purchasesync_ingest_", e.reg)})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- e.srv.Run(ctx) }()
	var once sync.Once
	var runErr error
	e.stop = func() error {
		once.Do(func() {
			cancel()
			select {
			case runErr = <-done:
			case <-time.After(15 * time.Second):
				t.Error("Run did not return within 15s of cancel")
			}
			cl.Close()
		})
		return runErr
	}
	t.Cleanup(func() {
		if err := e.stop(); err != nil {
			t.Errorf("Run: %v", err)
		}
	})
	return e
}

// client returns an HTTP client whose connections come from addr (a
// remote address for rate limits and X-Forwarded-For).
func (e *inproc) client(addr string) *fasthttp.Client {
	local := &net.TCPAddr{IP: net.ParseIP(addr), Port: 40000}
	return &fasthttp.Client{
		Dial:        func(string) (net.Conn, error) { return e.ln.DialWithLocalAddr(local) },
		ReadTimeout: 10 * time.Second,
	}
}

// req describes one HTTP request.
type req struct {
	method, path string
	headers      map[string]string
	body         []byte
	from         string // client address, default 198.51.100.1
}

type resp struct {
	code    int
	headers map[string]string
	body    string
}

func (e *inproc) do(t testing.TB, r req) resp {
	t.Helper()
	if r.from == "" {
		r.from = "198.51.100.1"
	}
	return doWith(t, e.client(r.from), "http://ingest", r)
}

func doWith(t testing.TB, c *fasthttp.Client, base string, r req) resp {
	t.Helper()
	q := fasthttp.AcquireRequest()
	p := fasthttp.AcquireResponse()
	defer fasthttp.ReleaseRequest(q)
	defer fasthttp.ReleaseResponse(p)
	q.Header.SetMethod(r.method)
	q.SetRequestURI(base + r.path)
	for k, v := range r.headers {
		q.Header.Set(k, v)
	}
	if r.body != nil {
		q.SetBody(r.body)
	}
	if err := c.Do(q, p); err != nil {
		t.Fatalf("%s %s: %v", r.method, r.path, err)
	}
	out := resp{code: p.StatusCode(), body: string(p.Body()), headers: map[string]string{}}
	for k, v := range p.Header.All() {
		out.headers[string(k)] = string(v)
	}
	return out
}

// webhook builds a signed webhook request.
func webhook(topic, shop string, body []byte) req {
	return req{method: "POST", path: "/webhooks/shopify", body: body, headers: map[string]string{
		"Content-Type":           "application/json",
		"X-Shopify-Topic":        topic,
		"X-Shopify-Shop-Domain":  shop,
		"X-Shopify-Hmac-Sha256":  shopify.Sign([]byte(testSecret), body),
		"X-Shopify-Webhook-Id":   "b54557e4-bdd9-4b37-8a5f-bf7d70bcd043",
		"X-Shopify-Event-Id":     "98880550-7158-44d4-b7cd-2c97c8a091b5",
		"X-Shopify-Api-Version":  "2025-10",
		"X-Shopify-Triggered-At": "2026-03-01T12:00:00.123456789Z",
	}}
}

// storefrontReq builds a storefront event request.
func storefrontReq(site string, body []byte) req {
	return req{method: "POST", path: "/v1/sites/" + site + "/purchases", body: body, headers: map[string]string{
		"Content-Type": "application/json",
		"User-Agent":   "Mozilla/5.0 (test)",
	}}
}

// readAll returns every record of topics up to their end offsets now.
func readAll(t testing.TB, seeds []string, topics []string) []*kgo.Record {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	adm, err := kgo.NewClient(kgo.SeedBrokers(seeds...))
	if err != nil {
		t.Fatal(err)
	}
	defer adm.Close()
	ends, err := kadm.NewClient(adm).ListEndOffsets(ctx, topics...)
	if err != nil || ends.Error() != nil {
		t.Fatalf("list end offsets: %v %v", err, ends.Error())
	}
	want := map[string]map[int32]kgo.Offset{}
	remaining := map[string]int64{}
	ends.Each(func(o kadm.ListedOffset) {
		if o.Offset > 0 {
			if want[o.Topic] == nil {
				want[o.Topic] = map[int32]kgo.Offset{}
			}
			want[o.Topic][o.Partition] = kgo.NewOffset().AtStart()
			remaining[fmt.Sprintf("%s/%d", o.Topic, o.Partition)] = o.Offset
		}
	})
	if len(want) == 0 {
		return nil
	}
	cl, err := kgo.NewClient(kgo.SeedBrokers(seeds...), kgo.ConsumePartitions(want))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	var out []*kgo.Record
	for len(remaining) > 0 {
		fs := cl.PollFetches(ctx)
		if ctx.Err() != nil {
			t.Fatalf("timed out reading %v: %d partitions left", topics, len(remaining))
		}
		fs.EachError(func(topic string, p int32, err error) { t.Fatalf("fetch %s/%d: %v", topic, p, err) })
		fs.EachRecord(func(r *kgo.Record) {
			k := fmt.Sprintf("%s/%d", r.Topic, r.Partition)
			if end, ok := remaining[k]; ok && r.Offset < end {
				out = append(out, r)
				if r.Offset+1 >= end {
					delete(remaining, k)
				}
			}
		})
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Topic != out[j].Topic {
			return out[i].Topic < out[j].Topic
		}
		return string(out[i].Key) < string(out[j].Key)
	})
	return out
}

// headerMap flattens a record's headers.
func headerMap(r *kgo.Record) map[string]string {
	m := map[string]string{}
	for _, h := range r.Headers {
		m[h.Key] = string(h.Value)
	}
	return m
}

// shortTopic strips the test prefix.
func shortTopic(tp schemas.Topics, topic string) string { return strings.TrimPrefix(topic, tp.Prefix) }

// partial sends headers announcing a body of n bytes and only its first
// byte, and returns the status: 413 when n is over the limit (fasthttp
// refuses on Content-Length, before reading), 408 when the body never
// completes. Sending an oversize body in full would race the refusal, which
// closes the connection while the client is still writing.
func (e *inproc) partial(t testing.TB, path string, n int) int {
	t.Helper()
	c, err := e.ln.Dial()
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	fmt.Fprintf(c, "POST %s HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n{", path, n)
	line, err := bufio.NewReader(c).ReadString('\n')
	if err != nil {
		t.Fatalf("partial request to %s: %v", path, err)
	}
	var code int
	if _, err := fmt.Sscanf(line, "HTTP/1.1 %d", &code); err != nil {
		t.Fatalf("partial request to %s: status line %q", path, line)
	}
	return code
}
