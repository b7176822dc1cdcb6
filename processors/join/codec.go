package join

// The join's state, in memory and in join.state.v1, is one compact binary
// value per key (stateVersion below), not JSON: encoding/json of a whole
// State was an eighth of the join's CPU, and the decoded States — pointers
// everywhere — were most of its heap and of the garbage collector's work.
// A partition keeps the encoded bytes (pointer-free, so the collector never
// scans them) and decodes a key's state only when an event or a timer
// needs it; restore keeps the changelog's bytes as they are.
//
// Layout (all integers unsigned varints unless said; a string is its length
// then its bytes; a time is 0 when zero, else its zig-zagged Unix seconds
// and its nanoseconds (see putTime), always read back in UTC):
//
//	version (1 byte, stateVersion), flags (1 byte: the has* bits),
//	held_until, webhook_due, expires_at    (the header: restore reads only it)
//	repeats, [purchase], [held], [storefront facts], [shopify facts], [refunds]
//
// Facts are keyed by field name (a count, then name and value of each field
// sent), so that a row added to or moved in schemas.ComparedFields never
// misreads a stored value; a name no longer in the table is dropped.
// Version 1, written before, stored them by position (the v1Facts fields,
// then the coupon codes as a list); it is still read.
//
// Site and order number are never stored: they are the record's key. A
// value starting with '{' is a JSON State written before this encoding; it
// is read (and written back in this encoding at the key's next change), so
// an upgrade keeps every key's state. Old values are rewritten only when
// their key changes, so every version here stays readable.

import (
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"purchasesync/schemas"
)

// stateVersion is the encoding written; stateVersion1 (positional facts)
// is read.
const (
	stateVersion1 byte = 1
	stateVersion  byte = 2
)

// v1Facts are the fields a version-1 value stores by position, before its
// coupon codes.
var v1Facts = [...]string{"email", "subtotal", "currency", "customer_id", "shipping_zip"}

const v1Coupons = "coupon_codes"

const (
	hasPurchase byte = 1 << iota
	hasHeld
	hasStorefront
	hasShopify
	hasRefunds
)

// purchase flags
const (
	pOrderID byte = 1 << iota
	pMatched
	pTest
	pRefundedAt
	pOtherKey // site or order number differ from the state's (never, today)
	pCoupons  // coupon_codes not null
	pItems    // items not null
)

var errStateTruncated = errors.New("truncated join state")

// stateMeta is what the partition keeps an index of: the next deadline (its
// timer) and whether a purchase is held.
type stateMeta struct {
	heldUntil, webhookDue, expiresAt time.Time
	held                             bool
}

func (m stateMeta) deadline() time.Time {
	return (&State{HeldUntil: m.heldUntil, WebhookDue: m.webhookDue, ExpiresAt: m.expiresAt}).NextDeadline()
}

func metaOf(s *State) stateMeta {
	return stateMeta{heldUntil: s.HeldUntil, webhookDue: s.WebhookDue, expiresAt: s.ExpiresAt, held: s.Held != nil}
}

// encodeState appends s's encoding to buf.
func encodeState(buf []byte, s *State) []byte {
	var flags byte
	if s.Purchase != nil {
		flags |= hasPurchase
	}
	if s.Held != nil {
		flags |= hasHeld
	}
	if s.Storefront != nil {
		flags |= hasStorefront
	}
	if s.Shopify != nil {
		flags |= hasShopify
	}
	if len(s.Refunds) > 0 {
		flags |= hasRefunds
	}
	buf = append(buf, stateVersion, flags)
	buf = putTime(buf, s.HeldUntil)
	buf = putTime(buf, s.WebhookDue)
	buf = putTime(buf, s.ExpiresAt)
	buf = binary.AppendUvarint(buf, uint64(max(s.Repeats, 0)))
	if s.Purchase != nil {
		buf = putPurchase(buf, s, s.Purchase)
	}
	if s.Held != nil {
		buf = putPurchase(buf, s, s.Held)
	}
	if s.Storefront != nil {
		buf = putFacts(buf, s.Storefront)
	}
	if s.Shopify != nil {
		buf = putFacts(buf, s.Shopify)
	}
	if len(s.Refunds) > 0 {
		ids := make([]string, 0, len(s.Refunds))
		for id := range s.Refunds {
			ids = append(ids, id)
		}
		slices.Sort(ids) // one state, one encoding: replays compare bytes
		buf = binary.AppendUvarint(buf, uint64(len(ids)))
		for _, id := range ids {
			r := s.Refunds[id]
			buf = putString(buf, id)
			buf = putString(buf, r.Amount)
			buf = putTime(buf, r.At)
			buf = putMap(buf, r.Returned)
			buf = putMap(buf, r.In)
			buf = putBool(buf, r.Unreadable)
		}
	}
	return buf
}

// decodeState decodes the value of key (either encoding).
func decodeState(key string, b []byte) (*State, error) {
	if len(b) > 0 && b[0] == '{' {
		var s State
		if err := json.Unmarshal(b, &s); err != nil {
			return nil, err
		}
		return &s, nil
	}
	site, orderNumber, err := schemas.SplitKey(key)
	if err != nil {
		return nil, err
	}
	r := reader{b: b}
	s := &State{Site: site, OrderNumber: orderNumber}
	if err := r.state(s); err != nil {
		return nil, err
	}
	return s, nil
}

// checkValue checks that a binary value decodes, without building the state
// (restore checks every value it keeps: a corrupt one must stop the
// restore, naming its key, not a later decision), and returns its header.
func checkValue(b []byte) (stateMeta, error) {
	r := reader{b: b, skip: true}
	var s State
	if err := r.state(&s); err != nil {
		return stateMeta{}, err
	}
	return stateMeta{heldUntil: s.HeldUntil, webhookDue: s.WebhookDue, expiresAt: s.ExpiresAt, held: b[1]&hasHeld != 0}, nil
}

// state decodes a whole value into s; in skip mode it only walks it (no
// strings, slices, maps or purchases are made) and s gets the deadlines.
func (r *reader) state(s *State) error {
	flags, err := r.header()
	if err != nil {
		return err
	}
	s.HeldUntil, s.WebhookDue, s.ExpiresAt = r.time(), r.time(), r.time()
	s.Repeats = int(r.uvarint())
	if flags&hasPurchase != 0 {
		s.Purchase = r.purchase(s)
	}
	if flags&hasHeld != 0 {
		s.Held = r.purchase(s)
	}
	if flags&hasStorefront != 0 {
		s.Storefront = r.facts()
	}
	if flags&hasShopify != 0 {
		s.Shopify = r.facts()
	}
	if flags&hasRefunds != 0 {
		n := r.count()
		if !r.skip {
			s.Refunds = make(map[string]Refund, n)
		}
		for i := 0; i < n && r.err == nil; i++ {
			id := r.string()
			rf := Refund{Amount: r.string(), At: r.time(), Returned: r.stringMap(), In: r.stringMap(), Unreadable: r.bool()}
			if !r.skip {
				s.Refunds[id] = rf
			}
		}
	}
	if r.err == nil && len(r.b) != 0 {
		r.err = fmt.Errorf("%d bytes after the join state", len(r.b))
	}
	return r.err
}

// decodeMeta reads only the header of a value (either encoding).
func decodeMeta(key string, b []byte) (stateMeta, error) {
	if len(b) > 0 && b[0] == '{' {
		s, err := decodeState(key, b)
		if err != nil {
			return stateMeta{}, err
		}
		return metaOf(s), nil
	}
	r := reader{b: b}
	flags, err := r.header()
	if err != nil {
		return stateMeta{}, err
	}
	m := stateMeta{heldUntil: r.time(), webhookDue: r.time(), expiresAt: r.time(), held: flags&hasHeld != 0}
	if r.err != nil {
		return stateMeta{}, r.err
	}
	return m, nil
}

func putPurchase(buf []byte, s *State, p *schemas.Purchase) []byte {
	var f byte
	if p.ShopifyOrderID != nil {
		f |= pOrderID
	}
	if p.Matched {
		f |= pMatched
	}
	if p.Test {
		f |= pTest
	}
	if p.RefundedAt != nil {
		f |= pRefundedAt
	}
	if p.Site != s.Site || p.OrderNumber != s.OrderNumber {
		f |= pOtherKey
	}
	if p.CouponCodes != nil {
		f |= pCoupons
	}
	if p.Items != nil {
		f |= pItems
	}
	buf = append(buf, f)
	if f&pOtherKey != 0 {
		buf = putString(putString(buf, p.Site), p.OrderNumber)
	}
	if p.ShopifyOrderID != nil {
		buf = putString(buf, *p.ShopifyOrderID)
	}
	for _, v := range [...]string{p.ShopifyOrderName, p.RegisteredVia, p.Email, p.CustomerID, p.FirstName, p.LastName,
		p.Subtotal, p.Currency, p.Tax, p.DiscountAmount, p.ShippingCost, p.ShippingZip, p.ShippingAddress,
		p.IPAddress, p.TrafficSource, p.RefundedAmount} {
		buf = putString(buf, v)
	}
	if p.CouponCodes != nil {
		buf = putStrings(buf, p.CouponCodes)
	}
	if p.Items != nil {
		buf = binary.AppendUvarint(buf, uint64(len(p.Items)))
		for _, it := range p.Items {
			buf = putString(putString(putString(putString(putString(buf, it.ProductID), it.VariantID), it.SKU), it.Title), it.Price)
			buf = binary.AppendVarint(buf, it.Quantity)
		}
	}
	if p.RefundedAt != nil {
		buf = putTime(buf, *p.RefundedAt)
	}
	buf = putTime(putTime(putTime(putTime(buf, p.OrderCreatedAt), p.RegisteredAt), p.ReceivedAt), p.UpdatedAt)
	return binary.AppendUvarint(buf, p.Version)
}

func (r *reader) purchase(s *State) *schemas.Purchase {
	if r.skip {
		var p schemas.Purchase // on the stack: nothing keeps it
		r.purchaseInto(&p, s)
		return nil
	}
	p := new(schemas.Purchase)
	r.purchaseInto(p, s)
	return p
}

func (r *reader) purchaseInto(p *schemas.Purchase, s *State) {
	f := r.byte()
	*p = schemas.Purchase{Site: s.Site, OrderNumber: s.OrderNumber, Matched: f&pMatched != 0, Test: f&pTest != 0}
	if f&pOtherKey != 0 {
		p.Site, p.OrderNumber = r.string(), r.string()
	}
	if f&pOrderID != 0 {
		p.ShopifyOrderID = r.stringPtr()
	}
	for _, v := range [...]*string{&p.ShopifyOrderName, &p.RegisteredVia, &p.Email, &p.CustomerID, &p.FirstName, &p.LastName,
		&p.Subtotal, &p.Currency, &p.Tax, &p.DiscountAmount, &p.ShippingCost, &p.ShippingZip, &p.ShippingAddress,
		&p.IPAddress, &p.TrafficSource, &p.RefundedAmount} {
		*v = r.string()
	}
	if f&pCoupons != 0 {
		p.CouponCodes = r.strings()
	}
	if f&pItems != 0 {
		n := r.count()
		if !r.skip {
			p.Items = make([]schemas.Item, 0, n)
		}
		for i := 0; i < n && r.err == nil; i++ {
			it := schemas.Item{ProductID: r.string(), VariantID: r.string(), SKU: r.string(), Title: r.string(), Price: r.string(), Quantity: r.varint()}
			if !r.skip {
				p.Items = append(p.Items, it)
			}
		}
	}
	if f&pRefundedAt != 0 {
		p.RefundedAt = r.timePtr()
	}
	p.OrderCreatedAt, p.RegisteredAt, p.ReceivedAt, p.UpdatedAt = r.time(), r.time(), r.time(), r.time()
	p.Version = r.uvarint()
}

func putFacts(buf []byte, f *Facts) []byte {
	n := 0
	for _, v := range f {
		if v != "" {
			n++
		}
	}
	buf = binary.AppendUvarint(buf, uint64(n))
	for i, v := range f {
		if v != "" {
			buf = putString(putString(buf, schemas.ComparedFields[i].Name), v)
		}
	}
	return buf
}

// facts reads one side's facts (nil in skip mode: walked without a Facts,
// which would be on the heap).
func (r *reader) facts() *Facts {
	var f *Facts
	if !r.skip {
		f = new(Facts)
	}
	if r.version == stateVersion1 {
		for _, name := range v1Facts {
			r.fact(f, name, r.string())
		}
		if r.bool() {
			r.fact(f, v1Coupons, strings.Join(r.strings(), ","))
		}
		return f
	}
	n := r.count()
	for i := 0; i < n && r.err == nil; i++ {
		if row := r.fieldOf(r.bytes()); row >= 0 {
			f[row] = r.string()
		} else {
			r.bytes()
		}
	}
	return f
}

// fact sets the field called name (a version-1 value's).
func (r *reader) fact(f *Facts, name, v string) {
	if i := fieldIndex(name); i >= 0 && f != nil {
		f[i] = v
	}
}

// fieldOf is the row of a stored field name, -1 when it is no longer in the
// table or in skip mode.
func (r *reader) fieldOf(name []byte) int {
	if r.skip {
		return -1
	}
	for i := range schemas.ComparedFields {
		if string(name) == schemas.ComparedFields[i].Name {
			return i
		}
	}
	return -1
}

// stringPtr and timePtr read a value that is kept by pointer (nil in skip
// mode: the variable would be on the heap).
func (r *reader) stringPtr() *string {
	if r.skip {
		r.string()
		return nil
	}
	v := r.string()
	return &v
}

func (r *reader) timePtr() *time.Time {
	if r.skip {
		r.time()
		return nil
	}
	t := r.time()
	return &t
}

func putString(buf []byte, s string) []byte {
	return append(binary.AppendUvarint(buf, uint64(len(s))), s...)
}

func putStrings(buf []byte, ss []string) []byte {
	buf = binary.AppendUvarint(buf, uint64(len(ss)))
	for _, s := range ss {
		buf = putString(buf, s)
	}
	return buf
}

// putMap writes a nil map as 0 and others as 1 + their length.
func putMap(buf []byte, m map[string]string) []byte {
	if m == nil {
		return append(buf, 0)
	}
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	buf = binary.AppendUvarint(buf, uint64(len(keys))+1)
	for _, k := range keys {
		buf = putString(putString(buf, k), m[k])
	}
	return buf
}

func putBool(buf []byte, v bool) []byte {
	if v {
		return append(buf, 1)
	}
	return append(buf, 0)
}

// putTime writes seconds and nanoseconds apart (UnixNano overflows outside
// 1678–2262, and a webhook's created_at can say anything); times without
// nanoseconds (Shopify's) take no byte for them.
func putTime(buf []byte, t time.Time) []byte {
	if t.IsZero() {
		return append(buf, 0)
	}
	ns := t.Nanosecond()
	v := zigzag(t.Unix())<<1 + 2 // 0 is the zero time; bit 0: nanoseconds follow
	if ns != 0 {
		v |= 1
	}
	buf = binary.AppendUvarint(buf, v)
	if ns != 0 {
		buf = binary.AppendUvarint(buf, uint64(ns))
	}
	return buf
}

func zigzag(v int64) uint64 { return uint64(v<<1) ^ uint64(v>>63) }

// reader decodes a value; the first error sticks and every later read
// returns zero values.
type reader struct {
	b   []byte
	err error
	// skip: walk and check only (checkValue).
	skip bool
	// version is the value's encoding (header).
	version byte
}

func (r *reader) header() (byte, error) {
	if len(r.b) < 2 {
		return 0, errStateTruncated
	}
	if r.b[0] != stateVersion && r.b[0] != stateVersion1 {
		return 0, fmt.Errorf("unknown join state encoding version %d", r.b[0])
	}
	r.version = r.b[0]
	flags := r.b[1]
	r.b = r.b[2:]
	return flags, nil
}

func (r *reader) fail(err error) {
	if r.err == nil {
		r.err = err
	}
	r.b = nil
}

func (r *reader) byte() byte {
	if len(r.b) == 0 {
		r.fail(errStateTruncated)
		return 0
	}
	c := r.b[0]
	r.b = r.b[1:]
	return c
}

func (r *reader) bool() bool { return r.byte() == 1 }

func (r *reader) uvarint() uint64 {
	v, n := binary.Uvarint(r.b)
	if n <= 0 {
		r.fail(errStateTruncated)
		return 0
	}
	r.b = r.b[n:]
	return v
}

func (r *reader) varint() int64 {
	v, n := binary.Varint(r.b)
	if n <= 0 {
		r.fail(errStateTruncated)
		return 0
	}
	r.b = r.b[n:]
	return v
}

// count reads a length and checks it against what is left (each element
// takes at least a byte), so a corrupt value cannot make a huge slice.
func (r *reader) count() int {
	n := r.uvarint()
	if n > uint64(len(r.b)) {
		r.fail(errStateTruncated)
		return 0
	}
	return int(n)
}

func (r *reader) string() string {
	if b := r.bytes(); !r.skip {
		return string(b)
	}
	return ""
}

// bytes reads a string without copying it.
func (r *reader) bytes() []byte {
	n := r.count()
	b := r.b[:n:n]
	r.b = r.b[n:]
	return b
}

func (r *reader) strings() []string {
	n := r.count()
	var ss []string
	if !r.skip {
		ss = make([]string, 0, n)
	}
	for i := 0; i < n && r.err == nil; i++ {
		if s := r.string(); !r.skip {
			ss = append(ss, s)
		}
	}
	return ss
}

func (r *reader) stringMap() map[string]string {
	n := r.uvarint()
	if n == 0 {
		return nil
	}
	n--
	if n > uint64(len(r.b)) {
		r.fail(errStateTruncated)
		return nil
	}
	var m map[string]string
	if !r.skip {
		m = make(map[string]string, n)
	}
	for i := uint64(0); i < n && r.err == nil; i++ {
		k, v := r.string(), r.string()
		if !r.skip {
			m[k] = v
		}
	}
	return m
}

func (r *reader) time() time.Time {
	v := r.uvarint()
	if v == 0 {
		return time.Time{}
	}
	var ns uint64
	if v&1 != 0 {
		if ns = r.uvarint(); ns >= 1e9 {
			r.fail(errors.New("join state: nanoseconds out of range"))
		}
	}
	z := (v - 2) >> 1
	return time.Unix(int64(z>>1)^-int64(z&1), int64(ns)).UTC()
}
