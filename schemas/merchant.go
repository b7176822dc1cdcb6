package schemas

import "time"

// MerchantStats is what the Shopify Integration page shows of a site's
// traffic, read from ClickHouse: the last webhook received, today's
// purchases by registered_via, and the latest discrepancies.
type MerchantStats struct {
	LastWebhookAt  *time.Time        `json:"last_webhook_at"`
	PurchasesToday map[string]uint64 `json:"purchases_today"`
	Discrepancies  []Discrepancy     `json:"discrepancies"`
}
