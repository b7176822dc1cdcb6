package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"purchasesync/deploy/testenv"
	"purchasesync/schemas"
)

// keymodeShop sends one site's orders: the webhook (a test order when
// test) and, unless skipped, the storefront event carrying sent(order).
type keymodeShop struct {
	p    *pipeline
	site string
	sent func(id, number int64) string
}

func (s keymodeShop) order(t *testing.T, i int, browser, test bool) {
	t.Helper()
	id, number := int64(5837291049000+i), int64(1001+i)
	if browser {
		body := fmt.Sprintf(`{"purchase":{"order_number":%q,"subtotal":"23.97","currency_iso_code":"USD"},"customer":{"email":"jane@example.com"}}`, s.sent(id, number))
		if code := s.p.do(t, "POST", "http://"+s.p.ingest+"/v1/sites/"+s.site+"/purchases", map[string]string{"Content-Type": "application/json"}, body); code != 202 {
			t.Fatalf("%s storefront event %d: %d", s.site, i, code)
		}
	}
	body := fmt.Sprintf(`{"id":%d,"name":"#%d","order_number":%d,"test":%v,"email":"jane@example.com","presentment_currency":"USD",`+
		`"subtotal_price_set":{"presentment_money":{"amount":"23.97","currency_code":"USD"}},"line_items":[{"product_id":1,"title":"Mug","price":"23.97","quantity":1}]}`,
		id, number, number, test)
	if code := s.p.do(t, "POST", "http://"+s.p.ingest+"/webhooks/shopify", map[string]string{
		"Content-Type": "application/json", "X-Shopify-Topic": "orders/create", "X-Shopify-Hmac-Sha256": sign(body, e2eSecret),
		"X-Shopify-Shop-Domain": s.site + "-store.myshopify.com", "X-Shopify-Webhook-Id": fmt.Sprintf("%s-%d", s.site, i),
		"X-Shopify-API-Version": "2025-10"}, body); code != 200 {
		t.Fatalf("%s webhook %d: %d", s.site, i, code)
	}
}

func (p *pipeline) diagnosis(t *testing.T, site string) schemas.KeyModeDiagnosis {
	t.Helper()
	req, _ := http.NewRequest("GET", "http://"+p.ops+"/admin/v1/sites/"+site+"/diagnosis", nil)
	req.Header.Set("Authorization", "Bearer "+e2eToken)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	var d schemas.KeyModeDiagnosis
	if resp.StatusCode != 200 || json.Unmarshal(b, &d) != nil {
		return schemas.KeyModeDiagnosis{Verdict: fmt.Sprintf("HTTP %d %s", resp.StatusCode, b)}
	}
	return d
}

// metric reads one unlabelled sample from /metrics.
func (p *pipeline) metric(t *testing.T, name string) string {
	t.Helper()
	resp, err := http.Get("http://" + p.ops + "/metrics")
	if err != nil {
		return ""
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), name+" "); ok {
			return v
		}
	}
	return ""
}

// TestFunctionalOrderKeyDiagnosis is issue 15 on the real stack: a site
// configured order_id whose storefront sends "#1001"-style numbers is
// diagnosed (order_number suggested), counted by the alert's metric and
// refused by `sites enable`; a correctly configured site is not; noise
// (test orders, missing browser events, storefront numbers of no order)
// does not flip the verdict; the evidence survives a kill -9 of the
// process; the doubles already registered are listed and marked.
func TestFunctionalOrderKeyDiagnosis(t *testing.T) {
	// Every shopper here is 127.0.0.1: no per-IP bucket.
	t.Setenv("PURCHASESYNC_INGEST_IPRATE", "0")
	p := startPipeline(t, singleBroker(t))
	admin := map[string]string{"Authorization": "Bearer " + e2eToken}
	for _, site := range []string{"wrongkey", "rightkey"} {
		if code := p.do(t, "PUT", "http://"+p.ops+"/admin/v1/sites/"+site, admin,
			`{"shop_domain":"`+site+`-store.myshopify.com","order_key":"order_id","purchase_syncing":true,"grace":"2s"}`); code != 200 {
			t.Fatalf("PUT %s: %d", site, code)
		}
	}
	wrong := keymodeShop{p, "wrongkey", func(_, number int64) string { return fmt.Sprintf("#%d", number) }}
	right := keymodeShop{p, "rightkey", func(id, _ int64) string { return fmt.Sprint(id) }}
	doubles := 0
	for i := 0; i < 36; i++ {
		browser, test := i%6 != 5, i%9 == 4 // a sixth without browser event, a ninth test orders
		wrong.order(t, i, browser, test)
		right.order(t, i, browser, test)
		if browser && !test {
			doubles++
		}
		if i%10 == 0 { // a storefront number of no order
			if code := p.do(t, "POST", "http://"+p.ingest+"/v1/sites/wrongkey/purchases", map[string]string{"Content-Type": "application/json"},
				fmt.Sprintf(`{"purchase":{"order_number":"#9%d","subtotal":"1.00","currency_iso_code":"USD"},"customer":{"email":"x@example.com"}}`, i)); code != 202 {
				t.Fatalf("noise: %d", code)
			}
		}
	}
	var d schemas.KeyModeDiagnosis
	testenv.Eventually(t, 60*time.Second, "wrongkey diagnosed", func() bool {
		d = p.diagnosis(t, "wrongkey")
		return d.Matched >= 30
	})
	if d.Verdict != schemas.VerdictContradicted || d.SuggestedOrderKey == nil || *d.SuggestedOrderKey != schemas.OrderKeyNumber ||
		d.ConfiguredOrderKey != schemas.OrderKeyID || d.Evidence[schemas.OrderKeyID].Matches != 0 || d.Evidence[schemas.OrderKeyName].Matches != d.Matched {
		t.Fatalf("wrongkey: %+v", d)
	}
	if d.SuspectedDoubleRegistrations != d.Matched || d.Matched != 30 {
		t.Errorf("wrongkey: %d matched, %d suspected doubles; want the 30 orders with a browser event", d.Matched, d.SuspectedDoubleRegistrations)
	}
	r := p.diagnosis(t, "rightkey")
	if r.Verdict != schemas.VerdictConsistent || r.SuggestedOrderKey != nil || r.SuspectedDoubleRegistrations != 0 || r.Matched != 30 {
		t.Fatalf("rightkey: %+v", r)
	}
	// The alert's condition: one contradicted syncing site.
	testenv.Eventually(t, 30*time.Second, "purchasesync_keymode_contradicted_sites 1", func() bool {
		return p.metric(t, "purchasesync_keymode_contradicted_sites") == "1"
	})

	// The operator's commands, as a person would type them.
	sitesCmd := func(args ...string) (string, error) { return sitesOf(p, args...) }
	out, err := sitesCmd("diagnose", "wrongkey")
	if err != nil || !strings.Contains(out, "suggested order key:") || !strings.Contains(out, "order_number") {
		t.Fatalf("sites diagnose: %v\n%s", err, out)
	}
	t.Logf("purchasesync sites diagnose wrongkey:\n%s", out)
	if out, err := sitesCmd("diagnose"); err != nil || !strings.Contains(out, "contradicted") || !strings.Contains(out, "consistent") {
		t.Errorf("sites diagnose (all): %v\n%s", err, out)
	}
	if _, err := sitesCmd("enable", "wrongkey"); err == nil || !strings.Contains(err.Error(), "HTTP 409") || !strings.Contains(err.Error(), "-order-key order_number") {
		t.Fatalf("sites enable wrongkey: %v; want 409 naming order_number", err)
	}

	// The doubles already registered, in ClickHouse: listed, then marked
	// once the mode is corrected.
	type list struct {
		Doubles []schemas.DoubleRegistration `json:"doubles"`
	}
	var ds list
	testenv.Eventually(t, 60*time.Second, "the doubles in ClickHouse", func() bool {
		out, err := sitesCmd("repair", "wrongkey", "-o", "json")
		return err == nil && json.Unmarshal([]byte(out), &ds) == nil && len(ds.Doubles) >= doubles
	})
	time.Sleep(2 * time.Second)
	out, err = sitesCmd("repair", "wrongkey", "-o", "json")
	if err != nil || json.Unmarshal([]byte(out), &ds) != nil || len(ds.Doubles) != doubles {
		t.Fatalf("repair list: %v, %d doubles; want %d\n%s", err, len(ds.Doubles), doubles, out)
	}
	for _, x := range ds.Doubles {
		if x.Marked || !strings.HasPrefix(x.StorefrontOrderNumber, "#") || x.ShopifyOrderID != x.ShopifyOrderNumber || x.ShopifyOrderName != x.StorefrontOrderNumber {
			t.Fatalf("double %+v", x)
		}
	}
	if out, err := sitesCmd("repair", "rightkey"); err != nil || !strings.Contains(out, "no suspected double registrations") {
		t.Errorf("rightkey repair: %v\n%s", err, out)
	}
	if _, err := sitesCmd("put", "wrongkey", "-order-key", "order_number"); err != nil {
		t.Fatal(err)
	}
	out, err = sitesCmd("repair", "wrongkey", "-mark", "-by", "ops@example.com", "-note", "order_key was order_id")
	if err != nil || !strings.Contains(out, fmt.Sprintf("%d marked now", doubles)) {
		t.Fatalf("repair -mark: %v\n%s", err, out)
	}
	t.Logf("purchasesync sites repair wrongkey -mark:\n%s", out)
	out, _ = sitesCmd("repair", "wrongkey", "-o", "json")
	if json.Unmarshal([]byte(out), &ds) != nil || len(ds.Doubles) != doubles {
		t.Fatalf("after marking: %s", out)
	}
	for _, x := range ds.Doubles {
		if !x.Marked || x.MarkedAt == nil {
			t.Fatalf("unmarked after -mark: %+v", x)
		}
	}
	// With the mode corrected, the same evidence is consistent.
	testenv.Eventually(t, 30*time.Second, "wrongkey consistent once corrected", func() bool {
		d = p.diagnosis(t, "wrongkey")
		return d.Verdict == schemas.VerdictConsistent && d.SuggestedOrderKey == nil
	})
	testenv.Eventually(t, 30*time.Second, "purchasesync_keymode_contradicted_sites 0", func() bool {
		return p.metric(t, "purchasesync_keymode_contradicted_sites") == "0"
	})

	// State in Kafka: after a kill -9, the windows are restored, so new
	// pairs add to the old ones instead of starting over.
	before := p.diagnosis(t, "rightkey").Matched
	p.cmd.Kill()
	p.start(t)
	if got := p.diagnosis(t, "rightkey").Matched; got != before {
		t.Fatalf("rightkey matched %d after the restart, %d before", got, before)
	}
	for i := 100; i < 105; i++ {
		right.order(t, i, true, false)
	}
	testenv.Eventually(t, 60*time.Second, "rightkey's window restored and growing", func() bool {
		return p.diagnosis(t, "rightkey").Matched == before+5
	})
}
