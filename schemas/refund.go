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

// RefundMoney is what a refund returned, as Shopify states it.
type RefundMoney struct {
	// Returned is the sum of the successful "refund" transactions per
	// currency (upper-case); usually one entry, none when the refund
	// returned no money yet (a restock, a pending refund).
	Returned map[string]string
	// In is the whole returned amount in each currency Shopify's numbers
	// give it in: the transactions' own currency (when they use one), and
	// the other currency of the refund line items' subtotal_set MoneySets
	// (shop vs presentment money).
	In map[string]string
	// Rated is set when an entry of In was derived with the exchange rate
	// the MoneySets imply (the transactions also returned shipping, tax or
	// an adjustment, which the line items do not cover), not read as is.
	Rated bool
}

// AmountIn is the refund's returned money in currency (case-insensitive):
// "0.00" when it returned nothing, and ok false when Shopify's numbers do
// not give it in that currency. A caller must then keep the refund apart,
// never count it as 0.00.
func (m RefundMoney) AmountIn(currency string) (amount string, ok bool) {
	if len(m.Returned) == 0 {
		return "0.00", true
	}
	amount, ok = m.In[strings.ToUpper(strings.TrimSpace(currency))]
	return amount, ok
}

// Money reads what the refund returned (RefundMoney). Its only error is a
// malformed transaction amount.
//
// Conversion, from Shopify's numbers only: when every refund line item's
// subtotal_set names the same two currencies A (shop_money) and B
// (presentment_money), a sum returned in A is expressed in B as the line
// items' total in B when it equals their total in A (the refund is exactly
// its line items), else as sum × totalB/totalA rounded to cents (the
// refund's own rate), and the same from B to A.
func (r *ShopifyRefund) Money() (RefundMoney, error) {
	sums := map[string]*big.Rat{}
	for i, t := range r.Transactions {
		if t.Kind != "refund" || t.Status != "success" {
			continue
		}
		a, err := ParseDecimal(string(t.Amount))
		if err != nil {
			return RefundMoney{}, &FieldError{fmt.Sprintf("transactions[%d].amount", i), err.Error()}
		}
		cur := strings.ToUpper(strings.TrimSpace(t.Currency))
		if sums[cur] == nil {
			sums[cur] = new(big.Rat)
		}
		sums[cur].Add(sums[cur], a)
	}
	m := RefundMoney{Returned: map[string]string{}, In: map[string]string{}}
	for c, s := range sums {
		m.Returned[c] = FormatDecimal(s)
	}
	if len(sums) == 0 {
		return m, nil
	}
	if len(sums) == 1 {
		for c, s := range sums {
			if c != "" {
				m.In[c] = FormatDecimal(s)
			}
		}
	}
	a, b, totA, totB, ok := r.lineItemTotals()
	if !ok {
		return m, nil
	}
	// Each returned currency converted into target: the sum, or not at all.
	into := func(target string) (*big.Rat, bool) {
		total := new(big.Rat)
		for c, s := range sums {
			switch {
			case c == target:
				total.Add(total, s)
			case c == a && target == b, c == b && target == a:
				from, to := totA, totB
				if c == b {
					from, to = totB, totA
				}
				if s.Cmp(from) == 0 {
					total.Add(total, to)
					continue
				}
				v := new(big.Rat).Quo(new(big.Rat).Mul(s, to), from)
				v.SetString(v.FloatString(2)) // rounded half away from zero, to cents
				total.Add(total, v)
				m.Rated = true
			default:
				return nil, false
			}
		}
		return total, true
	}
	for _, target := range []string{a, b} {
		if v, ok := into(target); ok {
			m.In[target] = FormatDecimal(v)
		}
	}
	return m, nil
}

// lineItemTotals sums the refund line items' subtotal_set: a is the shop
// currency, b the presentment currency. ok is false when there are none, or
// they do not all name the same two distinct currencies with nonzero
// totals (no rate can be read from them).
func (r *ShopifyRefund) lineItemTotals() (a, b string, totA, totB *big.Rat, ok bool) {
	totA, totB = new(big.Rat), new(big.Rat)
	for i, li := range r.RefundLineItems {
		if li.SubtotalSet == nil {
			return "", "", nil, nil, false
		}
		ca := strings.ToUpper(strings.TrimSpace(li.SubtotalSet.ShopMoney.CurrencyCode))
		cb := strings.ToUpper(strings.TrimSpace(li.SubtotalSet.PresentmentMoney.CurrencyCode))
		if i == 0 {
			a, b = ca, cb
		}
		if ca != a || cb != b {
			return "", "", nil, nil, false
		}
		va, err1 := ParseDecimal(string(li.SubtotalSet.ShopMoney.Amount))
		vb, err2 := ParseDecimal(string(li.SubtotalSet.PresentmentMoney.Amount))
		if err1 != nil || err2 != nil {
			return "", "", nil, nil, false
		}
		totA.Add(totA, va)
		totB.Add(totB, vb)
	}
	if a == "" || b == "" || a == b || totA.Sign() == 0 || totB.Sign() == 0 {
		return "", "", nil, nil, false
	}
	return a, b, totA, totB, true
}
