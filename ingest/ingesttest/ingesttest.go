// Package ingesttest makes realistic synthetic purchases for tests and
// cmd/loadgen: Shopify orders/create bodies shaped like Shopify's REST Order
// JSON (line items, money sets, addresses, unicode, ids above 2^53) and the
// matching storefront events with Talkable's register_purchase field names.
// The same Purchase renders both sides, so the join can match them.
package ingesttest

import (
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"strconv"
	"strings"
	"time"

	"purchasesync/schemas"
)

// Item is one line item.
type Item struct {
	LineID     uint64
	ProductID  uint64
	VariantID  uint64
	SKU        string
	Title      string
	Variant    string
	Vendor     string
	PriceCents int64
	Quantity   int64
}

// Purchase is one synthetic purchase.
type Purchase struct {
	ID          uint64 // Shopify order id, above 2^53
	OrderNumber int64  // 1001, ...
	Name        string // "#1001"
	Email       string
	CustomerID  uint64
	FirstName   string
	LastName    string
	Currency    string
	Coupon      string
	Items       []Item
	Address     Address
	BrowserIP   string
	CreatedAt   time.Time
	Note        string
	// Trimmed renders only the fields Purchase Syncing reads, as a
	// subscription created with includeFields delivers them (about 1 KB).
	Trimmed bool
	// Drift makes the storefront event disagree with Shopify on one field,
	// the way real integrations do (one of Drifts; "" = agree).
	Drift string
	// Test marks a Shopify test order ("test": true in the webhook).
	Test bool
	// ShopCurrency, when set and not Currency, is the shop's own currency:
	// the buyer paid in Currency (Shopify's presentment currency), and the
	// order's shop_money amounts and top-level prices are in ShopCurrency at
	// a rate of 1.10, as for a store selling abroad.
	ShopCurrency string
}

// Drifts are the storefront mistakes Drift can simulate, each a field the
// join compares: a typed-in email, a subtotal that includes shipping, a
// coupon the shop does not know, a zip from the billing address.
var Drifts = []string{"email", "subtotal", "coupon_codes", "shipping_zip"}

// Address is a shipping address.
type Address struct {
	Address1, Address2, City, Province, Zip, Country, CountryCode string
}

var (
	firstNames = []string{"Zoë", "Ana", "José", "Łukasz", "Søren", "Chloé", "Mia", "Ngọc", "Hiroshi", "Ayşe", "Björn", "Olga", "Priya", "Liam", "雷", "Émile"}
	lastNames  = []string{"Ångström", "García", "Nowak", "Müller", "Østergaard", "Dubois", "Smith", "Nguyễn", "田中", "Yılmaz", "Lindqvist", "Иванова", "Sharma", "O'Brien", "李", "Lefèvre"}
	products   = []string{"Organic Cotton T-Shirt", "Café Crème Mug ☕", "Wool Beanie – Charcoal", "Trail Runner GTX", "Linen Duvet Cover (Queen)", "Matcha Starter Kit 抹茶", "Leather Card Holder", "Bamboo Toothbrush ×4", "Ceramic Planter 🌱", "Merino Socks — 3 pack", "Noise-Cancelling Earbuds", "Hand Cream «Lavande»", "Kids' Rain Jacket", "Cast Iron Skillet 26 cm", "Yoga Mat Pro", "Chai Spice Blend"}
	vendors    = []string{"Acme Goods", "Nordisk Design", "Maison Lumière", "東京 Supply", "Green Leaf Co."}
	variants   = []string{"S / Black", "M / Navy", "L / Heather Grey", "One size", "Queen / Sand", "40 EU", "250 g", "Blue"}
	cities     = []Address{
		{City: "Ottawa", Province: "Ontario", Zip: "K2P 1L4", Country: "Canada", CountryCode: "CA"},
		{City: "München", Province: "Bayern", Zip: "80331", Country: "Germany", CountryCode: "DE"},
		{City: "São Paulo", Province: "SP", Zip: "01310-100", Country: "Brazil", CountryCode: "BR"},
		{City: "Brooklyn", Province: "New York", Zip: "11201", Country: "United States", CountryCode: "US"},
		{City: "Kraków", Province: "Małopolskie", Zip: "31-008", Country: "Poland", CountryCode: "PL"},
		{City: "東京都", Province: "Tokyo", Zip: "100-0001", Country: "Japan", CountryCode: "JP"},
	}
	streets    = []string{"Wellington St", "Kaufingerstraße", "Avenida Paulista", "Atlantic Ave", "ul. Floriańska", "丸の内"}
	currencies = []string{"USD", "CAD", "EUR", "BRL", "PLN", "JPY"}
	coupons    = []string{"", "", "WELCOME10", "SPRING-SALE", "FRIEND-20"}
	notes      = []string{"", "Please gift wrap 🎁", "Leave at the door, merci !", "配達前に電話してください", "Birthday present — no invoice in the box"}
)

// MinID is the smallest order id generated: 2^53, so every id is one that a
// float64 (JavaScript, encoding/json into any) would corrupt.
const MinID uint64 = 1 << 53

// NewPurchase makes purchase number seq; items is the line item count
// (1 to 22 gives bodies of about 1.5 to 30 KB).
func NewPurchase(rng *rand.Rand, seq int64, items int) Purchase {
	if items < 1 {
		items = 1
	}
	p := Purchase{
		ID:          MinID + uint64(rng.Int64N(1<<60)) + uint64(seq),
		OrderNumber: 1000 + seq,
		FirstName:   firstNames[rng.IntN(len(firstNames))],
		LastName:    lastNames[rng.IntN(len(lastNames))],
		CustomerID:  MinID + uint64(rng.Int64N(1<<58)),
		Currency:    currencies[rng.IntN(len(currencies))],
		Coupon:      coupons[rng.IntN(len(coupons))],
		CreatedAt:   time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC).Add(time.Duration(seq) * time.Second),
		Note:        notes[rng.IntN(len(notes))],
		BrowserIP:   fmt.Sprintf("203.0.113.%d", 1+rng.IntN(254)),
		Trimmed:     rng.IntN(5) == 0,
	}
	p.Name = "#" + strconv.FormatInt(p.OrderNumber, 10)
	p.Email = fmt.Sprintf("buyer.%d@example.com", seq)
	a := cities[rng.IntN(len(cities))]
	a.Address1 = fmt.Sprintf("%d %s", 1+rng.IntN(900), streets[rng.IntN(len(streets))])
	if rng.IntN(3) == 0 {
		a.Address2 = fmt.Sprintf("Apt %d", 1+rng.IntN(40))
	}
	p.Address = a
	for i := range items {
		p.Items = append(p.Items, Item{
			LineID:     MinID + uint64(rng.Int64N(1<<60)),
			ProductID:  MinID + uint64(rng.Int64N(1<<50)),
			VariantID:  MinID + uint64(rng.Int64N(1<<50)),
			SKU:        fmt.Sprintf("SKU-%05d-%d", rng.IntN(100000), i),
			Title:      products[rng.IntN(len(products))],
			Variant:    variants[rng.IntN(len(variants))],
			Vendor:     vendors[rng.IntN(len(vendors))],
			PriceCents: 199 + rng.Int64N(20000),
			Quantity:   1 + rng.Int64N(3),
		})
	}
	return p
}

// ItemsForSize picks a line-item count giving bodies between 1 and 30 KB,
// most of them small as real orders are.
func ItemsForSize(rng *rand.Rand) int {
	switch r := rng.IntN(100); {
	case r < 60:
		return 1 + rng.IntN(3)
	case r < 90:
		return 4 + rng.IntN(8)
	default:
		return 12 + rng.IntN(11)
	}
}

// SubtotalCents is the sum of the line items.
func (p Purchase) SubtotalCents() int64 {
	var s int64
	for _, it := range p.Items {
		s += it.PriceCents * it.Quantity
	}
	return s
}

// Money formats cents as a decimal string ("12.34").
func Money(cents int64) string { return fmt.Sprintf("%d.%02d", cents/100, cents%100) }

// OrderNumberFor is the storefront order_number for a site's mode.
func (p Purchase) OrderNumberFor(mode schemas.OrderKey) string {
	switch mode {
	case schemas.OrderKeyNumber:
		return strconv.FormatInt(p.OrderNumber, 10)
	case schemas.OrderKeyName:
		return p.Name
	}
	return strconv.FormatUint(p.ID, 10)
}

// Key is the record key both sides of this purchase get on a site.
func (p Purchase) Key(site string, mode schemas.OrderKey) string {
	return schemas.Key(site, p.OrderNumberFor(mode))
}

type money struct {
	Amount       string `json:"amount"`
	CurrencyCode string `json:"currency_code"`
}

type moneySet struct {
	ShopMoney        money `json:"shop_money"`
	PresentmentMoney money `json:"presentment_money"`
}

// set is a money set of cents in the presentment currency.
func (p Purchase) set(cents int64) moneySet {
	shopCur, shopCents := p.shopMoney(cents)
	return moneySet{money{Money(shopCents), shopCur}, money{Money(cents), p.Currency}}
}

// shopMoney converts presentment cents to the shop's currency.
func (p Purchase) shopMoney(cents int64) (string, int64) {
	if p.ShopCurrency == "" || p.ShopCurrency == p.Currency {
		return p.Currency, cents
	}
	return p.ShopCurrency, cents * 11 / 10
}

// shopPrice is a top-level price string, which Shopify gives in the shop's
// currency.
func (p Purchase) shopPrice(cents int64) string {
	_, c := p.shopMoney(cents)
	return Money(c)
}

// OrderBody renders the orders/create webhook body. Ids are uint64 so the
// encoder writes their exact digits.
func (p Purchase) OrderBody() []byte {
	sub := p.SubtotalCents()
	tax := sub * 13 / 100
	ship := int64(799)
	var disc int64
	type discountCode struct {
		Code   string `json:"code"`
		Amount string `json:"amount"`
		Type   string `json:"type"`
	}
	codes := []discountCode{}
	if p.Coupon != "" {
		disc = sub / 10
		codes = append(codes, discountCode{p.Coupon, Money(disc), "percentage"})
	}
	lineItems := make([]map[string]any, 0, len(p.Items))
	for _, it := range p.Items {
		lineItems = append(lineItems, map[string]any{
			"id":                           it.LineID,
			"admin_graphql_api_id":         fmt.Sprintf("gid://shopify/LineItem/%d", it.LineID),
			"attributed_staffs":            []any{},
			"current_quantity":             it.Quantity,
			"fulfillable_quantity":         it.Quantity,
			"fulfillment_service":          "manual",
			"fulfillment_status":           nil,
			"gift_card":                    false,
			"grams":                        250 + it.PriceCents%700,
			"name":                         it.Title + " - " + it.Variant,
			"price":                        Money(it.PriceCents),
			"price_set":                    p.set(it.PriceCents),
			"product_exists":               true,
			"product_id":                   it.ProductID,
			"properties":                   []map[string]string{{"name": "engraving", "value": "Für " + p.FirstName}},
			"quantity":                     it.Quantity,
			"requires_shipping":            true,
			"sku":                          it.SKU,
			"taxable":                      true,
			"title":                        it.Title,
			"total_discount":               "0.00",
			"total_discount_set":           p.set(0),
			"variant_id":                   it.VariantID,
			"variant_inventory_management": "shopify",
			"variant_title":                it.Variant,
			"vendor":                       it.Vendor,
			"tax_lines":                    []map[string]any{{"channel_liable": false, "price": Money(it.PriceCents * 13 / 100), "price_set": p.set(it.PriceCents * 13 / 100), "rate": 0.13, "title": "HST"}},
			"duties":                       []any{},
			"discount_allocations":         []any{},
		})
	}
	addr := map[string]any{
		"first_name": p.FirstName, "last_name": p.LastName, "name": p.FirstName + " " + p.LastName,
		"address1": p.Address.Address1, "address2": p.Address.Address2, "city": p.Address.City,
		"province": p.Address.Province, "zip": p.Address.Zip, "country": p.Address.Country,
		"country_code": p.Address.CountryCode, "phone": "+1 555-0100", "company": nil,
		"latitude": 45.4215, "longitude": -75.6972,
	}
	created := p.CreatedAt.Format(time.RFC3339)
	shopCur, _ := p.shopMoney(0)
	total := sub - disc + tax + ship
	order := map[string]any{
		"id":                       p.ID,
		"admin_graphql_api_id":     fmt.Sprintf("gid://shopify/Order/%d", p.ID),
		"app_id":                   580111,
		"browser_ip":               p.BrowserIP,
		"buyer_accepts_marketing":  false,
		"cancel_reason":            nil,
		"cancelled_at":             nil,
		"cart_token":               fmt.Sprintf("c1-%x", p.ID),
		"checkout_id":              p.ID / 3,
		"checkout_token":           fmt.Sprintf("%032x", p.ID),
		"client_details":           map[string]any{"accept_language": "fr-CA,fr;q=0.9", "browser_ip": p.BrowserIP, "user_agent": "Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X)"},
		"confirmation_number":      fmt.Sprintf("X%08X", p.ID%0xffffffff),
		"confirmed":                true,
		"contact_email":            p.Email,
		"created_at":               created,
		"currency":                 shopCur,
		"current_subtotal_price":   p.shopPrice(sub - disc),
		"current_total_price":      p.shopPrice(total),
		"customer_locale":          "fr-CA",
		"discount_codes":           codes,
		"email":                    p.Email,
		"estimated_taxes":          false,
		"financial_status":         "paid",
		"fulfillment_status":       nil,
		"landing_site":             "/products/gift?utm_source=talkable",
		"name":                     p.Name,
		"note":                     p.Note,
		"note_attributes":          []map[string]string{{"name": "gift", "value": "yes"}},
		"number":                   p.OrderNumber - 1000,
		"order_number":             p.OrderNumber,
		"order_status_url":         fmt.Sprintf("https://shop.example.com/%d/orders/%x/authenticate", p.ID%100000, p.ID),
		"payment_gateway_names":    []string{"shopify_payments"},
		"phone":                    nil,
		"presentment_currency":     p.Currency,
		"processed_at":             created,
		"source_name":              "web",
		"subtotal_price":           p.shopPrice(sub - disc),
		"subtotal_price_set":       p.set(sub - disc),
		"tags":                     "talkable, referral",
		"tax_lines":                []map[string]any{{"price": Money(tax), "rate": 0.13, "title": "HST", "price_set": p.set(tax), "channel_liable": false}},
		"taxes_included":           false,
		"test":                     p.Test,
		"token":                    fmt.Sprintf("%032x", p.ID^0x5a5a5a5a),
		"total_discounts":          p.shopPrice(disc),
		"total_discounts_set":      p.set(disc),
		"total_line_items_price":   p.shopPrice(sub),
		"total_price":              p.shopPrice(total),
		"total_price_set":          p.set(total),
		"total_shipping_price_set": p.set(ship),
		"total_tax":                p.shopPrice(tax),
		"total_tax_set":            p.set(tax),
		"total_weight":             1200,
		"updated_at":               created,
		"user_id":                  nil,
		"billing_address":          addr,
		"shipping_address":         addr,
		"customer": map[string]any{
			"id": p.CustomerID, "email": p.Email, "first_name": p.FirstName, "last_name": p.LastName,
			"created_at": created, "updated_at": created, "state": "disabled", "verified_email": true,
			"currency": p.Currency, "tags": "", "phone": nil,
			"admin_graphql_api_id": fmt.Sprintf("gid://shopify/Customer/%d", p.CustomerID),
			"default_address":      addr,
		},
		"line_items":     lineItems,
		"shipping_lines": []map[string]any{{"code": "Standard", "price": Money(ship), "price_set": p.set(ship), "source": "shopify", "title": "Standard — 3 à 5 jours", "tax_lines": []any{}}},
		"fulfillments":   []any{},
		"refunds":        []any{},
	}
	if p.Trimmed {
		order = keep(order, trimmedOrderFields)
		for i, li := range lineItems {
			lineItems[i] = keep(li, trimmedItemFields)
		}
		order["customer"] = keep(order["customer"].(map[string]any), []string{"id", "email", "first_name", "last_name"})
	}
	b, err := json.Marshal(order)
	if err != nil {
		panic("BUG: cannot encode a synthetic order: " + err.Error())
	}
	return b
}

var (
	trimmedOrderFields = []string{"id", "name", "order_number", "email", "created_at", "updated_at", "currency", "presentment_currency",
		"subtotal_price", "subtotal_price_set", "total_tax_set", "total_discounts_set", "total_shipping_price_set",
		"discount_codes", "line_items", "shipping_address", "customer", "browser_ip", "test"}
	trimmedItemFields = []string{"id", "product_id", "variant_id", "sku", "title", "price", "quantity"}
)

func keep(m map[string]any, fields []string) map[string]any {
	out := make(map[string]any, len(fields))
	for _, f := range fields {
		if v, ok := m[f]; ok {
			out[f] = v
		}
	}
	return out
}

// StorefrontBody renders the storefront event the post-purchase JavaScript
// sends for this purchase on a site with the given order_key mode.
func (p Purchase) StorefrontBody(mode schemas.OrderKey) []byte {
	items := make([]map[string]any, 0, len(p.Items))
	for _, it := range p.Items {
		items = append(items, map[string]any{
			"product_id": it.SKU, "price": Money(it.PriceCents), "quantity": it.Quantity, "title": it.Title,
		})
	}
	sub := p.SubtotalCents()
	if p.Coupon != "" {
		sub -= sub / 10
	}
	email, coupon, zip := p.Email, p.Coupon, p.Address.Zip
	switch p.Drift {
	case "email":
		email = "typo." + email
	case "subtotal":
		sub += 499 // shipping counted in
	case "coupon_codes":
		coupon = strings.TrimPrefix(coupon+",BROWSER5", ",")
	case "shipping_zip":
		zip = "99999"
	}
	parts := []string{}
	for _, s := range []string{p.Address.Address1, p.Address.Address2, p.Address.City, p.Address.Province, p.Address.Zip, p.Address.Country} {
		if s != "" {
			parts = append(parts, s)
		}
	}
	ev := map[string]any{
		"purchase": map[string]any{
			"order_number":      p.OrderNumberFor(mode),
			"subtotal":          Money(sub),
			"coupon_code":       coupon,
			"currency_iso_code": p.Currency,
			"shipping_zip":      zip,
			"shipping_address":  strings.Join(parts, ", "),
			"items":             items,
		},
		"customer": map[string]any{
			"email":       email,
			"first_name":  p.FirstName,
			"last_name":   p.LastName,
			"customer_id": strconv.FormatUint(p.CustomerID, 10),
		},
	}
	b, err := json.Marshal(ev)
	if err != nil {
		panic("BUG: cannot encode a synthetic storefront event: " + err.Error())
	}
	return b
}
