package clickhouse

import "encoding/binary"

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
	case []money:
		return "Nullable(Decimal(18, 4))"
	case [][]money:
		return "Array(Nullable(Decimal(18, 4)))"
	}
	return ""
}

// encodeNative appends the Native encoding of values to dst; ok is false
// for a type nativeTypeOf does not name.
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
	case []money:
		return appendNullableMoney(dst, v), true
	case [][]money:
		// The elements form one Nullable column: every null flag of every
		// row first, then every value.
		dst = appendOffsets(dst, v)
		for _, row := range v {
			dst = appendNullMap(dst, row)
		}
		for _, row := range v {
			dst = appendUnits(dst, row)
		}
		return dst, true
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
func appendNullableMoney(dst []byte, v []money) []byte {
	return appendUnits(appendNullMap(dst, v), v)
}

func appendNullMap(dst []byte, v []money) []byte {
	for _, m := range v {
		if m.valid {
			dst = append(dst, 0)
		} else {
			dst = append(dst, 1)
		}
	}
	return dst
}

func appendUnits(dst []byte, v []money) []byte {
	for _, m := range v {
		dst = binary.LittleEndian.AppendUint64(dst, uint64(m.units)) // 0 for NULL
	}
	return dst
}
