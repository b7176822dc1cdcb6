// Package registrartest is a fake Talkable-compatible purchase registry
// for tests: the registrar's own, and the end-to-end tests that run the
// whole pipeline against it.
package registrartest

import (
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"strings"
	"sync"
)

// Talkable is a faithful fake of POST /api/v2/origins: bearer auth, the
// documented envelope, 201 with the created origin, 422 for an invalid or
// repeated origin. It can be told to answer a status for the next requests
// or always for one order number.
type Talkable struct {
	Mu       sync.Mutex // guards the fields below; hold it to read them
	key      string
	Origins  map[string]map[string]any // site/order → data
	Attempts map[string]int            // site/order → requests
	Next     []int                     // statuses to answer first
	Always   map[string]int            // order number → status
	Refunds  map[string]int            // site/order → refund requests
	Bodies   []string
}

// New returns a fake that accepts the bearer API key key.
func New(key string) *Talkable {
	return &Talkable{key: key, Origins: map[string]map[string]any{}, Attempts: map[string]int{}, Always: map[string]int{}, Refunds: map[string]int{}}
}

// ServeHTTP answers as Talkable's API does.
func (f *Talkable) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	reply := func(code int, v any) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(code)
		_ = json.NewEncoder(w).Encode(v)
	}
	fail := func(code int, msg string) { reply(code, map[string]any{"ok": false, "error_message": msg}) }
	if r.Header.Get("Authorization") != "Bearer "+f.key {
		fail(401, "Invalid API key")
		return
	}
	if r.Header.Get("Content-Type") != "application/json" {
		fail(400, "Content-Type must be application/json")
		return
	}
	raw, _ := io.ReadAll(r.Body)
	if slug, ok := strings.CutSuffix(strings.TrimPrefix(r.URL.EscapedPath(), "/api/v2/origins/"), "/refund"); ok && r.Method == http.MethodPost && slug != r.URL.EscapedPath() {
		// POST /api/v2/origins/<origin_slug>/refund: a Purchase's slug is its
		// order number; marks the origin refunded (again: the same).
		order, err := url.PathUnescape(slug)
		var req struct {
			SiteSlug string `json:"site_slug"`
			Data     struct {
				RefundedAt string `json:"refunded_at"`
			} `json:"data"`
		}
		if err != nil || json.Unmarshal(raw, &req) != nil || req.SiteSlug == "" {
			fail(400, "site_slug is required")
			return
		}
		f.Mu.Lock()
		defer f.Mu.Unlock()
		key := req.SiteSlug + "/" + order
		f.Refunds[key]++
		origin, ok := f.Origins[key]
		if !ok {
			fail(404, "Origin not found")
			return
		}
		origin["refunded_at"] = req.Data.RefundedAt
		reply(200, map[string]any{"ok": true, "result": map[string]any{"origin": map[string]any{"order_number": order, "type": "Purchase", "refunded_at": req.Data.RefundedAt}}})
		return
	}
	if r.Method != http.MethodPost || r.URL.Path != "/api/v2/origins" {
		fail(404, "Not found")
		return
	}
	var req struct {
		SiteSlug string         `json:"site_slug"`
		Type     string         `json:"type"`
		Data     map[string]any `json:"data"`
	}
	if err := json.Unmarshal(raw, &req); err != nil || req.SiteSlug == "" || req.Type != "Purchase" {
		fail(400, "site_slug and type Purchase are required")
		return
	}
	order, _ := req.Data["order_number"].(string)
	if _, ok := req.Data["subtotal"].(float64); !ok || order == "" {
		fail(422, "order_number and a numeric subtotal are required")
		return
	}
	f.Mu.Lock()
	defer f.Mu.Unlock()
	f.Bodies = append(f.Bodies, string(raw))
	key := req.SiteSlug + "/" + order
	f.Attempts[key]++
	if len(f.Next) > 0 {
		code := f.Next[0]
		f.Next = f.Next[1:]
		if code == 429 {
			w.Header().Set("Retry-After", "1")
		}
		fail(code, "Try again later")
		return
	}
	if code := f.Always[order]; code != 0 {
		fail(code, "Validation failed: email is invalid")
		return
	}
	if _, ok := f.Origins[key]; ok {
		fail(422, "Origin with this order number already exists")
		return
	}
	f.Origins[key] = req.Data
	reply(201, map[string]any{"ok": true, "result": map[string]any{
		"origin": map[string]any{"id": len(f.Origins), "order_number": order, "subtotal": req.Data["subtotal"],
			"customer_id": req.Data["customer_id"], "ip_address": req.Data["ip_address"], "type": "Purchase",
			"refunded_at": nil, "coupon_code": req.Data["coupon_code"]},
		"offer": nil}})
}
