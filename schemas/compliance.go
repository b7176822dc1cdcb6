package schemas

import (
	"encoding/json"
	"fmt"
	"strings"
)

// Shopify's mandatory privacy webhook topics, carried on compliance.v1 (key:
// shop domain; header "topic" says which).
const (
	ComplianceCustomersDataRequest = WebhookCustomersDataRequest
	ComplianceCustomersRedact      = WebhookCustomersRedact
	ComplianceShopRedact           = WebhookShopRedact
)

// ComplianceCustomer is the customer a privacy request is about.
type ComplianceCustomer struct {
	ID    FlexString `json:"id"`
	Email string     `json:"email"`
	Phone string     `json:"phone"`
}

// ComplianceRequest is the body of the three privacy webhooks:
// customers/data_request (Customer, OrdersRequested, DataRequest),
// customers/redact (Customer, OrdersToRedact) and shop/redact (shop only).
// Order and customer ids are exact decimal strings.
type ComplianceRequest struct {
	ShopID          FlexString          `json:"shop_id"`
	ShopDomain      string              `json:"shop_domain"`
	Customer        *ComplianceCustomer `json:"customer"`
	OrdersToRedact  []FlexString        `json:"orders_to_redact"`
	OrdersRequested []FlexString        `json:"orders_requested"`
	DataRequest     *struct {
		ID FlexString `json:"id"`
	} `json:"data_request"`
}

// ParseComplianceRequest decodes a privacy webhook body of topic. The shop
// domain is required; the customer requests need a customer with an id or
// an email, so that a redaction can never match everything.
func ParseComplianceRequest(topic string, body []byte) (*ComplianceRequest, error) {
	var r ComplianceRequest
	if err := json.Unmarshal(body, &r); err != nil {
		return nil, fmt.Errorf("cannot decode %s body: %w", topic, err)
	}
	r.ShopDomain = strings.ToLower(strings.TrimSpace(r.ShopDomain))
	if r.ShopDomain == "" {
		return nil, &FieldError{"shop_domain", "missing"}
	}
	switch topic {
	case ComplianceShopRedact:
	case ComplianceCustomersRedact, ComplianceCustomersDataRequest:
		if r.Customer == nil || (strings.TrimSpace(string(r.Customer.ID)) == "" && strings.TrimSpace(r.Customer.Email) == "") {
			return nil, &FieldError{"customer", "missing id and email"}
		}
		r.Customer.Email = strings.TrimSpace(r.Customer.Email)
	default:
		return nil, fmt.Errorf("unknown compliance topic %q", topic)
	}
	for _, ids := range [][]FlexString{r.OrdersToRedact, r.OrdersRequested} {
		for _, id := range ids {
			if !isDecimalID(string(id)) {
				return nil, &FieldError{"orders", fmt.Sprintf("order id %q is not a positive integer", id)}
			}
		}
	}
	return &r, nil
}
