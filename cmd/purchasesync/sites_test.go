package main

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http/httptest"
	"strings"
	"testing"

	"purchasesync/ingest/admin"
	"purchasesync/processors/sites/sitestest"
	"purchasesync/schemas"
)

// memSites is an in-memory registry (reads see writes at once) whose
// switch only flips the flag.
type memSites struct{ *sitestest.Registry }

func (m memSites) set(ctx context.Context, site string, on bool) (schemas.Site, error) {
	s, _ := m.Get(site)
	s.PurchaseSyncing = on
	s.WebhookSubscriptionID = map[bool]string{true: "gid://shopify/WebhookSubscription/77"}[on]
	return m.Put(ctx, s)
}
func (m memSites) Enable(ctx context.Context, s string) (schemas.Site, error) {
	return m.set(ctx, s, true)
}
func (m memSites) Disable(ctx context.Context, s string) (schemas.Site, error) {
	return m.set(ctx, s, false)
}

func TestSitesCLI(t *testing.T) {
	reg := memSites{sitestest.New()}
	cfg := admin.DefaultConfig()
	cfg.Token = "tok"
	h, err := admin.New(cfg, admin.Deps{Sites: reg, Writer: reg, Syncing: reg})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(h)
	defer srv.Close()
	env := map[string]string{"PURCHASESYNC_ADMIN_URL": srv.URL, "PURCHASESYNC_ADMIN_TOKEN": "tok"}
	sites := func(args ...string) (string, error) { return runSites(env, args...) }

	if _, err := sites("put", "shop-a", "-grace", "5m"); err == nil || !strings.Contains(err.Error(), "-shop") {
		t.Errorf("new site without -shop: %v", err)
	}
	out, err := sites("put", "shop-a", "-shop", "shop-a.myshopify.com", "-order-key", "order_number")
	if err != nil || !strings.Contains(out, "shop-a.myshopify.com") || !strings.Contains(out, "order_number") {
		t.Fatalf("put: %v\n%s", err, out)
	}
	// A partial put keeps the other fields.
	if _, err := sites("-o", "json", "put", "shop-a", "-grace", "5m"); err != nil {
		t.Fatal(err)
	}
	if s, _ := reg.Get("shop-a"); s.ShopDomain != "shop-a.myshopify.com" || s.OrderKey != schemas.OrderKeyNumber || s.Grace != schemas.Duration(300e9) {
		t.Errorf("after partial put: %+v", s)
	}
	if _, err := sites("put", "shop-a", "-grace", "forever"); err == nil || !strings.Contains(err.Error(), "field grace") {
		t.Errorf("bad grace: %v, want the field named", err)
	}

	out, err = sites("list")
	if err != nil || !strings.Contains(out, "SITE") || !strings.Contains(out, "shop-a") || !strings.Contains(out, "off") {
		t.Errorf("list table: %v\n%s", err, out)
	}
	out, err = sites("list", "-o", "json")
	var list struct{ Sites []schemas.Site }
	if err != nil || json.Unmarshal([]byte(out), &list) != nil || len(list.Sites) != 1 {
		t.Errorf("list json: %v\n%s", err, out)
	}

	out, err = sites("enable", "shop-a")
	if err != nil || !strings.Contains(out, "purchase syncing:") || !strings.Contains(out, "on") || !strings.Contains(out, "WebhookSubscription/77") {
		t.Errorf("enable: %v\n%s", err, out)
	}
	if _, err := sites("delete", "shop-a"); err == nil || !strings.Contains(err.Error(), "HTTP 409") {
		t.Errorf("delete while syncing: %v, want 409", err)
	}
	if out, err := sites("disable", "shop-a", "-o", "json"); err != nil || !strings.Contains(out, `"purchase_syncing": false`) {
		t.Errorf("disable: %v\n%s", err, out)
	}
	if _, err := sites("delete", "shop-a"); err != nil {
		t.Errorf("delete: %v", err)
	}
	if _, err := sites("get", "shop-a"); err == nil || !strings.Contains(err.Error(), "HTTP 404") {
		t.Errorf("get deleted: %v", err)
	}

	if _, err := sites("frobnicate", "x"); err == nil {
		t.Error("unknown action accepted")
	}
	if _, err := sites("get"); err == nil {
		t.Error("get without a site accepted")
	}
	env["PURCHASESYNC_ADMIN_TOKEN"] = "wrong"
	if _, err := sites("list"); err == nil || !strings.Contains(err.Error(), "HTTP 401") {
		t.Errorf("wrong token: %v", err)
	}
	delete(env, "PURCHASESYNC_ADMIN_TOKEN")
	if _, err := sites("list"); err == nil || !strings.Contains(err.Error(), "PURCHASESYNC_ADMIN_TOKEN") {
		t.Errorf("no token: %v", err)
	}
	env["PURCHASESYNC_ADMIN_TOKEN"] = "tok"
	env["PURCHASESYNC_ADMIN_URL"] = "http://127.0.0.1:1"
	if _, err := sites("list"); err == nil || !strings.Contains(err.Error(), "-admin.url") {
		t.Errorf("unreachable: %v", err)
	}
}

func TestAdminHandlerWiring(t *testing.T) {
	env := map[string]string{
		"PURCHASESYNC_KAFKA_BROKERS":        "127.0.0.1:1", // never dialled in this test
		"PURCHASESYNC_SHOPIFY_ACCESSTOKENS": "a.myshopify.com=secret-token",
		"PURCHASESYNC_PUBLIC_BASEURL":       "https://hooks.example.com",
	}
	build := func() (controlParts, error) {
		fs := newFlagSet("test", func(k string) string { return env[k] })
		kf, lf, cf := addKafkaFlags(fs), addLogFlags(fs), addControlFlags(fs)
		if err := fs.parse(nil); err != nil {
			t.Fatal(err)
		}
		var logs bytes.Buffer
		c, err := newCommon(kf, lf, &logs)
		if err != nil {
			t.Fatal(err)
		}
		parts, err := adminHandler(c, cf, nil, nil, nil)
		if strings.Contains(logs.String(), "secret-token") {
			t.Errorf("logs contain the access token: %s", logs.String())
		}
		return parts, err
	}
	parts, err := build()
	if err != nil {
		t.Fatal(err)
	}
	h, actors, advisory := parts.admin, parts.gating, parts.advisory
	if len(actors) != 1 {
		t.Fatalf("%d actors, want the control plane", len(actors))
	}
	if len(advisory) != 3 || advisory[0].name != "order-key evidence" || advisory[1].name != "order-key detector" || advisory[2].name != "uninstall processor" {
		t.Fatalf("advisory actors %v, want the order-key evidence table and detector, and the uninstall processor", advisory)
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest("GET", "/admin/v1/sites", nil))
	if rec.Code != 503 || !strings.Contains(rec.Body.String(), "PURCHASESYNC_ADMIN_TOKEN") {
		t.Errorf("without a token: %d %s", rec.Code, rec.Body)
	}
	// Before the registry loaded, a cancelled context stops the control
	// plane cleanly; close releases the producer adminHandler made.
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := actors[0].run(ctx); err != nil {
		t.Errorf("control actor on a cancelled context: %v", err)
	}
	parts.close()

	env["PURCHASESYNC_ADMIN_TOKEN"] = "t"
	if parts, err = build(); err != nil {
		t.Fatal(err)
	}
	defer parts.close()
	h = parts.admin
	rec = httptest.NewRecorder()
	req := httptest.NewRequest("GET", "/admin/v1/sites", nil)
	req.Header.Set("Authorization", "Bearer t")
	h.ServeHTTP(rec, req)
	if rec.Code != 200 {
		t.Errorf("with the token: %d %s", rec.Code, rec.Body)
	}

	env["PURCHASESYNC_SHOPIFY_ACCESSTOKENS"] = "no-equals-sign"
	if _, err := build(); err == nil || !strings.Contains(err.Error(), "PURCHASESYNC_SHOPIFY_ACCESSTOKENS") {
		t.Errorf("bad tokens: %v, want the variable named", err)
	}
	env["PURCHASESYNC_SHOPIFY_ACCESSTOKENS"] = ""
	env["PURCHASESYNC_SHOPIFY_APIVERSION"] = "2025-13"
	if _, err := build(); err == nil || !strings.Contains(err.Error(), "-shopify.apiVersion") {
		t.Errorf("bad version: %v, want the flag named", err)
	}
}

// TestAppFlagsErrors: the app listener refuses to start half-configured,
// naming the flag (and never quoting the token key).
func TestAppFlagsErrors(t *testing.T) {
	f := func(env map[string]string, want string) {
		t.Helper()
		env["PURCHASESYNC_KAFKA_BROKERS"] = "127.0.0.1:1"
		fs := newFlagSet("test", func(k string) string { return env[k] })
		kf, lf, cf := addKafkaFlags(fs), addLogFlags(fs), addControlFlags(fs)
		cf.app = addAppFlags(fs, nil)
		if err := fs.parse(nil); err != nil {
			t.Fatal(err)
		}
		c, err := newCommon(kf, lf, &bytes.Buffer{})
		if err != nil {
			t.Fatal(err)
		}
		_, err = adminHandler(c, cf, nil, nil, nil)
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%v: %v, want an error naming %s", env, err, want)
		}
		if err != nil && strings.Contains(err.Error(), "c2VjcmV0") {
			t.Errorf("the error quotes the key: %v", err)
		}
	}
	key := "k1:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA="
	f(map[string]string{"PURCHASESYNC_APP_ADDR": "127.0.0.1:0"}, "PURCHASESYNC_TOKEN_KEY")
	f(map[string]string{"PURCHASESYNC_TOKEN_KEY": "k1:c2VjcmV0"}, "-token.key")
	f(map[string]string{"PURCHASESYNC_APP_ADDR": "127.0.0.1:0", "PURCHASESYNC_TOKEN_KEY": key}, "-shopify.apiKey")
	f(map[string]string{"PURCHASESYNC_APP_ADDR": "127.0.0.1:0", "PURCHASESYNC_TOKEN_KEY": key, "PURCHASESYNC_SHOPIFY_APIKEY": "k",
		secretEnv: "s"}, "-app.baseURL")
	f(map[string]string{"PURCHASESYNC_APP_ADDR": "127.0.0.1:0", "PURCHASESYNC_TOKEN_KEY": key, "PURCHASESYNC_SHOPIFY_APIKEY": "k",
		secretEnv: "s", "PURCHASESYNC_APP_BASEURL": "https://app.example.com", "PURCHASESYNC_SHOPIFY_SCOPES": "read_products"}, "-shopify.scopes")
}

// runSites runs `purchasesync sites` as a person would type it, with env
// as its environment, and returns what it printed.
func runSites(env map[string]string, args ...string) (string, error) {
	var out bytes.Buffer
	err := cmdSites(context.Background(), args, func(k string) string { return env[k] }, &out)
	return out.String(), err
}

// sitesOf is runSites against a pipeline's admin API.
func sitesOf(p *pipeline, args ...string) (string, error) {
	return runSites(map[string]string{"PURCHASESYNC_ADMIN_URL": "http://" + p.ops, "PURCHASESYNC_ADMIN_TOKEN": e2eToken}, args...)
}
