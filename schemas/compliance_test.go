package schemas

import (
	"errors"
	"testing"
)

func TestParseComplianceRequest(t *testing.T) {
	// The samples from Shopify's privacy-law compliance page.
	r, err := ParseComplianceRequest(ComplianceCustomersRedact, []byte(`{"shop_id":954889,"shop_domain":"Shop.myshopify.com","customer":{"id":191167,"email":"john@example.com","phone":"555-625-1199"},"orders_to_redact":[299938,280263,220458]}`))
	if err != nil {
		t.Fatal(err)
	}
	if r.ShopDomain != "shop.myshopify.com" || r.Customer.ID != "191167" || r.Customer.Email != "john@example.com" || len(r.OrdersToRedact) != 3 || r.OrdersToRedact[2] != "220458" {
		t.Errorf("got %+v", r)
	}
	r, err = ParseComplianceRequest(ComplianceCustomersDataRequest, []byte(`{"shop_id":954889,"shop_domain":"s.myshopify.com","orders_requested":[299938],"customer":{"id":191167,"email":"john@example.com"},"data_request":{"id":9999}}`))
	if err != nil || r.DataRequest == nil || r.DataRequest.ID != "9999" || r.OrdersRequested[0] != "299938" {
		t.Errorf("data request: %+v %v", r, err)
	}
	if _, err := ParseComplianceRequest(ComplianceShopRedact, []byte(`{"shop_id":954889,"shop_domain":"s.myshopify.com"}`)); err != nil {
		t.Errorf("shop redact: %v", err)
	}
	bad := func(topic, body, field string) {
		t.Helper()
		_, err := ParseComplianceRequest(topic, []byte(body))
		var fe *FieldError
		if field == "" && err == nil || field != "" && (!errors.As(err, &fe) || fe.Field != field) {
			t.Errorf("%s %s: got %v, want field %q", topic, body, err, field)
		}
	}
	bad(ComplianceShopRedact, `{"shop_id":1}`, "shop_domain")
	bad(ComplianceCustomersRedact, `{"shop_domain":"s.myshopify.com","customer":{}}`, "customer")
	bad(ComplianceCustomersRedact, `{"shop_domain":"s.myshopify.com"}`, "customer")
	bad(ComplianceCustomersRedact, `{"shop_domain":"s.myshopify.com","customer":{"id":1},"orders_to_redact":["x"]}`, "orders")
	bad("customers/create", `{"shop_domain":"s.myshopify.com"}`, "")
	bad(ComplianceShopRedact, `not json`, "")
}
