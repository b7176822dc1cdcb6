package schemacheck_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"purchasesync/deploy/testenv"
	"purchasesync/processors/control/adminapi"
	"purchasesync/processors/control/shopifyfake/schemacheck"
)

// A small introspection result, enough to test the conversion without the
// published schemas.
const tiny = `{"data":{"__schema":{
 "queryType":{"name":"QueryRoot"},"mutationType":null,"subscriptionType":null,
 "directives":[{"name":"skip","locations":["FIELD"],"args":[],"isRepeatable":false}],
 "types":[
  {"kind":"OBJECT","name":"QueryRoot","interfaces":[],"fields":[
    {"name":"node","args":[{"name":"id","type":{"kind":"NON_NULL","ofType":{"kind":"SCALAR","name":"ID"}},"defaultValue":null}],
     "type":{"kind":"INTERFACE","name":"Node"},"isDeprecated":false},
    {"name":"shop","args":[],"type":{"kind":"NON_NULL","ofType":{"kind":"OBJECT","name":"Shop"}},"isDeprecated":false}]},
  {"kind":"INTERFACE","name":"Node","fields":[{"name":"id","args":[],"type":{"kind":"NON_NULL","ofType":{"kind":"SCALAR","name":"ID"}},"isDeprecated":false}],
   "possibleTypes":[{"name":"Shop"}]},
  {"kind":"OBJECT","name":"Shop","interfaces":[{"name":"Node"}],"fields":[
    {"name":"id","args":[],"type":{"kind":"NON_NULL","ofType":{"kind":"SCALAR","name":"ID"}},"isDeprecated":false},
    {"name":"createdAt","args":[],"type":{"kind":"NON_NULL","ofType":{"kind":"SCALAR","name":"DateTime"}},"isDeprecated":false},
    {"name":"plan","args":[{"name":"format","type":{"kind":"ENUM","name":"Format"},"defaultValue":"JSON"}],"type":{"kind":"ENUM","name":"Format"},
     "isDeprecated":true,"deprecationReason":"Use \"plans\"."}]},
  {"kind":"SCALAR","name":"DateTime"},{"kind":"SCALAR","name":"ID"},
  {"kind":"ENUM","name":"Format","enumValues":[{"name":"JSON","isDeprecated":false},{"name":"XML","isDeprecated":true,"deprecationReason":null}]}
 ]}}}`

func TestIntrospectionToSchema(t *testing.T) {
	s, err := schemacheck.Parse("tiny", []byte(tiny))
	if err != nil {
		t.Fatal(err)
	}
	q := `query($id: ID!) { node(id: $id) { id ... on Shop { createdAt p: plan(format: XML) } } shop { __typename id } }`
	vars := map[string]any{"id": "gid://shopify/Shop/1"}
	if err := schemacheck.ValidateResponse(s, q, vars, []byte(`{"data":{"node":{"id":"gid://shopify/Shop/1","createdAt":"2025-01-02T03:04:05Z","p":"XML"},"shop":{"__typename":"Shop","id":"x"}}}`)); err != nil {
		t.Fatalf("a right answer: %v", err)
	}
	for _, bad := range []string{
		`{"data":{"node":{"id":"1","createdAt":"2025-01-02T03:04:05Z","p":"CSV"},"shop":{"__typename":"Shop","id":"x"}}}`,            // enum
		`{"data":{"node":{"id":"1","createdAt":"2025-01-02T03:04:05Z","p":null},"shop":{"__typename":"Node","id":"x"}}}`,             // __typename
		`{"data":{"node":{"id":"1","createdAt":"yesterday","p":null},"shop":{"__typename":"Shop","id":"x"}}}`,                        // DateTime
		`{"data":{"node":{"id":"1","createdAt":"2025-01-02T03:04:05Z"},"shop":{"__typename":"Shop","id":"x"}}}`,                      // missing (nullable) field
		`{"data":{"node":{"id":"1","createdAt":"2025-01-02T03:04:05Z","p":null},"shop":null}}`,                                       // null non-null
		`{"data":{"node":{"id":"1","createdAt":"2025-01-02T03:04:05Z","p":null,"plan":null},"shop":{"__typename":"Shop","id":"x"}}}`, // unaliased extra
		`{"data":{"node":null,"shop":{"__typename":"Shop","id":"x"}},"cost":1}`,                                                      // top-level key
		`{}`, // neither data nor errors
	} {
		if err := schemacheck.ValidateResponse(s, q, vars, []byte(bad)); err == nil {
			t.Errorf("accepted %s", bad)
		} else {
			t.Logf("rejected: %v", err)
		}
	}
}

func TestTestShPinsTheSamePackage(t *testing.T) {
	b, err := os.ReadFile(filepath.Join(testenv.RepoRoot(), "deploy/local/shopify-schema.sh"))
	if err != nil {
		t.Fatal(err)
	}
	if want := "SHOPIFY_DEV_MCP_VERSION=" + schemacheck.DevMCPVersion; !strings.Contains(string(b), want) {
		t.Errorf("deploy/local/shopify-schema.sh does not pin %s (schemacheck.DevMCPVersion): keep them in step", want)
	}
}

// The client's documents as it sends them, and answers the fake gives.
const (
	ordersDoc = `query OrderRefs($first: Int!, $after: String, $query: String) {
  orders(first: $first, after: $after, query: $query, sortKey: CREATED_AT) {
    nodes { id legacyResourceId name number createdAt }
    pageInfo { hasNextPage endCursor }
  }
}`
	ordersOK = `{"data":{"orders":{"nodes":[{"id":"gid://shopify/Order/1","legacyResourceId":"1","name":"#1001","number":1001,"createdAt":"2025-10-01T12:00:00Z"}],
 "pageInfo":{"hasNextPage":false,"endCursor":"abc"}}},"extensions":{"cost":{"requestedQueryCost":4}}}`
	createDoc = `mutation WebhookSubscriptionCreate($topic: WebhookSubscriptionTopic!, $webhookSubscription: WebhookSubscriptionInput!) {
  webhookSubscriptionCreate(topic: $topic, webhookSubscription: $webhookSubscription) {
    webhookSubscription { id topic uri }
    userErrors { field message }
  }
}`
	createOK = `{"data":{"webhookSubscriptionCreate":{"webhookSubscription":{"id":"gid://shopify/WebhookSubscription/1","topic":"ORDERS_CREATE","uri":"https://h.example.com/w"},"userErrors":[]}}}`
)

// TestBreakageIsCaught breaks documents, variables and answers on purpose:
// each must fail the check against the published schema.
func TestBreakageIsCaught(t *testing.T) {
	t0 := time.Now()
	s := schemacheck.ForTest(t, adminapi.DefaultAPIVersion)
	t.Logf("schema %s loaded in %s", adminapi.DefaultAPIVersion, time.Since(t0))
	ordersVars := map[string]any{"first": 10, "query": "created_at:>='2025-10-01T00:00:00Z'"}
	createVars := map[string]any{"topic": "ORDERS_CREATE", "webhookSubscription": map[string]any{"uri": "https://h.example.com/w", "format": "JSON"}}

	t0 = time.Now()
	if err := schemacheck.ValidateResponse(s, ordersDoc, ordersVars, []byte(ordersOK)); err != nil {
		t.Fatalf("the unbroken orders call: %v", err)
	}
	if err := schemacheck.ValidateResponse(s, createDoc, createVars, []byte(createOK)); err != nil {
		t.Fatalf("the unbroken create call: %v", err)
	}
	t.Logf("two calls validated in %s", time.Since(t0))
	denied := `{"errors":[{"message":"Access denied for orders field.","path":["orders"],"extensions":{"code":"ACCESS_DENIED"}}],"data":null}`
	if err := schemacheck.ValidateResponse(s, ordersDoc, ordersVars, []byte(denied)); err != nil {
		t.Fatalf("ACCESS_DENIED with data null: %v", err)
	}

	docs := []struct{ name, doc, want string }{
		{"misspelled field", strings.Replace(ordersDoc, "legacyResourceId", "legacyResourceID", 1), `Cannot query field "legacyResourceID" on type "Order"`},
		{"unknown argument", strings.Replace(ordersDoc, "sortKey: CREATED_AT", "sortKey: CREATED_AT, order: ASC", 1), `Unknown argument "order"`},
		{"unknown enum literal", strings.Replace(ordersDoc, "CREATED_AT", "CREATED", 1), `CREATED`},
		{"field of another type", strings.Replace(createDoc, "userErrors { field message }", "userErrors { field message code }", 1), `Cannot query field "code" on type "UserError"`},
	}
	for _, c := range docs {
		err := schemacheck.ValidateDocument(s, c.doc, nil)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("document with a %s: %v, want an error containing %q", c.name, err, c.want)
		}
	}

	vars := []struct {
		name string
		doc  string
		vars map[string]any
		want string
	}{
		{"string for Int!", ordersDoc, map[string]any{"first": "10"}, "first"},
		{"missing Int!", ordersDoc, map[string]any{}, "first"},
		{"fraction for Int!", ordersDoc, map[string]any{"first": 2.5}, "first"},
		{"undeclared variable", ordersDoc, map[string]any{"first": 1, "lineItems": 5}, "$lineItems is not declared"},
		{"lower-case enum", createDoc, map[string]any{"topic": "orders_create", "webhookSubscription": map[string]any{"uri": "https://h.example.com/w"}}, `"orders_create" is not a value of enum WebhookSubscriptionTopic`},
		{"unknown enum value", createDoc, map[string]any{"topic": "ORDERS_CREATED", "webhookSubscription": map[string]any{"uri": "https://h.example.com/w"}}, "ORDERS_CREATED"},
		{"unknown input field", createDoc, map[string]any{"topic": "ORDERS_CREATE", "webhookSubscription": map[string]any{"url": "https://h.example.com/w"}}, "url"},
		{"number for a URL", createDoc, map[string]any{"topic": "ORDERS_CREATE", "webhookSubscription": map[string]any{"callbackUrl": 42}}, "callbackUrl"},
	}
	for _, c := range vars {
		err := schemacheck.ValidateDocument(s, c.doc, c.vars)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("variables with a %s: %v, want an error containing %q", c.name, err, c.want)
		}
	}

	answers := []struct{ name, doc, answer, want string }{
		{"missing non-null field", ordersDoc, strings.Replace(ordersOK, `"number":1001,`, "", 1), "data.orders.nodes[0].number: selected but missing"},
		{"null non-null field", ordersDoc, strings.Replace(ordersOK, `"name":"#1001"`, `"name":null`, 1), "data.orders.nodes[0].name: null, but its type String! is non-null"},
		{"null non-null root field", ordersDoc, `{"data":{"orders":null},"errors":[{"message":"denied"}]}`, "data.orders: null"},
		{"string for Int", ordersDoc, strings.Replace(ordersOK, `1001,`, `"1001",`, 1), "Int travels as a JSON number"},
		{"number for UnsignedInt64", ordersDoc, strings.Replace(ordersOK, `"legacyResourceId":"1"`, `"legacyResourceId":1`, 1), "UnsignedInt64 travels as a JSON string"},
		{"number for ID", ordersDoc, strings.Replace(ordersOK, `"id":"gid://shopify/Order/1"`, `"id":1`, 1), "ID travels as a JSON string"},
		{"bad DateTime", ordersDoc, strings.Replace(ordersOK, `2025-10-01T12:00:00Z`, `01/10/2025`, 1), `"01/10/2025" is not a valid DateTime`},
		{"string for Boolean", ordersDoc, strings.Replace(ordersOK, `"hasNextPage":false`, `"hasNextPage":"false"`, 1), "Boolean travels as a JSON boolean"},
		{"unknown enum value", createDoc, strings.Replace(createOK, `ORDERS_CREATE`, `ORDERS_CREATED`, 1), `"ORDERS_CREATED" is not a value of enum WebhookSubscriptionTopic`},
		{"field not selected", createDoc, strings.Replace(createOK, `"uri":`, `"format":"JSON","uri":`, 1), "webhookSubscription.format: not selected"},
		{"object for a list", ordersDoc, strings.Replace(strings.Replace(ordersOK, `"nodes":[`, `"nodes":`, 1), `}],`, `},`, 1), "is a list, got an object"},
		{"no data, no errors", ordersDoc, `{"extensions":{}}`, "no data and no errors"},
		{"errors without a message", ordersDoc, `{"errors":[{"code":"THROTTLED"}]}`, "no message"},
	}
	for _, c := range answers {
		v := ordersVars
		if c.doc == createDoc {
			v = createVars
		}
		err := schemacheck.ValidateResponse(s, c.doc, v, []byte(c.answer))
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("answer with a %s: %v, want an error containing %q", c.name, err, c.want)
		}
	}
}
