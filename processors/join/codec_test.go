package join

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"reflect"
	"strings"
	"testing"
	"time"

	"purchasesync/schemas"
)

// filled sets every field reachable from v (recursively) to a value
// derived from seed, so a round trip that forgets a field — one added to
// State, Purchase, Item, Refund or schemas.ComparedFields later — fails.
func filled(v reflect.Value, seed *int) {
	*seed++
	switch v.Kind() {
	case reflect.String:
		v.SetString("v" + strings.Repeat("x", *seed%7) + string(rune('a'+*seed%26)))
	case reflect.Bool:
		v.SetBool(true)
	case reflect.Int, reflect.Int64:
		v.SetInt(int64(*seed) * 3)
	case reflect.Uint64:
		v.SetUint(uint64(*seed) + 1)
	case reflect.Pointer:
		v.Set(reflect.New(v.Type().Elem()))
		filled(v.Elem(), seed)
	case reflect.Array: // Facts: every compared field
		for i := 0; i < v.Len(); i++ {
			filled(v.Index(i), seed)
		}
	case reflect.Slice:
		v.Set(reflect.MakeSlice(v.Type(), 2, 2))
		for i := 0; i < 2; i++ {
			filled(v.Index(i), seed)
		}
	case reflect.Map:
		m := reflect.MakeMap(v.Type())
		for i := 0; i < 2; i++ {
			k, e := reflect.New(v.Type().Key()).Elem(), reflect.New(v.Type().Elem()).Elem()
			filled(k, seed)
			filled(e, seed)
			m.SetMapIndex(k, e)
		}
		v.Set(m)
	case reflect.Struct:
		if v.Type() == reflect.TypeOf(time.Time{}) {
			v.Set(reflect.ValueOf(time.Date(2026, 11, 25, 12, 0, *seed, *seed*1000+7, time.UTC)))
			return
		}
		for i := 0; i < v.NumField(); i++ {
			filled(v.Field(i), seed)
		}
	default:
		panic("filled: no rule for " + v.Kind().String())
	}
}

func fullState() *State {
	var s State
	seed := 0
	filled(reflect.ValueOf(&s).Elem(), &seed)
	s.Site, s.OrderNumber = "demo", "5837291049"
	for _, p := range []*schemas.Purchase{s.Purchase, s.Held} {
		p.Site, p.OrderNumber = s.Site, s.OrderNumber
	}
	return &s
}

func TestStateCodecRoundTrip(t *testing.T) {
	key := schemas.Key("demo", "5837291049")
	full := fullState()
	other := fullState()
	other.Held.OrderNumber = "other" // a purchase under another key is kept as is
	sparse := &State{Site: "demo", OrderNumber: "5837291049", Repeats: 2,
		Purchase:   &schemas.Purchase{Site: "demo", OrderNumber: "5837291049", CouponCodes: []string{}, Items: []schemas.Item{}, Version: 3},
		Storefront: facts(t, "email", "a@b.c"), Shopify: &Facts{},
		Refunds: map[string]Refund{"9": {Amount: "1.00", At: time.Date(1, 1, 1, 0, 0, 0, 0, time.UTC)}, "8": {Unreadable: true, Returned: map[string]string{}}},
	}
	far := &State{Site: "demo", OrderNumber: "5837291049", ExpiresAt: time.Date(9999, 12, 31, 23, 59, 59, 999999999, time.UTC),
		Held: &schemas.Purchase{Site: "demo", OrderNumber: "5837291049", OrderCreatedAt: time.Date(1066, 10, 14, 9, 0, 0, 0, time.UTC)}}
	for name, s := range map[string]*State{"full": full, "other key": other, "sparse": sparse, "far times": far, "empty": {Site: "demo", OrderNumber: "5837291049"}} {
		b := encodeState(nil, s)
		got, err := decodeState(key, b)
		if err != nil {
			t.Fatalf("%s: decode: %v", name, err)
		}
		if !reflect.DeepEqual(got, s) {
			g, _ := json.Marshal(got)
			w, _ := json.Marshal(s)
			t.Errorf("%s: round trip differs:\n got %s\nwant %s", name, g, w)
		}
		if again := encodeState(nil, got); string(again) != string(b) {
			t.Errorf("%s: encoding is not stable across a round trip", name)
		}
		m, err := decodeMeta(key, b)
		if err != nil || m != metaOf(s) {
			t.Errorf("%s: meta = %+v, %v; want %+v", name, m, err, metaOf(s))
		}
		// Every cut of the value is refused, none panics.
		for i := 0; i < len(b); i++ {
			if _, err := decodeState(key, b[:i]); err == nil {
				t.Errorf("%s: %d of %d bytes decoded without an error", name, i, len(b))
				break
			}
		}
	}
	if n := len(encodeState(nil, full)); n >= len(mustJSON(t, full))/2 {
		t.Errorf("binary state of %d bytes is not under half its JSON (%d)", n, len(mustJSON(t, full)))
	}
}

func mustJSON(t *testing.T, v any) []byte {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestStateCodecReadsJSON: changelog values written before the binary
// encoding (JSON) are restored, and converted.
func TestStateCodecReadsJSON(t *testing.T) {
	key := schemas.Key("demo", "5837291049")
	s := fullState()
	old := mustJSON(t, s)
	got, err := decodeState(key, old)
	if err != nil || !reflect.DeepEqual(got, s) {
		t.Fatalf("JSON state: %v; differs: %v", err, !reflect.DeepEqual(got, s))
	}
	v, m, err := checkState(key, old)
	if err != nil || v[0] != stateVersion || m != metaOf(s) {
		t.Fatalf("checkState of a JSON value = version %d, %+v, %v; want the binary encoding", v[0], m, err)
	}
	if _, _, err := checkState(key, []byte{9, 0, 0, 0, 0, 0}); err == nil || !strings.Contains(err.Error(), "version 9") {
		t.Errorf("an unknown version: %v, want it refused by name", err)
	}
	if _, _, err := checkState(key, []byte(`{"site":`)); err == nil {
		t.Error("broken JSON restored")
	}
}

// A version-1 value (facts by position, coupon codes as a list) and the
// same state's JSON, both as written before facts were keyed by name.
const (
	v1Value = "010c000082c280e21a01104a616e65404578616d706c652e636f6d0532332e3937035553440234320853573141203141410102065341564531300158106a616e65406578616d706c652e636f6d0532332e3937035553440007737731613161610100"
	v1JSON  = `{"site":"demo","order_number":"5837291049","storefront":{"email":"Jane@Example.com","subtotal":"23.97","currency":"USD","coupon_codes":["SAVE10","X"],"customer_id":"42","shipping_zip":"SW1A 1AA"},"shopify":{"email":"jane@example.com","subtotal":"23.97","currency":"USD","shipping_zip":"sw1a1aa"},"expires_at":"2026-12-02T12:00:00Z","repeats":1}`
)

// TestStateCodecReadsVersion1: values of the changelog written before
// facts were keyed by name decode to the same facts, kept as they are at
// restore, and are written in the current encoding at the key's next change.
func TestStateCodecReadsVersion1(t *testing.T) {
	key := schemas.Key("demo", "5837291049")
	want := &State{Site: "demo", OrderNumber: "5837291049", Repeats: 1, ExpiresAt: time.Date(2026, 12, 2, 12, 0, 0, 0, time.UTC),
		Storefront: facts(t, "email", "Jane@Example.com", "subtotal", "23.97", "currency", "USD", "coupon_codes", "SAVE10,X", "customer_id", "42", "shipping_zip", "SW1A 1AA"),
		Shopify:    facts(t, "email", "jane@example.com", "subtotal", "23.97", "currency", "USD", "shipping_zip", "sw1a1aa")}
	v1, err := hex.DecodeString(v1Value)
	if err != nil {
		t.Fatal(err)
	}
	for name, b := range map[string][]byte{"version 1": v1, "JSON": []byte(v1JSON)} {
		got, err := decodeState(key, b)
		if err != nil || !reflect.DeepEqual(got, want) {
			t.Errorf("%s: %s, %v; want %s", name, mustJSON(t, got), err, mustJSON(t, want))
		}
		kept, m, err := checkState(key, b)
		if err != nil || m != metaOf(want) {
			t.Errorf("%s: checkState: %+v, %v", name, m, err)
		}
		if name == "version 1" && !bytes.Equal(kept, v1) {
			t.Errorf("a version-1 value is not kept as it is at restore")
		}
		if again, err := decodeState(key, encodeState(nil, got)); err != nil || !reflect.DeepEqual(again, want) {
			t.Errorf("%s: rewritten in version %d: %+v, %v", name, stateVersion, again, err)
		}
		for i := 0; i < len(b) && name == "version 1"; i++ {
			if _, err := decodeState(key, b[:i]); err == nil {
				t.Errorf("%d of %d bytes of a version-1 value decoded without an error", i, len(b))
				break
			}
		}
	}
}

// TestStateCodecFactsKeyedByName: a value written before a row of the table
// moved (or was added, or removed) reads each fact under its own name.
func TestStateCodecFactsKeyedByName(t *testing.T) {
	key := schemas.Key("demo", "5837291049")
	s := &State{Site: "demo", OrderNumber: "5837291049", Storefront: facts(t, "email", "a@b.c", "shipping_zip", "10115")}
	b := encodeState(nil, s)
	saved := schemas.ComparedFields
	defer func() { schemas.ComparedFields = saved }()
	n := len(schemas.ComparedFields)
	schemas.ComparedFields[0], schemas.ComparedFields[n-1] = schemas.ComparedFields[n-1], schemas.ComparedFields[0]
	got, err := decodeState(key, b)
	if err != nil {
		t.Fatal(err)
	}
	if *got.Storefront != *facts(t, "email", "a@b.c", "shipping_zip", "10115") {
		t.Errorf("after a reorder of the table: %v", *got.Storefront)
	}
	schemas.ComparedFields[fieldIndex("email")].Name = "email_gone" // a field removed from the table
	if got, err := decodeState(key, b); err != nil || *got.Storefront != *facts(t, "shipping_zip", "10115") {
		t.Errorf("a stored field no longer in the table: %v, %v; want it dropped", got, err)
	}
}

// BenchmarkStateCodec: encode and decode of a matched purchase's state.
func BenchmarkStateCodec(b *testing.B) {
	s := Decide(nil, sf(b, "820982911946154508", 0, `,"coupon_code":"SAVE10"`, ""), defaultSet).State
	s = Decide(s, wh(b, "820982911946154508", time.Minute, ""), defaultSet).State
	key := schemas.Key(s.Site, s.OrderNumber)
	var buf []byte
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		buf = encodeState(buf[:0], s)
		if _, err := decodeState(key, buf); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(len(buf)), "bytes")
	b.ReportMetric(float64(len(mustJSONb(s))), "json-bytes")
}

func mustJSONb(v any) []byte { b, _ := json.Marshal(v); return b }
