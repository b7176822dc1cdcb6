package schemas

import (
	"bytes"
	"encoding/json"
	"errors"
	"os"
	"strconv"
	"strings"
	"testing"
)

func TestShopifyOrderKey(t *testing.T) {
	f := func(body string, mode OrderKey, want string) {
		t.Helper()
		got, err := ShopifyOrderKey([]byte(body), mode)
		if err != nil {
			t.Errorf("ShopifyOrderKey(%.60q, %s): %v", body, mode, err)
			return
		}
		if got != want {
			t.Errorf("ShopifyOrderKey(%.60q, %s) = %q, want %q", body, mode, got, want)
		}
	}
	order := `{"id":820982911946154508,"order_number":1001,"name":"#1001","line_items":[{"id":466157049,"name":"x"}]}`
	f(order, OrderKeyID, "820982911946154508")
	f(order, "", "820982911946154508")
	f(order, OrderKeyNumber, "1001")
	f(order, OrderKeyName, "#1001")
	f(` {"id":"18446744073709551615"} `, OrderKeyID, "18446744073709551615") // uint64 max, as a string
	f(`{"id":9007199254740993}`, OrderKeyID, "9007199254740993")             // 2^53+1: no float
	f(`{"line_items":[{"id":1}],"customer":{"id":2,"name":"x"},"id":3}`, OrderKeyID, "3")
	f(`{"ID":7}`, OrderKeyID, "7")                      // encoding/json matches case-insensitively
	f(`{"\u0069d":8}`, OrderKeyID, "8")                 // escaped member name
	f(`{"id":1,"Id":2,"id":3,"iD":4}`, OrderKeyID, "4") // the last duplicate wins
	f(`{"id":1,"order_number":"#77"}`, OrderKeyNumber, "77")
	f(`{"id":1,"name":"  #1001-EU "}`, OrderKeyName, "#1001-EU")
	f(`{"id":1,"name":"#1","name":null}`, OrderKeyName, "#1") // null leaves a string field alone
	f(`{"id":1,"name":"Caf\u00e9 #1"}`, OrderKeyName, "Café #1")
	f(`{"id":1,"name":"ünï #1"}`, OrderKeyName, "ünï #1")
	f(`{"id":1,"order_number":1e3}`, OrderKeyNumber, "1e3") // FlexString keeps the number's text

	bad := func(body string, mode OrderKey, field string) {
		t.Helper()
		_, err := ShopifyOrderKey([]byte(body), mode)
		if err == nil {
			t.Errorf("ShopifyOrderKey(%.60q, %s) succeeded", body, mode)
			return
		}
		var fe *FieldError
		if field != "" && (!errors.As(err, &fe) || fe.Field != field) {
			t.Errorf("ShopifyOrderKey(%.60q, %s) = %v, want a FieldError on %s", body, mode, err, field)
		}
	}
	bad(order[:40], OrderKeyID, "")                       // truncated
	bad(order+"x", OrderKeyID, "")                        // trailing garbage
	bad(`[{"id":1}]`, OrderKeyID, "")                     // not an object
	bad(`null`, OrderKeyID, "")                           //
	bad(``, OrderKeyID, "")                               //
	bad(`{"id":1,}`, OrderKeyID, "")                      // trailing comma
	bad(`{"id":01}`, OrderKeyID, "")                      // leading zero
	bad(`{"id":1,"x":"a`+"\x01"+`"}`, OrderKeyID, "")     // control character in a string
	bad(`{"id":1,"x":"\x"}`, OrderKeyID, "")              // bad escape
	bad(`{}`, OrderKeyID, "id")                           //
	bad(`{"id":0}`, OrderKeyID, "id")                     //
	bad(`{"id":-5}`, OrderKeyID, "id")                    //
	bad(`{"id":1.5}`, OrderKeyID, "id")                   //
	bad(`{"id":"12a"}`, OrderKeyID, "id")                 //
	bad(`{"id":123456789012345678901}`, OrderKeyID, "id") // 21 digits
	bad(`{"id":true}`, OrderKeyID, "")                    //
	bad(`{"id":1}`, OrderKeyNumber, "order_number")       //
	bad(`{"id":1,"order_number":"#"}`, OrderKeyNumber, "order_number")
	bad(`{"id":1,"name":5}`, OrderKeyName, "") // wrong type
	bad(`{"id":1,"name":"  "}`, OrderKeyName, "order_name")
	bad(`{"id":1}`, OrderKey("sku"), "")
	bad(strings.Repeat("[", 10001)+strings.Repeat("]", 10001), OrderKeyID, "")
}

// TestShopifyOrderKeyDepth pins encoding/json's nesting limit: 10000 open
// containers are valid JSON, 10001 are not.
func TestShopifyOrderKeyDepth(t *testing.T) {
	nest := func(n int) []byte {
		return []byte(`{"id":1,"x":` + strings.Repeat("[", n-1) + strings.Repeat("]", n-1) + `}`)
	}
	for _, n := range []int{10000, 10001} {
		b := nest(n)
		_, err := ShopifyOrderKey(b, OrderKeyID)
		if (err == nil) != json.Valid(b) {
			t.Errorf("depth %d: ShopifyOrderKey err=%v, json.Valid=%v", n, err, json.Valid(b))
		}
	}
}

// FuzzShopifyOrderKey checks the fast key against the full decode the join
// uses, and the scanner against json.Valid.
func FuzzShopifyOrderKey(f *testing.F) {
	f.Add([]byte(`{"id":820982911946154508,"order_number":1001,"name":"#1001"}`))
	f.Add([]byte(`{"ID":"1","Name":null,"order_number":"#5"}`))
	f.Add([]byte(`{"id":1,"name":"\ud800"}`))
	f.Fuzz(func(t *testing.T, body []byte) {
		trimmed := bytes.TrimLeft(body, " \t\r\n")
		isObject := json.Valid(body) && len(trimmed) > 0 && trimmed[0] == '{'
		if err := scanTopLevel(body, make([]jsonSpan, 3)); (err == nil) != isObject {
			t.Fatalf("scanTopLevel(%q) = %v, but json.Valid object = %v", body, err, isObject)
		}
		o, perr := ParseShopifyOrder(body)
		for _, mode := range []OrderKey{OrderKeyID, OrderKeyNumber, OrderKeyName} {
			got, err := ShopifyOrderKey(body, mode)
			if err == nil && !isObject {
				t.Fatalf("ShopifyOrderKey(%q, %s) accepted invalid JSON", body, mode)
			}
			if isObject && (errors.Is(err, errSyntax) || errors.Is(err, ErrNotJSONObject)) {
				// A json.Valid object may only fail on its id or key member.
				t.Fatalf("ShopifyOrderKey(%q, %s) rejects a valid JSON object: %v", body, mode, err)
			}
			if perr != nil {
				continue // the full decode may fail on fields the key does not read
			}
			want, werr := o.OrderKeyValue(mode)
			switch {
			case werr != nil && err == nil:
				t.Fatalf("ShopifyOrderKey(%q, %s) = %q, but OrderKeyValue fails: %v", body, mode, got, werr)
			case werr == nil && err != nil:
				t.Fatalf("ShopifyOrderKey(%q, %s) fails (%v), but OrderKeyValue = %q", body, mode, err, want)
			case got != want:
				t.Fatalf("ShopifyOrderKey(%q, %s) = %q, OrderKeyValue = %q", body, mode, got, want)
			}
		}
	})
}

func BenchmarkShopifyOrderKey(b *testing.B) {
	body := benchOrder()
	b.SetBytes(int64(len(body)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := ShopifyOrderKey(body, OrderKeyID); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkParseShopifyOrder(b *testing.B) {
	body := benchOrder()
	b.SetBytes(int64(len(body)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := ParseShopifyOrder(body); err != nil {
			b.Fatal(err)
		}
	}
}

// benchOrder is a seed order of the fuzz corpus, about 19 KB.
func benchOrder() []byte {
	b, err := os.ReadFile("testdata/fuzz/FuzzShopifyOrderKey/order-full")
	if err != nil {
		panic(err)
	}
	lines := strings.SplitN(string(b), "\n", 3)
	s, err := strconv.Unquote(strings.TrimSuffix(strings.TrimPrefix(lines[1], "[]byte("), ")"))
	if err != nil {
		panic(err)
	}
	return []byte(s)
}
