package schemas

import (
	"encoding/json"
	"strings"
	"testing"
)

// TestComparedFieldsRows: every row is complete, so a stage reading the
// table never meets a nil function or an empty path.
func TestComparedFieldsRows(t *testing.T) {
	seen := map[string]bool{}
	for _, f := range ComparedFields {
		switch {
		case f.Name == "" || seen[f.Name]:
			t.Errorf("row %q: a name is required, once", f.Name)
		case f.Storefront == nil || f.Shopify == nil || f.Differ == nil:
			t.Errorf("%s: Storefront, Shopify and Differ are required", f.Name)
		case f.GraphQL == "" || f.REST == "" || f.Example == "":
			t.Errorf("%s: GraphQL, REST and Example are required", f.Name)
		case f.Mask != nil && !f.PII:
			t.Errorf("%s: a Mask on a field that is not personal data is never used", f.Name)
		}
		seen[f.Name] = true
		if f.Differ(f.Example, f.Example) {
			t.Errorf("%s: its Example differs from itself", f.Name)
		}
	}
}

// TestPersonalFieldsAreMasked: people never see a personal field's value
// (MaskValue: the notifier's digests, the merchant page), and see the
// others as they are.
func TestPersonalFieldsAreMasked(t *testing.T) {
	var personal []string
	for _, f := range ComparedFields {
		got := MaskValue(f.Name, f.Example)
		if f.PII {
			personal = append(personal, f.Name)
			if strings.Contains(got, f.Example) || strings.Contains(got, f.Example[1:]) {
				t.Errorf("%s is personal data, shown as %q", f.Name, got)
			}
		} else if got != f.Example {
			t.Errorf("%s is not personal data, shown as %q instead of %q", f.Name, got, f.Example)
		}
	}
	if strings.Join(PersonalFieldNames(), ",") != strings.Join(personal, ",") {
		t.Errorf("PersonalFieldNames() = %v, want %v", PersonalFieldNames(), personal)
	}
}

// TestRESTPathIsWhereTheOrderParserReads: a value written at a row's REST
// path is what its Shopify reader returns from ParseShopifyOrder.
func TestRESTPathIsWhereTheOrderParserReads(t *testing.T) {
	for _, f := range ComparedFields {
		order := map[string]any{"id": json.Number("5001")}
		f.REST.Set(order, f.Example)
		b, err := json.Marshal(order)
		if err != nil {
			t.Fatal(err)
		}
		o, err := ParseShopifyOrder(b)
		if err != nil {
			t.Fatalf("%s: %v\n%s", f.Name, err, b)
		}
		if got := f.Shopify(o); got != f.Example {
			t.Errorf("%s: %s read back as %q, want %q", f.Name, b, got, f.Example)
		}
		if got, ok := f.REST.Get(order); !ok || got != f.Example {
			t.Errorf("%s: Get after Set = %q, %v", f.Name, got, ok)
		}
	}
}

func TestJSONPath(t *testing.T) {
	obj := map[string]any{}
	JSONPath("a.b[].c").Set(obj, "x,y")
	JSONPath("d[]").Set(obj, "z")
	JSONPath("a.e").Set(obj, "") // missing: null
	JSONPath("f.g").Set(obj, "") // a missing object is null
	JSONPath("d[]").Set(obj, "") // present: left alone
	b, _ := json.Marshal(obj)
	if want := `{"a":{"b":[{"c":"x"},{"c":"y"}],"e":null},"d":["z"],"f":null}`; string(b) != want {
		t.Errorf("Set: %s, want %s", b, want)
	}
	if v, ok := JSONPath("a.b[].c").Get(obj); !ok || v != "x,y" {
		t.Errorf("Get list: %q %v", v, ok)
	}
	if _, ok := JSONPath("a.e").Get(obj); ok {
		t.Error("Get of null: ok")
	}
	for path, want := range map[JSONPath]string{
		"email": "email", "discountCodes[]": "discountCodes", "a.b.c": "a { b { c } }", "x[].y": "x { y }",
	} {
		if got := path.Selection(); got != want {
			t.Errorf("%s.Selection() = %q, want %q", path, got, want)
		}
	}
}
