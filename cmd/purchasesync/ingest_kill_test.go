package main

import (
	"context"
	"math/rand/v2"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/valyala/fasthttp"

	"purchasesync/deploy/testenv"
	"purchasesync/ingest/ingesttest"
	"purchasesync/ingest/shopify"
	"purchasesync/processors/sites"
	"purchasesync/schemas"
)

// TestFunctionalKill9 runs `purchasesync ingest` as a subprocess under load,
// kills it with SIGKILL, and checks that every request it answered 200 or
// 202 is in Kafka. (It lived in ingest's tests, which then built this
// binary themselves.)
func TestFunctionalKill9(t *testing.T) {
	brokers := testenv.Kafka(t)
	tp := testenv.Topics(t, brokers, 3)
	const secret = "kill9-test-secret"
	putSite(t, brokers, tp, schemas.Site{Site: "acme", ShopDomain: "acme.myshopify.com", PurchaseSyncing: true})
	addr := testenv.FreeAddr(t)
	ingest := testenv.Start(t, buildBinary(t), []string{"ingest",
		"-kafka.brokers", strings.Join(brokers, ","), "-kafka.topicPrefix", tp.Prefix,
		"-ingest.addr", addr, "-ops.addr", "127.0.0.1:0",
		"-ingest.ipRate", "0", "-log.format", "json"},
		"PURCHASESYNC_SHOPIFY_API_SECRET=rotated,"+secret)
	ingest.Grace = 0 // killed by the test
	testenv.WaitHTTP200(t, "http://"+addr+"/readyz", 30*time.Second)

	// Load: every worker sends fresh purchases, both sides, until the
	// process is gone; acked holds what the ingest answered 200/202.
	var (
		mu     sync.Mutex
		acked  = map[string]bool{}
		sent   atomic.Int64
		killed atomic.Bool
		wg     sync.WaitGroup
	)
	client := &fasthttp.Client{ReadTimeout: 5 * time.Second, MaxConnsPerHost: 64}
	post := func(path string, body []byte, headers ...string) (int, error) {
		rq, rp := fasthttp.AcquireRequest(), fasthttp.AcquireResponse()
		defer fasthttp.ReleaseRequest(rq)
		defer fasthttp.ReleaseResponse(rp)
		rq.Header.SetMethod("POST")
		rq.SetRequestURI("http://" + addr + path)
		rq.Header.Set("Content-Type", "application/json")
		for i := 0; i+1 < len(headers); i += 2 {
			rq.Header.Set(headers[i], headers[i+1])
		}
		rq.SetBody(body)
		if err := client.Do(rq, rp); err != nil {
			return 0, err
		}
		return rp.StatusCode(), nil
	}
	storefront := func(p ingesttest.Purchase) (int, error) {
		return post("/v1/sites/acme/purchases", p.StorefrontBody(schemas.OrderKeyID), "User-Agent", "Mozilla/5.0 (test)")
	}
	webhook := func(p ingesttest.Purchase) (int, error) {
		body := p.OrderBody()
		return post("/webhooks/shopify", body,
			"X-Shopify-Topic", "orders/create",
			"X-Shopify-Shop-Domain", "acme.myshopify.com",
			"X-Shopify-Hmac-Sha256", shopify.Sign([]byte(secret), body),
			"X-Shopify-Webhook-Id", "b54557e4-bdd9-4b37-8a5f-bf7d70bcd043",
			"X-Shopify-Event-Id", "98880550-7158-44d4-b7cd-2c97c8a091b5",
			"X-Shopify-Api-Version", "2025-10",
			"X-Shopify-Triggered-At", "2026-03-01T12:00:00.123456789Z")
	}
	for w := range 16 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rng := rand.New(rand.NewPCG(uint64(w), 99))
			for i := int64(0); ; i++ {
				p := ingesttest.NewPurchase(rng, int64(w)<<32|i, 1+rng.IntN(4))
				for _, send := range []func(ingesttest.Purchase) (int, error){storefront, webhook} {
					code, err := send(p)
					sent.Add(1)
					if err != nil {
						if killed.Load() {
							return
						}
						continue
					}
					if code == 200 || code == 202 {
						topic := schemas.TopicShopifyOrders
						if code == 202 {
							topic = schemas.TopicStorefrontPurchases
						}
						mu.Lock()
						acked[topic+" "+p.Key("acme", schemas.OrderKeyID)] = true
						mu.Unlock()
					}
				}
			}
		}()
	}
	time.Sleep(2 * time.Second)
	killed.Store(true)
	ingest.Kill()
	wg.Wait()
	mu.Lock()
	defer mu.Unlock()
	if len(acked) < 100 {
		t.Fatalf("only %d requests acknowledged before the kill: the load did not run", len(acked))
	}
	inKafka := map[string]bool{}
	for _, topic := range []string{schemas.TopicShopifyOrders, schemas.TopicStorefrontPurchases} {
		for _, rc := range readTopic(t, []kgo.Opt{kgo.SeedBrokers(brokers...)}, tp.Name(topic), false) {
			inKafka[topic+" "+string(rc.Key)] = true
		}
	}
	missing := 0
	for k := range acked {
		if !inKafka[k] {
			missing++
			if missing <= 5 {
				t.Errorf("acknowledged but not in Kafka: %s", k)
			}
		}
	}
	if missing > 0 {
		t.Fatalf("%d of %d acknowledged requests are not in Kafka", missing, len(acked))
	}
	t.Logf("%d requests sent, %d acknowledged before SIGKILL, all in Kafka (%d records there)", sent.Load(), len(acked), len(inKafka))
}

// putSite writes site to the test's sites.v1.
func putSite(t *testing.T, brokers []string, tp schemas.Topics, site schemas.Site) {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(brokers...))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if _, err := (&sites.Writer{Client: cl, Topic: tp.Name(schemas.TopicSites)}).Put(ctx, site); err != nil {
		t.Fatal(err)
	}
}
