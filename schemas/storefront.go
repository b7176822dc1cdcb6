package schemas

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"unicode/utf8"
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

// Bounds on what one storefront event may carry. The event is
// unauthenticated and the join keeps what it registers for the dedupe
// horizon, so what it may hold per key must not grow with the body: without
// them a 64 KiB body of 21,805 empty items cost 2.2 MiB of join heap.
const (
	// MaxStorefrontItems is Shopify's own cap on line items per checkout
	// in its admin UI; real storefront events carry a handful.
	MaxStorefrontItems = 250
	// MaxStorefrontCoupons bounds purchase.coupon_code (Shopify applies at
	// most a few codes per order).
	MaxStorefrontCoupons = 25
	// MaxStorefrontStringLen bounds every free-text field (titles, URLs,
	// names, addresses, codes), in bytes.
	MaxStorefrontStringLen = 1024
	// maxEmailLen is RFC 5321's path limit.
	maxEmailLen = 254
)

// ParseStorefrontPurchase decodes and validates a storefront event. Errors
// are *FieldError naming the first bad field (purchase.subtotal, ...), or a
// decode error for malformed JSON.
func ParseStorefrontPurchase(body []byte) (*StorefrontPurchase, error) {
	body = bytes.TrimSpace(body)
	if len(body) == 0 || body[0] != '{' {
		return nil, &FieldError{"body", "must be a JSON object"}
	}
	var p StorefrontPurchase
	if err := unmarshal(body, &p); err != nil {
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
	case len(on) > MaxOrderNumberLen || strings.ContainsRune(on, '/') || hasControl(on):
		return nil, &FieldError{"purchase.order_number", "must be at most 64 characters without '/' or control characters"}
	}
	if strings.TrimSpace(string(p.Purchase.Subtotal)) == "" {
		return nil, &FieldError{"purchase.subtotal", "is required"}
	}
	if d, err := ParseDecimal(string(p.Purchase.Subtotal)); err != nil {
		return nil, &FieldError{"purchase.subtotal", "must be a decimal number"}
	} else if d.Sign() < 0 {
		return nil, &FieldError{"purchase.subtotal", "must not be negative"}
	}
	email := strings.TrimSpace(p.Customer.Email)
	if email == "" {
		return nil, &FieldError{"customer.email", "is required"}
	}
	if !plausibleEmail(email) {
		return nil, &FieldError{"customer.email", "is not an email address"}
	}
	if c := p.Purchase.CurrencyISOCode; c != "" && (len(c) != 3 || !isLetters(c)) {
		return nil, &FieldError{"purchase.currency_iso_code", "must be a 3-letter ISO 4217 code"}
	}
	if len(p.Purchase.Items) > MaxStorefrontItems {
		return nil, &FieldError{"purchase.items", fmt.Sprintf("must have at most %d entries", MaxStorefrontItems)}
	}
	if len(p.Purchase.CouponCode) > MaxStorefrontCoupons {
		return nil, &FieldError{"purchase.coupon_code", fmt.Sprintf("must have at most %d codes", MaxStorefrontCoupons)}
	}
	for i, c := range p.Purchase.CouponCode {
		if err := checkText(fmt.Sprintf("purchase.coupon_code[%d]", i), c); err != nil {
			return nil, err
		}
	}
	for _, f := range []struct{ name, v string }{
		{"purchase.shipping_zip", string(p.Purchase.ShippingZip)},
		{"purchase.shipping_address", p.Purchase.ShippingAddress},
		{"purchase.tax_amount", string(p.Purchase.TaxAmount)},
		{"purchase.discount_amount", string(p.Purchase.DiscountAmount)},
		{"purchase.shipping_amount", string(p.Purchase.ShippingAmount)},
		{"customer.first_name", p.Customer.FirstName},
		{"customer.last_name", p.Customer.LastName},
		{"customer.customer_id", string(p.Customer.CustomerID)},
		{"customer.traffic_source", p.Customer.TrafficSource},
	} {
		if err := checkText(f.name, f.v); err != nil {
			return nil, err
		}
	}
	for i, it := range p.Purchase.Items {
		if it.Price != "" {
			if _, err := ParseDecimal(string(it.Price)); err != nil {
				return nil, &FieldError{fmt.Sprintf("purchase.items[%d].price", i), "must be a decimal number"}
			}
		}
		for _, f := range []struct{ name, v string }{
			{"product_id", string(it.ProductID)}, {"quantity", string(it.Quantity)},
			{"title", it.Title}, {"url", it.URL}, {"image_url", it.ImageURL},
		} {
			if err := checkText(fmt.Sprintf("purchase.items[%d].%s", i, f.name), f.v); err != nil {
				return nil, err
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

// checkText bounds a free-text field: at most MaxStorefrontStringLen bytes
// of valid UTF-8 (encoding/json would silently turn invalid bytes into
// U+FFFD, so a refusal is more honest than a changed value).
func checkText(field, v string) *FieldError {
	switch {
	case len(v) > MaxStorefrontStringLen:
		return &FieldError{field, fmt.Sprintf("must be at most %d bytes", MaxStorefrontStringLen)}
	case strings.ContainsRune(v, utf8.RuneError):
		return &FieldError{field, "must be valid UTF-8"}
	}
	return nil
}

// plausibleEmail is a deliberately loose check (the registry does the real
// one): one '@' with something on each side, no spaces or control
// characters, valid UTF-8, at most 254 bytes.
func plausibleEmail(e string) bool {
	at := strings.IndexByte(e, '@')
	return at >= 1 && at < len(e)-1 && len(e) <= maxEmailLen &&
		strings.Count(e, "@") == 1 && !hasControl(e) && !strings.ContainsAny(e, " ") &&
		!strings.ContainsRune(e, utf8.RuneError)
}

// hasControl reports ASCII control characters (tab, CR, LF, NUL, ...).
func hasControl(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < 0x20 || s[i] == 0x7f {
			return true
		}
	}
	return false
}
