package main

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"purchasesync/deploy/testenv"
	"purchasesync/processors/control/shopifyfake"
	"purchasesync/schemas"
)

// TestFunctionalMerchantPage is the merchant's side of issue 20, in a real
// browser (headless Chromium) against the fake Shopify and a `run` process
// on the real stack:
//
//  1. a merchant whose installation lacks read_orders opens the Shopify
//     Integration page from Shopify admin (a session token), and sees the
//     permission message;
//  2. Update permissions runs Shopify's OAuth (authorize, callback, code
//     exchange) and comes back through Shopify admin;
//  3. the switch turns Purchase Syncing on: the subscriptions exist in the
//     fake Shopify and the site record says syncing is on;
//  4. a purchase sent to the pipeline shows on the page;
//  5. app/uninstalled turns syncing off and forgets the token: the page
//     then asks to install again.
//
// Each step's screenshot is written under deploy/local/.state/screenshots.
func TestFunctionalMerchantPage(t *testing.T) {
	// Shopify only calls https:// addresses (the fake refuses others, as
	// Shopify does); the test delivers webhooks to the ingest itself.
	const domain, apiKey, publicURL = "merchant-store.myshopify.com", "e2e-api-key", "https://hooks.example.com"
	ctx := testenv.Browser(t)
	shots := testenv.ScreenshotDir(t)
	fake := shopifyfake.Start(t)
	fake.SetApp(apiKey, e2eSecret)
	fake.AddShop(domain, "", "write_script_tags") // installed long ago, before read_orders was needed

	p := newPipeline(t, singleBroker(t), singleClickHouse(t))
	app := testenv.FreeAddr(t)
	key := make([]byte, 32)
	rand.Read(key)
	fake.SetAppURL("http://" + app + "/app")
	p.extra = []string{"-app.addr", app, "-app.baseURL", "http://" + app, "-shopify.apiKey", apiKey,
		"-shopify.oauthURL", fake.OAuthURL(), "-shopify.adminURL", fake.URL(), "-public.baseURL", publicURL,
		"-token.key", "k1:" + base64.StdEncoding.EncodeToString(key)}
	p.start(t)
	admin := map[string]string{"Authorization": "Bearer " + e2eToken}
	if code := p.do(t, "PUT", "http://"+p.ops+"/admin/v1/sites/merchant", admin,
		`{"shop_domain":"`+domain+`","order_key":"order_id","purchase_syncing":false,"grace":"2s"}`); code != 200 {
		t.Fatalf("PUT site: %d", code)
	}
	// do runs browser actions with a deadline: a wait for an element that
	// never comes fails the step instead of hanging the suite.
	do := func(step string, actions ...chromedp.Action[chromedp.Void]) {
		t.Helper()
		sctx, cancel := context.WithTimeout(ctx, 30*time.Second)
		defer cancel()
		if err := chromedp.Do(sctx, actions...); err != nil {
			body, _ := chromedp.Run(ctx, chromedp.Text(chromedp.CSS("body")))
			t.Fatalf("%s: %v; the page says:\n%s", step, err, body)
		}
	}
	text := func(sel string) string {
		t.Helper()
		sctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		defer cancel()
		s, err := chromedp.Run(sctx, chromedp.Text(chromedp.CSS(sel)))
		if err != nil {
			t.Fatalf("text of %s: %v", sel, err)
		}
		return s
	}
	open := func(step string) string { // Shopify admin opens the app: a fresh session token
		t.Helper()
		do(step, chromedp.Navigate(fake.AdminAppURL(domain)), chromedp.WaitVisible(chromedp.CSS("main.page")))
		testenv.Screenshot(t, ctx, shots, step)
		return text("main.page")
	}

	// 1. The permission is missing: the brief's message and the button.
	page := open("1-missing-read_orders")
	if !strings.Contains(page, "Talkable needs a new permission") || !strings.Contains(page, "Update the permissions as shown on the next screen") {
		t.Fatalf("no permission message:\n%s", page)
	}
	disabled, _ := chromedp.Run(ctx, chromedp.Evaluate[bool](`document.getElementById("syncing-switch").disabled`))
	if !disabled || fake.Token(domain) == "" || strings.Contains(text("#scopes"), "read_orders") {
		t.Fatalf("switch disabled %v, token exchanged %v, scopes %q", disabled, fake.Token(domain) != "", text("#scopes"))
	}

	// 2. Update permissions: OAuth, and back into Shopify admin.
	do("update permissions", chromedp.Click(chromedp.CSS("#update-permissions")), chromedp.WaitVisible(chromedp.CSS("#scopes")))
	testenv.Eventually(t, 10*time.Second, "the page after re-authorization", func() bool {
		s, err := chromedp.Run(ctx, chromedp.Text(chromedp.CSS("#scopes")))
		return err == nil && strings.Contains(s, "read_orders")
	})
	testenv.Screenshot(t, ctx, shots, "2-permissions-updated")
	if strings.Contains(text("main.page"), "Talkable needs a new permission") {
		t.Fatal("the permission message is still shown after re-authorization")
	}

	// 3. The switch.
	do("the switch", chromedp.Click(chromedp.CSS("#syncing-switch")), chromedp.WaitVisible(chromedp.CSS("main .banner")))
	testenv.Screenshot(t, ctx, shots, "3-syncing-on")
	if s := text("main .banner"); !strings.Contains(s, "Purchase Syncing is on") {
		t.Fatalf("after the switch: %q", s)
	}
	topics := map[string]bool{}
	for _, s := range fake.Subscriptions(domain) {
		topics[s.Topic] = s.URI == publicURL+"/webhooks/shopify"
	}
	if !topics["ORDERS_CREATE"] || !topics["REFUNDS_CREATE"] || !topics["APP_UNINSTALLED"] {
		t.Fatalf("subscriptions in the fake Shopify: %+v", fake.Subscriptions(domain))
	}
	var site schemas.Site
	if _, err := sitesJSON(p, "merchant", &site); err != nil || !site.PurchaseSyncing || site.WebhookSubscriptionID == "" {
		t.Fatalf("site record: %+v %v", site, err)
	}

	// 4. A purchase, both sides, shows on the page.
	order := "5837291099001"
	body := `{"id":` + order + `,"name":"#1001","order_number":1001,"email":"jane@example.com","presentment_currency":"USD",` +
		`"subtotal_price_set":{"presentment_money":{"amount":"23.97","currency_code":"USD"}},"line_items":[{"product_id":1,"title":"Mug","price":"23.97","quantity":1}]}`
	if code := p.do(t, "POST", "http://"+p.ingest+"/v1/sites/merchant/purchases", map[string]string{"Content-Type": "application/json"},
		`{"purchase":{"order_number":"`+order+`","subtotal":"23.97","currency_iso_code":"USD"},"customer":{"email":"jane@example.net"}}`); code != 202 {
		t.Fatalf("storefront event: %d", code)
	}
	if code := p.do(t, "POST", "http://"+p.ingest+"/webhooks/shopify", map[string]string{"Content-Type": "application/json",
		"X-Shopify-Topic": "orders/create", "X-Shopify-Hmac-Sha256": sign(body, e2eSecret), "X-Shopify-Shop-Domain": domain,
		"X-Shopify-Webhook-Id": "w-" + order, "X-Shopify-API-Version": "2025-10"}, body); code != 200 {
		t.Fatalf("webhook: %d", code)
	}
	testenv.Eventually(t, 60*time.Second, "the purchase on the page", func() bool {
		open("4-purchase")
		s, _ := chromedp.Run(ctx, chromedp.Text(chromedp.CSS("#purchases-total")))
		d, _ := chromedp.Run(ctx, chromedp.Text(chromedp.CSS("main.page")))
		// The last webhook comes from raw_events, which the sink may load
		// in a later batch than purchases: wait for both.
		return strings.TrimSpace(s) == "1" && strings.Contains(d, "j***@example.net") && strings.Contains(text("#last-webhook"), "UTC")
	})
	if page := text("main.page"); strings.Contains(page, "jane@") {
		t.Fatalf("an unmasked email:\n%s", page)
	}

	// 5. The merchant removes the app.
	fake.Uninstall(domain)
	if code, err := fake.SendAppUninstalled("http://"+p.ingest+"/webhooks/shopify", domain); err != nil || code != 200 {
		t.Fatalf("app/uninstalled: %d %v", code, err)
	}
	testenv.Eventually(t, 30*time.Second, "syncing off after app/uninstalled", func() bool {
		_, err := sitesJSON(p, "merchant", &site)
		return err == nil && !site.PurchaseSyncing && site.WebhookSubscriptionID == ""
	})
	page = open("5-uninstalled")
	disabled, _ = chromedp.Run(ctx, chromedp.Evaluate[bool](`document.getElementById("syncing-switch").disabled`))
	if !strings.Contains(page, "Install Talkable again") || !strings.Contains(text(".badge"), "Off") || !disabled {
		t.Fatalf("after uninstalling, the page does not ask to install again (switch disabled: %v):\n%s", disabled, page)
	}
}

// sitesJSON reads a site record through the admin API.
func sitesJSON(p *pipeline, site string, out *schemas.Site) (string, error) {
	raw, err := sitesOf(p, "get", site, "-o", "json")
	if err != nil {
		return "", fmt.Errorf("sites get: %w", err)
	}
	*out = schemas.Site{} // empty fields are left out of the JSON
	return raw, json.Unmarshal([]byte(raw), out)
}
