package shopify

import (
	"crypto/hmac"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"hash"
	"sync"
)

// Verifier checks the X-Shopify-Hmac-Sha256 header of a webhook: the
// base64 HMAC-SHA256 of the raw body keyed with the app's client secret.
// Several secrets may be configured because Shopify keeps signing with the
// old secret for up to an hour after a rotation, and custom apps have their
// own. A Verifier is safe for concurrent use.
type Verifier struct {
	pools []*sync.Pool // one pool of keyed HMAC states per secret
}

// ErrNoSecret is returned by NewVerifier without a usable secret.
var ErrNoSecret = errors.New("no Shopify app secret configured")

// NewVerifier returns a verifier accepting a signature made with any of
// secrets. Empty secrets are refused: an empty key would make every
// signature computable by anyone.
func NewVerifier(secrets [][]byte) (*Verifier, error) {
	if len(secrets) == 0 {
		return nil, ErrNoSecret
	}
	v := &Verifier{}
	for _, s := range secrets {
		if len(s) == 0 {
			return nil, ErrNoSecret
		}
		key := append([]byte(nil), s...)
		// hmac.New costs two SHA-256 blocks and allocations; pooling the
		// keyed state keeps verification at the cost of the body's hash.
		v.pools = append(v.pools, &sync.Pool{New: func() any { return hmac.New(sha256.New, key) }})
	}
	return v, nil
}

// Verify reports whether header (the header's value, base64) is the
// signature of body under one of the secrets. Every secret is tried and the
// comparisons are constant-time, so the answer's timing does not tell an
// attacker how close a forged signature is or which secret matched.
func (v *Verifier) Verify(body, header []byte) bool {
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
	for _, p := range v.pools {
		h := p.Get().(hash.Hash)
		h.Reset()
		h.Write(body)
		got := h.Sum(sum[:0])
		p.Put(h)
		ok |= subtle.ConstantTimeCompare(got, want[:sha256.Size])
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
