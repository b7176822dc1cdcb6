package shopify

import (
	"bytes"
	"strings"
	"testing"
)

// The expected signatures were computed outside Go, with
//
//	printf '%s' BODY | openssl dgst -sha256 -hmac SECRET -binary | base64
//
// so a bug shared by Sign and Verify cannot hide.
const (
	vectorBody  = `{"id":820982911946154508,"email":"jon@example.com","name":"#9999"}`
	vectorHush  = "GHRA62rRonufCGcinoJEGFXXDPAEMt9WRVI1Q51xtjw=" // secret "hush"
	vectorOld   = "Dje6ukpnH98updJAdMZueILzM2oiuPSrfHn0cIJ4K18=" // secret "shpss_old_secret"
	vectorEmpty = "Knm8rWjeSXNIt2H0AOMT7DQ8/YSy8sQi/pEjbuUmGMs=" // secret "hush", empty body
)

func TestSignMatchesOpenSSL(t *testing.T) {
	if got := Sign([]byte("hush"), []byte(vectorBody)); got != vectorHush {
		t.Fatalf("Sign = %s, want %s", got, vectorHush)
	}
	if got := Sign([]byte("hush"), nil); got != vectorEmpty {
		t.Fatalf("Sign(empty) = %s, want %s", got, vectorEmpty)
	}
}

func TestVerify(t *testing.T) {
	rotating, err := NewVerifier([][]byte{[]byte("hush"), []byte("shpss_old_secret")})
	if err != nil {
		t.Fatal(err)
	}
	single, err := NewVerifier([][]byte{[]byte("hush")})
	if err != nil {
		t.Fatal(err)
	}
	f := func(v *Verifier, body, header string, want bool) {
		t.Helper()
		if got := v.Verify([]byte(body), []byte(header), "a.myshopify.com"); got != want {
			t.Errorf("Verify(%.30q, %q) = %v, want %v", body, header, got, want)
		}
	}
	f(single, vectorBody, vectorHush, true)
	f(single, "", vectorEmpty, true)
	f(rotating, vectorBody, vectorHush, true)
	f(rotating, vectorBody, vectorOld, true) // old secret during rotation
	f(single, vectorBody, vectorOld, false)  // only the configured secrets
	f(single, vectorBody+" ", vectorHush, false)
	f(single, strings.Replace(vectorBody, "9999", "9998", 1), vectorHush, false)
	f(single, vectorBody, "", false)
	f(single, vectorBody, "not base64!", false)
	f(single, vectorBody, strings.TrimRight(vectorHush, "="), false)         // unpadded
	f(single, vectorBody, vectorHush[:40]+"AAA=", false)                     // one byte off
	f(single, vectorBody, "GHRA62rRonufCGcinoJEGFXXDPAEMt9WRVI1Q51x", false) // truncated (30 bytes)
	f(single, vectorBody, vectorHush+vectorHush, false)                      // too long
	f(single, vectorBody, strings.ToLower(vectorHush), false)
	// A hex digest (the OAuth redirect's encoding) is not accepted.
	f(single, vectorBody, "1874 40eb6ad1a27b9f0867229e824418", false)
}

func TestNewVerifierRefusesEmptySecrets(t *testing.T) {
	if _, err := NewVerifier(nil); err == nil {
		t.Error("NewVerifier(nil) succeeded")
	}
	if _, err := NewVerifier([][]byte{[]byte("a"), {}}); err == nil {
		t.Error("NewVerifier with an empty secret succeeded")
	}
}

// The verifier keeps its own copy of the secrets: a caller that reuses its
// buffer must not change what is accepted.
func TestVerifierCopiesSecrets(t *testing.T) {
	secret := []byte("hush")
	v, err := NewVerifier([][]byte{secret})
	if err != nil {
		t.Fatal(err)
	}
	copy(secret, "xxxx")
	if !v.Verify([]byte(vectorBody), []byte(vectorHush), "a.myshopify.com") {
		t.Fatal("signature rejected after the caller's secret buffer changed")
	}
}

func FuzzVerify(f *testing.F) {
	f.Add([]byte(vectorBody), []byte(vectorHush))
	f.Add([]byte(""), []byte(vectorEmpty))
	f.Add([]byte("{}"), []byte("===="))
	v, err := NewVerifier([][]byte{[]byte("hush"), []byte("shpss_old_secret")})
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, body, header []byte) {
		got := v.Verify(body, header, "a.myshopify.com")
		// Accepted exactly when the header is one of the two signatures.
		want := bytes.Equal(header, []byte(Sign([]byte("hush"), body))) ||
			bytes.Equal(header, []byte(Sign([]byte("shpss_old_secret"), body)))
		if got != want {
			t.Fatalf("Verify(%q, %q) = %v, want %v", body, header, got, want)
		}
	})
}

func BenchmarkVerify(b *testing.B) {
	v, _ := NewVerifier([][]byte{[]byte("hush")})
	body := bytes.Repeat([]byte("x"), 8<<10)
	sig := []byte(Sign([]byte("hush"), body))
	b.SetBytes(int64(len(body)))
	b.ReportAllocs()
	for b.Loop() {
		if !v.Verify(body, sig, "a.myshopify.com") {
			b.Fatal("rejected")
		}
	}
}

// TestShopBoundSecrets: a custom app's secret verifies only its shop's
// webhooks; the public app's verifies every shop's (H5 of the security
// review: any configured secret used to verify any shop).
func TestShopBoundSecrets(t *testing.T) {
	public, byShop, err := ParseSecrets([]string{"shpss_public", "Shop-A.myshopify.com=shpss_custom_a", "b.myshopify.com=shpss_custom_b"})
	if err != nil {
		t.Fatal(err)
	}
	v, err := NewBoundVerifier(public, byShop)
	if err != nil {
		t.Fatal(err)
	}
	body := []byte(`{"id":1}`)
	f := func(secret, shop string, want bool) {
		t.Helper()
		if got := v.Verify(body, []byte(Sign([]byte(secret), body)), shop); got != want {
			t.Errorf("signed with %s, for shop %q: %v, want %v", secret, shop, got, want)
		}
	}
	f("shpss_public", "a.myshopify.com", true)
	f("shpss_public", "anyone.myshopify.com", true)
	f("shpss_custom_a", "shop-a.myshopify.com", true)
	f("shpss_custom_a", " SHOP-A.myshopify.com", true)
	f("shpss_custom_a", "b.myshopify.com", false) // shop B's webhook signed with A's secret
	f("shpss_custom_a", "victim.myshopify.com", false)
	f("shpss_custom_a", "", false)
	f("shpss_custom_b", "b.myshopify.com", true)
	f("shpss_custom_b", "shop-a.myshopify.com", false)

	if _, _, err := ParseSecrets([]string{"x.myshopify.com="}); err == nil || strings.Contains(err.Error(), "shpss") {
		t.Errorf("empty bound secret: %v", err)
	}
	// A secret that happens to contain '=' is a public secret unless what
	// precedes it is a shop domain.
	if p, b, _ := ParseSecrets([]string{"abc=def"}); len(p) != 1 || len(b) != 0 {
		t.Errorf("abc=def read as %d public, %d bound", len(p), len(b))
	}
}
