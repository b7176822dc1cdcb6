package ingest

import (
	"encoding/json"
	"fmt"
	"os"
	"sort"
	"strings"
	"testing"
	"time"
)

// openAPIDoc is the part of openapi.json the test reads.
type openAPIDoc struct {
	OpenAPI string                                `json:"openapi"`
	Paths   map[string]map[string]json.RawMessage `json:"paths"`
}

type operation struct {
	Responses map[string]json.RawMessage `json:"responses"`
}

var httpMethods = []string{"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"}

// documented returns "METHOD path status" for every operation response,
// and the documented methods per path.
func documented(t *testing.T) (ops map[string]bool, methods map[string][]string) {
	t.Helper()
	b, err := os.ReadFile("openapi.json")
	if err != nil {
		t.Fatal(err)
	}
	var doc openAPIDoc
	if err := json.Unmarshal(b, &doc); err != nil {
		t.Fatalf("openapi.json: %v", err)
	}
	if !strings.HasPrefix(doc.OpenAPI, "3.") {
		t.Fatalf("openapi.json declares version %q, want 3.x", doc.OpenAPI)
	}
	ops, methods = map[string]bool{}, map[string][]string{}
	for path, item := range doc.Paths {
		for m, raw := range item {
			if m == "parameters" || m == "summary" || m == "description" {
				continue
			}
			var op operation
			if err := json.Unmarshal(raw, &op); err != nil {
				t.Fatalf("%s %s: %v", m, path, err)
			}
			if len(op.Responses) == 0 {
				t.Errorf("%s %s documents no response", m, path)
			}
			methods[path] = append(methods[path], strings.ToUpper(m))
			for code := range op.Responses {
				ops[strings.ToUpper(m)+" "+path+" "+code] = true
			}
		}
	}
	return ops, methods
}

// TestOpenAPI checks openapi.json against the handler: each documented
// response has a scenario here that makes the handler give it, each
// scenario's response is documented, every undocumented method of a
// documented path gets 405, and undocumented paths get 404.
func TestOpenAPI(t *testing.T) {
	ops, methods := documented(t)
	e := startInproc(t, func(c *Config) { c.IPRate, c.IPBurst = 1, 1 })
	notReady := startInproc(t, nil)
	notReady.sites.SetReady(false)

	event := []byte(`{"purchase":{"order_number":"100011","subtotal":"23.97"},"customer":{"email":"a@b.example"}}`)
	order := []byte(`{"id":820982911946154508}`)
	origin := func(q req, o string) req { q.headers = map[string]string{"Origin": o}; return q }
	n := 0
	from := func() string { n++; return fmt.Sprintf("198.51.100.%d", n) } // one bucket per scenario
	raw := func(env *inproc, path string, n int) int { return env.partial(t, path, n) }
	slow := func(env *inproc, path string) int { return raw(env, path, 100) }
	const wh, sf = "/webhooks/shopify", "/v1/sites/{site}/purchases"
	scenarios := []struct {
		op  string // "METHOD path status"
		run func() int
	}{
		{"POST " + wh + " 200", func() int { return e.do(t, webhook("orders/create", "acme.myshopify.com", order)).code }},
		{"POST " + wh + " 401", func() int {
			q := webhook("orders/create", "acme.myshopify.com", order)
			q.headers["X-Shopify-Hmac-Sha256"] = "AAAA"
			return e.do(t, q).code
		}},
		{"POST " + wh + " 408", func() int { return slow(e, wh) }},
		{"POST " + wh + " 413", func() int { return raw(e, wh, MaxRecordBodyBytes+1) }},
		{"POST " + wh + " 503", func() int { return notReady.do(t, webhook("orders/create", "acme.myshopify.com", order)).code }},

		{"POST " + sf + " 202", func() int { q := storefrontReq("acme", event); q.from = from(); return e.do(t, q).code }},
		{"POST " + sf + " 400", func() int { q := storefrontReq("acme", []byte(`{}`)); q.from = from(); return e.do(t, q).code }},
		{"POST " + sf + " 404", func() int { q := storefrontReq("nosuch", event); q.from = from(); return e.do(t, q).code }},
		{"POST " + sf + " 408", func() int { return slow(e, "/v1/sites/acme/purchases") }},
		{"POST " + sf + " 413", func() int { return raw(e, "/v1/sites/acme/purchases", 64<<10+1) }},
		{"POST " + sf + " 415", func() int {
			q := storefrontReq("acme", event)
			q.headers["Content-Type"] = "text/plain"
			q.from = from()
			return e.do(t, q).code
		}},
		{"POST " + sf + " 429", func() int {
			q := storefrontReq("acme", event)
			q.from = from()
			e.do(t, q)
			return e.do(t, q).code
		}},
		{"POST " + sf + " 503", func() int { return notReady.do(t, storefrontReq("acme", event)).code }},
		{"OPTIONS " + sf + " 204", func() int {
			return e.do(t, origin(req{method: "OPTIONS", path: "/v1/sites/acme/purchases", from: from()}, "https://acme.myshopify.com")).code
		}},
		{"OPTIONS " + sf + " 403", func() int {
			return e.do(t, origin(req{method: "OPTIONS", path: "/v1/sites/acme/purchases", from: from()}, "https://evil.example")).code
		}},
		{"OPTIONS " + sf + " 404", func() int {
			return e.do(t, origin(req{method: "OPTIONS", path: "/v1/sites/nosuch/purchases", from: from()}, "https://acme.myshopify.com")).code
		}},
		{"OPTIONS " + sf + " 429", func() int {
			q := origin(req{method: "OPTIONS", path: "/v1/sites/acme/purchases", from: from()}, "https://acme.myshopify.com")
			for range 5000 { // past the test config's burst of 1000, whatever the refill
				if code := e.do(t, q).code; code != 204 {
					return code
				}
			}
			return 204
		}},
		{"OPTIONS " + sf + " 503", func() int {
			return notReady.do(t, origin(req{method: "OPTIONS", path: "/v1/sites/acme/purchases"}, "https://acme.myshopify.com")).code
		}},
		{"GET /healthz 200", func() int { return e.do(t, req{method: "GET", path: "/healthz"}).code }},
		{"GET /readyz 200", func() int { return e.do(t, req{method: "GET", path: "/readyz"}).code }},
		{"GET /readyz 503", func() int { return notReady.do(t, req{method: "GET", path: "/readyz"}).code }},
	}
	waitFor(t, 3*time.Second, "readyz", func() bool { return e.do(t, req{method: "GET", path: "/readyz"}).code == 200 })
	covered := map[string]bool{}
	for _, s := range scenarios {
		covered[s.op] = true
		if !ops[s.op] {
			t.Errorf("the handler answers %q, which openapi.json does not document", s.op)
		}
		f := strings.Fields(s.op)
		if got := s.run(); fmt.Sprint(got) != f[2] {
			t.Errorf("%s %s: handler answered %d, openapi.json documents %s", f[0], f[1], got, f[2])
		}
	}
	for op := range ops {
		if !covered[op] {
			t.Errorf("openapi.json documents %q, but no scenario shows the handler giving it", op)
		}
	}

	// Methods: exactly the documented ones are served on each path.
	for path, ms := range methods {
		concrete := strings.ReplaceAll(path, "{site}", "acme")
		sort.Strings(ms)
		for _, m := range httpMethods {
			documentedMethod := false
			for _, d := range ms {
				documentedMethod = documentedMethod || d == m
			}
			r := e.do(t, req{method: m, path: concrete, from: from(), headers: map[string]string{"Origin": "https://acme.myshopify.com"}})
			if documentedMethod == (r.code == 405) {
				t.Errorf("%s %s: answered %d; documented methods are %v", m, path, r.code, ms)
			}
			if r.code == 405 && r.headers["Allow"] != strings.Join(allowOrder(ms), ", ") {
				t.Errorf("%s %s: Allow %q, want the documented %v", m, path, r.headers["Allow"], ms)
			}
		}
	}
	// Paths: anything undocumented is 404.
	for _, p := range []string{"/", "/webhooks", "/webhooks/shopify/x", "/v1/sites/acme", "/v1/sites/acme/purchases/1", "/metrics", "/admin/v1/sites"} {
		if r := e.do(t, req{method: "GET", path: p}); r.code != 404 {
			t.Errorf("GET %s: %d, want 404 for an undocumented path", p, r.code)
		}
	}
}

// allowOrder orders methods as the handler's Allow header lists them
// (POST before OPTIONS, as in the route switch).
func allowOrder(ms []string) []string {
	out := append([]string(nil), ms...)
	sort.Slice(out, func(i, j int) bool { return methodRank(out[i]) < methodRank(out[j]) })
	return out
}

func methodRank(m string) int {
	for i, x := range []string{"GET", "POST", "OPTIONS"} {
		if m == x {
			return i
		}
	}
	return 99
}
