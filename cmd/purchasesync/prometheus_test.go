package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"purchasesync/deploy/testenv"
	"purchasesync/ingest/ingesttest"
	"purchasesync/ingest/shopify"
	"purchasesync/schemas"
	chsink "purchasesync/sinks/clickhouse"
)

// TestPrometheusIntegration runs `purchasesync run` on the real stack and a
// Prometheus of its own that scrapes it every second with the alert rules
// (their `for:` shortened to 0s). After a short load it checks the key
// series through Prometheus' API, that every dashboard query and every rule
// evaluates, and that the structured logs hold no personal data or secrets.
// Then it cuts ClickHouse off (a TCP proxy in front of it stops) and waits
// for PurchasesyncClickHouseInsertsFailing to fire.
func TestPrometheusIntegration(t *testing.T) {
	brokers := testenv.Kafka(t)
	chAddr := testenv.ClickHouse(t)
	promBin := lookPathOrSkip(t, "prometheus")
	start := time.Now()

	bin := buildBinary(t)
	name := testenv.Name(t)
	site := strings.ReplaceAll(name, "_", "-")
	shop := site + ".myshopify.com"
	const secret, token = "obs-test-secret-8c1f", "obs-test-admin-token-77ad"
	chProxy := startProxy(t, chAddr)
	ingestAddr, opsAddr := testenv.FreeAddr(t), testenv.FreeAddr(t)
	topics := schemas.Topics{Prefix: name + "."}
	joinGroup, sinkGroup := name+"-join", name+"-sink"
	t.Cleanup(func() { dropTestData(brokers, chAddr, name, topics) })

	cmd := exec.Command(bin, "run",
		"-kafka.brokers", strings.Join(brokers, ","), "-kafka.topicPrefix", topics.Prefix, "-kafka.partitions", "2",
		"-clickhouse.addr", chProxy.addr(), "-clickhouse.database", name,
		"-ingest.addr", ingestAddr, "-ops.addr", opsAddr, "-ingest.ipRate", "0", "-ingest.siteRate", "0",
		"-join.group", joinGroup, "-join.instance", name, "-sink.group", sinkGroup,
		"-sink.flushInterval", "200ms", "-sink.retryMax", "500ms",
		"-lagmon.interval", "1s", "-freshness.interval", "1s",
		"-log.format", "json", "-log.level", "debug")
	cmd.Env = append(os.Environ(), "PURCHASESYNC_SHOPIFY_API_SECRET="+secret, "PURCHASESYNC_ADMIN_TOKEN="+token)
	pipeline := testenv.StartCmd(t, cmd)
	pipeline.LogLines = 60
	t.Cleanup(func() { chProxy.start(t) }) // before the stop: let the sink flush on its way out

	prom := startPrometheus(t, promBin, opsAddr)
	testenv.WaitHTTP200(t, "http://"+opsAddr+"/readyz", 60*time.Second)
	t.Logf("pipeline and Prometheus up after %s", time.Since(start).Round(time.Millisecond))

	// The key series, through Prometheus.
	expect := func(q string, ok func(v float64) bool, want string) {
		t.Helper()
		var last string
		for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(200 * time.Millisecond) {
			vs, err := prom.query(q)
			if err == nil && len(vs) == 1 && ok(vs[0].value) {
				return
			}
			last = fmt.Sprint(vs, err)
			if time.Now().After(deadline) {
				t.Fatalf("%s: want one value %s, got %s after 30s", q, want, last)
			}
		}
	}
	eq := func(n float64) (func(float64) bool, string) {
		return func(v float64) bool { return v == n }, fmt.Sprintf("== %v", n)
	}
	within := func(lo, hi float64) (func(float64) bool, string) {
		return func(v float64) bool { return v >= lo && v <= hi }, fmt.Sprintf("in [%v, %v]", lo, hi)
	}
	expectEq := func(q string, n float64) { t.Helper(); f, w := eq(n); expect(q, f, w) }
	expectIn := func(q string, lo, hi float64) { t.Helper(); f, w := within(lo, hi); expect(q, f, w) }

	// Prometheus scrapes first about 5 s after it starts (its discovery
	// updates are throttled). The load comes in two phases around a scrape:
	// a counter's first sample is its baseline for rate(), so the rates the
	// dashboard shows count only what comes after it.
	expectEq(`up{job="purchasesync"}`, 1)

	// Load: a site with a 2 s grace; 10 purchases from both sides (one with
	// a different email: a discrepancy), 3 webhook-only, 3 storefront-only,
	// 2 badly signed webhooks.
	if code := httpDo(t, "PUT", "http://"+opsAddr+"/admin/v1/sites/"+site, map[string]string{"Authorization": "Bearer " + token},
		[]byte(`{"shop_domain":"`+shop+`","order_key":"order_id","purchase_syncing":true,"grace":"2s"}`)); code != 200 {
		t.Fatalf("PUT site: %d, want 200", code)
	}
	rng := rand.New(rand.NewPCG(7, 7))
	var seq int64
	next := func() ingesttest.Purchase { seq++; return ingesttest.NewPurchase(rng, seq, 2) }
	storefront := func(p ingesttest.Purchase) {
		t.Helper()
		if code := httpDo(t, "POST", "http://"+ingestAddr+"/v1/sites/"+site+"/purchases",
			map[string]string{"Content-Type": "application/json", "Origin": "https://" + shop}, p.StorefrontBody(schemas.OrderKeyID)); code != 202 {
			t.Fatalf("storefront event: %d, want 202", code)
		}
	}
	webhook := func(p ingesttest.Purchase, key string, want int) {
		t.Helper()
		body := p.OrderBody()
		if code := httpDo(t, "POST", "http://"+ingestAddr+"/webhooks/shopify", map[string]string{
			"Content-Type": "application/json", "X-Shopify-Topic": shopify.TopicOrdersCreate, "X-Shopify-Shop-Domain": shop,
			"X-Shopify-Hmac-Sha256": shopify.Sign([]byte(key), body), "X-Shopify-Api-Version": "2025-10",
			"X-Shopify-Webhook-Id": fmt.Sprintf("wh-%d", seq), "X-Shopify-Triggered-At": p.CreatedAt.Format(time.RFC3339),
		}, body); code != want {
			t.Fatalf("webhook: %d, want %d", code, want)
		}
	}
	var emails []string
	send := func(both, webhookOnly, storefrontOnly, badSig int, otherEmail bool) {
		t.Helper()
		for i := range both {
			p := next()
			sf := p
			if i == 0 && otherEmail {
				sf.Email = "someone.else@example.com"
			}
			emails = append(emails, p.Email, sf.Email)
			storefront(sf)
			webhook(p, secret, 200)
		}
		for range webhookOnly {
			p := next()
			emails = append(emails, p.Email)
			webhook(p, secret, 200)
		}
		for range storefrontOnly {
			p := next()
			emails = append(emails, p.Email)
			storefront(p)
		}
		for range badSig {
			webhook(next(), "not-the-secret", 401)
		}
	}
	send(1, 1, 1, 0, false)
	expectEq(`sum(purchasesync_join_decisions_total{outcome="registered_webhook"})`, 1) // after the grace
	expectEq(`sum(purchasesync_sink_rows_total{table="raw_events"})`, 4)
	send(9, 2, 2, 2, true)

	expectEq(`purchasesync_build_info`, 1)
	expectEq(`sum(purchasesync_ingest_requests_total{endpoint="webhook", code="200"})`, 13)
	expectEq(`sum(purchasesync_ingest_requests_total{endpoint="storefront", code="202"})`, 13)
	expectEq(`sum(purchasesync_ingest_requests_total{endpoint="webhook", code="401"})`, 2)
	expectEq(`sum(purchasesync_ingest_signature_failures_total)`, 2)
	expectIn(`histogram_quantile(0.99, sum by (le) (purchasesync_ingest_produce_duration_seconds_bucket))`, 0, 1)
	expectIn(`sum(purchasesync_kafka_produce_records_total{role="ingest"})`, 26, 1e9)
	expectEq(`sum(purchasesync_join_decisions_total{outcome="registered_storefront"})`, 13)
	expectEq(`sum(purchasesync_join_decisions_total{outcome="matched"})`, 10)
	// A webhook read before its storefront event (another topic, same poll)
	// is held first, so held counts 3 or more.
	expectIn(`sum(purchasesync_join_decisions_total{outcome="held"})`, 3, 13)
	expectEq(`sum(purchasesync_join_decisions_total{outcome="registered_webhook"})`, 3) // after the 2 s grace
	expectEq(`sum(purchasesync_join_discrepancies_total{field="email"})`, 1)
	expectEq(`sum(purchasesync_join_held_purchases)`, 0)
	expectEq(`sum(purchasesync_join_overdue_holds)`, 0)
	expectEq(`sum(purchasesync_sink_rows_total{table="raw_events"})`, 26)
	expectIn(`sum(purchasesync_sink_rows_total{table="purchases"})`, 16, 26) // registrations and match updates
	expectEq(`sum(purchasesync_sink_end_to_end_latency_seconds_count{table="raw_events"})`, 26)
	expectIn(`histogram_quantile(0.99, sum by (le) (purchasesync_sink_end_to_end_latency_seconds_bucket{table="raw_events"}))`, 0, 30)
	expectEq(`sum(purchasesync_consumer_group_members{group="`+joinGroup+`"})`, 1)
	expectEq(`sum(purchasesync_consumer_group_members{group="`+sinkGroup+`"})`, 1)
	expectEq(`sum(purchasesync_consumer_lag_records{group="`+joinGroup+`"})`, 0)
	// The sink reads two topics written in transactions: at most a commit
	// marker per partition (2 topics × 2 partitions).
	expectIn(`sum(purchasesync_consumer_lag_records{group="`+sinkGroup+`"})`, 0, 4)
	expectIn(`time() - purchasesync_freshness_newest_row_timestamp_seconds{table="raw_events"}`, -2, 60)
	expectIn(`time() - purchasesync_freshness_newest_row_timestamp_seconds{table="purchases"}`, -2, 60)
	expectIn(`time() - purchasesync_freshness_newest_row_timestamp_seconds{table="discrepancies"}`, -2, 60)
	t.Logf("key series checked after %s", time.Since(start).Round(time.Millisecond))

	// Every dashboard query evaluates; the main panels have data.
	queries, _ := dashboardQueries(t)
	mustHaveData := map[string]bool{"Requests/s by endpoint and code": true, "Decisions/s by outcome": true,
		"Browser-miss rate (1h)": true, "Discrepancy rate by field (1h)": true, "Lag by group and topic": true,
		"Rows inserted/s by table": true, "Freshness: age of the newest row": true, "Kafka produce latency": true}
	for _, q := range queries {
		vs, err := prom.query(grafanaVars.Replace(q.expr))
		if err != nil {
			t.Errorf("%s does not evaluate: %v", q.where, err)
			continue
		}
		for title := range mustHaveData {
			if strings.HasPrefix(q.where, fmt.Sprintf("panel %q query A", title)) {
				numbers := 0
				for _, v := range vs {
					if v.value == v.value { // not NaN
						numbers++
					}
				}
				if numbers == 0 {
					t.Errorf("%s has no data after the load (%v): %s", q.where, vs, grafanaVars.Replace(q.expr))
				}
			}
		}
	}
	// Every rule evaluates without error.
	testenv.Eventually(t, 20*time.Second, "every alert rule evaluated with health ok", func() bool {
		rules, err := prom.rules()
		if err != nil {
			return false
		}
		for _, r := range rules {
			if r.Health == "err" {
				t.Fatalf("rule %s fails: %s", r.Name, r.LastError)
			}
			if r.Health != "ok" {
				return false
			}
		}
		return len(rules) == len(readAlerts(t))
	})
	if a := prom.alert("PurchasesyncClickHouseInsertsFailing"); a != "" {
		t.Fatalf("PurchasesyncClickHouseInsertsFailing is %s before ClickHouse was cut off", a)
	}

	// Force it: ClickHouse becomes unreachable, new events arrive.
	chProxy.stop()
	for range 3 {
		storefront(next())
	}
	testenv.Eventually(t, 30*time.Second, "PurchasesyncClickHouseInsertsFailing firing", func() bool {
		return prom.alert("PurchasesyncClickHouseInsertsFailing") == "firing"
	})
	expectIn(`sum(purchasesync_sink_insert_errors_total)`, 1, 1e9)
	expectIn(`sum(purchasesync_freshness_query_errors_total)`, 1, 1e9)
	t.Logf("alert fired after %s", time.Since(start).Round(time.Millisecond))

	for _, p := range logProblems(pipeline.Logs(), append(emails, secret, token)) {
		t.Error("pipeline log: " + p)
	}
}

// logProblems checks a process's log: every line is a JSON object with
// time, level and msg; the keys that name Kafka positions are numbers; no
// line holds an email address, nor any of the forbidden strings (the load's
// emails, the app secret, the admin token).
func logProblems(logs string, forbidden []string) []string {
	var problems []string
	email := regexp.MustCompile(`[A-Za-z0-9._%+-]+@[A-Za-z0-9.-]+\.[A-Za-z]{2,}`)
	sc := bufio.NewScanner(strings.NewReader(logs))
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	n := 0
	for sc.Scan() {
		line := sc.Text()
		n++
		var m map[string]any
		if err := json.Unmarshal([]byte(line), &m); err != nil {
			problems = append(problems, fmt.Sprintf("line %d is not JSON: %s", n, line))
			continue
		}
		for _, k := range []string{"time", "level", "msg"} {
			if _, ok := m[k]; !ok {
				problems = append(problems, fmt.Sprintf("line %d has no %q: %s", n, k, line))
			}
		}
		for _, k := range []string{"partition", "offset"} {
			if v, ok := m[k]; ok {
				if _, num := v.(float64); !num {
					problems = append(problems, fmt.Sprintf("line %d: %s is %T, want a number: %s", n, k, v, line))
				}
			}
		}
		for _, f := range forbidden {
			if strings.Contains(line, f) {
				problems = append(problems, fmt.Sprintf("line %d holds %q (personal data or a secret): %s", n, f, line))
			}
		}
		if e := email.FindString(line); e != "" {
			problems = append(problems, fmt.Sprintf("line %d holds an email address %q: %s", n, e, line))
		}
	}
	if n < 10 {
		problems = append(problems, fmt.Sprintf("only %d log lines; the log was not captured", n))
	}
	return problems
}

func TestLogProblems(t *testing.T) {
	ok := `{"time":"t","level":"INFO","msg":"m","topic":"x","partition":1,"offset":2}` + "\n"
	if p := logProblems(strings.Repeat(ok, 10), []string{"s3cret"}); len(p) != 0 {
		t.Errorf("a clean log has problems: %v", p)
	}
	for _, bad := range []string{
		`not json`,
		`{"level":"INFO","msg":"m"}`,
		`{"time":"t","level":"INFO","msg":"m","partition":"1"}`,
		`{"time":"t","level":"INFO","msg":"m","err":"token s3cret refused"}`,
		`{"time":"t","level":"WARN","msg":"m","err":"invalid customer.email jane.doe@shop.example"}`,
	} {
		if p := logProblems(strings.Repeat(ok, 10)+bad+"\n", []string{"s3cret"}); len(p) != 1 {
			t.Errorf("%s: %d problems %v, want 1", bad, len(p), p)
		}
	}
}

// promServer is a Prometheus server of the test's own.
type promServer struct{ base string }

func startPrometheus(t *testing.T, bin, target string) *promServer {
	t.Helper()
	dir := t.TempDir()
	rules, err := os.ReadFile("../../deploy/prometheus/alerts.yml")
	if err != nil {
		t.Fatal(err)
	}
	// The real rules with every `for:` at 0s: an alert fires at the first
	// evaluation that sees its condition.
	rules = regexp.MustCompile(`(?m)^(\s+)for: \S+$`).ReplaceAll(rules, []byte("${1}for: 0s"))
	if err := os.WriteFile(filepath.Join(dir, "alerts.yml"), rules, 0o644); err != nil {
		t.Fatal(err)
	}
	cfg := fmt.Sprintf(`global:
  scrape_interval: 1s
  scrape_timeout: 900ms
  evaluation_interval: 1s
rule_files: [alerts.yml]
scrape_configs:
  - job_name: purchasesync
    static_configs:
      - targets: [%q]
`, target)
	if err := os.WriteFile(filepath.Join(dir, "prometheus.yml"), []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	addr := testenv.FreeAddr(t)
	cmd := exec.Command(bin, "--config.file="+filepath.Join(dir, "prometheus.yml"),
		"--storage.tsdb.path="+filepath.Join(dir, "data"), "--web.listen-address="+addr)
	cmd.Dir = dir
	pp := testenv.StartCmd(t, cmd)
	pp.Grace, pp.MayNeedKill, pp.LogLines = 15*time.Second, true, 20
	p := &promServer{base: "http://" + addr}
	testenv.WaitHTTP200(t, p.base+"/-/ready", 30*time.Second)
	return p
}

type promSample struct {
	metric map[string]string
	value  float64
}

func (p *promServer) api(path string, v url.Values, data any) error {
	resp, err := http.Get(p.base + path + "?" + v.Encode())
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	var r struct {
		Status string          `json:"status"`
		Error  string          `json:"error"`
		Data   json.RawMessage `json:"data"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&r); err != nil {
		return err
	}
	if r.Status != "success" {
		return fmt.Errorf("%s: %s", r.Status, r.Error)
	}
	return json.Unmarshal(r.Data, data)
}

// query evaluates q now; a scalar comes back as one sample without labels.
func (p *promServer) query(q string) ([]promSample, error) {
	var d struct {
		ResultType string          `json:"resultType"`
		Result     json.RawMessage `json:"result"`
	}
	if err := p.api("/api/v1/query", url.Values{"query": {q}}, &d); err != nil {
		return nil, err
	}
	num := func(pair []any) float64 {
		s, _ := pair[1].(string)
		f, _ := strconv.ParseFloat(s, 64)
		return f
	}
	switch d.ResultType {
	case "scalar":
		var pair []any
		if err := json.Unmarshal(d.Result, &pair); err != nil {
			return nil, err
		}
		return []promSample{{value: num(pair)}}, nil
	case "vector":
		var vs []struct {
			Metric map[string]string `json:"metric"`
			Value  []any             `json:"value"`
		}
		if err := json.Unmarshal(d.Result, &vs); err != nil {
			return nil, err
		}
		out := make([]promSample, len(vs))
		for i, v := range vs {
			out[i] = promSample{v.Metric, num(v.Value)}
		}
		return out, nil
	}
	return nil, fmt.Errorf("unexpected result type %q", d.ResultType)
}

type promRule struct {
	Name      string `json:"name"`
	Health    string `json:"health"`
	LastError string `json:"lastError"`
}

func (p *promServer) rules() ([]promRule, error) {
	var d struct {
		Groups []struct {
			Rules []promRule `json:"rules"`
		} `json:"groups"`
	}
	if err := p.api("/api/v1/rules", url.Values{"type": {"alert"}}, &d); err != nil {
		return nil, err
	}
	var out []promRule
	for _, g := range d.Groups {
		out = append(out, g.Rules...)
	}
	return out, nil
}

// alert is the state of the named alert ("firing", "pending"), "" if none.
func (p *promServer) alert(name string) string {
	var d struct {
		Alerts []struct {
			Labels map[string]string `json:"labels"`
			State  string            `json:"state"`
		} `json:"alerts"`
	}
	if err := p.api("/api/v1/alerts", nil, &d); err != nil {
		return ""
	}
	state := ""
	for _, a := range d.Alerts {
		if a.Labels["alertname"] == name && (state == "" || a.State == "firing") {
			state = a.State
		}
	}
	return state
}

// tcpProxy forwards connections to a target; stop makes its address refuse
// connections and breaks the open ones, as a stopped server would.
type tcpProxy struct {
	t      *testing.T
	target string
	laddr  string
	mu     sync.Mutex
	ln     net.Listener
	conns  map[net.Conn]bool
}

func startProxy(t *testing.T, target string) *tcpProxy {
	p := &tcpProxy{t: t, target: target, laddr: "127.0.0.1:0", conns: map[net.Conn]bool{}}
	p.start(t)
	t.Cleanup(p.stop)
	return p
}

func (p *tcpProxy) addr() string { return p.laddr }

func (p *tcpProxy) start(t *testing.T) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.ln != nil {
		return
	}
	ln, err := net.Listen("tcp", p.laddr)
	if err != nil {
		t.Errorf("proxy: %v", err)
		return
	}
	p.ln, p.laddr = ln, ln.Addr().String()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go p.pipe(c)
		}
	}()
}

func (p *tcpProxy) pipe(c net.Conn) {
	up, err := net.Dial("tcp", p.target)
	if err != nil {
		c.Close()
		return
	}
	p.mu.Lock()
	if p.ln == nil {
		p.mu.Unlock()
		c.Close()
		up.Close()
		return
	}
	p.conns[c], p.conns[up] = true, true
	p.mu.Unlock()
	go func() { io.Copy(up, c); up.Close() }()
	io.Copy(c, up)
	c.Close()
}

func (p *tcpProxy) stop() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.ln != nil {
		p.ln.Close()
		p.ln = nil
	}
	for c := range p.conns {
		c.Close()
	}
	clear(p.conns)
}

// dropTestData removes the test's ClickHouse database and topics.
func dropTestData(brokers []string, chAddr, db string, topics schemas.Topics) {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	cfg := chsink.DefaultConfig()
	cfg.Addr = []string{chAddr}
	if conn, err := chsink.Open(cfg, ""); err == nil {
		_ = conn.Exec(ctx, "DROP DATABASE IF EXISTS `"+db+"`")
		conn.Close()
	}
	if cl, err := kgo.NewClient(kgo.SeedBrokers(brokers...)); err == nil {
		adm := kadm.NewClient(cl)
		if ts, err := adm.ListTopics(ctx); err == nil {
			var mine []string
			for _, n := range ts.Names() {
				if strings.HasPrefix(n, topics.Prefix) {
					mine = append(mine, n)
				}
			}
			if len(mine) > 0 {
				adm.DeleteTopics(ctx, mine...)
			}
		}
		cl.Close()
	}
}

func httpDo(t *testing.T, method, u string, hdr map[string]string, body []byte) int {
	t.Helper()
	req, err := http.NewRequest(method, u, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, u, err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode
}

// lookPathOrSkip finds a Debian-packaged tool (prometheus, promtool), or
// skips; it fails when functional tests are required.
func lookPathOrSkip(t *testing.T, name string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	if err != nil {
		if testenv.Required() {
			t.Fatalf("%s is required (PURCHASESYNC_FUNCTIONAL_TESTS=1): apt-get install prometheus", name)
		}
		t.Skipf("%s not installed (apt-get install prometheus)", name)
	}
	return p
}
