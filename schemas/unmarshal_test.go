package schemas

import (
	"bytes"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"testing"
)

// stdParse is what the two raw-body parsers decoded with before unmarshal:
// the standard library alone.
func stdParse[T any](body []byte) (*T, error) {
	var v T
	if err := json.Unmarshal(body, &v); err != nil {
		return nil, err
	}
	return &v, nil
}

// FuzzUnmarshalMatchesStdlib: for any body, unmarshal gives exactly what
// the standard library gives (value, or failure), for both raw-body types.
func FuzzUnmarshalMatchesStdlib(f *testing.F) {
	for _, dir := range []string{"testdata/shopify_order", "testdata/storefront"} {
		files, _ := filepath.Glob(filepath.Join(dir, "*.json"))
		for _, name := range files {
			b, err := os.ReadFile(name)
			if err != nil {
				f.Fatal(err)
			}
			f.Add(b)
		}
	}
	for _, s := range []string{
		`{"id":1,"ID":2,"customer":{"email":"a"},"customer":{"id":3}}`,
		`{"email":null,"subtotal_price":null,"customer":null,"line_items":[null,{"quantity":1.0}]}`,
		`{"purchase":{"order_number":"\u00e9\ud800x","coupon_code":"A, B","items":[{"price":1e3}]},"customer":{"Email":"x@y"}}`,
		`{"purchase":{"order_number":12345678901234567890123,"subtotal":-0.00,"shipping_zip":null},"customer":{}}`,
		"{\"name\":\"\xff\xfe\",\"test\":true,\"tEsT\":false}",
		`{"line_items":[{"quantity":9223372036854775808}]}`,
		`{"id":"1"} trailing`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		check(t, body, stdParse[ShopifyOrder], func(b []byte) (*ShopifyOrder, error) {
			var v ShopifyOrder
			err := unmarshal(b, &v)
			return &v, err
		})
		check(t, body, stdParse[StorefrontPurchase], func(b []byte) (*StorefrontPurchase, error) {
			var v StorefrontPurchase
			err := unmarshal(b, &v)
			return &v, err
		})
	})
}

func check[T any](t *testing.T, body []byte, std, fast func([]byte) (*T, error)) {
	t.Helper()
	want, werr := std(body)
	got, gerr := fast(body)
	switch {
	case (werr == nil) != (gerr == nil):
		t.Fatalf("%T of %q: unmarshal error %v, standard library %v", *new(T), body, gerr, werr)
	case werr != nil:
		if werr.Error() != gerr.Error() {
			t.Fatalf("%T of %q: error %q, standard library %q", *new(T), body, gerr, werr)
		}
	case !reflect.DeepEqual(got, want):
		t.Fatalf("%T of %q:\n got %+v\nwant %+v", *new(T), body, got, want)
	}
}

func BenchmarkUnmarshalShopifyOrder(b *testing.B) {
	body, err := os.ReadFile("testdata/shopify_order/order.json")
	if err != nil {
		b.Fatal(err)
	}
	b.Run("unmarshal", func(b *testing.B) {
		b.SetBytes(int64(len(body)))
		for i := 0; i < b.N; i++ {
			var o ShopifyOrder
			if err := unmarshal(body, &o); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("stdlib", func(b *testing.B) {
		b.SetBytes(int64(len(body)))
		for i := 0; i < b.N; i++ {
			if _, err := stdParse[ShopifyOrder](body); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// refFlexString is FlexString.UnmarshalJSON before its fast paths.
func refFlexString(b []byte) (FlexString, error) {
	b = bytes.TrimSpace(b)
	switch {
	case len(b) == 0 || bytes.Equal(b, []byte("null")):
		return "", nil
	case b[0] == '"':
		var s string
		err := json.Unmarshal(b, &s)
		return FlexString(s), err
	case b[0] == '-' || (b[0] >= '0' && b[0] <= '9'):
		var n json.Number
		err := json.Unmarshal(b, &n)
		return FlexString(n.String()), err
	}
	return "", errors.New("neither")
}

// FuzzFlexStringMatchesStdlib: the fast paths of FlexString (plain strings,
// numbers) decode every literal as the standard library does.
func FuzzFlexStringMatchesStdlib(f *testing.F) {
	for _, s := range []string{`"abc"`, `"a\"b"`, `"\u00e9"`, "\"\xff\"", `"é"`, `12`, `-0.5e+3`, `01`, `1.`, `-`, `"a` + "\x01" + `"`, `1e`, `""`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		want, werr := refFlexString(b)
		var got FlexString
		gerr := got.UnmarshalJSON(b)
		if werr != nil {
			if gerr == nil {
				t.Fatalf("FlexString(%q) = %q, but the standard library refuses it: %v", b, got, werr)
			}
			return
		}
		if gerr != nil || got != want {
			t.Fatalf("FlexString(%q) = %q, %v; standard library %q", b, got, gerr, want)
		}
	})
}
