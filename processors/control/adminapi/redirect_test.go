package adminapi_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"sync/atomic"
	"testing"

	"purchasesync/processors/control/adminapi"
)

// TestAccessTokenNeverFollowsARedirect: a redirecting answer is an error,
// and the shop's access token never reaches the host it points at (L4 of
// the security review: Go re-sends custom headers on redirects).
func TestAccessTokenNeverFollowsARedirect(t *testing.T) {
	var leaked, hits atomic.Int32
	elsewhere := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		if r.Header.Get("X-Shopify-Access-Token") != "" {
			leaked.Add(1)
		}
	}))
	defer elsewhere.Close()
	shopify := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, elsewhere.URL+"/graphql.json", http.StatusTemporaryRedirect)
	}))
	defer shopify.Close()
	cfg := adminapi.DefaultConfig()
	cfg.URL = shopify.URL + "/{shop}/{version}/graphql.json"
	cfg.MaxAttempts = 1
	c, err := adminapi.New(cfg, adminapi.Deps{Tokens: adminapi.Tokens{shop: token}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.AccessScopes(context.Background(), shop); err == nil {
		t.Error("a redirect was taken for an answer")
	}
	if hits.Load() != 0 || leaked.Load() != 0 {
		t.Errorf("the redirect was followed (%d requests, %d with the access token)", hits.Load(), leaked.Load())
	}
}

// TestTokenFileExposed: a tokens file readable by its group or others is
// reported, so the control plane can warn (L11 of the security review).
func TestTokenFileExposed(t *testing.T) {
	path := filepath.Join(t.TempDir(), "tokens.json")
	if err := os.WriteFile(path, []byte(`{"demo.myshopify.com":"shpat_x"}`), 0o600); err != nil {
		t.Fatal(err)
	}
	f, err := adminapi.NewTokenFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if _, exposed := f.Exposed(); exposed {
		t.Error("a 0600 file reported as exposed")
	}
	if err := os.Chmod(path, 0o644); err != nil {
		t.Fatal(err)
	}
	if mode, exposed := f.Exposed(); !exposed || mode != 0o644 {
		t.Errorf("a 0644 file: %v %v, want exposed 0644", mode, exposed)
	}
}
