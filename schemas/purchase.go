package schemas

import (
	"encoding/json"
	"fmt"
	"time"
)

// How a purchase got registered.
const (
	ViaStorefront     = "storefront"
	ViaWebhook        = "webhook"
	ViaReconciliation = "reconciliation"
)

// TrafficSourcePurchaseSyncing is Talkable's constant for webhook registrations.
const TrafficSourcePurchaseSyncing = "purchase-syncing"

// Item is one purchased line.
type Item struct {
	ProductID string `json:"product_id"`
	VariantID string `json:"variant_id,omitempty"`
	SKU       string `json:"sku,omitempty"`
	Title     string `json:"title,omitempty"`
	Price     string `json:"price"`
	Quantity  int64  `json:"quantity"`
}

// Purchase is a registered purchase: the value of purchases.v1 and a row of
// ClickHouse purchases (DESIGN §4). The registered values never change after
// registration; a later match or refund writes the same purchase with a
// higher Version.
type Purchase struct {
	Site             string     `json:"site"`
	OrderNumber      string     `json:"order_number"`
	ShopifyOrderID   *string    `json:"shopify_order_id"`
	ShopifyOrderName string     `json:"shopify_order_name"`
	RegisteredVia    string     `json:"registered_via"`
	Matched          bool       `json:"matched"`
	Email            string     `json:"email"`
	CustomerID       string     `json:"customer_id"`
	FirstName        string     `json:"first_name"`
	LastName         string     `json:"last_name"`
	Subtotal         string     `json:"subtotal"`
	Currency         string     `json:"currency"`
	Tax              string     `json:"tax"`
	DiscountAmount   string     `json:"discount_amount"`
	ShippingCost     string     `json:"shipping_cost"`
	CouponCodes      []string   `json:"coupon_codes"`
	ShippingZip      string     `json:"shipping_zip"`
	ShippingAddress  string     `json:"shipping_address"`
	Items            []Item     `json:"items"`
	IPAddress        string     `json:"ip_address"`
	TrafficSource    string     `json:"traffic_source"`
	Test             bool       `json:"test"`
	RefundedAmount   string     `json:"refunded_amount,omitempty"`
	RefundedAt       *time.Time `json:"refunded_at,omitempty"`
	OrderCreatedAt   time.Time  `json:"order_created_at"`
	RegisteredAt     time.Time  `json:"registered_at"`
	// ReceivedAt is when ingest accepted the event that registered the
	// purchase; sinks measure end-to-end latency from it.
	ReceivedAt time.Time `json:"received_at"`
	UpdatedAt  time.Time `json:"updated_at"`
	Version    uint64    `json:"version"`
}

// Key is the purchase's record key.
func (p *Purchase) Key() string { return Key(p.Site, p.OrderNumber) }

// Validate checks the invariants every stage relies on.
func (p *Purchase) Validate() error {
	switch {
	case !ValidSiteSlug(p.Site):
		return &FieldError{"site", "invalid slug"}
	case p.OrderNumber == "":
		return &FieldError{"order_number", "is required"}
	case p.RegisteredVia != ViaStorefront && p.RegisteredVia != ViaWebhook && p.RegisteredVia != ViaReconciliation:
		return &FieldError{"registered_via", fmt.Sprintf("unknown value %q", p.RegisteredVia)}
	case p.Version == 0:
		return &FieldError{"version", "must be at least 1"}
	}
	return nil
}

// MarshalPurchase encodes a purchase for purchases.v1.
func MarshalPurchase(p *Purchase) ([]byte, error) { return json.Marshal(p) }

// UnmarshalPurchase decodes and validates a purchases.v1 value.
func UnmarshalPurchase(b []byte) (*Purchase, error) {
	var p Purchase
	if err := json.Unmarshal(b, &p); err != nil {
		return nil, fmt.Errorf("cannot decode purchase: %w", err)
	}
	if err := p.Validate(); err != nil {
		return nil, fmt.Errorf("invalid purchase: %w", err)
	}
	return &p, nil
}
