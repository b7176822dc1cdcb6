package schemas

import (
	"encoding/json"
	"fmt"
	"time"
)

// Discrepancy kinds.
const (
	KindFieldMismatch  = "field_mismatch"
	KindWebhookMissing = "webhook_missing"
)

// Discrepancy says where the storefront and Shopify disagree about one
// purchase: the value of discrepancies.v1 and a row of ClickHouse
// discrepancies. Field is empty for webhook_missing.
type Discrepancy struct {
	Site            string    `json:"site"`
	OrderNumber     string    `json:"order_number"`
	Kind            string    `json:"kind"`
	Field           string    `json:"field"`
	StorefrontValue string    `json:"storefront_value"`
	ShopifyValue    string    `json:"shopify_value"`
	Test            bool      `json:"test"`
	DetectedAt      time.Time `json:"detected_at"`
}

// Key is the discrepancy's record key (the purchase's key).
func (d *Discrepancy) Key() string { return Key(d.Site, d.OrderNumber) }

// Validate checks the invariants every stage relies on.
func (d *Discrepancy) Validate() error {
	switch {
	case !ValidSiteSlug(d.Site):
		return &FieldError{"site", "invalid slug"}
	case d.OrderNumber == "":
		return &FieldError{"order_number", "is required"}
	case d.Kind != KindFieldMismatch && d.Kind != KindWebhookMissing:
		return &FieldError{"kind", fmt.Sprintf("unknown value %q", d.Kind)}
	case d.Kind == KindFieldMismatch && d.Field == "":
		return &FieldError{"field", "is required for field_mismatch"}
	}
	return nil
}

// MarshalDiscrepancy encodes a discrepancy for discrepancies.v1.
func MarshalDiscrepancy(d *Discrepancy) ([]byte, error) { return json.Marshal(d) }

// UnmarshalDiscrepancy decodes and validates a discrepancies.v1 value.
func UnmarshalDiscrepancy(b []byte) (*Discrepancy, error) {
	var d Discrepancy
	if err := json.Unmarshal(b, &d); err != nil {
		return nil, fmt.Errorf("cannot decode discrepancy: %w", err)
	}
	if err := d.Validate(); err != nil {
		return nil, fmt.Errorf("invalid discrepancy: %w", err)
	}
	return &d, nil
}
