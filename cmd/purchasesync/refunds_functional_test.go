package main

import (
	"context"
	"fmt"
	"net/http/httptest"
	"os"
	"os/exec"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"purchasesync/deploy/testenv"
	"purchasesync/schemas"
	"purchasesync/sinks/registrar/registrartest"
)

// TestFunctionalRefundsEveryMode: on the real stack, `purchasesync run`
// with the registrar pointed at a fake Talkable; one site per order_key
// mode, each with a storefront purchase, its orders/create webhook and a
// refund delivered twice. Every purchase gets its refund once on
// purchases.v1 (refunded_amount 5.00, one new version, none for the
// redelivery) and Talkable is told once. The order_number site's refund is
// paid in the shop's currency (CAD) and counts its USD line-item amount;
// the order_name site's refund comes before its order (it waits in the
// refund router for the order's index). Nothing is unrouted.
func TestFunctionalRefundsEveryMode(t *testing.T) {
	k := singleBroker(t)
	ch := singleClickHouse(t)
	tk := registrartest.New("e2e-registrar-key")
	fake := httptest.NewServer(tk)
	t.Cleanup(fake.Close)

	bin := buildBinary(t)
	name := testenv.Name(t)
	p := &pipeline{ingest: testenv.FreeAddr(t), ops: testenv.FreeAddr(t), db: name, topics: schemas.Topics{Prefix: name + "."}, kafka: k, chAddr: ch.cfg.Addr[0], ch: ch}
	cmd := exec.Command(bin, "run",
		"-kafka.topicPrefix", p.topics.Prefix, "-kafka.partitions", "2",
		"-clickhouse.database", p.db,
		"-ingest.addr", p.ingest, "-ops.addr", p.ops,
		"-join.group", name+"-join", "-join.instance", name, "-sink.group", name+"-sink",
		"-refundroute.group", name+"-refundroute",
		"-registrar.url", fake.URL,
		"-log.format", "text", "-log.level", "warn")
	cmd.Env = append(append(append(os.Environ(), "PURCHASESYNC_SHOPIFY_API_SECRET="+e2eSecret, "PURCHASESYNC_ADMIN_TOKEN="+e2eToken,
		"PURCHASESYNC_REGISTRAR_APIKEY=e2e-registrar-key"), k.env...), ch.env...)
	testenv.StartCmd(t, cmd)
	testenv.WaitHTTP200(t, "http://"+p.ops+"/readyz", 60*time.Second)

	type site struct {
		slug, shop string
		mode       schemas.OrderKey
		id         string // Shopify order id
		storefront string // what the browser registers
		key        string // the purchase's order_number
		refund     string // the refunds/create body
		refundAt   string // "before" the order webhook, else after
	}
	usd := `"transactions":[{"kind":"refund","status":"success","amount":"5.00","currency":"USD"}]`
	cad := `"refund_line_items":[{"line_item_id":1,"quantity":1,"subtotal_set":{"shop_money":{"amount":"6.50","currency_code":"CAD"},"presentment_money":{"amount":"5.00","currency_code":"USD"}}}],` +
		`"transactions":[{"kind":"refund","status":"success","amount":"6.50","currency":"CAD"}]`
	sites := []site{
		{"refid", "refid.myshopify.com", schemas.OrderKeyID, "9007199254740993", "9007199254740993", "9007199254740993", usd, ""},
		{"refnum", "refnum.myshopify.com", schemas.OrderKeyNumber, "9007199254740995", "#1001", "1001", cad, ""},
		{"refname", "refname.myshopify.com", schemas.OrderKeyName, "9007199254740997", "#1001", "#1001", usd, "before"},
	}
	hook := func(s site, topic, body, webhookID string) {
		t.Helper()
		if code := p.do(t, "POST", "http://"+p.ingest+"/webhooks/shopify", map[string]string{
			"Content-Type": "application/json", "X-Shopify-Topic": topic, "X-Shopify-Hmac-Sha256": sign(body, e2eSecret),
			"X-Shopify-Shop-Domain": s.shop, "X-Shopify-Webhook-Id": webhookID, "X-Shopify-API-Version": "2025-10"}, body); code != 200 {
			t.Fatalf("%s %s: %d, want 200", s.slug, topic, code)
		}
	}
	for _, s := range sites {
		if code := p.do(t, "PUT", "http://"+p.ops+"/admin/v1/sites/"+s.slug, map[string]string{"Authorization": "Bearer " + e2eToken},
			`{"shop_domain":"`+s.shop+`","order_key":"`+string(s.mode)+`","purchase_syncing":true,"grace":"2s"}`); code != 200 {
			t.Fatalf("PUT site %s: %d", s.slug, code)
		}
	}
	time.Sleep(2 * time.Second) // the sites reach every stage through sites.v1
	for _, s := range sites {
		if code := p.do(t, "POST", "http://"+p.ingest+"/v1/sites/"+s.slug+"/purchases", map[string]string{"Content-Type": "application/json"},
			`{"purchase":{"order_number":"`+s.storefront+`","subtotal":"23.97","currency_iso_code":"USD"},"customer":{"email":"jane@example.com"}}`); code != 202 {
			t.Fatalf("%s storefront event: %d, want 202", s.slug, code)
		}
		refund := `{"id":77` + s.id[len(s.id)-1:] + `,"order_id":` + s.id + `,"processed_at":"2026-11-25T12:00:00Z",` + s.refund + `}`
		if s.refundAt == "before" {
			hook(s, "refunds/create", refund, "refund-"+s.slug)
		}
		hook(s, "orders/create", order(s.id), "order-"+s.slug)
		if s.refundAt != "before" {
			hook(s, "refunds/create", refund, "refund-"+s.slug)
		}
		hook(s, "refunds/create", refund, "refund-"+s.slug) // Shopify delivers it again
	}

	cl, err := kgo.NewClient(k.opts(t)...)
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	// purchases.v1, read_committed: every version of each purchase.
	versions := func() map[string][]*schemas.Purchase {
		out := map[string][]*schemas.Purchase{}
		for _, r := range readCommitted(t, cl, k, p.topics.Name(schemas.TopicPurchases)) {
			pu, err := schemas.UnmarshalPurchase(r.Value)
			if err != nil {
				t.Fatal(err)
			}
			out[pu.Key()] = append(out[pu.Key()], pu)
		}
		return out
	}
	done := func() bool {
		vs := versions()
		for _, s := range sites {
			ps := vs[schemas.Key(s.slug, s.key)]
			if len(ps) == 0 || ps[len(ps)-1].RefundedAmount == "" || !ps[len(ps)-1].Matched {
				return false
			}
		}
		tk.Mu.Lock()
		defer tk.Mu.Unlock()
		for _, s := range sites {
			if tk.Refunds[schemas.Key(s.slug, s.key)] == 0 {
				return false
			}
		}
		return true
	}
	testenv.Eventually(t, 90*time.Second, "every purchase refunded on purchases.v1 and in Talkable", done)
	time.Sleep(3 * time.Second) // a second refund version or request would have time to land

	vs := versions()
	for _, s := range sites {
		key := schemas.Key(s.slug, s.key)
		ps := vs[key]
		var got []string
		refunds := 0
		for i, pu := range ps {
			got = append(got, fmt.Sprintf("v%d:%s", pu.Version, pu.RefundedAmount))
			if pu.Version != uint64(i+1) {
				t.Errorf("%s: versions %v are not 1..n", key, got)
			}
			if pu.RefundedAmount != "" && (i == 0 || ps[i-1].RefundedAmount == "") {
				refunds++
			}
		}
		// Registered from the browser, matched by the webhook, refunded:
		// three versions; the redelivered refund makes none.
		if len(ps) != 3 || refunds != 1 || ps[2].RefundedAmount != "5.00" || ps[2].RefundedAt == nil {
			t.Errorf("%s: purchases.v1 versions %v, want 3 with the refund (5.00) once", key, got)
		}
	}
	tk.Mu.Lock()
	for _, s := range sites {
		key := schemas.Key(s.slug, s.key)
		if tk.Refunds[key] != 1 || tk.Origins[key] == nil || tk.Origins[key]["refunded_at"] != "2026-11-25T12:00:00Z" {
			t.Errorf("%s: Talkable got %d refund requests, origin %v; want one, after the purchase", key, tk.Refunds[key], tk.Origins[key])
		}
	}
	if len(tk.Origins) != len(sites) {
		t.Errorf("Talkable has %d origins, want %d: %v", len(tk.Origins), len(sites), tk.Origins)
	}
	tk.Mu.Unlock()
	if un := readCommitted(t, cl, k, p.topics.Name(schemas.TopicShopifyUnrouted)); len(un) != 0 {
		for _, r := range un {
			t.Errorf("unrouted: key %s headers %v", r.Key, r.Headers)
		}
	}
	// Each routed refund (two per non-id site, a redelivery included) is on
	// shopify.orders.v1 once, under its purchase's key.
	routed := map[string]int{}
	for _, r := range readCommitted(t, cl, k, p.topics.Name(schemas.TopicShopifyOrders)) {
		for _, h := range r.Headers {
			if h.Key == schemas.HeaderRoutedFrom {
				routed[string(r.Key)+" from "+string(h.Value)]++
			}
		}
	}
	want := map[string]int{"refnum/1001 from refnum/9007199254740995": 2, "refname/#1001 from refname/9007199254740997": 2}
	if fmt.Sprint(routed) != fmt.Sprint(want) {
		t.Errorf("routed refunds on shopify.orders.v1: %v, want %v", routed, want)
	}
}

// readCommitted reads topic from its start to its current end offsets,
// read_committed (what an aborted transaction wrote is not there).
func readCommitted(t *testing.T, admin *kgo.Client, k kafkaTarget, topic string) []*kgo.Record {
	t.Helper()
	ends, err := kadm.NewClient(admin).ListEndOffsets(context.Background(), topic)
	if err != nil || ends.Error() != nil {
		t.Fatalf("end offsets of %s: %v %v", topic, err, ends.Error())
	}
	left := 0
	ends.Each(func(o kadm.ListedOffset) {
		if o.Offset > 0 {
			left++
		}
	})
	if left == 0 {
		return nil
	}
	cl, err := kgo.NewClient(append(k.opts(t), kgo.ConsumeTopics(topic), kgo.FetchIsolationLevel(kgo.ReadCommitted()),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()), kgo.KeepControlRecords())...)
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	var out []*kgo.Record
	reached := map[int32]bool{}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for len(reached) < left {
		fs := cl.PollFetches(ctx)
		if ctx.Err() != nil {
			t.Fatalf("reading %s: timed out", topic)
		}
		fs.EachRecord(func(r *kgo.Record) {
			if end, ok := ends.Lookup(topic, r.Partition); ok && r.Offset+1 >= end.Offset {
				reached[r.Partition] = true
			}
			if !r.Attrs.IsControl() {
				out = append(out, r)
			}
		})
	}
	sort.SliceStable(out, func(i, j int) bool { return strings.Compare(string(out[i].Key), string(out[j].Key)) < 0 })
	return out
}
