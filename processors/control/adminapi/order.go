package adminapi

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strings"

	"purchasesync/schemas"
)

// MoneyV2 is a GraphQL amount: Decimal travels as a string, never a float.
type MoneyV2 struct {
	Amount       string `json:"amount"`
	CurrencyCode string `json:"currencyCode"`
}

// MoneyBag is an amount in shop and presentment (buyer's) currency.
type MoneyBag struct {
	ShopMoney        MoneyV2 `json:"shopMoney"`
	PresentmentMoney MoneyV2 `json:"presentmentMoney"`
}

type legacyRef struct {
	LegacyResourceID string `json:"legacyResourceId"`
}

// LineItem is the part of a GraphQL LineItem we read.
type LineItem struct {
	SKU                  *string    `json:"sku"`
	Title                string     `json:"title"`
	Quantity             int64      `json:"quantity"`
	Product              *legacyRef `json:"product"`
	Variant              *legacyRef `json:"variant"`
	OriginalUnitPriceSet *MoneyBag  `json:"originalUnitPriceSet"`
}

type lineItemConnection struct {
	Nodes    []LineItem `json:"nodes"`
	PageInfo pageInfo   `json:"pageInfo"`
}

// MailingAddress is the part of a shipping address we read.
type MailingAddress struct {
	FirstName *string `json:"firstName"`
	LastName  *string `json:"lastName"`
	Address1  *string `json:"address1"`
	Address2  *string `json:"address2"`
	City      *string `json:"city"`
	Province  *string `json:"province"`
	Zip       *string `json:"zip"`
	Country   *string `json:"country"`
}

// Customer is the part of a GraphQL Customer we read.
type Customer struct {
	LegacyResourceID string  `json:"legacyResourceId"`
	Email            *string `json:"email"`
	FirstName        *string `json:"firstName"`
	LastName         *string `json:"lastName"`
}

// Order is the part of a GraphQL Order that RESTOrderJSON needs.
type Order struct {
	ID                      string             `json:"id"`               // gid://shopify/Order/<n>
	LegacyResourceID        string             `json:"legacyResourceId"` // <n>, the REST id
	Name                    string             `json:"name"`             // "#1001"
	Number                  json.Number        `json:"number"`           // 1001, REST's order_number
	Email                   *string            `json:"email"`
	CreatedAt               string             `json:"createdAt"`
	Test                    bool               `json:"test"`
	CurrencyCode            string             `json:"currencyCode"`
	PresentmentCurrencyCode string             `json:"presentmentCurrencyCode"`
	SubtotalPriceSet        *MoneyBag          `json:"subtotalPriceSet"`
	TotalTaxSet             *MoneyBag          `json:"totalTaxSet"`
	TotalDiscountsSet       *MoneyBag          `json:"totalDiscountsSet"`
	TotalShippingPriceSet   *MoneyBag          `json:"totalShippingPriceSet"`
	DiscountCodes           []string           `json:"discountCodes"`
	ShippingAddress         *MailingAddress    `json:"shippingAddress"`
	Customer                *Customer          `json:"customer"`
	LineItems               lineItemConnection `json:"lineItems"`
	// Compared holds the values of schemas.ComparedFields read at their
	// GraphQL paths, by field name: RESTOrderJSON writes each one the
	// fields above do not carry, so a new compared field needs no change here.
	Compared map[string]string `json:"-"`
}

// UnmarshalJSON decodes the fields above and Compared.
func (o *Order) UnmarshalJSON(b []byte) error {
	type plain Order // without this method
	if err := json.Unmarshal(b, (*plain)(o)); err != nil {
		return err
	}
	obj, err := decodeObject(b)
	if err != nil {
		return err
	}
	o.Compared = nil
	for _, f := range schemas.ComparedFields {
		if v, ok := f.GraphQL.Get(obj); ok {
			if o.Compared == nil {
				o.Compared = map[string]string{}
			}
			o.Compared[f.Name] = v
		}
	}
	return nil
}

// decodeObject decodes a JSON object for schemas.JSONPath, numbers exact.
func decodeObject(b []byte) (map[string]any, error) {
	d := json.NewDecoder(bytes.NewReader(b))
	d.UseNumber()
	var obj map[string]any
	return obj, d.Decode(&obj)
}

// The REST Order JSON shapes (the orders/create webhook body), as far as
// schemas.ParseShopifyOrder and the join read them.
type restMoney struct {
	Amount       string `json:"amount"`
	CurrencyCode string `json:"currency_code"`
}

type restMoneySet struct {
	ShopMoney        restMoney `json:"shop_money"`
	PresentmentMoney restMoney `json:"presentment_money"`
}

type restLineItem struct {
	ProductID json.RawMessage `json:"product_id"`
	VariantID json.RawMessage `json:"variant_id"`
	SKU       *string         `json:"sku"`
	Title     string          `json:"title"`
	Price     string          `json:"price"`
	PriceSet  *restMoneySet   `json:"price_set,omitempty"`
	Quantity  int64           `json:"quantity"`
}

type restAddress struct {
	FirstName *string `json:"first_name"`
	LastName  *string `json:"last_name"`
	Address1  *string `json:"address1"`
	Address2  *string `json:"address2"`
	City      *string `json:"city"`
	Province  *string `json:"province"`
	Zip       *string `json:"zip"`
	Country   *string `json:"country"`
}

type restCustomer struct {
	ID        json.RawMessage `json:"id"`
	Email     *string         `json:"email"`
	FirstName *string         `json:"first_name"`
	LastName  *string         `json:"last_name"`
}

type restDiscountCode struct {
	Code string `json:"code"`
}

type restOrder struct {
	ID                    json.RawMessage    `json:"id"`
	AdminGraphQLAPIID     string             `json:"admin_graphql_api_id"`
	Name                  string             `json:"name"`
	OrderNumber           json.RawMessage    `json:"order_number,omitempty"`
	Email                 *string            `json:"email"`
	CreatedAt             string             `json:"created_at"`
	Currency              string             `json:"currency"`
	PresentmentCurrency   string             `json:"presentment_currency"`
	SubtotalPrice         string             `json:"subtotal_price,omitempty"`
	SubtotalPriceSet      *restMoneySet      `json:"subtotal_price_set,omitempty"`
	TotalTax              string             `json:"total_tax,omitempty"`
	TotalTaxSet           *restMoneySet      `json:"total_tax_set,omitempty"`
	TotalDiscounts        string             `json:"total_discounts,omitempty"`
	TotalDiscountsSet     *restMoneySet      `json:"total_discounts_set,omitempty"`
	TotalShippingPriceSet *restMoneySet      `json:"total_shipping_price_set,omitempty"`
	DiscountCodes         []restDiscountCode `json:"discount_codes"`
	LineItems             []restLineItem     `json:"line_items"`
	ShippingAddress       *restAddress       `json:"shipping_address"`
	Customer              *restCustomer      `json:"customer"`
	Test                  bool               `json:"test"`
}

func restSet(b *MoneyBag) *restMoneySet {
	if b == nil {
		return nil
	}
	return &restMoneySet{
		ShopMoney:        restMoney{Amount: b.ShopMoney.Amount, CurrencyCode: b.ShopMoney.CurrencyCode},
		PresentmentMoney: restMoney{Amount: b.PresentmentMoney.Amount, CurrencyCode: b.PresentmentMoney.CurrencyCode},
	}
}

func shopAmount(b *MoneyBag) string {
	if b == nil {
		return ""
	}
	return b.ShopMoney.Amount
}

// jsonID turns a legacyResourceId (an UnsignedInt64 sent as a string) into
// the bare JSON number REST uses, without passing it through a float; ""
// becomes null.
func jsonID(s string) (json.RawMessage, error) {
	if s == "" {
		return json.RawMessage("null"), nil
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return nil, fmt.Errorf("legacyResourceId %q is not a decimal id", s)
		}
	}
	if t := strings.TrimLeft(s, "0"); t != "" {
		return json.RawMessage(t), nil
	}
	return json.RawMessage("0"), nil
}

// RESTOrderJSON renders a GraphQL order in the REST Order JSON shape of the
// orders/create webhook, so that reconciled orders go through the same
// parser as delivered ones. Only fields the pipeline reads are filled.
func RESTOrderJSON(o Order) ([]byte, error) {
	id, err := jsonID(o.LegacyResourceID)
	if err != nil || string(id) == "null" {
		return nil, fmt.Errorf("cannot render order %s: missing or bad legacyResourceId", o.ID)
	}
	r := restOrder{
		ID:                    id,
		AdminGraphQLAPIID:     o.ID,
		Name:                  o.Name,
		Email:                 o.Email,
		CreatedAt:             o.CreatedAt,
		Currency:              o.CurrencyCode,
		PresentmentCurrency:   o.PresentmentCurrencyCode,
		SubtotalPrice:         shopAmount(o.SubtotalPriceSet),
		SubtotalPriceSet:      restSet(o.SubtotalPriceSet),
		TotalTax:              shopAmount(o.TotalTaxSet),
		TotalTaxSet:           restSet(o.TotalTaxSet),
		TotalDiscounts:        shopAmount(o.TotalDiscountsSet),
		TotalDiscountsSet:     restSet(o.TotalDiscountsSet),
		TotalShippingPriceSet: restSet(o.TotalShippingPriceSet),
		DiscountCodes:         []restDiscountCode{},
		LineItems:             []restLineItem{},
		Test:                  o.Test,
	}
	if o.Number != "" {
		r.OrderNumber = json.RawMessage(o.Number.String())
	}
	for _, c := range o.DiscountCodes {
		r.DiscountCodes = append(r.DiscountCodes, restDiscountCode{Code: c})
	}
	for _, li := range o.LineItems.Nodes {
		out := restLineItem{SKU: li.SKU, Title: li.Title, Quantity: li.Quantity, PriceSet: restSet(li.OriginalUnitPriceSet), Price: shopAmount(li.OriginalUnitPriceSet)}
		out.ProductID, out.VariantID = json.RawMessage("null"), json.RawMessage("null")
		if li.Product != nil {
			if out.ProductID, err = jsonID(li.Product.LegacyResourceID); err != nil {
				return nil, fmt.Errorf("cannot render order %s: product: %w", o.ID, err)
			}
		}
		if li.Variant != nil {
			if out.VariantID, err = jsonID(li.Variant.LegacyResourceID); err != nil {
				return nil, fmt.Errorf("cannot render order %s: variant: %w", o.ID, err)
			}
		}
		r.LineItems = append(r.LineItems, out)
	}
	if a := o.ShippingAddress; a != nil {
		r.ShippingAddress = &restAddress{FirstName: a.FirstName, LastName: a.LastName, Address1: a.Address1, Address2: a.Address2, City: a.City, Province: a.Province, Zip: a.Zip, Country: a.Country}
	}
	if c := o.Customer; c != nil {
		cid, err := jsonID(c.LegacyResourceID)
		if err != nil {
			return nil, fmt.Errorf("cannot render order %s: customer: %w", o.ID, err)
		}
		r.Customer = &restCustomer{ID: cid, Email: c.Email, FirstName: c.FirstName, LastName: c.LastName}
	}
	b, err := json.Marshal(r)
	if err != nil {
		return nil, fmt.Errorf("cannot render order %s: %w", o.ID, err)
	}
	if b, err = withCompared(b, o.Compared); err != nil {
		return nil, fmt.Errorf("cannot render order %s: %w", o.ID, err)
	}
	return b, nil
}

// withCompared writes into a rendered REST order each compared field it
// does not carry yet at its REST path; b is returned as is when there is
// none (every field the rendering above knows).
func withCompared(b []byte, compared map[string]string) ([]byte, error) {
	if len(compared) == 0 {
		return b, nil
	}
	obj, err := decodeObject(b)
	if err != nil {
		return nil, err
	}
	added := false
	for _, f := range schemas.ComparedFields {
		if v := compared[f.Name]; v != "" {
			if _, ok := f.REST.Get(obj); !ok {
				f.REST.Set(obj, v)
				added = true
			}
		}
	}
	if !added {
		return b, nil
	}
	return json.Marshal(obj)
}
