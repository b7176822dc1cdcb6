package join

import (
	"strconv"
	"strings"
	"time"

	"purchasesync/schemas"
)

// storefrontFacts extracts the compared fields of a storefront event.
func storefrontFacts(p *schemas.StorefrontPurchase) *Facts {
	return &Facts{
		Email:       strings.TrimSpace(p.Customer.Email),
		Subtotal:    canonical(string(p.Purchase.Subtotal)),
		Currency:    strings.ToUpper(strings.TrimSpace(p.Purchase.CurrencyISOCode)),
		CouponCodes: p.Purchase.CouponCode,
		CustomerID:  strings.TrimSpace(string(p.Customer.CustomerID)),
		ShippingZip: strings.TrimSpace(string(p.Purchase.ShippingZip)),
	}
}

// shopifyFacts extracts the compared fields of a Shopify order, reading money
// in the buyer's (presentment) currency as Talkable does.
func shopifyFacts(o *schemas.ShopifyOrder) *Facts {
	f := &Facts{
		Email:    o.OrderEmail(),
		Subtotal: canonical(o.PresentmentSubtotal()),
		Currency: strings.ToUpper(o.PresentmentCurrencyCode()),
	}
	for _, d := range o.DiscountCodes {
		if c := strings.TrimSpace(d.Code); c != "" {
			f.CouponCodes = append(f.CouponCodes, c)
		}
	}
	if o.Customer != nil {
		f.CustomerID = string(o.Customer.ID)
	}
	if o.ShippingAddress != nil {
		f.ShippingZip = strings.TrimSpace(o.ShippingAddress.Zip)
	}
	return f
}

// canonical formats a decimal for storage; an unparsable value is kept as
// sent (the comparison reports it).
func canonical(s string) string {
	c, err := schemas.CanonicalDecimal(s)
	if err != nil {
		return strings.TrimSpace(s)
	}
	return c
}

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
		Subtotal:        canonical(string(pp.Subtotal)),
		Currency:        strings.ToUpper(strings.TrimSpace(pp.CurrencyISOCode)),
		Tax:             canonical(string(pp.TaxAmount)),
		DiscountAmount:  canonical(string(pp.DiscountAmount)),
		ShippingCost:    canonical(string(pp.ShippingAmount)),
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
			Price:     canonical(string(it.Price)),
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
		Subtotal:         canonical(o.PresentmentSubtotal()),
		Currency:         strings.ToUpper(o.PresentmentCurrencyCode()),
		Tax:              canonical(schemas.PresentmentAmount(o.TotalTaxSet)),
		DiscountAmount:   canonical(schemas.PresentmentAmount(o.TotalDiscountsSet)),
		ShippingCost:     canonical(schemas.PresentmentAmount(o.TotalShippingPriceSet)),
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
			Price:     canonical(price),
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
