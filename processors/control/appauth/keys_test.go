package appauth

import (
	"bytes"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"strings"
	"testing"
)

func newKey(t *testing.T) string {
	t.Helper()
	b := make([]byte, 32)
	rand.Read(b)
	return base64.StdEncoding.EncodeToString(b)
}

func mustKeys(t *testing.T, s string) *Keyring {
	t.Helper()
	k, err := ParseKeys(s)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func TestKeysRoundTrip(t *testing.T) {
	k := mustKeys(t, newKey(t))
	pt := []byte(`{"access_token":"shpat_x","scope":"read_orders"}`)
	env := k.Seal("acme.myshopify.com", pt)
	if bytes.Contains(env, []byte("shpat_x")) {
		t.Fatal("the envelope holds the token in clear")
	}
	if env[0] != envelopeVersion || string(env[2:2+int(env[1])]) != DefaultKeyID {
		t.Errorf("header %x, want version 1 and key id %s", env[:4], DefaultKeyID)
	}
	got, id, err := k.Open("acme.myshopify.com", env)
	if err != nil || !bytes.Equal(got, pt) || id != DefaultKeyID {
		t.Fatalf("open: %q %s %v", got, id, err)
	}
	if e2 := k.Seal("acme.myshopify.com", pt); bytes.Equal(e2, env) {
		t.Error("two seals gave the same envelope: the nonce is not random")
	}
	// The shop is additional data: a value moved to another shop's key
	// does not open.
	if _, _, err := k.Open("evil.myshopify.com", env); !errors.Is(err, ErrUndecryptable) {
		t.Errorf("moved to another shop: %v", err)
	}
	bad := append([]byte{}, env...)
	bad[len(bad)-1] ^= 1
	if _, _, err := k.Open("acme.myshopify.com", bad); !errors.Is(err, ErrUndecryptable) {
		t.Errorf("tampered: %v", err)
	}
	for _, e := range [][]byte{nil, {1}, {2, 2, 'k', '1'}, env[:10]} {
		if _, _, err := k.Open("acme.myshopify.com", e); err == nil {
			t.Errorf("malformed %x opened", e)
		}
	}
}

func TestKeysWrongKey(t *testing.T) {
	a, b := mustKeys(t, "k1:"+newKey(t)), mustKeys(t, "k1:"+newKey(t))
	env := a.Seal("acme.myshopify.com", []byte("x"))
	if _, id, err := b.Open("acme.myshopify.com", env); !errors.Is(err, ErrUndecryptable) || id != "k1" {
		t.Errorf("wrong key: %s %v", id, err)
	}
	c := mustKeys(t, "other:"+newKey(t))
	if _, id, err := c.Open("acme.myshopify.com", env); !errors.Is(err, ErrUnknownKey) || id != "k1" {
		t.Errorf("unknown key id: %s %v", id, err)
	}
}

// Rotation: the new key first encrypts; the old one still decrypts what it
// wrote; without the old one those records are unknown.
func TestKeysRotation(t *testing.T) {
	oldK, newK := newKey(t), newKey(t)
	before := mustKeys(t, "old:"+oldK)
	during := mustKeys(t, "new:"+newK+", old:"+oldK)
	after := mustKeys(t, "new:"+newK)
	oldEnv := before.Seal("acme.myshopify.com", []byte("old"))
	if pt, id, err := during.Open("acme.myshopify.com", oldEnv); err != nil || string(pt) != "old" || id != "old" {
		t.Errorf("old record during rotation: %q %s %v", pt, id, err)
	}
	newEnv := during.Seal("acme.myshopify.com", []byte("new"))
	if id := string(newEnv[2 : 2+int(newEnv[1])]); id != "new" {
		t.Errorf("during rotation the record is written with %s, want new", id)
	}
	if pt, _, err := after.Open("acme.myshopify.com", newEnv); err != nil || string(pt) != "new" {
		t.Errorf("new record after rotation: %q %v", pt, err)
	}
	if _, _, err := after.Open("acme.myshopify.com", oldEnv); !errors.Is(err, ErrUnknownKey) {
		t.Errorf("old record after the old key was dropped: %v", err)
	}
	if got := during.IDs(); strings.Join(got, ",") != "new,old" {
		t.Errorf("ids %v", got)
	}
}

func TestParseKeys(t *testing.T) {
	secret := newKey(t)
	for _, bad := range []string{"", " , ", "k1:" + secret[:20], "bad id:" + secret, "k1:" + secret + ",k1:" + newKey(t), "k1:not base64!"} {
		k, err := ParseKeys(bad)
		if err == nil {
			t.Errorf("%q accepted: %v", bad, k)
			continue
		}
		if strings.Contains(err.Error(), secret[:12]) {
			t.Errorf("the error quotes the key: %v", err)
		}
	}
	k := mustKeys(t, "a:"+secret+",b:"+base64.RawURLEncoding.EncodeToString(make([]byte, 32)))
	if s := k.String(); strings.Contains(s, secret[:12]) || !strings.Contains(s, "a,b") {
		t.Errorf("String %q", s)
	}
}
