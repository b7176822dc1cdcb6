package schemas

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"math/bits"
	"math/rand/v2"
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

// refSkipString is the scanner's string loop before JSONStringStops: one table
// lookup per byte. skipString must agree with it exactly.
func refSkipString(b []byte, i int) (end int, simple, ok bool) {
	if i >= len(b) || b[i] != '"' {
		return i, false, false
	}
	i++
	simple = true
	for {
		for i < len(b) && !strStop[b[i]] {
			i++
		}
		if i >= len(b) {
			return i, false, false
		}
		switch c := b[i]; {
		case c == '"':
			return i + 1, simple, true
		case c < 0x20:
			return i, false, false
		case c == '\\':
			simple = false
			i++
			if i >= len(b) {
				return i, false, false
			}
			switch b[i] {
			case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
				i++
			case 'u':
				i++
				if len(b)-i < 4 {
					return i, false, false
				}
				for _, h := range b[i : i+4] {
					if !isHex(h) {
						return i, false, false
					}
				}
				i += 4
			default:
				return i, false, false
			}
		default:
			simple = false
			i++
		}
	}
}

// TestSkipStringWordOffsets puts each kind of byte that can stop a run of
// ordinary string characters at every offset of the 8-byte words that
// skipString tests at once (and of the bytes after the last whole word),
// followed by a second stop byte at every offset, and checks the string
// and the whole body against the per-byte loop, json.Valid and the full
// decode.
func TestSkipStringWordOffsets(t *testing.T) {
	stops := []string{
		`"`,                    // closing quote
		`\n`, `\/`, `\\`, `\"`, // escapes
		`\u00e9`, `\uD83D`, // \u escapes
		`\x`, `\u12`, `\u12G4`, `\`, // bad escapes
		"\x00", "\x01", "\x1f", "\n", "\t", "\r", // control characters: invalid
		"é", "\x80", "\xbf", "\xff", "ünï", // non-ASCII: valid, not simple
		" ", "!", "#", "[", "]", "\x7f", "~", // neighbours of the stop bytes: ordinary
	}
	ordinary := func(n int) string {
		b := make([]byte, n)
		for i := range b {
			b[i] = 'a' + byte(i%26)
		}
		return string(b)
	}
	n := 0
	for _, first := range stops {
		for _, second := range []string{"", `"`, "\x01", `\t`, "é", "\x1f"} {
			for pre := 0; pre <= 17; pre++ {
				for mid := 0; mid <= 9; mid++ {
					lit := `"` + ordinary(pre) + first + ordinary(mid) + second + `"`
					checkStringLiteral(t, lit)
					n++
				}
			}
		}
	}
	if n < 10000 {
		t.Fatalf("only %d cases", n)
	}
}

// checkStringLiteral checks lit, which starts with a quote, as a member
// value early in a body (whole words), as the last value of a body (the
// per-byte tail), and as a member name.
func checkStringLiteral(t *testing.T, lit string) {
	t.Helper()
	pad := `,"pad":"` + strings.Repeat("x", 40) + `"`
	for _, c := range []struct{ before, after string }{
		{`{"name":`, pad + `,"id":1}`},
		{`{"id":1,"name":`, `}`},
		{`{"id":1,"name":`, ``}, // unterminated body
		{`{`, `:1,"id":1}`},     // as a name
		{`[`, `]`},              // valid JSON, not an object
	} {
		body := []byte(c.before + lit + c.after)
		at := len(c.before)
		gotEnd, gotSimple, gotOK := skipString(body, at)
		wantEnd, wantSimple, wantOK := refSkipString(body, at)
		if gotOK != wantOK || (wantOK && (gotEnd != wantEnd || gotSimple != wantSimple)) {
			t.Fatalf("skipString(%q, %d) = %d, %v, %v; want %d, %v, %v",
				body, at, gotEnd, gotSimple, gotOK, wantEnd, wantSimple, wantOK)
		}
		isObject := json.Valid(body) && body[0] == '{'
		if err := scanTopLevel(body, make([]jsonSpan, 3)); (err == nil) != isObject {
			t.Fatalf("scanTopLevel(%q) = %v, but json.Valid object = %v", body, err, isObject)
		}
		got, err := ShopifyOrderKey(body, OrderKeyName)
		if (err == nil) && !isObject {
			t.Fatalf("ShopifyOrderKey(%q) = %q, want an error", body, got)
		}
		if !isObject {
			continue
		}
		o, perr := ParseShopifyOrder(body)
		if perr != nil {
			t.Fatalf("ParseShopifyOrder(%q): %v", body, perr)
		}
		want, werr := o.OrderKeyValue(OrderKeyName)
		if (err == nil) != (werr == nil) || got != want {
			t.Fatalf("ShopifyOrderKey(%q) = %q, %v; OrderKeyValue = %q, %v", body, got, err, want, werr)
		}
	}
}

// FuzzSkipString checks skipString against the per-byte loop on any bytes
// after an opening quote.
func FuzzSkipString(f *testing.F) {
	f.Add([]byte(`abc"`))
	f.Add([]byte(`0123456789abcdef\u00e9ü"xyz`))
	f.Add([]byte("Kaufingerstraße 12, 80331 München\x01\""))
	f.Add([]byte(`\"\\\/\b\f\n\r\t\uABCDefgh"`))
	f.Fuzz(func(t *testing.T, tail []byte) {
		b := append([]byte{'"'}, tail...)
		gotEnd, gotSimple, gotOK := skipString(b, 0)
		wantEnd, wantSimple, wantOK := refSkipString(b, 0)
		if gotOK != wantOK || (wantOK && (gotEnd != wantEnd || gotSimple != wantSimple)) {
			t.Fatalf("skipString(%q) = %d, %v, %v; want %d, %v, %v",
				b, gotEnd, gotSimple, gotOK, wantEnd, wantSimple, wantOK)
		}
		if wantOK {
			lit := b[:wantEnd]
			if !json.Valid(lit) {
				t.Fatalf("skipString accepts %q, json.Valid does not", lit)
			}
			checkStringLiteral(t, string(lit))
		} else if i := bytes.IndexByte(b[1:], '"'); i >= 0 && json.Valid(b[:i+2]) {
			t.Fatalf("skipString rejects %q, json.Valid accepts %q", b, b[:i+2])
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

// TestJSONStringStopsMatchesBytewiseScan compares the word test with a
// byte-by-byte reference on random words made of bytes around the stop
// values, in both modes: the lowest flagged byte must be the first stop
// byte, and no flag without one.
func TestJSONStringStopsMatchesBytewiseScan(t *testing.T) {
	edge := []byte{0x00, 0x01, 0x1f, 0x20, 0x21, 0x22, 0x23, 0x5b, 0x5c, 0x5d, 0x7f, 0x80, 0xa2, 0xdc, 0xff}
	stop := func(c byte, nonASCII bool) bool { return c == '"' || c == '\\' || c < 0x20 || nonASCII && c >= 0x80 }
	var w [8]byte
	r := rand.New(rand.NewPCG(7, 8))
	for n := range 1_000_000 {
		nonASCII := n%2 == 1
		for i := range w {
			w[i] = edge[r.IntN(len(edge))]
		}
		first := -1
		for i, c := range w {
			if stop(c, nonASCII) {
				first = i
				break
			}
		}
		m := JSONStringStops(binary.LittleEndian.Uint64(w[:]), nonASCII)
		switch {
		case first < 0 && m != 0:
			t.Fatalf("% x (nonASCII %v): flagged without a stop byte", w, nonASCII)
		case first >= 0 && (m == 0 || bits.TrailingZeros64(m)/8 != first):
			t.Fatalf("% x (nonASCII %v): first stop at %d, lowest flag at byte %d", w, nonASCII, first, bits.TrailingZeros64(m)/8)
		}
	}
}
