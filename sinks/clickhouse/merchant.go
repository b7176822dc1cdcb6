package clickhouse

import (
	"context"
	"fmt"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"

	"purchasesync/schemas"
)

// Merchant reads what the merchant's Shopify Integration page shows of a
// site (processors/control/page): three small queries on the site's own
// rows (every table's ORDER BY starts with site).
type Merchant struct{ Conn driver.Conn }

// Merchant returns the last orders/create webhook received, the purchases
// registered on day (UTC) by registered_via (test orders left out, as in
// every view), and the latest discrepancies, newest first.
func (m Merchant) Merchant(ctx context.Context, site string, day time.Time, latest int) (*schemas.MerchantStats, error) {
	st := &schemas.MerchantStats{PurchasesToday: map[string]uint64{}}
	var last time.Time
	var n uint64
	if err := m.Conn.QueryRow(ctx, `SELECT max(received_at), count() FROM raw_events
	    WHERE site = ? AND source = 'shopify' AND shopify_topic = 'orders/create'`, site).Scan(&last, &n); err != nil {
		return nil, fmt.Errorf("cannot read the last webhook of %s: %w", site, err)
	}
	if n > 0 {
		last = last.UTC()
		st.LastWebhookAt = &last
	}
	rows, err := m.Conn.Query(ctx, `SELECT registered_via, count() FROM purchases FINAL
	    WHERE site = ? AND toDate(registered_at) = toDate(?) AND test = 0 GROUP BY registered_via`, site, day.UTC().Format("2006-01-02 15:04:05"))
	if err != nil {
		return nil, fmt.Errorf("cannot count the purchases of %s: %w", site, err)
	}
	for rows.Next() {
		var via string
		var c uint64
		if err := rows.Scan(&via, &c); err != nil {
			rows.Close()
			return nil, fmt.Errorf("cannot count the purchases of %s: %w", site, err)
		}
		st.PurchasesToday[via] = c
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("cannot count the purchases of %s: %w", site, err)
	}
	rows, err = m.Conn.Query(ctx, `SELECT order_number, toString(kind), field, storefront_value, shopify_value, test, detected_at
	    FROM discrepancies FINAL WHERE site = ? ORDER BY detected_at DESC, order_number LIMIT ?`, site, latest)
	if err != nil {
		return nil, fmt.Errorf("cannot read the discrepancies of %s: %w", site, err)
	}
	defer rows.Close()
	for rows.Next() {
		d := schemas.Discrepancy{Site: site}
		var test uint8
		if err := rows.Scan(&d.OrderNumber, &d.Kind, &d.Field, &d.StorefrontValue, &d.ShopifyValue, &test, &d.DetectedAt); err != nil {
			return nil, fmt.Errorf("cannot read the discrepancies of %s: %w", site, err)
		}
		d.Test = test == 1
		st.Discrepancies = append(st.Discrepancies, d)
	}
	return st, rows.Err()
}
