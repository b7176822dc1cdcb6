package shopify

import (
	"crypto/hmac"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"hash"
	"strings"
	"sync"
)

// Verifier checks the X-Shopify-Hmac-Sha256 header of a webhook: the
// base64 HMAC-SHA256 of the raw body keyed with the app's client secret.
// Several secrets may be configured because Shopify keeps signing with the
// old secret for up to an hour after a rotation, and custom apps have their
// own. A Verifier is safe for concurrent use.
//
// Only the body is signed: X-Shopify-Shop-Domain and X-Shopify-Topic are
// not. The public app's secret is Shopify's alone, so a body it signs can
// be trusted with any shop header. A custom app's secret is also known to
// the merchant who owns the app, who could sign any body and name another
// shop in the header (forged orders, refunds, shop/redact); so a custom
// secret is bound to its shop and verifies that shop's webhooks only.
type Verifier struct {
	pools []*sync.Pool // one pool of keyed HMAC states per secret
	shops []string     // the shop each secret is bound to; "" = any shop
}

// ErrNoSecret is returned by NewVerifier without a usable secret.
var ErrNoSecret = errors.New("no Shopify app secret configured")

// NewVerifier returns a verifier accepting a signature made with any of
// secrets. Empty secrets are refused: an empty key would make every
// signature computable by anyone.
func NewVerifier(secrets [][]byte) (*Verifier, error) {
	return NewBoundVerifier(secrets, nil)
}

// NewBoundVerifier returns a verifier accepting a signature made with any of
// public (the public app's secrets, for every shop), or with one of
// byShop[shop] for a webhook whose shop header is shop (custom apps). Shop
// domains are compared after NormalizeShop.
func NewBoundVerifier(public [][]byte, byShop map[string][][]byte) (*Verifier, error) {
	v := &Verifier{}
	add := func(shop string, s []byte) error {
		if len(s) == 0 {
			return ErrNoSecret
		}
		key := append([]byte(nil), s...)
		// hmac.New costs two SHA-256 blocks and allocations; pooling the
		// keyed state keeps verification at the cost of the body's hash.
		v.pools = append(v.pools, &sync.Pool{New: func() any { return hmac.New(sha256.New, key) }})
		v.shops = append(v.shops, shop)
		return nil
	}
	for _, s := range public {
		if err := add("", s); err != nil {
			return nil, err
		}
	}
	for shop, keys := range byShop {
		if NormalizeShop(shop) == "" {
			return nil, errors.New("a custom app secret is bound to an empty shop domain")
		}
		for _, s := range keys {
			if err := add(NormalizeShop(shop), s); err != nil {
				return nil, err
			}
		}
	}
	if len(v.pools) == 0 {
		return nil, ErrNoSecret
	}
	return v, nil
}

// ParseSecrets splits the entries of -shopify.apiSecret: "secret" is a
// public app's secret (any shop); "shop.myshopify.com=secret" is a custom
// app's, bound to that shop. Errors never quote a secret.
func ParseSecrets(entries []string) (public [][]byte, byShop map[string][][]byte, err error) {
	for i, e := range entries {
		shop, key, bound := strings.Cut(e, "=")
		// Shopify secrets never contain '=' before a .myshopify.com name,
		// so only that shape is read as a binding.
		if !bound || !strings.HasSuffix(NormalizeShop(shop), ".myshopify.com") {
			public = append(public, []byte(e))
			continue
		}
		shop = NormalizeShop(shop)
		if key == "" {
			return nil, nil, fmt.Errorf("Shopify app secret %d (for %s) is empty", i+1, shop)
		}
		if byShop == nil {
			byShop = map[string][][]byte{}
		}
		byShop[shop] = append(byShop[shop], []byte(key))
	}
	return public, byShop, nil
}

// Verify reports whether header (the header's value, base64) is the
// signature of body under one of the secrets allowed for shop (the
// X-Shopify-Shop-Domain header). Every secret is tried and the comparisons
// are constant-time, so the answer's timing does not tell an attacker how
// close a forged signature is or which secret matched.
func (v *Verifier) Verify(body, header []byte, shop string) bool {
	// Only the canonical encoding is accepted (44 characters, strict
	// padding bits, no line breaks, which the decoder would skip), so each
	// signature has exactly one accepted spelling.
	if len(header) != base64.StdEncoding.EncodedLen(sha256.Size) {
		return false
	}
	for _, c := range header {
		if c == '\r' || c == '\n' {
			return false
		}
	}
	var want [sha256.Size + 1]byte // DecodedLen(44) is 33
	n, err := strictBase64.Decode(want[:], header)
	if err != nil || n != sha256.Size {
		return false
	}
	ok := 0
	var sum [sha256.Size]byte
	shop = NormalizeShop(shop)
	for i, p := range v.pools {
		h := p.Get().(hash.Hash)
		h.Reset()
		h.Write(body)
		got := h.Sum(sum[:0])
		p.Put(h)
		allowed := 0
		if v.shops[i] == "" || v.shops[i] == shop {
			allowed = 1
		}
		ok |= subtle.ConstantTimeCompare(got, want[:sha256.Size]) & allowed
	}
	return ok == 1
}

var strictBase64 = base64.StdEncoding.Strict()

// Sign returns the header value Shopify would send for body under secret.
// Tests and cmd/loadgen use it to make signed requests.
func Sign(secret, body []byte) string {
	m := hmac.New(sha256.New, secret)
	m.Write(body)
	return base64.StdEncoding.EncodeToString(m.Sum(nil))
}
