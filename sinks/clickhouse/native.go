package clickhouse

import (
	"encoding/binary"
	"slices"
)

// The driver's Append is slow for two kinds of columns the purchases table
// is full of: arrays, which it walks row by row through reflection, and
// decimals, which it converts through math/big, several allocations per
// value. Together they were about a quarter of the sink's CPU at full speed.
// For those columns the sink writes ClickHouse's Native format itself, the
// layout the server receives anyway, and hands it to the driver's column
// through its public Decode method; the driver then sends it unchanged.
//
// Native format, per column, for n rows (little-endian throughout):
//
//	Nullable(T):     n bytes of null map (1 = NULL), then the n values of T
//	                 (a NULL row holds T's zero value)
//	Array(T):        n UInt64 end offsets (cumulative element counts), then
//	                 the elements as one column of T
//	String:          uvarint length, then the bytes
//	Int64:           8 bytes
//	Decimal(18, S):  Int64 of value × 10^S
//
// nativeTypeOf names the ClickHouse type encodeNative writes for values, or
// "" when it has no native encoding for them. The writer compares it with
// the server's type of the column before using the native path, so a schema
// change falls back to Append instead of sending wrong bytes.
func nativeTypeOf(values any) string {
	switch values.(type) {
	case [][]string:
		return "Array(String)"
	case [][]int64:
		return "Array(Int64)"
	case []*decimal:
		return "Nullable(Decimal(18, 4))"
	case [][]*decimal:
		return "Array(Nullable(Decimal(18, 4)))"
	}
	return ""
}

// encodeNative appends the Native encoding of values to dst. ok is false
// when a value cannot be written exactly (a decimal not at scale 4 or out
// of Decimal(18, 4)'s range); the caller then uses the driver's Append,
// which converts or refuses it.
func encodeNative(dst []byte, values any) (_ []byte, ok bool) {
	switch v := values.(type) {
	case [][]string:
		dst = appendOffsets(dst, v)
		for _, row := range v {
			for _, s := range row {
				dst = binary.AppendUvarint(dst, uint64(len(s)))
				dst = append(dst, s...)
			}
		}
		return dst, true
	case [][]int64:
		dst = appendOffsets(dst, v)
		for _, row := range v {
			for _, x := range row {
				dst = binary.LittleEndian.AppendUint64(dst, uint64(x))
			}
		}
		return dst, true
	case []*decimal:
		return appendNullableMoney(dst, v)
	case [][]*decimal:
		dst = appendOffsets(dst, v)
		return appendNullableMoney(dst, slices.Concat(v...))
	}
	return dst, false
}

func appendOffsets[T any](dst []byte, rows [][]T) []byte {
	var end uint64
	for _, row := range rows {
		end += uint64(len(row))
		dst = binary.LittleEndian.AppendUint64(dst, end)
	}
	return dst
}

// appendNullableMoney writes a Nullable(Decimal(18, 4)) column.
func appendNullableMoney(dst []byte, v []*decimal) ([]byte, bool) {
	for _, d := range v {
		if d == nil {
			dst = append(dst, 1)
		} else {
			dst = append(dst, 0)
		}
	}
	for _, d := range v {
		var units int64
		if d != nil {
			// parseMoney makes every money value at exponent -4 with a
			// coefficient below 10^18; anything else takes the driver's path.
			if d.Exponent() != -moneyScale {
				return dst, false
			}
			units = d.CoefficientInt64()
			if units >= maxMoneyUnits || units <= -maxMoneyUnits {
				return dst, false
			}
		}
		dst = binary.LittleEndian.AppendUint64(dst, uint64(units))
	}
	return dst, true
}
