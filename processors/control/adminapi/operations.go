package adminapi

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"purchasesync/schemas"
)

// Webhook subscription topics (WebhookSubscriptionTopic enum values, as
// schemas.WebhookTopics has them).
var (
	TopicOrdersCreate  = graphQLTopic(schemas.WebhookOrdersCreate)
	TopicRefundsCreate = graphQLTopic(schemas.WebhookRefundsCreate)
)

func graphQLTopic(name string) string {
	t, _ := schemas.LookupWebhookTopic(name)
	return t.GraphQL
}

// uriField is the WebhookSubscription field holding the endpoint: "uri"
// from 2025-04 on, "callbackUrl" (deprecated since) before.
func (c *Client) uriField() string {
	if c.cfg.APIVersion != "unstable" && c.cfg.APIVersion < "2025-04" {
		return "callbackUrl"
	}
	return "uri"
}

// AccessScopes returns the handles of the scopes the shop granted the app
// ("read_orders", ...).
func (c *Client) AccessScopes(ctx context.Context, shop string) ([]string, error) {
	const q = `query AccessScopes {
  currentAppInstallation {
    accessScopes { handle }
  }
}`
	var data struct {
		CurrentAppInstallation struct {
			AccessScopes []struct {
				Handle string `json:"handle"`
			} `json:"accessScopes"`
		} `json:"currentAppInstallation"`
	}
	if err := c.Do(ctx, shop, "accessScopes", q, nil, &data); err != nil {
		return nil, err
	}
	out := make([]string, 0, len(data.CurrentAppInstallation.AccessScopes))
	for _, s := range data.CurrentAppInstallation.AccessScopes {
		out = append(out, s.Handle)
	}
	return out, nil
}

// WebhookSubscription is the part of Shopify's WebhookSubscription we use.
type WebhookSubscription struct {
	ID    string // gid://shopify/WebhookSubscription/<n>
	Topic string // ORDERS_CREATE
	URI   string
}

type wireSubscription struct {
	ID          string `json:"id"`
	Topic       string `json:"topic"`
	URI         string `json:"uri"`
	CallbackURL string `json:"callbackUrl"`
}

func (w wireSubscription) sub() WebhookSubscription {
	uri := w.URI
	if uri == "" {
		uri = w.CallbackURL
	}
	return WebhookSubscription{ID: w.ID, Topic: w.Topic, URI: uri}
}

type pageInfo struct {
	HasNextPage bool   `json:"hasNextPage"`
	EndCursor   string `json:"endCursor"`
}

// WebhookSubscriptions lists the app's shop-scoped subscriptions to topic
// (all pages). Subscriptions from shopify.app.toml are not listed: Shopify
// returns only those created through the API.
func (c *Client) WebhookSubscriptions(ctx context.Context, shop, topic string) ([]WebhookSubscription, error) {
	q := fmt.Sprintf(`query WebhookSubscriptions($first: Int!, $after: String, $topics: [WebhookSubscriptionTopic!]) {
  webhookSubscriptions(first: $first, after: $after, topics: $topics) {
    nodes { id topic %s }
    pageInfo { hasNextPage endCursor }
  }
}`, c.uriField())
	var out []WebhookSubscription
	vars := map[string]any{"first": 50, "topics": []string{topic}}
	for {
		var data struct {
			WebhookSubscriptions struct {
				Nodes    []wireSubscription `json:"nodes"`
				PageInfo pageInfo           `json:"pageInfo"`
			} `json:"webhookSubscriptions"`
		}
		if err := c.Do(ctx, shop, "webhookSubscriptions", q, vars, &data); err != nil {
			return nil, err
		}
		for _, n := range data.WebhookSubscriptions.Nodes {
			out = append(out, n.sub())
		}
		if !data.WebhookSubscriptions.PageInfo.HasNextPage {
			return out, nil
		}
		vars["after"] = data.WebhookSubscriptions.PageInfo.EndCursor
	}
}

// CreateWebhookSubscription subscribes uri to topic with JSON payloads.
func (c *Client) CreateWebhookSubscription(ctx context.Context, shop, topic, uri string) (WebhookSubscription, error) {
	f := c.uriField()
	q := fmt.Sprintf(`mutation WebhookSubscriptionCreate($topic: WebhookSubscriptionTopic!, $webhookSubscription: WebhookSubscriptionInput!) {
  webhookSubscriptionCreate(topic: $topic, webhookSubscription: $webhookSubscription) {
    webhookSubscription { id topic %s }
    userErrors { field message }
  }
}`, f)
	vars := map[string]any{"topic": topic, "webhookSubscription": map[string]any{f: uri, "format": "JSON"}}
	var data struct {
		WebhookSubscriptionCreate struct {
			WebhookSubscription *wireSubscription `json:"webhookSubscription"`
			UserErrors          []UserError       `json:"userErrors"`
		} `json:"webhookSubscriptionCreate"`
	}
	if err := c.Do(ctx, shop, "webhookSubscriptionCreate", q, vars, &data); err != nil {
		return WebhookSubscription{}, err
	}
	r := data.WebhookSubscriptionCreate
	if len(r.UserErrors) > 0 {
		return WebhookSubscription{}, &UserErrors{Shop: shop, Operation: "webhookSubscriptionCreate", Errors: r.UserErrors}
	}
	if r.WebhookSubscription == nil || r.WebhookSubscription.ID == "" {
		return WebhookSubscription{}, fmt.Errorf("shopify webhookSubscriptionCreate for %s: no subscription and no userErrors in the answer", shop)
	}
	return r.WebhookSubscription.sub(), nil
}

// IsTaken reports whether err is Shopify's "address for this topic has
// already been taken": the subscription exists (created by a racing call).
func IsTaken(err error) bool {
	ue, ok := err.(*UserErrors)
	return ok && ue.contains("already been taken")
}

// DeleteWebhookSubscription deletes a subscription. One that no longer
// exists is not an error (gone is what the caller wants); it reports
// whether this call deleted it.
func (c *Client) DeleteWebhookSubscription(ctx context.Context, shop, id string) (bool, error) {
	const q = `mutation WebhookSubscriptionDelete($id: ID!) {
  webhookSubscriptionDelete(id: $id) {
    deletedWebhookSubscriptionId
    userErrors { field message }
  }
}`
	var data struct {
		WebhookSubscriptionDelete struct {
			DeletedWebhookSubscriptionID *string     `json:"deletedWebhookSubscriptionId"`
			UserErrors                   []UserError `json:"userErrors"`
		} `json:"webhookSubscriptionDelete"`
	}
	if err := c.Do(ctx, shop, "webhookSubscriptionDelete", q, map[string]any{"id": id}, &data); err != nil {
		return false, err
	}
	r := data.WebhookSubscriptionDelete
	if len(r.UserErrors) > 0 {
		ue := &UserErrors{Shop: shop, Operation: "webhookSubscriptionDelete", Errors: r.UserErrors}
		if ue.contains("does not exist") || ue.contains("not found") {
			return false, nil
		}
		return false, ue
	}
	return r.DeletedWebhookSubscriptionID != nil, nil
}

// OrdersQuery selects orders by creation time.
type OrdersQuery struct {
	CreatedFrom, CreatedTo time.Time // inclusive bounds
	PageSize               int       // orders per call (up to 250)
}

// OrderRef is what identifies an order: enough to build its pipeline key
// in every order_key mode, at one cost point per order.
type OrderRef struct {
	ID               string      `json:"id"`               // gid://shopify/Order/<n>
	LegacyResourceID string      `json:"legacyResourceId"` // <n>, the REST id
	Name             string      `json:"name"`             // "#1001"
	Number           json.Number `json:"number"`           // 1001, REST's order_number
	CreatedAt        string      `json:"createdAt"`
}

// OrderRefsPage is one page of order references.
type OrderRefsPage struct {
	Orders      []OrderRef
	HasNextPage bool
	EndCursor   string
}

// OrderRefs returns one page of the shop's orders created in [from, to],
// oldest first; pass the previous page's EndCursor as after.
func (c *Client) OrderRefs(ctx context.Context, shop string, q OrdersQuery, after string) (OrderRefsPage, error) {
	const query = `query OrderRefs($first: Int!, $after: String, $query: String) {
  orders(first: $first, after: $after, query: $query, sortKey: CREATED_AT) {
    nodes { id legacyResourceId name number createdAt }
    pageInfo { hasNextPage endCursor }
  }
}`
	vars := map[string]any{
		"first": q.PageSize,
		// Shopify's search syntax; quoted because timestamps contain ':'.
		"query": fmt.Sprintf("created_at:>='%s' AND created_at:<='%s'",
			q.CreatedFrom.UTC().Format(time.RFC3339), q.CreatedTo.UTC().Format(time.RFC3339)),
	}
	if after != "" {
		vars["after"] = after
	}
	var data struct {
		Orders struct {
			Nodes    []OrderRef `json:"nodes"`
			PageInfo pageInfo   `json:"pageInfo"`
		} `json:"orders"`
	}
	if err := c.Do(ctx, shop, "orders", query, vars, &data); err != nil {
		return OrderRefsPage{}, err
	}
	return OrderRefsPage{Orders: data.Orders.Nodes, HasNextPage: data.Orders.PageInfo.HasNextPage, EndCursor: data.Orders.PageInfo.EndCursor}, nil
}

// orderFields is the selection of an Order that RESTOrderJSON needs: what
// the typed Order reads, then every compared field's GraphQL path
// (Order.Compared). A field selected twice is one field to GraphQL.
func orderFields() string {
	var b strings.Builder
	b.WriteString(typedOrderFields)
	for _, f := range schemas.ComparedFields {
		b.WriteString("\n    " + f.GraphQL.Selection())
	}
	return b.String()
}

const typedOrderFields = `
    id
    legacyResourceId
    name
    number
    email
    createdAt
    test
    currencyCode
    presentmentCurrencyCode
    subtotalPriceSet { ...Money }
    totalTaxSet { ...Money }
    totalDiscountsSet { ...Money }
    totalShippingPriceSet { ...Money }
    discountCodes
    shippingAddress { firstName lastName address1 address2 city province zip country }
    customer { legacyResourceId email firstName lastName }
    lineItems(first: $lineItems, after: $after) {
      nodes { ...Line }
      pageInfo { hasNextPage endCursor }
    }`

const fragments = `
fragment Money on MoneyBag {
  shopMoney { amount currencyCode }
  presentmentMoney { amount currencyCode }
}
fragment Line on LineItem {
  sku
  title
  quantity
  product { legacyResourceId }
  variant { legacyResourceId }
  originalUnitPriceSet { ...Money }
}`

// ErrOrderNotFound: Shopify has no such order (deleted, or older than the
// 60 days readable without read_all_orders).
var ErrOrderNotFound = errors.New("order not found")

// Order fetches one order (id is its gid) with all its line items, lineItems
// per call.
func (c *Client) Order(ctx context.Context, shop, id string, lineItems int) (Order, error) {
	q := `query Order($id: ID!, $lineItems: Int!, $after: String) {
  order(id: $id) {` + orderFields() + `
  }
}` + fragments
	var o Order
	vars := map[string]any{"id": id, "lineItems": lineItems}
	for first := true; first || o.LineItems.PageInfo.HasNextPage; first = false {
		if !first {
			vars["after"] = o.LineItems.PageInfo.EndCursor
		}
		var data struct {
			Order *Order `json:"order"`
		}
		if err := c.Do(ctx, shop, "order", q, vars, &data); err != nil {
			return Order{}, err
		}
		if data.Order == nil {
			return Order{}, fmt.Errorf("shopify order %s of %s: %w", id, shop, ErrOrderNotFound)
		}
		if first {
			o = *data.Order
			continue
		}
		o.LineItems.Nodes = append(o.LineItems.Nodes, data.Order.LineItems.Nodes...)
		o.LineItems.PageInfo = data.Order.LineItems.PageInfo
	}
	return o, nil
}

// HasScope reports whether scopes grant handle; a write_ scope implies its
// read_ scope in Shopify.
func HasScope(scopes []string, handle string) bool {
	alt := ""
	if rest, ok := strings.CutPrefix(handle, "read_"); ok {
		alt = "write_" + rest
	}
	for _, s := range scopes {
		if s == handle || (alt != "" && s == alt) {
			return true
		}
	}
	return false
}
