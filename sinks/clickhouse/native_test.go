package clickhouse

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"testing"

	"github.com/ClickHouse/ch-go/proto"
	dec "github.com/shopspring/decimal"
)

// randomMoney is nil a quarter of the time, else a value at scale 4 across
// Decimal(18, 4)'s range, negatives included.
func randomMoney(r *rand.Rand) *decimal {
	if r.IntN(4) == 0 {
		return nil
	}
	units := r.Int64N(maxMoneyUnits)
	if r.IntN(2) == 0 {
		units = -units
	}
	d := dec.New(units, -moneyScale)
	return &d
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
			strs   [][]string
			ints   [][]int64
			money  []*decimal
			prices [][]*decimal
		)
		wantStrs := proto.NewArray[string](new(proto.ColStr))
		wantInts := proto.NewArray[int64](new(proto.ColInt64))
		wantMoney := proto.NewColNullable[proto.Decimal64](new(proto.ColDecimal64))
		wantPrices := proto.NewArray[proto.Nullable[proto.Decimal64]](proto.NewColNullable[proto.Decimal64](new(proto.ColDecimal64)))
		nullable := func(d *decimal) proto.Nullable[proto.Decimal64] {
			if d == nil {
				return proto.Null[proto.Decimal64]()
			}
			return proto.NewNullable(proto.Decimal64(d.CoefficientInt64()))
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
			money = append(money, m)
			wantMoney.Append(nullable(m))

			ps := make([]*decimal, r.IntN(5))
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
			{"Nullable(Decimal(18, 4))", money, wantMoney},
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

// TestEncodeNativeRefusesWhatItCannotWriteExactly: a decimal not at scale 4
// (never made by parseMoney) must go to the driver's Append, which rescales
// it, rather than be written with the wrong scale.
func TestEncodeNativeRefusesWhatItCannotWriteExactly(t *testing.T) {
	odd := dec.New(12345, -2) // 123.45 at scale 2
	ok4 := dec.New(1234500, -4)
	for _, v := range []any{[]*decimal{&ok4, &odd}, [][]*decimal{{&ok4}, {nil, &odd}}} {
		if _, ok := encodeNative(nil, v); ok {
			t.Errorf("encodeNative(%v) accepted a scale-2 decimal", v)
		}
	}
	if nativeTypeOf([]string{"a"}) != "" || nativeTypeOf([]uint64{1}) != "" {
		t.Error("columns the driver appends cheaply must not take the native path")
	}
	if !sameType("Array(Nullable(Decimal(18,4)))", "Array(Nullable(Decimal(18, 4)))") || sameType("Array(String)", "Array(LowCardinality(String))") {
		t.Error("sameType")
	}
}
