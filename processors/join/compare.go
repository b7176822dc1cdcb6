package join

import (
	"encoding/json"
	"fmt"
	"strings"

	"purchasesync/schemas"
)

// Facts are the values of one side (storefront or Shopify) that the join
// compares, one per row of schemas.ComparedFields, in its order; "" means
// "not sent". An array: a key's facts are one value, without a pointer per
// field.
type Facts [len(schemas.ComparedFields)]string

// storefrontFacts extracts the compared fields of a storefront event.
func storefrontFacts(p *schemas.StorefrontPurchase) *Facts {
	f := new(Facts)
	for i := range schemas.ComparedFields {
		f[i] = schemas.ComparedFields[i].Storefront(p)
	}
	return f
}

// shopifyFacts extracts the compared fields of a Shopify order.
func shopifyFacts(o *schemas.ShopifyOrder) *Facts {
	f := new(Facts)
	for i := range schemas.ComparedFields {
		f[i] = schemas.ComparedFields[i].Shopify(o)
	}
	return f
}

// MarshalJSON writes the facts as an object keyed by field name (a JSON
// State is written only by tests and tools: the changelog is binary).
func (f Facts) MarshalJSON() ([]byte, error) {
	m := make(map[string]string, len(f))
	for i, v := range f {
		if v != "" {
			m[schemas.ComparedFields[i].Name] = v
		}
	}
	return json.Marshal(m)
}

// UnmarshalJSON reads facts keyed by field name: the JSON State of
// changelog values written before the binary encoding, where coupon_codes
// was a list. A name no longer in the table is dropped.
func (f *Facts) UnmarshalJSON(b []byte) error {
	var m map[string]json.RawMessage
	if err := json.Unmarshal(b, &m); err != nil {
		return err
	}
	*f = Facts{}
	for name, raw := range m {
		i := fieldIndex(name)
		if i < 0 {
			continue
		}
		var list []string
		if err := json.Unmarshal(raw, &f[i]); err != nil {
			if json.Unmarshal(raw, &list) != nil {
				return fmt.Errorf("join facts: %s is neither a string nor a list of strings", name)
			}
			f[i] = strings.Join(list, ",")
		}
	}
	return nil
}

// fieldIndex is name's row in schemas.ComparedFields, -1 when none.
func fieldIndex(name string) int {
	for i := range schemas.ComparedFields {
		if schemas.ComparedFields[i].Name == name {
			return i
		}
	}
	return -1
}

// Diff is one differing field.
type Diff struct {
	Field, Storefront, Shopify string
}

// Compare returns the differing fields, in table order.
func Compare(storefront, shopify *Facts) []Diff {
	var out []Diff
	for i := range schemas.ComparedFields {
		sf := storefront[i]
		if strings.TrimSpace(sf) == "" {
			continue
		}
		r := &schemas.ComparedFields[i]
		if sh := shopify[i]; r.Differ(sf, sh) {
			out = append(out, Diff{Field: r.Name, Storefront: sf, Shopify: sh})
		}
	}
	return out
}
