package clickhouse

import (
	"errors"
	"fmt"
	"strconv"
	"time"
	"unicode/utf8"
	"unsafe"

	"purchasesync/schemas"
	"purchasesync/schemas/jsonscan"
)

// decodePurchase decodes a purchases.v1 value. encoding/json spends about
// 10 µs on a 1 KB purchase, five times this decoder (BenchmarkDecodePurchase)
// and more than the rest of the sink, so the common, well-formed shape is
// decoded by hand here. Anything else
// (an unknown or differently-cased key, a type encoding/json would coerce or
// refuse, invalid UTF-8, a lone surrogate) falls back to
// schemas.UnmarshalPurchase, so the result is always exactly what the
// contract's own decoder gives: decode_test.go checks that, also by fuzzing.
func decodePurchase(b []byte) (*schemas.Purchase, error) {
	p, err := fastPurchase(b)
	if err != nil {
		return schemas.UnmarshalPurchase(b)
	}
	if err := p.Validate(); err != nil {
		return nil, fmt.Errorf("invalid purchase: %w", err) // as UnmarshalPurchase says it
	}
	return p, nil
}

// errFallback: the fast decoder does not handle this input.
var errFallback = errors.New("fall back to encoding/json")

type lexer struct {
	b []byte
	i int
}

func (l *lexer) ws() { l.i = jsonscan.SkipWS(l.b, l.i) }

func (l *lexer) peek() byte {
	l.ws()
	if l.i >= len(l.b) {
		return 0
	}
	return l.b[l.i]
}

func (l *lexer) expect(c byte) error {
	if l.peek() != c {
		return errFallback
	}
	l.i++
	return nil
}

// null consumes a null literal if one comes next.
func (l *lexer) null() bool {
	if l.peek() == 'n' && l.i+4 <= len(l.b) && string(l.b[l.i:l.i+4]) == "null" {
		l.i += 4
		return true
	}
	return false
}

// rawString returns the bytes of a string token, quotes included, and what
// it holds besides printable ASCII.
func (l *lexer) rawString() ([]byte, jsonscan.Flags, error) {
	l.ws()
	end, flags, ok := jsonscan.String(l.b, l.i)
	if !ok {
		return nil, 0, errFallback
	}
	raw := l.b[l.i:end]
	l.i = end
	return raw, flags, nil
}

func (l *lexer) str() (string, error) {
	raw, flags, err := l.rawString()
	if err != nil {
		return "", err
	}
	body := raw[1 : len(raw)-1]
	if flags&jsonscan.Escaped != 0 {
		s, ok := jsonscan.Unescape(body)
		if !ok {
			return "", errFallback // encoding/json would put U+FFFD in
		}
		return s, nil
	}
	if flags&jsonscan.NonASCII != 0 && !utf8.Valid(body) {
		return "", errFallback // encoding/json replaces invalid bytes with U+FFFD
	}
	// The string shares the record's bytes instead of copying them: about
	// twenty strings per purchase would otherwise be allocated, copied and
	// scanned by the GC, only to be copied once more into the driver's
	// column. This is safe because nothing ever writes to a record's value
	// once franz-go hands it out: the sink configures no buffer pools and
	// never recycles records (see Deps.KafkaOpts).
	return unsafe.String(unsafe.SliceData(body), len(body)), nil
}

func (l *lexer) boolean() (bool, error) {
	l.ws()
	switch {
	case l.i+4 <= len(l.b) && string(l.b[l.i:l.i+4]) == "true":
		l.i += 4
		return true, nil
	case l.i+5 <= len(l.b) && string(l.b[l.i:l.i+5]) == "false":
		l.i += 5
		return false, nil
	}
	return false, errFallback
}

// digits reads a plain non-negative integer (what encoding/json accepts for
// the uint64 and int64 fields, minus signs and exponents, which fall back).
func (l *lexer) digits() (uint64, error) {
	l.ws()
	start := l.i
	l.i = jsonscan.Digits(l.b, l.i)
	if l.i == start || l.i-start > 18 || (l.b[start] == '0' && l.i-start > 1) {
		return 0, errFallback
	}
	if l.i < len(l.b) && (l.b[l.i] == '.' || l.b[l.i] == 'e' || l.b[l.i] == 'E') {
		return 0, errFallback
	}
	n, err := strconv.ParseUint(string(l.b[start:l.i]), 10, 64)
	if err != nil {
		return 0, errFallback
	}
	return n, nil
}

// object calls field for each key of an object (or nothing for null).
func (l *lexer) object(field func(key []byte) error) error {
	if l.null() {
		return nil
	}
	if err := l.expect('{'); err != nil {
		return err
	}
	if l.peek() == '}' {
		l.i++
		return nil
	}
	for {
		raw, flags, err := l.rawString()
		if err != nil || flags != 0 {
			return errFallback // no purchases.v1 key needs either
		}
		if err := l.expect(':'); err != nil {
			return err
		}
		if err := field(raw[1 : len(raw)-1]); err != nil {
			return err
		}
		switch l.peek() {
		case ',':
			l.i++
		case '}':
			l.i++
			return nil
		default:
			return errFallback
		}
	}
}

// array calls elem for each element (or nothing for null); it reports
// whether the value was null.
func (l *lexer) array(elem func() error) (bool, error) {
	if l.null() {
		return true, nil
	}
	if err := l.expect('['); err != nil {
		return false, err
	}
	if l.peek() == ']' {
		l.i++
		return false, nil
	}
	for {
		if err := elem(); err != nil {
			return false, err
		}
		switch l.peek() {
		case ',':
			l.i++
		case ']':
			l.i++
			return false, nil
		default:
			return false, errFallback
		}
	}
}

// setStr decodes a string field; null leaves it unchanged, as encoding/json does.
func (l *lexer) setStr(dst *string) error {
	if l.null() {
		return nil
	}
	s, err := l.str()
	*dst = s
	return err
}

func (l *lexer) setBool(dst *bool) error {
	if l.null() {
		return nil
	}
	v, err := l.boolean()
	*dst = v
	return err
}

func (l *lexer) setTime(dst *time.Time) error {
	if l.null() {
		return nil
	}
	raw, flags, err := l.rawString()
	if err != nil || flags != 0 {
		return errFallback // not an RFC 3339 time
	}
	if err := dst.UnmarshalJSON(raw); err != nil {
		return errFallback
	}
	return nil
}

// purchaseKeys are the keys fastPurchase handles; a key seen twice falls
// back (encoding/json's merging of repeated keys is not worth copying).
var purchaseKeys = map[string]uint{}

var itemKeys = map[string]uint8{"product_id": 1, "variant_id": 2, "sku": 4, "title": 8, "price": 16, "quantity": 32}

// purchaseKeyOrder lists them in the order of schemas.Purchase's fields,
// which is the order MarshalPurchase writes.
var purchaseKeyOrder = []string{"site", "order_number", "shopify_order_id", "shopify_order_name", "registered_via",
	"matched", "email", "customer_id", "first_name", "last_name", "subtotal", "currency", "tax",
	"discount_amount", "shipping_cost", "coupon_codes", "shipping_zip", "shipping_address", "items",
	"ip_address", "traffic_source", "test", "refunded_amount", "refunded_at", "order_created_at",
	"registered_at", "received_at", "updated_at", "version"}

func init() {
	for i, k := range purchaseKeyOrder {
		purchaseKeys[k] = uint(i)
	}
}

func fastPurchase(b []byte) (*schemas.Purchase, error) {
	l := &lexer{b: b}
	p := &schemas.Purchase{}
	var seen uint64
	next := 0 // index of the key MarshalPurchase writes next
	err := l.object(func(key []byte) error {
		// Our own encoder writes the keys in one order: check the expected
		// one first, the map only for other writers.
		idx, ok := uint(next), next < len(purchaseKeyOrder) && string(key) == purchaseKeyOrder[next]
		if !ok {
			idx, ok = purchaseKeys[string(key)]
		}
		if !ok || seen&(1<<idx) != 0 {
			return errFallback
		}
		next = int(idx) + 1
		seen |= 1 << idx
		switch string(key) {
		case "site":
			return l.setStr(&p.Site)
		case "order_number":
			return l.setStr(&p.OrderNumber)
		case "shopify_order_id":
			if l.null() {
				p.ShopifyOrderID = nil
				return nil
			}
			s, err := l.str()
			p.ShopifyOrderID = &s
			return err
		case "shopify_order_name":
			return l.setStr(&p.ShopifyOrderName)
		case "registered_via":
			return l.setStr(&p.RegisteredVia)
		case "matched":
			return l.setBool(&p.Matched)
		case "email":
			return l.setStr(&p.Email)
		case "customer_id":
			return l.setStr(&p.CustomerID)
		case "first_name":
			return l.setStr(&p.FirstName)
		case "last_name":
			return l.setStr(&p.LastName)
		case "subtotal":
			return l.setStr(&p.Subtotal)
		case "currency":
			return l.setStr(&p.Currency)
		case "tax":
			return l.setStr(&p.Tax)
		case "discount_amount":
			return l.setStr(&p.DiscountAmount)
		case "shipping_cost":
			return l.setStr(&p.ShippingCost)
		case "coupon_codes":
			codes := p.CouponCodes[:0]
			null, err := l.array(func() error {
				s, err := l.str()
				codes = append(codes, s)
				return err
			})
			if null {
				codes = nil
			} else if codes == nil {
				codes = []string{} // [] decodes to an empty slice, not nil
			}
			p.CouponCodes = codes
			return err
		case "shipping_zip":
			return l.setStr(&p.ShippingZip)
		case "shipping_address":
			return l.setStr(&p.ShippingAddress)
		case "items":
			items := p.Items[:0]
			null, err := l.array(func() error {
				var it schemas.Item
				var itemSeen uint8
				err := l.object(func(k []byte) error {
					bit := itemKeys[string(k)]
					if bit == 0 || itemSeen&bit != 0 {
						return errFallback
					}
					itemSeen |= bit
					switch string(k) {
					case "product_id":
						return l.setStr(&it.ProductID)
					case "variant_id":
						return l.setStr(&it.VariantID)
					case "sku":
						return l.setStr(&it.SKU)
					case "title":
						return l.setStr(&it.Title)
					case "price":
						return l.setStr(&it.Price)
					case "quantity":
						if l.null() {
							return nil
						}
						n, err := l.digits()
						it.Quantity = int64(n)
						return err
					}
					return errFallback
				})
				items = append(items, it)
				return err
			})
			if null {
				items = nil
			} else if items == nil {
				items = []schemas.Item{}
			}
			p.Items = items
			return err
		case "ip_address":
			return l.setStr(&p.IPAddress)
		case "traffic_source":
			return l.setStr(&p.TrafficSource)
		case "test":
			return l.setBool(&p.Test)
		case "refunded_amount":
			return l.setStr(&p.RefundedAmount)
		case "refunded_at":
			if l.null() {
				p.RefundedAt = nil
				return nil
			}
			var t time.Time
			err := l.setTime(&t)
			p.RefundedAt = &t
			return err
		case "order_created_at":
			return l.setTime(&p.OrderCreatedAt)
		case "registered_at":
			return l.setTime(&p.RegisteredAt)
		case "received_at":
			return l.setTime(&p.ReceivedAt)
		case "updated_at":
			return l.setTime(&p.UpdatedAt)
		case "version":
			if l.null() {
				return nil
			}
			n, err := l.digits()
			p.Version = n
			return err
		}
		return errFallback
	})
	if err != nil {
		return nil, err
	}
	if l.ws(); l.i != len(l.b) {
		return nil, errFallback
	}
	return p, nil
}
