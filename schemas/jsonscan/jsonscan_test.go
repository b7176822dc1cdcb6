package jsonscan

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"math/bits"
	"math/rand/v2"
	"strings"
	"testing"
)

// refString is String before stops: one byte at a time. String must agree
// with it exactly.
func refString(b []byte, i int) (end int, flags Flags, ok bool) {
	if i >= len(b) || b[i] != '"' {
		return i, 0, false
	}
	for i++; i < len(b); i++ {
		switch c := b[i]; {
		case c == '"':
			return i + 1, flags, true
		case c < 0x20:
			return i, 0, false
		case c >= 0x80:
			flags |= NonASCII
		case c == '\\':
			flags |= Escaped
			if i++; i >= len(b) {
				return i, 0, false
			}
			switch b[i] {
			case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
			case 'u':
				if len(b)-i < 5 || !isHexString(b[i+1:i+5]) {
					return i, 0, false
				}
				i += 4
			default:
				return i, 0, false
			}
		}
	}
	return i, 0, false
}

func isHexString(b []byte) bool {
	for _, c := range b {
		if !strings.ContainsRune("0123456789abcdefABCDEF", rune(c)) {
			return false
		}
	}
	return true
}

// TestStringWordOffsets puts each kind of byte that can stop a run of
// ordinary string characters at every offset of the 8-byte words that
// String tests at once (and of the bytes after the last whole word),
// followed by a second stop byte at every offset.
func TestStringWordOffsets(t *testing.T) {
	stopBytes := []string{
		`"`,                    // closing quote
		`\n`, `\/`, `\\`, `\"`, // escapes
		`\u00e9`, `\uD83D`, `\ud83d\ude00`, // \u escapes
		`\x`, `\u12`, `\u12G4`, `\`, // bad escapes
		"\x00", "\x01", "\x1f", "\n", "\t", "\r", // control characters: invalid
		"é", "\x80", "\xbf", "\xff", "ünï", // non-ASCII: valid, flagged
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
	for _, first := range stopBytes {
		for _, second := range []string{"", `"`, "\x01", `\t`, "é", "\x1f"} {
			for pre := 0; pre <= 17; pre++ {
				for mid := 0; mid <= 9; mid++ {
					checkLiteral(t, []byte(`"`+ordinary(pre)+first+ordinary(mid)+second+`"`))
					n++
				}
			}
		}
	}
	if n < 10000 {
		t.Fatalf("only %d cases", n)
	}
}

// checkLiteral checks lit, which starts with a quote, where whole words
// follow it, where it ends the text (String's per-byte tail), unterminated,
// and as a member name: String against refString, the text against
// json.Valid, and Unquote against encoding/json.
func checkLiteral(t *testing.T, lit []byte) {
	t.Helper()
	pad := `,"pad":"` + strings.Repeat("x", 40) + `"`
	for _, c := range []struct{ before, after string }{
		{`{"name":`, pad + `}`},
		{`{"name":`, `}`},
		{`{"name":`, ``}, // unterminated text
		{`{`, `:1` + pad + `}`},
		{`[`, `]`},
	} {
		b := []byte(c.before + string(lit) + c.after)
		at := len(c.before)
		gotEnd, gotFlags, gotOK := String(b, at)
		wantEnd, wantFlags, wantOK := refString(b, at)
		if gotOK != wantOK || (wantOK && (gotEnd != wantEnd || gotFlags != wantFlags)) {
			t.Fatalf("String(%q, %d) = %d, %v, %v; want %d, %v, %v",
				b, at, gotEnd, gotFlags, gotOK, wantEnd, wantFlags, wantOK)
		}
		end, ok := SkipValue(b, 0, 0)
		if valid := ok && end == len(b); valid != json.Valid(b) {
			t.Fatalf("SkipValue(%q) = %d, %v; json.Valid = %v", b, end, ok, !valid)
		}
	}
	checkUnquote(t, lit)
}

// checkUnquote wants Unquote to decode lit as encoding/json decodes it into
// a string, or to fail where it fails.
func checkUnquote(t *testing.T, lit []byte) {
	t.Helper()
	var want string
	werr := json.Unmarshal(lit, &want)
	got, err := Unquote(lit)
	if (err == nil) != (werr == nil) || got != want {
		t.Fatalf("Unquote(%q) = %q, %v; encoding/json %q, %v", lit, got, err, want, werr)
	}
}

// FuzzString checks String against the per-byte loop and json.Valid on any
// bytes after an opening quote.
func FuzzString(f *testing.F) {
	f.Add([]byte(`abc"`))
	f.Add([]byte(`0123456789abcdef\u00e9ü"xyz`))
	f.Add([]byte("Kaufingerstraße 12, 80331 München\x01\""))
	f.Add([]byte(`\"\\\/\b\f\n\r\t\uABCDefgh"`))
	f.Fuzz(func(t *testing.T, tail []byte) {
		b := append([]byte{'"'}, tail...)
		gotEnd, gotFlags, gotOK := String(b, 0)
		wantEnd, wantFlags, wantOK := refString(b, 0)
		if gotOK != wantOK || (wantOK && (gotEnd != wantEnd || gotFlags != wantFlags)) {
			t.Fatalf("String(%q) = %d, %v, %v; want %d, %v, %v",
				b, gotEnd, gotFlags, gotOK, wantEnd, wantFlags, wantOK)
		}
		if wantOK {
			if !json.Valid(b[:wantEnd]) {
				t.Fatalf("String accepts %q, json.Valid does not", b[:wantEnd])
			}
			checkLiteral(t, b[:wantEnd])
		} else if i := bytes.IndexByte(b[1:], '"'); i >= 0 && json.Valid(b[:i+2]) {
			t.Fatalf("String rejects %q, json.Valid accepts %q", b, b[:i+2])
		}
	})
}

// FuzzUnquote: for any bytes, Unquote gives what encoding/json gives.
func FuzzUnquote(f *testing.F) {
	for _, s := range []string{`"abc"`, `"a\"b"`, `"\u00e9"`, "\"\xff\"", `"é\n"`, `"\ud83d\ude00"`, `"\ud83d"`,
		`"\ud83dx\ude00"`, `"\ude00\ud83d"`, `"\ud83d\u0041"`, `"\u0000"`, `"a` + "\x01" + `"`, `"a"b"`, `"`, `""`, `"\"`, `x`} {
		f.Add([]byte(s))
	}
	f.Fuzz(checkUnquote)
}

// FuzzSkipValue: SkipValue accepts exactly the texts json.Valid accepts
// (the depth limit is TestSkipValueDepth's: a 10000-deep seed slows the
// fuzzer to a crawl).
func FuzzSkipValue(f *testing.F) {
	for _, s := range []string{`{"a":[1,-2.5e+3,true,false,null,"x\u00e9"],"b":{}}`, ` [ ] `, `01`, `1.`, `-`, `1e`,
		`{"a":1,}`, `[1 2]`, `nul`, `"\x"`, `[[[{"a":[]}]]]`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		end, ok := SkipValue(b, SkipWS(b, 0), 0)
		if valid := ok && SkipWS(b, end) == len(b); valid != json.Valid(b) {
			t.Fatalf("SkipValue(%q) = %d, %v; json.Valid = %v", b, end, ok, !valid)
		}
	})
}

// TestSkipValueDepth pins encoding/json's nesting limit: MaxDepth open
// containers are valid JSON, one more is not.
func TestSkipValueDepth(t *testing.T) {
	for _, n := range []int{MaxDepth, MaxDepth + 1} {
		b := []byte(strings.Repeat(`{"x":[`, n/2) + strings.Repeat("[", n%2) + strings.Repeat("]", n%2) + strings.Repeat("]}", n/2))
		end, ok := SkipValue(b, 0, 0)
		if valid := ok && end == len(b); valid != json.Valid(b) {
			t.Errorf("depth %d: SkipValue valid=%v, json.Valid=%v", n, valid, !valid)
		}
	}
}

// TestNumber checks Number against json.Valid on JSON's number grammar.
func TestNumber(t *testing.T) {
	for _, s := range []string{"0", "-0", "1", "-12", "10.5", "1e3", "1E+3", "-0.5e-3", "123456789012345678901234",
		"", "-", "01", "-01", "1.", ".5", "1e", "1e+", "+1", "1.5.5", "0x1", "1_0", "--1", "1ee3", "e3"} {
		end, ok := Number([]byte(s), 0)
		if valid := ok && end == len(s); valid != json.Valid([]byte(s)) {
			t.Errorf("Number(%q) = %d, %v; json.Valid = %v", s, end, ok, !valid)
		}
	}
}

// TestStopsMatchesBytewiseScan compares the word test with a byte-by-byte
// reference on random words made of bytes around the stop values, in both
// modes: the lowest flagged byte must be the first stop byte, and no flag
// without one.
func TestStopsMatchesBytewiseScan(t *testing.T) {
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
		m := stops(binary.LittleEndian.Uint64(w[:]), nonASCII)
		switch {
		case first < 0 && m != 0:
			t.Fatalf("% x (nonASCII %v): flagged without a stop byte", w, nonASCII)
		case first >= 0 && (m == 0 || bits.TrailingZeros64(m)/8 != first):
			t.Fatalf("% x (nonASCII %v): first stop at %d, lowest flag at byte %d", w, nonASCII, first, bits.TrailingZeros64(m)/8)
		}
	}
}
