package schemas

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"net/url"
	"testing"
	"time"
)

func signQuery(q url.Values, secret string) url.Values {
	mac := hmac.New(sha256.New, []byte(secret))
	mac.Write([]byte(OAuthQueryMessage(q)))
	q.Set("hmac", hex.EncodeToString(mac.Sum(nil)))
	return q
}

func TestVerifyOAuthQuery(t *testing.T) {
	// Shopify's documented example: this message, keyed with the secret
	// "hush", gives this digest.
	base := func() url.Values {
		return url.Values{"code": {"0907a61c0c8d55e99db179b68161bc00"}, "shop": {"some-shop.myshopify.com"},
			"state": {"0.6784241404160823"}, "timestamp": {"1337178173"}, "host": {"c29tZS1zaG9w"}}
	}
	if got, want := OAuthQueryMessage(base()), "code=0907a61c0c8d55e99db179b68161bc00&host=c29tZS1zaG9w&shop=some-shop.myshopify.com&state=0.6784241404160823&timestamp=1337178173"; got != want {
		t.Fatalf("message %q, want %q", got, want)
	}
	good := signQuery(base(), "hush")
	if err := VerifyOAuthQuery(good, "hush"); err != nil {
		t.Fatalf("good query: %v", err)
	}
	upper := signQuery(base(), "hush")
	upper.Set("hmac", hexUpper(upper.Get("hmac")))
	if err := VerifyOAuthQuery(upper, "hush"); err != nil {
		t.Errorf("upper-case hex: %v", err)
	}
	f := func(name string, q url.Values, secret string, want error) {
		t.Helper()
		if err := VerifyOAuthQuery(q, secret); !errors.Is(err, want) {
			t.Errorf("%s: %v, want %v", name, err, want)
		}
	}
	f("wrong secret", signQuery(base(), "other"), "hush", ErrOAuthHMACInvalid)
	tampered := signQuery(base(), "hush")
	tampered.Set("shop", "evil.myshopify.com")
	f("tampered shop", tampered, "hush", ErrOAuthHMACInvalid)
	added := signQuery(base(), "hush")
	added.Set("extra", "1")
	f("added parameter", added, "hush", ErrOAuthHMACInvalid)
	f("missing", base(), "hush", ErrOAuthHMACMissing)
	dup := signQuery(base(), "hush")
	dup.Add("hmac", dup.Get("hmac"))
	f("repeated", dup, "hush", ErrOAuthHMACRepeat)
	short := signQuery(base(), "hush")
	short.Set("hmac", short.Get("hmac")[:32])
	f("truncated", short, "hush", ErrOAuthHMACInvalid)
	b64 := signQuery(base(), "hush")
	raw, _ := hex.DecodeString(b64.Get("hmac"))
	b64.Set("hmac", base64.StdEncoding.EncodeToString(raw))
	f("base64 instead of hex", b64, "hush", ErrOAuthHMACInvalid)
}

func hexUpper(s string) string {
	b := []byte(s)
	for i, c := range b {
		if 'a' <= c && c <= 'f' {
			b[i] = c - 32
		}
	}
	return string(b)
}

// mintJWT builds a JWT with header h and claims c, signed HS256 with key
// (or with nothing when sign is false).
func mintJWT(t *testing.T, h, c map[string]any, key string) string {
	t.Helper()
	hb, _ := json.Marshal(h)
	cb, _ := json.Marshal(c)
	in := base64.RawURLEncoding.EncodeToString(hb) + "." + base64.RawURLEncoding.EncodeToString(cb)
	mac := hmac.New(sha256.New, []byte(key))
	mac.Write([]byte(in))
	return in + "." + base64.RawURLEncoding.EncodeToString(mac.Sum(nil))
}

func TestVerifySessionToken(t *testing.T) {
	now := time.Unix(1_700_000_000, 0)
	claims := func() map[string]any {
		return map[string]any{
			"iss": "https://acme.myshopify.com/admin", "dest": "https://acme.myshopify.com",
			"aud": "key-1", "sub": "42", "exp": now.Unix() + 50, "nbf": now.Unix() - 10, "iat": now.Unix() - 10,
			"jti": "f8912129-1af6-4cad-9ca3-76b0f7621087", "sid": "aaea182f2732d44c23057c0fea584021a4485b2bd25d3eb7fd349313ad24c685",
		}
	}
	hs := map[string]any{"alg": "HS256", "typ": "JWT"}
	st, err := VerifySessionToken(mintJWT(t, hs, claims(), "secret"), "key-1", "secret", now)
	if err != nil {
		t.Fatalf("good token: %v", err)
	}
	if st.Shop != "acme.myshopify.com" || st.Subject != "42" || st.ExpiresAt.Unix() != now.Unix()+50 || st.SessionID == "" {
		t.Errorf("claims %+v", st)
	}
	f := func(name string, tok string, at time.Time, want error) {
		t.Helper()
		if _, err := VerifySessionToken(tok, "key-1", "secret", at); !errors.Is(err, want) {
			t.Errorf("%s: %v, want %v", name, err, want)
		}
	}
	with := func(k string, v any) map[string]any {
		c := claims()
		if v == nil {
			delete(c, k)
		} else {
			c[k] = v
		}
		return c
	}
	f("bad signature", mintJWT(t, hs, claims(), "other"), now, ErrSessionTokenSignature)
	good := mintJWT(t, hs, claims(), "secret")
	f("signature stripped", good[:len(good)-43]+"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA", now, ErrSessionTokenSignature)
	f("wrong audience", mintJWT(t, hs, with("aud", "key-2"), "secret"), now, ErrSessionTokenAudience)
	f("no audience", mintJWT(t, hs, with("aud", nil), "secret"), now, ErrSessionTokenAudience)
	if _, err := VerifySessionToken(mintJWT(t, hs, with("aud", []string{"x", "key-1"}), "secret"), "key-1", "secret", now); err != nil {
		t.Errorf("audience array: %v", err)
	}
	f("expired", good, now.Add(50*time.Second+SessionTokenLeeway), ErrSessionTokenExpired)
	if _, err := VerifySessionToken(good, "key-1", "secret", now.Add(50*time.Second+SessionTokenLeeway-time.Second)); err != nil {
		t.Errorf("within the leeway after exp: %v", err)
	}
	f("no exp", mintJWT(t, hs, with("exp", nil), "secret"), now, ErrSessionTokenExpired)
	f("not yet valid", good, now.Add(-10*time.Second-SessionTokenLeeway-time.Second), ErrSessionTokenEarly)
	f("iss of another shop", mintJWT(t, hs, with("iss", "https://evil.myshopify.com/admin"), "secret"), now, ErrSessionTokenShop)
	f("dest of another shop", mintJWT(t, hs, with("dest", "https://evil.myshopify.com"), "secret"), now, ErrSessionTokenShop)
	f("dest not a shop", mintJWT(t, hs, with("dest", "https://acme.example.com"), "secret"), now, ErrSessionTokenShop)
	f("dest over http", mintJWT(t, hs, with("dest", "http://acme.myshopify.com"), "secret"), now, ErrSessionTokenShop)
	f("iss without /admin", mintJWT(t, hs, with("iss", "https://acme.myshopify.com"), "secret"), now, ErrSessionTokenShop)
	f("alg none", mintJWT(t, map[string]any{"alg": "none", "typ": "JWT"}, claims(), "secret"), now, ErrSessionTokenAlg)
	noneTok := mintJWT(t, map[string]any{"alg": "none"}, claims(), "secret")
	f("alg none, empty signature", noneTok[:len(noneTok)-43], now, ErrSessionTokenAlg)
	f("alg HS512", mintJWT(t, map[string]any{"alg": "HS512"}, claims(), "secret"), now, ErrSessionTokenAlg)
	f("two parts", "a.b", now, ErrSessionTokenMalformed)
}

func TestParseAppUninstalled(t *testing.T) {
	u, err := ParseAppUninstalled([]byte(`{"id": 548380009, "name": "Super Toys", "domain": "toys.example.com", "myshopify_domain": "Super-Toys.myshopify.com"}`))
	if err != nil || u.ShopDomain != "super-toys.myshopify.com" || u.ShopID.String() != "548380009" {
		t.Errorf("%+v %v", u, err)
	}
	if u, err := ParseAppUninstalled([]byte(`{"domain": "acme.myshopify.com"}`)); err != nil || u.ShopDomain != "acme.myshopify.com" {
		t.Errorf("domain fallback: %+v %v", u, err)
	}
	for _, b := range []string{`{"domain": "toys.example.com"}`, `[]`, `not json`, `{"myshopify_domain": "a.myshopify.com.evil.com"}`} {
		if _, err := ParseAppUninstalled([]byte(b)); err == nil {
			t.Errorf("%s: accepted", b)
		}
	}
}

// Shopify's documented example (secret "hush"): a known answer, so the
// message and the digest are Shopify's and not only self-consistent.
func TestVerifyOAuthQueryKnownAnswer(t *testing.T) {
	q, _ := url.ParseQuery("code=0907a61c0c8d55e99db179b68161bc00&hmac=700e2dadb827fcc8609e9d5ce208b2e9cdaab9df07390d2cbca10d7c328fc4bf&shop=some-shop.myshopify.com&state=0.6784241404160823&timestamp=1337178173")
	if err := VerifyOAuthQuery(q, "hush"); err != nil {
		t.Fatal(err)
	}
}
