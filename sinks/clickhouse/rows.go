package clickhouse

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	dec "github.com/shopspring/decimal"

	"purchasesync/schemas"
)

// decimal is the driver's decimal type; it is only made for the row-by-row
// fallback (money.decimal), columns are loaded natively.
type decimal = dec.Decimal

// moneyScale is the scale of every Decimal(18, 4) column; four places keep
// three-decimal currencies (KWD, BHD, …) exact.
const moneyScale = 4

// DateTime holds seconds since 1970 in a UInt32.
var (
	minDateTime = time.Unix(0, 0).UTC()
	maxDateTime = time.Unix(1<<32-1, 0).UTC()
)

// errInvalid marks a record that can never be loaded: it goes to the
// dead-letter topic instead of the batch.
var errInvalid = errors.New("invalid for ClickHouse")

func invalid(field, format string, args ...any) error {
	return fmt.Errorf("%w: %s: %s", errInvalid, field, fmt.Sprintf(format, args...))
}

// money is a Decimal(18, 4) value in units of 0.0001; the zero value is
// NULL. Rows hold money as a plain value, not as the driver's decimal type:
// a shopspring decimal is a math/big integer, two allocations per amount
// and about a dozen per purchase, for a number that fits an int64.
type money struct {
	units int64
	valid bool
}

// decimal converts m for the driver's Append (nil for NULL).
func (m money) decimal() *decimal {
	if !m.valid {
		return nil
	}
	d := dec.New(m.units, -moneyScale)
	return &d
}

// parseMoney converts a decimal string to scale 4, rounding half away from
// zero: the driver truncates extra digits instead (12.34567 would become
// 12.3456), and money must round. Empty means unknown (NULL). The second
// result reports whether rounding changed the value. It parses into int64
// units of 0.0001 by hand: the same grammar as schemas.ParseDecimal (digits,
// one dot, a leading sign; no exponent), at a fraction of big.Rat's cost.
func parseMoney(field, s string) (money, bool, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return money{}, false, nil
	}
	bad := func() (money, bool, error) { return money{}, false, invalid(field, "%q is not a decimal number", s) }
	i, neg := 0, false
	if s[0] == '-' || s[0] == '+' {
		neg, i = s[0] == '-', 1
	}
	var units int64 // value × 10^4, truncated
	intDigits, fracDigits, rounded, roundUp := 0, 0, false, false
	dot := false
	for ; i < len(s); i++ {
		c := s[i]
		switch {
		case c == '.' && !dot:
			dot = true
		case c >= '0' && c <= '9':
			d := int64(c - '0')
			switch {
			case !dot:
				if intDigits > 0 || d != 0 {
					intDigits++
				}
				if intDigits > 14 {
					return money{}, false, invalid(field, "%s does not fit Decimal(18, 4)", s)
				}
				units = units*10 + d
			case fracDigits < moneyScale:
				fracDigits++
				units = units*10 + d
			default:
				if d != 0 {
					rounded = true
				}
				if fracDigits == moneyScale {
					roundUp = d >= 5 // the first dropped digit decides
				}
				fracDigits++
			}
		default:
			return bad()
		}
	}
	if i == 0 || (intDigits == 0 && fracDigits == 0 && !strings.ContainsAny(s, "0123456789")) {
		return bad()
	}
	for f := min(fracDigits, moneyScale); f < moneyScale; f++ {
		units *= 10
	}
	if roundUp {
		units++
		if units >= maxMoneyUnits {
			return money{}, false, invalid(field, "%s does not fit Decimal(18, 4)", s)
		}
	}
	if neg {
		units = -units
	}
	return money{units: units, valid: true}, rounded, nil
}

// maxMoneyUnits is the first value, in units of 0.0001, that Decimal(18, 4)
// cannot hold: 10^14.
const maxMoneyUnits = 100_000_000_000_000 * 10_000

// checkTime validates a time for a DateTime column. The driver would wrap
// a time outside 1970–2106 around silently.
func checkTime(field string, t time.Time) (time.Time, error) {
	if t.Before(minDateTime) || t.After(maxDateTime) {
		return time.Time{}, invalid(field, "%s is outside DateTime's range (1970 to 2106)", t.Format(time.RFC3339))
	}
	return t.UTC(), nil
}

// optTime maps the zero time to NULL and validates the rest.
func optTime(field string, t *time.Time) (*time.Time, error) {
	if t == nil || t.IsZero() {
		return nil, nil
	}
	v, err := checkTime(field, *t)
	if err != nil {
		return nil, err
	}
	return &v, nil
}

func boolUInt8(b bool) uint8 {
	if b {
		return 1
	}
	return 0
}

// purchaseRow is one purchases row, converted and validated.
type purchaseRow struct {
	Site, OrderNumber                                    string
	ShopifyOrderID                                       *string
	ShopifyOrderName, RegisteredVia                      string
	Matched                                              uint8
	Email, CustomerID, FirstName, LastName               string
	Subtotal                                             money
	Currency                                             string
	Tax, DiscountAmount, ShippingCost                    money
	CouponCodes                                          []string
	ShippingZip, ShippingAddress                         string
	ItemsProductID, ItemsVariantID, ItemsSKU, ItemsTitle []string
	ItemsPrice                                           []money
	ItemsQuantity                                        []int64
	IPAddress, TrafficSource                             string
	Test                                                 uint8
	RefundedAmount                                       money
	RefundedAt, OrderCreatedAt                           *time.Time
	RegisteredAt                                         time.Time
	ReceivedAt                                           *time.Time
	UpdatedAt                                            time.Time
	Version                                              uint64
	Rounded                                              int // money values that were rounded
}

// purchaseRowFrom converts a purchases.v1 value. Every error wraps
// errInvalid or is a decode error: either way the record is dead-lettered.
func purchaseRowFrom(value []byte) (*purchaseRow, error) {
	p, err := decodePurchase(value)
	if err != nil {
		return nil, err
	}
	return purchaseRowOf(p)
}

func purchaseRowOf(p *schemas.Purchase) (*purchaseRow, error) {
	r := &purchaseRow{
		Site: p.Site, OrderNumber: p.OrderNumber, ShopifyOrderID: p.ShopifyOrderID,
		ShopifyOrderName: p.ShopifyOrderName, RegisteredVia: p.RegisteredVia, Matched: boolUInt8(p.Matched),
		Email: p.Email, CustomerID: p.CustomerID, FirstName: p.FirstName, LastName: p.LastName,
		Currency: p.Currency, CouponCodes: nonNil(p.CouponCodes), ShippingZip: p.ShippingZip,
		ShippingAddress: p.ShippingAddress, IPAddress: p.IPAddress, TrafficSource: p.TrafficSource,
		Test: boolUInt8(p.Test), Version: p.Version,
	}
	if p.ShopifyOrderID != nil && *p.ShopifyOrderID == "" {
		r.ShopifyOrderID = nil
	}
	var err error
	amount := func(field, s string) money {
		if err != nil {
			return money{}
		}
		d, rounded, e := parseMoney(field, s)
		if rounded {
			r.Rounded++
		}
		err = e
		return d
	}
	r.Subtotal = amount("subtotal", p.Subtotal)
	r.Tax = amount("tax", p.Tax)
	r.DiscountAmount = amount("discount_amount", p.DiscountAmount)
	r.ShippingCost = amount("shipping_cost", p.ShippingCost)
	r.RefundedAmount = amount("refunded_amount", p.RefundedAmount)
	n := len(p.Items)
	r.ItemsProductID, r.ItemsVariantID = make([]string, n), make([]string, n)
	r.ItemsSKU, r.ItemsTitle = make([]string, n), make([]string, n)
	r.ItemsPrice, r.ItemsQuantity = make([]money, n), make([]int64, n)
	for i, it := range p.Items {
		r.ItemsProductID[i], r.ItemsVariantID[i] = it.ProductID, it.VariantID
		r.ItemsSKU[i], r.ItemsTitle[i] = it.SKU, it.Title
		if err != nil {
			continue // the row is refused already
		}
		if r.ItemsPrice[i] = amount("items[].price", it.Price); err != nil {
			// Name the item only now: a Sprintf per item would cost an
			// allocation per row.
			_, _, err = parseMoney(fmt.Sprintf("items[%d].price", i), it.Price)
		}
		r.ItemsQuantity[i] = it.Quantity
	}
	if err != nil {
		return nil, err
	}
	if r.RegisteredAt, err = checkTime("registered_at", p.RegisteredAt); err != nil {
		return nil, err
	}
	if r.UpdatedAt, err = checkTime("updated_at", p.UpdatedAt); err != nil {
		return nil, err
	}
	if r.RefundedAt, err = optTime("refunded_at", p.RefundedAt); err != nil {
		return nil, err
	}
	if r.OrderCreatedAt, err = optTime("order_created_at", &p.OrderCreatedAt); err != nil {
		return nil, err
	}
	if r.ReceivedAt, err = optTime("received_at", &p.ReceivedAt); err != nil {
		return nil, err
	}
	return r, nil
}

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

// discrepancyRow is one discrepancies row.
type discrepancyRow struct {
	Site, OrderNumber, Kind, Field, StorefrontValue, ShopifyValue string
	Test                                                          uint8
	DetectedAt                                                    time.Time
}

func discrepancyRowFrom(value []byte) (*discrepancyRow, error) {
	d, err := schemas.UnmarshalDiscrepancy(value)
	if err != nil {
		return nil, err
	}
	at, err := checkTime("detected_at", d.DetectedAt)
	if err != nil {
		return nil, err
	}
	return &discrepancyRow{Site: d.Site, OrderNumber: d.OrderNumber, Kind: d.Kind, Field: d.Field,
		StorefrontValue: d.StorefrontValue, ShopifyValue: d.ShopifyValue, Test: boolUInt8(d.Test), DetectedAt: at}, nil
}

// Sources of raw_events.
const (
	sourceShopify    = "shopify"
	sourceStorefront = "storefront"
)

// rawRow is one raw_events row.
type rawRow struct {
	Source, Site, OrderNumber                    string
	ReceivedAt                                   time.Time
	ShopDomain, ShopifyTopic, WebhookID, EventID string
	TriggeredAt, OrderCreatedAt                  *time.Time
	KafkaTopic                                   string
	KafkaPartition                               int32
	KafkaOffset                                  int64
	Body                                         string
}

// rawRecord is what rawRowFrom needs of a Kafka record (kept free of kgo so
// the conversion stays a pure function).
type rawRecord struct {
	Source    string
	Topic     string
	Partition int32
	Offset    int64
	Key       string
	// Headers are the record's, parsed (a storefront record's parse to
	// its received-at alone; the sink stores no other storefront header).
	Headers schemas.WebhookHeaders
	Value   []byte
}

// rawRowFrom converts a record of a raw topic. The body is stored byte for
// byte and never judged: only a malformed key or a missing received-at (both
// set by ingest) make the record unloadable.
func rawRowFrom(rec rawRecord) (*rawRow, error) {
	site, orderNumber, err := schemas.SplitKey(rec.Key)
	if err != nil {
		return nil, invalid("key", "%v", err)
	}
	h := &rec.Headers
	recv, err := parseHeaderTime(schemas.HeaderReceivedAt, string(h.ReceivedAt), true)
	if err != nil {
		return nil, err
	}
	r := &rawRow{Source: rec.Source, Site: site, OrderNumber: orderNumber, ReceivedAt: *recv,
		KafkaTopic: rec.Topic, KafkaPartition: rec.Partition, KafkaOffset: rec.Offset, Body: string(rec.Value)}
	if rec.Source == sourceShopify {
		r.ShopDomain = string(h.ShopDomain)
		r.ShopifyTopic = string(h.Topic)
		r.WebhookID = string(h.WebhookID)
		r.EventID = string(h.EventID)
		// Shopify's triggered-at is informative only; a bad one is dropped
		// rather than losing the event.
		r.TriggeredAt, _ = parseHeaderTime(schemas.HeaderTriggeredAt, string(h.TriggeredAt), false)
		// An order's creation time, read from orders only: on
		// shopify.orders.v1 every record that is not a refund is an order.
		if !h.IsRefund() {
			r.OrderCreatedAt = orderCreatedAt(rec.Value)
		}
	}
	return r, nil
}

func parseHeaderTime(name, v string, required bool) (*time.Time, error) {
	if v == "" {
		if required {
			return nil, invalid(name+" header", "missing")
		}
		return nil, nil
	}
	t, err := time.Parse(time.RFC3339Nano, v)
	if err != nil {
		return nil, invalid(name+" header", "%q is not an RFC 3339 time", v)
	}
	t, err = checkTime(name+" header", t)
	if err != nil {
		return nil, err
	}
	return &t, nil
}

// orderCreatedAt reads the top-level created_at of an orders/create body, or
// nil. Only the webhook-delay view uses it.
func orderCreatedAt(body []byte) *time.Time {
	var o struct {
		CreatedAt string `json:"created_at"`
	}
	if json.Unmarshal(body, &o) != nil || o.CreatedAt == "" {
		return nil
	}
	t, err := time.Parse(time.RFC3339, o.CreatedAt)
	if err != nil {
		return nil
	}
	v, err := optTime("created_at", &t)
	if err != nil {
		return nil
	}
	return v
}
