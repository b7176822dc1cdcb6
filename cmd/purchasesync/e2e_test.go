package main

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"purchasesync/deploy/testenv"
	"purchasesync/schemas"
	chsink "purchasesync/sinks/clickhouse"
)

// pipeline is a `purchasesync run` subprocess on the real stack, with its
// own topic prefix, consumer groups and ClickHouse database.
type pipeline struct {
	ingest, ops, db string
	topics          schemas.Topics
	kafka           kafkaTarget
	chAddr          string
	ch              chTarget
	cmd             *testenv.Process // the running process
	extra           []string         // more flags of `run` (set before start)
}

// chTarget is the ClickHouse of a pipeline: the stack's single plaintext
// server, or its two-replica TLS cluster in cluster mode.
type chTarget struct {
	name string
	env  []string      // PURCHASESYNC_CLICKHOUSE_* lines for the process
	cfg  chsink.Config // a test client's connection (no database)
}

func singleClickHouse(t *testing.T) chTarget {
	cfg := chsink.DefaultConfig()
	cfg.Addr = []string{testenv.ClickHouse(t)}
	return chTarget{name: "single", env: []string{"PURCHASESYNC_CLICKHOUSE_ADDR=" + cfg.Addr[0]}, cfg: cfg}
}

func clickHouseCluster(t *testing.T) chTarget {
	cl := testenv.ClickHouseCluster(t)
	cfg := chsink.DefaultConfig()
	cfg.Addr, cfg.TLS = cl.Addrs, testenv.CHClusterTLS(t, cl)
	cfg.Username, cfg.Password = cl.Getenv("PURCHASESYNC_CLICKHOUSE_USER"), cl.Getenv("PURCHASESYNC_CLICKHOUSE_PASSWORD")
	cfg.Cluster = cl.Getenv("PURCHASESYNC_CLICKHOUSE_CLUSTER")
	return chTarget{name: "clickhouse-cluster", env: cl.Env, cfg: cfg}
}

const e2eSecret = "e2e-secret"
const e2eToken = "e2e-admin-token"

func startPipeline(t *testing.T, k kafkaTarget) *pipeline {
	t.Helper()
	return startPipelineOn(t, k, singleClickHouse(t))
}

func startPipelineOn(t *testing.T, k kafkaTarget, ch chTarget) *pipeline {
	t.Helper()
	p := newPipeline(t, k, ch)
	p.start(t)
	return p
}

// newPipeline names a pipeline's topics, groups and database without
// starting it (set p.extra, then p.start).
func newPipeline(t *testing.T, k kafkaTarget, ch chTarget) *pipeline {
	t.Helper()
	name := testenv.Name(t)
	p := &pipeline{ingest: testenv.FreeAddr(t), ops: testenv.FreeAddr(t), db: name, topics: schemas.Topics{Prefix: name + "."}, kafka: k, chAddr: ch.cfg.Addr[0], ch: ch}
	if ch.cfg.Cluster != "" {
		t.Cleanup(func() {
			if c, err := chsink.Open(ch.cfg, ""); err == nil {
				_ = c.Exec(context.Background(), "DROP DATABASE IF EXISTS `"+name+"` ON CLUSTER `"+ch.cfg.Cluster+"`")
				c.Close()
			}
		})
	}
	return p
}

// start starts the pipeline's `run` process and waits until every stage is
// ready; a test may kill it (p.cmd) and start it again on the same topics,
// groups and database.
func (p *pipeline) start(t *testing.T) {
	t.Helper()
	bin := buildBinary(t)
	name := p.db
	cmd := exec.Command(bin, "run",
		"-kafka.topicPrefix", p.topics.Prefix, "-kafka.partitions", "2",
		"-clickhouse.database", p.db,
		"-ingest.addr", p.ingest, "-ops.addr", p.ops,
		"-join.group", name+"-join", "-join.instance", name, "-sink.group", name+"-sink",
		"-log.format", "text", "-log.level", "warn")
	cmd.Args = append(cmd.Args, p.extra...)
	// The target's PURCHASESYNC_KAFKA_* lines come last: for duplicate keys
	// exec uses the last value.
	cmd.Env = append(append(append(os.Environ(), "PURCHASESYNC_SHOPIFY_API_SECRET="+e2eSecret, "PURCHASESYNC_ADMIN_TOKEN="+e2eToken), p.kafka.env...), p.ch.env...)
	p.cmd = testenv.StartCmd(t, cmd)
	testenv.WaitHTTP200(t, "http://"+p.ops+"/readyz", 60*time.Second)
	// Every stage of `run`, advisory ones included, becomes ready on a
	// healthy stack; /readyz?verbose names them. After a kill -9 the
	// consumer groups wait for the dead member's session to expire (the
	// sink's 45 s).
	var last []byte // the last answer, logged if the wait fails: it names the stage
	ready := false
	t.Cleanup(func() {
		if !ready && t.Failed() {
			t.Logf("last /readyz?verbose:\n%s", last)
		}
	})
	testenv.Eventually(t, 90*time.Second, "every stage ready in /readyz?verbose", func() bool {
		resp, err := http.Get("http://" + p.ops + "/readyz?verbose")
		if err != nil {
			return false
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		last = b
		for _, stage := range []string{"ingest", "join", "site registry", "compliance", "clickhouse sink", "control plane", "order-key evidence", "order-key detector"} {
			if !strings.Contains(string(b), "[+]"+stage+" ok\n") {
				return false
			}
		}
		return !strings.Contains(string(b), "[-]")
	})
	ready = true
}

func (p *pipeline) do(t *testing.T, method, url string, hdr map[string]string, body string) int {
	t.Helper()
	return httpDo(t, method, url, hdr, []byte(body))
}

// sign signs as Shopify documents it (base64 HMAC-SHA256 of the raw body),
// written out here rather than calling ingest/shopify.Sign on purpose: an
// end-to-end test with its own signer fails if the verifier and its own
// signer drift together.
func sign(body, secret string) string {
	m := hmac.New(sha256.New, []byte(secret))
	m.Write([]byte(body))
	return base64.StdEncoding.EncodeToString(m.Sum(nil))
}

func (p *pipeline) webhook(t *testing.T, body, sig string) int {
	return p.do(t, "POST", "http://"+p.ingest+"/webhooks/shopify", map[string]string{
		"Content-Type": "application/json", "X-Shopify-Topic": "orders/create", "X-Shopify-Hmac-Sha256": sig,
		"X-Shopify-Shop-Domain": "e2e-store.myshopify.com", "X-Shopify-Webhook-Id": fmt.Sprint(time.Now().UnixNano()),
		"X-Shopify-API-Version": "2025-10"}, body)
}

func order(id string) string {
	return `{"id":` + id + `,"name":"#1001","order_number":1001,"email":"jane@example.com","presentment_currency":"USD",` +
		`"subtotal_price_set":{"presentment_money":{"amount":"23.97","currency_code":"USD"}},"line_items":[{"product_id":1,"title":"Mug","price":"23.97","quantity":1}]}`
}

// TestEndToEnd is the walking skeleton's proof on the real stack: a site is
// registered; an order with both events, a webhook-only order (short grace)
// and a badly signed webhook go through ingest, join and sink; ClickHouse
// then holds exactly the two expected purchases.
//
// It runs on the plaintext single broker and on the three-broker SASL_SSL
// cluster (TLS, SCRAM, topics created with replication factor 3), with the
// single ClickHouse server; and on the single broker with the two-replica
// ClickHouse cluster over TLS with a password, in cluster mode, where every
// purchase must also be once in FINAL on each replica.
func TestEndToEnd(t *testing.T) {
	for _, k := range []func(*testing.T) kafkaTarget{singleBroker, secureCluster} {
		target := k(t)
		t.Run(target.name, func(t *testing.T) { testEndToEnd(t, target, singleClickHouse(t)) })
	}
	k, ch := singleBroker(t), clickHouseCluster(t)
	t.Run(k.name+"-"+ch.name, func(t *testing.T) { testEndToEnd(t, k, ch) })
}

func testEndToEnd(t *testing.T, k kafkaTarget, ch chTarget) {
	p := startPipelineOn(t, k, ch)
	if code := p.do(t, "PUT", "http://"+p.ops+"/admin/v1/sites/e2e", map[string]string{"Authorization": "Bearer " + e2eToken},
		`{"shop_domain":"e2e-store.myshopify.com","order_key":"order_id","purchase_syncing":true,"grace":"2s"}`); code != 200 {
		t.Fatalf("PUT site: %d", code)
	}
	both, webhookOnly, badSig := "9007199254740993", "9007199254740995", "9007199254740997" // above 2^53
	if code := p.do(t, "POST", "http://"+p.ingest+"/v1/sites/e2e/purchases", map[string]string{"Content-Type": "application/json"},
		`{"purchase":{"order_number":"`+both+`","subtotal":"23.97","currency_iso_code":"USD"},"customer":{"email":"jane@example.com"}}`); code != 202 {
		t.Fatalf("storefront event: %d, want 202", code)
	}
	if code := p.webhook(t, order(both), sign(order(both), e2eSecret)); code != 200 {
		t.Fatalf("webhook: %d, want 200", code)
	}
	if code := p.webhook(t, order(webhookOnly), sign(order(webhookOnly), e2eSecret)); code != 200 {
		t.Fatalf("webhook-only: %d, want 200", code)
	}
	if code := p.webhook(t, order(badSig), sign(order(badSig), "not-the-secret")); code != 401 {
		t.Fatalf("bad signature: %d, want 401", code)
	}

	conn, err := chsink.Open(p.ch.cfg, p.db)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	type row struct{ order, via string }
	var rows []row
	testenv.Eventually(t, 60*time.Second, "two purchases in ClickHouse", func() bool {
		rs, err := conn.Query(context.Background(), "SELECT order_number, registered_via FROM purchases FINAL ORDER BY order_number")
		if err != nil {
			return false
		}
		defer rs.Close()
		rows = rows[:0]
		for rs.Next() {
			var r row
			if err := rs.Scan(&r.order, &r.via); err != nil {
				t.Fatal(err)
			}
			rows = append(rows, r)
		}
		return len(rows) >= 2
	})
	time.Sleep(2 * time.Second) // anything wrong (a third row, a second version) has time to land
	rows = rows[:0]
	rs, err := conn.Query(context.Background(), "SELECT order_number, registered_via FROM purchases FINAL ORDER BY order_number")
	if err != nil {
		t.Fatal(err)
	}
	for rs.Next() {
		var r row
		rs.Scan(&r.order, &r.via)
		rows = append(rows, r)
	}
	rs.Close()
	want := []row{{both, schemas.ViaStorefront}, {webhookOnly, schemas.ViaWebhook}}
	if fmt.Sprint(rows) != fmt.Sprint(want) {
		t.Fatalf("purchases FINAL = %v, want %v", rows, want)
	}
	if p.ch.cfg.Cluster != "" {
		// Each replica's own table, once it has fetched every part.
		for _, a := range p.ch.cfg.Addr {
			one := p.ch.cfg
			one.Addr = []string{a}
			r, err := chsink.Open(one, p.db)
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			if err := r.Exec(context.Background(), "SYSTEM SYNC REPLICA purchases_local"); err != nil {
				t.Fatalf("replica %s: %v", a, err)
			}
			rs, err := r.Query(context.Background(), "SELECT order_number, registered_via FROM purchases_local FINAL ORDER BY order_number")
			if err != nil {
				t.Fatalf("replica %s: %v", a, err)
			}
			for rs.Next() {
				var x row
				rs.Scan(&x.order, &x.via)
				got = append(got, fmt.Sprint(x))
			}
			rs.Close()
			r.Close()
			if fmt.Sprint(got) != fmt.Sprint([]string{fmt.Sprint(want[0]), fmt.Sprint(want[1])}) {
				t.Errorf("replica %s: purchases_local FINAL = %v, want %v", a, got, want)
			}
		}
	}

	// A refund (refunds/create, keyed by its order id) marks the purchase
	// refunded as a new version of the same row.
	refund := `{"id":77,"order_id":` + both + `,"processed_at":"2026-11-25T12:00:00Z","transactions":[{"kind":"refund","status":"success","amount":"5.00","currency":"USD"}]}`
	if code := p.do(t, "POST", "http://"+p.ingest+"/webhooks/shopify", map[string]string{
		"Content-Type": "application/json", "X-Shopify-Topic": "refunds/create", "X-Shopify-Hmac-Sha256": sign(refund, e2eSecret),
		"X-Shopify-Shop-Domain": "e2e-store.myshopify.com", "X-Shopify-Webhook-Id": "refund-77", "X-Shopify-API-Version": "2025-10"}, refund); code != 200 {
		t.Fatalf("refund webhook: %d, want 200", code)
	}
	testenv.Eventually(t, 30*time.Second, "refund in ClickHouse", func() bool {
		var amount string
		var n uint64
		row := conn.QueryRow(context.Background(), "SELECT toString(assumeNotNull(refunded_amount)), count() FROM purchases FINAL WHERE order_number = ? AND refunded_amount IS NOT NULL GROUP BY refunded_amount", both)
		if err := row.Scan(&amount, &n); err != nil {
			return false
		}
		return strings.HasPrefix(amount, "5") && n == 1
	})

	// Nothing of the badly signed webhook reached Kafka: the orders topic
	// holds exactly the signed webhooks (two orders and the refund).
	cl, err := kgo.NewClient(k.opts(t)...)
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ends, err := kadm.NewClient(cl).ListEndOffsets(context.Background(), p.topics.Name(schemas.TopicShopifyOrders), p.topics.Name(schemas.TopicShopifyUnrouted))
	if err != nil {
		t.Fatal(err)
	}
	var n int64
	ends.Each(func(o kadm.ListedOffset) { n += o.Offset })
	if n != 3 {
		t.Fatalf("%d records in the webhook topics, want 3 (the bad signature must write nothing)", n)
	}

	// `run` created its topics with the replication the cluster allows:
	// RF 3 and min.insync.replicas 2 on three brokers, RF 1 on one.
	adm := kadm.NewClient(cl)
	orders := p.topics.Name(schemas.TopicShopifyOrders)
	td, err := adm.ListTopics(context.Background(), orders)
	if err != nil {
		t.Fatal(err)
	}
	wantRF := min(3, k.nodes)
	for _, part := range td[orders].Partitions {
		if len(part.Replicas) != wantRF {
			t.Errorf("%s partition %d has %d replicas, want %d", orders, part.Partition, len(part.Replicas), wantRF)
		}
	}
	rc, err := adm.DescribeTopicConfigs(context.Background(), orders)
	if err != nil {
		t.Fatal(err)
	}
	if wantRF == 3 {
		c, err := rc.On(orders, nil)
		if err != nil {
			t.Fatal(err)
		}
		minISR := ""
		for _, kv := range c.Configs {
			if kv.Key == "min.insync.replicas" && kv.Value != nil {
				minISR = *kv.Value
			}
		}
		if minISR != "2" {
			t.Errorf("%s min.insync.replicas = %q, want 2", orders, minISR)
		}
	}
}
