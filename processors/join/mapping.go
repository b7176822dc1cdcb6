package join

import (
	"strconv"
	"strings"
	"time"

	"purchasesync/schemas"
)

// purchaseFromStorefront builds the purchase the browser registers.
func purchaseFromStorefront(site, orderNumber string, p *schemas.StorefrontPurchase, meta StorefrontMeta, receivedAt time.Time) *schemas.Purchase {
	pp, c := p.Purchase, p.Customer
	out := &schemas.Purchase{
		Site:            site,
		OrderNumber:     orderNumber,
		RegisteredVia:   schemas.ViaStorefront,
		Email:           strings.TrimSpace(c.Email),
		CustomerID:      strings.TrimSpace(string(c.CustomerID)),
		FirstName:       strings.TrimSpace(c.FirstName),
		LastName:        strings.TrimSpace(c.LastName),
		Subtotal:        schemas.StoredDecimal(string(pp.Subtotal)),
		Currency:        strings.ToUpper(strings.TrimSpace(pp.CurrencyISOCode)),
		Tax:             schemas.StoredDecimal(string(pp.TaxAmount)),
		DiscountAmount:  schemas.StoredDecimal(string(pp.DiscountAmount)),
		ShippingCost:    schemas.StoredDecimal(string(pp.ShippingAmount)),
		CouponCodes:     nonNil(pp.CouponCode),
		ShippingZip:     strings.TrimSpace(string(pp.ShippingZip)),
		ShippingAddress: strings.TrimSpace(pp.ShippingAddress),
		Items:           []schemas.Item{},
		IPAddress:       meta.ClientIP,
		TrafficSource:   strings.TrimSpace(c.TrafficSource),
		RegisteredAt:    receivedAt,
		ReceivedAt:      receivedAt,
		UpdatedAt:       receivedAt,
		Version:         1,
	}
	for _, it := range pp.Items {
		q, _ := strconv.ParseInt(strings.TrimSpace(string(it.Quantity)), 10, 64)
		out.Items = append(out.Items, schemas.Item{
			ProductID: strings.TrimSpace(string(it.ProductID)),
			Title:     it.Title,
			Price:     schemas.StoredDecimal(string(it.Price)),
			Quantity:  q,
		})
	}
	return out
}

// purchaseFromOrder builds the purchase a webhook (or reconciliation) would
// register, with Talkable's Purchase Syncing mapping.
func purchaseFromOrder(site, orderNumber string, o *schemas.ShopifyOrder, via string, receivedAt time.Time) *schemas.Purchase {
	id := string(o.ID)
	out := &schemas.Purchase{
		Site:             site,
		OrderNumber:      orderNumber,
		ShopifyOrderID:   &id,
		ShopifyOrderName: o.Name,
		RegisteredVia:    via,
		Email:            o.OrderEmail(),
		Subtotal:         schemas.StoredDecimal(o.PresentmentSubtotal()),
		Currency:         strings.ToUpper(o.PresentmentCurrencyCode()),
		Tax:              schemas.StoredDecimal(schemas.PresentmentAmount(o.TotalTaxSet)),
		DiscountAmount:   schemas.StoredDecimal(schemas.PresentmentAmount(o.TotalDiscountsSet)),
		ShippingCost:     schemas.StoredDecimal(schemas.PresentmentAmount(o.TotalShippingPriceSet)),
		CouponCodes:      []string{},
		ShippingAddress:  o.ShippingAddress.Joined(),
		Items:            []schemas.Item{},
		IPAddress:        o.BrowserIP,
		TrafficSource:    schemas.TrafficSourcePurchaseSyncing,
		Test:             o.Test,
		OrderCreatedAt:   o.CreatedAtTime(),
		ReceivedAt:       receivedAt,
	}
	for _, d := range o.DiscountCodes {
		if c := strings.TrimSpace(d.Code); c != "" {
			out.CouponCodes = append(out.CouponCodes, c)
		}
	}
	if o.Customer != nil {
		out.CustomerID = string(o.Customer.ID)
		out.FirstName, out.LastName = o.Customer.FirstName, o.Customer.LastName
	}
	if out.FirstName == "" && out.LastName == "" && o.ShippingAddress != nil {
		out.FirstName, out.LastName = o.ShippingAddress.FirstName, o.ShippingAddress.LastName
	}
	if o.ShippingAddress != nil {
		out.ShippingZip = strings.TrimSpace(o.ShippingAddress.Zip)
	}
	for _, li := range o.LineItems {
		price := string(li.Price)
		if a := schemas.PresentmentAmount(li.PriceSet); a != "" {
			price = a
		}
		out.Items = append(out.Items, schemas.Item{
			ProductID: string(li.ProductID),
			VariantID: string(li.VariantID),
			SKU:       li.SKU,
			Title:     li.Title,
			Price:     schemas.StoredDecimal(price),
			Quantity:  li.Quantity,
		})
	}
	return out
}

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}
