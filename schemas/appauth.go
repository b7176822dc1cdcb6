package schemas

import (
	"crypto/hmac"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"sort"
	"strings"
	"time"
)

// This file holds the pure checks of Shopify's app authentication: the
// OAuth redirect's query HMAC, session tokens (the JWTs App Bridge gives an
// embedded app's page), and the app/uninstalled body. No I/O; the OAuth
// flow itself is processors/control/appauth.

// NormalizeShopDomain lower-cases and trims a shop domain and reports
// whether it is a name.myshopify.com domain (Shopify's own check:
// ^[a-zA-Z0-9][a-zA-Z0-9-]*\.myshopify\.com$). Only a valid domain may be
// put into a URL: it is the shop's host.
func NormalizeShopDomain(s string) (string, bool) {
	s = strings.ToLower(strings.TrimSpace(s))
	return s, len(s) <= 255 && shopDomainRE.MatchString(s)
}

// OAuth query errors; VerifyOAuthQuery wraps nothing else, so a handler can
// answer each with its own message.
var (
	ErrOAuthHMACMissing = errors.New("the query has no hmac parameter")
	ErrOAuthHMACRepeat  = errors.New("the query has more than one hmac parameter")
	ErrOAuthHMACInvalid = errors.New("the query's hmac does not match")
)

// OAuthQueryMessage is the message Shopify signs in an OAuth redirect (and
// an app's admin link): every parameter except hmac (and the legacy
// signature), sorted by name, as name=value joined with '&'. A repeated
// parameter is one name=["a", "b"] entry, as Shopify's libraries build it.
func OAuthQueryMessage(q url.Values) string {
	keys := make([]string, 0, len(q))
	for k := range q {
		if k != "hmac" && k != "signature" {
			keys = append(keys, k)
		}
	}
	sort.Strings(keys)
	var b strings.Builder
	for i, k := range keys {
		if i > 0 {
			b.WriteByte('&')
		}
		b.WriteString(k)
		b.WriteByte('=')
		if v := q[k]; len(v) == 1 {
			b.WriteString(v[0])
		} else {
			b.WriteString(`["` + strings.Join(v, `", "`) + `"]`)
		}
	}
	return b.String()
}

// VerifyOAuthQuery checks the hmac of a query Shopify redirected a browser
// with (the OAuth callback: code, hmac, host, shop, state, timestamp): the
// lower-case hex HMAC-SHA256, keyed with the app secret, of
// OAuthQueryMessage, compared in constant time. A missing, repeated or
// malformed hmac is refused. It checks nothing else: the caller checks the
// shop, the state and the timestamp's age.
func VerifyOAuthQuery(q url.Values, apiSecret string) error {
	hs := q["hmac"]
	switch {
	case len(hs) == 0 || hs[0] == "":
		return ErrOAuthHMACMissing
	case len(hs) > 1:
		return ErrOAuthHMACRepeat
	case apiSecret == "":
		return errors.New("no app secret to verify the query with")
	}
	got, err := hex.DecodeString(strings.ToLower(hs[0]))
	if err != nil || len(got) != sha256.Size {
		return ErrOAuthHMACInvalid
	}
	mac := hmac.New(sha256.New, []byte(apiSecret))
	mac.Write([]byte(OAuthQueryMessage(q)))
	if subtle.ConstantTimeCompare(mac.Sum(nil), got) != 1 {
		return ErrOAuthHMACInvalid
	}
	return nil
}

// SessionTokenLeeway is the clock skew allowed on a session token's exp
// and nbf (Shopify's tokens live one minute).
const SessionTokenLeeway = 5 * time.Second

// SessionToken is a verified Shopify session token: the claims of the JWT
// App Bridge hands an embedded app's page, and the shop they name.
type SessionToken struct {
	Shop      string // from dest, normalized: name.myshopify.com
	Issuer    string // iss: https://name.myshopify.com/admin
	Dest      string // dest: https://name.myshopify.com
	Audience  string // aud: the app's API key (client id)
	Subject   string // sub: the staff member's user id
	ExpiresAt time.Time
	NotBefore time.Time
	IssuedAt  time.Time
	ID        string // jti
	SessionID string // sid
}

// Session token errors. ErrSessionTokenSignature is the one a caller with
// several secrets (during a rotation) tries the next secret on.
var (
	ErrSessionTokenMalformed = errors.New("session token: not a JWT")
	ErrSessionTokenAlg       = errors.New("session token: algorithm is not HS256")
	ErrSessionTokenSignature = errors.New("session token: bad signature")
	ErrSessionTokenAudience  = errors.New("session token: audience is not this app")
	ErrSessionTokenExpired   = errors.New("session token: expired")
	ErrSessionTokenEarly     = errors.New("session token: not valid yet")
	ErrSessionTokenShop      = errors.New("session token: dest is not a shop, or iss names another shop")
)

// audience is aud: a string, or (as JWT allows) an array of strings.
type audience []string

func (a *audience) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err == nil {
		*a = audience{s}
		return nil
	}
	var l []string
	if err := json.Unmarshal(b, &l); err != nil {
		return err
	}
	*a = l
	return nil
}

// VerifySessionToken checks a session token (RFC 7519 JWT, HS256 keyed with
// the app secret) and returns its claims: the signature, in constant time
// and before any claim is read; aud equal to apiKey; exp and nbf against
// now with SessionTokenLeeway; dest a shop's https origin and iss that
// shop's https://<shop>/admin. Any other alg (none included) is refused.
func VerifySessionToken(token, apiKey, apiSecret string, now time.Time) (*SessionToken, error) {
	if apiSecret == "" || apiKey == "" {
		return nil, errors.New("session token: no API key or secret to verify with")
	}
	parts := strings.Split(token, ".")
	if len(parts) != 3 || len(token) > 8192 {
		return nil, ErrSessionTokenMalformed
	}
	hb, err1 := base64.RawURLEncoding.DecodeString(parts[0])
	pb, err2 := base64.RawURLEncoding.DecodeString(parts[1])
	sig, err3 := base64.RawURLEncoding.DecodeString(parts[2])
	if err1 != nil || err2 != nil || err3 != nil {
		return nil, ErrSessionTokenMalformed
	}
	var hdr struct {
		Alg string `json:"alg"`
		Typ string `json:"typ"`
	}
	if err := json.Unmarshal(hb, &hdr); err != nil {
		return nil, ErrSessionTokenMalformed
	}
	if hdr.Alg != "HS256" {
		return nil, ErrSessionTokenAlg
	}
	mac := hmac.New(sha256.New, []byte(apiSecret))
	mac.Write([]byte(parts[0] + "." + parts[1]))
	if subtle.ConstantTimeCompare(mac.Sum(nil), sig) != 1 {
		return nil, ErrSessionTokenSignature
	}
	var c struct {
		Iss  string   `json:"iss"`
		Dest string   `json:"dest"`
		Aud  audience `json:"aud"`
		Sub  string   `json:"sub"`
		Exp  *float64 `json:"exp"`
		Nbf  *float64 `json:"nbf"`
		Iat  *float64 `json:"iat"`
		Jti  string   `json:"jti"`
		Sid  string   `json:"sid"`
	}
	if err := json.Unmarshal(pb, &c); err != nil {
		return nil, ErrSessionTokenMalformed
	}
	aud := false
	for _, a := range c.Aud {
		aud = aud || subtle.ConstantTimeCompare([]byte(a), []byte(apiKey)) == 1
	}
	if !aud {
		return nil, ErrSessionTokenAudience
	}
	if c.Exp == nil || !now.Before(unix(*c.Exp).Add(SessionTokenLeeway)) {
		return nil, ErrSessionTokenExpired
	}
	if c.Nbf != nil && now.Add(SessionTokenLeeway).Before(unix(*c.Nbf)) {
		return nil, ErrSessionTokenEarly
	}
	shop, ok := shopOrigin(c.Dest, "")
	if !ok {
		return nil, ErrSessionTokenShop
	}
	if iss, ok := shopOrigin(c.Iss, "/admin"); !ok || iss != shop {
		return nil, ErrSessionTokenShop
	}
	st := &SessionToken{Shop: shop, Issuer: c.Iss, Dest: c.Dest, Audience: apiKey, Subject: c.Sub,
		ExpiresAt: unix(*c.Exp), ID: c.Jti, SessionID: c.Sid}
	if c.Nbf != nil {
		st.NotBefore = unix(*c.Nbf)
	}
	if c.Iat != nil {
		st.IssuedAt = unix(*c.Iat)
	}
	return st, nil
}

func unix(f float64) time.Time { return time.Unix(int64(f), 0) }

// shopOrigin returns the shop of "https://<shop><path>" (exactly that path,
// no query, user or port).
func shopOrigin(s, path string) (string, bool) {
	u, err := url.Parse(s)
	if err != nil || u.Scheme != "https" || u.User != nil || u.Port() != "" || u.RawQuery != "" || u.Fragment != "" || strings.TrimSuffix(u.Path, "/") != path {
		return "", false
	}
	shop, ok := NormalizeShopDomain(u.Hostname())
	return shop, ok
}

// AppUninstalled is what the pipeline reads of an app/uninstalled body
// (Shopify's Shop resource).
type AppUninstalled struct {
	ShopDomain string // myshopify_domain, normalized
	ShopID     json.Number
}

// ParseAppUninstalled reads an app/uninstalled body: the shop is its
// myshopify_domain (domain is the shop's primary domain, which may be a
// custom one); it must be a valid myshopify domain.
func ParseAppUninstalled(body []byte) (AppUninstalled, error) {
	var b struct {
		ID              json.Number `json:"id"`
		MyshopifyDomain string      `json:"myshopify_domain"`
		Domain          string      `json:"domain"`
	}
	d := json.NewDecoder(strings.NewReader(string(body)))
	d.UseNumber()
	if err := d.Decode(&b); err != nil {
		return AppUninstalled{}, fmt.Errorf("app/uninstalled: body is not a JSON object")
	}
	shop := b.MyshopifyDomain
	if shop == "" {
		shop = b.Domain
	}
	shop, ok := NormalizeShopDomain(shop)
	if !ok {
		return AppUninstalled{}, &FieldError{"myshopify_domain", "must be a name.myshopify.com domain"}
	}
	return AppUninstalled{ShopDomain: shop, ShopID: b.ID}, nil
}
