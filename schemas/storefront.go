package schemas

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
)

// StorefrontItem is one purchase.items[] entry of Talkable's register_purchase.
type StorefrontItem struct {
	ProductID FlexString `json:"product_id"`
	Price     FlexString `json:"price"`
	Quantity  FlexString `json:"quantity"`
	Title     string     `json:"title"`
	URL       string     `json:"url"`
	ImageURL  string     `json:"image_url"`
}

// StorefrontPurchaseFields is the "purchase" object.
type StorefrontPurchaseFields struct {
	OrderNumber     FlexString       `json:"order_number"`
	Subtotal        FlexString       `json:"subtotal"`
	CouponCode      FlexStrings      `json:"coupon_code"`
	CurrencyISOCode string           `json:"currency_iso_code"`
	ShippingZip     FlexString       `json:"shipping_zip"`
	ShippingAddress string           `json:"shipping_address"`
	TaxAmount       FlexString       `json:"tax_amount"`
	DiscountAmount  FlexString       `json:"discount_amount"`
	ShippingAmount  FlexString       `json:"shipping_amount"`
	Items           []StorefrontItem `json:"items"`
}

// StorefrontCustomer is the "customer" object.
type StorefrontCustomer struct {
	Email         string     `json:"email"`
	FirstName     string     `json:"first_name"`
	LastName      string     `json:"last_name"`
	CustomerID    FlexString `json:"customer_id"`
	TrafficSource string     `json:"traffic_source"`
}

// StorefrontPurchase is the body the storefront JavaScript posts to
// /v1/sites/{site}/purchases: {"purchase": {...}, "customer": {...}} with
// Talkable's register_purchase field names.
type StorefrontPurchase struct {
	Purchase *StorefrontPurchaseFields `json:"purchase"`
	Customer *StorefrontCustomer       `json:"customer"`
}

// MaxOrderNumberLen bounds order numbers (Shopify ids have at most 20 digits;
// names are merchant-formatted, so leave room).
const MaxOrderNumberLen = 64

// ParseStorefrontPurchase decodes and validates a storefront event. Errors
// are *FieldError naming the first bad field (purchase.subtotal, ...), or a
// decode error for malformed JSON.
func ParseStorefrontPurchase(body []byte) (*StorefrontPurchase, error) {
	body = bytes.TrimSpace(body)
	if len(body) == 0 || body[0] != '{' {
		return nil, &FieldError{"body", "must be a JSON object"}
	}
	var p StorefrontPurchase
	if err := json.Unmarshal(body, &p); err != nil {
		var te *json.UnmarshalTypeError
		if errors.As(err, &te) && te.Field != "" {
			return nil, &FieldError{te.Field, "has the wrong type"}
		}
		return nil, &FieldError{"body", fmt.Sprintf("invalid JSON: %v", err)}
	}
	if p.Purchase == nil {
		return nil, &FieldError{"purchase", "is required"}
	}
	if p.Customer == nil {
		return nil, &FieldError{"customer", "is required"}
	}
	on := strings.TrimSpace(string(p.Purchase.OrderNumber))
	switch {
	case on == "":
		return nil, &FieldError{"purchase.order_number", "is required"}
	case len(on) > MaxOrderNumberLen || strings.ContainsAny(on, "/\x00\r\n"):
		return nil, &FieldError{"purchase.order_number", "must be at most 64 characters without '/' or control characters"}
	}
	if strings.TrimSpace(string(p.Purchase.Subtotal)) == "" {
		return nil, &FieldError{"purchase.subtotal", "is required"}
	}
	if _, err := ParseDecimal(string(p.Purchase.Subtotal)); err != nil {
		return nil, &FieldError{"purchase.subtotal", "must be a decimal number"}
	}
	email := strings.TrimSpace(p.Customer.Email)
	if email == "" {
		return nil, &FieldError{"customer.email", "is required"}
	}
	if at := strings.IndexByte(email, '@'); at < 1 || at == len(email)-1 || len(email) > 254 {
		return nil, &FieldError{"customer.email", "is not an email address"}
	}
	if c := p.Purchase.CurrencyISOCode; c != "" && (len(c) != 3 || !isLetters(c)) {
		return nil, &FieldError{"purchase.currency_iso_code", "must be a 3-letter ISO 4217 code"}
	}
	for i, it := range p.Purchase.Items {
		if it.Price != "" {
			if _, err := ParseDecimal(string(it.Price)); err != nil {
				return nil, &FieldError{fmt.Sprintf("purchase.items[%d].price", i), "must be a decimal number"}
			}
		}
	}
	return &p, nil
}

// OrderNumberFor returns the normalized order number for a site's mode.
func (p *StorefrontPurchase) OrderNumberFor(mode OrderKey) string {
	return NormalizeOrderNumber(mode, string(p.Purchase.OrderNumber))
}

func isLetters(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i] | 0x20
		if c < 'a' || c > 'z' {
			return false
		}
	}
	return true
}
