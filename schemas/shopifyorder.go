package schemas

import (
	"errors"
	"fmt"
	"strings"
	"time"
)

// Money is Shopify's {"amount": "12.34", "currency_code": "USD"}.
type Money struct {
	Amount       FlexString `json:"amount"`
	CurrencyCode string     `json:"currency_code"`
}

// MoneySet is Shopify's *_set object: shop and presentment (buyer) currency.
type MoneySet struct {
	ShopMoney        Money `json:"shop_money"`
	PresentmentMoney Money `json:"presentment_money"`
}

// ShopifyAddress is the part of shipping_address we use.
type ShopifyAddress struct {
	FirstName string `json:"first_name"`
	LastName  string `json:"last_name"`
	Address1  string `json:"address1"`
	Address2  string `json:"address2"`
	City      string `json:"city"`
	Province  string `json:"province"`
	Zip       string `json:"zip"`
	Country   string `json:"country"`
}

// Joined returns the non-empty parts joined with ", " in Talkable's order
// (address1, address2, city, province, zip, country).
func (a *ShopifyAddress) Joined() string {
	if a == nil {
		return ""
	}
	parts := make([]string, 0, 6)
	for _, p := range []string{a.Address1, a.Address2, a.City, a.Province, a.Zip, a.Country} {
		if p = strings.TrimSpace(p); p != "" {
			parts = append(parts, p)
		}
	}
	return strings.Join(parts, ", ")
}

// ShopifyCustomer is the part of the order's customer we use.
type ShopifyCustomer struct {
	ID        FlexString `json:"id"`
	Email     string     `json:"email"`
	FirstName string     `json:"first_name"`
	LastName  string     `json:"last_name"`
}

// ShopifyLineItem is one line_items[] entry.
type ShopifyLineItem struct {
	ProductID FlexString `json:"product_id"`
	VariantID FlexString `json:"variant_id"`
	SKU       string     `json:"sku"`
	Title     string     `json:"title"`
	Price     FlexString `json:"price"`
	PriceSet  *MoneySet  `json:"price_set"`
	Quantity  int64      `json:"quantity"`
}

// ShopifyDiscountCode is one discount_codes[] entry.
type ShopifyDiscountCode struct {
	Code   string     `json:"code"`
	Amount FlexString `json:"amount"`
	Type   string     `json:"type"`
}

// ShopifyOrder holds the fields of Shopify's REST Order JSON (the
// orders/create webhook body) that purchasesync uses. Ids are kept as exact
// decimal strings: they can exceed 2^53.
type ShopifyOrder struct {
	ID                    FlexString            `json:"id"`
	Name                  string                `json:"name"`
	OrderNumber           FlexString            `json:"order_number"`
	Email                 string                `json:"email"`
	CreatedAt             string                `json:"created_at"`
	Currency              string                `json:"currency"`
	PresentmentCurrency   string                `json:"presentment_currency"`
	SubtotalPrice         FlexString            `json:"subtotal_price"`
	SubtotalPriceSet      *MoneySet             `json:"subtotal_price_set"`
	TotalTaxSet           *MoneySet             `json:"total_tax_set"`
	TotalDiscountsSet     *MoneySet             `json:"total_discounts_set"`
	TotalShippingPriceSet *MoneySet             `json:"total_shipping_price_set"`
	DiscountCodes         []ShopifyDiscountCode `json:"discount_codes"`
	LineItems             []ShopifyLineItem     `json:"line_items"`
	ShippingAddress       *ShopifyAddress       `json:"shipping_address"`
	Customer              *ShopifyCustomer      `json:"customer"`
	BrowserIP             string                `json:"browser_ip"`
	Test                  bool                  `json:"test"`
}

// ErrNotJSONObject is returned for a body that is not a JSON object.
var ErrNotJSONObject = errors.New("body is not a JSON object")

// ParseShopifyOrder decodes an orders/create body. It fails on malformed
// JSON and on an order without a usable id.
func ParseShopifyOrder(body []byte) (*ShopifyOrder, error) {
	var o ShopifyOrder
	if err := unmarshal(body, &o); err != nil {
		return nil, fmt.Errorf("cannot decode Shopify order: %w", err)
	}
	if !isDecimalID(string(o.ID)) {
		return nil, &FieldError{"id", "missing or not a positive integer"}
	}
	return &o, nil
}

// OrderKeyValue returns the order's value for a site's order_key mode,
// normalized as the storefront value is (see NormalizeOrderNumber).
func (o *ShopifyOrder) OrderKeyValue(mode OrderKey) (string, error) {
	var v string
	switch mode {
	case OrderKeyID, "":
		v = string(o.ID)
	case OrderKeyNumber:
		v = string(o.OrderNumber)
	case OrderKeyName:
		v = o.Name
	default:
		return "", fmt.Errorf("unknown order_key %q", mode)
	}
	v = NormalizeOrderNumber(mode, v)
	if v == "" {
		return "", &FieldError{string(mode), "missing in the Shopify order"}
	}
	return v, nil
}

// OrderEmail is the order's email, else the customer's (DESIGN §3.1).
func (o *ShopifyOrder) OrderEmail() string {
	if e := strings.TrimSpace(o.Email); e != "" {
		return e
	}
	if o.Customer != nil {
		return strings.TrimSpace(o.Customer.Email)
	}
	return ""
}

// PresentmentSubtotal is the subtotal in the buyer's currency, as Talkable's
// Purchase Syncing reads it; the shop-currency subtotal_price is the fallback
// for payloads without *_set objects (very old API versions).
func (o *ShopifyOrder) PresentmentSubtotal() string {
	if o.SubtotalPriceSet != nil && o.SubtotalPriceSet.PresentmentMoney.Amount != "" {
		return string(o.SubtotalPriceSet.PresentmentMoney.Amount)
	}
	return string(o.SubtotalPrice)
}

// PresentmentCurrencyCode is the buyer's currency (else the shop's).
func (o *ShopifyOrder) PresentmentCurrencyCode() string {
	if o.PresentmentCurrency != "" {
		return o.PresentmentCurrency
	}
	return o.Currency
}

// PresentmentAmount returns a *_set object's presentment amount, or "".
func PresentmentAmount(s *MoneySet) string {
	if s == nil {
		return ""
	}
	return string(s.PresentmentMoney.Amount)
}

// CreatedAtTime parses created_at; the zero time when absent or malformed.
func (o *ShopifyOrder) CreatedAtTime() time.Time {
	t, err := time.Parse(time.RFC3339, o.CreatedAt)
	if err != nil {
		return time.Time{}
	}
	return t.UTC()
}

// NormalizeOrderNumber trims an order number and, in order_number mode,
// strips the leading '#' a storefront may send ("#1001" → "1001").
func NormalizeOrderNumber(mode OrderKey, v string) string {
	v = strings.TrimSpace(v)
	if mode == OrderKeyNumber {
		v = strings.TrimSpace(strings.TrimPrefix(v, "#"))
	}
	return v
}

func isDecimalID(s string) bool {
	if s == "" || len(s) > 20 {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return s != "0"
}
