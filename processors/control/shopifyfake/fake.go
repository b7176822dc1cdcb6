// Package shopifyfake is a fake Shopify Admin GraphQL API for tests: an
// httptest server answering the documented shapes of the operations the
// control plane uses, with Shopify's behaviours that matter to a client:
//
//   - POST /{shop}/admin/api/{version}/graphql.json (the shop is in the path
//     instead of the host; point the client's URL template at URL());
//   - X-Shopify-Access-Token checked per shop: 401 with Shopify's string
//     "errors" body when wrong, 404 {"errors":"Not Found"} for an unknown shop;
//   - currentAppInstallation { accessScopes { handle } };
//   - webhookSubscriptions(first, after, topics) with cursor pagination;
//   - webhookSubscriptionCreate / webhookSubscriptionDelete with userErrors
//     (non-HTTPS address, address already taken for the topic, missing
//     read_orders for order topics, unknown id);
//   - orders(first, after, query: "created_at:>='…' AND created_at:<='…'",
//     sortKey: CREATED_AT) and order(id) { lineItems(first, after) }, with
//     pageInfo { hasNextPage endCursor } and ACCESS_DENIED without read_orders;
//   - the calculated-cost leaky bucket: every answer carries
//     extensions.cost.throttleStatus; a query whose requested cost exceeds
//     what is available gets Shopify's THROTTLED error and no data; one above
//     the single-query maximum gets MAX_COST_EXCEEDED;
//   - injected HTTP failures (FailNext) for retry tests;
//   - OAuth (oauth.go): GET /{shop}/admin/oauth/authorize acting as the
//     merchant who approves, POST /{shop}/admin/oauth/access_token with the
//     authorization-code and token-exchange grants, revocation, session
//     tokens, and signed app/uninstalled deliveries.
//
// It is not a GraphQL engine: it dispatches on the operation's root field,
// reads arguments from variables (as the client sends them), builds whole
// objects, and answers with what the document selects of them (aliases and
// fragments followed). It shares no code with the client, so it checks the
// client rather than mirrors it; Start (or CheckSchemas) also checks both
// against Shopify's published schema of the requested version (check.go).
package shopifyfake

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"purchasesync/schemas"
)

// Money is an amount in shop and presentment currency; an empty
// Presentment means the same as Shop.
type Money struct {
	Shop, Presentment string
}

// LineItem is one order line.
type LineItem struct {
	ProductID, VariantID uint64
	SKU, Title           string
	Quantity             int
	Price                Money // unit price
}

// Customer is an order's customer.
type Customer struct {
	ID                         uint64
	Email, FirstName, LastName string
}

// Address is a shipping address.
type Address struct {
	FirstName, LastName, Address1, Address2, City, Province, Zip, Country string
}

// Order is a shop's order. Zero ID, Number, Name and CreatedAt are filled
// in by AddOrder.
type Order struct {
	ID                            uint64
	Number                        int
	Name                          string
	Email                         string
	CreatedAt                     time.Time
	Test                          bool
	Currency, PresentmentCurrency string
	Subtotal, Tax, Discounts      Money
	Shipping                      Money
	DiscountCodes                 []string
	LineItems                     []LineItem
	ShippingAddress               *Address
	Customer                      *Customer
	// Compared sets compared fields by schemas.ComparedFields name, at
	// their GraphQL paths, over what the fields above say; a compared field
	// the fake has no field for is null unless set here.
	Compared map[string]string
}

// Subscription is a webhook subscription.
type Subscription struct {
	ID, Topic, URI, Format string
	CreatedAt              time.Time
}

type shop struct {
	domain, token string
	scopes        []string
	// uninstalled: the app was removed (Uninstall); only a new grant
	// (authorization code) installs it again.
	uninstalled bool
	subs        []Subscription
	orders      []Order
	nextNumber  int
	// leaky bucket
	max, avail, rate float64
	at               time.Time
}

// Server is the fake. Its methods are safe for concurrent use.
type Server struct {
	srv *httptest.Server

	mu       sync.Mutex
	shops    map[string]*shop
	nextID   uint64
	failures []int
	calls    map[string]int
	// MaxQueryCost is Shopify's single-query limit.
	maxQueryCost float64

	chk checker
	// The app (SetApp, SetAppURL) and its outstanding authorization codes
	// (oauth.go).
	apiKey, apiSecret string
	appURL            string
	codes             map[string]*authCode
}

// New starts a fake; Close it when done.
func New() *Server {
	s := &Server{shops: map[string]*shop{}, nextID: 5_000_000_000_000, calls: map[string]int{}, maxQueryCost: 1000}
	s.codes = map[string]*authCode{}
	s.srv = httptest.NewServer(http.HandlerFunc(s.route))
	return s
}

// Close stops the server.
func (s *Server) Close() { s.srv.Close() }

// URL is the endpoint template for the client ({shop}, {version}).
func (s *Server) URL() string { return s.srv.URL + "/{shop}/admin/api/{version}/graphql.json" }

// AddShop installs the app on a shop with a token and granted scopes. The
// bucket starts full at 1000 points, restoring 50 points/s (Shopify's
// long-standing figures for a standard shop).
func (s *Server) AddShop(domain, token string, scopes ...string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.shops[domain] = &shop{domain: domain, token: token, scopes: scopes, nextNumber: 1001, max: 1000, avail: 1000, rate: 50, at: time.Now()}
}

func (s *Server) shop(domain string) *shop {
	sh, ok := s.shops[domain]
	if !ok {
		panic("shopifyfake: unknown shop " + domain)
	}
	return sh
}

// SetScopes replaces the granted scopes (the merchant re-granted).
func (s *Server) SetScopes(domain string, scopes ...string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.shop(domain).scopes = scopes
}

// SetThrottle sets the bucket size, restore rate (points/s) and current level.
func (s *Server) SetThrottle(domain string, max, restore, available float64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	sh := s.shop(domain)
	sh.max, sh.rate, sh.avail, sh.at = max, restore, available, time.Now()
}

// AddOrder adds an order and returns it with its ids filled in.
func (s *Server) AddOrder(domain string, o Order) Order {
	s.mu.Lock()
	defer s.mu.Unlock()
	sh := s.shop(domain)
	if o.ID == 0 {
		s.nextID++
		o.ID = s.nextID
	}
	if o.Number == 0 {
		o.Number = sh.nextNumber
	}
	if o.Number >= sh.nextNumber {
		sh.nextNumber = o.Number + 1
	}
	if o.Name == "" {
		o.Name = "#" + strconv.Itoa(o.Number)
	}
	if o.CreatedAt.IsZero() {
		o.CreatedAt = time.Now()
	}
	o.CreatedAt = o.CreatedAt.UTC().Truncate(time.Second)
	if o.Currency == "" {
		o.Currency = "USD"
	}
	if o.PresentmentCurrency == "" {
		o.PresentmentCurrency = o.Currency
	}
	sh.orders = append(sh.orders, o)
	return o
}

// Subscriptions returns a shop's webhook subscriptions.
func (s *Server) Subscriptions(domain string) []Subscription {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Subscription(nil), s.shop(domain).subs...)
}

// AddSubscription creates a subscription directly (e.g. a duplicate left
// by an earlier tool).
func (s *Server) AddSubscription(domain, topic, uri string) Subscription {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.addSub(s.shop(domain), topic, uri)
}

func (s *Server) addSub(sh *shop, topic, uri string) Subscription {
	s.nextID++
	sub := Subscription{ID: fmt.Sprintf("gid://shopify/WebhookSubscription/%d", s.nextID), Topic: topic, URI: uri, Format: "JSON", CreatedAt: time.Now().UTC()}
	sh.subs = append(sh.subs, sub)
	return sub
}

// RemoveSubscription deletes a subscription behind the app's back, as
// Shopify does after repeated failed deliveries.
func (s *Server) RemoveSubscription(domain, id string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.removeSub(s.shop(domain), id)
}

func (s *Server) removeSub(sh *shop, id string) bool {
	for i, sub := range sh.subs {
		if sub.ID == id {
			sh.subs = append(sh.subs[:i], sh.subs[i+1:]...)
			return true
		}
	}
	return false
}

// FailNext makes the next n requests answer HTTP status (e.g. 502).
func (s *Server) FailNext(n, status int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for range n {
		s.failures = append(s.failures, status)
	}
}

// Calls counts requests by root field ("orders", "webhookSubscriptionCreate",
// ...) and by outcome: "throttled", "failed" (injected), "unauthorized".
func (s *Server) Calls(name string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.calls[name]
}

var (
	pathRE    = regexp.MustCompile(`^/([a-z0-9][a-z0-9.-]*)/admin/api/(\d{4}-\d{2}|unstable)/graphql\.json$`)
	rootRE    = regexp.MustCompile(`^\s*([A-Za-z_][A-Za-z0-9_]*)`)
	uriSelRE  = regexp.MustCompile(`\buri\b`)
	createdRE = regexp.MustCompile(`created_at:(>=|<=|>|<)'?([0-9T:.Z+-]+)'?`)
)

type gqlErr struct {
	Message    string         `json:"message"`
	Path       []any          `json:"path,omitempty"`
	Extensions map[string]any `json:"extensions,omitempty"`
}

type userErr struct {
	Field   []string `json:"field"`
	Message string   `json:"message"`
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(code)
	json.NewEncoder(w).Encode(v)
}

func (s *Server) serve(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.failures) > 0 {
		code := s.failures[0]
		s.failures = s.failures[1:]
		s.calls["failed"]++
		w.Header().Set("Content-Type", "text/html")
		w.WriteHeader(code)
		io.WriteString(w, "<html><body>upstream trouble</body></html>")
		return
	}
	m := pathRE.FindStringSubmatch(r.URL.Path)
	if r.Method != http.MethodPost || m == nil {
		writeJSON(w, http.StatusNotFound, map[string]any{"errors": "Not Found"})
		return
	}
	sh, ok := s.shops[m[1]]
	if !ok {
		writeJSON(w, http.StatusNotFound, map[string]any{"errors": "Not Found"})
		return
	}
	version := m[2]
	if tok := r.Header.Get("X-Shopify-Access-Token"); tok == "" || tok != sh.token {
		s.calls["unauthorized"]++
		writeJSON(w, http.StatusUnauthorized, map[string]any{"errors": "[API] Invalid API key or access token (unrecognized login or wrong password)"})
		return
	}
	if !strings.HasPrefix(r.Header.Get("Content-Type"), "application/json") {
		writeJSON(w, http.StatusUnsupportedMediaType, map[string]any{"errors": "Content-Type must be application/json"})
		return
	}
	var req struct {
		Query     string         `json:"query"`
		Variables map[string]any `json:"variables"`
	}
	if err := json.NewDecoder(r.Body).Decode(&req); err != nil || req.Query == "" {
		writeJSON(w, http.StatusBadRequest, map[string]any{"errors": map[string]string{"query": "Required parameter missing or invalid"}})
		return
	}
	doc, op, err := parseDocument(req.Query)
	if err != nil {
		writeJSON(w, http.StatusOK, map[string]any{"errors": []gqlErr{{Message: err.Error()}}})
		return
	}
	brace := strings.IndexByte(req.Query, '{')
	var root string
	if brace >= 0 {
		if mm := rootRE.FindStringSubmatch(req.Query[brace+1:]); mm != nil {
			root = mm[1]
		}
	}
	s.calls[root]++
	if version < "2025-04" && version != "unstable" && uriSelRE.MatchString(req.Query) {
		writeJSON(w, http.StatusOK, map[string]any{"errors": []gqlErr{{Message: "Field 'uri' doesn't exist on type 'WebhookSubscription'", Extensions: map[string]any{"code": "undefinedField"}}}})
		return
	}
	vars := req.Variables
	if vars == nil {
		vars = map[string]any{}
	}

	requested, err := requestedCost(root, vars, strings.Contains(req.Query, "lineItems"))
	if err != nil {
		writeJSON(w, http.StatusOK, map[string]any{"errors": []gqlErr{{Message: err.Error()}}})
		return
	}
	if requested > s.maxQueryCost {
		writeJSON(w, http.StatusOK, map[string]any{"errors": []gqlErr{{
			Message:    fmt.Sprintf("Query cost is %d, which exceeds the single query max cost limit (%d).", int(requested), int(s.maxQueryCost)),
			Extensions: map[string]any{"code": "MAX_COST_EXCEEDED", "cost": requested, "maxCost": s.maxQueryCost},
		}}})
		return
	}
	now := time.Now()
	sh.avail = min(sh.max, sh.avail+sh.rate*now.Sub(sh.at).Seconds())
	sh.at = now
	if requested > sh.avail {
		s.calls["throttled"]++
		writeJSON(w, http.StatusOK, map[string]any{
			"errors":     []gqlErr{{Message: "Throttled", Extensions: map[string]any{"code": "THROTTLED", "documentation": "https://shopify.dev/api/usage/rate-limits"}}},
			"extensions": map[string]any{"cost": cost(sh, requested, nil)},
		})
		return
	}
	sh.avail -= requested

	data, actual, errs := s.execute(sh, root, vars)
	if actual > requested {
		actual = requested
	}
	sh.avail = min(sh.max, sh.avail+requested-actual) // unused points come back
	out := map[string]any{"extensions": map[string]any{"cost": cost(sh, requested, &actual)}}
	if data != nil {
		out["data"] = project(doc, op, vars, data)
	} else if len(errs) > 0 && errs[0].Path != nil {
		out["data"] = nil // an execution error (with a path) nulled it
	}
	if len(errs) > 0 {
		out["errors"] = errs
	}
	writeJSON(w, http.StatusOK, out)
}

func cost(sh *shop, requested float64, actual *float64) map[string]any {
	c := map[string]any{
		"requestedQueryCost": requested,
		"actualQueryCost":    nil,
		"throttleStatus": map[string]any{
			"maximumAvailable":   sh.max,
			"currentlyAvailable": int(sh.avail),
			"restoreRate":        sh.rate,
		},
	}
	if actual != nil {
		c["actualQueryCost"] = *actual
	}
	return c
}

// Costs follow Shopify's rules in shape: an object costs 1, a connection 2
// plus first × its node's cost, a mutation 10.
const orderNodeCost = 17 // order, 4 money bags of 3, address, customer, lineItems connection

func lineCost(n float64) float64 { return n * 6 } // line, product, variant, price bag of 3

func requestedCost(root string, vars map[string]any, withLines bool) (float64, error) {
	switch root {
	case "currentAppInstallation":
		return 2, nil
	case "webhookSubscriptions":
		first, err := intVar(vars, "first", true)
		return 2 + float64(first), err
	case "webhookSubscriptionCreate", "webhookSubscriptionDelete":
		return 10, nil
	case "orders":
		first, err := intVar(vars, "first", true)
		if err != nil || !withLines {
			return 2 + float64(first), err // scalars only: one point per order
		}
		li, err := intVar(vars, "lineItems", true)
		return 2 + float64(first)*(orderNodeCost+lineCost(float64(li))), err
	case "order":
		li, err := intVar(vars, "lineItems", true)
		return orderNodeCost + lineCost(float64(li)), err
	}
	return 0, fmt.Errorf("Field '%s' doesn't exist on type 'QueryRoot'", root)
}

func intVar(vars map[string]any, name string, required bool) (int, error) {
	v, ok := vars[name]
	if !ok || v == nil {
		if required {
			return 0, fmt.Errorf("Variable $%s of type Int! was provided invalid value", name)
		}
		return 0, nil
	}
	f, ok := v.(float64)
	if !ok || f < 0 || f != float64(int(f)) {
		return 0, fmt.Errorf("Variable $%s of type Int! was provided invalid value", name)
	}
	if f > 250 {
		return 0, fmt.Errorf("The first argument cannot exceed 250.")
	}
	return int(f), nil
}

func stringVar(vars map[string]any, name string) string {
	s, _ := vars[name].(string)
	return s
}

func (sh *shop) hasScope(h string) bool {
	for _, s := range sh.scopes {
		if s == h || s == "write_"+strings.TrimPrefix(h, "read_") {
			return true
		}
	}
	return false
}

// validTopics maps the WebhookSubscriptionTopic enum values the fake
// accepts to their X-Shopify-Topic spelling: every topic of
// schemas.WebhookTopics that has one, plus two the pipeline does not
// consume (for tests of subscriptions it did not make).
var validTopics = func() map[string]string {
	m := map[string]string{"ORDERS_UPDATED": "orders/updated", "CUSTOMERS_CREATE": "customers/create"}
	for _, t := range schemas.WebhookTopics {
		if t.GraphQL != "" {
			m[t.GraphQL] = t.Name
		}
	}
	return m
}()

// execute runs one operation; the shop is locked.
func (s *Server) execute(sh *shop, root string, vars map[string]any) (data map[string]any, actual float64, errs []gqlErr) {
	switch root {
	case "currentAppInstallation":
		scopes := []map[string]string{}
		for _, h := range sh.scopes {
			scopes = append(scopes, map[string]string{"handle": h})
		}
		return map[string]any{"currentAppInstallation": map[string]any{"accessScopes": scopes}}, 2, nil

	case "webhookSubscriptions":
		first, _ := intVar(vars, "first", true)
		want := map[string]bool{}
		if ts, ok := vars["topics"].([]any); ok {
			for _, t := range ts {
				ts, _ := t.(string)
				if _, ok := validTopics[ts]; !ok {
					return nil, 0, []gqlErr{{Message: fmt.Sprintf("Variable $topics of type [WebhookSubscriptionTopic!] was provided invalid value for %v", t)}}
				}
				want[ts] = true
			}
		}
		var all []Subscription
		for _, sub := range sh.subs {
			if len(want) == 0 || want[sub.Topic] {
				all = append(all, sub)
			}
		}
		sort.Slice(all, func(i, j int) bool { return all[i].ID < all[j].ID })
		after := stringVar(vars, "after")
		start := 0
		if after != "" {
			id, err := base64.StdEncoding.DecodeString(after)
			if err != nil {
				return nil, 0, []gqlErr{{Message: "Invalid cursor for current pagination"}}
			}
			start = sort.Search(len(all), func(i int) bool { return all[i].ID > string(id) })
		}
		end := min(len(all), start+first)
		nodes := []map[string]any{}
		for _, sub := range all[start:end] {
			nodes = append(nodes, map[string]any{
				"id": sub.ID, "topic": sub.Topic, "uri": sub.URI, "callbackUrl": sub.URI,
				"format": sub.Format, "createdAt": sub.CreatedAt.Format(time.RFC3339),
			})
		}
		pi := map[string]any{"hasNextPage": end < len(all), "endCursor": nil}
		if end > start {
			pi["endCursor"] = base64.StdEncoding.EncodeToString([]byte(all[end-1].ID))
		}
		return map[string]any{"webhookSubscriptions": map[string]any{"nodes": nodes, "pageInfo": pi}}, 2 + float64(len(nodes)), nil

	case "webhookSubscriptionCreate":
		topic := stringVar(vars, "topic")
		wire, ok := validTopics[topic]
		if !ok {
			return nil, 0, []gqlErr{{Message: "Variable $topic of type WebhookSubscriptionTopic! was provided invalid value"}}
		}
		in, _ := vars["webhookSubscription"].(map[string]any)
		uri, _ := in["uri"].(string)
		field := "uri"
		if uri == "" {
			uri, _ = in["callbackUrl"].(string)
			field = "callbackUrl"
		}
		ue := func(f, msg string) (map[string]any, float64, []gqlErr) {
			return map[string]any{"webhookSubscriptionCreate": map[string]any{
				"webhookSubscription": nil,
				"userErrors":          []userErr{{Field: []string{"webhookSubscription", f}, Message: msg}},
			}}, 10, nil
		}
		switch {
		case uri == "":
			return ue(field, "Address can't be blank")
		case !strings.HasPrefix(uri, "https://"):
			proto, _, _ := strings.Cut(uri, "://")
			return ue(field, fmt.Sprintf("Address protocol %s:// is not supported", proto))
		case (strings.HasPrefix(wire, "orders/") || strings.HasPrefix(wire, "refunds/")) && !sh.hasScope("read_orders"):
			return ue("topic", fmt.Sprintf("You do not have permission to create or update webhooks with %s topic. This topic requires the read_orders access scope.", wire))
		}
		for _, sub := range sh.subs {
			if sub.Topic == topic && sub.URI == uri {
				return ue(field, "Address for this topic has already been taken")
			}
		}
		sub := s.addSub(sh, topic, uri)
		return map[string]any{"webhookSubscriptionCreate": map[string]any{
			"webhookSubscription": map[string]any{"id": sub.ID, "topic": sub.Topic, "uri": sub.URI, "callbackUrl": sub.URI, "format": sub.Format},
			"userErrors":          []userErr{},
		}}, 10, nil

	case "webhookSubscriptionDelete":
		id := stringVar(vars, "id")
		if !strings.HasPrefix(id, "gid://shopify/WebhookSubscription/") {
			return nil, 0, []gqlErr{{Message: fmt.Sprintf("Invalid global id '%s'", id), Extensions: map[string]any{"code": "argumentLiteralsIncompatible"}}}
		}
		if !s.removeSub(sh, id) {
			return map[string]any{"webhookSubscriptionDelete": map[string]any{
				"deletedWebhookSubscriptionId": nil,
				"userErrors":                   []userErr{{Field: []string{"id"}, Message: "Webhook subscription does not exist"}},
			}}, 10, nil
		}
		return map[string]any{"webhookSubscriptionDelete": map[string]any{"deletedWebhookSubscriptionId": id, "userErrors": []userErr{}}}, 10, nil

	case "orders":
		if !sh.hasScope("read_orders") {
			// orders is non-null (OrderConnection!): its null propagates
			// to data, which is null.
			return nil, 1, []gqlErr{{
				Message:    "Access denied for orders field. Required access: `read_orders` access scope.",
				Path:       []any{"orders"},
				Extensions: map[string]any{"code": "ACCESS_DENIED", "documentation": "https://shopify.dev/api/usage/access-scopes"},
			}}
		}
		first, _ := intVar(vars, "first", true)
		li, _ := intVar(vars, "lineItems", false)
		from, to, err := parseCreated(stringVar(vars, "query"))
		if err != nil {
			return nil, 0, []gqlErr{{Message: err.Error()}}
		}
		var all []Order
		for _, o := range sh.orders {
			if (from.IsZero() || !o.CreatedAt.Before(from)) && (to.IsZero() || !o.CreatedAt.After(to)) {
				all = append(all, o)
			}
		}
		sort.Slice(all, func(i, j int) bool { return orderKey(all[i]) < orderKey(all[j]) })
		start := 0
		if after := stringVar(vars, "after"); after != "" {
			k, err := base64.StdEncoding.DecodeString(after)
			if err != nil {
				return nil, 0, []gqlErr{{Message: "Invalid cursor for current pagination"}}
			}
			start = sort.Search(len(all), func(i int) bool { return orderKey(all[i]) > string(k) })
		}
		end := min(len(all), start+first)
		nodes := []map[string]any{}
		actual := 2.0
		for _, o := range all[start:end] {
			n, lines := orderNode(o, li, "")
			nodes = append(nodes, n)
			if li > 0 {
				actual += orderNodeCost + lineCost(float64(lines))
			} else {
				actual++
			}
		}
		pi := map[string]any{"hasNextPage": end < len(all), "endCursor": nil}
		if end > start {
			pi["endCursor"] = base64.StdEncoding.EncodeToString([]byte(orderKey(all[end-1])))
		}
		return map[string]any{"orders": map[string]any{"nodes": nodes, "pageInfo": pi}}, actual, nil

	case "order":
		if !sh.hasScope("read_orders") {
			return map[string]any{"order": nil}, 1, []gqlErr{{Message: "Access denied for order field. Required access: `read_orders` access scope.", Path: []any{"order"}, Extensions: map[string]any{"code": "ACCESS_DENIED"}}}
		}
		id := stringVar(vars, "id")
		li, _ := intVar(vars, "lineItems", true)
		for _, o := range sh.orders {
			if fmt.Sprintf("gid://shopify/Order/%d", o.ID) == id {
				node, n := orderNode(o, li, stringVar(vars, "after"))
				return map[string]any{"order": node}, orderNodeCost + lineCost(float64(n)), nil
			}
		}
		return map[string]any{"order": nil}, 1, nil
	}
	return nil, 0, []gqlErr{{Message: "unsupported"}}
}

func orderKey(o Order) string {
	return fmt.Sprintf("%020d/%020d", o.CreatedAt.UnixNano(), o.ID)
}

func parseCreated(q string) (from, to time.Time, err error) {
	for _, m := range createdRE.FindAllStringSubmatch(q, -1) {
		t, perr := time.Parse(time.RFC3339, m[2])
		if perr != nil {
			return from, to, fmt.Errorf("invalid created_at in search query: %q", m[2])
		}
		switch m[1] {
		case ">=":
			from = t
		case ">":
			from = t.Add(time.Second) // timestamps have second precision
		case "<=":
			to = t
		case "<":
			to = t.Add(-time.Second)
		}
	}
	return from, to, nil
}

func bag(m Money, shopCur, presCur string) any {
	if m.Shop == "" && m.Presentment == "" {
		m.Shop = "0.00"
	}
	p := m.Presentment
	if p == "" {
		p = m.Shop
	}
	return map[string]any{
		"shopMoney":        map[string]any{"amount": m.Shop, "currencyCode": shopCur},
		"presentmentMoney": map[string]any{"amount": p, "currencyCode": presCur},
	}
}

func nullable(s string) any {
	if s == "" {
		return nil
	}
	return s
}

func orderNode(o Order, li int, after string) (map[string]any, int) {
	conn, n := lineItems(o, li, after)
	node := map[string]any{
		"id":                      fmt.Sprintf("gid://shopify/Order/%d", o.ID),
		"legacyResourceId":        strconv.FormatUint(o.ID, 10), // UnsignedInt64 is a string
		"name":                    o.Name,
		"number":                  o.Number,
		"email":                   nullable(o.Email),
		"createdAt":               o.CreatedAt.Format(time.RFC3339),
		"test":                    o.Test,
		"currencyCode":            o.Currency,
		"presentmentCurrencyCode": o.PresentmentCurrency,
		"subtotalPriceSet":        bag(o.Subtotal, o.Currency, o.PresentmentCurrency),
		"totalTaxSet":             bag(o.Tax, o.Currency, o.PresentmentCurrency),
		"totalDiscountsSet":       bag(o.Discounts, o.Currency, o.PresentmentCurrency),
		"totalShippingPriceSet":   bag(o.Shipping, o.Currency, o.PresentmentCurrency),
		"discountCodes":           append([]string{}, o.DiscountCodes...),
		"shippingAddress":         nil,
		"customer":                nil,
		"lineItems":               conn,
	}
	if a := o.ShippingAddress; a != nil {
		node["shippingAddress"] = map[string]any{
			"firstName": nullable(a.FirstName), "lastName": nullable(a.LastName), "address1": nullable(a.Address1),
			"address2": nullable(a.Address2), "city": nullable(a.City), "province": nullable(a.Province),
			"zip": nullable(a.Zip), "country": nullable(a.Country),
		}
	}
	if c := o.Customer; c != nil {
		node["customer"] = map[string]any{
			"legacyResourceId": strconv.FormatUint(c.ID, 10), "email": nullable(c.Email),
			"firstName": nullable(c.FirstName), "lastName": nullable(c.LastName),
		}
	}
	for _, f := range schemas.ComparedFields {
		f.GraphQL.Set(node, o.Compared[f.Name]) // "": null where missing
	}
	return node, n
}

func lineItems(o Order, first int, after string) (map[string]any, int) {
	start := 0
	if after != "" {
		if b, err := base64.StdEncoding.DecodeString(after); err == nil {
			if i, err := strconv.Atoi(string(b)); err == nil {
				start = i + 1
			}
		}
	}
	start = min(start, len(o.LineItems))
	end := min(len(o.LineItems), start+first)
	nodes := []map[string]any{}
	for _, l := range o.LineItems[start:end] {
		n := map[string]any{
			"sku": nullable(l.SKU), "title": l.Title, "quantity": l.Quantity,
			"product": nil, "variant": nil,
			"originalUnitPriceSet": bag(l.Price, o.Currency, o.PresentmentCurrency),
		}
		if l.ProductID != 0 {
			n["product"] = map[string]any{"legacyResourceId": strconv.FormatUint(l.ProductID, 10)}
		}
		if l.VariantID != 0 {
			n["variant"] = map[string]any{"legacyResourceId": strconv.FormatUint(l.VariantID, 10)}
		}
		nodes = append(nodes, n)
	}
	pi := map[string]any{"hasNextPage": end < len(o.LineItems), "endCursor": nil}
	if end > start {
		pi["endCursor"] = base64.StdEncoding.EncodeToString([]byte(strconv.Itoa(end - 1)))
	}
	return map[string]any{"nodes": nodes, "pageInfo": pi}, end - start
}
