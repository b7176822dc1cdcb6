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
		if got := v.Verify([]byte(body), []byte(header)); got != want {
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
	if !v.Verify([]byte(vectorBody), []byte(vectorHush)) {
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
		got := v.Verify(body, header)
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
		if !v.Verify(body, sig) {
			b.Fatal("rejected")
		}
	}
}
