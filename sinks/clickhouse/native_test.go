package clickhouse

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/ClickHouse/ch-go/proto"
	chcol "github.com/ClickHouse/clickhouse-go/v2/lib/column"
)

// randomMoney is NULL a quarter of the time, else a value across
// Decimal(18, 4)'s range, negatives included.
func randomMoney(r *rand.Rand) money {
	if r.IntN(4) == 0 {
		return money{}
	}
	units := r.Int64N(maxMoneyUnits)
	if r.IntN(2) == 0 {
		units = -units
	}
	return money{units: units, valid: true}
}

func randomStrings(r *rand.Rand) []string {
	out := make([]string, r.IntN(4))
	for i := range out {
		out[i] = string(make([]byte, r.IntN(300))) + fmt.Sprintf("é%d", r.Int())
	}
	return out
}

// TestEncodeNativeMatchesChGo compares encodeNative with ch-go's own column
// encoders (the library the driver is built on) on random columns: the bytes
// must be identical, or the server would read other values than we sent.
func TestEncodeNativeMatchesChGo(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	for round := range 50 {
		rows := r.IntN(40)
		var (
			strs    [][]string
			ints    [][]int64
			amounts []money
			prices  [][]money
		)
		wantStrs := proto.NewArray[string](new(proto.ColStr))
		wantInts := proto.NewArray[int64](new(proto.ColInt64))
		wantMoney := proto.NewColNullable[proto.Decimal64](new(proto.ColDecimal64))
		wantPrices := proto.NewArray[proto.Nullable[proto.Decimal64]](proto.NewColNullable[proto.Decimal64](new(proto.ColDecimal64)))
		nullable := func(m money) proto.Nullable[proto.Decimal64] {
			if !m.valid {
				return proto.Null[proto.Decimal64]()
			}
			return proto.NewNullable(proto.Decimal64(m.units))
		}
		for range rows {
			s := randomStrings(r)
			strs = append(strs, s)
			wantStrs.Append(s)

			is := make([]int64, r.IntN(5))
			for i := range is {
				is[i] = r.Int64() - r.Int64()
			}
			ints = append(ints, is)
			wantInts.Append(is)

			m := randomMoney(r)
			amounts = append(amounts, m)
			wantMoney.Append(nullable(m))

			ps := make([]money, r.IntN(5))
			want := make([]proto.Nullable[proto.Decimal64], len(ps))
			for i := range ps {
				ps[i] = randomMoney(r)
				want[i] = nullable(ps[i])
			}
			prices = append(prices, ps)
			wantPrices.Append(want)
		}
		for _, c := range []struct {
			name   string
			values any
			want   proto.ColInput
		}{
			{"Array(String)", strs, wantStrs},
			{"Array(Int64)", ints, wantInts},
			{"Nullable(Decimal(18, 4))", amounts, wantMoney},
			{"Array(Nullable(Decimal(18, 4)))", prices, wantPrices},
		} {
			if got := nativeTypeOf(c.values); got != c.name {
				t.Fatalf("nativeTypeOf(%T) = %q, want %q", c.values, got, c.name)
			}
			got, ok := encodeNative(nil, c.values)
			if !ok {
				t.Fatalf("round %d, %s: encodeNative refused valid values", round, c.name)
			}
			var want proto.Buffer
			c.want.EncodeColumn(&want)
			if !bytes.Equal(got, want.Buf) {
				t.Fatalf("round %d, %s (%d rows): encodeNative differs from ch-go\n got %x\nwant %x", round, c.name, rows, got, want.Buf)
			}
		}
	}
}

// TestNativeOnlyWhereTheDriverIsSlow: columns the driver appends cheaply
// keep its path, and sameType ignores only spaces.
func TestNativeOnlyWhereTheDriverIsSlow(t *testing.T) {
	for _, v := range []any{[]string{"a"}, []uint64{1}, []*string{nil}, []time.Time{{}}} {
		if nativeTypeOf(v) != "" {
			t.Errorf("%T must not take the native path", v)
		}
		if _, ok := encodeNative(nil, v); ok {
			t.Errorf("encodeNative accepted %T", v)
		}
	}
	if !sameType("Array(Nullable(Decimal(18,4)))", "Array(Nullable(Decimal(18, 4)))") || sameType("Array(String)", "Array(LowCardinality(String))") {
		t.Error("sameType")
	}
}

// TestMoneyAtGivesTheDriverDecimals: the row-by-row fallback hands money to
// the driver as its decimal type, NULL as nil.
func TestMoneyAtGivesTheDriverDecimals(t *testing.T) {
	c := &col[money]{v: []money{{units: 123450, valid: true}, {}}}
	if d := c.at(0).(*decimal); d.StringFixed(4) != "12.3450" || c.at(1).(*decimal) != nil {
		t.Errorf("at = %v, %v", c.at(0), c.at(1))
	}
	a := &col[[]money]{v: [][]money{{{units: -1, valid: true}, {}}}}
	if ds := a.at(0).([]*decimal); len(ds) != 2 || ds[0].StringFixed(4) != "-0.0001" || ds[1] != nil {
		t.Errorf("at = %v", ds)
	}
}

// TestAppendNativeThroughTheDriversColumns loads native encodings into the
// driver's own column types (as PrepareBatch makes them) and reads every
// value back through the driver: the same path as an insert, minus the
// server. It also checks the guards: a column that already holds rows, or
// one whose name differs, never takes the native path.
func TestAppendNativeThroughTheDriversColumns(t *testing.T) {
	tb := newPurchasesTable()
	r := rand.New(rand.NewPCG(5, 6))
	for i := range 200 {
		p := samplePurchase()
		p.OrderNumber = fmt.Sprint(i)
		p.CouponCodes = randomStrings(r)
		p.Subtotal = fmt.Sprintf("%d.%04d", r.IntN(100000), r.IntN(10000))
		if i%3 == 0 {
			p.Subtotal = ""
		}
		row, err := purchaseRowOf(p)
		if err != nil {
			t.Fatal(err)
		}
		row.ItemsPrice[0] = randomMoney(r)
		tb.add(row, rowRef{}, 1)
	}
	sc := &chcol.ServerContext{}
	w := &chWriter{}
	for _, c := range tb.cols {
		typ := nativeTypeOf(c.values())
		if typ == "" {
			continue
		}
		col, err := chcol.Type(typ).Column(c.name(), sc)
		if err != nil {
			t.Fatal(err)
		}
		if native, err := w.appendNative(col, c, tb.len()); !native || err != nil {
			t.Fatalf("%s: native %v, err %v", c.name(), native, err)
		}
		if col.Rows() != tb.len() {
			t.Fatalf("%s: driver column holds %d rows, want %d", c.name(), col.Rows(), tb.len())
		}
		for i := range tb.len() {
			got, want := fmt.Sprint(deref(col.Row(i, false))), fmt.Sprint(deref(c.at(i)))
			if got != want {
				t.Fatalf("%s row %d: driver reads %s, we wrote %s", c.name(), i, got, want)
			}
		}
		// The guards.
		if native, _ := w.appendNative(col, c, tb.len()); native {
			t.Fatalf("%s: decoded into a column that already holds rows", c.name())
		}
		other, _ := chcol.Type(typ).Column("not_"+c.name(), sc)
		if _, err := w.appendNative(other, c, tb.len()); err == nil {
			t.Fatalf("%s: loaded into a column of another name", c.name())
		}
	}
	if w.native != nativeColumns(&tb.table) {
		t.Fatalf("%d native loads, want %d", w.native, nativeColumns(&tb.table))
	}
}

// deref prints decimals at a fixed scale and pointers as their values, so
// that the driver's and our representations of one value compare equal.
func deref(v any) any {
	switch v := v.(type) {
	case nil:
		return "NULL"
	case *decimal:
		if v == nil {
			return "NULL"
		}
		return v.StringFixed(4)
	case decimal:
		return v.StringFixed(4)
	case []*decimal:
		out := make([]any, len(v))
		for i, d := range v {
			out[i] = deref(d)
		}
		return out
	}
	return v
}
