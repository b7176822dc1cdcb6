package schemas

import (
	"encoding/json"
	"fmt"
	"math/big"
	"strings"
	"time"
)

// ShopifyRefundTransaction is one transactions[] entry of a refund.
type ShopifyRefundTransaction struct {
	Kind     string     `json:"kind"`   // "refund" for money returned
	Status   string     `json:"status"` // "success", "pending", "failure", "error"
	Amount   FlexString `json:"amount"`
	Currency string     `json:"currency"`
}

// ShopifyRefundLineItem is one refund_line_items[] entry.
type ShopifyRefundLineItem struct {
	LineItemID  FlexString `json:"line_item_id"`
	Quantity    int64      `json:"quantity"`
	SubtotalSet *MoneySet  `json:"subtotal_set"`
}

// ShopifyRefund holds the fields of Shopify's REST Refund JSON (the
// refunds/create webhook body) that a purchase's refund needs. It names
// the order only by its id: in the order_number and order_name modes the
// pipeline key must come from the order seen earlier.
type ShopifyRefund struct {
	ID              FlexString                 `json:"id"`
	OrderID         FlexString                 `json:"order_id"`
	CreatedAt       string                     `json:"created_at"`
	ProcessedAt     string                     `json:"processed_at"`
	Transactions    []ShopifyRefundTransaction `json:"transactions"`
	RefundLineItems []ShopifyRefundLineItem    `json:"refund_line_items"`
}

// ParseShopifyRefund decodes a refunds/create body; it fails on malformed
// JSON and on a refund without usable refund and order ids.
func ParseShopifyRefund(body []byte) (*ShopifyRefund, error) {
	var r ShopifyRefund
	if err := json.Unmarshal(body, &r); err != nil {
		return nil, fmt.Errorf("cannot decode Shopify refund: %w", err)
	}
	if !isDecimalID(string(r.ID)) {
		return nil, &FieldError{"id", "missing or not a positive integer"}
	}
	if !isDecimalID(string(r.OrderID)) {
		return nil, &FieldError{"order_id", "missing or not a positive integer"}
	}
	return &r, nil
}

// RefundedAmount is the money this refund returned: the sum of its
// successful "refund" transactions, with their currency (Shopify records
// them in the buyer's currency). A refund without such transactions (a
// restock, or one still pending) returned nothing yet: "0.00". A refund
// whose transactions mix currencies is an error, never a wrong sum.
func (r *ShopifyRefund) RefundedAmount() (amount, currency string, err error) {
	sum := new(big.Rat)
	for i, t := range r.Transactions {
		if t.Kind != "refund" || t.Status != "success" {
			continue
		}
		a, err := ParseDecimal(string(t.Amount))
		if err != nil {
			return "", "", &FieldError{fmt.Sprintf("transactions[%d].amount", i), err.Error()}
		}
		cur := strings.ToUpper(strings.TrimSpace(t.Currency))
		if currency != "" && cur != currency {
			return "", "", &FieldError{fmt.Sprintf("transactions[%d].currency", i), fmt.Sprintf("%s differs from %s", cur, currency)}
		}
		currency = cur
		sum.Add(sum, a)
	}
	return FormatDecimal(sum), currency, nil
}

// Time is when the refund was processed (else created); zero if neither
// parses.
func (r *ShopifyRefund) Time() time.Time {
	for _, s := range []string{r.ProcessedAt, r.CreatedAt} {
		if t, err := time.Parse(time.RFC3339, s); err == nil {
			return t.UTC()
		}
	}
	return time.Time{}
}
