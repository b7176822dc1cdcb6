package clickhouse

import (
	"slices"
	"strings"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"

	"purchasesync/sinks/internal/chschema"
)

// column is one ClickHouse column of a batch under construction, held as the
// typed Go slice the driver's columnar Append takes.
type column interface {
	name() string
	values() any                          // the whole slice
	appendTo(bc driver.BatchColumn) error // the whole column, into a batch
	at(i int) any                         // one value, for the row-by-row fallback
	cut(i int)                            // drop row i
	reset()
}

type col[T any] struct {
	n string
	v []T
}

func (c *col[T]) name() string { return c.n }
func (c *col[T]) values() any  { return c.v }

// appendTo appends the whole column. Array columns go row by row: the
// driver's columnar Append reaches each row through reflection, while its
// AppendRow has a fast path for typed slices.
func (c *col[T]) appendTo(bc driver.BatchColumn) error {
	switch any(c.v).(type) {
	case []money, [][]money:
		// Normally loaded natively (native.go); the driver takes decimals.
		for i := range c.v {
			if err := bc.AppendRow(c.at(i)); err != nil {
				return err
			}
		}
		return nil
	case [][]string, [][]int64:
		for i := range c.v {
			if err := bc.AppendRow(c.v[i]); err != nil {
				return err
			}
		}
		return nil
	}
	return bc.Append(c.v)
}

func (c *col[T]) at(i int) any {
	switch v := any(c.v[i]).(type) {
	case money:
		return v.decimal()
	case []money:
		out := make([]*decimal, len(v))
		for j, m := range v {
			out[j] = m.decimal()
		}
		return out
	}
	return c.v[i]
}
func (c *col[T]) cut(i int) { c.v = slices.Delete(c.v, i, i+1) }
func (c *col[T]) reset()    { clear(c.v); c.v = c.v[:0] }
func (c *col[T]) add(v T)   { c.v = append(c.v, v) }
func newCol[T any](t *table, name string) *col[T] {
	c := &col[T]{n: name}
	t.cols = append(t.cols, c)
	return c
}

// rowRef says where a buffered row came from, for dead-lettering it if the
// driver refuses it, and when ingest received it, for the latency metric.
type rowRef struct {
	topic      string
	partition  int32
	offset     int64
	key        []byte
	receivedAt time.Time // zero when unknown
}

// table buffers the rows of one ClickHouse table between inserts. Its
// columns are declared once, in table order, and the INSERT's explicit column
// list is built from them, so the two cannot drift apart.
type table struct {
	name  string
	cols  []column
	refs  []rowRef
	bytes int
}

func (t *table) len() int { return len(t.refs) }

// insertSQL is the statement PrepareBatch takes. 18.16 answers an INSERT
// without a column list with an empty header, so the list is never omitted.
func (t *table) insertSQL() string {
	names := make([]string, len(t.cols))
	for i, c := range t.cols {
		names[i] = c.name()
	}
	return "INSERT INTO " + t.name + " (" + strings.Join(names, ", ") + ")"
}

func (t *table) cut(i int) {
	for _, c := range t.cols {
		c.cut(i)
	}
	t.refs = slices.Delete(t.refs, i, i+1)
}

func (t *table) reset() {
	for _, c := range t.cols {
		c.reset()
	}
	clear(t.refs)
	t.refs = t.refs[:0]
	t.bytes = 0
}

// purchasesTable holds purchases rows; field order is table order.
type purchasesTable struct {
	table
	site, orderNumber                                    *col[string]
	shopifyOrderID                                       *col[*string]
	shopifyOrderName, registeredVia                      *col[string]
	matched                                              *col[uint8]
	email, customerID, firstName, lastName               *col[string]
	subtotal                                             *col[money]
	currency                                             *col[string]
	tax, discountAmount, shippingCost                    *col[money]
	couponCodes                                          *col[[]string]
	shippingZip, shippingAddress                         *col[string]
	itemsProductID, itemsVariantID, itemsSKU, itemsTitle *col[[]string]
	itemsPrice                                           *col[[]money]
	itemsQuantity                                        *col[[]int64]
	ipAddress, trafficSource                             *col[string]
	test                                                 *col[uint8]
	refundedAmount                                       *col[money]
	refundedAt, orderCreatedAt                           *col[*time.Time]
	registeredAt                                         *col[time.Time]
	receivedAt                                           *col[*time.Time]
	updatedAt                                            *col[time.Time]
	version                                              *col[uint64]
}

func newPurchasesTable() *purchasesTable {
	t := &purchasesTable{table: table{name: chschema.Purchases}}
	tb := &t.table
	t.site = newCol[string](tb, "site")
	t.orderNumber = newCol[string](tb, "order_number")
	t.shopifyOrderID = newCol[*string](tb, "shopify_order_id")
	t.shopifyOrderName = newCol[string](tb, "shopify_order_name")
	t.registeredVia = newCol[string](tb, "registered_via")
	t.matched = newCol[uint8](tb, "matched")
	t.email = newCol[string](tb, "email")
	t.customerID = newCol[string](tb, "customer_id")
	t.firstName = newCol[string](tb, "first_name")
	t.lastName = newCol[string](tb, "last_name")
	t.subtotal = newCol[money](tb, "subtotal")
	t.currency = newCol[string](tb, "currency")
	t.tax = newCol[money](tb, "tax")
	t.discountAmount = newCol[money](tb, "discount_amount")
	t.shippingCost = newCol[money](tb, "shipping_cost")
	t.couponCodes = newCol[[]string](tb, "coupon_codes")
	t.shippingZip = newCol[string](tb, "shipping_zip")
	t.shippingAddress = newCol[string](tb, "shipping_address")
	t.itemsProductID = newCol[[]string](tb, "items_product_id")
	t.itemsVariantID = newCol[[]string](tb, "items_variant_id")
	t.itemsSKU = newCol[[]string](tb, "items_sku")
	t.itemsTitle = newCol[[]string](tb, "items_title")
	t.itemsPrice = newCol[[]money](tb, "items_price")
	t.itemsQuantity = newCol[[]int64](tb, "items_quantity")
	t.ipAddress = newCol[string](tb, "ip_address")
	t.trafficSource = newCol[string](tb, "traffic_source")
	t.test = newCol[uint8](tb, "test")
	t.refundedAmount = newCol[money](tb, "refunded_amount")
	t.refundedAt = newCol[*time.Time](tb, "refunded_at")
	t.orderCreatedAt = newCol[*time.Time](tb, "order_created_at")
	t.registeredAt = newCol[time.Time](tb, "registered_at")
	t.receivedAt = newCol[*time.Time](tb, "received_at")
	t.updatedAt = newCol[time.Time](tb, "updated_at")
	t.version = newCol[uint64](tb, "version")
	return t
}

// add appends a converted row; r must come from purchaseRow (validated).
func (t *purchasesTable) add(r *purchaseRow, ref rowRef, size int) {
	t.site.add(r.Site)
	t.orderNumber.add(r.OrderNumber)
	t.shopifyOrderID.add(r.ShopifyOrderID)
	t.shopifyOrderName.add(r.ShopifyOrderName)
	t.registeredVia.add(r.RegisteredVia)
	t.matched.add(r.Matched)
	t.email.add(r.Email)
	t.customerID.add(r.CustomerID)
	t.firstName.add(r.FirstName)
	t.lastName.add(r.LastName)
	t.subtotal.add(r.Subtotal)
	t.currency.add(r.Currency)
	t.tax.add(r.Tax)
	t.discountAmount.add(r.DiscountAmount)
	t.shippingCost.add(r.ShippingCost)
	t.couponCodes.add(r.CouponCodes)
	t.shippingZip.add(r.ShippingZip)
	t.shippingAddress.add(r.ShippingAddress)
	t.itemsProductID.add(r.ItemsProductID)
	t.itemsVariantID.add(r.ItemsVariantID)
	t.itemsSKU.add(r.ItemsSKU)
	t.itemsTitle.add(r.ItemsTitle)
	t.itemsPrice.add(r.ItemsPrice)
	t.itemsQuantity.add(r.ItemsQuantity)
	t.ipAddress.add(r.IPAddress)
	t.trafficSource.add(r.TrafficSource)
	t.test.add(r.Test)
	t.refundedAmount.add(r.RefundedAmount)
	t.refundedAt.add(r.RefundedAt)
	t.orderCreatedAt.add(r.OrderCreatedAt)
	t.registeredAt.add(r.RegisteredAt)
	t.receivedAt.add(r.ReceivedAt)
	t.updatedAt.add(r.UpdatedAt)
	t.version.add(r.Version)
	t.refs = append(t.refs, ref)
	t.bytes += size
}

// discrepanciesTable holds discrepancies rows.
type discrepanciesTable struct {
	table
	site, orderNumber, kind, field, storefrontValue, shopifyValue *col[string]
	test                                                          *col[uint8]
	detectedAt                                                    *col[time.Time]
}

func newDiscrepanciesTable() *discrepanciesTable {
	t := &discrepanciesTable{table: table{name: chschema.Discrepancies}}
	tb := &t.table
	t.site = newCol[string](tb, "site")
	t.orderNumber = newCol[string](tb, "order_number")
	t.kind = newCol[string](tb, "kind")
	t.field = newCol[string](tb, "field")
	t.storefrontValue = newCol[string](tb, "storefront_value")
	t.shopifyValue = newCol[string](tb, "shopify_value")
	t.test = newCol[uint8](tb, "test")
	t.detectedAt = newCol[time.Time](tb, "detected_at")
	return t
}

func (t *discrepanciesTable) add(r *discrepancyRow, ref rowRef, size int) {
	t.site.add(r.Site)
	t.orderNumber.add(r.OrderNumber)
	t.kind.add(r.Kind)
	t.field.add(r.Field)
	t.storefrontValue.add(r.StorefrontValue)
	t.shopifyValue.add(r.ShopifyValue)
	t.test.add(r.Test)
	t.detectedAt.add(r.DetectedAt)
	t.refs = append(t.refs, ref)
	t.bytes += size
}

// rawEventsTable holds raw_events rows.
type rawEventsTable struct {
	table
	source, site, orderNumber                    *col[string]
	receivedAt                                   *col[time.Time]
	shopDomain, shopifyTopic, webhookID, eventID *col[string]
	triggeredAt, orderCreatedAt                  *col[*time.Time]
	kafkaTopic                                   *col[string]
	kafkaPartition                               *col[int32]
	kafkaOffset                                  *col[int64]
	body                                         *col[string]
}

func newRawEventsTable() *rawEventsTable {
	t := &rawEventsTable{table: table{name: chschema.RawEvents}}
	tb := &t.table
	t.source = newCol[string](tb, "source")
	t.site = newCol[string](tb, "site")
	t.orderNumber = newCol[string](tb, "order_number")
	t.receivedAt = newCol[time.Time](tb, "received_at")
	t.shopDomain = newCol[string](tb, "shop_domain")
	t.shopifyTopic = newCol[string](tb, "shopify_topic")
	t.webhookID = newCol[string](tb, "webhook_id")
	t.eventID = newCol[string](tb, "event_id")
	t.triggeredAt = newCol[*time.Time](tb, "triggered_at")
	t.orderCreatedAt = newCol[*time.Time](tb, "order_created_at")
	t.kafkaTopic = newCol[string](tb, "kafka_topic")
	t.kafkaPartition = newCol[int32](tb, "kafka_partition")
	t.kafkaOffset = newCol[int64](tb, "kafka_offset")
	t.body = newCol[string](tb, "body")
	return t
}

func (t *rawEventsTable) add(r *rawRow, ref rowRef, size int) {
	t.source.add(r.Source)
	t.site.add(r.Site)
	t.orderNumber.add(r.OrderNumber)
	t.receivedAt.add(r.ReceivedAt)
	t.shopDomain.add(r.ShopDomain)
	t.shopifyTopic.add(r.ShopifyTopic)
	t.webhookID.add(r.WebhookID)
	t.eventID.add(r.EventID)
	t.triggeredAt.add(r.TriggeredAt)
	t.orderCreatedAt.add(r.OrderCreatedAt)
	t.kafkaTopic.add(r.KafkaTopic)
	t.kafkaPartition.add(r.KafkaPartition)
	t.kafkaOffset.add(r.KafkaOffset)
	t.body.add(r.Body)
	t.refs = append(t.refs, ref)
	t.bytes += size
}
