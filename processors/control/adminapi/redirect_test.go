package adminapi_test

import (
	"context"
	"net/http"
	"net/http/httptest"
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
	c, err := adminapi.New(cfg, adminapi.Tokens{shop: token}, nil, nil)
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
